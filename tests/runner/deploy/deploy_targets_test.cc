// The deploy stage's target resolution on a lab flake: targets from the config and from the
// flake's Clan/Colmena options, and flake-given targets that are refused.
#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/deploy/deploy_stage.h"
#include "runner/lab/lab.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"

using runner::lab::Lab;
using runner::lab::LabHost;

TEST_CASE("deploy targets: config first, then Clan, Colmena, the name, bad flake text refused",
          "[integration][deploy][nix]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-targets");
  std::vector<LabHost> hosts(5);
  hosts[0].name = "configured";
  hosts[0].clanTarget = "root@10.9.9.9";  // the config wins over it
  hosts[1].name = "clanned";
  hosts[1].clanTarget = "deploy@10.0.0.2:2222";
  hosts[2].name = "colmenad";
  hosts[2].colmenaTarget = "web.example.org";
  hosts[3].name = "plain";
  hosts[4].name = "hostile";
  hosts[4].colmenaTarget = "-oProxyCommand=touch${IFS}/tmp/pwned@x";
  auto lab = Lab::create(procs, tmp.path(), {.hosts = hosts});
  runner::RepoConfig repo;
  repo.name = "infra";
  repo.hosts = {{"configured", "admin@[fd00::7]"}, {"plain", std::nullopt}};
  runner::nix::NixCli nix(procs);
  std::map<std::string, std::string> problems;
  auto t = runner::deploy::resolveTargets(nix, repo, lab.infra.path(), lab.infra.head(),
                                          {"configured", "clanned", "colmenad", "plain", "hostile"},
                                          problems);
  CHECK(t.at("configured").toString() == "admin@[fd00::7]");
  CHECK(t.at("clanned").toString() == "deploy@10.0.0.2:2222");
  CHECK(t.at("colmenad").toString() == "root@web.example.org");
  CHECK(t.at("plain").toString() == "root@plain");
  CHECK_FALSE(t.count("hostile"));
  REQUIRE(problems.size() == 1);
  CHECK(problems.at("hostile").find("the deploy target from colmena: invalid target") == 0);
  CHECK(problems.at("hostile").find("user must be letters") != std::string::npos);
}
