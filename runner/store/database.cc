#include "runner/store/database.h"

#include <sqlite3.h>

#include "runner/core/c_handle.h"
#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/store/schema.h"

namespace fs = std::filesystem;

namespace runner::store {
namespace {

using DbPtr = CHandle<sqlite3, sqlite3_close_v2>;
using StmtPtr = CHandle<sqlite3_stmt, sqlite3_finalize>;

std::string firstWords(std::string_view sql) {
  size_t i = 0;
  while (i < sql.size() && (sql[i] == ' ' || sql[i] == '\n')) ++i;
  std::string_view rest = sql.substr(i, 48);
  std::string out(rest.substr(0, rest.find('\n')));
  return out;
}

// The one check for SQLite results (STYLE.md P6).
void checkSqlite(sqlite3* db, int rc, std::string_view doing) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  throw StoreError(std::string(doing) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) +
                   " (sqlite " + std::to_string(rc) + ")");
}

}  // namespace

int64_t SqlRow::integer(size_t i) const {
  const auto& v = values.at(i);
  if (auto* p = std::get_if<int64_t>(&v)) return *p;
  if (auto* d = std::get_if<double>(&v)) return static_cast<int64_t>(*d);
  return 0;
}
std::string SqlRow::text(size_t i) const {
  const auto& v = values.at(i);
  if (auto* s = std::get_if<std::string>(&v)) return *s;
  if (auto* p = std::get_if<int64_t>(&v)) return std::to_string(*p);
  return "";
}
std::optional<std::string> SqlRow::optText(size_t i) const {
  if (isNull(i)) return std::nullopt;
  return text(i);
}
std::optional<int64_t> SqlRow::optInteger(size_t i) const {
  if (isNull(i)) return std::nullopt;
  return integer(i);
}

struct Database::Impl {
  DbPtr db;
  // Prepared statements by SQL text: each statement is prepared once per connection.
  std::vector<std::pair<std::string, StmtPtr>> cache;

  sqlite3_stmt* prepare(std::string_view sql) {
    for (auto& [text, stmt] : cache)
      if (text == sql) return stmt.get();
    StmtPtr stmt;
    checkSqlite(db.get(),
                sqlite3_prepare_v3(db.get(), sql.data(), static_cast<int>(sql.size()),
                                   SQLITE_PREPARE_PERSISTENT, Out(stmt), nullptr),
                "preparing '" + firstWords(sql) + "'");
    cache.emplace_back(std::string(sql), std::move(stmt));
    return cache.back().second.get();
  }
};

Database::Database(std::unique_ptr<Impl> impl, fs::path file)
    : impl_(std::move(impl)), file_(std::move(file)) {}
Database::~Database() = default;

std::unique_ptr<Database> Database::open(const fs::path& file, Durability durability) {
  std::error_code ec;
  if (file.has_parent_path()) fs::create_directories(file.parent_path(), ec);
  auto impl = std::make_unique<Impl>();
  int rc =
      sqlite3_open_v2(file.c_str(), Out(impl->db),
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = impl->db ? sqlite3_errmsg(impl->db.get()) : sqlite3_errstr(rc);
    throw StoreError("cannot open database " + file.string() + ": " + msg);
  }
  sqlite3_busy_timeout(impl->db.get(), 10000);
  std::unique_ptr<Database> db(new Database(std::move(impl), file));
  try {
    db->query("PRAGMA journal_mode=WAL");
    db->exec(durability == Durability::Full ? "PRAGMA synchronous=FULL"
                                            : "PRAGMA synchronous=NORMAL");
    db->exec("PRAGMA foreign_keys=ON");
    db->migrate();
  } catch (Error& e) {
    e.addContext("while opening " + file.string());
    throw;
  }
  return db;
}

int Database::schemaVersion() {
  return static_cast<int>(query("PRAGMA user_version").at(0).integer(0));
}

