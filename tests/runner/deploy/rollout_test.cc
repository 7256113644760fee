// Rollout policy with a fake per-host deployer (canaries first and alone, max_parallel,
// stop_on_failure), the host lock guard, the pure deploy helpers, and the refusals the
// deployer makes before it ever connects.
#include "runner/deploy/rollout.h"

#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/deploy/deploy_stage.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/database.h"
#include "tests/support/fake_http_client.h"
#include "tests/support/fake_ssh.h"

using namespace runner::deploy;
using namespace std::chrono_literals;

namespace {

// A state database with this process's host locks and the guard over them.
struct LockFixture {
  runner::os::TempDir tmp{"sy-locks"};
  std::unique_ptr<runner::store::Database> db =
      runner::store::Database::open(tmp.path() / "state.db");
  runner::SystemClock clock;
  runner::store::HostLocks locks{*db, clock};
  HostLockGuard guard{locks, clock};
};

class FakeDeployer final : public HostDeployer {
 public:
  std::map<std::string, HostResult> results;  // default: Succeeded
  std::chrono::milliseconds delay{30};
  std::map<std::string, std::chrono::milliseconds> delays;  // per host, instead of `delay`
  std::string throwFor;

  HostOutcome deploy(const HostJob& job, const DeployRequest&, DeployObserver&) override {
    {
      std::lock_guard lk(mu_);
      started.push_back(job.host);
      running_++;
      maxRunning = std::max(maxRunning, running_);
    }
    std::this_thread::sleep_for(delays.count(job.host) ? delays.at(job.host) : delay);
    {
      std::lock_guard lk(mu_);
      running_--;
    }
    if (job.host == throwFor) throw runner::StoreError("database is locked");
    HostOutcome o;
    o.host = job.host;
    o.storePath = job.storePath;
    auto it = results.find(job.host);
    o.result = it == results.end() ? HostResult::Succeeded : it->second;
    return o;
  }

  std::vector<std::string> started;
  int maxRunning = 0;

 private:
  std::mutex mu_;
  int running_ = 0;
};

class RecordingObserver final : public DeployObserver {
 public:
  void hostFinished(const HostOutcome& o) override {
    std::lock_guard lk(mu_);
    finished.push_back(o.host + ":" + std::string(resultName(o.result)));
  }
  std::vector<std::string> finished;

 private:
  std::mutex mu_;
};

std::vector<HostJob> jobs(std::initializer_list<const char*> names) {
  std::vector<HostJob> out;
  for (auto n : names)
    out.push_back(
        {n, runner::parseTarget(std::string("root@") + n), "/nix/store/x-" + std::string(n)});
  return out;
}

std::vector<std::string> names(const std::vector<HostOutcome>& os) {
  std::vector<std::string> out;
  for (const auto& o : os) out.push_back(o.host + ":" + std::string(resultName(o.result)));
  return out;
}

}  // namespace

TEST_CASE("planRollout puts configured canaries first, in their order", "[unit][deploy]") {
  runner::RolloutConfig cfg;
  cfg.canary = {"db1", "absent", "web2"};
  auto plan = planRollout(jobs({"web1", "web2", "db1", "cache1"}), cfg);
  std::vector<std::string> canaries, rest;
  for (const auto& j : plan.canaries) canaries.push_back(j.host);
  for (const auto& j : plan.rest) rest.push_back(j.host);
  CHECK(canaries == std::vector<std::string>{"db1", "web2"});
  CHECK(rest == std::vector<std::string>{"web1", "cache1"});
}

TEST_CASE("rollout: canaries one at a time, then at most max_parallel at once", "[unit][deploy]") {
  FakeDeployer d;
  RecordingObserver obs;
  runner::RolloutConfig cfg;
  cfg.canary = {"c1", "c2"};
  cfg.maxParallel = 3;
  auto out =
      runRollout(jobs({"h1", "c2", "h2", "h3", "c1", "h4", "h5", "h6", "h7"}), {}, cfg, d, obs);
  REQUIRE(d.started.size() == 9);
  CHECK(d.started[0] == "c1");
  CHECK(d.started[1] == "c2");
  CHECK(d.maxRunning == 3);
  CHECK(names(out) == std::vector<std::string>{"c1:succeeded", "c2:succeeded", "h1:succeeded",
                                               "h2:succeeded", "h3:succeeded", "h4:succeeded",
                                               "h5:succeeded", "h6:succeeded", "h7:succeeded"});
  CHECK(obs.finished.size() == 9);

  FakeDeployer serial;
  cfg.maxParallel = 1;
  runRollout(jobs({"a", "b", "c"}), {}, cfg, serial, obs);
  CHECK(serial.maxRunning == 1);
  CHECK(serial.started == std::vector<std::string>{"a", "b", "c"});
}

