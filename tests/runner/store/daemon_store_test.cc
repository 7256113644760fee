// The daemon's tables: the delivery queue (dedupe by source and id, batches, ignored rows,
// paging), group commit across threads, and runs with their hosts (round trips, supersede,
// per-ref claiming, the last deployed commit of a branch).
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "runner/os/files.h"
#include "runner/store/database.h"
#include "runner/store/deliveries.h"
#include "runner/store/runs.h"
#include "tests/support/store_backends.h"

using namespace runner;
using namespace runner::store;

namespace {

// One database of the test's engine (tests/support/store_backends.h).
template <class Backend>
struct Db {
  Backend backend;
  SystemClock clock;
  std::unique_ptr<Database> db = backend.available() ? backend.open() : nullptr;
};

NewDelivery delivery(std::string source, std::string id, bool ignored = false) {
  return {std::move(source), std::move(id), "push", "{}", ignored, ignored ? "tag push" : ""};
}

}  // namespace

TEMPLATE_TEST_CASE("deliveries: one row per source and delivery id", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  Db<TestType> d;
  SKIP_IF_UNAVAILABLE(d.backend);
  Deliveries q(*d.db, d.clock);
  auto a = q.insert(delivery("home", "x"));
  auto again = q.insert(delivery("home", "x"));
  auto other = q.insert(delivery("hub", "x"));
  CHECK_FALSE(a.duplicate);
  CHECK(a.state == "queued");
  CHECK(again.duplicate);
  CHECK(again.id == a.id);
  CHECK(other.id != a.id);
  auto batch = q.insertBatch({delivery("home", "y"), delivery("home", "y"),
                              delivery("home", "t", true), delivery("home", "x")});
  REQUIRE(batch.size() == 4);
  CHECK_FALSE(batch[0].duplicate);
  CHECK(batch[1].duplicate);
  CHECK(batch[1].id == batch[0].id);
  CHECK(batch[2].state == "ignored");
  CHECK(batch[2].detail == "tag push");
  CHECK(batch[3].duplicate);
  CHECK(batch[3].id == a.id);
  CHECK(q.countByState() == std::map<std::string, int64_t>{{"ignored", 1}, {"queued", 3}});
  auto queued = q.queued(10);
  REQUIRE(queued.size() == 3);
  CHECK(queued[0].id < queued[1].id);
  CHECK(q.queued(10, queued[0].id).size() == 2);
  q.finish(queued[0].id, "processed", "run 1");
  CHECK(q.get(queued[0].id)->state == "processed");
  CHECK(q.get(queued[0].id)->processedAt);
  CHECK(q.queued(10).size() == 2);
}

TEMPLATE_TEST_CASE("deliveries: ignored rows are pruned after their time, others kept",
                   "[unit][store]", tests::SqliteBackend, tests::PostgresBackend) {
  Db<TestType> d;
  SKIP_IF_UNAVAILABLE(d.backend);
  Deliveries q(*d.db, d.clock);
  auto ping = q.insert(delivery("hub", "ping", true));
  auto echo = q.insert(delivery("hub", "check-run-echo"));
  auto push = q.insert(delivery("hub", "push"));
  auto waiting = q.insert(delivery("hub", "waiting"));
  q.finish(echo.id, "ignored", "check run completed");
  q.finish(push.id, "processed", "run 1");
  CHECK(q.pruneIgnored(0) == 0);  // nothing is that old
  CHECK(q.pruneIgnored(d.clock.nowMillis() + 1) == 2);
  CHECK_FALSE(q.get(ping.id));
  CHECK_FALSE(q.get(echo.id));
  CHECK(q.get(push.id)->state == "processed");
  CHECK(q.get(waiting.id)->state == "queued");
  // The dedupe key of a pruned delivery is free again; a redelivery is a new row.
  CHECK_FALSE(q.insert(delivery("hub", "ping", true)).duplicate);
}

TEMPLATE_TEST_CASE("deliveries: the writer commits concurrent submissions in groups",
                   "[unit][store]", tests::SqliteBackend, tests::PostgresBackend) {
  Db<TestType> d;
  SKIP_IF_UNAVAILABLE(d.backend);
  std::atomic<int> wakes{0};
  std::set<int64_t> ids;
  std::mutex mu;
  {
    DeliveryWriter w(*d.db, d.clock, [&] { ++wakes; });
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < 50; ++i) {
          auto s = w.submit(delivery("hook", std::to_string(t) + "-" + std::to_string(i)));
          std::scoped_lock lk(mu);
          ids.insert(s.id);
        }
      });
    for (auto& t : threads) t.join();
    CHECK(w.stored() == 400);
    CHECK(w.batches() >= 1);
    CHECK(w.batches() <= 400);
    CHECK(w.submit(delivery("hook", "0-0")).duplicate);
  }
  CHECK(ids.size() == 400);
  CHECK(wakes >= 1);
  CHECK(d.db->query("SELECT COUNT(*) FROM deliveries").at(0).integer(0) == 400);
}

