// Build on the target (issue 16 "Builds elsewhere", issue 18): a host whose closure is built
// on the machine it is deployed to, as Colmena's `deployment.buildOnTarget` and Clan's
// `clan.core.networking.buildHost` (when it names the host itself) ask for. The runner
// evaluates; the derivations go to the target (`nix copy --derivation --to ssh://`, host key
// pinned like a deploy: the runner's known_hosts, StrictHostKeyChecking yes, BatchMode), the
// target realises them (`nix-store --realise` over a libssh session with the same pinning,
// its output streamed into the host's build log) and keeps the result under a GC root of its
// own. Nothing is built in, or copied back to, the runner's store: the deploy then finds the
// closure on the target and copies nothing (ssh_deployer.h, step copy).
//
// Where a host builds (placeBuilds): the config's `hosts.<n>.build_on: runner | target` wins;
// else the flake's deployment.buildOnTarget, or a clan buildHost equal to the host's deploy
// target, means the target; a clan buildHost naming another machine is refused with the
// reason (Switchyard builds here, on build.builders, or on the target). Builds of forks never
// go to a target (they run in the jail; the caller does not ask).
//
// Thread-safe after construction: build() may run for several hosts at once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/build/build_monitor.h"
#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/process.h"
#include "runner/nix/nix_cli.h"
#include "runner/ssh/ssh.h"

namespace runner::build {

// Where one host's closure is built, and why.
struct BuildPlacement {
  bool onTarget = false;
  Target target;       // the deploy target (when onTarget)
  std::string reason;  // "deployment.buildOnTarget", "hosts.web1.build_on: target", …
  // Set when the host cannot be placed (its build fails with this, nothing runs).
  std::optional<std::string> problem;
};

// Where each of `hosts` builds at the flake reference. Evaluates the flake (one nix process)
// only for hosts the config does not place itself. Never throws for a host whose options do
// not evaluate (it builds on the runner).
std::map<std::string, BuildPlacement> placeBuilds(nix::NixCli& nix, const RepoConfig& repo,
                                                  const std::string& flakeRef,
                                                  const std::vector<std::string>& hosts);

struct TargetBuildJob {
  std::string host;
  std::string drvPath;  // evaluated on the runner, valid in its store
  std::string outPath;  // the toplevel's out path (from the derivation)
  BuildPlacement placement;
};

class TargetBuilds {
 public:
  // `procs` and `ssh` must outlive this object. `settings.knownHosts` unset: every build fails
  // with that reason (target host keys are pinned, never trusted on first use).
  TargetBuilds(ProcessRunner& procs, ssh::Connector& ssh, SshConfig settings, const Clock& clock)
      : procs_(procs), ssh_(ssh), settings_(std::move(settings)), clock_(clock) {}

  // Copies the derivation's closure to the target, realises it there (bounded by `timeout`;
  // 0: none) and returns the host's result: Built with the out path, or Failed with the
  // reason (an unreachable target says so after the connect timeout, it never hangs).
  // `line` receives every line for the host's log (notes start with "# "); it is called on
  // this thread. Never throws for a failed build; throws SysError only when nix cannot start.
  HostBuildResult build(const TargetBuildJob& job, std::chrono::milliseconds timeout,
                        const std::function<void(std::string_view)>& line) const;

  // The GC root the target keeps for the host's last build:
  // /nix/var/nix/gcroots/per-user/<user>/switchyard-<host>.
  static std::string remoteGcRoot(const Target& target, const std::string& host);

 private:
  ProcessRunner& procs_;
  ssh::Connector& ssh_;
  SshConfig settings_;
  const Clock& clock_;
};

}  // namespace runner::build
