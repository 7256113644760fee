// Several runners sharing one database (issue 16): two schedulers, each on its own
// connection with its own mirrors, as two `serve` processes would be, take deliveries from
// one queue. Every delivery becomes its run exactly once, and every run is executed once:
// deliveries are claimed in the dispatching transaction (PostgreSQL: FOR UPDATE SKIP LOCKED)
// and the next run is chosen under a lock every runner takes. Runs on SQLite (two
// connections to one file) and on a real PostgreSQL server.
//
// And a runner that dies mid-deploy: its heartbeat stops (in this process: the scheduler's
// heartbeat thread is stopped abruptly, its lease left to expire, as a kill -9 would leave
// it), and the other runner takes the run and the host's lock over once the lease expired.
#include <condition_variable>
#include <map>
#include <mutex>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/deploy/host_lock.h"
#include "runner/scheduler/scheduler.h"
#include "runner/store/database.h"
#include "runner/store/deliveries.h"
#include "runner/store/host_locks.h"
#include "runner/store/runners.h"
#include "runner/store/runs.h"
#include "tests/support/fake_stages.h"
#include "tests/support/store_backends.h"
#include "tests/support/temp_git_repo.h"
#include "tests/support/wait.h"

using namespace runner;
using namespace std::chrono_literals;

namespace {

// What both runners told the forge, per run id.
class CountingReporter final : public RunReporter {
 public:
  void runQueued(const RunView& r) override { add(queued_, r.id); }
  void planned(const RunView& r, const Plan&) override { add(planned_, r.id); }
  void hostChanged(const RunView&, const RunHostView&) override {}
  void runFinished(const RunView& r, const std::vector<RunHostView>&) override {
    add(finished_, r.id);
  }
  std::map<int64_t, int> queued() {
    std::scoped_lock lk(mu_);
    return queued_;
  }
  std::map<int64_t, int> finished() {
    std::scoped_lock lk(mu_);
    return finished_;
  }
  std::map<int64_t, int> planned() {
    std::scoped_lock lk(mu_);
    return planned_;
  }

 private:
  void add(std::map<int64_t, int>& m, int64_t id) {
    std::scoped_lock lk(mu_);
    ++m[id];
  }
  std::mutex mu_;
  std::map<int64_t, int> queued_, finished_, planned_;
};

// Counts the builds of each run's commit per runner (each pull request has its own head).
class CountingBuild final : public BuildStage {
 public:
  std::vector<BuildHostOutcome> build(const BuildInput& in, StageListener& l) override {
    {
      std::scoped_lock lk(mu_);
      ++builds_[in.sha];
    }
    return inner_.build(in, l);
  }
  std::map<std::string, int> builds() {
    std::scoped_lock lk(mu_);
    return builds_;
  }

 private:
  tests::FakeBuildStage inner_;
  std::mutex mu_;
  std::map<std::string, int> builds_;
};

struct Runner {
  Runner(const Config& config, std::unique_ptr<store::Database> database,
         const std::filesystem::path& stateDir, CountingReporter& reporter, CountingBuild& build)
      : db(std::move(database)), mirrors(stateDir, log) {
    scheduler::SchedulerOptions o;
    o.stateDir = stateDir;
    o.runWorkers = 3;
    sched = std::make_unique<scheduler::Scheduler>(
        scheduler::SchedulerPorts{config, *db, clock, log, reporter, mirrors, plan, build, deploy},
        o);
  }
  SystemClock clock;
  NullLogger log;
  std::unique_ptr<store::Database> db;
  scheduler::Mirrors mirrors;
  tests::FixedPlanStage plan{{"web1"}, {"web1"}};
  tests::OkDeployStage deploy;
  std::unique_ptr<scheduler::Scheduler> sched;
};

}  // namespace

