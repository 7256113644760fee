#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/database.h"
#include "runner/store/deployments.h"
#include "runner/store/drv_cache.h"
#include "runner/store/host_locks.h"
#include "runner/store/host_probes.h"
#include "runner/store/runs.h"
#include "runner/store/schema.h"
#include "runner/store/sql_connection.h"
#include "runner/store/sql_dialect.h"
#include "tests/support/store_backends.h"

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

TEMPLATE_TEST_CASE("a transaction rolls back when its body throws", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
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

TEMPLATE_TEST_CASE("the drvPath cache answers by tree hash and host", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  SqliteDrvCache cache(*db);
  CHECK_FALSE(cache.get("tree1", "web1"));
  cache.put("tree1", "web1", "/nix/store/aaa-web1.drv");
  cache.put("tree1", "web1", "/nix/store/bbb-web1.drv");
  CHECK(cache.get("tree1", "web1") == "/nix/store/bbb-web1.drv");
  CHECK_FALSE(cache.get("tree2", "web1"));
}

TEMPLATE_TEST_CASE("a host lock is held by one owner across connections", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  FixedClock clock;
  auto dbA = backend.open();
  auto dbB = backend.open();  // another process, in effect
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

TEMPLATE_TEST_CASE("a lock held by a process that died is taken over", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  FixedClock clock;
  auto db = backend.open();
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

TEMPLATE_TEST_CASE("deployments remember the last successful commit per host", "[unit][store]",
                   tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
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
  auto last = deps.lastSucceeded("web1", "", "alice/infra");
  REQUIRE(last);
  CHECK(last->sha == "aaa");
  CHECK(last->generation == 3);
  CHECK_FALSE(deps.lastSucceeded("web1", "", "bob/other"));
  auto h = deps.history("web1");
  REQUIRE(h.size() == 2);
  CHECK(h[0].result == "rolled-back");
  CHECK(h[0].previousGeneration == 3);
}

// A repository is (forge, name) (issue 17): alice/infra on a GitHub and on a Gitea that both
// manage web1 must not share its deploy records, probes or fleet questions (issue 14).
TEMPLATE_TEST_CASE("the fleet tables keep two same-named repositories on two forges apart",
                   "[unit][store][fleet]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  FixedClock clock;
  Deployments deps(*db);
  auto rec = [&](const std::string& forge, const std::string& path, const std::string& prev) {
    DeploymentRecord r;
    r.host = "web1";
    r.forge = forge;
    r.repo = "alice/infra";
    r.sha = std::string(40, forge == "github" ? 'a' : 'b');
    r.storePath = path;
    r.previousPath = prev;
    r.result = "succeeded";
    r.runId = forge == "github" ? 1 : 2;
    r.startedAt = r.finishedAt = 10;
    return deps.record(r);
  };
  rec("github", "/nix/store/g1", "/nix/store/g0");
  rec("gitea", "/nix/store/t1", "/nix/store/g1");  // newer, on the other forge
  CHECK(deps.lastSucceeded("web1", "github", "alice/infra")->storePath == "/nix/store/g1");
  CHECK(deps.lastSucceeded("web1", "gitea", "alice/infra")->storePath == "/nix/store/t1");
  CHECK(deps.lastSucceeded("web1", "gitea", "alice/infra")->forge == "gitea");
  CHECK_FALSE(deps.lastSucceeded("web1", "", "alice/infra"));
  CHECK(deps.lastSucceeded("web1")->forge == "gitea");  // any repository: the newest
  // gitea's previous system was put there by github's run, not by a run of gitea's repo
  CHECK(deps.lastSucceededWithPath("web1", "github", "alice/infra", "/nix/store/g1"));
  CHECK_FALSE(deps.lastSucceededWithPath("web1", "gitea", "alice/infra", "/nix/store/g1"));
  CHECK(deployedHosts(*db, "github", "alice/infra") == std::vector<std::string>{"web1"});
  CHECK(deployedHosts(*db, "forgejo", "alice/infra").empty());

  HostProbes probes(*db);
  ProbeRecord seen{.forge = "github", .repo = "alice/infra", .host = "web1", .target = "root@g"};
  seen.probedAt = 20;
  seen.reached = true;
  seen.currentPath = "/nix/store/g1";
  probes.record(seen);
  ProbeRecord off{.forge = "gitea", .repo = "alice/infra", .host = "web1", .target = "root@t"};
  off.probedAt = 30;
  off.error = "no route";
  probes.record(off);
  CHECK(probes.all().size() == 2);
  auto g = probes.get("github", "alice/infra", "web1");
  REQUIRE(g);
  CHECK(g->reached);
  CHECK(g->target == "root@g");
  auto t = probes.get("gitea", "alice/infra", "web1");
  REQUIRE(t);
  CHECK_FALSE(t->reached);
  CHECK(t->forge == "gitea");
  CHECK_FALSE(probes.get("", "alice/infra", "web1"));

  Runs runs(*db, clock);
  for (const std::string forge : {"github", "gitea"}) {
    NewRun n;
    n.forge = forge;
    n.repo = "alice/infra";
    n.kind = RunKind::Deploy;
    n.sha = std::string(40, 'c');
    n.ref = "refs/heads/main";
    const int64_t id = runs.create(n);
    RunHostView h;
    h.host = "web1";
    h.stage = Stage::Build;
    h.state = HostState::Succeeded;
    h.outPath = "/nix/store/built-" + forge;
    runs.putHost(id, h);
    runs.setPlan(id, "", R"({"hosts":[{"name":"web1"},{"name":")" + forge + R"(-only"}]})");
  }
  CHECK(lastBuilt(*db, "github", "alice/infra", "refs/heads/main", "web1")->path ==
        "/nix/store/built-github");
  CHECK(lastBuilt(*db, "gitea", "alice/infra", "refs/heads/main", "web1")->path ==
        "/nix/store/built-gitea");
  CHECK_FALSE(lastBuilt(*db, "", "alice/infra", "refs/heads/main", "web1"));
  CHECK(lastPlannedHosts(*db, "github", "alice/infra", "refs/heads/main") ==
        std::vector<std::string>{"web1", "github-only"});
}

// Migration 11 gives existing deploy records the forge of the run that made them, and probe
// rows that of the host's newest record (else of the repository's runs, when one forge).
TEMPLATE_TEST_CASE("records from before the forge column take their run's forge",
                   "[unit][store][fleet]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  {
    std::unique_ptr<SqlConnection> c;
    if constexpr (std::is_same_v<TestType, tests::SqliteBackend>) {
      std::filesystem::create_directories(backend.file().parent_path());
      c = openSqliteConnection(backend.file(), Durability::Normal);
    } else {
      c = openPostgresConnection(backend.configValue());
    }
    const Backend engine = c->backend();
    c->begin();
    REQUIRE(c->schemaVersion() == 0);
    for (size_t i = 0; i < 9; ++i) c->runScript(ddlFor(engine, migrations()[i]));
    c->setSchemaVersion(9);
    c->runScript(
        "INSERT INTO runs(id, repo, forge, kind, trigger, sha, state, created_at) VALUES "
        "(1, 'alice/infra', 'gitea', 'deploy', 'push', 'aaa', 'succeeded', 1), "
        "(2, 'alice/infra', 'github', 'deploy', 'push', 'bbb', 'succeeded', 2), "
        "(3, 'bob/site', 'home', 'deploy', 'push', 'ccc', 'succeeded', 3);"
        "INSERT INTO deployments(host, repo, sha, store_path, result, run_id, started_at, "
        "finished_at) VALUES ('web1', 'alice/infra', 'aaa', '/nix/store/a', 'succeeded', 1, 1, 1), "
        "('web1', 'alice/infra', 'bbb', '/nix/store/b', 'succeeded', 2, 2, 2), "
        "('web9', 'alice/infra', 'ccc', '/nix/store/c', 'succeeded', NULL, 3, 3);"
        "INSERT INTO host_probes(repo, host, probed_at, reached) VALUES "
        "('alice/infra', 'web1', 5, 1), ('bob/site', 'www', 5, 1), ('alice/infra', 'db1', 5, 0);");
    c->commit();
  }
  auto db = backend.open();
  CHECK(db->schemaVersion() == static_cast<int>(migrations().size()));
  auto h = Deployments(*db).history("web1");
  REQUIRE(h.size() == 2);
  CHECK(h[0].forge == "github");
  CHECK(h[1].forge == "gitea");
  CHECK(Deployments(*db).history("web9").at(0).forge.empty());  // no run: no forge known
  HostProbes probes(*db);
  CHECK(probes.get("github", "alice/infra", "web1"));  // the newest record's forge
  CHECK(probes.get("home", "bob/site", "www"));        // the repository's only forge
  CHECK(probes.get("", "alice/infra", "db1"));         // two forges, no record: unknown
  CHECK(probes.all().size() == 3);
}

TEST_CASE("placeholders become PostgreSQL's $N outside strings and comments", "[unit][store]") {
  CHECK(postgresPlaceholders("SELECT a FROM t WHERE b = ?2 AND c = ?1") ==
        "SELECT a FROM t WHERE b = $2 AND c = $1");
  CHECK(postgresPlaceholders("VALUES (?, ?, ?)") == "VALUES ($1, $2, $3)");
  CHECK(postgresPlaceholders("WHERE a = ?3 AND b = ?") == "WHERE a = $3 AND b = $4");
  CHECK(postgresPlaceholders("WHERE a = '?' AND b = 'it''s ?' -- why?\n AND c = ?") ==
        "WHERE a = '?' AND b = 'it''s ?' -- why?\n AND c = $1");
}

TEST_CASE("the schema's SQLite types become PostgreSQL's", "[unit][store]") {
  CHECK(ddlFor(Backend::Sqlite, "id INTEGER PRIMARY KEY") == "id INTEGER PRIMARY KEY");
  CHECK(ddlFor(Backend::Postgres,
               "CREATE TABLE t (\n  id INTEGER PRIMARY KEY,\n  n INTEGER "
               "NOT NULL,\n  s TEXT\n) WITHOUT ROWID;") ==
        "CREATE TABLE t (\n  id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,\n  n BIGINT "
        "NOT NULL,\n  s TEXT\n);");
  // every shipped migration converts without SQLite-only words left
  for (auto m : migrations()) {
    std::string pg = ddlFor(Backend::Postgres, m);
    CHECK(pg.find("INTEGER") == std::string::npos);
    CHECK(pg.find("ROWID") == std::string::npos);
  }
}

TEST_CASE("a database URL's password stays out of messages", "[unit][store]") {
  CHECK(urlWithoutPassword("postgresql://sy:s3cret@db.lan:5432/switchyard") ==
        "postgresql://sy:***@db.lan:5432/switchyard");
  CHECK(urlWithoutPassword("postgresql://sy@db.lan/switchyard?password=s3cret&sslmode=require") ==
        "postgresql://sy@db.lan/switchyard?password=***&sslmode=require");
  CHECK(urlWithoutPassword("postgresql://db.lan/x") == "postgresql://db.lan/x");
  CHECK(isPostgresUrl("postgres://h/x"));
  CHECK_FALSE(isPostgresUrl("/var/lib/switchyard/switchyard.db"));
}

TEST_CASE("a database setting that is not a postgresql:// URL is refused by name",
          "[unit][store]") {
  os::TempDir d;
  CHECK_THROWS_WITH(Database::openConfigured("mysql://u:pw@h/x", d.path() / "s.db"),
                    Catch::Contains("'mysql://u:***@h/x' is not a postgresql:// URL"));
  auto db = Database::openConfigured("", d.path() / "s.db");
  CHECK(db->backend() == Backend::Sqlite);
}

TEST_CASE("an unreachable PostgreSQL server is a clear error without its password",
          "[unit][store]") {
  // port 1 on loopback: nothing listens there
  try {
    Database::connect("postgresql://sy:s3cret@127.0.0.1:1/switchyard?connect_timeout=5");
    FAIL("connected to port 1");
  } catch (const StoreError& e) {
    std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("cannot connect to PostgreSQL"));
    CHECK_THAT(what, !Catch::Contains("s3cret"));
  }
}

TEST_CASE("a PostgreSQL database is migrated once and refused when newer", "[unit][store]") {
  tests::PostgresBackend backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  CHECK(db->backend() == Backend::Postgres);
  CHECK(db->schemaVersion() == static_cast<int>(migrations().size()));
  // reconnecting does not migrate twice (a second CREATE TABLE would fail)
  auto again = backend.open();
  CHECK(again->schemaVersion() == static_cast<int>(migrations().size()));
  again->exec("UPDATE switchyard_schema SET version = 999");
  CHECK_THROWS_WITH(backend.open(), Catch::Contains("newer than this switchyard"));
}

TEST_CASE("PostgreSQL: ids, NULLs, integers beyond 32 bits and sums read back as SQLite's",
          "[unit][store]") {
  tests::PostgresBackend backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  Deployments deps(*db);
  DeploymentRecord r;
  r.host = "web1";
  r.repo = "alice/infra";
  r.sha = "aaa";
  r.storePath = "/nix/store/a";
  r.result = "succeeded";
  r.startedAt = 1'700'000'000'000;
  r.finishedAt = 1'700'000'000'123;
  int64_t first = deps.record(r);
  CHECK(deps.record(r) == first + 1);
  auto h = deps.history("web1");
  REQUIRE(h.size() == 2);
  CHECK_FALSE(h[0].generation);  // NULL stays NULL
  CHECK(h[0].finishedAt == 1'700'000'000'123);
  auto row = db->query("SELECT SUM(finished_at), COUNT(*), 1 = 1 FROM deployments").at(0);
  CHECK(row.integer(0) == 3'400'000'000'246);
  CHECK(row.integer(1) == 2);
  CHECK(row.integer(2) == 1);
  // a failing statement inside a transaction rolls the whole transaction back
  CHECK_THROWS_AS(db->transaction([&] {
    deps.record(r);
    db->exec("INSERT INTO no_such_table VALUES (1)");
  }),
                  StoreError);
  CHECK(deps.history("web1").size() == 2);
  // and the connection is usable afterwards
  CHECK(deps.record(r) > first);
}
