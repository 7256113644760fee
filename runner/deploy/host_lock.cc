#include "runner/deploy/host_lock.h"

#include <thread>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::deploy {

HostLockGuard::HostLockGuard(store::HostLocks& locks, const Clock& clock)
    : locks_(locks), clock_(clock) {}

HostLockGuard::Lease::Lease(Lease&& o) noexcept : guard_(o.guard_), host_(std::move(o.host_)) {
  o.guard_ = nullptr;
}

HostLockGuard::Lease::~Lease() {
  if (guard_) guard_->release(host_);
}

std::variant<HostLockGuard::Lease, HostLockGuard::Busy> HostLockGuard::acquire(
    const std::string& host, const std::string& purpose, std::chrono::milliseconds wait) {
  using namespace std::chrono;
  const auto deadline = clock_.steadyNow() + wait;
  retryUnreleased();
  // The in-process half first: one deploy per host inside this process.
  {
    MutexLock lk(mu_);
    while (local_.count(host)) {
      auto now = clock_.steadyNow();
      if (now >= deadline) return Busy{local_.at(host), true};
      lk.waitFor(released_, std::min<steady_clock::duration>(deadline - now, milliseconds(200)));
    }
    local_[host] = store::LockHolder{store::HostLocks::thisProcess(), purpose, clock_.nowMillis()};
  }
  // Then the database, shared with other processes.
  for (;;) {
    std::optional<store::LockHolder> holder;
    try {
      holder = locks_.tryAcquire(host, purpose);
    } catch (...) {
      release(host);
      throw;
    }
    if (!holder) return Lease(this, host);
    if (clock_.steadyNow() >= deadline) {
      MutexLock lk(mu_);
      local_.erase(host);
      released_.notify_all();
      return Busy{*holder, false};
    }
    std::this_thread::sleep_for(
        std::min<steady_clock::duration>(milliseconds(200), deadline - clock_.steadyNow()));
  }
}

std::optional<std::string> HostLockGuard::lost(const std::string& host) noexcept {
  try {
    if (locks_.holds(host)) return std::nullopt;
    auto h = locks_.holder(host);
    return "not activated: the lock of " + host + " was taken over" +
           (h ? " by " + h->owner + " (" + h->purpose + ")" : std::string()) +
           " after this runner's lease expired";
  } catch (const std::exception& e) {
    return std::string("not activated: the lock of ") + host +
           " could not be confirmed: " + describe(e);
  }
}

void HostLockGuard::release(const std::string& host) noexcept {
  bool released = false;
  try {
    locks_.release(host);
    released = true;
  } catch (...) {  // kept in unreleased_; at the latest taken over once this process is gone
  }
  {
    MutexLock lk(mu_);
    local_.erase(host);
    if (!released) unreleased_.insert(host);
    released_.notify_all();
  }
  retryUnreleased();
}

void HostLockGuard::retryUnreleased() noexcept {
  MutexLock lk(mu_);
  for (auto it = unreleased_.begin(); it != unreleased_.end();) {
    if (local_.count(*it)) {  // taken again in this process: its lease releases it
      it = unreleased_.erase(it);
      continue;
    }
    try {
      locks_.release(*it);
      it = unreleased_.erase(it);
    } catch (...) {
      ++it;
    }
  }
}

std::string describeHolder(const HostLockGuard::Busy& busy) {
  std::string who = busy.sameProcess ? "another deploy in this process" : busy.holder.owner;
  return "held by " + who + " since " + formatUtcMillis(busy.holder.acquiredAt) + ": " +
         busy.holder.purpose;
}

}  // namespace runner::deploy
