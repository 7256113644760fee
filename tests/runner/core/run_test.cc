#include "runner/core/run.h"

#include <catch2/catch.hpp>

using namespace runner;

TEST_CASE("check run external ids name the run, stage and host", "[unit][run]") {
  CHECK(toExternalId({12, Stage::Build, "web1"}) == "run:12:build:web1");
  CHECK(toExternalId({12, Stage::Deploy, "db.lan"}) == "run:12:deploy:db.lan");
  CHECK(toExternalId({12, Stage::Plan, "ignored"}) == "run:12:plan:");

  auto key = parseExternalId("run:42:deploy:vps-het-1");
  REQUIRE(key);
  CHECK(key->runId == 42);
  CHECK(key->stage == Stage::Deploy);
  CHECK(key->host == "vps-het-1");

  auto plan = parseExternalId("run:7:plan:");
  REQUIRE(plan);
  CHECK(plan->runId == 7);
  CHECK(plan->stage == Stage::Plan);
  CHECK(plan->host.empty());
}

TEST_CASE("external ids Switchyard did not write name nothing", "[unit][run]") {
  for (const char* id :
       {"", "run:", "run:1:build", "run:1:build:a:b", "job:1:build:a", "run::build:a",
        "run:-1:build:a", "run:1x:build:a", "run:1:nuke:a", "run:1:build:$(x)",
        "run:99999999999999999999:build:a", "run:1:build:-web"})
    CHECK_FALSE(parseExternalId(id));
}
