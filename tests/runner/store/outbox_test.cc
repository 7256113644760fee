// The outbox and forge_objects repositories (runner/store/outbox.h, forge_objects.h): one
// pending row per order key (newer rows supersede older pending ones), the admission hook,
// due rows in order with waiting forges left out, send outcomes, pruning, and rows that
// commit or roll back with the caller's transaction.
#include "runner/store/outbox.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/os/files.h"
#include "runner/store/database.h"
#include "runner/store/forge_objects.h"
#include "tests/support/store_backends.h"

using namespace runner;
using namespace runner::store;

namespace {

NewOutboxRow row(std::string key, std::string payload, std::string forge = "home") {
  return {std::move(forge), "alice/infra", "status", std::move(key), std::move(payload)};
}

std::vector<int64_t> ids(const std::vector<OutboxRow>& rows) {
  std::vector<int64_t> out;
  for (const auto& r : rows) out.push_back(r.id);
  return out;
}

}  // namespace

TEMPLATE_TEST_CASE("outbox: a newer row supersedes older pending rows with the same key only",
                   "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  Outbox outbox(*db);
  auto a = outbox.enqueue(row("status:abc:switchyard/plan", R"({"s":"pending"})"), 1000);
  auto b = outbox.enqueue(row("status:abc:switchyard/build/web", R"({"s":"pending"})"), 1001);
  auto c = outbox.enqueue(row("status:abc:switchyard/plan", R"({"s":"success"})"), 1002);
  REQUIRE(a.id);
  REQUIRE(b.id);
  REQUIRE(c.id);
  CHECK(a.superseded == 0);
  CHECK(c.superseded == 1);
  CHECK(outbox.get(*a.id)->state == OutboxState::Superseded);
  CHECK(outbox.get(*b.id)->state == OutboxState::Pending);
  CHECK(ids(outbox.due(5000, 10)) == std::vector<int64_t>{*b.id, *c.id});
  // the same key on another forge is another thing
  auto other = outbox.enqueue(row("status:abc:switchyard/plan", "{}", "gh"), 1003);
  CHECK(other.superseded == 0);
  CHECK(outbox.get(*c.id)->state == OutboxState::Pending);

  auto newest = outbox.newest("home", "alice/infra", "status:abc:switchyard/plan");
  REQUIRE(newest);
  CHECK(newest->id == *c.id);
  CHECK(newest->payload == R"({"s":"success"})");
  CHECK(newest->createdAt == 1002);
  CHECK(newest->nextAttemptAt == 1002);
  CHECK_FALSE(outbox.newest("home", "alice/infra", "nothing"));
}

TEMPLATE_TEST_CASE("outbox: admit sees the newest row and can turn the new one away",
                   "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  Outbox outbox(*db);
  auto first = outbox.enqueue(row("k", "one"), 1000);
  std::vector<std::string> seen;
  auto refused = outbox.enqueue(row("k", "two"), 1001, [&](const OutboxRow& newest) {
    seen.push_back(newest.payload);
    return false;
  });
  CHECK_FALSE(refused.id);
  CHECK(seen == std::vector<std::string>{"one"});
  CHECK(outbox.get(*first.id)->state == OutboxState::Pending);  // untouched
  // no row with the key yet: admit is not asked
  bool asked = false;
  auto fresh = outbox.enqueue(row("other", "x"), 1002, [&](const OutboxRow&) {
    asked = true;
    return false;
  });
  CHECK(fresh.id);
  CHECK_FALSE(asked);
}

TEMPLATE_TEST_CASE(
    "outbox: due rows come oldest first, not before their time, waiting forges left out",
    "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  Outbox outbox(*db);
  auto a = *outbox.enqueue(row("a", "{}", "home"), 1000).id;
  auto b = *outbox.enqueue(row("b", "{}", "gh"), 1000).id;
  auto c = *outbox.enqueue(row("c", "{}", "home"), 3000).id;
  CHECK(ids(outbox.due(2000, 10)) == std::vector<int64_t>{a, b});
  CHECK(ids(outbox.due(3000, 10)) == std::vector<int64_t>{a, b, c});
  CHECK(ids(outbox.due(3000, 2)) == std::vector<int64_t>{a, b});
  CHECK(ids(outbox.due(3000, 10, {"home"})) == std::vector<int64_t>{b});
  CHECK(ids(outbox.due(3000, 10, {"home", "gh"})).empty());
  CHECK(outbox.nextAttemptAt() == 1000);
  CHECK(outbox.nextAttemptAt({"home"}) == 1000);

  outbox.retryLater(a, "HTTP 500: boom", 9000);
  auto ra = *outbox.get(a);
  CHECK(ra.state == OutboxState::Pending);
  CHECK(ra.attempts == 1);
  CHECK(ra.lastError == "HTTP 500: boom");
  CHECK(ra.nextAttemptAt == 9000);
  CHECK(ids(outbox.due(3000, 10)) == std::vector<int64_t>{b, c});
  CHECK(outbox.nextAttemptAt({"gh"}) == 3000);

  outbox.markSent(b, R"({"id":7})", 3500);
  auto rb = *outbox.get(b);
  CHECK(rb.state == OutboxState::Sent);
  CHECK(rb.attempts == 1);
  CHECK(rb.result == std::optional<std::string>(R"({"id":7})"));
  CHECK(rb.sentAt == std::optional<int64_t>(3500));

  outbox.markFailed(c, "HTTP 422: description is too long", 3600);
  auto rc = *outbox.get(c);
  CHECK(rc.state == OutboxState::Failed);
  CHECK(rc.lastError == "HTTP 422: description is too long");
  CHECK(ids(outbox.due(10000, 10)) == std::vector<int64_t>{a});
  CHECK(outbox.nextAttemptAt() == 9000);

  auto counts = outbox.counts();
  CHECK(counts[OutboxState::Pending] == 1);
  CHECK(counts[OutboxState::Sent] == 1);
  CHECK(counts[OutboxState::Failed] == 1);
  CHECK(counts[OutboxState::Superseded] == 0);
  CHECK(ids(outbox.list(OutboxState::Failed)) == std::vector<int64_t>{c});
  CHECK(ids(outbox.list()) == std::vector<int64_t>{a, b, c});
}

