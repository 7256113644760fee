// The state table (runner/report/mapping.h): contexts, external ids, commit status states,
// check run statuses and conclusions, and the words for each host state and for a plan.
#include "runner/report/mapping.h"

#include <catch2/catch.hpp>

#include "runner/core/text.h"

using namespace runner;
using namespace runner::report;

namespace {
RunHostView host(HostState s, Stage stage = Stage::Build, std::string summary = "") {
  RunHostView h;
  h.host = "web1";
  h.stage = stage;
  h.state = s;
  h.summary = std::move(summary);
  return h;
}
}  // namespace

TEST_CASE("mapping: contexts name the stage and host", "[unit][report]") {
  CHECK(contextName(Stage::Plan, "") == "switchyard/plan");
  CHECK(contextName(Stage::Build, "web1") == "switchyard/build/web1");
  CHECK(contextName(Stage::Deploy, "db.lan") == "switchyard/deploy/db.lan");
}

TEST_CASE("mapping: every host state has a status state, check status and conclusion",
          "[unit][report]") {
  struct Row {
    HostState state;
    StatusState status;
    CheckStatus check;
    std::optional<CheckConclusion> conclusion;
  };
  const Row table[] = {
      {HostState::Pending, StatusState::Pending, CheckStatus::Queued, std::nullopt},
      {HostState::Running, StatusState::Pending, CheckStatus::InProgress, std::nullopt},
      {HostState::Succeeded, StatusState::Success, CheckStatus::Completed,
       CheckConclusion::Success},
      {HostState::NotAffected, StatusState::Success, CheckStatus::Completed,
       CheckConclusion::Success},
      {HostState::Failed, StatusState::Failure, CheckStatus::Completed, CheckConclusion::Failure},
      {HostState::RolledBack, StatusState::Failure, CheckStatus::Completed,
       CheckConclusion::Failure},
      {HostState::Unreachable, StatusState::Error, CheckStatus::Completed,
       CheckConclusion::Failure},
      {HostState::Refused, StatusState::Error, CheckStatus::Completed, CheckConclusion::Failure},
      {HostState::Skipped, StatusState::Error, CheckStatus::Completed, CheckConclusion::Skipped},
      {HostState::Superseded, StatusState::Error, CheckStatus::Completed,
       CheckConclusion::Cancelled},
      {HostState::Interrupted, StatusState::Error, CheckStatus::Completed,
       CheckConclusion::Cancelled},
  };
  for (const auto& r : table) {
    INFO(toString(r.state));
    CHECK(statusStateFor(r.state) == r.status);
    CHECK(checkStatusFor(r.state) == r.check);
    CHECK(conclusionFor(r.state) == r.conclusion);
  }
}

TEST_CASE("mapping: words come from the summary, else from the state", "[unit][report]") {
  RunView run;
  run.id = 12;
  CHECK(describeHost(run, Stage::Build, host(HostState::Pending)) == "waiting to build");
  CHECK(describeHost(run, Stage::Deploy, host(HostState::Pending)) == "waiting to deploy");
  CHECK(describeHost(run, Stage::Build, host(HostState::Running)) == "building");
  CHECK(describeHost(run, Stage::Deploy, host(HostState::Running)) == "deploying");
  CHECK(describeHost(run, Stage::Build, host(HostState::NotAffected)) == "not affected");
  CHECK(describeHost(run, Stage::Build, host(HostState::Failed)) == "build failed");
  CHECK(describeHost(run, Stage::Deploy, host(HostState::RolledBack)) == "rolled back");
  CHECK(describeHost(run, Stage::Deploy, host(HostState::Refused)) == "deploy refused");
  CHECK(describeHost(run, Stage::Build, host(HostState::Interrupted)) ==
        "interrupted: the runner stopped");
  CHECK(describeHost(run, Stage::Build, host(HostState::Superseded)) == "superseded");
  run.supersededBy = 13;
  CHECK(describeHost(run, Stage::Build, host(HostState::Superseded)) == "superseded by run #13");

  auto built = host(HostState::Succeeded);
  CHECK(describeHost(run, Stage::Build, built) == "built");
  built.startedAt = 1'000'000;
  built.finishedAt = 1'134'000;
  CHECK(describeHost(run, Stage::Build, built) == "built in 2m14s");
  CHECK(describeHost(run, Stage::Deploy, built) == "deployed in 2m14s");

  CHECK(describeHost(
            run, Stage::Deploy,
            host(HostState::RolledBack, Stage::Deploy, "  rolled back:\n  health check failed ")) ==
        "rolled back: health check failed");
}

