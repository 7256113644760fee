// Runs as the scheduler and the reporter see them (DESIGN.md §1, §3 `runs --json`): a run is
// one commit going through plan → build (→ deploy), for a push, a pull request or a re-run;
// each host of it has a stage and a state. The scheduler persists these (runner/store) and
// tells a RunReporter every change; the reporter turns them into forge statuses, check runs
// and the pull request comment (runner/report). Value types only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/core/plan.h"

namespace runner {

enum class RunKind { Check, Deploy, Rerun };
enum class RunTrigger { Push, PullRequest, Comment, Rerequest, Manual, Hook };
// Cancelled: a person stopped it (the web's Cancel); hosts not started are skipped.
enum class RunState { Queued, Running, Succeeded, Failed, Superseded, Interrupted, Cancelled };
enum class Stage { Plan, Build, Deploy };
enum class HostState {
  Pending,  // waiting for its stage
  Running,
  Succeeded,
  Failed,
  NotAffected,  // the plan says this host does not change
  Skipped,      // not run: an earlier failure with stop_on_failure, or a check run's deploy
  RolledBack,   // deployed, then rolled back by the watchdog (health check, no confirmation)
  Unreachable,
  Refused,  // host lock held elsewhere, an older commit, a changed host key
  Superseded,
  Interrupted,  // the runner stopped while this host was in flight
  Waiting,      // a fork's build waits for a writer's approval (`/switchyard approve`)
};

// What the external_id of a GitHub check run we create carries, so a check_run event names the
// run, stage and host to re-run: "run:<id>:<stage>:<host>", the host empty for the plan.
struct CheckRunKey {
  int64_t runId = 0;
  Stage stage = Stage::Plan;
  std::string host;
};
std::string toExternalId(const CheckRunKey& key);
// nullopt for any id we did not write: another app's check runs, a malformed id, a host that is
// not a host name.
std::optional<CheckRunKey> parseExternalId(std::string_view id);

const char* toString(RunKind k);
const char* toString(RunTrigger t);
const char* toString(RunState s);
const char* toString(Stage s);
const char* toString(HostState s);
// Parse the strings above; throw InputError for anything else.
RunKind runKindFrom(std::string_view s);
RunTrigger runTriggerFrom(std::string_view s);
RunState runStateFrom(std::string_view s);
Stage stageFrom(std::string_view s);
HostState hostStateFrom(std::string_view s);
// True when nothing will change this state any more.
bool isFinal(RunState s);
bool isFinal(HostState s);

struct RunView {
  int64_t id = 0;
  std::string repo;   // "owner/name"
  std::string forge;  // configured forge name; "" for hook/CLI repos
  RunKind kind = RunKind::Check;
  RunTrigger trigger = RunTrigger::Push;
  RunState state = RunState::Queued;
  std::string sha;
  std::string ref;      // "refs/heads/main", "refs/pull/7/head"
  std::string baseSha;  // what the plan compares against
  int64_t prNumber = 0;
  bool fromFork = false;
  std::vector<std::string> hostsFilter;  // re-runs: only these hosts (empty: all)
  std::optional<Stage> stageFilter;      // re-runs of one stage
  std::optional<int64_t> parentRunId;
  std::optional<int64_t> supersededBy;
  std::string error;
  int64_t createdAt = 0;  // unix ms
  std::optional<int64_t> startedAt;
  std::optional<int64_t> finishedAt;
  std::string url;  // the run page: <public_url>/runs/<id>
};

// When one stage or deploy step of a host ran (unix ms): "plan" (the run's evaluation, the
// same for every host), "build", "deploy", and the deploy's steps ("lock", "connect", "copy",
// "activate", "health", "confirm", …), in the order they started.
struct HostStepTime {
  std::string name;
  int64_t startedAt = 0;
  std::optional<int64_t> finishedAt;  // nullopt while it runs (or when the runner died in it)
  bool operator==(const HostStepTime&) const = default;
};

struct RunHostView {
  std::string host;
  Stage stage = Stage::Plan;
  HostState state = HostState::Pending;
  std::string summary;  // words: "built in 2m14s", "rolled back: health check failed"
  std::optional<std::string> drvPath;
  std::optional<std::string> outPath;
  std::optional<std::string> baseOutPath;  // the base commit's toplevel (closure diffs)
  std::optional<std::string> logPath;
  std::string logTail;  // the end of the log, for check-run output and comments
  std::optional<int64_t> startedAt;
  std::optional<int64_t> finishedAt;
  std::vector<HostStepTime> steps;
};

// What the scheduler tells the reporting stage. Implementations must not block for long
// (they queue forge calls in the outbox) and never throw for forge trouble.
class RunReporter {
 public:
  virtual ~RunReporter() = default;
  // A run was created (statuses go pending).
  virtual void runQueued(const RunView& run) = 0;
  // The plan is known: unaffected hosts are "not affected", the plan comment is written.
  virtual void planned(const RunView& run, const Plan& plan) = 0;
  // A host changed stage or state.
  virtual void hostChanged(const RunView& run, const RunHostView& host) = 0;
  // The run ended (any final state).
  virtual void runFinished(const RunView& run, const std::vector<RunHostView>& hosts) = 0;
};

}  // namespace runner
