// The scheduler (DESIGN.md §1, §8): turns stored deliveries into runs and drives each run
// through plan → build (→ deploy), persisting every state change and telling the
// RunReporter about it.
//
// Two kinds of threads:
//  * the dispatcher takes queued deliveries in order and applies the rules below, each in ONE
//    transaction with the delivery's final state, so a delivery is turned into at most one
//    run even across crashes;
//  * run workers claim queued runs (never two runs of the same repo+ref at once, so pushes to
//    a branch deploy in order) and execute them.
//
// Rules (decide() in rules.h carries them out; table-tested in tests/runner/scheduler):
//  * push to a deploy branch (RepoConfig::deployBranches) -> deploy run; a push elsewhere is
//    ignored (pull requests build branches). The new run supersedes the QUEUED runs of the
//    same repo+ref (state superseded, superseded_by = the new run).
//  * pull request opened / synchronized / reopened -> check run of its head (plan + build;
//    never deploys; a fork's too), superseding queued runs of the same PR.
//  * pull request closed / merged -> its queued runs are superseded (nothing new; the merge's
//    own push event makes the deploy run).
//  * "/switchyard rerun [host…]" and GitHub check_run / check_suite rerequested go through
//    the re-run gateway first (runner/report: write access, the PR's head, replies on the
//    forge) — called OUTSIDE any transaction, since it may ask the forge; a gateway that
//    cannot answer now (forge down) leaves the delivery queued and it is asked again later.
//    Accepted -> a rerun of the named run (or the PR's / commit's newest run with that
//    commit; a PR without one gets a new check run), limited to the hosts/stage asked for.
//    A forge's re-run of a named run is refused unless that run is of the event's repository
//    and (when the event names one) commit.
//  * CLI and UI re-runs (authenticated by the daemon) -> a rerun of the named run; a UI roll
//    back -> a forced rerun of the run that deployed the host's previous system, that host
//    only; a UI cancel -> a queued run ends `cancelled`, a running one skips the stages and
//    hosts it has not started (a host being deployed finishes, or rolls back).
//  * a rerun deploys only when its commit is on a deploy branch of a non-fork push run.
//  * plan base: push -> the last successfully deployed sha of the branch when it is an
//    ancestor of the new commit, else `before`; pull request -> its base sha; none -> every
//    host is affected.
//
// Several runners on one database (issue 16): each Scheduler is a runner with an id and a
// lease (store/runners.h) its heartbeat thread renews every third of the lease; it claims runs
// in its name. A run whose runner's lease expired (the runner was killed, lost its machine or
// the database) is recovered as below by whichever live runner's heartbeat sees it first —
// never a live runner's run. A runner whose run was taken over meanwhile does not record that
// run's end (the run is the other runner's now).
//
// Restart recovery (start(), and every heartbeat for other runners' runs): runs left
// `running` by a dead runner get their unfinished hosts marked
// interrupted and are queued again (plan and build are re-run; a host interrupted during its
// deploy is first asked over SSH what it runs — if it already runs the target, that counts
// as deployed). A run interrupted `maxAttempts` times ends as interrupted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/event.h"
#include "runner/core/log.h"
#include "runner/core/run.h"
#include "runner/core/stages.h"
#include "runner/core/thread_annotations.h"
#include "runner/report/gateway.h"
#include "runner/scheduler/mirrors.h"
#include "runner/scheduler/rules.h"
#include "runner/store/approvals.h"
#include "runner/store/database.h"
#include "runner/store/deliveries.h"
#include "runner/store/runners.h"
#include "runner/store/runs.h"

