// The lab's generated flakes, checked with the real nix CLI: every wiring evaluates, each kind
// of change touches exactly the hosts it should, and a built toplevel's
// switch-to-configuration writes its markers (and fails when told to).
#include "runner/lab/lab.h"

#include <filesystem>
#include <map>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::lab;

namespace {

const char* kDrvPaths = "cs: builtins.mapAttrs (n: c: c.config.system.build.toplevel.drvPath) cs";

std::map<std::string, std::string> drvPaths(const InfraFlake& f, const std::string& rev) {
  auto r = tests::run("nix", {"eval", "--json", "--option", "eval-cache", "false",
                              f.url(rev) + "#nixosConfigurations", "--apply", kDrvPaths});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  return nlohmann::json::parse(r.out).get<std::map<std::string, std::string>>();
}

std::vector<std::string> changed(const std::map<std::string, std::string>& a,
                                 const std::map<std::string, std::string>& b) {
  std::vector<std::string> out;
  for (const auto& [h, d] : b)
    if (!a.count(h) || a.at(h) != d) out.push_back(h);
  return out;
}

std::string buildOut(const std::string& installable) {
  auto r = tests::run("nix", {"build", "--no-link", "--json", installable});
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  return nlohmann::json::parse(r.out).at(0).at("outputs").at("out").get<std::string>();
}

}  // namespace

TEST_CASE("lab: each wiring evaluates every host, targets and platform included",
          "[integration][nix][lab]") {
  runner::os::PosixProcessRunner procs;
  for (Wiring w : {Wiring::GenAttrs, Wiring::PerHost, Wiring::ReadDir}) {
    runner::os::TempDir tmp("sy-lab");
    auto lab = Lab::create(procs, tmp.path(), {.wiring = w});
    auto drvs = drvPaths(lab.infra, lab.infra.head());
    CHECK(drvs.size() == 5);
    CHECK(runner::endsWith(drvs.at("vps-het-1"), "-nixos-system-vps-het-1-fake-24.05.drv"));
    auto r = tests::run(
        "nix",
        {"eval", "--json", lab.infra.url(lab.infra.head()) + "#nixosConfigurations", "--apply",
         "cs: builtins.mapAttrs (n: c: [ (c.config.clan.core.networking.targetHost or "
         "null) (c.config.deployment.targetHost or null) c.config.nixpkgs.hostPlatform ]) "
         "cs"});
    REQUIRE(r.exitStatus == 0);
    auto j = nlohmann::json::parse(r.out);
    CHECK(j["octavia"] == nlohmann::json({"root@10.20.0.2", nullptr, "x86_64-linux"}));
    CHECK(j["demo"] == nlohmann::json({nullptr, "demo.lab.invalid", "x86_64-linux"}));
  }
}

TEST_CASE("lab: changes touch exactly the hosts they should", "[integration][nix][lab]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-lab");
  auto lab = Lab::create(procs, tmp.path());
  auto& f = lab.infra;
  auto d0 = drvPaths(f, f.head());

  auto d1 = drvPaths(f, f.changeModule("web"));
  CHECK(changed(d0, d1) == std::vector<std::string>{"vps-het-1", "wellsjaha"});
  auto d2 = drvPaths(f, f.changeHost("demo"));
  CHECK(changed(d1, d2) == std::vector<std::string>{"demo"});
  auto d3 = drvPaths(f, f.commentOnly("modules/base.nix"));
  CHECK(changed(d2, d3).empty());
  auto d4 = drvPaths(f, f.whitespaceOnly("hosts/octavia/default.nix"));
  CHECK(changed(d3, d4).empty());
  auto d5 = drvPaths(f, f.readmeOnly());
  CHECK(changed(d4, d5).empty());

  lab.nixpkgs.touchReadme("nothing that matters");
  std::string lockOnly = f.updateNixpkgs();
  CHECK(f.git().run({"diff", "--name-only", "HEAD~1", "HEAD"}) == "flake.lock");
  auto d6 = drvPaths(f, lockOnly);
  CHECK(changed(d5, d6).empty());

  lab.nixpkgs.setHelloVersion("2.13");
  auto d7 = drvPaths(f, f.updateNixpkgs());
  CHECK(changed(d6, d7) == std::vector<std::string>{"vps-het-1", "wellsjaha"});

  lab.nixpkgs.changeSwitchScript();
  auto d8 = drvPaths(f, f.updateNixpkgs());
  CHECK(changed(d7, d8).size() == 5);

  auto d9 = drvPaths(f, f.changeModule("base"));
  CHECK(changed(d8, d9).size() == 5);
}

TEST_CASE("lab: self.rev makes every host change on every commit", "[integration][nix][lab]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-lab");
  auto lab =
      Lab::create(procs, tmp.path(),
                  {.wiring = Wiring::ReadDir, .hosts = numberedHosts(3), .selfRevision = true});
  auto& f = lab.infra;
  std::string a = f.head();
  auto d0 = drvPaths(f, a);
  std::string b = f.readmeOnly();
  auto d1 = drvPaths(f, b);
  CHECK(changed(d0, d1).size() == 3);
  std::string out = buildOut(f.url(b) + "#" + InfraFlake::toplevelAttr("host02"));
  CHECK(runner::os::readFile(fs::path(out) / "configuration-revision") == b);
}

