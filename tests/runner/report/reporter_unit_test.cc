// The reporter's rules without HTTP (a RecordingForge): the bound on calls per commit for a
// big fleet, runs that end before a plan, a failed plan in the PR comment, an older run that
// cannot overwrite a newer run's status, a restart between plan and finish, re-runs making
// new check runs, interrupted hosts, and runs no forge should hear about.
#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/report/forge_reporter.h"
#include "runner/report/mapping.h"
#include "runner/report/sender.h"
#include "tests/runner/report/recording_forge.h"
#include "tests/runner/report/report_fixture.h"

using namespace tests::report;
using runner::HostState;
using runner::RunState;
using runner::Stage;

namespace {

struct Local {
  explicit Local(bool checkRuns = false) : forge(checkRuns) { wire(); }
  void wire() {
    reporter.emplace(*db, forges, templates, clock, log);
    sender.emplace(*db, forges, renderer, clock, log,
                   runner::report::SenderOptions{.jitter = 0, .seed = 1});
  }
  void restart() {
    sender.reset();
    reporter.reset();
    db.reset();
    db = runner::store::Database::open(dir.path() / "s.db");
    wire();
  }
  bool rowsEmpty() { return runner::store::Outbox(*db).list().empty(); }
  std::vector<std::string> sent() {
    sender->drain();
    return forge.taken();
  }
  runner::os::TempDir dir{"sy-report-unit"};
  std::unique_ptr<runner::store::Database> db = runner::store::Database::open(dir.path() / "s.db");
  tests::ManualClock clock;
  tests::RecordingLogger log;
  RecordingForge forge;
  runner::report::Forges forges{{"home", &forge}};
  runner::report::Templates templates = runner::report::Templates::builtIn();
  RecordedDiffer differ;
  runner::report::CommentRenderer renderer{templates, &differ};
  std::optional<runner::report::ForgeReporter> reporter;
  std::optional<runner::report::OutboxSender> sender;
};

runner::Plan bigPlan(int hosts, int affected) {
  runner::Plan p;
  for (int i = 0; i < hosts; ++i) {
    runner::HostPlan h;
    h.name = "host" + std::to_string(100 + i);
    h.affected = i < affected;
    if (h.affected) h.reasons.push_back({runner::ReasonKind::Input, "", "nixpkgs", ""});
    p.hosts.push_back(h);
  }
  return p;
}

// Drives a whole run, sending after every call (the most calls a sender can make); returns
// the number of forge calls.
size_t callsForRun(Local& l, runner::RunView run, const runner::Plan& plan) {
  l.reporter->runQueued(run);
  l.sender->drain();
  run.state = RunState::Running;
  l.reporter->planned(run, plan);
  l.sender->drain();
  std::vector<runner::RunHostView> finals;
  for (const auto& h : plan.hosts) {
    if (!h.affected) {
      finals.push_back(hostView(h.name, Stage::Plan, HostState::NotAffected));
      continue;
    }
    std::vector<Stage> stages = {Stage::Build};
    if (runner::report::runDeploys(run)) stages.push_back(Stage::Deploy);
    for (Stage s : stages) {
      l.reporter->hostChanged(run, hostView(h.name, s, HostState::Running, "working"));
      l.sender->drain();
      l.reporter->hostChanged(run, hostView(h.name, s, HostState::Succeeded, "done"));
      l.sender->drain();
    }
    finals.push_back(hostView(h.name, stages.back(), HostState::Succeeded, "done"));
  }
  run.state = RunState::Succeeded;
  l.reporter->runFinished(run, finals);
  l.sender->drain();
  return l.forge.taken().size();
}

}  // namespace

TEST_CASE(
    "reporter: calls per commit stay bounded — 2 + 3A + (N−A) per stage for a small "
    "run, 2 + N per stage past the progress limit, 2 comment writes",
    "[unit][report]") {
  {
    Local l;
    auto run = prRun();
    CHECK(callsForRun(l, run, bigPlan(5, 3)) == 2 + 3 * 3 + 2 + 2);  // + 2 comment upserts
  }
  {
    Local l;
    auto run = deployRun();
    CHECK(callsForRun(l, run, bigPlan(5, 3)) == 2 + 2 * (3 * 3 + 2));
  }
  {
    Local l;  // 60 machines, 50 affected: past the limit of 20, only final states
    auto run = prRun();
    CHECK(callsForRun(l, run, bigPlan(60, 50)) == 2 + 60 + 2);
  }
  {
    Local l;
    auto run = deployRun();
    CHECK(callsForRun(l, run, bigPlan(60, 50)) == 2 + 2 * 60);
    size_t comments = 0;
    for (const auto& c : l.forge.taken()) comments += runner::startsWith(c, "comment");
    CHECK(comments == 0);  // no pull request, no comment
  }
}

