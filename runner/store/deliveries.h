// The durable intake queue (DESIGN.md §1, §8): every webhook, git-hook and CLI/UI re-run
// delivery is one row of `deliveries`, committed BEFORE the sender gets its 202. The pair
// (source, delivery_id) is unique, so a forge's redelivery of the same id is one row.
//
// Two ways in:
//  * Deliveries::insert / insertBatch — one transaction for one or many deliveries;
//  * DeliveryWriter — group commit: concurrent request threads hand their delivery to one
//    writer thread, which commits everything that arrived meanwhile in ONE transaction (one
//    fsync) and then wakes each waiter with its own result. This is what lets intake take
//    thousands of signed deliveries per second on a disk where one fsync costs milliseconds.
//
// The scheduler reads queued rows in id order and marks each processed/ignored/failed in the
// same transaction that creates its run (runs.h), so a crash never leaves a delivery both
// queued and turned into a run.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/thread_annotations.h"
#include "runner/store/database.h"

namespace runner::store {

// What intake stores for one delivery.
struct NewDelivery {
  std::string source;      // forge name, or "hook" / "cli" / "ui"
  std::string deliveryId;  // the sender's id, for people (unique together with source)
  std::string eventName;   // raw event name ("push", "pull_request", "rerun")
  std::string eventJson;   // the normalised runner::Event as JSON
  bool ignored = false;    // stored as state "ignored" (never turned into a run)
  std::string detail;      // ignored: the reason
  // Signed deliveries: the hex SHA-256 of the body. Duplicates are told by it first — the
  // signature covers it, while the delivery-id header is unsigned (a replayed old body under
  // a new id is the old delivery, and does not take the id from the real one).
  std::optional<std::string> bodySha256;
};

// The row a delivery ended up in.
struct StoredDelivery {
  int64_t id = 0;
  // the (source, body) or (source, delivery id) was already stored: this is that row
  bool duplicate = false;
  std::string state;  // "queued" | "processed" | "ignored" | "failed"
  std::string detail;
};

struct DeliveryRecord {
  int64_t id = 0;
  std::string source;
  std::string deliveryId;
  std::string eventName;
  int64_t receivedAt = 0;  // unix ms
  std::string eventJson;
  std::string state;
  std::string detail;
  std::optional<int64_t> processedAt;
};

class Deliveries {
 public:
  // `db` and `clock` must outlive this object.
  Deliveries(Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  // Stores one delivery (or finds the existing row for its source and id) in one
  // transaction. Throws StoreError.
  StoredDelivery insert(const NewDelivery& d);
  // The same for many, in ONE transaction; results in the order given. A delivery id that
  // appears twice in the batch is stored once (the second is a duplicate). Throws StoreError
  // (and then nothing of the batch is stored).
  std::vector<StoredDelivery> insertBatch(const std::vector<NewDelivery>& batch);

  // Queued deliveries with an id above `afterId`, oldest first, at most `limit`.
  std::vector<DeliveryRecord> queued(int limit, int64_t afterId = 0);
  std::optional<DeliveryRecord> get(int64_t id);
  // Newest first.
  std::vector<DeliveryRecord> recent(int limit);
  // Claims queued delivery `id` for the caller's transaction: true when it is still queued
  // and no other runner's transaction holds it (PostgreSQL: the row stays locked until the
  // transaction ends, FOR UPDATE SKIP LOCKED; another runner skips it meanwhile). False when
  // it was finished already or is being dispatched elsewhere: leave it alone.
  // REQUIRES: inside Database::transaction(). Throws StoreError.
  bool claim(int64_t id);
  // Sets the final state ("processed" | "ignored" | "failed") and detail. Joins the
  // caller's transaction when there is one (Database::transaction nests).
  void finish(int64_t id, const std::string& state, const std::string& detail);
  // Deletes the deliveries that were ignored (pings, our own check-run updates echoed back,
  // other branches) and processed before `beforeMs`; they made no run. Returns how many.
  int64_t pruneIgnored(int64_t beforeMs);
  // state -> number of rows (for /metrics).
  std::map<std::string, int64_t> countByState();

 private:
  StoredDelivery insertOne(const NewDelivery& d, int64_t now);
  Database& db_;
  const Clock& clock_;
};

// Group commit of deliveries (see the header comment). Owns one writer thread.
// Thread-safe: submit() may be called from any number of threads at once.
class DeliveryWriter {
 public:
  // `db` may be shared with other writers (the daemon shares it with the scheduler, the
  // stages and the reporter: their transactions queue on the Database's mutex, which is
  // cheaper than SQLite's busy handler between connections); a transaction another user holds
  // delays this writer's next commit. `db` and `clock` must outlive the writer. `onCommitted` (may
  // be empty) is called on the writer thread after each committed batch that stored a new queued
  // row: the scheduler's wake-up; it must not throw. At most `maxBatch` deliveries go into one
  // transaction.
  DeliveryWriter(Database& db, const Clock& clock, std::function<void()> onCommitted,
                 size_t maxBatch = 1024);
  // Stops the thread; deliveries still waiting are failed with StoreError("shutting down").
  ~DeliveryWriter();
  DeliveryWriter(const DeliveryWriter&) = delete;
  DeliveryWriter& operator=(const DeliveryWriter&) = delete;

  // Stores `d` durably and returns its row. Blocks until the batch holding it committed.
  // Throws StoreError when the batch could not be committed (nothing of it is stored) or
  // the writer is stopping.
  StoredDelivery submit(NewDelivery d);

  // Batches committed and deliveries stored so far (for the benchmark and /metrics).
  uint64_t batches() const;
  uint64_t stored() const;

 private:
  struct Pending {
    NewDelivery delivery;
    std::promise<StoredDelivery> result;
  };
  void loop();

  Deliveries deliveries_;
  std::function<void()> onCommitted_;
  size_t maxBatch_;
  mutable Mutex mu_;
  std::condition_variable wake_;
  std::deque<Pending> pending_ GUARDED_BY(mu_);
  bool stopping_ GUARDED_BY(mu_) = false;
  uint64_t batches_ GUARDED_BY(mu_) = 0;
  uint64_t stored_ GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

// Moves WAL checkpoints off the commit path: sets wal_autocheckpoint=0 on `writerDb` (so no
// commit there pays for copying the WAL into the database and its fsync) and runs a PASSIVE
// checkpoint every `interval` on a connection and thread of its own (PASSIVE never blocks
// writers). Stops and joins on destruction.
class WalCheckpointer {
 public:
  WalCheckpointer(Database& writerDb, const std::filesystem::path& file,
                  std::chrono::milliseconds interval = std::chrono::milliseconds(500));
  ~WalCheckpointer();
  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

 private:
  std::unique_ptr<Database> db_;
  std::chrono::milliseconds interval_;
  Mutex mu_;
  std::condition_variable wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace runner::store
