// Build on the target (issues 16 and 18), end to end through `switchyard deploy`: hosts placed
// on their targets by Colmena's deployment.buildOnTarget, by a Clan buildHost that is the host
// itself, and by the config's `build_on: target` are evaluated on the runner, built in the
// target's own store and activated there, while the runner's store never gets their closures;
// an unreachable target fails its host at once with the reason, and a Clan buildHost on
// another machine is refused with what to do. Also: a deploy's targets and Colmena keys come
// from one nix process.
#include <chrono>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/deploy/deploy_stage.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/runner/nix/counting_process_runner.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::lab;

namespace {

std::map<std::string, nlohmann::json> byHost(const nlohmann::json& j) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& h : j.at("hosts")) out[h.at("host").get<std::string>()] = h;
  return out;
}

}  // namespace

TEST_CASE("hosts placed on their targets are built there and deployed without a copy back",
          "[integration][ssh][deploy][cli][build]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-bot");
  TestHosts hosts({.names = {"colm", "clan", "conf", "here"}});
  std::vector<LabHost> lab(5);
  for (size_t i = 0; i < lab.size(); ++i) {
    lab[i].name = i < 4 ? hosts.hosts()[i].name : "elsewhere";
    lab[i].colmenaTarget =
        i < 4 ? hosts.hosts()[i].target().toString() : std::string("root@192.0.2.1");
  }
  lab[0].extraConfig = "deployment.buildOnTarget = true;";
  lab[1].clanTarget = lab[1].colmenaTarget;
  lab[1].colmenaTarget.reset();
  lab[1].extraConfig = "clan.core.networking.buildHost = \"" + *lab[1].clanTarget + "\";";
  lab[4].extraConfig = "clan.core.networking.buildHost = \"root@builder.lab.invalid\";";
  auto l = Lab::create(procs, tmp.path() / "lab", {.hosts = lab});
  const fs::path state = tmp.path() / "state";
  const fs::path cfg = tmp.path() / "switchyard.yaml";
  runner::os::writeFileAtomic(
      cfg, "state_dir: " + state.string() +
               "\nrepos:\n  - name: lab/infra\n    path: " + l.infra.path().string() +
               "\n    rollout: {max_parallel: 4, stop_on_failure: false}\n"
               "    activation: {confirm_timeout: 5s}\n"
               "    hosts:\n      conf: {build_on: target}\n"
               "ssh:\n  identity_file: " +
               hosts.identityFile().string() + "\n  known_hosts: " +
               hosts.knownHostsFile().string() + "\n  use_agent: false\n  connect_timeout: 3s\n");
  auto deploy = [&](std::vector<std::string> names) {
    std::vector<std::string> args = {"deploy",     "--repo", l.infra.path().string(),
                                     "--rev",      "HEAD",   "--config",
                                     cfg.string(), "--json"};
    args.insert(args.end(), names.begin(), names.end());
    return tests::switchyard(args);
  };
  const std::string sha = tests::runOk("git", {"rev-parse", "HEAD"}, l.infra.path());
  const fs::path buildLogs = state / "logs" / "builds" / sha.substr(0, 12);

  auto r = deploy({"colm", "clan", "conf", "here"});
  INFO(r.out << r.errTail);
  REQUIRE(r.exitStatus == 0);
  auto h = byHost(nlohmann::json::parse(r.out));
  REQUIRE(h.size() == 4);
  for (const std::string name : {"colm", "clan", "conf"}) {
    INFO(name);
    CHECK(h[name]["result"] == "succeeded");
    const std::string out = h[name]["store_path"];
    REQUIRE(runner::startsWith(out, "/nix/store/"));
    CHECK(hosts.host(name).profilePath() == out);  // activated there
    CHECK(hosts.host(name).storeHas(out));
    CHECK_FALSE(fs::exists(fs::symlink_status(out)));  // never in the runner's store
    const std::string log = runner::os::readFile(buildLogs / (name + ".log"));
    INFO(log);
    CHECK(log.find("# building on the target " + hosts.host(name).target().toString()) !=
          std::string::npos);
    CHECK(log.find("nix-store --realise") != std::string::npos);
    CHECK(log.find("# built on the target") != std::string::npos);
  }
  CHECK(runner::os::readFile(buildLogs / "colm.log").find("(deployment.buildOnTarget)") !=
        std::string::npos);
  CHECK(runner::os::readFile(buildLogs / "clan.log").find("(clan.core.networking.buildHost)") !=
        std::string::npos);
  CHECK(runner::os::readFile(buildLogs / "conf.log").find("(hosts.conf.build_on: target)") !=
        std::string::npos);
  // the control: built here as always, copied there by the deploy
  CHECK(h["here"]["result"] == "succeeded");
  CHECK(fs::exists(h["here"]["store_path"].get<std::string>()));
  CHECK(runner::os::readFile(buildLogs / "here.log").find("on the target") == std::string::npos);

  SECTION("an unreachable target fails its host at once; a buildHost elsewhere is refused") {
    hosts.stop("colm");
    auto start = std::chrono::steady_clock::now();
    auto r2 = deploy({"colm", "elsewhere"});
    INFO(r2.out << r2.errTail);
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
    REQUIRE(r2.exitStatus == 1);
    auto h2 = byHost(nlohmann::json::parse(r2.out));
    CHECK(h2["colm"]["result"] == "failed");
    const std::string why = h2["colm"]["reason"];
    CHECK(runner::startsWith(why, "build failed on the target " +
                                      hosts.host("colm").target().toString() + " (unreachable): "));
    CHECK(h2["elsewhere"]["result"] == "failed");
    CHECK(h2["elsewhere"]["reason"] ==
          "build not built: clan.core.networking.buildHost is 'root@builder.lab.invalid', not the "
          "host's deploy target root@192.0.2.1: Switchyard builds on the runner (and its "
          "build.builders) or on the target itself; set hosts.elsewhere.build_on to runner or "
          "target");
  }
}

