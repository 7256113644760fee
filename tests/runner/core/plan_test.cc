#include "runner/core/plan.h"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

using namespace runner;

TEST_CASE("a plan serialises to the DESIGN.md shape and back", "[unit][core]") {
  Plan p;
  p.repo = "alice/infra";
  p.from = "aaa";
  p.to = "bbb";
  p.inputsChanged.push_back(
      {"nixpkgs", {"nixpkgs"}, LockedSummary{"r1", "h1", 1}, LockedSummary{"r2", "h2", 2}});
  p.filesChanged.push_back({"modules/core/default.nix", FileStatus::Modified, std::nullopt});
  HostPlan h{"vps-het-1",
             true,
             {{ReasonKind::File, "modules/core/default.nix", "", ""},
              {ReasonKind::Input, "", "nixpkgs", ""}}};
  p.hosts.push_back(h);
  p.hosts.push_back({"demo", false, {}});
  nlohmann::json j = p;
  CHECK(j["mode"] == "static");
  CHECK(j["inputs_changed"][0]["old"]["rev"] == "r1");
  CHECK(j["inputs_changed"][0]["new"]["lastModified"] == 2);
  CHECK(j["files_changed"][0]["status"] == "modified");
  CHECK(j["hosts"][0]["reasons"][0] ==
        nlohmann::json{{"kind", "file"}, {"path", "modules/core/default.nix"}});
  CHECK(j["hosts"][0]["reasons"][1] == nlohmann::json{{"kind", "input"}, {"name", "nixpkgs"}});
  CHECK(j["hosts"][1]["old_drv"].is_null());
  Plan back = j.get<Plan>();
  CHECK(back.hosts.size() == 2);
  CHECK(back.hosts[0].reasons == p.hosts[0].reasons);
  CHECK(back.inputsChanged == p.inputsChanged);
  CHECK(back.affectedHosts() == std::vector<std::string>{"vps-het-1"});
}

TEST_CASE("the host-name rule accepts what NixOS users name hosts and refuses paths",
          "[unit][core]") {
  for (std::string ok : {"web-01", "octavia", "a.b_c", "_private", "Host9", "x"}) {
    INFO(ok);
    CHECK_FALSE(hostNameProblem(ok));
  }
  CHECK(hostNameProblem("../../x") == "the name starts with '.'");
  CHECK(*hostNameProblem("/etc/x") ==
        "the name holds '/' (host names are letters, digits, '-', '_' and '.')");
  CHECK(hostNameProblem("a b")->find("' '") != std::string::npos);
  CHECK(hostNameProblem("tab\there")->find("not printable ASCII") != std::string::npos);
  CHECK(hostNameProblem("caf\xc3\xa9")->find("not printable ASCII") != std::string::npos);
  CHECK(hostNameProblem(""));
  CHECK(hostNameProblem(".hidden"));
  CHECK(hostNameProblem(std::string(254, 'a')));
  CHECK_FALSE(hostNameProblem(std::string(253, 'a')));
  // The planner's log sits beside the hosts' logs: no host can take its name.
  CHECK(hostNameProblem(kPlanLogName));
}

TEST_CASE("a plan refuses hosts whose names break the rule, and says so", "[unit][core]") {
  Plan p;
  p.hosts.push_back({.name = "../../../../root/.ssh/x", .affected = true});
  p.hosts.back().newDrv = "/nix/store/aaa-x.drv";
  p.hosts.push_back({.name = "web", .affected = true});
  CHECK(refuseBadHostNames(p) == 1);
  REQUIRE(p.hosts[0].refused);
  CHECK_FALSE(p.hosts[0].affected);
  CHECK_FALSE(p.hosts[0].newDrv);
  CHECK(p.hosts[1].affected);
  CHECK_FALSE(p.hosts[1].refused);
  CHECK(p.affectedHosts() == std::vector<std::string>{"web"});
  CHECK(describeReasons(p.hosts[0]) == "refused: the name starts with '.'");
  REQUIRE(p.warnings.size() == 1);
  CHECK(p.warnings[0] == "1 host is refused: the name breaks the host-name rule");
  // the reason survives the JSON round trip (the scheduler stores plans as JSON)
  Plan back = nlohmann::json(p).get<Plan>();
  CHECK(back.hosts[0].refused == p.hosts[0].refused);
}
