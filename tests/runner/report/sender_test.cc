// The outbox sender against a failing forge (runner/report/sender.h), with a manual clock and
// the sender driven step by step: an outage of more than a minute (5xx and a timeout) after
// which every status is delivered, in order, last state winning; 429 retry-after and GitHub's
// rate-limited 403 honoured to the second; permanent failures recorded and never resent;
// GitHub pacing; giving up after a day; rows pending in SQLite sent by a new sender after a
// restart; and the sender on its own thread, woken by the reporter.
#include <thread>

#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/report/reporting.h"
#include "tests/runner/report/report_fixture.h"
#include "tests/support/wait.h"

using namespace tests::report;
using runner::HostState;
using runner::RunState;
using runner::Stage;
using runner::report::StepResult;
using runner::store::OutboxState;
using Kind = runner::report::StepResult::Kind;

namespace {

const std::string kGiteaStatuses = "POST /api/v1/repos/alice/infra/statuses/";

size_t requestCount(const tests::FakeForgeServer& fake) { return fake.requests().size(); }

// Waits (real time, bounded) until the fake has answered every request it received: a
// request the client gave up on may still be in the fake's hands.
void settle(const tests::FakeForgeServer& fake) {
  bool answered = tests::waitUntil([&] {
    for (const auto& r : fake.requests())
      if (r.answeredStatus == 0) return false;
    return true;
  });
  if (!answered) FAIL("the fake forge did not answer");
}

// The status bodies the forge accepted, in order.
std::vector<std::string> accepted(const tests::FakeForgeServer& fake) {
  std::vector<std::string> out;
  for (const auto& r : fake.requests()) {
    if (r.answeredStatus != 201 || r.path.find("/statuses/") == std::string::npos) continue;
    auto j = r.json();
    out.push_back(j["context"].get<std::string>() + "=" + j["state"].get<std::string>());
  }
  return out;
}

}  // namespace

TEST_CASE(
    "sender: after a forge outage of more than a minute every status is delivered, in "
    "order, the last state winning",
    "[integration][report]") {
  GiteaFixture f;
  const auto t0 = f.clock.now();
  f.gitea.failNext(tests::Fault::serverError(503), 3, kGiteaStatuses);
  f.gitea.failNext(tests::Fault::slow(1500ms), 1, kGiteaStatuses);  // client timeout is 1 s

  auto run = prRun();
  run.prNumber = 0;  // statuses only
  f.reporter->runQueued(run);
  auto r = f.sender->step();
  CHECK(r.kind == Kind::Retrying);
  CHECK(r.wakeAt == t0 + 5s);
  CHECK(f.sender->step().kind == Kind::Idle);  // nothing is sent before the back-off ends
  CHECK(requestCount(f.gitea) == 1);

  // the run goes on while the forge is down
  run.state = RunState::Running;
  f.reporter->planned(run, fleetPlan());
  auto web1 = hostView("web1", Stage::Build, HostState::Running);
  f.reporter->hostChanged(run, web1);
  auto idle = f.sender->step();
  CHECK(idle.kind == Kind::Idle);
  CHECK(idle.wakeAt == t0 + 5s);

  f.clock.advance(5s);  // t0+5: second failure, back-off doubles
  r = f.sender->step();
  CHECK(r.kind == Kind::Retrying);
  CHECK(r.wakeAt == t0 + 15s);
  f.clock.advance(9s);
  CHECK(f.sender->step().kind == Kind::Idle);
  CHECK(requestCount(f.gitea) == 2);
  f.clock.advance(1s);  // t0+15: third failure
  CHECK(f.sender->step().wakeAt == t0 + 35s);

  web1.state = HostState::Succeeded;
  web1.summary = "built in 2m14s";
  f.reporter->hostChanged(run, web1);
  f.reporter->hostChanged(run, hostView("web2", Stage::Build, HostState::Failed, "build failed"));

  f.clock.advance(20s);  // t0+35: a timeout
  r = f.sender->step();
  CHECK(r.kind == Kind::Retrying);
  CHECK(r.wakeAt == t0 + 75s);
  {
    auto rows = f.rows();
    auto probed = std::find_if(rows.begin(), rows.end(), [](const auto& row) {
      return row.lastError.find("imed out") != std::string::npos;
    });
    CHECK(probed != rows.end());  // the timeout is a retryable failure like a 5xx
  }
  settle(f.gitea);

  f.reporter->hostChanged(run, hostView("db", Stage::Build, HostState::Succeeded, "built in 41s"));
  run.state = RunState::Failed;
  f.reporter->runFinished(run, {});

  f.clock.advance(39s);
  CHECK(f.sender->step().kind == Kind::Idle);
  CHECK(requestCount(f.gitea) == 4);
  f.clock.advance(1s);  // t0+75: the forge is back; everything goes out
  auto results = f.drain();
  CHECK(results.back().kind == Kind::Idle);
  CHECK_FALSE(results.back().wakeAt);  // nothing pending

  // one call per context, the newest state, in the order the rows were written
  std::vector<std::string> after(accepted(f.gitea));
  after.erase(after.begin());  // the request that timed out was applied late by the forge
  CHECK(after == std::vector<std::string>{
                     "switchyard/plan=success",
                     "switchyard/build/edge=success",
                     "switchyard/build/mail=success",
                     "switchyard/build/web1=success",
                     "switchyard/build/web2=failure",
                     "switchyard/build/db=success",
                 });
  std::map<std::string, std::string> last;
  for (const auto& s : f.gitea.statuses(kRepo, kSha)) last[s.context] = s.state;
  CHECK(last == std::map<std::string, std::string>{{"switchyard/plan", "success"},
                                                   {"switchyard/build/db", "success"},
                                                   {"switchyard/build/edge", "success"},
                                                   {"switchyard/build/mail", "success"},
                                                   {"switchyard/build/web1", "success"},
                                                   {"switchyard/build/web2", "failure"}});
  auto counts = runner::store::Outbox(*f.db).counts();
  CHECK(counts[OutboxState::Pending] == 0);
  CHECK(counts[OutboxState::Failed] == 0);
  CHECK(counts[OutboxState::Sent] == 6);  // one per context (the timed-out probe was resent)
}

