// The reporter end to end (runner/report/forge_reporter.h → outbox → sender → a real Forge →
// FakeGitea/FakeGitHub over HTTP), asserting on the exact requests Switchyard sent: a pull
// request check run (plan and per-host statuses, unaffected hosts "not affected", the comment
// created then edited in place with closure diffs), a push deploy run (deploy contexts,
// "rolled back" in words), a fork pull request (no deploy contexts), GitHub's 140-character
// descriptions, and GitHub App check runs (JWT → installation token → created, then updated).
#include <algorithm>

#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/report/mapping.h"
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
  expected.push_back("GET /api/v1/user");          // who the bot is (asked once)
  expected.push_back("GET " + comments);           // the comment, created …
  expected.push_back("POST " + comments);
  expected.insert(expected.end(), 5, statuses);  // web1 building, built; web2 building,
                                                 // failed; db built
  expected.push_back(patch);  // … and edited in place when finished: its id is known, so
                              // the comments are not listed again
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
  auto posted = f.gitea.requests()[9].json()["body"].get<std::string>();
  CHECK(posted.find("⏳ waiting to build") != std::string::npos);
  CHECK(posted.find("Closure changes") == std::string::npos);
  CHECK(f.differ.calls ==
        std::vector<std::pair<std::string, std::string>>{{kDbOld, kDbNew}, {kWebOld, kWebNew}});

  // every row went out, none failed
  for (const auto& r : f.rows())
    CHECK((r.state == runner::store::OutboxState::Sent ||
           r.state == runner::store::OutboxState::Superseded));
}

TEST_CASE(
    "report: a push deploy run on GitHub — build and deploy contexts, rolled back and "
    "not deployed in words, progress chatter makes no calls",
    "[integration][report]") {
  GitHubFixture f;
  auto run = deployRun();
  f.reporter->runQueued(run);
  run.state = RunState::Running;
  f.reporter->planned(run, fleetPlan());
  f.drain();

  auto web1 = hostView("web1", Stage::Build, HostState::Running, "building 3/12 derivations");
  f.reporter->hostChanged(run, web1);
  web1.summary = "building 7/12 derivations";  // progress: the same status, no new call
  f.reporter->hostChanged(run, web1);
  f.drain();
  web1.state = HostState::Succeeded;
  web1.summary = "built in 2m14s";
  f.reporter->hostChanged(run, web1);  // deploy stays "waiting to deploy": no call for it
  web1.stage = Stage::Deploy;
  web1.state = HostState::Running;
  web1.summary = "copying the closure";
  f.reporter->hostChanged(run, web1);
  f.drain();
  web1.summary = "activating";
  f.reporter->hostChanged(run, web1);
  web1.state = HostState::RolledBack;
  web1.summary = "rolled back: health check failed";
  f.reporter->hostChanged(run, web1);
  f.drain();

  auto web2 = hostView("web2", Stage::Build, HostState::Failed, "build failed");
  f.reporter->hostChanged(run, web2);
  f.drain();
  auto db = hostView("db", Stage::Deploy, HostState::Succeeded, "deployed in 41s");
  f.reporter->hostChanged(run, db);
  run.state = RunState::Failed;
  f.reporter->runFinished(run, {db, hostView("edge", Stage::Plan, HostState::NotAffected),
                                hostView("mail", Stage::Plan, HostState::NotAffected), web1, web2});
  f.drain();

  CHECK(statusBodies(f.github) ==
        std::vector<std::string>{
            // queued and planned before the sender ran: "waiting to plan" was superseded
            "switchyard/plan=success:3 of 5 machines affected",
            "switchyard/build/db=pending:waiting to build",
            "switchyard/deploy/db=pending:waiting to deploy",
            "switchyard/build/edge=success:not affected",
            "switchyard/deploy/edge=success:not affected",
            "switchyard/build/mail=success:not affected",
            "switchyard/deploy/mail=success:not affected",
            "switchyard/build/web1=pending:waiting to build",
            "switchyard/deploy/web1=pending:waiting to deploy",
            "switchyard/build/web2=pending:waiting to build",
            "switchyard/deploy/web2=pending:waiting to deploy",
            "switchyard/build/web1=pending:building",
            "switchyard/build/web1=success:built in 2m14s",
            "switchyard/deploy/web1=pending:deploying",
            "switchyard/deploy/web1=failure:rolled back: health check failed",
            "switchyard/build/web2=failure:build failed",
            "switchyard/deploy/web2=error:not deployed: build failed",
            "switchyard/deploy/db=success:deployed in 41s",
        });
  for (const auto& r : f.github.requests()) {
    CHECK(r.target() == "POST /repos/alice/infra/statuses/" + kSha);  // no comment: no PR
    CHECK(r.header("Authorization") == "Bearer " + f.github.token());
    CHECK(r.header("X-GitHub-Api-Version") == "2022-11-28");
    CHECK(r.json()["target_url"] == "https://ci.example.org/runs/12");
  }
  // what the forge shows at the end: the last state of every context
  std::map<std::string, std::string> last;
  for (const auto& s : f.github.statuses(kRepo, kSha)) last[s.context] = s.state;
  CHECK(last == std::map<std::string, std::string>{{"switchyard/plan", "success"},
                                                   {"switchyard/build/db", "pending"},
                                                   {"switchyard/deploy/db", "success"},
                                                   {"switchyard/build/edge", "success"},
                                                   {"switchyard/deploy/edge", "success"},
                                                   {"switchyard/build/mail", "success"},
                                                   {"switchyard/deploy/mail", "success"},
                                                   {"switchyard/build/web1", "success"},
                                                   {"switchyard/deploy/web1", "failure"},
                                                   {"switchyard/build/web2", "failure"},
                                                   {"switchyard/deploy/web2", "error"}});
}