TEST_CASE("lab: switch-to-configuration writes its markers and fails when told to",
          "[integration][nix][lab]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-lab");
  auto hosts = numberedHosts(2);
  hosts[0].extraActivation = "echo extra > \"$FAKE_NIXOS_STATE/extra\"";
  hosts[1].failActivation = true;
  auto lab = Lab::create(procs, tmp.path(), {.hosts = hosts});
  auto& f = lab.infra;
  std::string rev = f.head();
  std::string ok = buildOut(f.url(rev) + "#" + InfraFlake::toplevelAttr("host01"));
  std::string bad = buildOut(f.url(rev) + "#" + InfraFlake::toplevelAttr("host02"));
  fs::path state = tmp.path() / "state";
  std::map<std::string, std::string> env = {{"FAKE_NIXOS_STATE", state.string()},
                                            {"FAKE_NIXOS_NO_SSHD", "1"}};

  auto r = tests::run(ok + "/bin/switch-to-configuration", {"switch"}, {}, env);
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  CHECK(r.out == "switched host01 to " + ok + " (switch)\n");
  CHECK(fs::read_symlink(state / "current-system") == ok);
  CHECK(runner::os::readFile(state / "activated") == ok + "\n");
  CHECK(runner::os::readFile(state / "boot-default") == ok + "\n");
  CHECK(runner::os::readFile(state / "extra") == "extra\n");
  CHECK(runner::os::readFile(state / "etc" / "host-id") == "host01 r1\n");
  CHECK(
      runner::endsWith(runner::os::readFile(state / "switch.log"), " switch host01 " + ok + "\n"));

  auto usage = tests::run(ok + "/bin/switch-to-configuration", {"bogus"}, {}, env);
  CHECK(usage.exitStatus == 1);

  auto failed = tests::run(bad + "/bin/switch-to-configuration", {"switch"}, {}, env);
  CHECK(failed.exitStatus == 3);
  CHECK(failed.errTail.find("testing.failActivation") != std::string::npos);
  CHECK(runner::os::readFile(state / "activated") == ok + "\n");  // untouched

  auto boot = tests::run(bad + "/bin/switch-to-configuration", {"boot"}, {}, env);
  CHECK(boot.exitStatus == 0);
  CHECK(runner::os::readFile(state / "boot-default") == bad + "\n");
}

// Needs root, unshare and /usr/sbin/sshd. Runs the switch in a private mount namespace whose
// /etc/ssh is a temp dir, as the deploy tests' hosts do.
TEST_CASE("lab: switch starts the host's sshd when enabled and stops it when disabled",
          "[integration][ssh][lab]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-lab");
  auto lab = Lab::create(procs, tmp.path(), {.hosts = numberedHosts(1)});
  auto& f = lab.infra;
  std::string on = buildOut(f.url(f.head()) + "#" + InfraFlake::toplevelAttr("host01"));
  std::string off = buildOut(f.url(f.updateHost("host01", [](LabHost& h) { h.openssh = false; })) +
                             "#" + InfraFlake::toplevelAttr("host01"));
  fs::path etcSsh = tmp.path() / "etc-ssh", state = tmp.path() / "state";
  fs::create_directories(etcSsh);
  tests::runOk("ssh-keygen",
               {"-q", "-t", "ed25519", "-N", "", "-f", (etcSsh / "ssh_host_ed25519_key").string()});
  runner::os::writeFileAtomic(
      etcSsh / "sshd_config",
      "ListenAddress 127.0.0.1:2299\nHostKey /etc/ssh/ssh_host_ed25519_key\n"
      "UsePAM no\nPasswordAuthentication no\n");
  fs::create_directories("/run/sshd");
  auto inNamespace = [&](const std::string& toplevel) {
    return tests::run("unshare", {"--mount", "--propagation", "private", "/bin/sh", "-c",
                                  "mount --bind " + etcSsh.string() +
                                      " /etc/ssh && FAKE_NIXOS_STATE=" + state.string() + " " +
                                      toplevel + "/bin/switch-to-configuration switch"});
  };
  auto r1 = inNamespace(on);
  INFO(r1.out << r1.errTail);
  REQUIRE(r1.exitStatus == 0);
  CHECK(r1.out.find("started sshd") != std::string::npos);
  std::string pid = std::string(runner::trim(runner::os::readFile(state / "sshd.pid")));
  CHECK(fs::exists("/proc/" + pid));
  auto r2 = inNamespace(off);
  REQUIRE(r2.exitStatus == 0);
  CHECK(r2.out.find("stopped sshd") != std::string::npos);
  CHECK_FALSE(fs::exists(state / "sshd.pid"));
}
