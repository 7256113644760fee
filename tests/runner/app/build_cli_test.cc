// `switchyard hosts` and `switchyard build`, end to end: the built binary on lab flakes with
// real Nix (state in a temp XDG_CACHE_HOME).
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::lab;

namespace {

struct Cli {
  runner::os::TempDir tmp{"sy-cli"};
  runner::os::PosixProcessRunner procs;
  Lab lab;
  explicit Cli(InfraOptions o = {}) : lab(Lab::create(procs, tmp.path() / "lab", std::move(o))) {}
  runner::RunResult run(std::vector<std::string> args) {
    return tests::run(tests::switchyardBinary().string(), args, {},
                      {{"XDG_CACHE_HOME", (tmp.path() / "cache").string()}});
  }
  nlohmann::json json(std::vector<std::string> args, int expectStatus = 0) {
    auto r = run(args);
    INFO(runner::join(args, " ") << "\nstderr: " << r.errTail);
    REQUIRE(r.exitStatus == expectStatus);
    return nlohmann::json::parse(r.out);
  }
  std::string repo() const { return lab.infra.path().string(); }
};

nlohmann::json byName(const nlohmann::json& list, const std::string& name) {
  for (const auto& h : list)
    if (h["name"] == name) return h;
  FAIL("no host " << name);
  return {};
}

}  // namespace

TEST_CASE("switchyard hosts: targets from the config, Clan, Colmena or the name",
          "[integration][nix][cli]") {
  auto hosts = seedHosts();
  hosts[0].colmenaTarget.reset();  // nixos: no target option at all
  hosts[1].system = "aarch64-linux";
  Cli cli({.hosts = hosts});
  auto j = cli.json({"hosts", "--repo", cli.repo(), "--json"});
  CHECK(j["rev"] == cli.lab.infra.head());
  REQUIRE(j["hosts"].size() == 5);
  CHECK(byName(j["hosts"], "octavia") == nlohmann::json({{"name", "octavia"},
                                                         {"target", "root@10.20.0.2"},
                                                         {"target_from", "clan"},
                                                         {"system", "x86_64-linux"}}));
  CHECK(byName(j["hosts"], "demo")["target"] == "root@demo.lab.invalid");
  CHECK(byName(j["hosts"], "demo")["target_from"] == "colmena");
  CHECK(byName(j["hosts"], "demo")["system"] == "aarch64-linux");
  CHECK(byName(j["hosts"], "nixos")["target"] == "root@nixos");
  CHECK(byName(j["hosts"], "nixos")["target_from"] == "name");

  fs::path config = cli.tmp.path() / "switchyard.yaml";
  runner::os::writeFileAtomic(config, "state_dir: " + (cli.tmp.path() / "state").string() +
                                          "\nrepos:\n  - name: lab/infra\n    path: " + cli.repo() +
                                          "\n    hosts:\n      octavia: {target: "
                                          "admin@10.9.9.9:2222}\n      demo: {}\n");
  auto c = cli.json({"hosts", "--repo", cli.repo(), "--config", config.string(), "--json"});
  REQUIRE(c["hosts"].size() == 2);  // the config lists exactly these
  CHECK(byName(c["hosts"], "octavia")["target"] == "admin@10.9.9.9:2222");
  CHECK(byName(c["hosts"], "octavia")["target_from"] == "config");
  CHECK(byName(c["hosts"], "demo")["target_from"] == "colmena");

  auto text = cli.run({"hosts", "--repo", cli.repo()});
  REQUIRE(text.exitStatus == 0);
  CHECK(runner::startsWith(text.out, "HOST "));
  CHECK(text.out.find("octavia    root@10.20.0.2") != std::string::npos);
}

TEST_CASE("switchyard hosts: a broken flake is one line and exit 2, bad targets are marked",
          "[integration][nix][cli]") {
  auto hosts = seedHosts();
  hosts[1].colmenaTarget = "root@bad host";  // a target no ssh would take
  Cli cli({.hosts = hosts});
  auto marked = cli.run({"hosts", "--repo", cli.repo(), "--json"});
  CHECK(marked.exitStatus == 1);
  auto j = nlohmann::json::parse(marked.out);
  const std::string bad = hosts[1].name;
  REQUIRE(byName(j["hosts"], bad).contains("error"));
  CHECK(
      runner::startsWith(byName(j["hosts"], bad)["error"].get<std::string>(), "invalid target: "));
  CHECK_FALSE(byName(j["hosts"], "octavia").contains("error"));

  runner::os::writeFileAtomic(cli.lab.infra.path() / "flake.nix", "{ outputs = { self }: {\n");
  REQUIRE(std::system(
              ("cd '" + cli.repo() + "' && git -c user.email=t@t -c user.name=t commit -qam broken")
                  .c_str()) == 0);
  auto broken = cli.run({"hosts", "--repo", cli.repo()});
  CHECK(broken.exitStatus == 2);
  INFO(broken.errTail);
  CHECK(std::count(broken.errTail.begin(), broken.errTail.end(), '\n') == 1);
  CHECK(broken.errTail.find("does not evaluate: error: syntax error, unexpected end of file (at "
                            "flake.nix:") != std::string::npos);
}

