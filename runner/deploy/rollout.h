// Rollout policy (DESIGN.md §6, issue 5): canary hosts first, one at a time, then the rest
// with at most max_parallel at once; with stop_on_failure, the first failed, rolled-back
// or refused host stops the rollout (an unreachable one does not: nothing was changed on it) —
// hosts not yet started are reported as skipped, hosts already running finish. Independent of how
// one host is deployed: it drives any HostDeployer.
#pragma once

#include <vector>

#include "runner/core/config.h"
#include "runner/deploy/deploy.h"

namespace runner::deploy {

struct RolloutPlan {
  std::vector<HostJob> canaries;  // in the order the configuration names them
  std::vector<HostJob> rest;      // in the order given
};

// Splits `jobs` into canaries (hosts named in config.canary, in that order; names not among
// the jobs are ignored) and the rest (in job order). Pure.
RolloutPlan planRollout(const std::vector<HostJob>& jobs, const RolloutConfig& config);

// Runs the rollout and returns one outcome per job, canaries first, then the rest in job
// order. Calls observer.hostFinished once per host (also for skipped hosts), from the thread
// that deployed it. A deployer that throws is caught here (the per-host job boundary): that
// host is reported Failed with the error's description. Dry runs never stop early.
// Blocks until every started host has finished.
std::vector<HostOutcome> runRollout(const std::vector<HostJob>& jobs, const DeployRequest& request,
                                    const RolloutConfig& config, HostDeployer& deployer,
                                    DeployObserver& observer);

}  // namespace runner::deploy
