// The runners sharing this database (issue 16, table `runners`): every runner process has an
// id of its own and a lease it renews by heartbeat. What a runner holds names it — a run it
// executes (runs.runner), a host lock (host_locks.owner), an outbox row it is sending
// (outbox.claimed_by) — so once its lease has expired (it was killed, its machine died, it
// lost the database) another runner may take those over. Times are unix ms from each runner's
// own Clock: the runners' clocks must agree to well within the lease.
//
// One heartbeat covers everything a runner holds: a lease is one row, renewed by one UPDATE.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "runner/core/clock.h"
#include "runner/store/database.h"

namespace runner::store {

class Runners {
 public:
  Runners(Database& db, const Clock& clock) : db_(db), clock_(clock) {}

  // A new id for this process: "<machine>:<pid>:<start-time>:<random>" (HostLocks::
  // thisProcess() plus a random part, so two runners in one process differ too).
  static std::string newId();

  // Registers `id` with a lease until now + `lease` (or renews it, whatever its state).
  void enter(const std::string& id, std::chrono::milliseconds lease);
  // Renews `id`'s lease until now + `lease`. False when the lease had expired or was ended
  // (the row is then left as it is): another runner may have taken over what it held, and
  // the runner must enter() again before it claims anything new.
  bool renew(const std::string& id, std::chrono::milliseconds lease);
  // Ends the lease at once (a runner that stops): what it still holds is free to take.
  void leave(const std::string& id);
  // When `id`'s lease ends (unix ms), or nullopt for an id never registered.
  std::optional<int64_t> expiresAt(const std::string& id);

  // Whether `id` is a registered runner whose lease has not expired and whose process, when
  // on this machine, still runs.
  bool isLive(const std::string& id);
  // Whether `owner` (a runner id, or another process's "<machine>:<pid>:<start>") is gone:
  // a registered runner whose lease has expired, or a process on this machine that no longer
  // runs. An owner that is neither (a CLI deploy on another machine) is trusted.
  bool isGone(const std::string& owner);

 private:
  Database& db_;
  const Clock& clock_;
};

}  // namespace runner::store