TEST_CASE("sender: a 429 with retry-after is honoured — no request before it",
          "[integration][report]") {
  GitHubFixture f;
  f.github.failNext(tests::Fault::tooManyRequests(30), 1);
  auto run = deployRun();
  f.reporter->runQueued(run);
  f.reporter->hostChanged(run, hostView("web1", Stage::Deploy, HostState::Succeeded, "deployed"));
  const auto t0 = f.clock.now();
  auto r = f.sender->step();
  CHECK(r.kind == Kind::Retrying);
  CHECK(r.wakeAt == t0 + 30s);
  f.clock.advance(29s);
  auto idle = f.sender->step();
  CHECK(idle.kind == Kind::Idle);
  CHECK(idle.wakeAt == t0 + 30s);  // the other row waits for its forge too
  CHECK(requestCount(f.github) == 1);
  f.clock.advance(1s);
  f.drain();
  CHECK(f.github.targets() ==
        std::vector<std::string>(3, "POST /repos/alice/infra/statuses/" + kSha));
  CHECK(f.github.requests()[0].answeredStatus == 429);
  CHECK(accepted(f.github) ==
        std::vector<std::string>{"switchyard/plan=pending", "switchyard/deploy/web1=success"});
  auto row = runner::store::Outbox(*f.db).list().front();
  CHECK(row.attempts == 2);
  CHECK(row.state == OutboxState::Sent);
}

TEST_CASE("sender: every answer of the forge is told with its status code (for /metrics)",
          "[integration][report]") {
  std::vector<std::pair<std::string, int>> told;
  runner::report::SenderOptions o;
  o.answered = [&](const std::string& forge, int status) { told.emplace_back(forge, status); };
  GitHubFixture f(o);
  f.github.failNext(tests::Fault::tooManyRequests(30), 1);
  auto run = deployRun();
  f.reporter->runQueued(run);
  CHECK(f.sender->step().kind == Kind::Retrying);
  f.clock.advance(30s);
  f.drain();
  REQUIRE(told.size() == 2);
  CHECK(told[0].second == 429);
  CHECK(told[1].second == 201);
  CHECK(told[0].first == told[1].first);
}

