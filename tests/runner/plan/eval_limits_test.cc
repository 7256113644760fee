// The static planner on hostile flakes (issue 11: a fork's flake.nix is planned by the daemon):
// evaluation that would run forever or take unbounded memory stops at EvalLimits with a
// PlanError, and the fuzz target's findings (tests/fuzz/static_plan_fuzz.cc) stay fixed. The
// files live in memory (tests/support/memory_files.h).
#include <map>
#include <string>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/plan/evaluator.h"
#include "runner/plan/static_planner.h"
#include "tests/support/memory_files.h"

using namespace runner;
using tests::MemoryFiles;

namespace {

// Plans `files` against the same files with flake.nix edited (so flake-level code is compared).
Plan planEdited(const std::map<std::string, std::string>& files,
                const plan::StaticOptions& opts = {}) {
  MemoryFiles to(files), from(files);
  from.put("flake.nix", "# old\n" + files.at("flake.nix"));
  return plan::planStatic(from, "old", to, "new",
                          {{"flake.nix", FileStatus::Modified, std::nullopt}}, opts);
}

// The work discovery and scanning of every host take at the new commit.
uint64_t workOf(const std::map<std::string, std::string>& files) {
  MemoryFiles mem(files);
  plan::ParseCache cache;
  plan::SourceTree tree(mem, "new", cache);
  plan::Evaluator ev(tree, {"nixpkgs"});
  ev.loadFlake();
  (void)ev.hosts();
  (void)ev.hostSetTrace();
  return ev.work();
}

const char* kGenAttrsFlake = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations = nixpkgs.lib.genAttrs [ "a" "b" ] (h: nixpkgs.lib.nixosSystem {
      modules = [ ./hosts/${h}.nix ];
    });
  };
})nix";

}  // namespace

TEST_CASE("a flake whose evaluation branches exponentially fails the plan at the work limit",
          "[unit][plan]") {
  // `n == currentSystem` cannot be decided, so both branches are evaluated: 2^200 steps.
  std::map<std::string, std::string> files = {{"flake.nix", R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }:
    let f = n: if n == builtins.currentSystem then [ ] else f (n - 1) ++ f (n - 1);
    in { nixosConfigurations.a = nixpkgs.lib.nixosSystem { modules = f 200; }; };
})nix"},
                                              {"hosts/a.nix", "{ }"}};
  // A tenth of the default budget: the same code path, a tenth of the time (the default's
  // 20M units take ~40 s on this shape; bench/RESULTS.md).
  plan::StaticOptions opts;
  opts.limits.maxWork = 2'000'000;
  CHECK_THROWS_WITH(planEdited(files, opts), Catch::Contains("units of work"));
}

TEST_CASE("a list doubled in a loop fails the plan at the work limit", "[unit][plan]") {
  std::map<std::string, std::string> files = {{"flake.nix", R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }:
    let l = n: if n == 0 then [ ./a.nix ] else let t = l (n - 1); in t ++ t;
    in { nixosConfigurations.a = nixpkgs.lib.nixosSystem { modules = l 60; }; };
})nix"}};
  CHECK_THROWS_WITH(planEdited(files), Catch::Contains("units of work"));
}

TEST_CASE("a realistic flake is far inside the evaluation limits", "[unit][plan]") {
  std::map<std::string, std::string> files = {
      {"flake.nix", kGenAttrsFlake}, {"hosts/a.nix", "{ }"}, {"hosts/b.nix", "{ }"}};
  Plan p = planEdited(files);
  CHECK(p.hosts.size() == 2);
  CHECK(workOf(files) < plan::EvalLimits{}.maxWork / 1000);
}
