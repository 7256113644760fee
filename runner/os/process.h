// The real ProcessRunner: fork/exec with pipes, each child in its own process group, the
// timeout enforced by killing the group (SIGTERM, then SIGKILL after a grace period), output
// read with poll() so neither pipe can fill up and block the child.
#pragma once

#include <memory>

#include "runner/core/process.h"

namespace runner::os {

class PosixProcessRunner final : public ProcessRunner {
 public:
  RunResult run(const RunOptions& opts) override;
};

// Signal name for a number ("SIGKILL"), or "signal N".
std::string signalName(int sig);

}  // namespace runner::os