TEMPLATE_TEST_CASE("several runners: 200 deliveries on one database, each run exactly once",
                   "[integration][scheduler][store]", tests::SqliteBackend,
                   tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  constexpr int kDeliveries = 200;
  tests::TempGitRepo upstream;
  const std::string base = upstream.commit({{"flake.nix", "{ }"}}, "base");
  std::vector<std::string> heads;
  for (int i = 0; i < kDeliveries; ++i)
    heads.push_back(upstream.commit({{"hosts/web1.nix", "{ x = " + std::to_string(i) + "; }"}},
                                    "pr " + std::to_string(i)));
  runner::os::TempDir tmp{"sy-runners"};
  Config config;
  RepoConfig r;
  r.forge = "home";
  r.name = "alice/infra";
  r.url = upstream.path().string();
  r.deployBranches = {"main"};
  config.repos = {r};
  config.publicUrl = "https://ci.example.org";

  CountingReporter reporter;
  CountingBuild buildA, buildB;
  Runner a(config, backend.open(), tmp.path() / "a", reporter, buildA);
  Runner b(config, backend.open(), tmp.path() / "b", reporter, buildB);
  a.sched->start();
  b.sched->start();

  // the deliveries arrive through a third connection (either runner's intake, in effect)
  auto intake = backend.open();
  SystemClock clock;
  store::Deliveries deliveries(*intake, clock);
  for (int i = 0; i < kDeliveries; ++i) {
    Event e;
    e.kind = EventKind::PullRequest;
    e.forge = "home";
    e.forgeType = "gitea";
    e.repo = "alice/infra";
    e.prAction = PrAction::Opened;
    e.prNumber = i + 1;
    e.headSha = heads[static_cast<size_t>(i)];
    e.baseSha = base;
    e.deliveryId = "pr-" + std::to_string(i + 1);
    nlohmann::json j = e;
    deliveries.insert({"home", e.deliveryId, "pull_request", j.dump(), false, ""});
    if (i % 20 == 19) {
      a.sched->wake();
      b.sched->wake();
    }
  }
  a.sched->wake();
  b.sched->wake();

  auto finalRuns = [&] {
    return intake
        ->query(
            "SELECT COUNT(*) FROM runs WHERE state IN ('succeeded', 'failed', 'superseded', "
            "'interrupted')")
        .at(0)
        .integer(0);
  };
  // (>=: a runner running a delivery twice fails below at once instead of after the wait)
  CHECK(tests::waitUntil([&] { return finalRuns() >= kDeliveries; }, std::chrono::minutes(3),
                         std::chrono::milliseconds(50)));
  a.sched->stop();
  b.sched->stop();

  // one run per delivery, every delivery processed once
  CHECK(intake->query("SELECT COUNT(*) FROM runs").at(0).integer(0) == kDeliveries);
  CHECK(intake->query("SELECT COUNT(DISTINCT delivery) FROM runs").at(0).integer(0) == kDeliveries);
  CHECK(
      intake->query("SELECT COUNT(*) FROM deliveries WHERE state = 'processed'").at(0).integer(0) ==
      kDeliveries);
  CHECK(intake->query("SELECT COUNT(*) FROM runs WHERE state = 'succeeded' AND attempts = 1")
            .at(0)
            .integer(0) == kDeliveries);
  // announced at most once and finished once, by one runner or the other. A run the other
  // runner starts before its creator announces it is not announced as queued (that would
  // send "pending" after the run's own statuses); its plan tells the forge instead.
  auto queued = reporter.queued();
  auto finished = reporter.finished();
  auto planned = reporter.planned();
  CHECK(finished.size() == static_cast<size_t>(kDeliveries));
  size_t told = 0;
  for (auto [id, n] : finished) told += queued.count(id) || planned.count(id);
  CHECK(told == static_cast<size_t>(kDeliveries));
  INFO(kDeliveries - static_cast<int>(queued.size()) << " runs were started before announced");
  int twiceQueued = 0, twiceFinished = 0;
  for (auto [id, n] : queued) twiceQueued += n != 1;
  for (auto [id, n] : finished) twiceFinished += n != 1;
  CHECK(twiceQueued == 0);
  CHECK(twiceFinished == 0);
  // each pull request's head was built once, across both runners
  auto ba = buildA.builds(), bb = buildB.builds();
  int builtTwice = 0;
  size_t built = 0;
  for (const auto& h : heads) {
    int n = (ba.count(h) ? ba[h] : 0) + (bb.count(h) ? bb[h] : 0);
    builtTwice += n > 1;
    built += n == 1;
  }
  CHECK(builtTwice == 0);
  CHECK(built == heads.size());
  INFO("runner a built " << ba.size() << ", runner b built " << bb.size());
  CHECK(ba.size() + bb.size() == heads.size());
}