TEST_CASE("rollout: stop_on_failure after a failed canary skips everyone else", "[unit][deploy]") {
  FakeDeployer d;
  d.results["c1"] = HostResult::RolledBack;
  RecordingObserver obs;
  runner::RolloutConfig cfg;
  cfg.canary = {"c1", "c2"};
  cfg.maxParallel = 4;
  cfg.stopOnFailure = true;
  auto out = runRollout(jobs({"h1", "c1", "c2", "h2"}), {}, cfg, d, obs);
  CHECK(d.started == std::vector<std::string>{"c1"});
  CHECK(names(out) ==
        std::vector<std::string>{"c1:rolled-back", "c2:skipped", "h1:skipped", "h2:skipped"});
  CHECK(out[1].reason == "not started: the rollout stopped after c1 rolled back");
  CHECK(obs.finished.size() == 4);
}

TEST_CASE("rollout: without stop_on_failure an unreachable host does not stop the others",
          "[unit][deploy]") {
  FakeDeployer d;
  d.results["h2"] = HostResult::Unreachable;
  d.results["h4"] = HostResult::Failed;
  RecordingObserver obs;
  runner::RolloutConfig cfg;
  cfg.maxParallel = 2;
  cfg.stopOnFailure = false;
  auto out = runRollout(jobs({"h1", "h2", "h3", "h4", "h5"}), {}, cfg, d, obs);
  CHECK(names(out) == std::vector<std::string>{"h1:succeeded", "h2:unreachable", "h3:succeeded",
                                               "h4:failed", "h5:succeeded"});
}

TEST_CASE("rollout: with stop_on_failure an unreachable canary does not stop the rollout",
          "[unit][deploy]") {
  FakeDeployer d;
  d.results["c1"] = HostResult::Unreachable;  // the seed's `demo`: off for months
  d.results["h2"] = HostResult::Failed;
  RecordingObserver obs;
  runner::RolloutConfig cfg;
  cfg.canary = {"c1"};
  cfg.maxParallel = 1;
  cfg.stopOnFailure = true;
  auto out = runRollout(jobs({"h1", "c1", "h2", "h3"}), {}, cfg, d, obs);
  CHECK(names(out) ==
        std::vector<std::string>{"c1:unreachable", "h1:succeeded", "h2:failed", "h3:skipped"});
  CHECK(out[3].reason == "not started: the rollout stopped after h2 failed");
}

TEST_CASE("rollout: stop_on_failure lets running hosts finish and skips the ones not started",
          "[unit][deploy]") {
  FakeDeployer d;
  d.results["h1"] = HostResult::Failed;
  d.delays = {{"h1", 50ms}, {"h2", 300ms}};
  RecordingObserver obs;
  runner::RolloutConfig cfg;
  cfg.maxParallel = 2;
  cfg.stopOnFailure = true;
  auto out = runRollout(jobs({"h1", "h2", "h3", "h4"}), {}, cfg, d, obs);
  // h1 and h2 run together; h1's failure stops h3 and h4 from starting.
  CHECK(names(out) ==
        std::vector<std::string>{"h1:failed", "h2:succeeded", "h3:skipped", "h4:skipped"});

  SECTION("a dry run never stops") {
    FakeDeployer dry;
    dry.results["h1"] = HostResult::Refused;
    DeployRequest req;
    req.dryRun = true;
    auto o = runRollout(jobs({"h1", "h2"}), req, cfg, dry, obs);
    CHECK(names(o) == std::vector<std::string>{"h1:refused", "h2:succeeded"});
  }
  SECTION("a deployer that throws fails only that host") {
    FakeDeployer thrower;
    thrower.throwFor = "h2";
    cfg.stopOnFailure = false;
    auto o = runRollout(jobs({"h1", "h2", "h3"}), {}, cfg, thrower, obs);
    CHECK(names(o) == std::vector<std::string>{"h1:succeeded", "h2:failed", "h3:succeeded"});
    CHECK(o[1].reason == "internal error: database is locked");
  }
}