TEST_CASE("reporter: a run that ends before its plan says so on switchyard/plan",
          "[unit][report]") {
  Local l;
  auto run = deployRun();
  l.reporter->runQueued(run);
  run.state = RunState::Superseded;
  run.supersededBy = 13;
  l.reporter->runFinished(run, {});
  CHECK(l.sent() == std::vector<std::string>{"status switchyard/plan=error:superseded by run #13"});

  Local failed;
  auto pr = prRun();
  failed.reporter->runQueued(pr);
  failed.sender->drain();
  pr.state = RunState::Failed;
  pr.error = "cannot evaluate flake.nix:\n  syntax error, unexpected '}'";
  failed.reporter->runFinished(pr, {});
  CHECK(failed.sent() ==
        std::vector<std::string>{"status switchyard/plan=pending:waiting to plan",
                                 "status switchyard/plan=failure:plan failed: cannot evaluate "
                                 "flake.nix: syntax error, unexpected '}'",
                                 "comment 7"});
  CHECK(failed.forge.lastComment.find("### Switchyard · plan failed") != std::string::npos);
  CHECK(failed.forge.lastComment.find("> **Error:** cannot evaluate flake.nix\\: syntax error, "
                                      "unexpected '\\}'") != std::string::npos);
}

TEST_CASE("reporter: an older run's late update never replaces a newer run's status",
          "[unit][report]") {
  Local l;
  auto old = deployRun(12);
  auto rerun = deployRun(13);
  rerun.kind = runner::RunKind::Rerun;
  rerun.hostsFilter = {"web1"};
  l.reporter->hostChanged(rerun, hostView("web1", Stage::Deploy, HostState::Running));
  l.reporter->hostChanged(old, hostView("web1", Stage::Deploy, HostState::Failed, "failed"));
  l.sender->drain();
  l.reporter->hostChanged(old, hostView("web1", Stage::Deploy, HostState::Failed, "failed"));
  l.reporter->hostChanged(rerun, hostView("web1", Stage::Deploy, HostState::Succeeded, "deployed"));
  CHECK(l.sent() == std::vector<std::string>{"status switchyard/deploy/web1=pending:deploying",
                                             "status switchyard/deploy/web1=success:deployed"});
}

TEST_CASE("reporter: after a restart between plan and finish the comment still has the plan",
          "[unit][report]") {
  Local l;
  auto run = prRun();
  run.state = RunState::Running;
  l.reporter->planned(run, fleetPlan());
  l.sender->drain();
  l.restart();  // the reporter's memory of the plan is gone
  run.state = RunState::Succeeded;
  l.reporter->runFinished(run, {hostView("web1", Stage::Build, HostState::Succeeded, "built")});
  l.sender->drain();
  CHECK(l.forge.lastComment.find("### Switchyard · 3 of 5 machines affected") != std::string::npos);
  CHECK(l.forge.lastComment.find("| `web1` | **yes** | file `modules/web.nix` | ✅ built |") !=
        std::string::npos);
}

TEST_CASE("reporter: check runs are per run — a re-run creates new ones, updates PATCH them",
          "[unit][report]") {
  Local l(/*checkRuns=*/true);
  auto run = prRun(12);
  l.reporter->hostChanged(run, hostView("web2", Stage::Build, HostState::Failed, "build failed"));
  l.sender->drain();
  auto rerun = prRun(13);
  rerun.kind = runner::RunKind::Rerun;
  rerun.hostsFilter = {"web2"};
  rerun.stageFilter = Stage::Build;
  l.reporter->runQueued(rerun);
  l.sender->drain();
  l.reporter->hostChanged(rerun, hostView("web2", Stage::Build, HostState::Succeeded, "built"));
  CHECK(l.sent() == std::vector<std::string>{
                        "check create switchyard/build/web2 completed",
                        "check create switchyard/build/web2 queued",  // the re-run's own
                        "check update 102 switchyard/build/web2 success",
                    });
}

TEST_CASE("reporter: hosts in flight when a run is interrupted or superseded end in words",
          "[unit][report]") {
  Local l;
  auto run = deployRun();
  run.state = RunState::Interrupted;
  l.reporter->runFinished(run, {hostView("web1", Stage::Deploy, HostState::Running, "activating"),
                                hostView("db", Stage::Build, HostState::Succeeded, "built")});
  CHECK(l.sent() == std::vector<std::string>{
                        "status switchyard/deploy/web1=error:interrupted: the runner stopped",
                        "status switchyard/build/db=success:built",
                        "status switchyard/deploy/db=error:interrupted: the runner stopped"});
}

TEST_CASE("reporter: runs without a forge, or with one not configured, report nothing",
          "[unit][report]") {
  Local l;
  auto run = deployRun();
  run.forge = "";
  l.reporter->runQueued(run);
  run.forge = "elsewhere";
  l.reporter->runQueued(run);
  l.reporter->runQueued(run);
  CHECK(l.rowsEmpty());
  size_t warnings = 0;
  for (const auto& line : runner::split(l.log.all(), '\n'))
    warnings += line.find("no forge named 'elsewhere'") != std::string::npos;
  CHECK(warnings == 1);  // said once, not per call
}

TEST_CASE(
    "reporter: hosts in flight during the plan make no calls, a host that does not "
    "evaluate fails its build context",
    "[unit][report]") {
  Local l;
  auto run = prRun();
  run.prNumber = 0;
  l.reporter->hostChanged(run, hostView("web1", Stage::Plan, HostState::Running, "evaluating"));
  l.reporter->hostChanged(run, hostView("web2", Stage::Plan, HostState::Pending));
  l.reporter->hostChanged(run, hostView("web2", Stage::Plan, HostState::Failed,
                                        "does not evaluate: infinite recursion"));
  CHECK(l.sent() ==
        std::vector<std::string>{
            "status switchyard/build/web2=failure:does not evaluate: infinite recursion"});
}
