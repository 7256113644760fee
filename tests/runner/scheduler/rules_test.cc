// decide() (runner/scheduler/rules.h): the scheduler's rules as a table — an event, the runs
// there are and the gateway's answer in, a Decision out. Nothing is written anywhere; the
// scheduler tests (scheduler_test.cc) check that decisions are carried out.
#include "runner/scheduler/rules.h"

#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

using namespace runner;
using runner::scheduler::Decision;
using runner::scheduler::Verdict;

namespace {

const std::string kA(40, 'a'), kB(40, 'b'), kC(40, 'c'), kZero(40, '0');

// Runs as a list; each question is answered by scanning it (newest = highest id).
class TableLookup final : public scheduler::RunLookup {
 public:
  std::vector<RunView> runs;
  std::optional<RunView> run(int64_t id) override {
    return newest([&](const RunView& r) { return r.id == id; });
  }
  std::optional<RunView> latestForRef(const std::string& forge, const std::string& repo,
                                      const std::string& ref, RunKind kind) override {
    return newest([&](const RunView& r) {
      return r.forge == forge && r.repo == repo && r.ref == ref && r.kind == kind;
    });
  }
  std::optional<RunView> latestForPullRequest(const std::string& forge, const std::string& repo,
                                              int64_t pr) override {
    return newest(
        [&](const RunView& r) { return r.forge == forge && r.repo == repo && r.prNumber == pr; });
  }
  std::optional<RunView> latestForSha(const std::string& forge, const std::string& repo,
                                      const std::string& sha) override {
    return newest(
        [&](const RunView& r) { return r.forge == forge && r.repo == repo && r.sha == sha; });
  }

 private:
  template <class P>
  std::optional<RunView> newest(P p) {
    std::optional<RunView> out;
    for (const auto& r : runs)
      if (p(r) && (!out || r.id > out->id)) out = r;
    return out;
  }
};

RepoConfig repo() {
  RepoConfig r;
  r.forge = "home";
  r.name = "alice/infra";
  r.deployBranches = {"main"};
  return r;
}

RunView runView(int64_t id, RunKind kind, std::string ref, std::string sha, std::string base,
                RunState state = RunState::Succeeded) {
  RunView v;
  v.id = id;
  v.repo = "alice/infra";
  v.forge = "home";
  v.kind = kind;
  v.ref = std::move(ref);
  v.sha = std::move(sha);
  v.baseSha = std::move(base);
  v.state = state;
  return v;
}

Event push(std::string ref, std::string before, std::string after, std::string type = "gitea") {
  Event e;
  e.kind = EventKind::Push;
  e.forge = "home";
  e.forgeType = std::move(type);
  e.repo = "alice/infra";
  e.ref = std::move(ref);
  e.before = std::move(before);
  e.after = std::move(after);
  return e;
}

Event pullRequest(PrAction action, std::string head, bool fork = false) {
  Event e;
  e.kind = EventKind::PullRequest;
  e.forge = "home";
  e.forgeType = "gitea";
  e.repo = "alice/infra";
  e.prAction = action;
  e.prNumber = 7;
  e.headSha = std::move(head);
  e.baseSha = kA;
  e.fromFork = fork;
  return e;
}

report::GatewayDecision accepted(report::RerunRequest rq) {
  report::GatewayDecision d;
  d.kind = report::GatewayDecision::Kind::Accepted;
  d.request = std::move(rq);
  return d;
}

report::GatewayDecision refused(std::string why) {
  report::GatewayDecision d;
  d.kind = report::GatewayDecision::Kind::Refused;
  d.reason = std::move(why);
  return d;
}

// One row of the table.
struct Row {
  const char* name;
  Event event;
  std::optional<report::GatewayDecision> gate;
  bool repoConfigured;
  std::vector<RunView> runs;
  Verdict verdict;
  std::string reason;  // Ignore / SupersedeQueued: the reason; StartRun: "" (checked below)
};

}  // namespace

