// The forge outbox (DESIGN.md §1, §8): every call Switchyard makes to a forge — a commit
// status, a check run, the PR comment, a reaction, a reply — is first a row in SQLite, written
// in the same transaction as the state change that caused it when the caller is inside one
// (Database::transaction joins an outer transaction on the same thread). A sender
// (runner/report) delivers due rows later and records the outcome here, so a forge that is
// down, slow or rate-limiting loses nothing, and a restart resends what was not sent.
//
// Ordering: rows that describe the same thing share an `order_key` (e.g. "<sha>/<context>").
// Adding a row makes every older *pending* row with the same (forge, repo, order_key)
// `superseded`, so at most one row per key is pending and it is always the newest: the last
// state wins and an older state is never sent after a newer one (a row already in flight
// when a newer one arrives is sent first; the sender is one thread per runner, and runners
// sharing a database claim rows so that one of them at a time sends a key's rows: claimDue).
//
// This class knows rows, not forges: payloads are opaque JSON text written and read by
// runner/report. Thread-safe as far as Database is (every call is one statement or one
// transaction). Every method throws StoreError when the database cannot be read or written.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/store/database.h"

namespace runner::store {

enum class OutboxState { Pending, Sent, Failed, Superseded };
const char* toString(OutboxState s);  // "pending" | "sent" | "failed" | "superseded"

struct OutboxRow {
  int64_t id = 0;
  std::string forge;     // configured forge name
  std::string repo;      // "owner/name"
  std::string kind;      // "status" | "check_run" | "comment" | "reaction" | "reply"
  std::string orderKey;  // rows with the same (forge, repo, orderKey) replace each other
  std::string payload;   // JSON text (runner/report defines it per kind)
  OutboxState state = OutboxState::Pending;
  int64_t attempts = 0;               // sends tried so far
  int64_t nextAttemptAt = 0;          // unix ms; due when <= now
  std::string lastError;              // the forge's message of the last failure
  std::optional<std::string> result;  // JSON the sender recorded ({"id": …} of what it made)
  int64_t createdAt = 0;              // unix ms
  std::optional<int64_t> sentAt;      // unix ms
};

struct NewOutboxRow {
  std::string forge;
  std::string repo;
  std::string kind;
  std::string orderKey;
  std::string payload;
};

struct EnqueueOutcome {
  std::optional<int64_t> id;  // the new row; nullopt when `admit` turned it away
  int64_t superseded = 0;     // older pending rows it replaced
};

class Outbox {
 public:
  explicit Outbox(Database& db) : db_(db) {}

  // Decides whether a new row is worth adding, given the newest existing row with the same
  // (forge, repo, orderKey) (any state). Return false to drop the new row (it repeats what
  // is already pending or sent, or it is older than what is there).
  using Admit = std::function<bool(const OutboxRow& newest)>;

  // Adds `row` as pending and due at `nowMs`, and marks older pending rows with the same
  // (forge, repo, orderKey) superseded — in one transaction (joining the caller's, if any).
  // `admit` (optional) is asked first when a row with that key exists.
  EnqueueOutcome enqueue(const NewOutboxRow& row, int64_t nowMs, const Admit& admit = {});

  // Pending rows due at `nowMs` (next_attempt_at <= nowMs), oldest first (by id), at most
  // `limit`, leaving out rows for the forges in `skipForges` (ones that must wait).
  std::vector<OutboxRow> due(int64_t nowMs, int limit,
                             const std::vector<std::string>& skipForges = {});
  // Several runners (issue 16): claims for runner `claimer` (runners.h) the oldest due
  // pending row (not for a forge in `skipForges`) that no live runner is sending and whose
  // (forge, repo, orderKey) has no row a live runner is sending, and returns it; nullopt when
  // there is none. So the rows of one key are sent by one runner at a time, in order, and a
  // newer state never overtakes an older one in flight on another runner. A claim ends with
  // the row's outcome (markSent, markFailed, retryLater) or when the claimer's lease expires.
  std::optional<OutboxRow> claimDue(int64_t nowMs, const std::string& claimer,
                                    const std::vector<std::string>& skipForges = {});
  // The runner sending row `id` now, "" for none.
  std::string claimedBy(int64_t id);
  // The earliest next_attempt_at of a pending row (not for a forge in `skipForges`), or
  // nullopt when there is none.
  std::optional<int64_t> nextAttemptAt(const std::vector<std::string>& skipForges = {});

  // Outcomes of one send. Each counts one attempt. markSent and markFailed apply to a row
  // that was superseded while it was in flight too (it was sent, or it failed); retryLater
  // leaves a superseded row superseded (the newer row carries the state now).
  void markSent(int64_t id, const std::string& resultJson, int64_t nowMs);
  void markFailed(int64_t id, const std::string& error, int64_t nowMs);
  void retryLater(int64_t id, const std::string& error, int64_t nextAttemptAtMs);

  // One row, or nullopt.
  std::optional<OutboxRow> get(int64_t id);
  // The newest row with this key (any state), or nullopt.
  std::optional<OutboxRow> newest(const std::string& forge, const std::string& repo,
                                  const std::string& orderKey);
  // Rows oldest first, optionally only those in `state`, at most `limit` (for the UI,
  // `switchyard` diagnostics and tests).
  std::vector<OutboxRow> list(std::optional<OutboxState> state = std::nullopt, int limit = 1000);
  // Number of rows per state (every state present, zero when none).
  std::map<OutboxState, int64_t> counts();
  // Deletes sent and superseded rows created before `beforeMs`; returns how many. Failed
  // rows stay (they are what a person looks at).
  int64_t prune(int64_t beforeMs);

 private:
  Database& db_;
};

}  // namespace runner::store
