// The store's tests run against both engines (issue 16): TEMPLATE_TEST_CASE(…, SqliteBackend,
// PostgresBackend) gives each case twice, and each case opens its database through the
// backend object. PostgresBackend uses the binary's shared throwaway server
// (postgres_server.h) with a fresh database per object; without PostgreSQL installed its
// cases say SKIPPED (SKIP_IF_UNAVAILABLE) while the SQLite ones still run.
#pragma once

#include <memory>
#include <string>

#include <catch2/catch.hpp>

#include "runner/os/files.h"
#include "runner/store/database.h"
#include "tests/support/postgres_server.h"

namespace tests {

class SqliteBackend {
 public:
  static constexpr const char* kName = "sqlite";
  bool available() const { return true; }
  std::string skipReason() const { return {}; }
  // A new connection to this object's database (the same file each time).
  std::unique_ptr<runner::store::Database> open(
      runner::store::Durability d = runner::store::Durability::Full) {
    return runner::store::Database::open(dir_.path() / "state" / "switchyard.db", d);
  }
  // What `database:` in the config would say (empty: the SQLite file).
  std::string configValue() const { return {}; }
  // The database file (for a test that lays out an old schema itself).
  std::filesystem::path file() const { return dir_.path() / "state" / "switchyard.db"; }

 private:
  runner::os::TempDir dir_;
};

class PostgresBackend {
 public:
  static constexpr const char* kName = "postgresql";
  PostgresBackend() {
    if (PostgresServer::shared().available()) url_ = PostgresServer::shared().createDatabase();
  }
  bool available() const { return PostgresServer::shared().available(); }
  std::string skipReason() const { return PostgresServer::shared().skipReason(); }
  std::unique_ptr<runner::store::Database> open(
      runner::store::Durability = runner::store::Durability::Full) {
    return runner::store::Database::connect(url_);
  }
  std::string configValue() const { return url_; }

 private:
  std::string url_;
};

}  // namespace tests

// Ends a test case early, visibly skipped, when its backend cannot run here.
#define SKIP_IF_UNAVAILABLE(backend)                                          \
  do {                                                                        \
    if (!(backend).available()) {                                             \
      WARN("SKIPPED: " << (backend).kName << ": " << (backend).skipReason()); \
      return;                                                                 \
    }                                                                         \
  } while (0)
