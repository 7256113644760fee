// The port under Database: one connection to one SQL engine (SQLite embedded, PostgreSQL over
// the network). Database (database.h) owns one, serialises its callers with a mutex and keeps
// the transaction depth; the adapters only run statements. Internal to runner/store: no other
// folder includes this header, and each adapter's C/C++ library appears in its .cc alone.
//
// SQL reaching an adapter is written once, in the dialect both engines share; what differs
// (placeholders, column types of the schema, how the schema version is kept) is rewritten in
// sql_dialect.h, the one place that knows the differences.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "runner/store/database.h"

namespace runner::store {

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual Backend backend() const = 0;

  // Runs one statement with positional parameters (?1, ?2, … or ?) and returns its rows;
  // `changed` receives the number of rows the statement inserted, updated or deleted.
  // Throws StoreError with the engine's message and the statement's first words.
  virtual std::vector<SqlRow> run(std::string_view sql, const std::vector<SqlValue>& params,
                                  int64_t& changed) = 0;
  // Runs a script of several statements without parameters (a migration).
  virtual void runScript(std::string_view sql) = 0;

  // BEGIN (SQLite: IMMEDIATE, taking the write lock up front) / COMMIT; both throw
  // StoreError. rollback() never throws: it is called while another error travels up.
  virtual void begin() = 0;
  virtual void commit() = 0;
  virtual void rollback() noexcept = 0;

  // The schema version (number of migrations applied) and its update, inside the
  // migrating transaction. lockSchema() keeps two processes from migrating at once.
  virtual int schemaVersion() = 0;
  virtual void setSchemaVersion(int version) = 0;
  virtual void lockSchema() = 0;
  // Waits until no other connection's transaction holds `key`, then holds it until this
  // transaction ends (PostgreSQL: pg_advisory_xact_lock). SQLite: nothing to do, BEGIN
  // IMMEDIATE already excludes every other writer.
  virtual void lockForTransaction(int64_t key) = 0;
};

std::unique_ptr<SqlConnection> openSqliteConnection(const std::filesystem::path& file,
                                                    Durability durability);
// `url`: postgresql://user[:password]@host[:port]/dbname[?param=value…] (libpq's syntax).
std::unique_ptr<SqlConnection> openPostgresConnection(const std::string& url);

// The first words of a statement, for error messages.
std::string firstWords(std::string_view sql);

}  // namespace runner::store