TEMPLATE_TEST_CASE("runs: round trip, supersede, claiming per ref, last deployed commit",
                   "[unit][store]", tests::SqliteBackend, tests::PostgresBackend) {
  Db<TestType> d;
  SKIP_IF_UNAVAILABLE(d.backend);
  Runs runs(*d.db, d.clock, "https://ci.example.org");
  NewRun n;
  n.repo = "alice/infra";
  n.forge = "home";
  n.kind = RunKind::Rerun;
  n.trigger = RunTrigger::Comment;
  n.sha = std::string(40, 'a');
  n.ref = "refs/pull/7/head";
  n.prNumber = 7;
  n.fromFork = true;
  n.hostsFilter = {"web1", "db1"};
  n.stageFilter = Stage::Build;
  int64_t id = runs.create(n);
  auto r = runs.get(id);
  REQUIRE(r);
  CHECK(r->view.url == "https://ci.example.org/runs/" + std::to_string(id));
  CHECK(r->view.kind == RunKind::Rerun);
  CHECK(r->view.trigger == RunTrigger::Comment);
  CHECK(r->view.hostsFilter == std::vector<std::string>{"web1", "db1"});
  CHECK(r->view.stageFilter == Stage::Build);
  CHECK(r->view.fromFork);
  CHECK(r->view.state == RunState::Queued);

  RunHostView h;
  h.host = "web1";
  h.stage = Stage::Build;
  h.state = HostState::Failed;
  h.summary = "failed: builder exited with 1";
  h.logTail = "error: boom";
  h.outPath = "/nix/store/x";
  runs.putHost(id, h);
  h.summary = "failed again";
  runs.putHost(id, h);
  auto hs = runs.hosts(id);
  REQUIRE(hs.size() == 1);
  CHECK(hs[0].summary == "failed again");
  CHECK(hs[0].logTail == "error: boom");
  CHECK(hs[0].outPath == "/nix/store/x");

  // Deploy runs of main: claim one at a time; supersede only queued ones.
  NewRun m;
  m.repo = "alice/infra";
  m.kind = RunKind::Deploy;
  m.ref = "refs/heads/main";
  m.sha = std::string(40, '1');
  int64_t a = runs.create(m);
  m.sha = std::string(40, '2');
  int64_t b = runs.create(m);
  CHECK(runs.claimNext()->view.id == a);   // runs that deploy first
  CHECK(runs.claimNext()->view.id == id);  // then the pull request's
  CHECK_FALSE(runs.claimNext());           // b waits for a (same ref)
  m.sha = std::string(40, '3');
  int64_t c = runs.create(m);
  CHECK(runs.supersedeQueued("", "alice/infra", "refs/heads/main", c, c, "newer") ==
        std::vector<int64_t>{b});
  CHECK(runs.get(a)->view.state == RunState::Running);
  CHECK(runs.get(b)->view.supersededBy == c);
  CHECK_FALSE(runs.lastDeployedSha("", "alice/infra", "refs/heads/main"));
  runs.setState(a, RunState::Succeeded);
  CHECK(runs.lastDeployedSha("", "alice/infra", "refs/heads/main") == std::string(40, '1'));
  CHECK(runs.get(a)->view.finishedAt);
  // Re-queued after a restart: attempts are kept, the note is the error.
  auto claimed = runs.claimNext();
  REQUIRE(claimed);
  CHECK(claimed->view.id == c);
  CHECK(claimed->attempts == 1);
  runs.requeue(c, "resumed after a runner restart");
  CHECK(runs.claimNext()->attempts == 2);
  CHECK(runs.countByState() ==
        std::map<std::string, int64_t>{{"running", 2}, {"succeeded", 1}, {"superseded", 1}});
}

TEST_CASE("the WAL checkpointer takes checkpoints off the writer's connection", "[unit][store]") {
  os::TempDir tmp{"sy-store"};
  Db<tests::SqliteBackend> d;
  d.db = Database::open(tmp.path() / "s.db");
  {
    WalCheckpointer cp(*d.db, tmp.path() / "s.db", std::chrono::milliseconds(20));
    CHECK(d.db->query("PRAGMA wal_autocheckpoint").at(0).integer(0) == 0);
    Deliveries q(*d.db, d.clock);
    for (int i = 0; i < 50; ++i) q.insert(delivery("hook", std::to_string(i)));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  CHECK(d.db->query("SELECT COUNT(*) FROM deliveries").at(0).integer(0) == 50);
}