TEST_CASE("host lock guard: one deploy per host in a process and across processes",
          "[unit][deploy]") {
  LockFixture f;
  auto& [tmp, db, clock, locks, guard] = f;

  auto first = guard.acquire("web1", "deploying aaaa from infra", 0ms);
  REQUIRE(std::holds_alternative<HostLockGuard::Lease>(first));
  auto second = guard.acquire("web1", "deploying bbbb from infra", 0ms);
  REQUIRE(std::holds_alternative<HostLockGuard::Busy>(second));
  const auto& busy = std::get<HostLockGuard::Busy>(second);
  CHECK(busy.sameProcess);
  CHECK(busy.holder.purpose == "deploying aaaa from infra");
  CHECK(describeHolder(busy).find("held by another deploy in this process since ") == 0);
  CHECK(std::holds_alternative<HostLockGuard::Lease>(guard.acquire("web2", "other host", 0ms)));

  // A waiter gets the host once the holder lets go, not before.
  std::atomic<bool> released{false};
  std::thread releaser([&] {
    std::this_thread::sleep_for(300ms);  // the waiter is (most likely) waiting by then
    released = true;
    first = HostLockGuard::Busy{};  // drops the lease
  });
  auto waited = guard.acquire("web1", "deploying cccc from infra", 60s);
  CHECK(released);
  releaser.join();
  CHECK(std::holds_alternative<HostLockGuard::Lease>(waited));
  waited = HostLockGuard::Busy{};

  // Another live process (here: pid 1, which is alive) holds web3 in the database.
  runner::store::HostLocks other(*db, clock, [] {
    auto parts = std::string(runner::store::HostLocks::thisProcess());
    auto host = parts.substr(0, parts.find(':'));
    auto stat = runner::os::readFile("/proc/1/stat");
    auto fields = stat.substr(stat.rfind(')') + 2);
    std::vector<std::string> f;
    size_t pos = 0;
    while (f.size() < 20) {
      auto sp = fields.find(' ', pos);
      f.push_back(fields.substr(pos, sp - pos));
      pos = sp + 1;
    }
    return host + ":1:" + f[19];
  }());
  REQUIRE_FALSE(other.tryAcquire("web3", "deploying dddd from infra (run 7)"));
  auto blocked = guard.acquire("web3", "deploying eeee", 300ms);
  REQUIRE(std::holds_alternative<HostLockGuard::Busy>(blocked));
  CHECK_FALSE(std::get<HostLockGuard::Busy>(blocked).sameProcess);
  CHECK(std::get<HostLockGuard::Busy>(blocked).holder.purpose ==
        "deploying dddd from infra (run 7)");
  // The refused attempt left nothing behind in this process.
  other.release("web3");
  CHECK(std::holds_alternative<HostLockGuard::Lease>(guard.acquire("web3", "now", 0ms)));
}

TEST_CASE("host lock guard: a release the database refused is done on the next lock call",
          "[unit][deploy]") {
  LockFixture f;
  auto& [tmp, db, clock, locks, guard] = f;
  runner::store::HostLocks cli(*db, clock, "elsewhere:1:1");  // another process's view
  auto lease = guard.acquire("web1", "deploying aaaa", 0ms);
  REQUIRE(std::holds_alternative<HostLockGuard::Lease>(lease));
  // The database refuses the release (as when it stays busy past its timeout).
  db->exec(
      "CREATE TRIGGER no_release BEFORE DELETE ON host_locks "
      "BEGIN SELECT RAISE(FAIL, 'database is locked'); END");
  lease = HostLockGuard::Busy{};  // drops the lease: the release fails quietly
  REQUIRE(cli.tryAcquire("web1", "switchyard deploy"));  // still held in the database
  db->exec("DROP TRIGGER no_release");
  // The next call into the guard, for any host, releases web1 for good.
  CHECK(std::holds_alternative<HostLockGuard::Lease>(guard.acquire("db1", "other", 0ms)));
  CHECK_FALSE(cli.tryAcquire("web1", "switchyard deploy"));
}

