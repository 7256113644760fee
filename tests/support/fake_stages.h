// Stages that answer at once, for tests and benches of what surrounds them (intake, scheduler,
// reporter, forge calls): a plan over fixed hosts, builds that succeed except for the hosts
// named to fail, deploys that succeed. Nothing here runs Nix or SSH.
#pragma once

#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runner/core/stages.h"

namespace tests {

// Plans `hosts`; those in `affected` are affected by a change of hosts/<name>.nix.
class FixedPlanStage final : public runner::PlanStage {
 public:
  FixedPlanStage(std::vector<std::string> hosts, std::set<std::string> affected)
      : hosts_(std::move(hosts)), affected_(std::move(affected)) {}
  runner::Plan plan(const runner::PlanInput& in) override {
    runner::Plan p;
    p.from = in.from.value_or("");
    p.to = in.to;
    for (const auto& h : hosts_) {
      runner::HostPlan hp;
      hp.name = h;
      hp.affected = affected_.count(h) > 0;
      if (hp.affected)
        hp.reasons = {runner::Reason{runner::ReasonKind::File, "hosts/" + h + ".nix", "", ""}};
      p.hosts.push_back(hp);
    }
    return p;
  }

 private:
  std::vector<std::string> hosts_;
  std::set<std::string> affected_;
};

// Builds every host at once; the hosts in `failing` fail with a Nix-like builder error.
class FakeBuildStage final : public runner::BuildStage {
 public:
  explicit FakeBuildStage(std::set<std::string> failing = {}) : failing_(std::move(failing)) {}
  std::vector<runner::BuildHostOutcome> build(const runner::BuildInput& in,
                                              runner::StageListener&) override {
    std::vector<runner::BuildHostOutcome> out;
    for (const auto& h : in.hosts) {
      const bool ok = failing_.count(h.host) == 0;
      out.push_back(
          {h.host, ok, std::nullopt, "/nix/store/" + std::string(32, 'x') + "-" + h.host,
           ok ? "built in 1s" : "build failed: hello.drv",
           ok ? "" : "error: builder for '/nix/store/x-hello.drv' failed with exit code 1"});
    }
    return out;
  }

 private:
  std::set<std::string> failing_;
};

// Deploys every host at once, successfully.
class OkDeployStage final : public runner::DeployStage {
 public:
  std::vector<runner::DeployHostOutcome> deploy(const runner::DeployInput& in,
                                                runner::StageListener&) override {
    std::vector<runner::DeployHostOutcome> out;
    for (const auto& h : in.hosts)
      out.push_back({h.host, runner::HostState::Succeeded, "deployed"});
    return out;
  }
};

}  // namespace tests
