// The scheduler's rules (scheduler.h "Rules") as one function without side effects: what a
// delivery's event turns into, given the repository it names, the re-run gateway's answer
// and read-only answers about the runs there are. decide() writes nothing; the scheduler
// carries a Decision out in the delivery's transaction (Scheduler::applyOne). Table-tested
// in tests/runner/scheduler/rules_test.cc.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runner/core/config.h"
#include "runner/core/event.h"
#include "runner/core/run.h"
#include "runner/report/gateway.h"
#include "runner/store/runs.h"

namespace runner::scheduler {

// The questions decide() asks about existing runs. The scheduler answers from store::Runs
// (inside the delivery's transaction); tests answer from a table. Each returns nullopt when
// there is no such run.
class RunLookup {
 public:
  virtual ~RunLookup() = default;
  virtual std::optional<RunView> run(int64_t id) = 0;
  // The newest run of `kind` for (forge, repo, ref); `forge` is "" for repos without one.
  virtual std::optional<RunView> latestForRef(const std::string& forge, const std::string& repo,
                                              const std::string& ref, RunKind kind) = 0;
  virtual std::optional<RunView> latestForPullRequest(const std::string& forge,
                                                      const std::string& repo, int64_t pr) = 0;
  virtual std::optional<RunView> latestForSha(const std::string& forge, const std::string& repo,
                                              const std::string& sha) = 0;
};

enum class Verdict {
  Ignore,           // nothing starts; `reason` says why (the delivery is stored as ignored)
  StartRun,         // a new queued run, `run`
  SupersedeQueued,  // the queued runs of `forge`/`repo`/`ref` end (a pull request closed or merged)
  CancelRun,        // a person cancels run `cancelRun`; `reason` says who
};

// Who approved which commit of a fork's pull request (store::Approvals).
struct Approval {
  std::string forge, repo, sha;
  int64_t prNumber = 0;
  std::string by;
};

struct Decision {
  Verdict verdict = Verdict::Ignore;
  // Ignore: why. SupersedeQueued: why, also the superseded runs' reason.
  std::string reason;

  // StartRun: the run (its delivery is the caller's to set).
  store::NewRun run;
  // StartRun: the queued runs of run.repo/run.ref are superseded by the new one.
  bool supersedeRef = false;
  // StartRun of a push: when runs were superseded, the new run plans from where the oldest of
  // them would have started (their changes were never deployed).
  bool planFromSuperseded = false;
  std::string note;                  // StartRun: appended to the delivery's detail
  std::optional<Approval> approval;  // recorded with the decision

  // Ignore of a push older than the queued run that includes it: that run plans from here
  // (run id, base sha).
  std::optional<std::pair<int64_t, std::string>> rebase;

  // SupersedeQueued: whose queued runs end (forge "" for repos without one).
  std::string forge, repo, ref;

  // CancelRun: the run (queued: it ends now; running: it stops before its next host/stage).
  int64_t cancelRun = 0;
};

// `repo`: the configured repository the event is about (Scheduler::repoFor), or null.
// `gate`: the re-run gateway's answer for comment commands and forge re-runs (nullopt for
// every other event; a gated event without one is refused). Never throws for what the event
// says; lookups may throw StoreError.
Decision decide(const Event& e, const std::optional<report::GatewayDecision>& gate,
                const RepoConfig* repo, RunLookup& runs);

// "refs/pull/<n>/head"
std::string pullRequestRef(int64_t number);

}  // namespace runner::scheduler
