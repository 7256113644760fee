#include "tests/support/postgres_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "runner/os/files.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;

namespace tests {
namespace {

constexpr const char* kUser = "switchyard-pg";

// Debian keeps the server binaries per major version; the newest wins.
fs::path findBinDir() {
  fs::path best;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/usr/lib/postgresql", ec))
    if (fs::exists(e.path() / "bin" / "initdb") &&
        e.path().filename() > best.parent_path().filename())
      best = e.path() / "bin";
  return best;
}

// A port that was free a moment ago (the kernel picks it).
int freePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  close(fd);
  return port;
}

}  // namespace

PostgresServer::PostgresServer(Options options) { running_ = start(options); }

bool PostgresServer::start(Options options) {
  binDir_ = findBinDir();
  if (binDir_.empty()) {
    why_ =
        "postgresql not installed (no /usr/lib/postgresql/*/bin/initdb; Debian package "
        "postgresql)";
    return false;
  }
  const bool root = geteuid() == 0;
  if (root && getpwnam(kUser) == nullptr) {
    auto r = run("/usr/sbin/useradd", {"--system", "--no-create-home", "--home-dir", "/nonexistent",
                                       "--shell", "/usr/sbin/nologin", kUser});
    if (r.exitStatus != 0 && getpwnam(kUser) == nullptr) {
      why_ = "useradd " + std::string(kUser) + " failed: " + r.errTail;
      return false;
    }
  }
  char tmpl[] = "/tmp/switchyard-pg-XXXXXX";
  if (!mkdtemp(tmpl)) {
    why_ = "mkdtemp failed";
    return false;
  }
  dir_ = tmpl;
  // as the server's user: runuser when we are root, directly otherwise
  auto asUser = [&](const fs::path& program, std::vector<std::string> args) {
    if (!root) return run(program.string(), args);
    args.insert(args.begin(), {"-u", kUser, "--", program.string()});
    return run("/usr/sbin/runuser", args);
  };
  if (root) {
    const passwd* pw = getpwnam(kUser);
    if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      why_ = "chown " + dir_.string() + " failed";
      return false;
    }
  }
  port_ = freePort();
  auto init = asUser(binDir_ / "initdb", {"-D", (dir_ / "data").string(), "-U", "postgres", "-A",
                                          "trust", "-E", "UTF8", "--locale=C", "--no-sync"});
  if (init.exitStatus != 0) {
    why_ = "initdb failed: " + init.errTail;
    return false;
  }
  std::string serverOptions = "-p " + std::to_string(port_) + " -k " + dir_.string() +
                              " -c listen_addresses=127.0.0.1 -c max_connections=200";
  if (!options.durable) serverOptions += " -c fsync=off -c full_page_writes=off";
  auto started = asUser(binDir_ / "pg_ctl",
                        {"-D", (dir_ / "data").string(), "-l", (dir_ / "server.log").string(), "-w",
                         "-t", "60", "-o", serverOptions, "start"});
  if (started.exitStatus != 0) {
    std::string log;
    try {
      log = runner::os::readFile(dir_ / "server.log");
    } catch (const std::exception&) {
    }
    why_ = "pg_ctl start failed: " + started.errTail + started.out + log;
    return false;
  }
  return true;
}

PostgresServer::~PostgresServer() {
  if (running_) {
    std::vector<std::string> args = {"-D",  (dir_ / "data").string(), "-m", "immediate", "-w",
                                     "stop"};
    if (geteuid() == 0) {
      args.insert(args.begin(), {"-u", kUser, "--", (binDir_ / "pg_ctl").string()});
      run("/usr/sbin/runuser", args);
    } else {
      run((binDir_ / "pg_ctl").string(), args);
    }
  }
  std::error_code ec;
  if (!dir_.empty()) fs::remove_all(dir_, ec);
}

PostgresServer& PostgresServer::shared() {
  static PostgresServer server(Options{});
  return server;
}

std::string PostgresServer::createDatabase() {
  REQUIRE(running_);
  std::string name = "t" + std::to_string(getpid()) + "_" + std::to_string(++databases_);
  auto r = run((binDir_ / "createdb").string(),
               {"-h", "127.0.0.1", "-p", std::to_string(port_), "-U", "postgres", name});
  INFO("createdb: " << r.errTail);
  REQUIRE(r.exitStatus == 0);
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + name;
}

}  // namespace tests
