// Per-host deploy locks in the database, so two runner processes (or two runs in one) never
// deploy to the same machine at once (DESIGN.md §6 step 1). A lock is a lease: it is taken
// over when its holder is gone — a runner (runners.h) whose lease expired because its
// heartbeat stopped (killed, crashed, its machine or its connection lost), on any machine, or
// a process on this machine that no longer runs. Other holders (a `switchyard deploy` on
// another machine) are trusted until they release it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runner/core/clock.h"
#include "runner/store/database.h"

namespace runner::store {

struct LockHolder {
  std::string owner;    // a runner id (runners.h) or "<machine>:<pid>:<start-time>"
  std::string purpose;  // what it is doing, for the one who has to wait
  int64_t acquiredAt = 0;
};

class HostLocks {
 public:
  // `owner` identifies this process; the default is this machine, pid and process start time.
  HostLocks(Database& db, const Clock& clock, std::string owner = thisProcess());

  // Takes the lock on `host`. Returns nullopt when this owner now holds it (also when it
  // already did), or the holder that keeps it. Thread-safe; atomic across processes.
  std::optional<LockHolder> tryAcquire(const std::string& host, const std::string& purpose);
  // Releases the lock if this owner holds it; a no-op otherwise.
  void release(const std::string& host);
  std::optional<LockHolder> holder(const std::string& host);
  // Whether this owner holds `host`'s lock now (not taken over since it acquired it).
  bool holds(const std::string& host);

  static std::string thisProcess();
  // True when `owner` names a process on this machine that is gone ("<machine>:<pid>:<start>",
  // or a runner id, which adds ":<random>").
  static bool isDeadLocalOwner(const std::string& owner);

 private:
  Database& db_;
  const Clock& clock_;
  std::string owner_;
};

// Holds a host lock for a scope.
class HostLease {
 public:
  HostLease(HostLocks& locks, std::string host) : locks_(&locks), host_(std::move(host)) {}
  ~HostLease() {
    try {
      if (locks_) locks_->release(host_);
    } catch (...) {  // a destructor never throws; the lock is taken over once we are gone
    }
  }
  HostLease(HostLease&& o) noexcept : locks_(o.locks_), host_(std::move(o.host_)) {
    o.locks_ = nullptr;
  }
  HostLease(const HostLease&) = delete;
  HostLease& operator=(const HostLease&) = delete;

 private:
  HostLocks* locks_;
  std::string host_;
};

}  // namespace runner::store
