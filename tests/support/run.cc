#include "tests/support/run.h"

#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/os/process.h"

namespace tests {

std::filesystem::path sourceDir() { return SWITCHYARD_SOURCE_DIR; }
std::filesystem::path dataDir() { return sourceDir() / "tests" / "data"; }
std::filesystem::path switchyardBinary() { return SWITCHYARD_BINARY; }

runner::RunResult run(const std::string& program, const std::vector<std::string>& args,
                      const std::filesystem::path& cwd,
                      const std::map<std::string, std::string>& env) {
  runner::os::PosixProcessRunner runner;
  runner::RunOptions o;
  o.program = program;
  o.args = args;
  if (!cwd.empty()) o.cwd = cwd;
  for (const auto& [k, v] : env) o.env[k] = v;
  o.timeout = std::chrono::minutes(10);
  return runner.run(o);
}

runner::RunResult switchyard(const std::vector<std::string>& args,
                             const std::filesystem::path& cwd) {
  return run(switchyardBinary().string(), args, cwd);
}

std::string runOk(const std::string& program, const std::vector<std::string>& args,
                  const std::filesystem::path& cwd) {
  auto r = run(program, args, cwd);
  INFO(program << " " << runner::join(args, " ") << "\nstderr: " << r.errTail);
  REQUIRE(r.exitStatus == 0);
  return std::string(runner::trim(r.out));
}

}  // namespace tests
