// BuildMonitor on a recorded Nix 2.8 build of three hosts where one fails, and the terminal
// status line.
#include "runner/build/build_monitor.h"

#include <sstream>

#include <catch2/catch.hpp>

#include "runner/build/terminal_progress.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

using namespace runner;
using namespace runner::build;

namespace {

std::string data(const std::string& name) { return os::readFile(tests::dataDir() / "nix" / name); }

}  // namespace

TEST_CASE("BuildMonitor attributes a recorded failing build to its hosts", "[unit][build]") {
  nix::DerivationSet closure = nix::parseShowDerivation(data("build_failure_closure.json"));
  std::vector<HostTarget> targets;
  for (const auto& drv : split(std::string(trim(data("build_failure_toplevels.txt"))), '\n')) {
    std::string host = split(nix::storePathName(drv), '-').at(2);  // nixos-system-<host>-…
    targets.push_back({host, drv});
  }
  REQUIRE(targets.size() == 3);
  const std::string db1 = targets[0].drvPath;
  REQUIRE(targets[0].host == "db1");
  std::vector<nix::LogEvent> events;
  std::set<std::string> willBuild;
  for (const auto& line : split(data("build_failure_internal_json.log"), '\n')) {
    if (line.empty()) continue;
    events.push_back(nix::parseLogLine(line));
    if (auto* s = std::get_if<nix::ActivityStart>(&events.back()); s && s->path())
      if (s->type == nix::ActivityType::Build) willBuild.insert(*s->path());
  }
  std::string db1Out = closure.at(db1).outputs.at("out");
  BuildMonitor m(targets, closure, willBuild, [&](const std::string& p) { return p != db1Out; });
  std::map<std::string, std::vector<std::string>> lines;
  m.onHostLine = [&](const std::string& host, const std::string& drv, std::string_view line) {
    lines[host].push_back(drv + "> " + std::string(line));
  };
  std::vector<std::string> finished;
  int ms = 0;
  for (const auto& ev : events) {
    m.handle(ev, std::chrono::milliseconds(ms += 10));
    for (auto& h : m.takeFinishedHosts()) finished.push_back(h);
  }
  BuildProgress p = m.snapshot();
  REQUIRE(p.hosts.size() == 3);
  CHECK(p.hosts[0].host == "db1");
  CHECK(p.hosts[0].state == HostState::Failed);
  CHECK(p.hosts[1].state == HostState::Built);
  CHECK(p.hosts[1].toBuild == p.hosts[1].built);
  CHECK(p.drvsExpected > 0);
  CHECK(std::count(finished.begin(), finished.end(), "web1") == 1);
  CHECK(std::count(finished.begin(), finished.end(), "db1") == 1);
  // a toplevel's log goes to its host only; building lines of shared derivations to every host
  CHECK(std::count(lines["web1"].begin(), lines["web1"].end(),
                   "nixos-system-web1-fake-24.05> built web1") == 1);
  CHECK(std::count(lines["web2"].begin(), lines["web2"].end(),
                   "nixos-system-web1-fake-24.05> built web1") == 0);
  CHECK(std::count(lines["db1"].begin(), lines["db1"].end(),
                   "nixos-system-db1-fake-24.05> sleep: invalid number 'x y'") == 1);

  nix::BuildRun run;
  run.process.exitStatus = 1;
  auto results = m.finish(run, std::chrono::milliseconds(ms));
  REQUIRE(results.size() == 3);
  const HostBuildResult& r = results[0];
  CHECK(r.state == HostState::Failed);
  CHECK(r.failedDrv == db1);
  CHECK(r.outPath == db1Out);
  CHECK(r.message == "error: builder for '" + db1 + "' failed with exit code 1");
  CHECK(r.logTail == "building slowly (x y s)\nsleep: invalid number 'x y'\n" + r.message);
  CHECK(results[1].ok());
  CHECK(results[1].message == "built");
  CHECK(results[1].outPath == closure.at(results[1].drvPath).outputs.at("out"));
  CHECK(results[1].duration.count() > 0);
}

TEST_CASE("drvInError finds the derivation in Nix's messages", "[unit][build]") {
  CHECK(drvInError("error: builder for '/nix/store/abc-x.drv' failed with exit code 1") ==
        "/nix/store/abc-x.drv");
  CHECK(drvInError("error: building of '/nix/store/abc-y.drv!out' from .drv file timed out "
                   "after 1 seconds") == "/nix/store/abc-y.drv");
  CHECK_FALSE(drvInError("error: interrupted by the user"));
}

