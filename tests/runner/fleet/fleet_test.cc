// The fleet (issue 14): drift rules, the probe's parsing and bounded concurrency, the fleet
// table from a real SQLite store, and the probe against real sshd test hosts (their /nix and
// fake-NixOS state laid out by hand: a current system, a profile generation, a drift).
#include "runner/fleet/fleet.h"

#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "runner/core/plan.h"
#include "runner/core/text.h"
#include "runner/fleet/probe.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/store/runs.h"

namespace fs = std::filesystem;
using namespace runner;
using fleet::Drift;

namespace {

const std::string kA = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-nixos-system-web1";
const std::string kB = "/nix/store/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb-nixos-system-web1";
const std::string kC = "/nix/store/cccccccccccccccccccccccccccccccc-nixos-system-web1";

store::DeploymentRecord deployed(const std::string& path, int64_t gen,
                                 std::optional<std::string> prev = std::nullopt) {
  store::DeploymentRecord d;
  d.host = "web1";
  d.repo = "lab/infra";
  d.sha = std::string(40, 'e');
  d.storePath = path;
  d.generation = gen;
  d.previousPath = prev;
  d.result = "succeeded";
  d.runId = 1;
  d.startedAt = d.finishedAt = 1000;
  return d;
}

store::ProbeRecord seen(const std::string& path, int64_t gen) {
  store::ProbeRecord p;
  p.repo = "lab/infra";
  p.host = "web1";
  p.reached = true;
  p.currentPath = path;
  p.profilePath = path;
  p.generation = gen;
  p.probedAt = 5000;
  p.lastSeen = 5000;
  return p;
}

class ManualClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms));
  }
  int64_t ms = 1'700'000'000'000;
};

}  // namespace

TEST_CASE("drift: each verdict from what the host runs, what we deployed, what the branch built",
          "[unit][fleet]") {
  fleet::DriftInput in;
  CHECK(fleet::classifyDrift(in).drift == Drift::NeverDeployed);
  in.managed = false;
  CHECK(fleet::classifyDrift(in).drift == Drift::NotManaged);
  in.managed = true;

  in.lastSucceeded = deployed(kB, 4, kA);
  in.deployedPaths = {kB, kA};
  in.expected = kB;
  CHECK(fleet::classifyDrift(in).drift == Drift::NotProbed);
  in.expected = kC;  // the branch built a newer system, not deployed yet
  CHECK(fleet::classifyDrift(in).drift == Drift::Behind);

  in.probe = seen(kB, 4);
  CHECK(fleet::classifyDrift(in).drift == Drift::Behind);
  in.expected = kB;
  CHECK(fleet::classifyDrift(in).drift == Drift::InSync);
  in.probe = seen(kA, 3);  // the previous generation again
  auto v = fleet::classifyDrift(in);
  CHECK(v.drift == Drift::RolledBack);
  CHECK(v.detail.find("generation 3") != std::string::npos);
  in.probe = seen(kC, 5);  // nixos-rebuild on the host: a system we never deployed
  CHECK(fleet::classifyDrift(in).drift == Drift::ChangedByHand);
  in.probe = seen(kC, 2);  // an older generation, whatever its path: rolled back
  CHECK(fleet::classifyDrift(in).drift == Drift::RolledBack);

  // a probe from before our last deploy is stale: the deploy record wins
  in.probe = seen(kA, 3);
  in.probe->probedAt = 500;
  CHECK(fleet::classifyDrift(in).drift == Drift::NotProbed);
  in.probe = seen(kC, 2);

  in.probe->reached = false;
  in.probe->error = "unreachable: connection refused";
  v = fleet::classifyDrift(in);
  CHECK(v.drift == Drift::Unreachable);
  CHECK(v.detail.find("not reached since") != std::string::npos);
  CHECK(v.detail.find("connection refused") != std::string::npos);
  in.probe->lastSeen.reset();
  CHECK(fleet::classifyDrift(in).detail.find("never reached") != std::string::npos);

  CHECK(fleet::needsAttention(Drift::ChangedByHand));
  CHECK_FALSE(fleet::needsAttention(Drift::InSync));
}

