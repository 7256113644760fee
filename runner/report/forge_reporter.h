// The RunReporter the scheduler tells about every run and host change (core/run.h),
// turning them into forge calls queued in the outbox (calls.h) — never calling a forge
// itself, so it is quick and a forge outage cannot slow a run down:
//
//  * commit statuses (Gitea, Forgejo, GitHub with a token): "switchyard/plan" pending when
//    the run is queued and "3 of 5 machines affected" when planned; per host
//    "switchyard/build/<host>" (and "switchyard/deploy/<host>" on deploy runs) — pending
//    when planned, pending "building" when it starts, then its final state in words
//    (mapping.h); unaffected hosts get success "not affected" so branch protection can
//    require any host's check. target_url is the run page (RunView::url).
//  * check runs instead, when the forge can (a GitHub App): one per stage and host with the
//    same names, external_id "run:<id>:<stage>:<host>", a markdown summary (the plan table;
//    the end of the log for a failure) and a "Re-run" button on hosts that did not succeed.
//  * the pull request comment (pull request runs): written when planned and when the run
//    finishes, with closure diffs rendered when it is sent (comment.h).
//
// Progress updates (a Running host whose summary says "3/12 derivations") do not make new
// calls: pending states are reported in fixed words ("building"), and a repeat of what is
// pending or sent is dropped; a host's own summary is used for its final state. Hosts in
// flight during the plan stage make no calls (switchyard/plan is pending); a host that ends
// at the plan stage (it does not evaluate) is reported on its build context.
//
// Bounded calls per commit: with N hosts of which A are affected, a run costs at most
// 2 (plan) + (3A + (N−A)) per stage in statuses or check-run calls, and 2 comment upserts;
// with more than `progressHostLimit` affected hosts only final states are reported:
// 2 + N per stage. Above the forge's fold_statuses_above hosts, the N − A unaffected hosts
// make no calls at all (they are counted in switchyard/plan's description): 2 + 3A per stage
// at most, so a fleet of hundreds stays under GitHub's secondary limit (about 500
// content-creating calls an hour) when a push touches a few hosts. The outbox drops repeats of what
// is pending or sent, and a burst of changes to one context leaves only the newest to send.
//
// Transactions: every method writes outbox rows with Database::transaction, which joins the
// caller's transaction when the caller (the scheduler) is inside one on the same Database —
// so a run's state change and the forge calls it causes commit together or not at all.
//
// Thread-safe. Methods throw StoreError when the outbox cannot be written (so the caller's
// transaction rolls back too); nothing a forge does can make them throw.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>

#include "runner/core/clock.h"
#include "runner/core/log.h"
#include "runner/core/run.h"
#include "runner/core/thread_annotations.h"
#include "runner/report/calls.h"
#include "runner/report/templates.h"
#include "runner/store/database.h"
#include "runner/store/outbox.h"

namespace runner::report {

struct ReporterOptions {
  // Runs with more affected hosts than this report each host's final state only.
  size_t progressHostLimit = 20;
  // Called after rows were queued (e.g. [&] { sender.wake(); }); must be quick and not throw.
  std::function<void()> onEnqueued;
  // Whether a run has a deploy stage (deploy contexts are reported for it). Default:
  // mapping.h's runDeploys(run); the daemon passes the scheduler's rule, which also checks
  // the repository's deploy branches.
  std::function<bool(const RunView&)> runDeploys;
  // Per forge name: runs whose plan has more hosts than this (ForgeConfig::foldStatusesAbove)
  // report unaffected hosts in switchyard/plan only — no status or check run per such host
  // and stage — and the plan's description says so. Missing or 0: never fold.
  std::map<std::string, size_t> foldStatusesAbove;
};

class ForgeReporter final : public RunReporter {
 public:
  // `db`, the Forge objects in `forges`, `templates`, `clock` and `log` must outlive this object.
  // Runs whose forge is "" (git hook / CLI repositories) or not in `forges` report nothing.
  ForgeReporter(store::Database& db, const Forges& forges, const Templates& templates, Clock& clock,
                Logger& log, ReporterOptions options = {});

  void runQueued(const RunView& run) override;
  void planned(const RunView& run, const Plan& plan) override;
  void hostChanged(const RunView& run, const RunHostView& host) override;
  void runFinished(const RunView& run, const std::vector<RunHostView>& hosts) override;

 private:
  struct Memo {
    std::optional<Plan> plan;
    bool progress = true;  // report pending/running states, not only final ones
    bool fold = false;     // unaffected hosts are reported in switchyard/plan only
  };
  struct Target {
    Forge* forge = nullptr;
    bool checkRuns = false;
    size_t maxDescription = 0;
  };

  std::optional<Target> targetFor(const RunView& run);
  bool progressFor(const RunView& run);
  // Whether a run over `hosts` hosts folds its unaffected ones, and the threshold.
  std::optional<size_t> foldThreshold(const RunView& run, size_t hosts) const;
  bool foldedFor(const RunView& run, size_t hosts);
  bool deploys(const RunView& run) const;
  std::vector<Stage> hostStages(const RunView& run) const;
  // Queues the status or check run of `host` in `stage`; returns true when a row was added.
  bool emit(const Target& t, const RunView& run, Stage stage, const RunHostView& host,
            const Plan* plan);
  // A host's final state, and what it means for the deploy context of a deploy run.
  bool emitFinal(const Target& t, const RunView& run, const RunHostView& host);
  bool emitComment(const Target& t, const RunView& run, const Plan* plan,
                   const std::vector<RunHostView>& hosts);
  void notify(bool added);

  store::Database& db_;
  store::Outbox outbox_;
  Forges forges_;
  const Templates& templates_;
  Clock& clock_;
  Logger& log_;
  ReporterOptions options_;
  Mutex mu_;
  std::map<int64_t, Memo> memos_ GUARDED_BY(mu_);
  std::set<std::string> warnedForges_ GUARDED_BY(mu_);
};

}  // namespace runner::report
