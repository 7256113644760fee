// The build stage (core/stages.h) with the real builder: drvPaths the plan did not know are
// evaluated (in an evaluation slot), then one nix build for the hosts (in a build slot), with
// per-host logs and GC roots. Hosts placed on their targets (target_builds.h; trusted runs
// only) are built there at the same time, one connection per host. The daemon's scheduler and
// `switchyard build` / `deploy` drive it.
//
// Thread-safe: several runs call it at once.
#pragma once

#include <string>
#include <vector>

#include "runner/build/builder.h"
#include "runner/build/remote_builders.h"
#include "runner/build/target_builds.h"
#include "runner/core/clock.h"
#include "runner/core/slots.h"
#include "runner/core/stages.h"
#include "runner/nix/nix_cli.h"
#include "runner/nix/untrusted_nix.h"

namespace runner::build {

class NixBuildStage final : public BuildStage {
 public:
  // `nix`, the parts of `untrusted`, `evals`, `builds`, and `clock` must outlive it.
  // `redactor` (may be null) scrubs the build logs. `remote` (may be null; must outlive it):
  // the remote builders and local job limit of trusted builds (never of forks' builds).
  // `onTarget` (may be null; must outlive it): builds on the deploy targets for hosts placed
  // there (target_builds.h); null: every host builds here.
  NixBuildStage(nix::NixCli& nix, nix::UntrustedNix untrusted, const Clock& clock,
                PrioritySlots& builds, PrioritySlots& evals, const Redactor* redactor = nullptr,
                const RemoteBuilders* remote = nullptr, const TargetBuilds* onTarget = nullptr)
      : nix_(nix),
        untrusted_(std::move(untrusted)),
        clock_(clock),
        builds_(builds),
        evals_(evals),
        redactor_(redactor),
        remote_(remote),
        onTarget_(onTarget) {}
  std::vector<BuildHostOutcome> build(const BuildInput& input, StageListener& listener) override;

  // The same build with each host's whole result, for callers that show more than the port's
  // outcome (the CLI). A host that does not evaluate is Failed with the message "does not
  // evaluate: …"; one the flake does not have is also listed in `missing`. `progress` (may be
  // null) receives the builder's progress as it comes (a terminal progress line).
  struct Result {
    BuildResult build;
    std::vector<std::string> missing;
  };
  Result buildHosts(const BuildInput& input, StageListener& listener,
                    BuildObserver* progress = nullptr);

 private:
  nix::NixCli& nix_;
  nix::UntrustedNix untrusted_;
  const Clock& clock_;
  PrioritySlots& builds_;
  PrioritySlots& evals_;
  const Redactor* redactor_;
  const RemoteBuilders* remote_;
  const TargetBuilds* onTarget_;
};

}  // namespace runner::build
