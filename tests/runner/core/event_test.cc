#include "runner/core/event.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace runner;

TEST_CASE("events survive a JSON round trip", "[unit][event]") {
  Event e;
  e.kind = EventKind::PullRequest;
  e.forge = "home";
  e.forgeType = "gitea";
  e.deliveryId = "d-1";
  e.repo = "alice/infra";
  e.prAction = PrAction::Synchronized;
  e.prNumber = 7;
  e.headSha = "abc";
  e.fromFork = true;
  e.hosts = {"web1", "db1"};
  nlohmann::json j = e;
  CHECK(j["kind"] == "pull_request");
  CHECK(j["pr_action"] == "synchronized");
  Event back = j.get<Event>();
  CHECK(back.kind == EventKind::PullRequest);
  CHECK(back.prAction == PrAction::Synchronized);
  CHECK(back.prNumber == 7);
  CHECK(back.fromFork);
  CHECK(back.hosts == e.hosts);
}

TEST_CASE("zero shas of any length", "[unit][event]") {
  CHECK(isZeroSha(std::string(40, '0')));
  CHECK(isZeroSha(std::string(64, '0')));
  CHECK_FALSE(isZeroSha("0000a"));
  CHECK_FALSE(isZeroSha(""));
}
