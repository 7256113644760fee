// Slots for evaluations and builds shared by every run, with precedence (issue 19): runs that
// deploy take any free slot and go first in the queue; pull request checks hold at most
// `checks` slots at once, and checks of forks at most `forks` of those, waiting behind any
// deploy or same-repository check that asks. With checks < total, a deploy never waits for a
// check (Concurrency).
//
// Thread-safe. Held is RAII: a slot is given back however the holder leaves.
#pragma once

#include <condition_variable>
#include <mutex>

namespace runner {

// Who asks, in order of precedence.
enum class SlotClass { Deploy, Check, Fork };

class PrioritySlots {
 public:
  // total >= 1; checks and forks are clamped to [1, total] and [1, checks].
  PrioritySlots(int total, int checks, int forks);
  // One class for everything: `total` slots, no shares (tools, tests).
  explicit PrioritySlots(int total) : PrioritySlots(total, total, total) {}

  class Held {
   public:
    Held(PrioritySlots& slots, SlotClass c);  // blocks until the slot is free
    ~Held();
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

   private:
    PrioritySlots& s_;
    SlotClass c_;
  };

  // For tests and metrics.
  int inUse() const;
  int inUse(SlotClass c) const;

 private:
  bool canTake(SlotClass c) const;  // REQUIRES mu_ held

  mutable std::mutex mu_;
  std::condition_variable cv_;
  const int total_, checks_, forks_;
  int used_ = 0, checksUsed_ = 0, forksUsed_ = 0;  // GUARDED_BY(mu_); forks count as checks
  int waiting_[3] = {0, 0, 0};                     // GUARDED_BY(mu_); per SlotClass
};

}  // namespace runner