TEST_CASE("decide: what each event turns into", "[unit][scheduler]") {
  Event ignoredEvent;
  ignoredEvent.kind = EventKind::Ignored;
  ignoredEvent.ignoredReason = "ping";
  Event comment = pullRequest(PrAction::Opened, kB);
  comment.kind = EventKind::CommentCommand;
  comment.commentAuthor = "bob";
  Event cliRerun;
  cliRerun.kind = EventKind::Rerun;
  cliRerun.forgeType = "cli";
  cliRerun.runId = 3;
  Event forgeRerun = cliRerun;
  forgeRerun.forgeType = "github";
  forgeRerun.forge = "home";
  forgeRerun.repo = "alice/infra";
  const RunView deployed = runView(3, RunKind::Deploy, "refs/heads/main", kB, kA);
  RunView otherRepo = deployed;
  otherRepo.repo = "mallory/infra";
  report::RerunRequest approve;
  approve.approve = true;
  approve.requestedBy = "bob";

  const std::vector<Row> rows = {
      {"an ignored event", ignoredEvent, {}, true, {}, Verdict::Ignore, "ping"},
      {"a push to an unknown repository",
       push("refs/heads/main", kA, kB),
       {},
       false,
       {},
       Verdict::Ignore,
       "repository alice/infra is not configured"},
      {"a tag push",
       push("refs/tags/v1", kA, kB),
       {},
       true,
       {},
       Verdict::Ignore,
       "not a branch: refs/tags/v1"},
      {"a push to another branch",
       push("refs/heads/dev", kA, kB),
       {},
       true,
       {},
       Verdict::Ignore,
       "branch dev is not a deploy branch"},
      {"a push to a deploy branch",
       push("refs/heads/main", kA, kB),
       {},
       true,
       {},
       Verdict::StartRun,
       ""},
      {"the same push again",
       push("refs/heads/main", kA, kB),
       {},
       true,
       {deployed},
       Verdict::Ignore,
       "run 3 already deploys bbbbbbbb"},
      {"a push older than the newest run",
       push("refs/heads/main", kC, kA),
       {},
       true,
       {deployed},
       Verdict::Ignore,
       "older than run 3 (bbbbbbbb), which includes aaaaaaaa"},
      {"a force push back to the run's base",
       push("refs/heads/main", kB, kA),
       {},
       true,
       {deployed},
       Verdict::StartRun,
       ""},
      {"a pull request opened",
       pullRequest(PrAction::Opened, kB),
       {},
       true,
       {},
       Verdict::StartRun,
       ""},
      {"a pull request without a head",
       pullRequest(PrAction::Synchronized, ""),
       {},
       true,
       {},
       Verdict::Ignore,
       "pull request event without a head commit"},
      {"a pull request merged",
       pullRequest(PrAction::Merged, kB),
       {},
       true,
       {},
       Verdict::SupersedeQueued,
       "pull request merged"},
      {"a pull request closed",
       pullRequest(PrAction::Closed, kB),
       {},
       true,
       {},
       Verdict::SupersedeQueued,
       "pull request closed"},
      {"a comment the gateway refused",
       comment,
       refused("bob has read access"),
       true,
       {},
       Verdict::Ignore,
       "re-run refused: bob has read access"},
      {"a comment without a gateway answer",
       comment,
       {},
       true,
       {},
       Verdict::Ignore,
       "re-run refused: ?"},
      {"an accepted comment on a pull request that never ran",
       comment,
       accepted({}),
       true,
       {},
       Verdict::StartRun,
       ""},
      {"an approval of a pull request not from a fork",
       comment,
       accepted(approve),
       true,
       {},
       Verdict::Ignore,
       "nothing to approve: the pull request is not from a fork"},
      {"a CLI re-run of a run there is", cliRerun, {}, true, {deployed}, Verdict::StartRun, ""},
      {"a CLI re-run of no run", cliRerun, {}, true, {}, Verdict::Ignore, "no run to re-run"},
      {"a forge re-run of another repository's run",
       forgeRerun,
       accepted({}),
       true,
       {otherRepo},
       Verdict::Ignore,
       "re-run refused: run 3 is of mallory/infra, not alice/infra"},
  };
  const RepoConfig r = repo();
  for (const auto& row : rows) {
    SECTION(row.name) {
      TableLookup lookup;
      lookup.runs = row.runs;
      Decision d =
          scheduler::decide(row.event, row.gate, row.repoConfigured ? &r : nullptr, lookup);
      CHECK(d.verdict == row.verdict);
      if (row.verdict != Verdict::StartRun) CHECK(d.reason == row.reason);
    }
  }
}

