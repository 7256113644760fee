// The runner's state in one SQL database (DESIGN.md §8): an embedded SQLite file by default
// (WAL mode, a busy timeout), or a PostgreSQL server shared by several runners (issue 16,
// `database: postgresql://…`). Either way the schema is migrated forward at open from one
// list of migrations (schema.cc). Every table is owned by one repository class in this
// folder (host_locks.h, deployments.h, drv_cache.h, …); other folders never see SQL, sqlite3
// or libpqxx. The engine sits behind the SqlConnection port (sql_connection.h); statements
// are written once, in the SQL both engines share (sql_dialect.h rewrites what differs).
//
// Threading: a Database may be shared by threads; every statement and transaction runs
// under its mutex, so one transaction is in flight per connection. Processes share a SQLite
// file safely through SQLite's own locking (BEGIN IMMEDIATE for writes).
#pragma once

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "runner/core/thread_annotations.h"

namespace runner {
class Redactor;
}

namespace runner::store {

class SqlConnection;

// A value bound to or read from a statement.
using SqlValue = std::variant<std::nullptr_t, int64_t, double, std::string>;

struct SqlRow {
  std::vector<SqlValue> values;
  bool isNull(size_t i) const { return std::holds_alternative<std::nullptr_t>(values.at(i)); }
  int64_t integer(size_t i) const;   // 0 for NULL
  std::string text(size_t i) const;  // "" for NULL
  std::optional<std::string> optText(size_t i) const;
  std::optional<int64_t> optInteger(size_t i) const;
};

enum class Backend { Sqlite, Postgres };

enum class Durability {
  Full,    // synchronous=FULL: a commit survives power loss (fsync per commit)
  Normal,  // synchronous=NORMAL: survives a crash or kill -9 of the process, not power loss
};

class Database {
 public:
  // Opens (creating parent directories and the file) and migrates to the latest schema.
  // Throws StoreError naming the file when it cannot be opened, is not a database, or was
  // written by a newer Switchyard (schema version ahead of this binary's).
  static std::unique_ptr<Database> open(const std::filesystem::path& file,
                                        Durability durability = Durability::Full);
  // Connects to a PostgreSQL server (`url`: postgresql://user@host:port/db, libpq's syntax)
  // and migrates it to the latest schema. Throws StoreError naming the server (without its
  // password) when it cannot connect or the schema is newer than this binary's.
  static std::unique_ptr<Database> connect(const std::string& url);
  // Where the state lives: `database` from the config (a postgresql:// URL) if set, else the
  // SQLite file `defaultFile`. Durability applies to SQLite only.
  static std::unique_ptr<Database> openConfigured(const std::string& database,
                                                  const std::filesystem::path& defaultFile,
                                                  Durability durability = Durability::Full);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  Backend backend() const { return backend_; }
  // The SQLite file, or the server's URL without its password.
  const std::string& location() const { return location_; }
  int schemaVersion();

  // Runs `fn` inside BEGIN (SQLite: IMMEDIATE) … COMMIT; rolls back and rethrows if it throws.
  // Nested calls on the same thread join the outer transaction.
  void transaction(const std::function<void()>& fn);

  // Locks shared by every runner on this database, held until the transaction ends.
  enum class TxnLock : int64_t {
    RunClaims = 1,     // choosing the next run (its per-branch and per-kind rules read all runs)
    OutboxClaims = 2,  // choosing the next outbox row to send (one sender per order key)
  };
  // Waits for and takes `lock` for the current transaction: a second runner's transaction
  // asking for it waits until this one commits, then sees its writes. A no-op on SQLite,
  // whose write transactions exclude each other anyway.
  // REQUIRES: inside transaction(). Throws StoreError.
  void lockForTransaction(TxnLock lock);

  // Runs one statement with positional parameters (?1, ?2, … or ?) and returns all rows.
  // Throws StoreError with the engine's message and the statement's first words. New rows'
  // ids come back through `INSERT … RETURNING id` (both engines).
  std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params = {});
  // The same, for statements that return no rows; returns the number of rows changed.
  int64_t exec(std::string_view sql, const std::vector<SqlValue>& params = {});

  // Every text bound to a statement from now on passes through `redactor` first (a secret
  // in a build's error, a forge that echoes a token): no row the runner writes holds a
  // registered secret. `redactor` must outlive the connection; nullptr turns it off.
  void setRedactor(const Redactor* redactor);

 private:
  Database(std::unique_ptr<SqlConnection> conn, std::string location);
  void migrate();
  // Every statement passes here: redacts bound texts, then runs them on the connection.
  std::vector<SqlRow> run(std::string_view sql, const std::vector<SqlValue>& params,
                          int64_t& changed);
  std::unique_ptr<SqlConnection> conn_;  // calls under mu_
  const Backend backend_;
  const std::string location_;
  RecursiveMutex mu_;
  int txnDepth_ GUARDED_BY(mu_) = 0;
  std::atomic<const Redactor*> redactor_{nullptr};
};

// Convenience for optional values.
inline SqlValue sqlOpt(const std::optional<std::string>& s) {
  return s ? SqlValue(*s) : SqlValue(nullptr);
}
inline SqlValue sqlOpt(const std::optional<int64_t>& v) {
  return v ? SqlValue(*v) : SqlValue(nullptr);
}

}  // namespace runner::store