TEST_CASE("sender: a retry-after shorter than the back-off does not shorten it",
          "[integration][report]") {
  GiteaFixture f;
  f.gitea.failNext(tests::Fault::tooManyRequests(1), 3, kGiteaStatuses);
  auto run = deployRun();
  f.reporter->runQueued(run);
  auto t = f.clock.now();
  auto r = f.sender->step();
  CHECK(r.kind == Kind::Retrying);
  CHECK(r.wakeAt == t + 5s);  // initialBackoff, not the forge's 1 s
  f.clock.advance(1s);
  CHECK(f.sender->step().kind == Kind::Idle);
  CHECK(requestCount(f.gitea) == 1);
  f.clock.advance(4s);
  t = f.clock.now();
  r = f.sender->step();
  CHECK(r.kind == Kind::Retrying);
  CHECK(r.wakeAt == t + 10s);  // the back-off still doubles
  f.clock.advance(10s);
  t = f.clock.now();
  r = f.sender->step();
  CHECK(r.wakeAt == t + 20s);
  CHECK(requestCount(f.gitea) == 3);
  f.clock.advance(20s);
  CHECK(f.sender->step().kind == Kind::Sent);
  CHECK(requestCount(f.gitea) == 4);
}

TEST_CASE("sender: GitHub's rate-limited 403 waits until x-ratelimit-reset",
          "[integration][report]") {
  GitHubFixture f;
  const auto t0 = f.clock.now();
  f.github.failNext(tests::Fault::rateLimited(f.clock.epochSeconds() + 120), 1);
  f.reporter->runQueued(deployRun());
  auto r = f.sender->step();
  CHECK(r.kind == Kind::Retrying);
  CHECK(r.wakeAt == t0 + 120s);
  f.clock.advance(119s);
  CHECK(f.sender->step().kind == Kind::Idle);
  CHECK(requestCount(f.github) == 1);
  f.clock.advance(1s);
  CHECK(f.sender->step().kind == Kind::Sent);
  CHECK(requestCount(f.github) == 2);
  CHECK(f.github.requests()[0].answeredStatus == 403);
  CHECK(f.github.requests()[1].answeredStatus == 201);
}

TEST_CASE("sender: a permanent failure is recorded with the forge's message and never resent",
          "[integration][report]") {
  GiteaFixture f;
  tests::Fault invalid;
  invalid.status = 422;
  invalid.body = R"({"message":"context is invalid"})";
  f.gitea.failNext(invalid, 1);
  f.reporter->runQueued(deployRun());
  auto r = f.sender->step();
  CHECK(r.kind == Kind::Failed);
  auto row = *runner::store::Outbox(*f.db).get(r.rowId);
  CHECK(row.state == OutboxState::Failed);
  CHECK(row.lastError == "HTTP 422: context is invalid");
  f.clock.advance(std::chrono::hours(1));
  CHECK(f.drain().front().kind == Kind::Idle);
  CHECK(requestCount(f.gitea) == 1);
  // the forge itself is fine: the next row goes out at once (no back-off for the forge)
  f.reporter->hostChanged(deployRun(),
                          hostView("web1", Stage::Deploy, HostState::Succeeded, "deployed"));
  CHECK(f.sender->step().kind == Kind::Sent);
}

TEST_CASE("sender: calls to GitHub are paced a second apart", "[integration][report]") {
  runner::report::SenderOptions o;
  o.spacing["home"] = runner::report::spacingFor("github");
  GitHubFixture f(o);
  const auto t0 = f.clock.now();
  auto run = deployRun();
  f.reporter->runQueued(run);
  f.reporter->hostChanged(run, hostView("web1", Stage::Deploy, HostState::Succeeded, "deployed"));
  CHECK(f.sender->step().kind == Kind::Sent);
  auto idle = f.sender->step();
  CHECK(idle.kind == Kind::Idle);
  CHECK(idle.wakeAt == t0 + 1s);
  CHECK(requestCount(f.github) == 1);
  f.clock.advance(1s);
  CHECK(f.sender->step().kind == Kind::Sent);
  CHECK(requestCount(f.github) == 2);
  CHECK(runner::report::spacingFor("gitea") == 0ms);
}