TEST_CASE("probe output: store paths and the generation, anything else dropped", "[unit][fleet]") {
  store::ProbeRecord r;
  fleet::parseProbeOutput("current=" + kA + "\ngen=system-12-link\nprofile=" + kA + "\n", r);
  CHECK(r.currentPath == kA);
  CHECK(r.profilePath == kA);
  CHECK(r.generation == 12);
  store::ProbeRecord none;
  fleet::parseProbeOutput("current=\ngen=\nprofile=/etc/passwd\ngarbage\n", none);
  CHECK_FALSE(none.currentPath);
  CHECK_FALSE(none.profilePath);
  CHECK_FALSE(none.generation);
  CHECK(fleet::generationOfLink("/nix/var/nix/profiles/system-7-link") == 7);
  CHECK_FALSE(fleet::generationOfLink("system--link"));
  CHECK_FALSE(fleet::generationOfLink("system-0-link"));
  CHECK_FALSE(fleet::generationOfLink("system-x-link"));
  // the configured link is quoted for the shell
  CHECK(fleet::probeCommand("/run/current-system").find("'/run/current-system'") !=
        std::string::npos);
}

TEST_CASE("fleet table: config hosts, hosts only the plan saw (not managed), drift from the store",
          "[unit][fleet]") {
  os::TempDir tmp;
  auto db = store::Database::open(tmp.path() / "s.db");
  ManualClock clock;
  store::Runs runs(*db, clock);
  store::NewRun n;
  n.repo = "lab/infra";
  n.kind = RunKind::Deploy;
  n.sha = std::string(40, 'f');
  n.ref = "refs/heads/main";
  int64_t id = runs.create(n);
  RunHostView h;
  h.host = "web1";
  h.stage = Stage::Deploy;
  h.state = HostState::Succeeded;
  h.outPath = kC;
  runs.putHost(id, h);
  Plan plan;
  plan.repo = "lab/infra";
  for (auto name : {"db1", "web1", "laptop"}) plan.hosts.push_back(HostPlan{.name = name});
  runs.setPlan(id, "", nlohmann::json(plan).dump());
  store::Deployments(*db).record(deployed(kB, 4, kA));
  store::HostProbes(*db).record(seen(kB, 4));

  Config config;
  RepoConfig repo;
  repo.name = "lab/infra";
  repo.hosts = {HostConfig{"web1", "root@10.0.0.1"}, HostConfig{"db1", std::nullopt}};
  config.repos = {repo};
  auto rows = fleet::fleetTable(*db, config, [](const RepoConfig&) {
    return std::vector<std::string>{"<b>&\"'", "web1"};
  });
  REQUIRE(rows.size() == 4);
  std::map<std::string, fleet::FleetRow> by;
  for (auto& r : rows) by[r.host] = r;
  CHECK(by["web1"].drift.drift == Drift::Behind);  // runs kB, the branch built kC
  CHECK(by["web1"].currentPath == kB);
  CHECK(by["web1"].generation == 4);
  CHECK(by["web1"].currentFrom == "probe");
  CHECK(by["web1"].target == "root@10.0.0.1");
  REQUIRE(by["web1"].expected);
  CHECK(by["web1"].expected->path == kC);
  CHECK(by["db1"].drift.drift == Drift::NeverDeployed);
  CHECK(by["laptop"].drift.drift == Drift::NotManaged);
  CHECK(by["<b>&\"'"].drift.drift == Drift::NotManaged);

  auto j = fleet::fleetJson(rows);
  REQUIRE(j.size() == 4);
  bool found = false;
  for (const auto& row : j)
    if (row["host"] == "web1") {
      found = true;
      CHECK(row["generation"] == 4);
      CHECK(row["drift"] == "behind");
      CHECK(row["commit"] == std::string(40, 'e'));
      CHECK(row["last_deploy"]["result"] == "succeeded");
      CHECK(row["expected"]["store_path"] == kC);
    }
  CHECK(found);
  auto text = fleet::fleetText(rows);
  CHECK(text.find("HOST") != std::string::npos);
  CHECK(text.find("behind") != std::string::npos);
  CHECK(text.find("not-managed") != std::string::npos);

  // the probe now sees the branch's system: in sync
  store::HostProbes(*db).record(seen(kC, 5));
  for (auto& r : fleet::fleetTable(*db, config))
    if (r.host == "web1") CHECK(r.drift.drift == Drift::InSync);
}