namespace runner::scheduler {

struct SchedulerOptions {
  std::filesystem::path stateDir;  // logs/, gcroots/, mirrors/
  int runWorkers = 3;              // runs executed at once (stages have their own limits)
  std::chrono::milliseconds poll{500};
  int maxAttempts = 3;  // starts of one run (1 + resumes after crashes)
  // The re-run gateway (runner/report's ForgeGateway::handle in the daemon) for comment
  // commands and forge re-run requests. Unset: those are refused ("no re-run gateway").
  std::function<report::GatewayDecision(const Event&)> gateway;
  // Shown every forge event before it is dispatched (the daemon: ForgeGateway::observe, so a
  // GitHub App learns the installation of a push or pull request from its delivery and
  // need not ask the API). Unset: nothing. Called on the dispatcher thread, outside any
  // transaction; must not throw.
  std::function<void(const Event&)> observe;
  // How long a delivery waits when the gateway says Retry without a time.
  std::chrono::seconds gatewayRetry{30};
  // Recording a run's end (its state and hosts) when the database fails (busy, disk full):
  // this many tries, `finishRetry`, 2×`finishRetry`, … apart; after that the run waits in a
  // list the workers retry on every poll, so it leaves `running` — and its branch can run
  // again — as soon as the database is back, not only after a restart.
  int finishAttempts = 3;
  std::chrono::milliseconds finishRetry{500};
  // Ignored deliveries are deleted this long after they were handled (checked hourly): a
  // GitHub App alone echoes every check-run update it makes back as an ignored delivery.
  std::chrono::hours keepIgnored{24 * 30};
  // This runner's id (store/runners.h; the daemon shares it with its host locks and outbox
  // sender); empty: a new one. Its lease lasts `runnerLease` and is renewed every third of it.
  std::string runnerId;
  std::chrono::milliseconds runnerLease{std::chrono::seconds(30)};
};

// What the scheduler uses; each must outlive it.
struct SchedulerPorts {
  const Config& config;
  store::Database& db;  // a connection for the scheduler's threads (guarded by Database)
  const Clock& clock;
  Logger& log;
  RunReporter& reporter;
  Mirrors& mirrors;
  PlanStage& planner;
  BuildStage& builder;
  DeployStage& deployer;
  const Redactor* redactor = nullptr;  // scrubs what the scheduler writes to logs; may be null
};

class Scheduler {
 public:
  Scheduler(SchedulerPorts ports, SchedulerOptions options);
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Restart recovery, then the dispatcher and the run workers. Throws StoreError.
  void start();
  // Stops taking new work and waits for the runs in progress to finish. Idempotent.
  void stop() noexcept;
  // New deliveries are in the database (intake's group commit calls this). Thread-safe.
  void wake() noexcept;

  // For tests (and start()): one step at a time on the calling thread.
  // Recovers runs left running by a dead runner (a previous process, or another runner
  // whose lease expired); returns how many.
  int recover();
  // Applies the rules to every queued delivery; returns how many it handled.
  int dispatchQueued();
  // Claims and executes one run; false when none could start.
  bool runNext();
  // This runner's id (store/runners.h).
  const std::string& runnerId() const { return runnerId_; }
  // For tests: the heartbeat stops as a killed runner's would, without ending the lease, so
  // it expires and other runners take over this one's runs and host locks. Runs in progress
  // here go on; their ends are not recorded once they were taken over.
  void stopHeartbeatForTest() noexcept;

 private:
  struct Created {
    std::vector<int64_t> queued;      // new runs
    std::vector<int64_t> superseded;  // runs that ended
  };
  struct Dispatched {
    // false: another runner sharing the database dispatched (or is dispatching) it
    bool claimed = true;
    Verdict verdict = Verdict::Ignore;  // Ignore: the delivery is "ignored", else "processed"
    std::string detail;
    Created created;
  };
  // A run's end as it is to be recorded: its state, error and every host (the in-memory
  // view, which is ahead of the database when writing a host failed).
  struct RunEnd {
    int64_t id = 0;
    RunState state = RunState::Failed;
    std::string error;
    std::vector<RunHostView> hosts;
  };
  // An event and, for gated re-runs, the gateway's decision (made before the transaction).
  struct Prepared {
    Event event;
    std::optional<report::GatewayDecision> decision;
  };
  // Parses the event and asks the gateway when it must; nullopt: ask again later (Retry).
  std::optional<Prepared> prepare(const store::DeliveryRecord& d);
  // Inside the caller's transaction: decide() (rules.h), then carryOut, then the delivery's
  // final state.
  Dispatched applyOne(const store::DeliveryRecord& d, const Prepared& p);
  // Writes what `decision` says (runs created and superseded, approvals, a plan base).
  Dispatched carryOut(const store::DeliveryRecord& d, const Decision& decision);
  // One delivery in its own transaction; returns false when it was deferred.
  bool dispatchOne(const store::DeliveryRecord& d, const Prepared& prepared);
  // A delivery that could not be handled: an event that cannot be read or is invalid
  // (InputError, JSON errors) fails for good; anything else (the database busy or full, the
  // gateway's outbox) may pass, so the delivery stays queued and is tried again later, each
  // time waiting twice as long. Returns true when it was marked failed.
  bool failOrDefer(const store::DeliveryRecord& d, const std::exception& e);
  void announce(const store::DeliveryRecord& d, const Dispatched& out);
  const RepoConfig* repoFor(const Event& e) const;
  // Executes a claimed run: its steps below, in order, then finishRun. A step that throws
  // fails the run (the job-runner boundary, STYLE.md P3).
  void execute(store::RunRecord run);
  struct RunWork;                  // one run's state between its steps (scheduler.cc)
  void prepareSource(RunWork& w);  // the mirror, the plan base, the log directory
  Plan planStep(RunWork& w);       // plan, store and report it
  void selectHosts(RunWork& w, const Plan& plan);  // which hosts this run builds
  void holdForkBuild(RunWork& w);  // a fork's build, by untrusted.build and approvals
  void buildStep(RunWork& w);
  void deployStep(RunWork& w);
  // Records `end` in one transaction (throws StoreError); false when the run is no longer
  // this runner's (another took it over after this one's lease expired): nothing is written.
  bool recordEnd(const RunEnd& end);
  // recover()'s first half: dead runners' runs (heartbeats repeat it; the unannounced
  // states are only the previous process's to tell). Returns how many it took over.
  int recoverOrphans();
  // Renews the lease (entering again if it had expired), then recovers dead runners' runs.
  void heartbeatLoop();
  void stopHeartbeat() noexcept;
  // Records `end`, retrying (SchedulerOptions::finishAttempts); when that fails the run goes
  // to unfinished_. Reports the finished run when it is recorded.
  void finishRun(RunEnd end);
  // One more try for every run in unfinished_ (worker threads, between runs).
  void retryUnfinished();
  // Tells the reporter how a run ended; best effort (logs what fails).
  void reportFinished(int64_t id);  // runFinished, then the run counts as announced
  void reportQueued(int64_t id);    // runQueued while it is queued, likewise
  // A run may have become claimable (queued, or a run of its ref ended): wakes the workers.
  void runsChanged() noexcept;
  // Why run `id` is to stop ("cancelled by …"), or nullopt. Thread-safe.
  std::optional<std::string> cancelRequest(int64_t id);
  void dispatcherLoop();
  void workerLoop();

