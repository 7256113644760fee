// The daemon's plan stage (NixPlanStage) on lab flakes: a flake that does not evaluate fails
// the plan, and a run without a base asks Nix for the hosts.
#include "runner/plan/plan_stage.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/lab/lab.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"

using runner::lab::Lab;

TEST_CASE("the daemon's plan stage fails a plan of a flake that does not evaluate",
          "[integration][plan][nix]") {
  // Issue 11 item 5: the run fails (the scheduler marks it failed with the reason) instead of
  // planning "every host removed" and ending green.
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-plan-stage");
  auto lab = Lab::create(procs, tmp.path(), {.hosts = runner::lab::numberedHosts(2)});
  const std::string flake = runner::os::readFile(lab.infra.path() / "flake.nix");
  std::string a = lab.infra.head();
  std::string missing = flake;
  const std::string call = "lib.genAttrs [";
  auto pos = missing.find(call);
  REQUIRE(pos != std::string::npos);
  missing.replace(pos, call.size(), "lib.genAttrsThatDoesNotExist [");
  std::string b = lab.infra.commitFiles({{"flake.nix", missing}}, "missing lib function");
  runner::nix::NixCli nix(procs);
  runner::PrioritySlots slots(2);
  runner::NullLogger log;
  runner::plan::NixPlanStage stage(nix, {}, slots, nullptr, 2, log);
  runner::RepoConfig repo;
  repo.name = "infra";
  for (auto mode : {runner::PlanMode::Auto, runner::PlanMode::Exact}) {
    INFO(runner::toString(mode));
    repo.detection = mode;
    runner::PlanInput in{&repo, lab.infra.path(), a, b, tmp.path() / "plan.log"};
    CHECK_THROWS_AS(stage.plan(in), runner::PlanError);
    in.from = std::nullopt;  // no base: the hosts come from Nix, which fails
    CHECK_THROWS_AS(stage.plan(in), runner::PlanError);
  }
  repo.detection = runner::PlanMode::Static;
  runner::PlanInput in{&repo, lab.infra.path(), a, b, tmp.path() / "plan.log"};
  runner::Plan p = stage.plan(in);  // the old hosts, dynamic: their build fails the run
  CHECK(p.affectedHosts() == std::vector<std::string>{"host01", "host02"});
  in.from = std::nullopt;  // no base and no host known: a failed plan
  CHECK_THROWS_AS(stage.plan(in), runner::PlanError);
}

TEST_CASE("a run without a base asks Nix for the hosts when static discovery is incomplete",
          "[integration][plan][nix]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-plan-nobase");
  auto lab = Lab::create(procs, tmp.path(), {.hosts = runner::lab::numberedHosts(2)});
  std::string to = lab.infra.addComputedHost("host03", "host01");
  runner::nix::NixCli nix(procs);
  runner::PrioritySlots slots(2);
  runner::NullLogger log;
  runner::plan::NixPlanStage stage(nix, {}, slots, nullptr, 2, log);
  runner::RepoConfig repo;
  repo.name = "infra";
  runner::PlanInput in{&repo, lab.infra.path(), std::nullopt, to, tmp.path() / "plan.log"};
  runner::Plan p = stage.plan(in);
  CHECK(p.affectedHosts() == std::vector<std::string>{"host01", "host02", "host03"});
}
