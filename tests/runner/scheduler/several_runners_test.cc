// Several runners sharing one database (issue 16): two schedulers, each on its own
// connection with its own mirrors, as two `serve` processes would be, take deliveries from
// one queue. Every delivery becomes its run exactly once, and every run is executed once:
// deliveries are claimed in the dispatching transaction (PostgreSQL: FOR UPDATE SKIP LOCKED)
// and the next run is chosen under a lock every runner takes. Runs on SQLite (two
// connections to one file) and on a real PostgreSQL server.
#include <map>
#include <mutex>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/scheduler/scheduler.h"
#include "runner/store/database.h"
#include "runner/store/deliveries.h"
#include "runner/store/runs.h"
#include "tests/support/fake_stages.h"
#include "tests/support/store_backends.h"
#include "tests/support/temp_git_repo.h"
#include "tests/support/wait.h"

using namespace runner;

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
