// The deploy protocol end to end, with real sshd test hosts (own /nix each), real Nix builds
// and copies, and the real watchdog: every check looks at the target from outside (its
// profile links, its fake-NixOS markers, its store).
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/deploy/rollout.h"
#include "runner/os/files.h"
#include "tests/support/deploy_fixture.h"
#include "tests/support/run.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner::deploy;
using namespace std::chrono_literals;
using tests::DeployFixture;

namespace {

std::string switchLog(const runner::lab::TestHost& h) {
  return runner::os::readFileIfExists(h.stateDir() / "switch.log").value_or("");
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("deploy: the target runs the new system, confirmed over a new connection",
          "[integration][ssh][deploy]") {
  DeployFixture f({"web1"});
  const auto& h = f.hosts.host("web1");
  std::string rev1 = f.lab.infra.head();
  auto o1 = f.deploy("web1", rev1);
  INFO(o1.reason << "\n" << o1.activationLog);
  REQUIRE(o1.result == HostResult::Succeeded);
  std::string path1 = f.build(rev1, {"web1"}).at("web1");
  CHECK(o1.previousGeneration == std::nullopt);
  CHECK(o1.newGeneration == 1);
  CHECK(h.profileGeneration() == 1);
  CHECK(h.profilePath() == path1);
  CHECK(h.activated() == path1);
  CHECK(h.currentSystem() == path1);

  std::string rev2 = f.lab.infra.changeHost("web1");
  auto o2 = f.deploy("web1", rev2);
  INFO(o2.reason << "\n" << o2.activationLog);
  REQUIRE(o2.result == HostResult::Succeeded);
  std::string path2 = f.build(rev2, {"web1"}).at("web1");
  REQUIRE(path2 != path1);
  CHECK(o2.previousGeneration == 1);
  CHECK(o2.previousPath == path1);
  CHECK(o2.newGeneration == 2);
  CHECK(h.profileGeneration() == 2);
  CHECK(h.profilePath() == path2);
  CHECK(h.activated() == path2);
  CHECK(count(switchLog(h), " switch web1 ") == 2);
  // The confirmation took a second connection: sshd logged two accepted logins or more.
  CHECK(o2.activationLog.find("switched web1 to " + path2 + " (switch)") != std::string::npos);
  CHECK(f.observer.steps("web1") ==
        std::vector<std::string>{"lock", "ancestry", "connect", "inspect", "copy", "activate",
                                 "health", "confirm", "record", "lock", "ancestry", "connect",
                                 "inspect", "copy", "activate", "health", "confirm", "record"});

  // The record: commit, paths, generations, step durations.
  auto rec = f.deployments.lastSucceeded("web1", "", "infra");
  REQUIRE(rec);
  CHECK(rec->sha == rev2);
  CHECK(rec->storePath == path2);
  CHECK(rec->generation == 2);
  CHECK(rec->previousPath == path1);
  CHECK(rec->previousGeneration == 1);
  auto durations = nlohmann::json::parse(rec->durationsJson);
  for (const char* step : {"connect", "inspect", "copy", "activate", "health", "confirm"})
    CHECK(durations.contains(step));
  CHECK(o2.duration(Step::Copy) > 0ms);

  // The watchdog on the target agrees: confirmed (it writes its phase after the runner's
  // confirmation, so wait for it).
  auto phases = [&] {
    std::string all;
    for (const auto& e : fs::directory_iterator(h.runDir() / "switchyard"))
      if (runner::startsWith(e.path().filename().string(), "deploy-"))  // not start.lock
        all += std::string(runner::trim(runner::os::readFile(e.path() / "phase"))) + " ";
    return all;
  };
  tests::waitUntil([&] { return phases() == "confirmed confirmed "; }, 10s);
  CHECK(phases() == "confirmed confirmed ");
}

TEST_CASE("deploy: an activation that fails puts the previous generation back",
          "[integration][ssh][deploy]") {
  DeployFixture f({"web1"});
  const auto& h = f.hosts.host("web1");
  std::string good = f.lab.infra.head();
  REQUIRE(f.deploy("web1", good).result == HostResult::Succeeded);
  std::string goodPath = f.build(good, {"web1"}).at("web1");

  std::string bad = f.lab.infra.updateHost("web1", [](auto& lh) { lh.failActivation = true; });
  auto o = f.deploy("web1", bad);
  INFO(o.activationLog);
  CHECK(o.result == HostResult::RolledBack);
  CHECK(o.reason ==
        "activation failed: switch-to-configuration exited with status 3; generation 1 is active "
        "again");
  CHECK(o.newGeneration == 2);
  CHECK(o.failedStep == Step::Verify);
  // On the target: the profile is on generation 1 again and generation 1's system is active.
  CHECK(h.profileGeneration() == 1);
  CHECK(h.activated() == goodPath);
  CHECK(h.currentSystem() == goodPath);
  CHECK(count(switchLog(h), " FAILED") == 1);
  CHECK(o.activationLog.find("failed (testing.failActivation = true)") != std::string::npos);
  CHECK(f.deployments.history("web1").front().result == "rolled-back");
  CHECK(f.deployments.lastSucceeded("web1", "", "infra")->sha == good);
}

TEST_CASE("deploy: a configuration that cuts the runner off is rolled back by the watchdog",
          "[integration][ssh][deploy]") {
  DeployFixture f({"web1"}, {.confirmTimeout = 3s});
  const auto& h = f.hosts.host("web1");
  std::string good = f.lab.infra.head();
  REQUIRE(f.deploy("web1", good).result == HostResult::Succeeded);
  std::string goodPath = f.build(good, {"web1"}).at("web1");

  // The new configuration stops sshd: no new connection can confirm it.
  std::string cut = f.lab.infra.updateHost("web1", [](auto& lh) { lh.openssh = false; });
  auto t0 = std::chrono::steady_clock::now();
  auto o = f.deploy("web1", cut);
  auto took = std::chrono::steady_clock::now() - t0;
  INFO(o.reason << "\n" << o.activationLog);
  CHECK(o.result == HostResult::RolledBack);
  // The runner's reconnects race the host's watchdog. Usually they fail until the runner's own
  // deadline and the reason says why in parentheses. On a loaded machine the watchdog may roll
  // back first, its switch starts sshd again, the runner gets in and its confirmation comes too
  // late: the watchdog's reason alone. Either way the host is back on generation 1.
  const std::string noConfirmation = "no confirmation within 3s";
  const std::string cutOff = noConfirmation +
                             " (the runner could not open a new SSH connection: cannot "
                             "connect to " +
                             h.target().toString() + ": ";
  const std::string again = "; generation 1 is active again";
  CHECK((runner::startsWith(o.reason, cutOff) || o.reason == noConfirmation + again));
  CHECK(runner::endsWith(o.reason, again));
  CHECK(took < 20s);
  // sshd is back (the rollback's switch started it) and the old system is active.
  CHECK(f.hosts.accepting("web1"));
  CHECK(h.profileGeneration() == 1);
  CHECK(h.activated() == goodPath);
  auto log = switchLog(h);
  CHECK(count(log, " switch web1 ") == 3);
  auto s = f.connector->connect(runner::ssh::endpointFor(h.target(), f.settings.ssh));
  REQUIRE(std::holds_alternative<runner::ssh::SessionPtr>(s));
  CHECK(std::get<runner::ssh::SessionPtr>(s)
            ->exec({.command = "readlink /nix/var/nix/profiles/system"})
            .out == "system-1-link\n");
}

TEST_CASE("deploy: a failing health check rolls back", "[integration][ssh][deploy]") {
  DeployFixture f({"web1"});
  const auto& h = f.hosts.host("web1");
  std::string good = f.lab.infra.head();
  REQUIRE(f.deploy("web1", good).result == HostResult::Succeeded);
  std::string goodPath = f.build(good, {"web1"}).at("web1");
  std::string next = f.lab.infra.changeHost("web1");

  SECTION("a command on the target") {
    f.settings.activation.healthChecks = {"test -d /var/lib/fake-nixos/etc",
                                          "echo 'nginx: not running' >&2; exit 1"};
    auto o = f.deploy("web1", next);
    INFO(o.activationLog);
    CHECK(o.result == HostResult::RolledBack);
    CHECK(o.reason ==
          "health check 'echo 'nginx: not running' >&2; exit 1' exited with status 1: nginx: not "
          "running; generation 1 is active again");
  }
  SECTION("an HTTP check from the runner") {
    std::string url = "http://" + h.address + ":8080/health";
    runner::HttpResponse down;
    down.status = 503;
    f.http.on(url, down);
    f.settings.activation.httpChecks = {"http://{host}:8080/health"};
    auto o = f.deploy("web1", next);
    CHECK(o.result == HostResult::RolledBack);
    CHECK(o.reason == "HTTP check " + url + " failed: status 503; generation 1 is active again");
    REQUIRE(f.http.requests().size() == 1);
    CHECK(f.http.requests()[0].url == url);
  }
  CHECK(h.profileGeneration() == 1);
  CHECK(h.activated() == goodPath);

  SECTION("passing checks confirm") {
    f.settings.activation.healthChecks = {"test -e /var/lib/fake-nixos/activated"};
    runner::HttpResponse up;
    up.status = 200;
    f.http.on("http://" + h.address + ":8080/health", up);
    f.settings.activation.httpChecks = {"http://{host}:8080/health"};
    CHECK(f.deploy("web1", next).result == HostResult::Succeeded);
    CHECK(h.profileGeneration() == 2);
  }
}

TEST_CASE("deploy: a changed host key is refused before anything is copied",
          "[integration][ssh][deploy]") {
  DeployFixture f({"web1"});
  const auto& h = f.hosts.host("web1");
  f.hosts.replaceHostKey("web1");
  auto o = f.deploy("web1", f.lab.infra.head());
  CHECK(o.result == HostResult::Refused);
  CHECK(o.failedStep == Step::Connect);
  CHECK(runner::startsWith(o.reason, "host key of [" + h.address + "]:" + std::to_string(h.port) +
                                         " has CHANGED: the server offered ssh-ed25519 SHA256:"));
  CHECK(o.reason.find(f.hosts.knownHostsFile().string() + ":1 records ssh-ed25519 SHA256:") !=
        std::string::npos);
  // Nothing arrived: the host's store is still empty and no profile exists.
  CHECK(h.storePathCount() == 0);
  CHECK_FALSE(h.profileGeneration());
  CHECK(f.deployments.history("web1").front().result == "refused");
}

TEST_CASE("deploy: an older commit is refused unless forced", "[integration][ssh][deploy]") {
  DeployFixture f({"web1"});
  const auto& h = f.hosts.host("web1");
  std::string rev1 = f.lab.infra.head();
  std::string rev2 = f.lab.infra.changeHost("web1");
  REQUIRE(f.deploy("web1", rev2).result == HostResult::Succeeded);
  std::string path1 = f.build(rev1, {"web1"}).at("web1");

  auto refused = f.deploy("web1", rev1);
  CHECK(refused.result == HostResult::Refused);
  CHECK(refused.failedStep == Step::Ancestry);
  CHECK(runner::startsWith(refused.reason, "commit " + runner::shortSha(rev1) +
                                               " is not a descendant of " + runner::shortSha(rev2) +
                                               ", deployed to web1 at "));
  CHECK(runner::endsWith(refused.reason, "; use --force to deploy it anyway"));
  CHECK(h.profileGeneration() == 1);
  CHECK_FALSE(h.storeHas(path1));

  auto forced = f.deploy("web1", rev1, /*force=*/true);
  CHECK(forced.result == HostResult::Succeeded);
  CHECK(h.profileGeneration() == 2);
  CHECK(h.activated() == path1);
  // Now rev1 is "the deployed commit": rev2 descends from it again.
  CHECK(f.deploy("web1", rev2).result == HostResult::Succeeded);
}

TEST_CASE("deploy: two concurrent deploys to one host — the second is refused or waits",
          "[integration][ssh][deploy]") {
  std::vector<runner::lab::LabHost> labHosts(1);
  labHosts[0].name = "web1";
  labHosts[0].activationSeconds = 2;  // a slow switch keeps the first deploy busy
  DeployFixture f({"web1"}, {.labHosts = labHosts});
  const auto& h = f.hosts.host("web1");
  std::string rev = f.lab.infra.head();
  auto path = f.build(rev).at("web1");
  auto first = f.deployer();
  HostOutcome o1;
  std::thread t([&] { o1 = first->deploy(f.job("web1", path), f.request(rev), f.observer); });
  // Wait until the first deploy is activating (it holds the lock by then).
  REQUIRE(tests::waitUntil([&] { return fs::exists(h.runDir() / "switchyard"); }, 30s));

  SECTION("without a wait: refused, naming the holder") {
    auto o2 = f.deployer()->deploy(f.job("web1", path), f.request(rev), f.observer);
    t.join();
    CHECK(o2.result == HostResult::Refused);
    CHECK(o2.failedStep == Step::Lock);
    CHECK(runner::startsWith(o2.reason,
                             "another deploy holds the lock of web1 (held by another "
                             "deploy in this process since "));
    CHECK(runner::endsWith(o2.reason, ": deploying " + runner::shortSha(rev) + " from infra)"));
    CHECK(o1.result == HostResult::Succeeded);
    CHECK(h.profileGeneration() == 1);
  }
  SECTION("another host name for the same machine: refused, naming the machine") {
    auto alias = f.job("web1", path);
    alias.host = "web1-alias";
    auto o2 = f.deployer()->deploy(alias, f.request(rev), f.observer);
    t.join();
    CHECK(o2.result == HostResult::Refused);
    CHECK(o2.failedStep == Step::Lock);
    CHECK(runner::startsWith(o2.reason, "another deploy holds the lock of the machine " +
                                            alias.target.toString() + " (held by another deploy"));
    CHECK(runner::endsWith(o2.reason, " as web1)"));
    CHECK(o1.result == HostResult::Succeeded);
  }
  SECTION("with a wait: it runs after the first") {
    f.settings.lockWait = 30s;
    auto o2 = f.deployer()->deploy(f.job("web1", path), f.request(rev), f.observer);
    t.join();
    CHECK(o1.result == HostResult::Succeeded);
    CHECK(o2.result == HostResult::Succeeded);
    CHECK(o2.duration(Step::Lock) > 500ms);
    // The same closure again: Nix reuses the generation, and the switch runs a second time.
    CHECK(o2.previousGeneration == 1);
    CHECK(o2.newGeneration == 1);
    CHECK(h.profileGeneration() == 1);
    CHECK(count(switchLog(h), " switch web1 ") == 2);
  }
}

TEST_CASE(
    "rollout: an unreachable host is reported and the others continue, even with "
    "stop_on_failure",
    "[integration][ssh][deploy]") {
  DeployFixture f({"web1", "web2", "db1"});
  std::string rev = f.lab.infra.head();
  auto paths = f.build(rev);
  f.hosts.stop("web2");
  std::vector<HostJob> jobs;
  for (const auto& n : {"web1", "web2", "db1"}) jobs.push_back(f.job(n, paths.at(n)));
  runner::RolloutConfig rollout;
  rollout.maxParallel = 3;

  SECTION("stop_on_failure off") {
    rollout.stopOnFailure = false;
    auto d = f.deployer();
    auto out = runRollout(jobs, f.request(rev), rollout, *d, f.observer);
    REQUIRE(out.size() == 3);
    CHECK(out[0].result == HostResult::Succeeded);
    CHECK(out[1].result == HostResult::Unreachable);
    CHECK(out[1].failedStep == Step::Connect);
    CHECK(runner::startsWith(
        out[1].reason, "cannot connect to " + f.hosts.host("web2").target().toString() + ": "));
    CHECK(out[2].result == HostResult::Succeeded);
    CHECK(f.hosts.host("db1").profilePath() == paths.at("db1"));
    CHECK(f.hosts.host("web2").storePathCount() == 0);
  }
  SECTION("stop_on_failure on, the unreachable host a canary") {
    // Issue 18: a host that is off (the seed's demo) was not touched and says nothing about
    // the new configuration; it must not hold back the others.
    rollout.stopOnFailure = true;
    rollout.canary = {"web2"};
    auto d = f.deployer();
    auto out = runRollout(jobs, f.request(rev), rollout, *d, f.observer);
    REQUIRE(out.size() == 3);
    CHECK(out[0].host == "web2");
    CHECK(out[0].result == HostResult::Unreachable);
    CHECK(out[1].result == HostResult::Succeeded);
    CHECK(out[2].result == HostResult::Succeeded);
    CHECK(f.hosts.host("web1").profilePath() == paths.at("web1"));
    CHECK(f.hosts.host("web2").storePathCount() == 0);
  }
}

TEST_CASE("deploy: a dry run changes nothing and shows dry-activate where it can",
          "[integration][ssh][deploy]") {
  DeployFixture f({"web1", "web2"});
  std::string rev = f.lab.infra.head();
  auto paths = f.build(rev);
  REQUIRE(f.deploy("web1", rev).result == HostResult::Succeeded);
  auto req = f.request(rev);
  req.dryRun = true;
  auto d = f.deployer();

  auto present = d->deploy(f.job("web1", paths.at("web1")), req, f.observer);
  CHECK(present.result == HostResult::DryRun);
  CHECK(present.dryActivate ==
        "would activate " + paths.at("web1") + " (host web1) in /var/lib/fake-nixos\n");
  CHECK(present.plan.find("copy:    nothing, the closure is already on the host") !=
        std::string::npos);
  CHECK(present.plan.find("the host already runs this configuration") != std::string::npos);

  auto fresh = d->deploy(f.job("web2", paths.at("web2")), req, f.observer);
  CHECK(fresh.result == HostResult::DryRun);
  CHECK(fresh.dryActivate.empty());
  CHECK(fresh.plan.find("current: no system profile yet") != std::string::npos);
  auto closure = tests::runOk("nix-store", {"-qR", paths.at("web2")});
  size_t n = runner::split(closure, '\n').size();
  CHECK(fresh.plan.find("copy:    " + std::to_string(n) + " of " + std::to_string(n) +
                        " paths with nix copy --to ssh://root@" + f.hosts.host("web2").address) !=
        std::string::npos);
  CHECK(
      fresh.plan.find("confirm: within 3s; first deploy: there is no generation to roll back to") !=
      std::string::npos);
  // Nothing changed anywhere, nothing recorded.
  CHECK(f.hosts.host("web2").storePathCount() == 0);
  CHECK_FALSE(f.hosts.host("web2").profileGeneration());
  CHECK(f.hosts.host("web1").profileGeneration() == 1);
  CHECK(f.deployments.history("web2").empty());
  CHECK(f.deployments.history("web1").size() == 1);
}

TEST_CASE("deploy: the activation survives the runner's connection being killed mid-switch",
          "[integration][ssh][deploy]") {
  // The new configuration's activation kills every ssh session on the host (not the listener):
  // the runner's connection drops while it watches the switch. The switch runs on, detached;
  // the runner reconnects, follows it to the end and confirms over a new connection.
  std::vector<runner::lab::LabHost> labHosts(1);
  labHosts[0].name = "web1";
  DeployFixture f({"web1"}, {.labHosts = labHosts});
  const auto& h = f.hosts.host("web1");
  REQUIRE(f.deploy("web1", f.lab.infra.head()).result == HostResult::Succeeded);
  std::string next = f.lab.infra.updateHost("web1", [](auto& lh) {
    lh.activationSeconds = 1;
    lh.extraActivation =
        "me=$(readlink /proc/self/ns/mnt)\n"
        "for p in $(pgrep -f 'sshd: root@notty' || true); do\n"
        "  if [ \"$(readlink /proc/$p/ns/mnt)\" = \"$me\" ]; then kill $p; fi\n"
        "done\n";
  });
  std::string nextPath = f.build(next, {"web1"}).at("web1");
  auto logins = [&] {
    return count(runner::os::readFileIfExists(h.stateDir() / "sshd.log").value_or(""),
                 "Accepted publickey");
  };
  size_t before = logins();
  auto o = f.deploy("web1", next);
  INFO(o.reason << "\n" << o.activationLog);
  CHECK(o.result == HostResult::Succeeded);
  CHECK(h.profileGeneration() == 2);
  CHECK(h.activated() == nextPath);
  // connect, nix copy's ssh, the reconnect after the drop (without the drop there is none),
  // and the confirmation's new connection
  CHECK(logins() - before == 4);
  CHECK(o.activationLog.find("switched web1 to " + nextPath + " (switch)") != std::string::npos);
}

TEST_CASE("deploy: a login user that is not root deploys through sudo, the watchdog intact",
          "[integration][ssh][deploy]") {
  if (!fs::exists("/usr/bin/sudo")) {
    WARN("SKIPPED: sudo is not installed (apt-get install sudo)");
    return;
  }
  DeployFixture f({"web1"}, {.loginUser = "deployer"});
  const auto& h = f.hosts.host("web1");
  const std::string rev1 = f.lab.infra.head();
  const std::string path1 = f.build(rev1, {"web1"}).at("web1");
  auto asDeployer = [&](const std::string& path, std::vector<std::string> escalation) {
    auto job = f.job("web1", path);
    job.target.user = "deployer";
    job.escalation = std::move(escalation);
    return job;
  };

  // Without the escalation the user cannot write the system's store: nothing changes.
  auto denied = f.deployer()->deploy(asDeployer(path1, {}), f.request(rev1), f.observer);
  INFO(denied.reason);
  CHECK(denied.result == HostResult::Failed);
  CHECK_FALSE(h.profileGeneration());

  // Through sudo: copied, switched, confirmed.
  const std::vector<std::string> sudo = {"sudo", "-n", "-H", "--"};
  auto o1 = f.deployer()->deploy(asDeployer(path1, sudo), f.request(rev1), f.observer);
  INFO(o1.reason << "\n" << o1.activationLog);
  REQUIRE(o1.result == HostResult::Succeeded);
  CHECK(h.profileGeneration() == 1);
  CHECK(h.activated() == path1);
  // sshd logged the login as the user, not as root
  CHECK(runner::os::readFile(h.stateDir() / "sshd.log").find("for deployer from") !=
        std::string::npos);

  // The watchdog still rolls back under sudo: a failing health check.
  const std::string rev2 = f.lab.infra.changeHost("web1");
  const std::string path2 = f.build(rev2, {"web1"}).at("web1");
  f.settings.activation.healthChecks = {"false"};
  auto o2 = f.deployer()->deploy(asDeployer(path2, sudo), f.request(rev2), f.observer);
  INFO(o2.reason << "\n" << o2.activationLog);
  CHECK(o2.result == HostResult::RolledBack);
  CHECK(h.profileGeneration() == 1);
  CHECK(h.activated() == path1);
}
