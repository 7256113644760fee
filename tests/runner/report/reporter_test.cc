// The reporter end to end (runner/report/forge_reporter.h → outbox → sender → a real Forge →
// FakeGitea/FakeGitHub over HTTP), asserting on the exact requests Switchyard sent: a pull
// request check run (plan and per-host statuses, unaffected hosts "not affected", the comment
// created then edited in place with closure diffs), a push deploy run (deploy contexts,
// "rolled back" in words), a fork pull request (no deploy contexts), GitHub's 140-character
// descriptions, and GitHub App check runs (JWT → installation token → created, then updated).
#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "tests/runner/report/report_fixture.h"

using namespace tests::report;
using nlohmann::json;
using runner::HostState;
using runner::RunState;
using runner::Stage;

namespace {

// A PR run of the fleet, driven as the scheduler would, the sender draining after each call.
void drivePrRun(FixtureBase& f, runner::RunView run) {
  f.reporter->runQueued(run);
  f.drain();
  run.state = RunState::Running;
  f.reporter->planned(run, fleetPlan());
  f.drain();

  auto web1 = hostView("web1", Stage::Build, HostState::Running);
  web1.startedAt = 1'000'000;
  f.reporter->hostChanged(run, web1);
  f.drain();
  web1.state = HostState::Succeeded;
  web1.finishedAt = 1'134'000;
  web1.outPath = kWebNew;
  web1.baseOutPath = kWebOld;
  f.reporter->hostChanged(run, web1);
  f.drain();

  auto web2 = hostView("web2", Stage::Build, HostState::Running);
  f.reporter->hostChanged(run, web2);
  f.drain();
  web2.state = HostState::Failed;
  web2.summary = "build failed: hello-2.13.drv";
  web2.logTail = "error: builder for '/nix/store/…-hello-2.13.drv' failed with exit code 1";
  f.reporter->hostChanged(run, web2);
  f.drain();

  auto db = hostView("db", Stage::Build, HostState::Succeeded, "built in 41s");
  db.outPath = kDbNew;
  db.baseOutPath = kDbOld;
  f.reporter->hostChanged(run, db);
  f.drain();

  run.state = RunState::Failed;
  f.reporter->runFinished(run, {db, hostView("edge", Stage::Plan, HostState::NotAffected),
                                hostView("mail", Stage::Plan, HostState::NotAffected), web1, web2});
  f.drain();
}

}  // namespace

TEST_CASE(
    "report: a pull request run on Gitea — statuses per host, the comment created then "
    "edited in place with closure diffs",
    "[integration][report]") {
  GiteaFixture f;
  drivePrRun(f, prRun());

  const std::string statuses = "POST /api/v1/repos/alice/infra/statuses/" + kSha;
  const std::string comments = "/api/v1/repos/alice/infra/issues/7/comments";
  const std::string patch = "PATCH /api/v1/repos/alice/infra/issues/comments/" +
                            std::to_string(f.gitea.comments(kRepo, 7).at(0).id);
  std::vector<std::string> expected(7, statuses);  // plan pending; plan + 5 hosts when planned
  expected.push_back("GET " + comments);           // the comment, created …
  expected.push_back("POST " + comments);
  expected.insert(expected.end(), 5, statuses);  // web1 building, built; web2 building,
                                                 // failed; db built
  expected.push_back("GET " + comments);         // … and edited in place when finished
  expected.push_back(patch);
  CHECK(f.gitea.targets() == expected);  // finals already sent are not sent again
  CHECK(statusBodies(f.gitea) == std::vector<std::string>{
                                     "switchyard/plan=pending:waiting to plan",
                                     "switchyard/plan=success:3 of 5 machines affected",
                                     "switchyard/build/db=pending:waiting to build",
                                     "switchyard/build/edge=success:not affected",
                                     "switchyard/build/mail=success:not affected",
                                     "switchyard/build/web1=pending:waiting to build",
                                     "switchyard/build/web2=pending:waiting to build",
                                     "switchyard/build/web1=pending:building",
                                     "switchyard/build/web1=success:built in 2m14s",
                                     "switchyard/build/web2=pending:building",
                                     "switchyard/build/web2=failure:build failed: hello-2.13.drv",
                                     "switchyard/build/db=success:built in 41s",
                                 });
  auto first = f.gitea.requests().front();
  CHECK(first.header("Authorization") == "token " + f.gitea.token());
  CHECK(first.json() == json{{"state", "pending"},
                             {"context", "switchyard/plan"},
                             {"description", "waiting to plan"},
                             {"target_url", "https://ci.example.org/runs/12"}});

  // one comment, created when planned and edited when finished
  auto all = f.gitea.comments(kRepo, 7);
  REQUIRE(all.size() == 1);
  const std::string& body = all[0].body;
  CHECK(runner::startsWith(
      body, "<!-- switchyard:plan -->\n### Switchyard · 3 of 5 machines affected\n"));
  CHECK(body.find("| `web1` | **yes** | file `modules/web.nix` | ✅ built in 2m14s |") !=
        std::string::npos);
  CHECK(body.find(
            "| `web2` | **yes** | file `modules/web.nix` | ❌ build failed\\: hello-2.13.drv |") !=
        std::string::npos);
  CHECK(body.find("| `edge` | no | – | ⚪ not affected |") != std::string::npos);
  CHECK(
      body.find(
          "| `nixpkgs` | updated | `111111111111` (2026-01-01) | `222222222222` (2026-01-08) |") !=
      std::string::npos);
  CHECK(body.find(
            "<details open><summary><code>web1</code>: 1 version changed, +47.9 KiB</summary>") !=
        std::string::npos);
  CHECK(body.find("| hello | 2.12 → 2.13 |  |") != std::string::npos);
  CHECK(body.find("| data |  | +47.9 KiB |") != std::string::npos);
  CHECK(body.find("Closure diff unavailable\\: path '" + kDbOld + "' is not valid") !=
        std::string::npos);
  CHECK(body.find("web2</code>") == std::string::npos);  // failed: no closure to compare

  // the comment created at plan time had the plan but no closures yet
  auto posted = f.gitea.requests()[8].json()["body"].get<std::string>();
  CHECK(posted.find("⏳ waiting to build") != std::string::npos);
  CHECK(posted.find("Closure changes") == std::string::npos);
  CHECK(f.differ.calls ==
        std::vector<std::pair<std::string, std::string>>{{kDbOld, kDbNew}, {kWebOld, kWebNew}});

  // every row went out, none failed
  for (const auto& r : f.rows())
    CHECK((r.state == runner::store::OutboxState::Sent ||
           r.state == runner::store::OutboxState::Superseded));
}