TEST_CASE("TerminalProgress: one line on a tty, plain lines otherwise", "[unit][build]") {
  BuildProgress p;
  p.drvsDone = 7;
  p.drvsExpected = 16;
  p.drvsRunning = 2;
  p.hosts = {{"db1", HostState::Queued},
             {"web1", HostState::Building, 5, 3, 1, 0, 0, 0, "x", "buildPhase"},
             {"web2", HostState::Built}};
  CHECK(TerminalProgress::statusLine(p, std::chrono::milliseconds(3200), 200) ==
        "[3.2s] 7/16 built, 2 running | db1 queued | web1 3/5 buildPhase | web2 built");
  CHECK(TerminalProgress::statusLine(p, std::chrono::milliseconds(3200), 20).size() <= 20);

  std::ostringstream tty, plain;
  TerminalProgress t(tty, true), q(plain, false);
  t.onProgress(p, std::chrono::milliseconds(3200));
  t.onProgress(p, std::chrono::milliseconds(3250));  // throttled
  t.onHostFinished(p.hosts[2], std::chrono::milliseconds(3300));
  CHECK(tty.str() ==
        "\r[3.2s] 7/16 built, 2 running | db1 queued | web1 3/5 buildPhase | web2 built\x1b[K"
        "\r\x1b[Kweb2: built after 3.3s\n");
  q.onProgress(p, std::chrono::milliseconds(3200));
  q.onProgress(p, std::chrono::milliseconds(3250));
  q.onHostFinished(p.hosts[2], std::chrono::milliseconds(3300));
  CHECK(plain.str() == "web1: building (5 derivations)\nweb2: built after 3.3s\n");
}

TEST_CASE("a host that was not built never shows another host's error", "[unit][build]") {
  nix::DerivationSet closure = nix::parseShowDerivation(data("build_failure_closure.json"));
  std::vector<HostTarget> targets;
  for (const auto& drv : split(std::string(trim(data("build_failure_toplevels.txt"))), '\n'))
    targets.push_back({split(nix::storePathName(drv), '-').at(2), drv});
  REQUIRE(targets.size() == 3);
  const std::string db1 = targets[0].drvPath;
  const std::string web2 = targets[2].drvPath;
  REQUIRE(targets[2].host == "web2");
  std::vector<nix::LogEvent> events;
  std::set<std::string> willBuild;
  std::set<uint64_t> web2Activities;  // dropped: nix stopped before web2's toplevel started
  for (const auto& line : split(data("build_failure_internal_json.log"), '\n')) {
    if (line.empty()) continue;
    auto ev = nix::parseLogLine(line);
    if (auto* s = std::get_if<nix::ActivityStart>(&ev); s && s->path()) {
      if (s->type == nix::ActivityType::Build) willBuild.insert(*s->path());
      if (*s->path() == web2) web2Activities.insert(s->id);
    }
    if (auto* st = std::get_if<nix::ActivityStop>(&ev); st && web2Activities.count(st->id))
      continue;
    if (auto* r = std::get_if<nix::ActivityResult>(&ev); r && web2Activities.count(r->id)) continue;
    if (auto* s = std::get_if<nix::ActivityStart>(&ev); s && web2Activities.count(s->id)) continue;
    events.push_back(std::move(ev));
  }
  REQUIRE_FALSE(web2Activities.empty());
  const std::string db1Out = closure.at(db1).outputs.at("out");
  const std::string web2Out = closure.at(web2).outputs.at("out");
  BuildMonitor m(targets, closure, willBuild,
                 [&](const std::string& p) { return p != db1Out && p != web2Out; });
  int ms = 0;
  for (const auto& ev : events) m.handle(ev, std::chrono::milliseconds(ms += 10));
  nix::BuildRun run;
  run.process.exitStatus = 1;
  auto results = m.finish(run, std::chrono::milliseconds(ms));
  REQUIRE(results.size() == 3);
  const HostBuildResult& r = results[2];
  CHECK(r.host == "web2");
  CHECK(r.state == HostState::Failed);
  CHECK_FALSE(r.failedDrv);
  CHECK(r.message.find(db1) == std::string::npos);  // db1's failure is db1's alone
  CHECK(r.logTail.find(db1) == std::string::npos);
  CHECK(r.message.find("not built") != std::string::npos);
  CHECK(results[0].message.find(db1) != std::string::npos);
}