TEMPLATE_TEST_CASE(
    "outbox: a row superseded while in flight is recorded as sent, and stays superseded "
    "when it must be retried",
    "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  Outbox outbox(*db);
  auto a = *outbox.enqueue(row("k", "old"), 1000).id;
  auto b = *outbox.enqueue(row("k", "new"), 1001).id;  // arrives while `a` is being sent
  outbox.markSent(a, "{}", 1002);
  CHECK(outbox.get(a)->state == OutboxState::Sent);
  CHECK(outbox.get(b)->state == OutboxState::Pending);

  auto c = *outbox.enqueue(row("j", "old"), 1000).id;
  auto e = *outbox.enqueue(row("j", "new"), 1001).id;
  outbox.retryLater(c, "HTTP 502", 5000);
  CHECK(outbox.get(c)->state == OutboxState::Superseded);
  CHECK(ids(outbox.due(6000, 10)) == std::vector<int64_t>{b, e});
}

TEMPLATE_TEST_CASE("outbox: prune deletes old sent and superseded rows, keeps failed and pending",
                   "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  Outbox outbox(*db);
  auto sent = *outbox.enqueue(row("a", "1"), 1000).id;
  auto superseded = *outbox.enqueue(row("b", "1"), 1000).id;
  auto newer = *outbox.enqueue(row("b", "2"), 1000).id;
  auto failed = *outbox.enqueue(row("c", "1"), 1000).id;
  auto recent = *outbox.enqueue(row("d", "1"), 9000).id;
  outbox.markSent(sent, "{}", 1100);
  outbox.markFailed(failed, "no", 1100);
  outbox.markSent(recent, "{}", 9100);
  CHECK(outbox.prune(5000) == 2);
  CHECK_FALSE(outbox.get(sent));
  CHECK_FALSE(outbox.get(superseded));
  CHECK(outbox.get(newer));
  CHECK(outbox.get(failed));
  CHECK(outbox.get(recent));
}

TEMPLATE_TEST_CASE("outbox: rows commit and roll back with the caller's transaction",
                   "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  Outbox outbox(*db);
  CHECK_THROWS_AS(db->transaction([&] {
    db->exec("INSERT INTO drv_cache VALUES ('tree', 'web', '/nix/store/x.drv')");
    outbox.enqueue(row("k", "state change"), 1000);
    throw StoreError("the scheduler's write failed");
  }),
                  StoreError);
  CHECK(outbox.list().empty());
  CHECK(db->query("SELECT count(*) FROM drv_cache").at(0).integer(0) == 0);

  db->transaction([&] {
    db->exec("INSERT INTO drv_cache VALUES ('tree', 'web', '/nix/store/x.drv')");
    outbox.enqueue(row("k", "state change"), 1000);
  });
  CHECK(outbox.list().size() == 1);
}

TEMPLATE_TEST_CASE("outbox: rows survive closing and reopening the database",
                   "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  int64_t id = 0;
  {
    auto db = backend.open();
    id = *Outbox(*db).enqueue(row("k", R"({"x":1})"), 1000).id;
  }
  auto db = backend.open();
  auto due = Outbox(*db).due(1000, 10);
  REQUIRE(due.size() == 1);
  CHECK(due[0].id == id);
  CHECK(due[0].payload == R"({"x":1})");
  CHECK(due[0].kind == "status");
  CHECK(due[0].orderKey == "k");
}

TEMPLATE_TEST_CASE("forge objects: remember, replace, find and forget ids per forge and repo",
                   "[unit][store][outbox]", tests::SqliteBackend, tests::PostgresBackend) {
  TestType backend;
  SKIP_IF_UNAVAILABLE(backend);
  auto db = backend.open();
  ForgeObjects objects(*db);
  CHECK_FALSE(objects.find("gh", "alice/infra", "comment:pr:7"));
  objects.remember("gh", "alice/infra", "comment:pr:7", "1001");
  objects.remember("gh", "alice/other", "comment:pr:7", "2002");
  CHECK(objects.find("gh", "alice/infra", "comment:pr:7") == std::optional<std::string>("1001"));
  objects.remember("gh", "alice/infra", "comment:pr:7", "1005");
  CHECK(objects.find("gh", "alice/infra", "comment:pr:7") == std::optional<std::string>("1005"));
  CHECK(objects.find("gh", "alice/other", "comment:pr:7") == std::optional<std::string>("2002"));
  CHECK_FALSE(objects.find("home", "alice/infra", "comment:pr:7"));
  objects.forget("gh", "alice/infra", "comment:pr:7");
  CHECK_FALSE(objects.find("gh", "alice/infra", "comment:pr:7"));
  objects.forget("gh", "alice/infra", "comment:pr:7");  // no-op
}
