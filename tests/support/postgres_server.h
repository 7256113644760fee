// A real, throwaway PostgreSQL server for tests and benches (issue 16): Debian's `initdb` in
// a temporary directory, run as a non-root user (PostgreSQL refuses root; the user
// `switchyard-pg` is created when the tests run as root), listening on its own free port on
// loopback only, with trust authentication for that loopback. Stopped (pg_ctl stop -m
// immediate) and its directory removed when the object goes; a test that needs one and finds
// no PostgreSQL binaries says SKIPPED instead of failing (see skipReason()).
#pragma once

#include <filesystem>
#include <memory>
#include <string>

namespace tests {

class PostgresServer {
 public:
  struct Options {
    bool durable = false;  // fsync on (benches); tests run with fsync off
  };
  // Starts a server. Never throws: on failure, available() is false and skipReason() says
  // why (no binaries: "postgresql not installed"; anything else: the failing command).
  explicit PostgresServer(Options options);
  ~PostgresServer();
  PostgresServer(const PostgresServer&) = delete;
  PostgresServer& operator=(const PostgresServer&) = delete;

  // One server per test binary, started on first use, stopped at exit.
  static PostgresServer& shared();

  bool available() const { return running_; }
  const std::string& skipReason() const { return why_; }
  int port() const { return port_; }

  // Creates an empty database and returns its postgresql:// URL.
  // REQUIRES: available(). Fails the current test (REQUIRE) if createdb fails.
  std::string createDatabase();

 private:
  bool start(Options options);
  std::filesystem::path binDir_;
  std::filesystem::path dir_;
  int port_ = 0;
  bool running_ = false;
  int databases_ = 0;
  std::string why_;
};

}  // namespace tests
