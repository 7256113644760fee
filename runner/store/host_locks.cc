#include "runner/store/host_locks.h"

#include <cerrno>
#include <fstream>
#include <signal.h>
#include <sstream>
#include <unistd.h>

#include "runner/core/text.h"
#include "runner/store/runners.h"

namespace runner::store {
namespace {

std::string machineName() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof buf - 1) != 0) return "unknown";
  return buf;
}

// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot; "" if unreadable.
std::string processStartTime(long pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  for (int i = 3; i <= 22 && rest >> field; ++i) {
    if (i == 22) return field;
  }
  return "";
}

}  // namespace

HostLocks::HostLocks(Database& db, const Clock& clock, std::string owner)
    : db_(db), clock_(clock), owner_(std::move(owner)) {}

std::string HostLocks::thisProcess() {
  long pid = ::getpid();
  return machineName() + ":" + std::to_string(pid) + ":" + processStartTime(pid);
}

bool HostLocks::isDeadLocalOwner(const std::string& owner) {
  auto parts = split(owner, ':');
  if ((parts.size() != 3 && parts.size() != 4) || parts[0] != machineName()) return false;
  long pid = std::strtol(parts[1].c_str(), nullptr, 10);
  if (pid <= 0) return false;
  if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
  // The pid exists: it is the holder only if it is the same process (not a reused pid).
  return processStartTime(pid) != parts[2];
}

std::optional<LockHolder> HostLocks::tryAcquire(const std::string& host,
                                                const std::string& purpose) {
  std::optional<LockHolder> blocker;
  db_.transaction([&] {
    const int64_t now = clock_.nowMillis();
    auto h = holder(host);
    if (h && h->owner == owner_) {
      db_.exec("UPDATE host_locks SET purpose = ? WHERE host = ?", {purpose, host});
      return;
    }
    if (h && !Runners(db_, clock_).isGone(h->owner)) {
      blocker = h;
      return;
    }
    // Free, or its holder is gone. Both statements change nothing when another runner took
    // the lock since it was read (PostgreSQL's read committed: the row is re-checked once the
    // other transaction ends; SQLite: BEGIN IMMEDIATE leaves no other writer anyway).
    int64_t taken =
        h ? db_.exec(
                "UPDATE host_locks SET owner = ?, purpose = ?, acquired_at = ? "
                "WHERE host = ? AND owner = ?",
                {owner_, purpose, now, host, h->owner})
          : db_.exec(
                "INSERT INTO host_locks(host, owner, purpose, acquired_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(host) DO NOTHING",
                {host, owner_, purpose, now});
    if (taken == 0)
      blocker = holder(host).value_or(LockHolder{"another runner", "(released just now)", now});
  });
  return blocker;
}

void HostLocks::release(const std::string& host) {
  db_.exec("DELETE FROM host_locks WHERE host = ? AND owner = ?", {host, owner_});
}

std::optional<LockHolder> HostLocks::holder(const std::string& host) {
  auto rows =
      db_.query("SELECT owner, purpose, acquired_at FROM host_locks WHERE host = ?", {host});
  if (rows.empty()) return std::nullopt;
  return LockHolder{rows[0].text(0), rows[0].text(1), rows[0].integer(2)};
}

bool HostLocks::holds(const std::string& host) {
  auto h = holder(host);
  return h && h->owner == owner_;
}

}  // namespace runner::store
