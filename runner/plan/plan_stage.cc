#include "runner/plan/plan_stage.h"

#include <optional>

#include "runner/core/error.h"
#include "runner/git/repository.h"
#include "runner/plan/exact_planner.h"
#include "runner/plan/plan_format.h"
#include "runner/plan/static_planner.h"

namespace runner::plan {

namespace {

// The cache as a fork's evaluation may use it: it reads what trusted evaluations cached (the
// same tree evaluates to the same drvPath) and its own entries, and writes only its own — a
// fork's answers never reach a trusted plan.
class UntrustedDrvCache final : public DrvPathCache {
 public:
  explicit UntrustedDrvCache(DrvPathCache& inner) : inner_(inner) {}
  std::optional<std::string> get(const std::string& tree, const std::string& host) override {
    if (auto own = inner_.get(kPrefix + tree, host)) return own;
    return inner_.get(tree, host);
  }
  void put(const std::string& tree, const std::string& host, const std::string& drv) override {
    inner_.put(kPrefix + tree, host, drv);
  }

 private:
  static constexpr const char* kPrefix = "untrusted:";
  DrvPathCache& inner_;
};

}  // namespace

Plan NixPlanStage::plan(const PlanInput& in) {
  PrioritySlots::Held slot(evals_, in.priority);
  auto repo = git::Repository::open(in.gitDir);
  StaticOptions so;
  so.repoLabel = in.repo->name;
  so.hosts = in.repo->hosts;
  PlanMode mode = in.repo->detection;
  if (in.untrusted && !in.repo->untrusted.evaluate) mode = PlanMode::Static;
  ExactOptions eo;
  eo.repoLabel = so.repoLabel;
  eo.hosts = so.hosts;
  eo.evalWorkers = evalWorkers_;
  eo.cache = cache_;
  eo.log = &log_;
  std::optional<UntrustedDrvCache> forkCache;
  // The Nix that evaluates this commit: a fork's code only in the jail.
  auto nixFor = [&]() -> nix::NixCli& {
    if (!in.untrusted) return nix_;
    nix::NixCli& jail = untrusted_.jailOrThrow();
    if (cache_ && !forkCache) eo.cache = &forkCache.emplace(*cache_);
    // The pull request's commit is checked against its base's lock; the base is trusted.
    eo.flakeRefFor = [&](const std::string& sha) {
      return untrusted_.sources->flakeRef(*in.repo, in.gitDir, sha,
                                          sha == in.to ? in.from : std::nullopt);
    };
    return jail;
  };
  Plan p;
  if (!in.from) {
    // No base commit (a new branch, nothing deployed yet): every host is affected. The hosts
    // come from static discovery, or from Nix when that fails (and the mode allows Nix).
    try {
      p = planStatic(*repo, in.to, in.to, so);
    } catch (const PlanError&) {
      if (mode == PlanMode::Static) throw;
    }
    if (mode != PlanMode::Static && (p.hosts.empty() || !p.discoveryError.empty()))
      p = planExact(*repo, nixFor(), in.to, in.to, eo);
    p.from = "";
    for (auto& h : p.hosts) {
      h.affected = true;
      h.reasons = {Reason{ReasonKind::Global, "", "", "no base commit to compare with"}};
    }
    return p;
  }
  switch (mode) {
    case PlanMode::Static:
      p = planStatic(*repo, *in.from, in.to, so);
      break;
    case PlanMode::Exact:
      p = planExact(*repo, nixFor(), *in.from, in.to, eo);
      break;
    case PlanMode::Auto:
      p = planAuto(*repo, nixFor(), *in.from, in.to, so, eo);
      break;
  }
  if (in.repo->skipSelfRevisionOnly) dropSelfRevisionOnly(p);
  return p;
}

}  // namespace runner::plan
