// One budget for Nix processes (issue 13): how many `nix` processes run at once across every
// NixCli that shares this limit — the daemon's planner, builder, deploy target discovery,
// closure diffs, input fetches and the fork jail. `concurrency.evals` bounds evaluating
// processes (eval, flake metadata, fetches, show-derivation, dry runs, diff-closures) and
// `concurrency.builds` bounds `nix build` processes, so the config's numbers mean what they
// say: `evals: 2` is at most two evaluations (GBs each for NixOS hosts), however many plans
// and builds are in flight and however many processes one of them would like to start.
//
// Precedence (deploys first, bounded shares for pull requests) stays with the stages' slots
// (runner/core/slots.h), which decide which runs evaluate; this limit only counts processes.
// A permit is held for one process and never while waiting for another, so it cannot take
// part in a deadlock.
//
// Thread-safe. Permit is RAII: the process's place is given back however the caller leaves.
#pragma once

#include <condition_variable>

#include "runner/core/thread_annotations.h"

namespace runner::nix {

class ProcessLimit {
 public:
  enum class Kind { Eval, Build };

  // At most `evals` evaluating and `builds` building processes at once (each at least 1).
  ProcessLimit(int evals, int builds);
  ProcessLimit(const ProcessLimit&) = delete;
  ProcessLimit& operator=(const ProcessLimit&) = delete;

  class Permit {
   public:
    Permit(ProcessLimit& limit, Kind kind);  // blocks until a process of `kind` may start
    ~Permit();
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;

   private:
    ProcessLimit& l_;
    Kind k_;
  };

  int limit(Kind k) const { return k == Kind::Eval ? evals_ : builds_; }
  // Processes of `k` running now, and the most that ever ran at once (tests, metrics).
  int running(Kind k) const;
  int peak(Kind k) const;

 private:
  const int evals_, builds_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  int running_[2] GUARDED_BY(mu_) = {0, 0};  // by Kind
  int peak_[2] GUARDED_BY(mu_) = {0, 0};
};

}  // namespace runner::nix
