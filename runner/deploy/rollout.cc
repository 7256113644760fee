#include "runner/deploy/rollout.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <thread>

#include "runner/core/error.h"
#include "runner/core/thread_annotations.h"

namespace runner::deploy {

RolloutPlan planRollout(const std::vector<HostJob>& jobs, const RolloutConfig& config) {
  RolloutPlan plan;
  std::vector<bool> taken(jobs.size(), false);
  for (const auto& name : config.canary) {
    for (size_t i = 0; i < jobs.size(); ++i) {
      if (!taken[i] && jobs[i].host == name) {
        plan.canaries.push_back(jobs[i]);
        taken[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < jobs.size(); ++i)
    if (!taken[i]) plan.rest.push_back(jobs[i]);
  return plan;
}

namespace {

class Rollout {
 public:
  Rollout(const DeployRequest& request, const RolloutConfig& config, HostDeployer& deployer,
          DeployObserver& observer)
      : request_(request), config_(config), deployer_(deployer), observer_(observer) {}

  // Deploys `job` unless the rollout has stopped; returns its outcome.
  HostOutcome one(const HostJob& job) {
    HostOutcome out;
    std::string stoppedBy;
    {
      MutexLock lk(mu_);
      stoppedBy = stoppedBy_;
    }
    std::optional<std::string> stopRequested;
    if (request_.stopRequested) stopRequested = request_.stopRequested();
    if (stopRequested) {
      out.host = job.host;
      out.storePath = job.storePath;
      out.result = HostResult::Skipped;
      out.reason = "not started: the run was " + *stopRequested;
    } else if (!stoppedBy.empty()) {
      out.host = job.host;
      out.storePath = job.storePath;
      out.result = HostResult::Skipped;
      out.reason = "not started: the rollout stopped after " + stoppedBy;
    } else {
      try {
        out = deployer_.deploy(job, request_, observer_);
      } catch (const std::exception& e) {
        out = HostOutcome{};
        out.host = job.host;
        out.storePath = job.storePath;
        out.result = HostResult::Failed;
        out.reason = "internal error: " + describe(e);
      }
      // An unreachable host was not touched and says nothing about the new configuration:
      // the others go on (it is reported `unreachable`, apart from failed deploys).
      if (config_.stopOnFailure && !request_.dryRun && isFailure(out.result) &&
          out.result != HostResult::Unreachable) {
        MutexLock lk(mu_);
        if (stoppedBy_.empty()) stoppedBy_ = out.host + " " + resultLabel(out.result);
      }
    }
    observer_.hostFinished(out);
    return out;
  }

 private:
  const DeployRequest& request_;
  const RolloutConfig& config_;
  HostDeployer& deployer_;
  DeployObserver& observer_;
  Mutex mu_;
  std::string stoppedBy_ GUARDED_BY(mu_);  // "web1 rolled back" once the rollout stopped
};

}  // namespace

std::vector<HostOutcome> runRollout(const std::vector<HostJob>& jobs, const DeployRequest& request,
                                    const RolloutConfig& config, HostDeployer& deployer,
                                    DeployObserver& observer) {
  RolloutPlan plan = planRollout(jobs, config);
  Rollout rollout(request, config, deployer, observer);
  std::vector<HostOutcome> outcomes;
  outcomes.reserve(jobs.size());
  for (const auto& job : plan.canaries) outcomes.push_back(rollout.one(job));

  std::vector<HostOutcome> rest(plan.rest.size());
  size_t workers = std::min<size_t>(std::max(1, config.maxParallel), plan.rest.size());
  std::mutex mu;
  size_t next = 0;
  auto work = [&] {
    for (;;) {
      size_t i;
      {
        std::lock_guard lk(mu);
        if (next >= plan.rest.size()) return;
        i = next++;
      }
      rest[i] = rollout.one(plan.rest[i]);
    }
  };
  if (workers <= 1) {
    work();
  } else {
    std::vector<std::thread> threads;
    for (size_t w = 0; w < workers; ++w) threads.emplace_back(work);
    for (auto& t : threads) t.join();
  }
  for (auto& o : rest) outcomes.push_back(std::move(o));
  return outcomes;
}

}  // namespace runner::deploy