TEST_CASE("switchyard build: named hosts, the affected hosts, failures and timeouts",
          "[integration][nix][cli]") {
  auto hosts = numberedHosts(3);
  Cli cli({.hosts = hosts});
  const std::string repo = cli.repo();

  auto one = cli.json({"build", "--repo", repo, "--rev", "HEAD", "host02", "--json"});
  REQUIRE(one["hosts"].size() == 1);
  CHECK(one["hosts"][0]["state"] == "built");
  std::string out = one["hosts"][0]["out_path"];
  CHECK(runner::os::readFile(fs::path(out) / "hostname") == "host02");
  CHECK(fs::read_symlink(cli.tmp.path() / "cache" / "switchyard" / "gcroots" / "host02") == out);
  std::string log =
      runner::os::readFile(fs::path(one["log_dir"].get<std::string>()) / "host02.log");
  CHECK(log.find("> built host02") != std::string::npos);

  // no HOST: the plan against the first parent decides (auto: static, then Nix)
  cli.lab.infra.changeHost("host03");
  cli.lab.infra.commentOnly("modules/base.nix");
  auto none = cli.run({"build", "--repo", repo, "--rev", "HEAD", "--json"});
  REQUIRE(none.exitStatus == 0);
  CHECK(nlohmann::json::parse(none.out)["hosts"].empty());
  CHECK(none.errTail.find("auto plan against") != std::string::npos);
  auto affected = cli.json({"build", "--repo", repo, "--rev", "HEAD~1", "--json"});
  REQUIRE(affected["hosts"].size() == 1);
  CHECK(affected["hosts"][0]["name"] == "host03");
  CHECK(affected["hosts"][0]["state"] == "built");

  std::string bad = cli.lab.infra.updateHost(
      "host01", [](LabHost& h) { h.extraConfig = "testing.buildSeconds = \"oops\";"; });
  auto failed = cli.json({"build", "--repo", repo, "--rev", bad, "--json"}, 1);
  REQUIRE(failed["hosts"].size() == 1);
  const auto& f = failed["hosts"][0];
  CHECK(f["state"] == "failed");
  CHECK(f["out_path"].is_null());
  CHECK(f["failed_drv"] == f["drv_path"]);
  CHECK(f["log_tail"].get<std::string>().find("sleep: invalid number 'oops'") != std::string::npos);
  auto plain = cli.run({"build", "--repo", repo, "--rev", bad});
  CHECK(plain.exitStatus == 1);
  CHECK(plain.out.find("host01  failed") != std::string::npos);
  CHECK(plain.out.find("    sleep: invalid number 'oops'") != std::string::npos);

  std::string slow = cli.lab.infra.updateHost("host02", [](LabHost& h) { h.buildSeconds = 63; });
  auto timedOut =
      cli.json({"build", "--repo", repo, "--rev", slow, "host02", "--timeout", "2s", "--json"}, 1);
  CHECK(timedOut["timed_out"] == true);
  CHECK(timedOut["hosts"][0]["state"] == "timed out");
  CHECK(runner::endsWith(timedOut["hosts"][0]["message"].get<std::string>(), "and was killed"));

  auto unknown = cli.run({"build", "--repo", repo, "--rev", "HEAD", "nope"});
  CHECK(unknown.exitStatus == 2);
  CHECK(unknown.errTail.find("no host 'nope'") != std::string::npos);
}

TEST_CASE("switchyard build --config: build.builders with max_jobs 0 builds on the builder",
          "[integration][nix][ssh][cli]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: test hosts need root");
    return;
  }
  std::vector<LabHost> hosts(1);
  hosts[0].name = "alpha";
  Cli cli({.hosts = hosts});
  TestHosts th({.names = {"builder1"}});
  const TestHost& b = th.host("builder1");
  auto ssh = th.sshConfig();
  fs::path config = cli.tmp.path() / "switchyard.yaml";
  const std::string stateDir = (cli.tmp.path() / "state").string();
  runner::os::writeFileAtomic(
      config, "state_dir: " + stateDir + "\nssh:\n  identity_file: " + ssh.identityFile->string() +
                  "\n  known_hosts: " + ssh.knownHosts->string() +
                  "\n  connect_timeout: 5s\nbuild:\n  max_jobs: 0\n  builders:\n    - uri: "
                  "ssh-ng://root@" +
                  b.address + ":" + std::to_string(b.port) + "\n");
  auto j = cli.json({"build", "--repo", cli.repo(), "--rev", "HEAD", "alpha", "--config",
                     config.string(), "--json"});
  auto alpha = byName(j["hosts"], "alpha");
  INFO(alpha.dump());
  REQUIRE(alpha["state"] == "built");
  CHECK(b.storeHas(alpha["out_path"].get<std::string>()));
  std::string log = runner::os::readFile(fs::path(j["log_dir"].get<std::string>()) / "alpha.log");
  INFO(log);
  CHECK(log.find("on ssh-ng://root@" + b.address) != std::string::npos);

  // The builder goes away: the host fails with ssh's words, quickly, and exit status 1.
  th.stop("builder1");
  cli.lab.infra.changeHost("alpha");
  auto r = cli.run({"build", "--repo", cli.repo(), "--rev", "HEAD", "alpha", "--config",
                    config.string(), "--json"});
  INFO(r.errTail);
  CHECK(r.exitStatus == 1);
  auto failed = byName(nlohmann::json::parse(r.out)["hosts"], "alpha");
  CHECK(failed["state"] == "failed");
  CHECK(failed["message"].get<std::string>().find("Connection refused") != std::string::npos);
}
