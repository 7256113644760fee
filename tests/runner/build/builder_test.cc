// Builder against real Nix on lab flakes: one nix build for several hosts, per-host logs and
// results, the failing derivation with its log tail, GC roots, a timeout that kills the build.
#include "runner/build/builder.h"

#include <filesystem>
#include <fstream>

#include <catch2/catch.hpp>

#include "runner/core/clock.h"
#include "runner/core/text.h"
#include "runner/lab/lab.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/runner/nix/counting_process_runner.h"

namespace fs = std::filesystem;
using namespace runner;
using namespace runner::build;
using lab::Lab;
using lab::LabHost;

namespace {

std::vector<HostTarget> targetsOf(nix::NixCli& nix, const lab::InfraFlake& f) {
  auto e = nix.evalDrvPaths(nix::gitFlakeRef(f.path(), f.head()), std::nullopt);
  std::vector<HostTarget> t;
  for (const auto& [h, v] : e.hosts) t.push_back({h, v.value->get<std::string>()});
  return t;
}

struct Recorder : BuildObserver {
  int progressCalls = 0;
  bool sawBuilding = false;
  std::vector<std::string> finished;
  void onProgress(const BuildProgress& p, std::chrono::milliseconds) override {
    ++progressCalls;
    for (const auto& h : p.hosts) sawBuilding = sawBuilding || h.state == HostState::Building;
  }
  void onHostFinished(const HostProgress& h, std::chrono::milliseconds) override {
    finished.push_back(h.host + " " + toString(h.state));
  }
};

}  // namespace

TEST_CASE("Builder builds several hosts in one nix build and reports each",
          "[integration][nix][build]") {
  os::PosixProcessRunner real;
  tests::CountingProcessRunner procs(real);
  os::TempDir tmp("sy-build");
  std::vector<LabHost> hosts(3);
  hosts[0].name = "alpha";
  hosts[0].modules = {"base", "web"};
  hosts[1].name = "beta";
  hosts[1].modules = {"base", "web"};
  hosts[2].name = "gamma";
  hosts[2].extraConfig = "testing.buildSeconds = \"not-a-number\";";
  auto lab = Lab::create(real, tmp.path() / "lab", {.hosts = hosts});
  nix::NixCli nix(procs);
  auto targets = targetsOf(nix, lab.infra);
  SystemClock clock;
  Builder builder(nix, clock);
  Recorder rec;
  procs.reset();
  BuildResult r = builder.build(
      targets, {.logDir = tmp.path() / "logs", .gcRootDir = tmp.path() / "roots"}, &rec);
  // show-derivation, dry run, ONE build, then a GC root per built host
  CHECK(procs.count("nix") == 3);
  CHECK(procs.count("nix-store") == 2);
  CHECK_FALSE(r.ok());
  CHECK_FALSE(r.timedOut);
  CHECK(r.nixExitStatus == 1);
  REQUIRE(r.hosts.size() == 3);
  const HostBuildResult& alpha = r.hosts[0];
  CHECK(alpha.host == "alpha");
  CHECK(alpha.ok());
  REQUIRE(alpha.outPath);
  CHECK(fs::read_symlink(tmp.path() / "roots" / "alpha") == *alpha.outPath);
  CHECK(os::readFile(fs::path(*alpha.outPath) / "hostname") == "alpha");
  const HostBuildResult& gamma = r.hosts[2];
  CHECK(gamma.state == HostState::Failed);
  CHECK(gamma.failedDrv == gamma.drvPath);
  CHECK(gamma.message == "error: builder for '" + gamma.drvPath + "' failed with exit code 1");
  CHECK(gamma.logTail.find("sleep: invalid number 'not-a-number'") != std::string::npos);
  CHECK_FALSE(fs::exists(fs::symlink_status(tmp.path() / "roots" / "gamma")));

  std::string alphaLog = os::readFile(tmp.path() / "logs" / "alpha.log");
  std::string betaLog = os::readFile(tmp.path() / "logs" / "beta.log");
  std::string gammaLog = os::readFile(tmp.path() / "logs" / "gamma.log");
  CHECK(alphaLog.find("nixos-system-alpha-fake-24.05> built alpha\n") != std::string::npos);
  CHECK(alphaLog.find("built beta") == std::string::npos);
  // etc/lab-nonce (modules/base.nix, the same text everywhere) is one derivation in every
  // closure: built once, logged for each host; etc/nginx.conf only for the web hosts
  for (const auto* log : {&alphaLog, &betaLog, &gammaLog})
    CHECK(log->find("etc-lab-nonce> building /nix/store/") != std::string::npos);
  CHECK(gammaLog.find("etc-nginx.conf") == std::string::npos);
  CHECK(endsWith(alphaLog, " -> " + *alpha.outPath + "\n"));
  CHECK(gammaLog.find("# result: failed") != std::string::npos);

  CHECK(rec.sawBuilding);
  CHECK(rec.progressCalls > 3);
  std::sort(rec.finished.begin(), rec.finished.end());
  CHECK(rec.finished == std::vector<std::string>{"alpha built", "beta built", "gamma failed"});

  SECTION("a second build of the built hosts runs no nix build") {
    procs.reset();
    BuildResult again = builder.build({targets[0], targets[1]}, {});
    CHECK(again.ok());
    CHECK(again.hosts[0].message == "already built");
    CHECK(again.hosts[0].outPath == alpha.outPath);
    CHECK(procs.count("nix") == 2);  // show-derivation and the dry run only
  }
}

