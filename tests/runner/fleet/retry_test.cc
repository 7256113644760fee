// retry_unreachable (issue 18) end to end: the daemon with its real stages, a lab flake, two
// sshd test hosts. `demo` is off when two pushes come (its target comes from the flake's
// Colmena deployment.targetHost, so only the retry makes the fleet probe look at it); when it
// starts again the probe notices and the NEWER push's deploy is re-run for it alone.
#include "runner/fleet/retry.h"

#include <filesystem>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/deployments.h"
#include "runner/store/host_probes.h"
#include "runner/store/runs.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/run.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner;

TEST_CASE("retry_unreachable: only the newest record, only unreachable, only within the window",
          "[unit][fleet]") {
  os::TempDir tmp("sy-retry-unit");
  auto db = store::Database::open(tmp.path() / "s.db", store::Durability::Normal);
  store::Deployments deployments(*db);
  Config config;
  RepoConfig repo;
  repo.name = "r";
  repo.rollout.retryUnreachable = std::chrono::hours(1);
  repo.hosts.push_back({"demo"});
  repo.hosts.push_back({"off"});
  repo.hosts.back().retryUnreachable = std::chrono::seconds(0);  // per host: never
  config.repos = {repo};
  auto rec = [&](const std::string& host, const std::string& sha, const std::string& result,
                 int64_t at, int64_t run) {
    store::DeploymentRecord r;
    r.host = host;
    r.repo = "r";
    r.sha = sha;
    r.storePath = "/nix/store/" + sha;
    r.result = result;
    r.runId = run;
    r.startedAt = r.finishedAt = at;
    return deployments.record(r);
  };
  const int64_t hour = 3'600'000;
  rec("demo", "aaa", "unreachable", 10 * hour, 1);
  const int64_t b = rec("demo", "bbb", "unreachable", 11 * hour, 2);
  rec("off", "aaa", "unreachable", 10 * hour, 1);
  store::ProbeRecord demo{.repo = "r", .host = "demo", .target = "root@h", .reached = true};
  store::ProbeRecord off{.repo = "r", .host = "off", .target = "root@o", .reached = true};

  auto due = fleet::dueRetries(*db, config, {demo, off}, 11 * hour + 60'000);
  REQUIRE(due.size() == 1);  // `off` has retries turned off
  CHECK(due[0].host == "demo");
  CHECK(due[0].sha == "bbb");  // the newer of the two pending deploys
  CHECK(due[0].runId == 2);
  CHECK(due[0].recordId == b);

  // not reached, or past the window: nothing
  demo.reached = false;
  CHECK(fleet::dueRetries(*db, config, {demo}, 11 * hour + 60'000).empty());
  demo.reached = true;
  CHECK(fleet::dueRetries(*db, config, {demo}, 12 * hour + 1).empty());

  // queued once per record
  SystemClock clock;
  CHECK(fleet::queueRetry(*db, clock, due[0]));
  CHECK_FALSE(fleet::queueRetry(*db, clock, due[0]));

  // a newer deploy that reached it settles it
  rec("demo", "ccc", "succeeded", 11 * hour + 1000, 3);
  CHECK(fleet::dueRetries(*db, config, {demo}, 11 * hour + 60'000).empty());
}

TEST_CASE("retry_unreachable asks only the repository of the probe's forge", "[unit][fleet]") {
  os::TempDir tmp("sy-retry-forges");
  auto db = store::Database::open(tmp.path() / "s.db", store::Durability::Normal);
  Config config;
  for (const auto* forge : {"github", "gitea"}) {
    RepoConfig repo;
    repo.forge = forge;
    repo.name = "alice/infra";
    repo.rollout.retryUnreachable = std::chrono::hours(1);
    repo.hosts.push_back({"demo"});
    config.repos.push_back(repo);
  }
  // gitea's deploy found demo off; github's reached it
  store::DeploymentRecord r;
  r.host = "demo";
  r.forge = "gitea";
  r.repo = "alice/infra";
  r.sha = "ttt";
  r.result = "unreachable";
  r.runId = 7;
  r.startedAt = r.finishedAt = 1000;
  const int64_t off = store::Deployments(*db).record(r);
  r.forge = "github";
  r.sha = "ggg";
  r.result = "succeeded";
  r.runId = 8;
  store::Deployments(*db).record(r);
  store::ProbeRecord github{.forge = "github",
                            .repo = "alice/infra",
                            .host = "demo",
                            .target = "root@h",
                            .reached = true};
  CHECK(fleet::dueRetries(*db, config, {github}, 2000).empty());
  store::ProbeRecord gitea = github;
  gitea.forge = "gitea";
  auto due = fleet::dueRetries(*db, config, {gitea}, 2000);
  REQUIRE(due.size() == 1);
  CHECK(due[0].forge == "gitea");
  CHECK(due[0].sha == "ttt");
  CHECK(due[0].runId == 7);
  CHECK(due[0].recordId == off);
  // gitea's pending retry makes the probe look at demo for gitea, with the target it tried
  store::ProbeRecord tried = gitea;
  tried.reached = false;
  tried.target = "root@10.1.1.1";
  store::HostProbes(*db).record(tried);
  auto targets = fleet::retryProbeTargets(*db, config, {}, 2000);
  REQUIRE(targets.size() == 1);
  CHECK(targets[0].forge == "gitea");
  CHECK(targets[0].target.toString() == "root@10.1.1.1");
}

TEST_CASE("retry_unreachable: a host that was off gets the newest pending deploy when it answers",
          "[integration][daemon][fleet]") {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-retry");
  lab::TestHosts hosts({.names = {"web1", "demo"}});
  lab::LabHost web1, demo;
  web1.name = "web1";
  demo.name = "demo";
  demo.colmenaTarget = hosts.host("demo").target().toString();
  auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = {web1, demo}});

  fs::path bare = tmp.path() / "infra.git";
  tests::runOk("git", {"clone", "-q", "--bare", lab.infra.path().string(), bare.string()});
  os::writeFileAtomic(tmp.path() / "hook.secret", tests::kHookSecret);

  Config config;
  config.listen = "127.0.0.1:0";
  config.stateDir = tmp.path() / "state";
  config.hookSecretFile = tmp.path() / "hook.secret";
  config.ssh = hosts.sshConfig();
  config.fleet.probeInterval = std::chrono::seconds(1);
  config.fleet.currentSystemLink = "/var/lib/fake-nixos/current-system";
  RepoConfig repo;
  repo.name = "lab/infra";
  repo.path = bare;
  repo.detection = PlanMode::Static;
  repo.activation.confirmTimeout = std::chrono::seconds(5);
  repo.rollout.retryUnreachable = std::chrono::hours(1);
  repo.hosts.push_back({"web1", hosts.host("web1").target().toString()});
  repo.hosts.push_back({"demo"});  // target from the flake
  config.repos = {repo};

  tests::RecordingLogger log;
  app::DaemonOptions options;
  options.log = &log;
  options.poll = std::chrono::milliseconds(100);
  app::Daemon daemon(config, options);
  daemon.start();
  app::installPostReceiveHook(bare, daemon.baseUrl(), tmp.path() / "hook.secret", "lab/infra");
  auto push = [&] {
    auto r = tests::run("git", {"-C", lab.infra.path().string(), "push", "-q", bare.string(),
                                "HEAD:refs/heads/main"});
    INFO(r.errTail);
    REQUIRE(r.exitStatus == 0);
  };

  auto db = store::Database::open(app::databasePath(daemon.config()), store::Durability::Normal);
  SystemClock clock;
  store::Runs runs(*db, clock, daemon.config().effectivePublicUrl());
  store::Deployments deployments(*db);

  hosts.stop("demo");
  // Push A: both hosts change; web1 is deployed, demo is unreachable.
  const std::string a = lab.infra.changeModule("base");
  push();
  auto run1 = daemon.waitForRunState(1, std::chrono::minutes(5));
  INFO(log.all());
  REQUIRE(run1);
  CHECK(toString(runs.host(1, "web1")->state) == std::string("succeeded"));
  CHECK(toString(runs.host(1, "demo")->state) == std::string("unreachable"));
  const auto recordA = deployments.history("demo", 1).at(0);
  CHECK(recordA.result == "unreachable");
  CHECK(recordA.sha == a);

  // Push B while demo is still off: only demo changes; it is unreachable again.
  const std::string b = lab.infra.changeHost("demo");
  push();
  auto run2 = daemon.waitForRunState(2, std::chrono::minutes(5));
  REQUIRE(run2);
  CHECK(toString(runs.host(2, "demo")->state) == std::string("unreachable"));
  const auto demoPathB = runs.host(2, "demo")->outPath;
  REQUIRE(demoPathB);

  // The fleet shows demo unreachable, with the target the deploy tried.
  fs::path cfgFile = tmp.path() / "switchyard.yaml";
  os::writeFileAtomic(cfgFile, "state_dir: " + config.stateDir.string() +
                                   "\nrepos:\n  - name: lab/infra\n    path: " + bare.string() +
                                   "\n    hosts: {web1: , demo: }\n");
  auto fleet = tests::switchyard({"fleet", "--json", "--config", cfgFile.string()});
  INFO(fleet.out << fleet.errTail);
  REQUIRE(fleet.exitStatus == 0);
  bool sawDemo = false;
  for (const auto& row : nlohmann::json::parse(fleet.out)) {
    if (row.at("host") != "demo") continue;
    sawDemo = true;
    CHECK(row.at("drift") == "unreachable");
    CHECK(row.at("target") == hosts.host("demo").target().toString());
  }
  CHECK(sawDemo);
  CHECK(runs.get(3) == std::nullopt);  // nothing retried while it is off

  // demo answers again: the probe finds it and B (the newest) is re-run for demo alone.
  hosts.start("demo");
  auto run3 = daemon.waitForRunState(3, std::chrono::minutes(5));
  REQUIRE(run3);
  CHECK(run3->view.kind == RunKind::Rerun);
  CHECK(run3->view.sha == b);
  CHECK(run3->view.parentRunId == 2);
  CHECK(run3->view.hostsFilter == std::vector<std::string>{"demo"});
  CHECK(run3->view.state == RunState::Succeeded);
  CHECK(hosts.host("demo").profilePath() == *demoPathB);
  auto newest = deployments.history("demo", 1).at(0);
  CHECK(newest.result == "succeeded");
  CHECK(newest.sha == b);
  // A's unreachable record was never retried (B's was newer), and B's only once.
  CHECK(tests::countRows(daemon.config(), "SELECT COUNT(*) FROM deliveries WHERE delivery_id = ?",
                         {"retry-unreachable-" + std::to_string(recordA.id)}) == 0);
  // Two more probe rounds (web1's; demo, with nothing pending, is no longer looked at):
  // nothing more is queued.
  const int64_t after = clock.nowMillis();
  CHECK(tests::waitUntil(
      [&] {
        auto p = store::HostProbes(*db).get("", "lab/infra", "web1");
        return p && p->probedAt > after + 2000;
      },
      std::chrono::seconds(20), std::chrono::milliseconds(100)));
  CHECK(runs.get(4) == std::nullopt);
  daemon.stop();
}
