// The runner's state in one SQLite database (DESIGN.md §8): WAL mode, a busy timeout, and a
// schema version migrated forward at open (PRAGMA user_version). Every table is owned by
// one repository class in this folder (host_locks.h, deployments.h, drv_cache.h, …); other
// folders never see SQL or sqlite3.
//
// Threading: a Database may be shared by threads; every statement and transaction runs
// under its mutex, so one transaction is in flight per connection. Processes share the file
// safely through SQLite's own locking (BEGIN IMMEDIATE for writes).
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
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  const std::filesystem::path& file() const { return file_; }
  int schemaVersion();

  // Runs `fn` inside BEGIN IMMEDIATE … COMMIT; rolls back and rethrows if it throws.
  // Nested calls on the same thread join the outer transaction.
  void transaction(const std::function<void()>& fn);

  // Runs one statement with positional parameters (?1, ?2, … or ?) and returns all rows.
  // Throws StoreError with SQLite's message and the statement's first words.
  std::vector<SqlRow> query(std::string_view sql, const std::vector<SqlValue>& params = {});
  // The same, for statements that return no rows; returns the number of rows changed.
  int64_t exec(std::string_view sql, const std::vector<SqlValue>& params = {});
  int64_t lastInsertId();

  // Every text bound to a statement from now on passes through `redactor` first (a secret
  // in a build's error, a forge that echoes a token): no row the runner writes holds a
  // registered secret. `redactor` must outlive the connection; nullptr turns it off.
  void setRedactor(const Redactor* redactor);

 private:
  struct Impl;
  explicit Database(std::unique_ptr<Impl> impl, std::filesystem::path file);
  void migrate();
  std::unique_ptr<Impl> impl_;
  std::filesystem::path file_;
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
