// Remote builders (issue 16): Nix's builders syntax, the client config that pins the builders'
// host keys, and real builds handed to sshd test hosts that have their own Nix store: over
// `ssh://` (nix-store --serve) and `ssh-ng://` (nix-daemon --stdio), with local builds off, and
// an unreachable builder that fails each host with ssh's words instead of hanging.
#include "runner/build/remote_builders.h"

#include <filesystem>

#include <catch2/catch.hpp>

#include "runner/build/builder.h"
#include "runner/core/clock.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"

namespace fs = std::filesystem;
using namespace runner;
using namespace runner::build;

TEST_CASE("parseNixBuilders reads Nix's builders syntax and refuses what it cannot pin",
          "[unit][build]") {
  auto b = parseNixBuilders(
      "ssh://nix@big.example:2222 x86_64-linux,aarch64-linux /k/id 8 2 kvm,big-parallel - "
      "c3NoLWVkMjU1MTkgQUFBQQ==; ssh-ng://builder - - 4\n# a comment\n\n");
  REQUIRE(b.size() == 2);
  CHECK(b[0].protocol == "ssh");
  CHECK(b[0].user == "nix");
  CHECK(b[0].host == "big.example");
  CHECK(b[0].port == 2222);
  CHECK(b[0].uri() == "ssh://nix@big.example");
  CHECK(b[0].systems == std::vector<std::string>{"x86_64-linux", "aarch64-linux"});
  CHECK(b[0].identityFile == fs::path("/k/id"));
  CHECK(b[0].maxJobs == 8);
  CHECK(b[0].speedFactor == 2);
  CHECK(b[0].features == std::vector<std::string>{"kvm", "big-parallel"});
  CHECK(b[0].mandatoryFeatures.empty());
  CHECK(b[0].publicHostKey == "c3NoLWVkMjU1MTkgQUFBQQ==");
  CHECK(b[1].uri() == "ssh-ng://root@builder");
  CHECK(b[1].maxJobs == 4);
  CHECK(b[1].systems.empty());

  auto fails = [](const std::string& text, const std::string& part) {
    INFO(text);
    try {
      parseNixBuilders(text);
      FAIL("no error");
    } catch (const InputError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(part) != std::string::npos);
    }
  };
  fails("@/etc/nix/machines", "'@file' is not supported");
  fails("http://cache.example", "protocol 'http' is not ssh or ssh-ng");
  fails("ssh://-oProxyCommand=x", "invalid target");
  fails("ssh://host x86_64-linux - many", "max-jobs 'many' is not a number");
  fails("ssh://host - key", "must be an absolute path");
  fails("ssh://root@[fd00::1]", "IPv6 addresses are not supported");
  fails("ssh://host?remote-store=x", "only [user@]host[:port]");
  fails("ssh://host - - 1 1 - - not*base64", "not base64");
}

TEST_CASE("RemoteBuilders writes one pinned ssh client entry per builder host", "[unit][build]") {
  os::TempDir tmp("sy-rb");
  os::PosixProcessRunner procs;
  BuildConfig bc;
  bc.builders = parseNixBuilders("ssh://nix@a.example:2222 x86_64-linux - 3; ssh-ng://a.example");
  bc.builders[1].user = "nix";
  bc.builders[1].port = 2222;
  SshConfig ssh;
  ssh.identityFile = "/keys/deploy";
  ssh.connectTimeout = std::chrono::seconds(7);
  SECTION("without a known_hosts file it refuses") {
    CHECK_THROWS_AS(RemoteBuilders(procs, bc, ssh, tmp.path()), InputError);
  }
  ssh.knownHosts = tmp.path() / "known_hosts";
  RemoteBuilders rb(procs, bc, ssh, tmp.path());
  std::string cfg = os::readFile(rb.sshConfigFile());
  CHECK(cfg.find("Host a.example\n  Port 2222\n  User nix\n  IdentityFile /keys/deploy\n") !=
        std::string::npos);
  CHECK(cfg.find("Host a.example", cfg.find("Host a.example") + 1) == std::string::npos);
  CHECK(cfg.find("UserKnownHostsFile " + ssh.knownHosts->string()) != std::string::npos);
  CHECK(cfg.find("StrictHostKeyChecking yes") != std::string::npos);
  CHECK(cfg.find("ConnectTimeout 7") != std::string::npos);
  CHECK(RemoteBuilders::nixBuildersSpec(bc.builders, ssh.identityFile) ==
        "ssh://nix@a.example x86_64-linux /keys/deploy 3 1 - - -\n"
        "ssh-ng://nix@a.example - /keys/deploy 1 1 - - -");
}

namespace {

std::vector<HostTarget> targetsOf(nix::NixCli& nix, const lab::InfraFlake& f) {
  auto e = nix.evalDrvPaths(nix::gitFlakeRef(f.path(), f.head()), std::nullopt);
  std::vector<HostTarget> t;
  for (const auto& [h, v] : e.hosts) t.push_back({h, v.value->get<std::string>()});
  return t;
}

BuildOptions optionsFrom(RemoteBuildSetup s, const fs::path& logDir) {
  BuildOptions o;
  o.timeout = std::chrono::minutes(5);
  o.maxJobs = s.maxJobs;
  o.nixArgs = std::move(s.nixArgs);
  o.nixEnv = std::move(s.env);
  o.notes = std::move(s.notes);
  o.refusal = std::move(s.failure);
  o.logDir = logDir;
  return o;
}

}  // namespace