TEST_CASE("decide: the runs it starts", "[unit][scheduler]") {
  const RepoConfig r = repo();
  TableLookup lookup;

  SECTION("a push deploys its commit, supersedes its branch's queued runs, from their base") {
    Decision d = scheduler::decide(push("refs/heads/main", kA, kB, "hook"), {}, &r, lookup);
    REQUIRE(d.verdict == Verdict::StartRun);
    CHECK(d.run.kind == RunKind::Deploy);
    CHECK(d.run.trigger == RunTrigger::Hook);
    CHECK(d.run.sha == kB);
    CHECK(d.run.baseSha == kA);
    CHECK(d.supersedeRef);
    CHECK(d.planFromSuperseded);
  }
  SECTION("a new branch's first push has no base") {
    Decision d = scheduler::decide(push("refs/heads/main", kZero, kB), {}, &r, lookup);
    CHECK(d.run.baseSha.empty());
    CHECK(d.run.trigger == RunTrigger::Push);
  }
  SECTION("an older push moves the queued run's base back to where it starts") {
    lookup.runs = {runView(3, RunKind::Deploy, "refs/heads/main", kB, kA, RunState::Queued)};
    Decision d = scheduler::decide(push("refs/heads/main", kC, kA), {}, &r, lookup);
    REQUIRE(d.verdict == Verdict::Ignore);
    REQUIRE(d.rebase);
    CHECK(d.rebase->first == 3);
    CHECK(d.rebase->second == kC);
  }
  SECTION("a fork's pull request is checked, never deployed, and says so") {
    Decision d = scheduler::decide(pullRequest(PrAction::Opened, kB, true), {}, &r, lookup);
    CHECK(d.run.kind == RunKind::Check);
    CHECK(d.run.ref == "refs/pull/7/head");
    CHECK(d.run.fromFork);
    CHECK(d.supersedeRef);
    CHECK_FALSE(d.planFromSuperseded);
    CHECK(d.note == " (fork: build only)");
  }
  SECTION("an accepted comment re-runs the pull request's run of that commit, limited") {
    RunView check = runView(5, RunKind::Check, "refs/pull/7/head", kB, kA);
    check.prNumber = 7;
    check.fromFork = true;
    lookup.runs = {check};
    Event e = pullRequest(PrAction::Opened, kB);
    e.kind = EventKind::CommentCommand;
    report::RerunRequest rq;
    rq.hosts = {"web2"};
    rq.approve = true;
    rq.requestedBy = "bob";
    Decision d = scheduler::decide(e, accepted(rq), &r, lookup);
    REQUIRE(d.verdict == Verdict::StartRun);
    CHECK(d.run.kind == RunKind::Rerun);
    CHECK(d.run.parentRun == 5);
    CHECK(d.run.hostsFilter == std::vector<std::string>{"web2"});
    CHECK(d.run.fromFork);
    CHECK_FALSE(d.supersedeRef);
    REQUIRE(d.approval);
    CHECK(d.approval->by == "bob");
    CHECK(d.approval->sha == kB);
  }
  SECTION("a UI re-run copies its parent, by a person") {
    lookup.runs = {runView(3, RunKind::Deploy, "refs/heads/main", kB, kA)};
    Event e;
    e.kind = EventKind::Rerun;
    e.forgeType = "ui";
    e.runId = 3;
    e.stage = "build";
    Decision d = scheduler::decide(e, {}, &r, lookup);
    REQUIRE(d.verdict == Verdict::StartRun);
    CHECK(d.run.kind == RunKind::Rerun);
    CHECK(d.run.trigger == RunTrigger::Manual);
    CHECK(d.run.ref == "refs/heads/main");
    CHECK(d.run.stageFilter == Stage::Build);
    CHECK(d.run.parentRun == 3);
    CHECK_FALSE(d.run.forced);
  }
  SECTION("a roll back re-deploys one host from its parent, forced past the ancestry check") {
    lookup.runs = {runView(3, RunKind::Deploy, "refs/heads/main", kB, kA)};
    Event e;
    e.kind = EventKind::Rerun;
    e.forgeType = "ui";
    e.command = "rollback";
    e.runId = 3;
    e.hosts = {"web1"};
    Decision d = scheduler::decide(e, {}, &r, lookup);
    REQUIRE(d.verdict == Verdict::StartRun);
    CHECK(d.run.forced);
    CHECK(d.run.hostsFilter == std::vector<std::string>{"web1"});
    CHECK(d.run.sha == kB);
    CHECK(d.note == " (roll back of web1 to run 3)");
    e.hosts = {"web1", "web2"};
    CHECK(scheduler::decide(e, {}, &r, lookup).verdict == Verdict::Ignore);
  }
  SECTION("a cancel from the web stops a run that has not ended, names who, and no other") {
    lookup.runs = {runView(3, RunKind::Deploy, "refs/heads/main", kB, kA, RunState::Running),
                   runView(4, RunKind::Deploy, "refs/heads/main", kC, kB)};
    Event e;
    e.kind = EventKind::Rerun;
    e.forgeType = "ui";
    e.command = "cancel";
    e.sender = "web login from 10.0.0.1";
    e.runId = 3;
    Decision d = scheduler::decide(e, {}, &r, lookup);
    REQUIRE(d.verdict == Verdict::CancelRun);
    CHECK(d.cancelRun == 3);
    CHECK(d.reason == "cancelled by web login from 10.0.0.1");
    e.runId = 4;
    d = scheduler::decide(e, {}, &r, lookup);
    CHECK(d.verdict == Verdict::Ignore);
    CHECK(d.reason == "run 4 already ended (succeeded)");
    e.runId = 9;
    CHECK(scheduler::decide(e, {}, &r, lookup).reason == "no run 9 to cancel");
  }
  SECTION("a forge's re-run is never forced, whatever its command says") {
    lookup.runs = {runView(3, RunKind::Deploy, "refs/heads/main", kB, kA)};
    Event e;
    e.kind = EventKind::Rerun;
    e.forgeType = "github";
    e.repo = "alice/infra";
    e.command = "rollback";
    e.runId = 3;
    report::RerunRequest rq;
    rq.runId = 3;
    rq.hosts = {"web1"};
    Decision d = scheduler::decide(e, accepted(rq), &r, lookup);
    REQUIRE(d.verdict == Verdict::StartRun);
    CHECK_FALSE(d.run.forced);
  }
}
