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

#include "runner/core/thread_annotations.h"

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
  bool canTake(SlotClass c) const REQUIRES(mu_);

  mutable Mutex mu_;
  std::condition_variable cv_;
  const int total_, checks_, forks_;
  int used_ GUARDED_BY(mu_) = 0;
  int checksUsed_ GUARDED_BY(mu_) = 0;  // forks count as checks
  int forksUsed_ GUARDED_BY(mu_) = 0;
  int waiting_[3] GUARDED_BY(mu_) = {0, 0, 0};  // per SlotClass
};

}  // namespace runner
