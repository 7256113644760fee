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