TEST_CASE("nix copy: no port in the store URL, NIX_SSHOPTS carries key, port and known_hosts",
          "[unit][deploy]") {
  DeploySettings s;
  s.ssh.identityFile = "/keys/deploy";
  s.ssh.knownHosts = "/etc/switchyard/known_hosts";
  s.ssh.connectTimeout = std::chrono::seconds(5);
  s.ssh.useAgent = false;
  HostJob job{"web1", runner::parseTarget("root@127.0.0.11:2201"),
              "/nix/store/abc-nixos-system-web1"};
  auto o = nixCopyOptions(job, s);
  CHECK(o.program == "nix");
  CHECK(o.args == std::vector<std::string>{"--extra-experimental-features", "nix-command", "copy",
                                           "--to", "ssh://root@127.0.0.11",
                                           "--substitute-on-destination",
                                           "/nix/store/abc-nixos-system-web1"});
  CHECK(o.env.at("NIX_SSHOPTS") ==
        "-F /dev/null -p 2201 -o UserKnownHostsFile=/etc/switchyard/known_hosts "
        "-o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes "
        "-o ConnectTimeout=5 -i /keys/deploy -o IdentitiesOnly=yes -o IdentityAgent=none "
        "-o KexAlgorithms=-sntrup*");
  s.activation.substituteOnTarget = false;
  HostJob v6{"db1", runner::parseTarget("deploy@[fd6e:6978:6c61:1::2]"), "/nix/store/x"};
  auto o6 = nixCopyOptions(v6, s);
  CHECK(o6.args == std::vector<std::string>{"--extra-experimental-features", "nix-command", "copy",
                                            "--to", "ssh://deploy@fd6e:6978:6c61:1::2",
                                            "/nix/store/x"});
  s.ssh.identityFile = "/my keys/deploy";
  CHECK_THROWS_AS(nixCopyOptions(job, s), runner::InputError);

  CHECK(expandCheckUrl("http://{host}:8080/health?h={name}", job) ==
        "http://127.0.0.11:8080/health?h=web1");
  CHECK(expandCheckUrl("http://{host}/", v6) == "http://[fd6e:6978:6c61:1::2]/");
}

TEST_CASE("deployer refuses a locked host and an older commit before connecting",
          "[unit][deploy]") {
  runner::os::TempDir tmp("sy-deploy-unit");
  auto db = runner::store::Database::open(tmp.path() / "state.db");
  runner::SystemClock clock;
  runner::store::HostLocks locks(*db, clock);
  runner::store::Deployments deployments(*db);
  HostLockGuard guard(locks, clock);
  tests::FakeConnector ssh;
  tests::FakeHttpClient http;
  runner::os::PosixProcessRunner procs;
  runner::NullLogger log;
  struct Lineage final : Ancestry {
    bool isAncestor(const std::string& a, const std::string& d) override {
      if (a == "unknown" || d == "unknown") throw runner::GitError("object not found");
      return a < d;  // "newer" shas sort later in this fake history
    }
  } ancestry;
  DeploySettings settings;
  settings.ssh.knownHosts = tmp.path() / "known_hosts";
  SshDeployer deployer({ssh, procs, http, guard, deployments, ancestry, clock, log}, settings);
  NullDeployObserver obs;
  HostJob job{"web1", runner::parseTarget("root@web1.invalid"), "/nix/store/abc-web1"};

  runner::store::DeploymentRecord last;
  last.host = "web1";
  last.repo = "infra";
  last.sha = "bbbb000000000000000000000000000000000000";
  last.storePath = "/nix/store/old";
  last.result = "succeeded";
  last.finishedAt = 1764098400000;  // 2025-11-25T19:20:00Z
  deployments.record(last);

  DeployRequest older{"infra", "aaaa000000000000000000000000000000000000"};
  auto o = deployer.deploy(job, older, obs);
  CHECK(o.result == HostResult::Refused);
  CHECK(o.failedStep == Step::Ancestry);
  CHECK(o.reason ==
        "commit aaaa0000 is not a descendant of bbbb0000, deployed to web1 at "
        "2025-11-25T19:20:00Z; use --force to deploy it anyway");
  CHECK(ssh.calls().empty());
  // Refusals are recorded, and never count as "the deployed commit".
  CHECK(deployments.history("web1").front().result == "refused");
  CHECK(deployments.lastSucceeded("web1", "", "infra")->sha == last.sha);

  DeployRequest unknown{"infra", "unknown"};
  auto u = deployer.deploy(job, unknown, obs);
  CHECK(u.result == HostResult::Refused);
  CHECK(u.reason.find("(object not found)") != std::string::npos);

  // Forced: it goes on to connect (and the fake says the host is down).
  older.force = true;
  auto f = deployer.deploy(job, older, obs);
  CHECK(f.result == HostResult::Unreachable);
  CHECK(f.failedStep == Step::Connect);
  REQUIRE(ssh.calls().size() == 1);
  CHECK(ssh.calls()[0].target.host == "web1.invalid");
  CHECK(ssh.calls()[0].knownHosts == tmp.path() / "known_hosts");

  // Locked by another deploy in this process.
  auto lease = guard.acquire("web1", "deploying cccc from infra (run 3)", 0ms);
  DeployRequest newer{"infra", "cccc000000000000000000000000000000000000"};
  auto l = deployer.deploy(job, newer, obs);
  CHECK(l.result == HostResult::Refused);
  CHECK(l.failedStep == Step::Lock);
  CHECK(l.reason.find("another deploy holds the lock of web1 (held by another deploy in this "
                      "process since ") == 0);
  CHECK(l.reason.find(": deploying cccc from infra (run 3))") != std::string::npos);
  CHECK(ssh.calls().size() == 1);
}

