#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/database.h"
#include "runner/store/deployments.h"
#include "runner/store/drv_cache.h"
#include "runner/store/host_locks.h"
#include "runner/store/schema.h"

using namespace runner;
using namespace runner::store;

namespace {
class FixedClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(1'700'000'000'000));
  }
  std::chrono::steady_clock::time_point steadyNow() const override { return {}; }
};
}  // namespace

TEST_CASE("a new database is migrated to the latest schema, in WAL mode", "[unit][store]") {
  os::TempDir d;
  auto db = Database::open(d.path() / "state" / "switchyard.db");
  CHECK(db->schemaVersion() == static_cast<int>(migrations().size()));
  CHECK(db->query("PRAGMA journal_mode").at(0).text(0) == "wal");
  // reopening does not migrate twice
  db.reset();
  auto again = Database::open(d.path() / "state" / "switchyard.db");
  CHECK(again->schemaVersion() == static_cast<int>(migrations().size()));
}

TEST_CASE("a database from a newer switchyard is refused", "[unit][store]") {
  os::TempDir d;
  {
    auto db = Database::open(d.path() / "s.db");
    db->exec("PRAGMA user_version=999");
  }
  CHECK_THROWS_WITH(Database::open(d.path() / "s.db"),
                    Catch::Contains("newer than this switchyard"));
}

TEST_CASE("a file that is not a database is a clear error", "[unit][store]") {
  os::TempDir d;
  os::writeFileAtomic(d.path() / "junk.db", std::string(4096, 'x'));
  CHECK_THROWS_AS(Database::open(d.path() / "junk.db"), StoreError);
}

TEST_CASE("a transaction rolls back when its body throws", "[unit][store]") {
  os::TempDir d;
  auto db = Database::open(d.path() / "s.db");
  CHECK_THROWS_AS(db->transaction([&] {
    db->exec("INSERT INTO drv_cache VALUES ('t', 'h', '/nix/store/x.drv')");
    throw StoreError("boom");
  }),
                  StoreError);
  CHECK(db->query("SELECT count(*) FROM drv_cache").at(0).integer(0) == 0);
  db->transaction(
      [&] { db->transaction([&] { db->exec("INSERT INTO drv_cache VALUES ('t', 'h', 'x')"); }); });
  CHECK(db->query("SELECT count(*) FROM drv_cache").at(0).integer(0) == 1);
}

TEST_CASE("the drvPath cache answers by tree hash and host", "[unit][store]") {
  os::TempDir d;
  auto db = Database::open(d.path() / "s.db");
  SqliteDrvCache cache(*db);
  CHECK_FALSE(cache.get("tree1", "web1"));
  cache.put("tree1", "web1", "/nix/store/aaa-web1.drv");
  cache.put("tree1", "web1", "/nix/store/bbb-web1.drv");
  CHECK(cache.get("tree1", "web1") == "/nix/store/bbb-web1.drv");
  CHECK_FALSE(cache.get("tree2", "web1"));
}

TEST_CASE("a host lock is held by one owner across connections", "[unit][store]") {
  os::TempDir d;
  FixedClock clock;
  auto dbA = Database::open(d.path() / "s.db");
  auto dbB = Database::open(d.path() / "s.db");  // another process, in effect
  HostLocks a(*dbA, clock, HostLocks::thisProcess());
  HostLocks b(*dbB, clock, "other-machine:42:1");
  CHECK_FALSE(a.tryAcquire("web1", "run 1 deploy abc"));
  CHECK_FALSE(a.tryAcquire("web1", "run 1 deploy abc"));  // re-entrant for the same owner
  auto blocker = b.tryAcquire("web1", "run 2 deploy def");
  REQUIRE(blocker);
  CHECK(blocker->purpose == "run 1 deploy abc");
  CHECK(blocker->acquiredAt == 1'700'000'000'000);
  CHECK_FALSE(b.tryAcquire("web2", "run 2 deploy def"));
  b.release("web1");  // not the holder: no effect
  CHECK(a.holder("web1")->owner == HostLocks::thisProcess());
  a.release("web1");
  CHECK_FALSE(b.tryAcquire("web1", "run 2 deploy def"));
  {
    HostLease lease(b, "web3");
    CHECK_FALSE(b.tryAcquire("web3", "x"));
    CHECK(a.tryAcquire("web3", "y"));
  }
  CHECK_FALSE(a.tryAcquire("web3", "y"));
}

TEST_CASE("a lock held by a process that died is taken over", "[unit][store]") {
  os::TempDir d;
  FixedClock clock;
  auto db = Database::open(d.path() / "s.db");
  // a pid that existed and is gone now
  int deadPid = 0;
  os::PosixProcessRunner procs;
  RunOptions o{.program = "true"};
  o.onStarted = [&](int pid) { deadPid = pid; };
  procs.run(o);
  std::string self = HostLocks::thisProcess();
  std::string machine = self.substr(0, self.find(':'));
  HostLocks dead(*db, clock, machine + ":" + std::to_string(deadPid) + ":123");
  CHECK_FALSE(dead.tryAcquire("web1", "run 1"));
  CHECK(HostLocks::isDeadLocalOwner(machine + ":" + std::to_string(deadPid) + ":123"));
  CHECK_FALSE(HostLocks::isDeadLocalOwner(self));
  CHECK_FALSE(HostLocks::isDeadLocalOwner("elsewhere:1:1"));
  HostLocks alive(*db, clock);
  CHECK_FALSE(alive.tryAcquire("web1", "run 2"));
  CHECK(alive.holder("web1")->purpose == "run 2");
}

TEST_CASE("deployments remember the last successful commit per host", "[unit][store]") {
  os::TempDir d;
  auto db = Database::open(d.path() / "s.db");
  Deployments deps(*db);
  CHECK_FALSE(deps.lastSucceeded("web1"));
  DeploymentRecord r;
  r.host = "web1";
  r.repo = "alice/infra";
  r.sha = "aaa";
  r.storePath = "/nix/store/a";
  r.generation = 3;
  r.result = "succeeded";
  r.startedAt = 1;
  r.finishedAt = 2;
  deps.record(r);
  r.sha = "bbb";
  r.result = "rolled-back";
  r.previousGeneration = 3;
  deps.record(r);
  auto last = deps.lastSucceeded("web1", "alice/infra");
  REQUIRE(last);
  CHECK(last->sha == "aaa");
  CHECK(last->generation == 3);
  CHECK_FALSE(deps.lastSucceeded("web1", "bob/other"));
  auto h = deps.history("web1");
  REQUIRE(h.size() == 2);
  CHECK(h[0].result == "rolled-back");
  CHECK(h[0].previousGeneration == 3);
}