TEST_CASE("two same-named repositories on two forges have fleet rows of their own",
          "[unit][fleet]") {
  os::TempDir tmp;
  auto db = store::Database::open(tmp.path() / "s.db");
  ManualClock clock;
  store::Runs runs(*db, clock);
  // github's main built kC for web1; gitea's main built kA
  for (const auto& [forge, built] : {std::pair{"github", kC}, std::pair{"gitea", kA}}) {
    store::NewRun n;
    n.forge = forge;
    n.repo = "alice/infra";
    n.kind = RunKind::Deploy;
    n.sha = std::string(40, 'f');
    n.ref = "refs/heads/main";
    RunHostView h;
    h.host = "web1";
    h.stage = Stage::Deploy;
    h.state = HostState::Succeeded;
    h.outPath = built;
    runs.putHost(runs.create(n), h);
  }
  auto github = deployed(kB, 4, kA);
  github.forge = "github";
  github.repo = "alice/infra";
  store::Deployments(*db).record(github);
  auto gitea = deployed(kA, 2);
  gitea.forge = "gitea";
  gitea.repo = "alice/infra";
  gitea.result = "unreachable";
  store::Deployments(*db).record(gitea);
  auto probe = seen(kB, 4);
  probe.forge = "github";
  probe.repo = "alice/infra";
  store::HostProbes(*db).record(probe);

  Config config;
  for (const auto* forge : {"github", "gitea"}) {
    RepoConfig repo;
    repo.forge = forge;
    repo.name = "alice/infra";
    repo.hosts = {HostConfig{"web1", std::string("root@") + forge}};
    config.repos.push_back(repo);
  }
  auto rows = fleet::fleetTable(*db, config);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].forge == "github");
  CHECK(rows[0].target == "root@github");
  CHECK(rows[0].drift.drift == Drift::Behind);  // runs kB; github's branch built kC
  REQUIRE(rows[0].expected);
  CHECK(rows[0].expected->path == kC);
  REQUIRE(rows[0].lastDeploy);
  CHECK(rows[0].lastDeploy->result == "succeeded");
  CHECK(rows[1].forge == "gitea");
  CHECK(rows[1].target == "root@gitea");
  CHECK_FALSE(rows[1].probe);  // github's probe is not gitea's
  CHECK_FALSE(rows[1].lastSucceeded);
  REQUIRE(rows[1].lastDeploy);
  CHECK(rows[1].lastDeploy->result == "unreachable");
  CHECK(rows[1].drift.drift == Drift::NeverDeployed);
  REQUIRE(rows[1].expected);
  CHECK(rows[1].expected->path == kA);
  auto j = fleet::fleetJson(rows);
  CHECK(j[0]["forge"] == "github");
  CHECK(j[1]["forge"] == "gitea");
  auto text = fleet::fleetText(rows);
  CHECK(text.find("FORGE") != std::string::npos);
  CHECK(text.find("gitea") != std::string::npos);
}

namespace {

// Answers every probe after `delay`, counting how many run at once.
class SlowConnector final : public ssh::Connector {
 public:
  class S final : public ssh::Session {
   public:
    explicit S(SlowConnector& c) : c_(c) {}
    ssh::ExecResult exec(const ssh::ExecRequest&) override {
      int now = ++c_.inFlight;
      int seen = c_.maxInFlight.load();
      while (now > seen && !c_.maxInFlight.compare_exchange_weak(seen, now)) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(40));
      --c_.inFlight;
      ssh::ExecResult r;
      r.exitStatus = 0;
      r.out = "current=" + kA + "\ngen=system-2-link\nprofile=" + kA + "\n";
      return r;
    }
    bool connected() const override { return true; }
    std::string hostKey() const override { return "ssh-ed25519 SHA256:x"; }

   private:
    SlowConnector& c_;
  };
  ssh::ConnectResult connect(const ssh::Endpoint& ep) override {
    ++connects;
    if (ep.target.host == "10.9.9.9")
      return ssh::ConnectFailure{ssh::ConnectFailure::Kind::Unreachable, "no route"};
    return ssh::SessionPtr(std::make_unique<S>(*this));
  }
  std::atomic<int> inFlight{0}, maxInFlight{0}, connects{0};
};

}  // namespace