TEST_CASE("deploy policy: manual, never, Clan's requireExplicitUpdate and named hosts",
          "[unit][deploy][fleet]") {
  runner::RepoConfig repo;
  repo.hosts = {{"ws", std::nullopt, runner::DeployPolicy::Manual},
                {"off", std::nullopt, runner::DeployPolicy::Never},
                {"forced", std::nullopt, runner::DeployPolicy::Auto, runner::SwitchAction::Boot}};
  HostFacts explicitUpdate{{}, true};
  CHECK_FALSE(heldBackReason("web", repo, {}, false));
  CHECK(heldBackReason("ws", repo, {}, false)->find("deploy: manual in the config") !=
        std::string::npos);
  CHECK_FALSE(heldBackReason("ws", repo, {}, true));
  CHECK(heldBackReason("off", repo, {}, true) ==
        "not deployed: deploy: never in the config (built and checked only)");
  CHECK(heldBackReason("octavia", repo, explicitUpdate, false)
            ->find("clan.core.deployment.requireExplicitUpdate") != std::string::npos);
  CHECK_FALSE(heldBackReason("octavia", repo, explicitUpdate, true));
  CHECK_FALSE(heldBackReason("forced", repo, explicitUpdate, false));  // the config wins
  CHECK(actionFor("forced", repo) == runner::SwitchAction::Boot);
  CHECK(actionFor("web", repo) == runner::SwitchAction::Switch);
}

TEST_CASE("tags select hosts in their order, a name stands for itself", "[unit][deploy][fleet]") {
  std::map<std::string, HostFacts> facts{
      {"a", {{"web"}, false}}, {"b", {{"db", "web"}, false}}, {"c", {}}};
  CHECK(selectHosts("@web", {"c", "b", "a"}, facts) == std::vector<std::string>{"b", "a"});
  CHECK(selectHosts("@none", {"a", "b"}, facts).empty());
  CHECK(selectHosts("c", {"a"}, facts) == std::vector<std::string>{"c"});
  runner::nix::HostValue v;
  v.value = nlohmann::json{{"tags", {"x", 3, "y"}}, {"explicitUpdate", true}};
  auto f = hostFactsFrom(&v);
  CHECK(f.tags == std::vector<std::string>{"x", "y"});
  CHECK(f.requireExplicitUpdate);
  CHECK(hostFactsFrom(nullptr).tags.empty());
}