TEST_CASE("report: a pull request from a fork reports plan and build, never deploy contexts",
          "[integration][report]") {
  GiteaFixture f;
  auto run = prRun();
  run.fromFork = true;
  run.prNumber = 8;
  run.kind = runner::RunKind::Check;
  drivePrRun(f, run);
  auto bodies = statusBodies(f.gitea);
  REQUIRE(bodies.size() == 12);
  for (const auto& b : bodies) CHECK(b.rfind("switchyard/deploy/", 0) == std::string::npos);
  CHECK(f.gitea.comments(kRepo, 8).size() == 1);
  // a re-run of a fork's check run that names no stage is still build-only
  run.kind = runner::RunKind::Rerun;
  run.id = 13;
  run.hostsFilter = {"web2"};
  f.gitea.clearRequests();
  f.reporter->runQueued(run);
  f.drain();
  CHECK(statusBodies(f.gitea) ==
        std::vector<std::string>{"switchyard/plan=pending:waiting to plan",
                                 "switchyard/build/web2=pending:waiting to build"});
}

TEST_CASE("report: GitHub descriptions are cut to 140 characters, UTF-8 safe",
          "[integration][report]") {
  GitHubFixture f;
  auto run = deployRun();
  std::string summary = "rolled back: ";
  for (int i = 0; i < 30; ++i) summary += "sant\xc3\xa9 ";  // 6 characters, 7 bytes
  f.reporter->hostChanged(run, hostView("web1", Stage::Deploy, HostState::RolledBack, summary));
  f.drain();
  auto reqs = f.github.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].answeredStatus == 201);
  std::string sent = reqs[0].json()["description"];
  CHECK(sent == runner::truncateChars(runner::report::oneLine(summary), 140));
  CHECK(runner::endsWith(sent, "\xe2\x80\xa6"));
  // Gitea keeps everything: the same words go out whole
  GiteaFixture g;
  g.reporter->hostChanged(run, hostView("web1", Stage::Deploy, HostState::RolledBack, summary));
  g.drain();
  CHECK(g.gitea.requests().at(0).json()["description"] == runner::report::oneLine(summary));
}

