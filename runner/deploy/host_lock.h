// The per-host deploy lock as the deployer uses it (DESIGN.md §6 step 1): the database lock
// (store::HostLocks: two runner processes never deploy one host at once, and a crashed
// holder's lock is taken over) plus an in-process half, because the database lock belongs to
// the whole process — two runs inside one daemon would otherwise both "hold" it.
//
// A busy host is waited for up to a bound, then refused with the holder's purpose.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <variant>

#include "runner/core/clock.h"
#include "runner/core/thread_annotations.h"
#include "runner/store/host_locks.h"

namespace runner::deploy {

class HostLockGuard {
 public:
  // `locks` and `clock` must outlive this. Use one HostLockGuard per process.
  HostLockGuard(store::HostLocks& locks, const Clock& clock);

  // Holds one host's lock; releasing it (destruction) wakes local waiters.
  class Lease {
   public:
    Lease(Lease&& o) noexcept;
    Lease& operator=(Lease&&) = delete;
    Lease(const Lease&) = delete;
    ~Lease();

   private:
    friend class HostLockGuard;
    Lease(HostLockGuard* guard, std::string host) : guard_(guard), host_(std::move(host)) {}
    HostLockGuard* guard_;
    std::string host_;
  };

  struct Busy {
    store::LockHolder holder;
    bool sameProcess = false;  // held by another deploy in this process
  };

  // Takes `host`'s lock for `purpose`, waiting up to `wait` while someone else holds it
  // (the database is polled every 200 ms). Returns the Lease, or who holds the lock.
  // Thread-safe. Throws StoreError when the database fails.
  std::variant<Lease, Busy> acquire(const std::string& host, const std::string& purpose,
                                    std::chrono::milliseconds wait);
  // Why a lease this process holds on `host` is no longer its own — another runner took the
  // lock over after this runner's lease expired, or the database cannot say — or nullopt
  // while it still is. A deploy asks right before it changes the host. Never throws.
  std::optional<std::string> lost(const std::string& host) noexcept;

 private:
  void release(const std::string& host) noexcept;

  store::HostLocks& locks_;
  const Clock& clock_;
  Mutex mu_;
  std::condition_variable released_;
  std::map<std::string, store::LockHolder> local_ GUARDED_BY(mu_);
  // Database rows whose release failed (busy, disk full): released again by every later
  // acquire and release, so other processes are not locked out until this one exits.
  std::set<std::string> unreleased_ GUARDED_BY(mu_);
  void retryUnreleased() noexcept;
};

// "held by <owner> since 2026-11-25T19:20:00Z: deploying 1234abcd from alice/infra"
std::string describeHolder(const HostLockGuard::Busy& busy);

}  // namespace runner::deploy