namespace {

// What the test hosts were switched to, by whom (the activation records of the hosts).
struct Activation {
  std::string host, runner, sha;
  int64_t atMs = 0;
};
struct Activations {
  std::mutex mu;
  std::vector<Activation> all;
};

// A deploy that holds each host's lock as the real one does (HostLockGuard over HostLocks in
// the runner's name), asks whether it still holds it right before activating, and records the
// activation. With `hang`, its first deploy stops before activating until release(): the
// runner dies there.
class LeasedDeploy final : public DeployStage {
 public:
  LeasedDeploy(store::Database& db, const Clock& clock, std::string runner, Activations& acts,
               bool hang)
      : locks_(db, clock, runner),
        guard_(locks_, clock),
        clock_(clock),
        runner_(std::move(runner)),
        acts_(acts),
        hang_(hang) {}

  std::vector<DeployHostOutcome> deploy(const DeployInput& in, StageListener&) override {
    std::vector<DeployHostOutcome> out;
    for (const auto& h : in.hosts) {
      auto lease = guard_.acquire(h.host, "run " + std::to_string(in.runId), 60s);
      if (auto* busy = std::get_if<deploy::HostLockGuard::Busy>(&lease)) {
        out.push_back({h.host, HostState::Refused, deploy::describeHolder(*busy)});
        continue;
      }
      {
        std::unique_lock lk(mu_);
        entered_ = true;
        cv_.notify_all();
        cv_.wait(lk, [&] { return !hang_ || released_; });
      }
      if (auto lost = guard_.lost(h.host)) {
        std::scoped_lock lk(mu_);
        lost_ = *lost;
        out.push_back({h.host, HostState::Failed, *lost});
        continue;
      }
      {
        std::scoped_lock lk(acts_.mu);
        acts_.all.push_back({h.host, runner_, in.sha, clock_.nowMillis()});
      }
      out.push_back({h.host, HostState::Succeeded, "deployed"});
    }
    std::scoped_lock lk(mu_);
    done_ = true;
    return out;
  }
  bool entered() {
    std::scoped_lock lk(mu_);
    return entered_;
  }
  bool done() {
    std::scoped_lock lk(mu_);
    return done_;
  }
  std::string lost() {
    std::scoped_lock lk(mu_);
    return lost_;
  }
  void release() {
    std::scoped_lock lk(mu_);
    released_ = true;
    cv_.notify_all();
  }

 private:
  store::HostLocks locks_;
  deploy::HostLockGuard guard_;
  const Clock& clock_;
  std::string runner_;
  Activations& acts_;
  const bool hang_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, released_ = false, done_ = false;
  std::string lost_;
};

struct LeasedRunner {
  LeasedRunner(const Config& config, std::unique_ptr<store::Database> database,
               const std::filesystem::path& stateDir, CountingReporter& reporter, Activations& acts,
               bool hang, std::chrono::milliseconds lease)
      : db(std::move(database)),
        id(store::Runners::newId()),
        mirrors(stateDir, log),
        deploy(*db, clock, id, acts, hang) {
    scheduler::SchedulerOptions o;
    o.stateDir = stateDir;
    o.runWorkers = 1;
    o.runnerId = id;
    o.runnerLease = lease;
    sched = std::make_unique<scheduler::Scheduler>(
        scheduler::SchedulerPorts{config, *db, clock, log, reporter, mirrors, plan, build, deploy},
        o);
  }
  SystemClock clock;
  NullLogger log;
  std::unique_ptr<store::Database> db;
  std::string id;
  scheduler::Mirrors mirrors;
  tests::FixedPlanStage plan{{"web1"}, {"web1"}};
  tests::FakeBuildStage build;
  LeasedDeploy deploy;
  std::unique_ptr<scheduler::Scheduler> sched;
};

}  // namespace

