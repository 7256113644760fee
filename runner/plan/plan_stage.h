// The plan stage (core/stages.h) with the real planner: static / exact / auto (DESIGN.md §5)
// over the repository at PlanInput::gitDir, in evaluation slots shared with the build stage.
// The daemon's scheduler and `switchyard build` drive it.
//
// Thread-safe: several runs call it at once.
#pragma once

#include "runner/core/drv_cache.h"
#include "runner/core/log.h"
#include "runner/core/slots.h"
#include "runner/core/stages.h"
#include "runner/nix/nix_cli.h"
#include "runner/nix/untrusted_nix.h"

namespace runner::plan {

class NixPlanStage final : public PlanStage {
 public:
  // `nix`, the parts of `untrusted`, `evals` (shared with the build stage), `log` and `cache`
  // (may be null) must outlive this object. `evalWorkers`: nix processes one plan may run.
  NixPlanStage(nix::NixCli& nix, nix::UntrustedNix untrusted, PrioritySlots& evals,
               DrvPathCache* cache, int evalWorkers, Logger& log)
      : nix_(nix),
        untrusted_(std::move(untrusted)),
        cache_(cache),
        evals_(evals),
        evalWorkers_(evalWorkers),
        log_(log) {}
  Plan plan(const PlanInput& input) override;

 private:
  nix::NixCli& nix_;
  nix::UntrustedNix untrusted_;
  DrvPathCache* cache_;
  PrioritySlots& evals_;
  int evalWorkers_;
  Logger& log_;
};

}  // namespace runner::plan
