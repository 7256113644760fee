#include "runner/store/outbox.h"

#include "runner/core/error.h"

namespace runner::store {
namespace {

constexpr const char* kColumns =
    "id, forge, repo, kind, order_key, payload, state, attempts, next_attempt_at, last_error, "
    "result, created_at, sent_at";

OutboxState stateFrom(const std::string& s) {
  if (s == "pending") return OutboxState::Pending;
  if (s == "sent") return OutboxState::Sent;
  if (s == "failed") return OutboxState::Failed;
  if (s == "superseded") return OutboxState::Superseded;
  throw StoreError("outbox row has unknown state '" + s + "'");
}

OutboxRow fromRow(const SqlRow& r) {
  OutboxRow o;
  o.id = r.integer(0);
  o.forge = r.text(1);
  o.repo = r.text(2);
  o.kind = r.text(3);
  o.orderKey = r.text(4);
  o.payload = r.text(5);
  o.state = stateFrom(r.text(6));
  o.attempts = r.integer(7);
  o.nextAttemptAt = r.integer(8);
  o.lastError = r.text(9);
  o.result = r.optText(10);
  o.createdAt = r.integer(11);
  o.sentAt = r.optInteger(12);
  return o;
}

std::vector<OutboxRow> fromRows(const std::vector<SqlRow>& rows) {
  std::vector<OutboxRow> out;
  out.reserve(rows.size());
  for (const auto& r : rows) out.push_back(fromRow(r));
  return out;
}

// Appends " AND forge NOT IN (?, …)" for `forges` (nothing when empty).
void excludeForges(const std::vector<std::string>& forges, std::string& sql,
                   std::vector<SqlValue>& params) {
  if (forges.empty()) return;
  sql += " AND forge NOT IN (";
  for (size_t i = 0; i < forges.size(); ++i) {
    sql += i ? ", ?" : "?";
    params.emplace_back(forges[i]);
  }
  sql += ")";
}

}  // namespace

const char* toString(OutboxState s) {
  switch (s) {
    case OutboxState::Pending:
      return "pending";
    case OutboxState::Sent:
      return "sent";
    case OutboxState::Failed:
      return "failed";
    case OutboxState::Superseded:
      return "superseded";
  }
  return "pending";
}

EnqueueOutcome Outbox::enqueue(const NewOutboxRow& row, int64_t nowMs, const Admit& admit) {
  EnqueueOutcome out;
  db_.transaction([&] {
    if (admit) {
      auto last = newest(row.forge, row.repo, row.orderKey);
      if (last && !admit(*last)) return;
    }
    out.superseded = db_.exec(
        "UPDATE outbox SET state = 'superseded' WHERE order_key = ?1 AND forge = ?2 AND "
        "repo = ?3 AND state = 'pending'",
        {row.orderKey, row.forge, row.repo});
    out.id = db_.query(
                    "INSERT INTO outbox(forge, repo, kind, order_key, payload, state, attempts, "
                    "next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) "
                    "RETURNING id",
                    {row.forge, row.repo, row.kind, row.orderKey, row.payload, nowMs, nowMs})
                 .at(0)
                 .integer(0);
  });
  return out;
}

std::vector<OutboxRow> Outbox::due(int64_t nowMs, int limit,
                                   const std::vector<std::string>& skipForges) {
  std::string sql = std::string("SELECT ") + kColumns +
                    " FROM outbox WHERE state = 'pending' AND next_attempt_at <= ?";
  std::vector<SqlValue> params = {nowMs};
  excludeForges(skipForges, sql, params);
  sql += " ORDER BY id LIMIT ?";
  params.emplace_back(int64_t{limit});
  return fromRows(db_.query(sql, params));
}

std::optional<OutboxRow> Outbox::claimDue(int64_t nowMs, const std::string& claimer,
                                          const std::vector<std::string>& skipForges) {
  std::optional<OutboxRow> out;
  db_.transaction([&] {
    // another runner claiming at the same time would not see this one's claim yet
    db_.lockForTransaction(Database::TxnLock::OutboxClaims);
    std::string sql =
        std::string("SELECT ") + kColumns +
        " FROM outbox AS o WHERE state = 'pending' AND next_attempt_at <= ?1 AND ("
        "claimed_by IS NULL OR claimed_by = ?2 OR NOT EXISTS (SELECT 1 FROM runners AS r "
        "WHERE r.id = o.claimed_by AND r.expires_at >= ?1)) AND NOT EXISTS (SELECT 1 FROM "
        "outbox AS k JOIN runners AS r ON r.id = k.claimed_by WHERE k.order_key = o.order_key "
        "AND k.forge = o.forge AND k.repo = o.repo AND k.id != o.id AND k.claimed_by != ?2 AND "
        "r.expires_at >= ?1)";
    std::vector<SqlValue> params = {nowMs, claimer};
    excludeForges(skipForges, sql, params);
    sql += " ORDER BY id LIMIT 1";
    auto rows = db_.query(sql, params);
    if (rows.empty()) return;
    out = fromRow(rows[0]);
    db_.exec("UPDATE outbox SET claimed_by = ?1 WHERE id = ?2", {claimer, out->id});
  });
  return out;
}

std::string Outbox::claimedBy(int64_t id) {
  auto rows = db_.query("SELECT claimed_by FROM outbox WHERE id = ?1", {id});
  return rows.empty() ? "" : rows[0].text(0);
}

std::optional<int64_t> Outbox::nextAttemptAt(const std::vector<std::string>& skipForges) {
  std::string sql = "SELECT min(next_attempt_at) FROM outbox WHERE state = 'pending'";
  std::vector<SqlValue> params;
  excludeForges(skipForges, sql, params);
  auto rows = db_.query(sql, params);
  if (rows.empty() || rows[0].isNull(0)) return std::nullopt;
  return rows[0].integer(0);
}

void Outbox::markSent(int64_t id, const std::string& resultJson, int64_t nowMs) {
  db_.exec(
      "UPDATE outbox SET state = 'sent', attempts = attempts + 1, result = ?2, sent_at = ?3, "
      "last_error = '', claimed_by = NULL WHERE id = ?1",
      {id, resultJson, nowMs});
}

void Outbox::markFailed(int64_t id, const std::string& error, int64_t nowMs) {
  db_.exec(
      "UPDATE outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2, "
      "sent_at = NULL, next_attempt_at = ?3, claimed_by = NULL WHERE id = ?1",
      {id, error, nowMs});
}

void Outbox::retryLater(int64_t id, const std::string& error, int64_t nextAttemptAtMs) {
  db_.exec(
      "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_at = ?3, "
      "claimed_by = NULL WHERE id = ?1",
      {id, error, nextAttemptAtMs});
}

std::optional<OutboxRow> Outbox::get(int64_t id) {
  auto rows = db_.query(std::string("SELECT ") + kColumns + " FROM outbox WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return fromRow(rows[0]);
}

std::optional<OutboxRow> Outbox::newest(const std::string& forge, const std::string& repo,
                                        const std::string& orderKey) {
  auto rows = db_.query(std::string("SELECT ") + kColumns +
                            " FROM outbox WHERE order_key = ?1 AND forge = ?2 AND repo = ?3 "
                            "ORDER BY id DESC LIMIT 1",
                        {orderKey, forge, repo});
  if (rows.empty()) return std::nullopt;
  return fromRow(rows[0]);
}

std::vector<OutboxRow> Outbox::list(std::optional<OutboxState> state, int limit) {
  if (state)
    return fromRows(db_.query(
        std::string("SELECT ") + kColumns + " FROM outbox WHERE state = ? ORDER BY id LIMIT ?",
        {std::string(toString(*state)), int64_t{limit}}));
  return fromRows(db_.query(std::string("SELECT ") + kColumns + " FROM outbox ORDER BY id LIMIT ?",
                            {int64_t{limit}}));
}

std::map<OutboxState, int64_t> Outbox::counts() {
  std::map<OutboxState, int64_t> out = {{OutboxState::Pending, 0},
                                        {OutboxState::Sent, 0},
                                        {OutboxState::Failed, 0},
                                        {OutboxState::Superseded, 0}};
  for (const auto& r : db_.query("SELECT state, count(*) FROM outbox GROUP BY state"))
    out[stateFrom(r.text(0))] = r.integer(1);
  return out;
}

int64_t Outbox::prune(int64_t beforeMs) {
  return db_.exec("DELETE FROM outbox WHERE state IN ('sent', 'superseded') AND created_at < ?",
                  {beforeMs});
}

}  // namespace runner::store