  SchedulerPorts p_;
  SchedulerOptions o_;
  store::Deliveries deliveries_;
  store::Runs runs_;
  store::Approvals approvals_;
  store::Runners runners_;
  const std::string runnerId_;
  Mutex heartbeatMu_;
  std::condition_variable heartbeatWake_;
  bool heartbeatStop_ GUARDED_BY(heartbeatMu_) = false;
  std::thread heartbeat_;
  Mutex mu_;
  std::condition_variable wake_;
  bool pending_ GUARDED_BY(mu_) = false;      // deliveries to dispatch (wake())
  uint64_t runsChanged_ GUARDED_BY(mu_) = 0;  // bumped by runsChanged()
  // Running runs a person cancelled: id -> "cancelled by …" (in memory: a run resumed after
  // a restart is not cancelled any more).
  std::map<int64_t, std::string> cancelRequests_ GUARDED_BY(mu_);
  // Deliveries the gateway asked to retry: id -> not before, by Clock::steadyNow()
  // (dispatcher thread only).
  std::map<int64_t, std::chrono::steady_clock::time_point> deferred_;
  // Deliveries that failed for a reason that may pass: id -> failures in a row (same thread).
  std::map<int64_t, int> setbacks_;
  std::atomic<bool> stopping_{false};
  std::vector<std::thread> threads_;
  Mutex unfinishedMu_;
  std::vector<RunEnd> unfinished_ GUARDED_BY(unfinishedMu_);
};

// Whether a run of `repo` deploys: a run that is not a check, comes from no pull request or
// fork, is not limited to plan or build, and whose ref is one of the repo's deploy branches (a
// deploy or rerun of another branch only plans and builds).
bool runDeploys(const RunView& run, const RepoConfig& repo);

// Whose slots a run takes (slots.h): Deploy for runs that deploy, Fork for a fork's pull
// request, Check for the other pull request runs.
SlotClass slotClassOf(const RunView& run, const RepoConfig& repo);

// A RunReporter that writes runs' progress to the log; the daemon tees it with runner/report's
// forge reporter.
class LoggingRunReporter final : public RunReporter {
 public:
  explicit LoggingRunReporter(Logger& log) : log_(log) {}
  void runQueued(const RunView& run) override;
  void planned(const RunView& run, const Plan& plan) override;
  void hostChanged(const RunView& run, const RunHostView& host) override;
  void runFinished(const RunView& run, const std::vector<RunHostView>& hosts) override;

 private:
  Logger& log_;
};

}  // namespace runner::scheduler
