// A helper the benchmarks share: run git in a directory, or exit with its error (benchmarks
// have no test framework to report to).
#pragma once

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "runner/core/text.h"
#include "runner/os/process.h"

namespace bench {

inline void git(const std::filesystem::path& dir, std::vector<std::string> args) {
  runner::os::PosixProcessRunner procs;
  args.insert(args.begin(), {"-C", dir.string()});
  auto r = procs.run({.program = "git", .args = args});
  if (!r.ok()) {
    std::fprintf(stderr, "git %s failed: %s\n", runner::join(args, " ").c_str(), r.errTail.c_str());
    std::exit(1);
  }
}

}  // namespace bench
