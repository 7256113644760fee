// Running programs from tests: the switchyard binary under test, git, and shell helpers.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "runner/core/process.h"

namespace tests {

// The source tree (for tests/data) and the built switchyard binary.
std::filesystem::path sourceDir();
std::filesystem::path dataDir();  // tests/data
std::filesystem::path switchyardBinary();

// Runs a program; returns its result (never throws for a non-zero exit).
runner::RunResult run(const std::string& program, const std::vector<std::string>& args,
                      const std::filesystem::path& cwd = {},
                      const std::map<std::string, std::string>& env = {});
// Runs the switchyard binary with args.
runner::RunResult switchyard(const std::vector<std::string>& args,
                             const std::filesystem::path& cwd = {});
// Runs a program and requires exit 0; returns trimmed stdout. Fails the test otherwise.
std::string runOk(const std::string& program, const std::vector<std::string>& args,
                  const std::filesystem::path& cwd = {});

}  // namespace tests
