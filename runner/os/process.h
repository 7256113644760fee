// The real ProcessRunner: fork/exec with pipes, each child in its own process group, the
// timeout enforced by killing the group (SIGTERM, then SIGKILL after a grace period), output
// read with poll() so neither pipe can fill up and block the child. A child gets SIGTERM when
// the runner dies (PR_SET_PDEATHSIG), so a killed daemon leaves no `nix build` behind to race
// the one it starts again after its restart.
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
