#include "runner/nix/process_limit.h"

#include <algorithm>

namespace runner::nix {

ProcessLimit::ProcessLimit(int evals, int builds)
    : evals_(std::max(evals, 1)), builds_(std::max(builds, 1)) {}

ProcessLimit::Permit::Permit(ProcessLimit& l, Kind k) : l_(l), k_(k) {
  const int i = static_cast<int>(k);
  MutexLock lk(l_.mu_);
  lk.wait(l_.cv_, [&]() REQUIRES(l_.mu_) { return l_.running_[i] < l_.limit(k); });
  ++l_.running_[i];
  l_.peak_[i] = std::max(l_.peak_[i], l_.running_[i]);
}

ProcessLimit::Permit::~Permit() {
  {
    MutexLock lk(l_.mu_);
    --l_.running_[static_cast<int>(k_)];
  }
  l_.cv_.notify_all();
}

int ProcessLimit::running(Kind k) const {
  MutexLock lk(mu_);
  return running_[static_cast<int>(k)];
}

int ProcessLimit::peak(Kind k) const {
  MutexLock lk(mu_);
  return peak_[static_cast<int>(k)];
}

}  // namespace runner::nix