TEST_CASE(
    "report: as a GitHub App, check runs per stage and host — JWT, installation token, "
    "created then updated in place, plan table, log tail and a Re-run button",
    "[integration][report]") {
  GitHubAppFixture f;
  auto run = prRun();
  f.reporter->runQueued(run);
  f.drain();
  CHECK(f.github.targets() == std::vector<std::string>{
                                  "GET /repos/alice/infra/installation",
                                  "POST /app/installations/77/access_tokens",
                                  "POST /repos/alice/infra/check-runs",
                              });
  auto reqs = f.github.requests();
  CHECK(runner::startsWith(reqs[0].header("Authorization"), "Bearer ey"));  // the App's JWT
  CHECK(reqs[1].header("Authorization") == reqs[0].header("Authorization"));
  CHECK(reqs[2].header("Authorization") == "Bearer ghs_fake1_77");
  auto queued = reqs[2].json();
  CHECK(queued["name"] == "switchyard/plan");
  CHECK(queued["head_sha"] == kSha);
  CHECK(queued["status"] == "queued");
  CHECK(queued["external_id"] == "run:12:plan:");
  CHECK(queued["details_url"] == "https://ci.example.org/runs/12");
  CHECK(queued["output"]["title"] == "waiting to plan");
  const int64_t planRun = f.github.checkRuns().begin()->first;

  f.github.clearRequests();
  run.state = RunState::Running;
  f.reporter->planned(run, fleetPlan());
  f.drain();
  auto comments = std::string("/repos/alice/infra/issues/7/comments");
  CHECK(f.github.targets() ==
        std::vector<std::string>{"PATCH /repos/alice/infra/check-runs/" + std::to_string(planRun),
                                 "POST /repos/alice/infra/check-runs",  // db
                                 "POST /repos/alice/infra/check-runs",  // edge
                                 "POST /repos/alice/infra/check-runs",  // mail
                                 "POST /repos/alice/infra/check-runs",  // web1
                                 "POST /repos/alice/infra/check-runs",  // web2
                                 "GET /app",  // the App's slug: its comments are <slug>[bot]'s
                                 "GET " + comments + "?per_page=100", "POST " + comments});
  auto planned = f.github.requests()[0].json();
  CHECK(planned["status"] == "completed");
  CHECK(planned["conclusion"] == "success");
  CHECK(planned["output"]["title"] == "3 of 5 machines affected");
  std::string summary = planned["output"]["summary"];
  CHECK(summary.find("| `web1` | **yes** | file `modules/web.nix` |") != std::string::npos);
  CHECK(summary.find("[Run #12](https://ci.example.org/runs/12)") != std::string::npos);

  f.github.clearRequests();
  auto web2 = hostView("web2", Stage::Build, HostState::Running);
  web2.startedAt = 1767225600000;
  f.reporter->hostChanged(run, web2);
  web2.state = HostState::Failed;
  web2.finishedAt = 1767225660000;
  web2.summary = "build failed: hello-2.13.drv";
  web2.logTail =
      "building '/nix/store/x-hello-2.13.drv'...\nerror: builder failed with exit code 1";
  f.reporter->hostChanged(run, web2);
  f.drain();  // the in-progress update was superseded before it was sent: one PATCH
  REQUIRE(f.github.requests().size() == 1);
  auto failed = f.github.requests()[0];
  auto runs = f.github.checkRuns();
  int64_t web2Run = 0;
  for (const auto& [id, cr] : runs)
    if (cr["name"] == "switchyard/build/web2") web2Run = id;
  CHECK(failed.target() == "PATCH /repos/alice/infra/check-runs/" + std::to_string(web2Run));
  auto body = failed.json();
  CHECK(body["conclusion"] == "failure");
  CHECK(body["started_at"] == "2026-01-01T00:00:00Z");
  CHECK(body["completed_at"] == "2026-01-01T00:01:00Z");
  CHECK(body["external_id"] == "run:12:build:web2");
  CHECK(body["actions"] == json::array({{{"label", "Re-run"},
                                         {"description", "Run this build again"},
                                         {"identifier", "rerun"}}}));
  std::string out = body["output"]["summary"];
  CHECK(out.find("```text\nbuilding '/nix/store/x-hello-2.13.drv'...\nerror: builder failed with "
                 "exit code 1\n```") != std::string::npos);
  // the failure as an annotation: no source place in a build log, so its last lines
  auto notes = body["output"]["annotations"];
  REQUIRE(notes.size() == 1);
  CHECK(notes[0]["path"] == "flake.nix");
  CHECK(notes[0]["annotation_level"] == "failure");
  CHECK(notes[0]["title"] == "web2: build failed: hello-2.13.drv (last log lines)");
  CHECK(notes[0]["message"] ==
        "building '/nix/store/x-hello-2.13.drv'...\nerror: builder failed with exit code 1");

  // what GitHub holds: six check runs, one per stage and host, each with our external_id
  std::map<std::string, std::string> conclusions;
  for (const auto& [id, cr] : f.github.checkRuns())
    conclusions[cr["name"].get<std::string>() + " " + cr["external_id"].get<std::string>()] =
        cr["conclusion"].is_null() ? cr["status"].get<std::string>()
                                   : cr["conclusion"].get<std::string>();
  CHECK(conclusions ==
        std::map<std::string, std::string>{{"switchyard/plan run:12:plan:", "success"},
                                           {"switchyard/build/db run:12:build:db", "queued"},
                                           {"switchyard/build/edge run:12:build:edge", "success"},
                                           {"switchyard/build/mail run:12:build:mail", "success"},
                                           {"switchyard/build/web1 run:12:build:web1", "queued"},
                                           {"switchyard/build/web2 run:12:build:web2", "failure"}});
  CHECK(f.github.mintedTokens().size() == 1);  // cached
  CHECK(f.log.all().find("ghs_fake1_77") == std::string::npos);
}