TEST_CASE("a build with local jobs off runs on the remote builder and its store has the output",
          "[integration][nix][ssh][build]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: test hosts need root");
    return;
  }
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-rb");
  std::vector<lab::LabHost> hosts(2);
  hosts[0].name = "alpha";
  hosts[1].name = "beta";
  auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = hosts});
  lab::TestHosts th({.names = {"builder1", "builder2"}});
  nix::NixCli nix(procs);
  SystemClock clock;
  Builder builder(nix, clock);

  const std::string protocol = GENERATE(as<std::string>{}, "ssh", "ssh-ng");
  const lab::TestHost& h = th.host(protocol == "ssh" ? "builder1" : "builder2");
  BuildConfig bc;
  bc.builders = {parseBuilderUri(protocol + "://root@" + h.address + ":" + std::to_string(h.port))};
  bc.maxJobs = 0;
  RemoteBuilders rb(procs, bc, th.sshConfig(), tmp.path() / "state");
  auto targets = targetsOf(nix, lab.infra);
  BuildResult r = builder.build(targets, optionsFrom(rb.setup(), tmp.path() / "logs"));
  std::string messages;
  for (const auto& host : r.hosts) messages += host.host + ": " + host.message + "\n";
  INFO(protocol << ": " << join(r.errors, "\n") << "\n"
                << messages << os::readFile(tmp.path() / "logs" / "alpha.log"));
  REQUIRE(r.ok());
  for (const auto& host : r.hosts) {
    REQUIRE(host.outPath);
    CHECK(fs::exists(*host.outPath));  // copied back here
    CHECK(h.storeHas(*host.outPath));  // built there
    std::string log = os::readFile(tmp.path() / "logs" / (host.host + ".log"));
    INFO(log);
    CHECK(log.find("# remote builder " + protocol + "://root@" + h.address +
                   " (-, 1 jobs) answered") != std::string::npos);
    CHECK(log.find(" on " + protocol + "://root@" + h.address + "\n") != std::string::npos);
  }
}

TEST_CASE("an unreachable builder fails each host with ssh's words, without hanging",
          "[integration][nix][ssh][build]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: test hosts need root");
    return;
  }
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-rb");
  std::vector<lab::LabHost> hosts(2);
  hosts[0].name = "alpha";
  hosts[1].name = "beta";
  auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = hosts});
  lab::TestHosts th({.names = {"builder1"}});
  const lab::TestHost& h = th.host("builder1");
  th.stop("builder1");
  nix::NixCli nix(procs);
  SystemClock clock;
  Builder builder(nix, clock);
  BuildConfig bc;
  bc.builders = {parseBuilderUri("ssh://root@" + h.address + ":" + std::to_string(h.port))};

  SECTION("local builds off: every host fails, naming the builder") {
    bc.maxJobs = 0;
    RemoteBuilders rb(procs, bc, th.sshConfig(), tmp.path() / "state");
    auto start = std::chrono::steady_clock::now();
    BuildResult r =
        builder.build(targetsOf(nix, lab.infra), optionsFrom(rb.setup(), tmp.path() / "logs"));
    CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(60));
    REQUIRE(r.hosts.size() == 2);
    for (const auto& host : r.hosts) {
      INFO(host.message);
      CHECK(host.state == HostState::Failed);
      CHECK(startsWith(host.message,
                       "not built: no remote builder answered and local builds "
                       "are off (build.max_jobs: 0): ssh://root@" +
                           h.address));
      CHECK(host.message.find("Connection refused") != std::string::npos);
      CHECK(os::readFile(tmp.path() / "logs" / (host.host + ".log")).find("is unreachable") !=
            std::string::npos);
    }
  }
  SECTION("local builds on: the hosts build here and the logs say the builder was left out") {
    RemoteBuilders rb(procs, bc, th.sshConfig(), tmp.path() / "state");
    BuildResult r =
        builder.build(targetsOf(nix, lab.infra), optionsFrom(rb.setup(), tmp.path() / "logs"));
    INFO(join(r.errors, "\n"));
    CHECK(r.ok());
    std::string log = os::readFile(tmp.path() / "logs" / "alpha.log");
    CHECK(log.find("# remote builder ssh://root@" + h.address +
                   " is unreachable, not used for this build: ") != std::string::npos);
    CHECK(log.find(" on ssh://") == std::string::npos);
  }
}

TEST_CASE("a builder whose host key is not the pinned one is refused",
          "[integration][ssh][build]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: test hosts need root");
    return;
  }
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-rb");
  lab::TestHosts th({.names = {"builder1"}});
  const lab::TestHost& h = th.host("builder1");
  th.replaceHostKey("builder1");
  BuildConfig bc;
  bc.builders = {parseBuilderUri("ssh://root@" + h.address + ":" + std::to_string(h.port))};
  bc.maxJobs = 0;
  RemoteBuilders rb(procs, bc, th.sshConfig(), tmp.path() / "state");
  RemoteBuildSetup s = rb.setup();
  REQUIRE(s.failure);
  INFO(*s.failure);
  CHECK(s.failure->find("Host key verification failed") != std::string::npos);
}
