// Runs and their hosts in the database (tables `runs` and `run_hosts`): what the scheduler
// persists on every state change, and what `switchyard runs`, the web UI and the JSON API
// read. Values in and out are runner::RunView / RunHostView (core/run.h); the plan is kept
// as its JSON.
//
// Threading: like Database — share one per connection; every method is one statement or
// one transaction, and methods called inside Database::transaction join it.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/run.h"
#include "runner/store/database.h"

namespace runner::store {

// A run as stored: the view plus what only the scheduler needs.
struct RunRecord {
  RunView view;
  std::optional<int64_t> delivery;  // the deliveries row that made it
  bool forced = false;              // may deploy a commit that is not a descendant
  int attempts = 0;                 // times it was started (1 + resumes after restarts)
  std::optional<std::string> planJson;
  std::string runner;  // the runner (runners.h) that claimed it last; "" for none
};

struct NewRun {
  std::optional<int64_t> delivery;
  std::string repo;
  std::string forge;
  RunKind kind = RunKind::Check;
  RunTrigger trigger = RunTrigger::Push;
  std::string sha;
  std::string ref;
  std::string baseSha;
  int64_t prNumber = 0;
  bool fromFork = false;
  std::vector<std::string> hostsFilter;
  std::optional<Stage> stageFilter;
  std::optional<int64_t> parentRun;
  bool forced = false;
};

class Runs {
 public:
  // `publicUrl` is the base of RunView::url ("<publicUrl>/runs/<id>").
  Runs(Database& db, const Clock& clock, std::string publicUrl = "")
      : db_(db), clock_(clock), publicUrl_(std::move(publicUrl)) {}

  // Inserts a queued run; returns its id. Throws StoreError.
  int64_t create(const NewRun& run);
  std::optional<RunRecord> get(int64_t id);
  // Newest first; `offset` rows skipped.
  std::vector<RunRecord> list(int limit, int offset = 0);
  std::vector<RunRecord> inState(RunState state);
  // The run made from a delivery, if any.
  std::optional<RunRecord> byDelivery(int64_t deliveryId);

  // A repository is (forge, repo): `forge` is the configured forge's name, "" for repos
  // without one (issue 17). Queries by repository match both.

  // Marks every QUEUED run of (forge, repo, ref) other than `except` superseded, with
  // superseded_by = `by` (nullopt for "the pull request was closed") and `why` as its error.
  // Returns the ids it changed, oldest first.
  std::vector<int64_t> supersedeQueued(const std::string& forge, const std::string& repo,
                                       const std::string& ref, std::optional<int64_t> by,
                                       int64_t except, const std::string& why);
  // Takes the oldest queued run whose (forge, repo, ref) has no running run, marks it running
  // (started_at, attempts + 1) and returns it; nullopt when none can start. One transaction.
  // Runs that may deploy (kind deploy, or a re-run of no pull request) are claimed first, and
  // a pull request's run only while fewer than `maxRunningChecks` of those run: the workers
  // left are kept for deploys.
  // `runner` (runners.h) is recorded as the run's executor ("" for none).
  std::optional<RunRecord> claimNext(int maxRunningChecks = 1 << 30,
                                     const std::string& runner = "");

  // Running runs whose runner is not `self` and holds no live lease (its lease expired or
  // ended, its process on this machine is gone, or the run names no runner), oldest first:
  // what restart recovery takes over. Never a live runner's run.
  std::vector<RunRecord> orphaned(const std::string& self);
  // Makes `to` the runner of running run `id` if `from` still is ("" for none); false when
  // the run ended or another runner adopted it first (then it is not this caller's).
  bool adopt(int64_t id, const std::string& from, const std::string& to);
  // Whether run `id` is running and claimed by `runner` (not taken over since).
  bool isRunBy(int64_t id, const std::string& runner);

  // Sets the state (and finished_at for final states; error when non-empty).
  void setState(int64_t id, RunState state, const std::string& error = "");
  // Ends a QUEUED run as cancelled (finished_at, `why` as its error); false when it is not
  // queued (any more).
  bool cancelQueued(int64_t id, const std::string& why);
  // Keeps a person's request to stop a RUNNING run (`why`: "cancelled by …"), so it outlives
  // the process running it; false when the run is not running. Throws StoreError.
  bool requestCancel(int64_t id, const std::string& why);
  // The stop request of run `id`, or nullopt.
  std::optional<std::string> cancelRequest(int64_t id);
  // Puts a run back in the queue (restart recovery), without a runner; keeps attempts.
  void requeue(int64_t id, const std::string& note);
  void setPlan(int64_t id, const std::string& baseSha, const std::string& planJson);
  // Sets the base the plan will compare against (before planning).
  void setBaseSha(int64_t id, const std::string& baseSha);

  // Inserts or replaces one host's row.
  void putHost(int64_t id, const RunHostView& host);
  // The same while run `id` is run by `runner` (isRunBy), in one transaction; false, writing
  // nothing, when another runner took the run over (issue 16).
  bool putHostAs(int64_t id, const RunHostView& host, const std::string& runner);
  std::vector<RunHostView> hosts(int64_t id);
  std::optional<RunHostView> host(int64_t id, const std::string& name);

  // The newest run of a pull request (any kind), of a commit, and the sha of the newest
  // SUCCEEDED deploy (or deploy rerun) of (forge, repo, ref).
  std::optional<RunRecord> latestForPullRequest(const std::string& forge, const std::string& repo,
                                                int64_t prNumber);
  std::optional<RunRecord> latestForSha(const std::string& forge, const std::string& repo,
                                        const std::string& sha);
  // The reporter was told that the run is in `state` (queued, or its final state).
  void markAnnounced(int64_t id, RunState state);
  // Runs queued or ended whose state the reporter was not told yet, oldest first.
  std::vector<RunRecord> unannounced();
  // The newest run of `kind` on (forge, repo, ref), in any state.
  std::optional<RunRecord> latestForRef(const std::string& forge, const std::string& repo,
                                        const std::string& ref, RunKind kind);
  std::optional<std::string> lastDeployedSha(const std::string& forge, const std::string& repo,
                                             const std::string& ref);

  // state -> count (for /metrics).
  std::map<std::string, int64_t> countByState();

  const std::string& publicUrl() const { return publicUrl_; }

 private:
  std::vector<RunRecord> select(const std::string& where, const std::vector<SqlValue>& params);
  Database& db_;
  const Clock& clock_;
  std::string publicUrl_;
};

}  // namespace runner::store