TEST_CASE("sender: a row that could not be sent for a day is given up", "[integration][report]") {
  GiteaFixture f;
  f.gitea.failNext(tests::Fault::serverError(502), 1000);
  f.reporter->runQueued(deployRun());
  for (int i = 0; i < 200; ++i) {
    auto r = f.sender->step();
    if (r.kind == Kind::Failed) break;
    f.clock.advance(10min);
  }
  auto row = runner::store::Outbox(*f.db).list().front();
  CHECK(row.state == OutboxState::Failed);
  CHECK(runner::startsWith(row.lastError, "gave up after "));
  CHECK(row.lastError.find("HTTP 502") != std::string::npos);
  // 5 s, 10 s, … capped at 10 minutes: about 150 tries in a day, not thousands
  CHECK(requestCount(f.gitea) < 160);
}

TEST_CASE("sender: rows pending in SQLite are sent by a new sender after a restart",
          "[integration][report]") {
  GiteaFixture f;
  f.gitea.failNext(tests::Fault::serverError(500), 1);
  auto run = prRun();
  run.prNumber = 0;
  f.reporter->runQueued(run);
  run.state = RunState::Running;
  f.reporter->planned(run, fleetPlan());
  CHECK(f.sender->step().kind == Kind::Retrying);  // in flight when the runner "crashes"
  CHECK(accepted(f.gitea).empty());

  f.restart();  // a new database connection, reporter and sender; nothing in memory survives
  auto results = f.drain();  // the rows never tried are due now …
  CHECK(accepted(f.gitea) == std::vector<std::string>{
                                 "switchyard/build/db=pending",
                                 "switchyard/build/edge=success",
                                 "switchyard/build/mail=success",
                                 "switchyard/build/web1=pending",
                                 "switchyard/build/web2=pending",
                             });
  CHECK(results.back().wakeAt == f.clock.now() + 5s);  // … the one that failed keeps its wait
  f.clock.advance(5s);
  f.drain();
  CHECK(accepted(f.gitea).back() == "switchyard/plan=success");
  CHECK(runner::store::Outbox(*f.db).counts()[OutboxState::Pending] == 0);
}

TEST_CASE("sender: on its own thread it sends what the reporter queues, woken at once",
          "[integration][report]") {
  GiteaFixture f;
  runner::report::SenderOptions o;
  o.idlePoll = 60s;  // only a wake() makes it look before a minute
  runner::report::OutboxSender sender(*f.db, f.forges, f.renderer, f.clock, f.log, o);
  runner::report::ForgeReporter reporter(*f.db, f.forges, f.templates, f.clock, f.log,
                                         {.onEnqueued = [&] { sender.wake(); }});
  sender.start();
  auto run = deployRun();
  reporter.runQueued(run);
  reporter.hostChanged(run, hostView("web1", Stage::Deploy, HostState::Succeeded, "deployed"));
  tests::waitUntil([&] { return accepted(f.gitea).size() >= 2; });
  sender.stop();
  CHECK(accepted(f.gitea) ==
        std::vector<std::string>{"switchyard/plan=pending", "switchyard/deploy/web1=success"});
  sender.stop();  // idempotent
}

TEST_CASE("reporting: the bundle the daemon wires — reporter and gateway wake the sender thread",
          "[integration][report]") {
  GiteaFixture f;
  f.gitea.setPermission(kRepo, "alice", "write");
  runner::report::Reporting reporting(
      *f.db, f.forges, /*nix=*/nullptr, f.clock, f.log,
      {.forgeTypes = {{"home", "gitea"}}, .sender = {.idlePoll = 60s}});
  reporting.start();
  auto run = deployRun();
  reporting.reporter().runQueued(run);
  runner::Event e;
  e.kind = runner::EventKind::CommentCommand;
  e.forge = "home";
  e.repo = kRepo;
  e.prNumber = 7;
  e.headSha = kSha;
  e.command = "rerun";
  e.commentAuthor = "alice";
  e.commentId = f.gitea.addComment(kRepo, 7, "alice", "/switchyard rerun");
  CHECK(reporting.gateway().handle(e).accepted());
  tests::waitUntil([&] { return !f.gitea.reactions().empty(); });
  reporting.stop();
  CHECK(accepted(f.gitea) == std::vector<std::string>{"switchyard/plan=pending"});
  REQUIRE(f.gitea.reactions().size() == 1);
  CHECK(f.gitea.reactions()[0].content == "+1");
}