TEST_CASE("probe rounds: at most probe_concurrency at once, connections kept, failures stored",
          "[unit][fleet]") {
  os::TempDir tmp;
  auto db = store::Database::open(tmp.path() / "s.db");
  ManualClock clock;
  NullLogger logger;
  SlowConnector ssh;
  SshConfig sshConfig;
  sshConfig.knownHosts = tmp.path() / "known_hosts";
  FleetConfig fc;
  fc.probeConcurrency = 3;
  fleet::Prober prober(ssh, sshConfig, fc, *db, clock, logger);
  std::vector<fleet::ProbeTarget> targets;
  for (int i = 0; i < 9; ++i)
    targets.push_back({"", "lab/infra", "h" + std::to_string(i),
                       parseTarget("root@10.0.0." + std::to_string(i + 1))});
  targets.push_back({"", "lab/infra", "gone", parseTarget("root@10.9.9.9")});
  auto results = prober.probeAll(targets);
  REQUIRE(results.size() == 10);
  CHECK(ssh.maxInFlight.load() <= 3);
  CHECK(ssh.maxInFlight.load() >= 2);
  CHECK(results[0].reached);
  CHECK(results[0].generation == 2);
  CHECK_FALSE(results[9].reached);
  CHECK(results[9].error.find("no route") != std::string::npos);
  CHECK(ssh.connects.load() == 10);
  prober.probeAll(targets);  // the nine kept sessions are reused; only "gone" reconnects
  CHECK(ssh.connects.load() == 11);
  auto stored = store::HostProbes(*db).all();
  CHECK(stored.size() == 10);
}

TEST_CASE(
    "the probe over real sshd: current system and generation, then unreachable with the "
    "last-seen time kept",
    "[integration][fleet][ssh]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: test hosts need root");
    return;
  }
  lab::TestHosts hosts({.names = {"web1", "db1"}});
  // web1 runs generation 3 of kA; its profile says so too.
  for (const auto& path : {kA, kB})
    fs::create_directories(hosts.host("web1").nixDir() / path.substr(5));
  fs::path profiles = hosts.host("web1").nixDir() / "var/nix/profiles";
  fs::create_directories(profiles);
  fs::create_symlink(kA, profiles / "system-3-link");
  fs::create_symlink("system-3-link", profiles / "system");
  fs::create_symlink(kA, hosts.host("web1").stateDir() / "current-system");

  os::TempDir tmp;
  auto db = store::Database::open(tmp.path() / "s.db");
  ManualClock clock;
  NullLogger logger;
  auto connector = ssh::makeLibsshConnector();
  SshConfig sshConfig = hosts.sshConfig();
  FleetConfig fc;
  fc.currentSystemLink = "/var/lib/fake-nixos/current-system";
  fleet::Prober prober(*connector, sshConfig, fc, *db, clock, logger);
  std::vector<fleet::ProbeTarget> targets = {{"", "lab/infra", "web1", hosts.host("web1").target()},
                                             {"", "lab/infra", "db1", hosts.host("db1").target()}};
  auto r = prober.probeAll(targets);
  CHECK(r[0].reached);
  CHECK(r[0].currentPath == kA);
  CHECK(r[0].profilePath == kA);
  CHECK(r[0].generation == 3);
  CHECK(r[1].reached);  // db1 answers but runs nothing yet
  CHECK_FALSE(r[1].currentPath);
  CHECK_FALSE(r[1].generation);

  // changed by hand: someone activated kB on the host (the same kept connection sees it)
  fs::remove(hosts.host("web1").stateDir() / "current-system");
  fs::create_symlink(kB, hosts.host("web1").stateDir() / "current-system");
  clock.ms += 60'000;
  r = prober.probeAll(targets);
  CHECK(r[0].currentPath == kB);

  const int64_t seenAt = clock.ms;
  hosts.stop("web1");
  clock.ms += 60'000;
  r = prober.probeAll(targets);
  CHECK_FALSE(r[0].reached);
  CHECK_FALSE(r[0].error.empty());
  auto stored = store::HostProbes(*db).get("", "lab/infra", "web1");
  REQUIRE(stored);
  CHECK_FALSE(stored->reached);
  CHECK(stored->lastSeen == seenAt);  // kept from the last answer
  CHECK(stored->currentPath == kB);
  CHECK(stored->probedAt == clock.ms);

  hosts.start("web1");
  r = prober.probeAll(targets);
  CHECK(r[0].reached);
  CHECK(r[0].currentPath == kB);
}