TEST_CASE("Builder stops a build at its timeout and says so", "[integration][nix][build]") {
  os::PosixProcessRunner real;
  os::TempDir tmp("sy-build");
  std::vector<LabHost> hosts(2);
  hosts[0].name = "quick";
  hosts[1].name = "slow";
  hosts[1].buildSeconds = 62;  // "sleep 62": a command line no other test uses
  auto lab = Lab::create(real, tmp.path() / "lab", {.hosts = hosts});
  nix::NixCli nix(real);
  SystemClock clock;
  Builder builder(nix, clock);
  // The budget must cover evaluating both hosts and building the quick one on a loaded machine
  // (3 s did not), and stay far below the slow one's 62 s.
  BuildResult r = builder.build(targetsOf(nix, lab.infra),
                                {.timeout = std::chrono::seconds(12),
                                 .maxJobs = 2,  // the slow builder must not block the quick host
                                 .logDir = tmp.path() / "logs"});
  CHECK(r.timedOut);
  CHECK(r.duration < std::chrono::seconds(45));
  REQUIRE(r.hosts.size() == 2);
  INFO(r.hosts[0].message);
  CHECK(r.hosts[0].ok());  // quick finished before the deadline
  const HostBuildResult& slow = r.hosts[1];
  CHECK(slow.state == HostState::TimedOut);
  CHECK(startsWith(slow.message, "build timed out after "));
  CHECK(endsWith(slow.message, " and was killed"));
  CHECK(slow.failedDrv == slow.drvPath);
  CHECK(slow.logTail.find("building slow slowly (62 s)") != std::string::npos);
  CHECK(os::readFile(tmp.path() / "logs" / "slow.log").find("# result: timed out") !=
        std::string::npos);
}

TEST_CASE("Builder passes a per-derivation timeout to nix and reports Nix's message",
          "[integration][nix][build]") {
  os::PosixProcessRunner real;
  os::TempDir tmp("sy-build");
  std::vector<LabHost> hosts(1);
  hosts[0].name = "sluggish";
  hosts[0].buildSeconds = 64;
  auto lab = Lab::create(real, tmp.path() / "lab", {.hosts = hosts});
  nix::NixCli nix(real);
  SystemClock clock;
  Builder builder(nix, clock);
  BuildResult r = builder.build(targetsOf(nix, lab.infra), {.drvTimeout = std::chrono::seconds(1)});
  CHECK_FALSE(r.timedOut);  // nix stopped the builder itself
  REQUIRE(r.hosts.size() == 1);
  const HostBuildResult& h = r.hosts[0];
  CHECK(h.state == HostState::Failed);
  CHECK(h.failedDrv == h.drvPath);
  CHECK(h.message ==
        "error: building of '" + h.drvPath + "!out' from .drv file timed out after 1 seconds");
}

TEST_CASE("Builder refuses a host whose name would leave the log and GC-root directories",
          "[unit][build]") {
  os::PosixProcessRunner real;
  tests::CountingProcessRunner procs(real);
  os::TempDir tmp("sy-build-names");
  nix::NixCli nix(procs);
  SystemClock clock;
  Builder builder(nix, clock);
  fs::create_directories(tmp.path() / "logs");
  BuildResult r = builder.build({{"../escaped", "/nix/store/aaaa-x.drv"}},
                                {.logDir = tmp.path() / "logs", .gcRootDir = tmp.path() / "roots"});
  REQUIRE(r.hosts.size() == 1);
  CHECK(r.hosts[0].state == HostState::Failed);
  CHECK(r.hosts[0].message == "refused: the name starts with '.'");
  CHECK(procs.count("nix") == 0);  // nothing of it reached Nix
  CHECK_FALSE(fs::exists(tmp.path() / "escaped.log"));
  CHECK_FALSE(fs::exists(fs::symlink_status(tmp.path() / "escaped")));
}