void Database::migrate() {
  const auto& ms = migrations();
  transaction([&] {
    int version = schemaVersion();
    if (version > static_cast<int>(ms.size()))
      throw StoreError("database schema version " + std::to_string(version) +
                       " is newer than this switchyard supports (" + std::to_string(ms.size()) +
                       ")");
    for (size_t i = static_cast<size_t>(version); i < ms.size(); ++i) {
      std::string sql(ms[i]);
      char* err = nullptr;
      int rc = sqlite3_exec(impl_->db.get(), sql.c_str(), nullptr, nullptr, &err);
      if (rc != SQLITE_OK) {
        std::string msg = err ? err : "unknown";
        sqlite3_free(err);
        throw StoreError("migration " + std::to_string(i + 1) + " failed: " + msg);
      }
      exec("PRAGMA user_version=" + std::to_string(i + 1));
    }
  });
}

void Database::transaction(const std::function<void()>& fn) {
  RecursiveMutexLock lk(mu_);
  if (txnDepth_ > 0) {
    ++txnDepth_;
    try {
      fn();
    } catch (...) {
      --txnDepth_;
      throw;
    }
    --txnDepth_;
    return;
  }
  exec("BEGIN IMMEDIATE");
  txnDepth_ = 1;
  try {
    fn();
    exec("COMMIT");
    txnDepth_ = 0;
  } catch (...) {
    txnDepth_ = 0;
    sqlite3_exec(impl_->db.get(), "ROLLBACK", nullptr, nullptr, nullptr);  // never throws
    throw;
  }
}

std::vector<SqlRow> Database::query(std::string_view sql, const std::vector<SqlValue>& params) {
  RecursiveMutexLock lk(mu_);
  sqlite3* db = impl_->db.get();
  sqlite3_stmt* st = impl_->prepare(sql);
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  for (size_t i = 0; i < params.size(); ++i) {
    int idx = static_cast<int>(i + 1);
    int rc = std::visit(
        [&](const auto& v) -> int {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::nullptr_t>)
            return sqlite3_bind_null(st, idx);
          else if constexpr (std::is_same_v<T, int64_t>)
            return sqlite3_bind_int64(st, idx, v);
          else if constexpr (std::is_same_v<T, double>)
            return sqlite3_bind_double(st, idx, v);
          else if (const Redactor* r = redactor_.load()) {
            const std::string text = r->apply(v);
            return sqlite3_bind_text(st, idx, text.data(), static_cast<int>(text.size()),
                                     SQLITE_TRANSIENT);
          } else
            return sqlite3_bind_text(st, idx, v.data(), static_cast<int>(v.size()),
                                     SQLITE_TRANSIENT);
        },
        params[i]);
    checkSqlite(db, rc, "binding parameter " + std::to_string(idx));
  }
  std::vector<SqlRow> rows;
  for (;;) {
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) break;
    if (rc != SQLITE_ROW) {
      sqlite3_reset(st);
      checkSqlite(db, rc, "running '" + firstWords(sql) + "'");
    }
    SqlRow row;
    int n = sqlite3_column_count(st);
    row.values.reserve(static_cast<size_t>(n));
    for (int c = 0; c < n; ++c) {
      switch (sqlite3_column_type(st, c)) {
        case SQLITE_NULL:
          row.values.emplace_back(nullptr);
          break;
        case SQLITE_INTEGER:
          row.values.emplace_back(static_cast<int64_t>(sqlite3_column_int64(st, c)));
          break;
        case SQLITE_FLOAT:
          row.values.emplace_back(sqlite3_column_double(st, c));
          break;
        default: {
          const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(st, c));
          row.values.emplace_back(
              std::string(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, c))));
        }
      }
    }
    rows.push_back(std::move(row));
  }
  sqlite3_reset(st);
  return rows;
}

int64_t Database::exec(std::string_view sql, const std::vector<SqlValue>& params) {
  RecursiveMutexLock lk(mu_);
  query(sql, params);
  return sqlite3_changes64(impl_->db.get());
}

void Database::setRedactor(const Redactor* redactor) { redactor_ = redactor; }

int64_t Database::lastInsertId() {
  RecursiveMutexLock lk(mu_);
  return sqlite3_last_insert_rowid(impl_->db.get());
}

}  // namespace runner::store