TEST_CASE("mapping: a plan in words", "[unit][report]") {
  Plan plan;
  auto add = [&](std::string name, bool affected) {
    HostPlan h;
    h.name = std::move(name);
    h.affected = affected;
    plan.hosts.push_back(h);
  };
  add("a", true);
  add("b", true);
  add("c", true);
  add("d", false);
  add("e", false);
  CHECK(describePlan(plan) == "3 of 5 machines affected");
  plan.hosts[0].evalError = "infinite recursion";
  CHECK(describePlan(plan) == "3 of 5 machines affected, 1 does not evaluate");
  Plan none;
  none.hosts = {plan.hosts[3]};
  CHECK(describePlan(none) == "no machine affected (1 machine)");
  Plan one;
  one.hosts = {plan.hosts[1]};
  CHECK(describePlan(one) == "1 of 1 machine affected");
  HostPlan removed;
  removed.name = "old";
  removed.affected = true;
  removed.reasons.push_back({ReasonKind::RemovedHost, "", "", ""});
  one.hosts.push_back(removed);
  CHECK(describePlan(one) == "1 of 1 machine affected");  // removed hosts are not counted
}

TEST_CASE("mapping: only deploy runs outside pull requests deploy", "[unit][report]") {
  RunView run;
  run.kind = RunKind::Deploy;
  CHECK(runDeploys(run));
  run.kind = RunKind::Check;
  CHECK_FALSE(runDeploys(run));
  run.kind = RunKind::Rerun;
  CHECK(runDeploys(run));
  run.stageFilter = Stage::Build;
  CHECK_FALSE(runDeploys(run));
  run.stageFilter = Stage::Deploy;
  CHECK(runDeploys(run));
  run.prNumber = 7;
  CHECK_FALSE(runDeploys(run));
  run.prNumber = 0;
  run.fromFork = true;
  run.kind = RunKind::Deploy;
  CHECK_FALSE(runDeploys(run));
}

TEST_CASE("mapping: failure annotations point at the places Nix's error trace names",
          "[unit][report]") {
  const std::string nixpkgs = "/nix/store/0i4fcp0cd1rcaxnb8mbqirdpikdzvjmp-source";
  const std::string ours = "/nix/store/3x0nqkbbpwjmq3y2hg0hbq9pmv5afq2i-source";
  const std::string log =
      "error: undefined variable 'pkgz'\n"
      "\n"
      "       at " +
      ours +
      "/hosts/web1.nix:12:14:\n"
      "\n"
      "           11|   environment.systemPackages = [\n"
      "           12|     pkgz.hello\n"
      "             |              ^\n"
      "       … while evaluating the module argument\n"
      "       at " +
      nixpkgs +
      "/lib/modules.nix:508:28:\n"
      "       at " +
      nixpkgs +
      "/nixos/modules/system/activation/top-level.nix:85:7:\n"
      "       at " +
      ours +
      "/modules/common.nix:3:5:\n"
      "       at " +
      ours + "/hosts/web1.nix:12:14:\n";
  auto notes = failureAnnotations("web1", "build failed", log);
  REQUIRE(notes.size() == 2);  // nixpkgs' own places and the repeat are left out
  CHECK(notes[0].path == "hosts/web1.nix");
  CHECK(notes[0].startLine == 12);
  CHECK(notes[0].endLine == 12);
  CHECK(notes[0].level == CheckAnnotation::Level::Failure);
  CHECK(notes[0].title == "web1: build failed");
  CHECK(notes[0].message == "error: undefined variable 'pkgz'");
  CHECK(notes[0].rawDetails.find("pkgz.hello") != std::string::npos);  // the last lines
  CHECK(notes[1].path == "modules/common.nix");
  CHECK(notes[1].startLine == 3);
  CHECK(notes[1].rawDetails.empty());

  // a build failure names no source: the last 20 lines, on flake.nix
  std::string buildLog;
  for (int i = 1; i <= 30; ++i) buildLog += "line " + std::to_string(i) + "\n";
  buildLog += "error: builder for '/nix/store/x-hello.drv' failed with exit code 1";
  auto tail = failureAnnotations("web2", "build failed: hello.drv", buildLog);
  REQUIRE(tail.size() == 1);
  CHECK(tail[0].path == "flake.nix");
  CHECK(tail[0].startLine == 1);
  CHECK(tail[0].title == "web2: build failed: hello.drv (last log lines)");
  CHECK(tail[0].message.rfind("line 12\n", 0) == 0);
  CHECK(runner::endsWith(tail[0].message, "failed with exit code 1"));
  CHECK(failureAnnotations("web3", "failed", "  \n").empty());
  // store paths that are not a flake's source, or malformed, are no place
  CHECK(failureAnnotations("x", "y", "at /nix/store/short-source/a.nix:1:1:")[0].path ==
        "flake.nix");
  CHECK(failureAnnotations("x", "y", "at " + ours + "/a b.nix:1:1:")[0].path == "flake.nix");
  CHECK(failureAnnotations("x", "y", "at " + ours + "/a.nix:0:1:")[0].path == "flake.nix");
}