TEST_CASE("a deploy's targets and Colmena keys come from one nix process",
          "[integration][nix][deploy]") {
  runner::os::PosixProcessRunner real;
  tests::CountingProcessRunner procs(real);
  runner::os::TempDir tmp("sy-fleetinfo");
  std::vector<LabHost> lab(3);
  lab[0].name = "keyless";
  lab[0].colmenaTarget = "root@10.0.0.1";
  lab[1].name = "keyed";
  lab[1].colmenaTarget = "root@10.0.0.2";
  lab[1].extraConfig = "deployment.keys.k = { text = \"s\"; permissions = \"0640\"; };";
  lab[2].name = "broken";
  lab[2].colmenaTarget = "root@10.0.0.3";
  auto l = Lab::create(real, tmp.path(), {.hosts = lab});
  runner::RepoConfig repo;
  repo.name = "infra";
  runner::nix::NixCli nix(procs);

  auto fleet = runner::deploy::discoverFleet(nix, repo, l.infra.path(), l.infra.head(),
                                             {"keyless", "keyed"}, true);
  CHECK(procs.count("nix") == 1);  // was 2: the host info, then the keys
  CHECK(fleet.targets.at("keyed").toString() == "root@10.0.0.2");
  REQUIRE(fleet.keys.count("keyless"));
  CHECK(std::get<std::vector<runner::deploy::KeySpec>>(fleet.keys.at("keyless")).empty());
  const auto& keys = std::get<std::vector<runner::deploy::KeySpec>>(fleet.keys.at("keyed"));
  REQUIRE(keys.size() == 1);
  CHECK(keys[0].permissions == "0640");

  SECTION("a key declaration that does not evaluate hides neither the target nor Nix's words") {
    std::string rev = l.infra.updateHost(
        "broken", [](LabHost& h) { h.extraConfig = "deployment.keys.k = { text = 1 + \"x\"; };"; });
    procs.reset();
    auto f =
        runner::deploy::discoverFleet(nix, repo, l.infra.path(), rev, {"keyless", "broken"}, true);
    CHECK(f.targets.at("broken").toString() == "root@10.0.0.3");
    REQUIRE(f.keys.count("broken"));
    REQUIRE(std::holds_alternative<std::string>(f.keys.at("broken")));
    const std::string why = std::get<std::string>(f.keys.at("broken"));
    INFO(why);
    CHECK(runner::startsWith(why, "deployment.keys do not evaluate: "));
    CHECK(why.find("cannot add a string to an integer") != std::string::npos);
    CHECK(std::get<std::vector<runner::deploy::KeySpec>>(f.keys.at("keyless")).empty());
  }
}
