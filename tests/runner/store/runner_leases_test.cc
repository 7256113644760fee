// Several runners on one database (issue 16), at the store: runner leases that expire unless
// a heartbeat renews them, and what a runner holds — running runs, host locks, outbox rows in
// flight — taken over only once its lease expired. Time is moved by hand (ManualClock), so a
// lease of 30 s expires in no time; every case runs on SQLite and on a real PostgreSQL, each
// runner on a connection of its own.
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>

#include "runner/store/database.h"
#include "runner/store/host_locks.h"
#include "runner/store/outbox.h"
#include "runner/store/runners.h"
#include "runner/store/runs.h"
#include "tests/support/store_backends.h"

using namespace runner;
using namespace runner::store;
using namespace std::chrono_literals;

namespace {

class ManualClock final : public Clock {
 public:
  std::chrono::system_clock::time_point now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    return std::chrono::steady_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  void advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<int64_t> ms_{1'700'000'000'000};
};

// Runner ids on machines that are not this one (so no process check applies: only leases).
const std::string kA = "machine-a:100:1:aaaa";
const std::string kB = "machine-b:200:1:bbbb";

int64_t newRun(Runs& runs, const std::string& ref) {
  NewRun n;
  n.repo = "alice/infra";
  n.forge = "home";
  n.kind = RunKind::Deploy;
  n.sha = "1111111111111111111111111111111111111111";
  n.ref = ref;
  return runs.create(n);
}

std::set<int64_t> idsOf(const std::vector<RunRecord>& runs) {
  std::set<int64_t> out;
  for (const auto& r : runs) out.insert(r.view.id);
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("a runner's lease lasts while its heartbeat renews it", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  ManualClock clock;
  auto db = backend.open();
  Runners runners(*db, clock);
  CHECK_FALSE(runners.isLive(kA));  // never registered
  CHECK_FALSE(runners.isGone(kA));  // … and so not known dead either (trusted)
  runners.enter(kA, 30s);
  CHECK(runners.isLive(kA));
  for (int i = 0; i < 5; ++i) {  // renewed every 20 s: never expires
    clock.advance(20s);
    CHECK(runners.renew(kA, 30s));
    CHECK(runners.isLive(kA));
  }
  clock.advance(31s);  // the heartbeat stopped
  CHECK_FALSE(runners.isLive(kA));
  CHECK(runners.isGone(kA));
  CHECK_FALSE(runners.renew(kA, 30s));  // too late: what it held may be someone else's
  CHECK(runners.isGone(kA));
  runners.enter(kA, 30s);  // enters again
  CHECK(runners.isLive(kA));
  runners.leave(kA);  // a clean stop ends the lease at once
  CHECK(runners.isGone(kA));
  CHECK(runners.expiresAt(kA) == 0);

  // ids of this process: machine, pid, start time and a random part, different each time
  auto id = Runners::newId();
  CHECK(id.rfind(HostLocks::thisProcess() + ":", 0) == 0);
  CHECK(id != Runners::newId());
  CHECK_FALSE(HostLocks::isDeadLocalOwner(id));
}

TEMPLATE_TEST_CASE("a host lock is a lease: taken over once its runner's lease expired",
                   "[unit][store]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  ManualClock clock;
  auto dbA = backend.open();
  auto dbB = backend.open();
  Runners(*dbA, clock).enter(kA, 30s);
  Runners(*dbB, clock).enter(kB, 30s);
  HostLocks a(*dbA, clock, kA), b(*dbB, clock, kB);
  REQUIRE_FALSE(a.tryAcquire("web1", "run 1 deploy abc"));
  // a live runner keeps its lock, however long it holds it
  for (int i = 0; i < 4; ++i) {
    clock.advance(20s);
    REQUIRE(Runners(*dbA, clock).renew(kA, 30s));
    REQUIRE(Runners(*dbB, clock).renew(kB, 30s));
    auto blocker = b.tryAcquire("web1", "run 2 deploy def");
    REQUIRE(blocker);
    CHECK(blocker->owner == kA);
    CHECK(a.holds("web1"));
  }
  // runner a dies: its heartbeat stops; b's goes on
  clock.advance(20s);
  REQUIRE(Runners(*dbB, clock).renew(kB, 30s));
  CHECK(b.tryAcquire("web1", "run 2 deploy def"));  // a's lease has 10 s left
  clock.advance(11s);
  CHECK_FALSE(b.tryAcquire("web1", "run 2 deploy def"));
  CHECK(b.holds("web1"));
  CHECK_FALSE(a.holds("web1"));  // what a deploy of a's would find before activating
  CHECK(b.holder("web1")->purpose == "run 2 deploy def");
  a.release("web1");  // a late release of the old holder changes nothing
  CHECK(b.holds("web1"));
  auto blocker = a.tryAcquire("web1", "run 1 again");
  REQUIRE(blocker);
  CHECK(blocker->owner == kB);

  // a holder that is no runner on another machine (a CLI deploy there) is trusted
  HostLocks cli(*dbA, clock, "machine-c:1:1");
  REQUIRE_FALSE(cli.tryAcquire("web2", "switchyard deploy"));
  clock.advance(24h);
  CHECK(b.tryAcquire("web2", "run 3"));
}

TEMPLATE_TEST_CASE("two runners taking free host locks at once: each lock goes to one",
                   "[integration][store]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  SystemClock clock;
  constexpr int kHosts = 60;
  auto dbA = backend.open();
  auto dbB = backend.open();
  Runners(*dbA, clock).enter(kA, 1h);
  Runners(*dbB, clock).enter(kB, 1h);
  std::map<std::string, std::vector<std::string>> winners;
  std::mutex mu;
  auto take = [&](Database& db, const std::string& id) {
    HostLocks locks(db, clock, id);
    for (int i = 0; i < kHosts; ++i) {
      std::string host = "host" + std::to_string(i);
      if (!locks.tryAcquire(host, "deploy")) {
        std::scoped_lock lk(mu);
        winners[host].push_back(id);
      }
    }
  };
  std::thread ta([&] { take(*dbA, kA); });
  std::thread tb([&] { take(*dbB, kB); });
  ta.join();
  tb.join();
  REQUIRE(winners.size() == static_cast<size_t>(kHosts));
  int twice = 0;
  for (const auto& [host, who] : winners) {
    twice += who.size() != 1;
    CHECK(HostLocks(*dbA, clock, who.front()).holds(host));
  }
  CHECK(twice == 0);
}

TEMPLATE_TEST_CASE("recovery takes over the runs of a dead runner only", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  ManualClock clock;
  auto dbA = backend.open();
  auto dbB = backend.open();
  Runs runsA(*dbA, clock), runsB(*dbB, clock);
  Runners(*dbA, clock).enter(kA, 30s);
  Runners(*dbB, clock).enter(kB, 30s);
  int64_t ofA = newRun(runsA, "refs/heads/main");
  int64_t ofB = newRun(runsA, "refs/heads/staging");
  int64_t ofNone = newRun(runsA, "refs/heads/dev");
  REQUIRE(runsA.claimNext(1 << 30, kA)->runner == kA);
  REQUIRE(runsB.claimNext(1 << 30, kB)->view.id == ofB);
  REQUIRE(runsB.claimNext()->view.id == ofNone);  // claimed before runners had ids
  CHECK(runsB.get(ofA)->runner == kA);
  CHECK(runsB.get(ofNone)->runner.empty());

  // both alive: only the run without a runner is anybody's to recover
  CHECK(idsOf(runsB.orphaned(kB)) == std::set<int64_t>{ofNone});
  CHECK(idsOf(runsA.orphaned(kA)) == std::set<int64_t>{ofNone});
  CHECK(runsB.isRunBy(ofA, kA));

  // a's heartbeat stops; after its lease, b sees a's run as orphaned, never its own
  clock.advance(20s);
  REQUIRE(Runners(*dbB, clock).renew(kB, 30s));
  CHECK(idsOf(runsB.orphaned(kB)) == std::set<int64_t>{ofNone});
  clock.advance(11s);
  CHECK(idsOf(runsB.orphaned(kB)) == std::set<int64_t>{ofA, ofNone});
  // two runners recovering at once: the first to adopt it has it
  CHECK(runsB.adopt(ofA, kA, kB));
  CHECK_FALSE(runsA.adopt(ofA, kA, "machine-c:1:1:cccc"));
  CHECK(runsB.isRunBy(ofA, kB));
  CHECK_FALSE(runsA.isRunBy(ofA, kA));  // a's late end is not recorded (Scheduler::recordEnd)
  CHECK(runsB.adopt(ofNone, "", kB));
  CHECK(runsB.orphaned(kB).empty());
  runsB.requeue(ofA, "resumed");
  CHECK(runsB.get(ofA)->runner.empty());
  CHECK(runsB.get(ofA)->view.state == RunState::Queued);
  // a stopped cleanly: its lease ends at once, its runs are free before any expiry
  Runners(*dbB, clock).leave(kB);
  CHECK(idsOf(runsA.orphaned(kA)) == std::set<int64_t>{ofB, ofNone});
}

TEMPLATE_TEST_CASE("the outbox rows of one key are sent by one runner at a time", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  ManualClock clock;
  auto dbA = backend.open();
  auto dbB = backend.open();
  Runners(*dbA, clock).enter(kA, 30s);
  Runners(*dbB, clock).enter(kB, 30s);
  Outbox a(*dbA), b(*dbB);
  auto row = [](const std::string& key, const std::string& state) {
    return NewOutboxRow{"home", "alice/infra", "status", key, "{\"state\":\"" + state + "\"}"};
  };
  const int64_t now = clock.nowMillis();
  int64_t s1 = *a.enqueue(row("sha1/build", "pending"), now).id;
  int64_t s2 = *a.enqueue(row("sha2/build", "pending"), now).id;

  auto ca = a.claimDue(now, kA);
  REQUIRE(ca);
  CHECK(ca->id == s1);
  CHECK(a.claimedBy(s1) == kA);
  auto cb = b.claimDue(now, kB);  // s1 is a's: b takes the next
  REQUIRE(cb);
  CHECK(cb->id == s2);
  CHECK_FALSE(b.claimDue(now, kB + "x"));  // nothing left for a third

  // a newer state of sha1 arrives while a sends the old one: it waits for a's send
  int64_t s3 = *b.enqueue(row("sha1/build", "success"), now).id;
  CHECK(b.get(s1)->state == OutboxState::Superseded);
  b.markSent(s2, "{}", now);
  CHECK_FALSE(b.claimDue(now, kB));
  a.markSent(s1, "{}", now);  // sent while superseded: recorded as sent, claim ended
  CHECK(a.get(s1)->state == OutboxState::Sent);
  CHECK(a.claimedBy(s1).empty());
  auto next = b.claimDue(now, kB);
  REQUIRE(next);
  CHECK(next->id == s3);

  // b dies with s3 claimed: a takes it once b's lease expired, not before
  clock.advance(20s);
  REQUIRE(Runners(*dbA, clock).renew(kA, 30s));
  CHECK_FALSE(a.claimDue(clock.nowMillis(), kA));
  clock.advance(11s);
  auto taken = a.claimDue(clock.nowMillis(), kA);
  REQUIRE(taken);
  CHECK(taken->id == s3);
  CHECK(a.claimedBy(s3) == kA);
  a.retryLater(s3, "503", clock.nowMillis() + 1000);
  CHECK(a.claimedBy(s3).empty());
  CHECK_FALSE(a.claimDue(clock.nowMillis(), kA));  // not due yet
}

TEMPLATE_TEST_CASE("two runners draining one outbox at once send every row once",
                   "[integration][store]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  SystemClock clock;
  constexpr int kRows = 150;
  auto dbA = backend.open();
  auto dbB = backend.open();
  Runners(*dbA, clock).enter(kA, 1h);
  Runners(*dbB, clock).enter(kB, 1h);
  {
    Outbox o(*dbA);
    for (int i = 0; i < kRows; ++i)  // 50 keys, three states each: the last one stays pending
      o.enqueue({"home", "alice/infra", "status", "sha" + std::to_string(i % 50) + "/build",
                 std::to_string(i)},
                clock.nowMillis());
  }
  std::mutex mu;
  std::map<int64_t, int> sent;
  std::set<std::string> inFlight;  // keys being sent right now, by either runner
  int overlaps = 0;
  auto drain = [&](Database& db, const std::string& id) {
    Outbox o(db);
    while (auto row = o.claimDue(clock.nowMillis(), id)) {
      {
        std::scoped_lock lk(mu);
        overlaps += !inFlight.insert(row->orderKey).second;
        ++sent[row->id];
      }
      std::this_thread::yield();  // the "forge call"
      {
        std::scoped_lock lk(mu);
        inFlight.erase(row->orderKey);
      }
      o.markSent(row->id, "{}", clock.nowMillis());
    }
  };
  std::thread ta([&] { drain(*dbA, kA); });
  std::thread tb([&] { drain(*dbB, kB); });
  ta.join();
  tb.join();
  CHECK(sent.size() == 50u);
  int twice = 0;
  for (auto [id, n] : sent) twice += n != 1;
  CHECK(twice == 0);
  CHECK(overlaps == 0);
  CHECK(Outbox(*dbA).counts()[OutboxState::Pending] == 0);
}