TEST_CASE("key declarations: Colmena's defaults, and precise errors for bad ones",
          "[unit][deploy][fleet]") {
  auto k = parseKeySpec("db", nlohmann::json{{"text", "s3cret"}});
  CHECK(k.name == "db");
  CHECK(k.destination() == "/run/keys/db");
  CHECK(k.describe() == "db -> /run/keys/db (root:root 0600, pre-activation)");
  CHECK(k.text == "s3cret");
  k = parseKeySpec("x", nlohmann::json{{"name", "tls.pem"},
                                       {"keyCommand", {"pass", "show", "tls"}},
                                       {"destDir", "/var/keys/"},
                                       {"user", "nginx"},
                                       {"group", "nginx"},
                                       {"permissions", "640"},
                                       {"uploadAt", "post-activation"}});
  CHECK(k.source == KeySpec::Source::Command);
  CHECK(k.describe() == "tls.pem -> /var/keys/tls.pem (nginx:nginx 640, post-activation)");
  auto err = [](const nlohmann::json& j) {
    try {
      parseKeySpec("k", j);
    } catch (const runner::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  CHECK(err({{"text", "a"}, {"keyFile", "/b"}}) ==
        "deployment.keys.k needs exactly one of text, keyFile and keyCommand (it has 2)");
  CHECK(err(nlohmann::json::object()) ==
        "deployment.keys.k needs exactly one of text, keyFile and keyCommand (it has 0)");
  CHECK(err({{"text", "a"}, {"name", "../etc/shadow"}}) ==
        "deployment.keys.k.name '../etc/shadow' is not a file name");
  CHECK(err({{"keyFile", "relative/path"}}) ==
        "deployment.keys.k.keyFile 'relative/path' is not an absolute path");
  CHECK(err({{"text", "a"}, {"destDir", "/run/keys/../../etc"}}) ==
        "deployment.keys.k.destDir '/run/keys/../../etc' is not an absolute directory");
  CHECK(err({{"text", "a"}, {"permissions", "rw-r--r--"}}) ==
        "deployment.keys.k.permissions 'rw-r--r--' is not an octal mode like 0600");
  CHECK(err({{"text", "a"}, {"user", "root; rm -rf /"}}) ==
        "deployment.keys.k.user 'root; rm -rf /' is not a user name");
  CHECK(err({{"text", "a"}, {"uploadAt", "later"}}) ==
        "deployment.keys.k.uploadAt must be pre-activation or post-activation, not 'later'");
  CHECK(err({{"keyCommand", nlohmann::json::array()}}) ==
        "deployment.keys.k.keyCommand is not a non-empty list of strings");
}

TEST_CASE("the key upload command sets owner and mode before the content, then renames",
          "[unit][deploy][fleet]") {
  KeySpec k = parseKeySpec("db", nlohmann::json{{"text", "x"}, {"user", "postgres"}});
  std::string c = keyUploadCommand(k);
  auto at = [&](const std::string& s) { return c.find(s); };
  REQUIRE(at("chown 'postgres:root'") != std::string::npos);
  CHECK(at("chown") < at("chmod '0600'"));
  CHECK(at("chmod '0600'") < at("cat >"));
  CHECK(at("cat >") < at("mv -f"));
  CHECK(keyUploadCommand(parseKeySpec("db", nlohmann::json{{"text", "TOPSECRET"}}))
            .find("TOPSECRET") == std::string::npos);
}

TEST_CASE(
    "rollout: a stop request (the run was cancelled) lets the host under way finish and "
    "skips the rest",
    "[unit][deploy]") {
  FakeDeployer d;
  RecordingObserver obs;
  runner::RolloutConfig cfg;
  cfg.maxParallel = 1;
  DeployRequest request;
  // cancelled while the first host deploys: asked before each host starts
  request.stopRequested = [&d]() -> std::optional<std::string> {
    if (d.started.empty()) return std::nullopt;
    return std::string("cancelled by web login from 127.0.0.1");
  };
  auto out = runRollout(jobs({"a", "b", "c"}), request, cfg, d, obs);
  CHECK(d.started == std::vector<std::string>{"a"});
  CHECK(names(out) == std::vector<std::string>{"a:succeeded", "b:skipped", "c:skipped"});
  CHECK(out[1].reason == "not started: the run was cancelled by web login from 127.0.0.1");
  CHECK(obs.finished.size() == 3);
}