TEMPLATE_TEST_CASE("several runners: one dies mid-deploy, the other takes over after its lease",
                   "[integration][scheduler][store]", tests::SqliteBackend,
                   tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  // long enough that a loaded machine's heartbeat (every third of it) is never late
  constexpr auto kLease = 3s;
  tests::TempGitRepo upstream;
  const std::string base = upstream.commit({{"flake.nix", "{ }"}}, "base");
  const std::string head = upstream.commit({{"hosts/web1.nix", "{ x = 1; }"}}, "web1");
  runner::os::TempDir tmp{"sy-takeover"};
  Config config;
  RepoConfig r;
  r.forge = "home";
  r.name = "alice/infra";
  r.url = upstream.path().string();
  r.deployBranches = {"main"};
  config.repos = {r};
  config.publicUrl = "https://ci.example.org";

  CountingReporter reporter;
  Activations acts;
  LeasedRunner a(config, backend.open(), tmp.path() / "a", reporter, acts, true, kLease);
  LeasedRunner b(config, backend.open(), tmp.path() / "b", reporter, acts, false, kLease);
  auto db = backend.open();
  SystemClock clock;
  store::Runs runs(*db, clock);
  store::HostLocks view(*db, clock, "test:0:0");

  // runner a alone takes the push and starts deploying web1
  a.sched->start();
  Event e;
  e.kind = EventKind::Push;
  e.forge = "home";
  e.forgeType = "gitea";
  e.repo = "alice/infra";
  e.ref = "refs/heads/main";
  e.before = base;
  e.after = head;
  e.deliveryId = "push-1";
  nlohmann::json j = e;
  store::Deliveries(*db, clock).insert({"home", e.deliveryId, "push", j.dump(), false, ""});
  a.sched->wake();
  REQUIRE(tests::waitUntil([&] { return a.deploy.entered(); }, 60s));
  auto run = runs.list(1).at(0);
  CHECK(run.runner == a.id);
  CHECK(view.holder("web1")->owner == a.id);

  // runner b starts: a is alive, so b's restart recovery leaves a's run and lock alone
  b.sched->start();
  CHECK(b.sched->recover() == 0);
  CHECK(runs.get(run.view.id)->runner == a.id);
  CHECK(runs.get(run.view.id)->view.state == RunState::Running);

  // runner a dies mid-deploy: its heartbeat stops, its lease runs out, b takes over
  a.sched->stopHeartbeatForTest();
  CHECK(tests::waitUntil([&] { return runs.get(run.view.id)->view.state == RunState::Succeeded; },
                         90s, 20ms));
  const auto aExpired = store::Runners(*db, clock).expiresAt(a.id);
  // a's deploy wakes up (a process that only stood still would): it finds the lock taken
  // over and activates nothing; its run's end is not recorded
  a.deploy.release();
  CHECK(tests::waitUntil([&] { return a.deploy.done(); }, 30s));
  a.sched->stop();
  b.sched->stop();

  auto after = runs.get(run.view.id);
  REQUIRE(after);
  CHECK(after->view.state == RunState::Succeeded);
  CHECK(after->runner == b.id);
  CHECK(after->attempts == 2);
  CHECK(runs.host(run.view.id, "web1")->state == HostState::Succeeded);
  CHECK_THAT(a.deploy.lost(), Catch::Contains("was taken over"));
  // the host was switched once, by b, to the one commit, after a's lease had ended
  {
    std::scoped_lock lk(acts.mu);
    REQUIRE(acts.all.size() == 1);
    CHECK(acts.all[0].runner == b.id);
    CHECK(acts.all[0].sha == head);
    REQUIRE(aExpired);
    CHECK(acts.all[0].atMs > *aExpired);
  }
  CHECK_FALSE(view.holder("web1"));              // released by b
  CHECK(reporter.finished()[run.view.id] == 1);  // reported once, by b
}
