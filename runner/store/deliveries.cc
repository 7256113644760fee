#include "runner/store/deliveries.h"

#include "runner/core/error.h"
#include "runner/store/sql_dialect.h"

namespace runner::store {
namespace {

constexpr const char* kColumns =
    "id, source, delivery_id, event_name, received_at, event, state, detail, processed_at";

DeliveryRecord recordFrom(const SqlRow& r) {
  DeliveryRecord d;
  d.id = r.integer(0);
  d.source = r.text(1);
  d.deliveryId = r.text(2);
  d.eventName = r.text(3);
  d.receivedAt = r.integer(4);
  d.eventJson = r.text(5);
  d.state = r.text(6);
  d.detail = r.text(7);
  d.processedAt = r.optInteger(8);
  return d;
}

}  // namespace

StoredDelivery Deliveries::insertOne(const NewDelivery& d, int64_t now) {
  auto rows = db_.query(
      "INSERT INTO deliveries(source, delivery_id, event_name, received_at, event, state, detail, "
      "processed_at, body_sha256) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
      "ON CONFLICT DO NOTHING RETURNING id",
      {d.source, d.deliveryId, d.eventName, now, d.eventJson,
       std::string(d.ignored ? "ignored" : "queued"), d.detail,
       d.ignored ? SqlValue(now) : SqlValue(nullptr), sqlOpt(d.bodySha256)});
  if (!rows.empty()) return {rows[0].integer(0), false, d.ignored ? "ignored" : "queued", d.detail};
  // the same body first (what the signature covers), else the same id
  auto existing = d.bodySha256
                      ? db_.query(
                            "SELECT id, state, detail FROM deliveries WHERE source = ?1 AND "
                            "body_sha256 = ?2",
                            {d.source, *d.bodySha256})
                      : std::vector<SqlRow>{};
  if (existing.empty())
    existing =
        db_.query("SELECT id, state, detail FROM deliveries WHERE source = ?1 AND delivery_id = ?2",
                  {d.source, d.deliveryId});
  if (existing.empty())
    throw StoreError("delivery " + d.deliveryId + " from " + d.source +
                     " was neither inserted nor found");
  return {existing[0].integer(0), true, existing[0].text(1), existing[0].text(2)};
}

StoredDelivery Deliveries::insert(const NewDelivery& d) {
  StoredDelivery out;
  db_.transaction([&] { out = insertOne(d, clock_.nowMillis()); });
  return out;
}

std::vector<StoredDelivery> Deliveries::insertBatch(const std::vector<NewDelivery>& batch) {
  std::vector<StoredDelivery> out;
  out.reserve(batch.size());
  int64_t now = clock_.nowMillis();
  db_.transaction([&] {
    out.clear();
    for (const auto& d : batch) out.push_back(insertOne(d, now));
  });
  return out;
}

std::vector<DeliveryRecord> Deliveries::queued(int limit, int64_t afterId) {
  std::vector<DeliveryRecord> out;
  for (const auto& r :
       db_.query(std::string("SELECT ") + kColumns +
                     " FROM deliveries WHERE state = 'queued' AND id > ?2 ORDER BY id LIMIT ?1",
                 {int64_t{limit}, afterId}))
    out.push_back(recordFrom(r));
  return out;
}

std::optional<DeliveryRecord> Deliveries::get(int64_t id) {
  auto rows = db_.query(std::string("SELECT ") + kColumns + " FROM deliveries WHERE id = ?", {id});
  if (rows.empty()) return std::nullopt;
  return recordFrom(rows[0]);
}

std::vector<DeliveryRecord> Deliveries::recent(int limit) {
  std::vector<DeliveryRecord> out;
  for (const auto& r :
       db_.query(std::string("SELECT ") + kColumns + " FROM deliveries ORDER BY id DESC LIMIT ?",
                 {int64_t{limit}}))
    out.push_back(recordFrom(r));
  return out;
}

bool Deliveries::claim(int64_t id) {
  return !db_.query("SELECT id FROM deliveries WHERE id = ?1 AND state = 'queued'" +
                        std::string(claimRowsSuffix(db_.backend())),
                    {id})
              .empty();
}

void Deliveries::finish(int64_t id, const std::string& state, const std::string& detail) {
  db_.exec("UPDATE deliveries SET state = ?1, detail = ?2, processed_at = ?3 WHERE id = ?4",
           {state, detail, clock_.nowMillis(), id});
}

int64_t Deliveries::pruneIgnored(int64_t beforeMs) {
  return db_.exec(
      "DELETE FROM deliveries WHERE state = 'ignored' AND processed_at < ?1 AND id NOT IN "
      "(SELECT delivery FROM runs WHERE delivery IS NOT NULL)",
      {beforeMs});
}

std::map<std::string, int64_t> Deliveries::countByState() {
  std::map<std::string, int64_t> out;
  for (const auto& r : db_.query("SELECT state, COUNT(*) FROM deliveries GROUP BY state"))
    out[r.text(0)] = r.integer(1);
  return out;
}

// ---------------------------------------------------------------------------------------------

DeliveryWriter::DeliveryWriter(Database& db, const Clock& clock, std::function<void()> onCommitted,
                               size_t maxBatch)
    : deliveries_(db, clock),
      onCommitted_(std::move(onCommitted)),
      maxBatch_(maxBatch == 0 ? 1 : maxBatch),
      thread_([this] { loop(); }) {}

DeliveryWriter::~DeliveryWriter() {
  {
    MutexLock lk(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

StoredDelivery DeliveryWriter::submit(NewDelivery d) {
  std::future<StoredDelivery> result;
  {
    MutexLock lk(mu_);
    if (stopping_) throw StoreError("the delivery writer is shutting down");
    pending_.push_back(Pending{std::move(d), {}});
    result = pending_.back().result.get_future();
  }
  wake_.notify_one();
  return result.get();
}

uint64_t DeliveryWriter::batches() const {
  MutexLock lk(mu_);
  return batches_;
}
uint64_t DeliveryWriter::stored() const {
  MutexLock lk(mu_);
  return stored_;
}

void DeliveryWriter::loop() {
  for (;;) {
    std::vector<Pending> batch;
    {
      MutexLock lk(mu_);
      lk.wait(wake_, [&]() REQUIRES(mu_) { return stopping_ || !pending_.empty(); });
      if (stopping_) {
        for (auto& p : pending_)
          p.result.set_exception(
              std::make_exception_ptr(StoreError("the delivery writer is shutting down")));
        pending_.clear();
        return;
      }
      while (!pending_.empty() && batch.size() < maxBatch_) {
        batch.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
    }
    std::vector<NewDelivery> items;
    items.reserve(batch.size());
    for (auto& p : batch) items.push_back(p.delivery);
    bool anyQueued = false;
    try {
      auto stored = deliveries_.insertBatch(items);
      for (size_t i = 0; i < batch.size(); ++i)
        anyQueued |= !stored[i].duplicate && stored[i].state == "queued";
      {
        MutexLock lk(mu_);
        ++batches_;
        stored_ += batch.size();
      }
      for (size_t i = 0; i < batch.size(); ++i) batch[i].result.set_value(stored[i]);
    } catch (...) {  // the batch failed as a whole: every waiter gets the error
      auto e = std::current_exception();
      for (auto& p : batch) p.result.set_exception(e);
      continue;
    }
    if (anyQueued && onCommitted_) onCommitted_();
  }
}

// ---------------------------------------------------------------------------------------------

WalCheckpointer::WalCheckpointer(Database& writerDb, const std::filesystem::path& file,
                                 std::chrono::milliseconds interval)
    : db_(Database::open(file, Durability::Full)), interval_(interval) {
  writerDb.query("PRAGMA wal_autocheckpoint=0");
  thread_ = std::thread([this] {
    MutexLock lk(mu_);
    while (!stopping_) {
      lk.waitFor(wake_, interval_, [&]() REQUIRES(mu_) { return stopping_; });
      if (stopping_) break;
      lk.unlock();
      try {
        db_->query("PRAGMA wal_checkpoint(PASSIVE)");
      } catch (const std::exception&) {  // busy or failing: the next round tries again
      }
      lk.lock();
    }
  });
}

WalCheckpointer::~WalCheckpointer() {
  {
    MutexLock lk(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace runner::store