TEST_CASE(
    "report: above fold_statuses_above hosts, unaffected hosts are reported in "
    "switchyard/plan only, and its description says so",
    "[integration][report]") {
  GitHubFixture f;
  const size_t threshold = GENERATE(4, 5);  // 5 hosts: folded above 4, not above 5
  runner::report::ReporterOptions o;
  o.foldStatusesAbove = {{"home", threshold}};
  f.reporter.emplace(*f.db, f.forges, f.templates, f.clock, f.log, o);
  auto run = deployRun();
  f.reporter->runQueued(run);
  run.state = RunState::Running;
  f.reporter->planned(run, fleetPlan());
  f.drain();
  auto edge = hostView("edge", Stage::Plan, HostState::NotAffected);
  f.reporter->hostChanged(run, edge);  // as the scheduler does when it selects the hosts
  auto web1 = hostView("web1", Stage::Deploy, HostState::Succeeded, "deployed in 12s");
  f.reporter->hostChanged(run, web1);
  run.state = RunState::Succeeded;
  f.reporter->runFinished(run, {hostView("db", Stage::Deploy, HostState::Succeeded, "deployed"),
                                edge, hostView("mail", Stage::Plan, HostState::NotAffected), web1,
                                hostView("web2", Stage::Deploy, HostState::Succeeded, "deployed")});
  f.drain();

  std::vector<std::string> contexts;
  for (const auto& s : f.github.statuses(kRepo, kSha)) contexts.push_back(s.context);
  const bool unaffectedPosted =
      std::count(contexts.begin(), contexts.end(), "switchyard/build/edge") +
      std::count(contexts.begin(), contexts.end(), "switchyard/deploy/mail");
  const auto bodies = statusBodies(f.github);
  INFO(runner::join(bodies, "\n"));
  REQUIRE_FALSE(bodies.empty());
  if (threshold == 4) {
    CHECK(bodies.front() ==
          "switchyard/plan=success:3 of 5 machines affected; the 2 unaffected are reported "
          "here only (over 4 machines)");
    CHECK_FALSE(unaffectedPosted);
    for (const auto& b : bodies) {
      CHECK(b.find("/edge=") == std::string::npos);
      CHECK(b.find("/mail=") == std::string::npos);
    }
  } else {
    CHECK(bodies.front() == "switchyard/plan=success:3 of 5 machines affected");
    CHECK(unaffectedPosted);
    CHECK(std::count_if(bodies.begin(), bodies.end(), [](const std::string& b) {
            return b.find("/edge=") != std::string::npos || b.find("/mail=") != std::string::npos;
          }) == 4);  // 2 unaffected hosts × 2 stages
  }
}
