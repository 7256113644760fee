// The SQLite adapter of SqlConnection: WAL mode, a busy timeout, prepared statements cached
// by their text, the schema version in PRAGMA user_version.
#include <sqlite3.h>

#include "runner/core/c_handle.h"
#include "runner/core/error.h"
#include "runner/store/sql_connection.h"

namespace fs = std::filesystem;

namespace runner::store {
namespace {

using DbPtr = CHandle<sqlite3, sqlite3_close_v2>;
using StmtPtr = CHandle<sqlite3_stmt, sqlite3_finalize>;

// The one check for SQLite results (STYLE.md P6).
void checkSqlite(sqlite3* db, int rc, std::string_view doing) {
  if (rc == SQLITE_OK || rc == SQLITE_ROW || rc == SQLITE_DONE) return;
  throw StoreError(std::string(doing) + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) +
                   " (sqlite " + std::to_string(rc) + ")");
}

class SqliteConnection final : public SqlConnection {
 public:
  explicit SqliteConnection(DbPtr db) : db_(std::move(db)) {}

  Backend backend() const override { return Backend::Sqlite; }

  std::vector<SqlRow> run(std::string_view sql, const std::vector<SqlValue>& params,
                          int64_t& changed) override {
    sqlite3* db = db_.get();
    sqlite3_stmt* st = prepare(sql);
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
            else
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
      rows.push_back(rowOf(st));
    }
    sqlite3_reset(st);
    changed = sqlite3_changes64(db);
    return rows;
  }

  void runScript(std::string_view sql) override {
    std::string text(sql);
    char* err = nullptr;
    int rc = sqlite3_exec(db_.get(), text.c_str(), nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
      std::string msg = err ? err : sqlite3_errstr(rc);
      sqlite3_free(err);
      throw StoreError(msg + " (sqlite " + std::to_string(rc) + ")");
    }
  }

  void begin() override { simple("BEGIN IMMEDIATE"); }
  void commit() override { simple("COMMIT"); }
  void rollback() noexcept override {
    sqlite3_exec(db_.get(), "ROLLBACK", nullptr, nullptr, nullptr);
  }

  int schemaVersion() override {
    int64_t changed = 0;
    return static_cast<int>(run("PRAGMA user_version", {}, changed).at(0).integer(0));
  }
  void setSchemaVersion(int version) override {
    simple("PRAGMA user_version=" + std::to_string(version));
  }
  void lockSchema() override {}  // BEGIN IMMEDIATE already holds the file's write lock
  void lockForTransaction(int64_t) override {}

 private:
  void simple(const std::string& sql) {
    int64_t changed = 0;
    run(sql, {}, changed);
  }

  sqlite3_stmt* prepare(std::string_view sql) {
    for (auto& [text, stmt] : cache_)
      if (text == sql) return stmt.get();
    StmtPtr stmt;
    checkSqlite(db_.get(),
                sqlite3_prepare_v3(db_.get(), sql.data(), static_cast<int>(sql.size()),
                                   SQLITE_PREPARE_PERSISTENT, Out(stmt), nullptr),
                "preparing '" + firstWords(sql) + "'");
    cache_.emplace_back(std::string(sql), std::move(stmt));
    return cache_.back().second.get();
  }

  static SqlRow rowOf(sqlite3_stmt* st) {
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
    return row;
  }

  DbPtr db_;
  // Prepared statements by SQL text: each statement is prepared once per connection.
  std::vector<std::pair<std::string, StmtPtr>> cache_;
};

}  // namespace

std::unique_ptr<SqlConnection> openSqliteConnection(const fs::path& file, Durability durability) {
  DbPtr db;
  int rc =
      sqlite3_open_v2(file.c_str(), Out(db),
                      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc);
    throw StoreError("cannot open database " + file.string() + ": " + msg);
  }
  sqlite3_busy_timeout(db.get(), 10000);
  auto conn = std::make_unique<SqliteConnection>(std::move(db));
  try {
    int64_t changed = 0;
    conn->run("PRAGMA journal_mode=WAL", {}, changed);
    conn->run(
        durability == Durability::Full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL",
        {}, changed);
    conn->run("PRAGMA foreign_keys=ON", {}, changed);
  } catch (Error& e) {
    e.addContext("while opening " + file.string());
    throw;
  }
  return conn;
}

}  // namespace runner::store
