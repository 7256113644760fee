#include "runner/core/slots.h"

#include <algorithm>

namespace runner {

PrioritySlots::PrioritySlots(int total, int checks, int forks)
    : total_(std::max(total, 1)),
      checks_(std::clamp(checks, 1, std::max(total, 1))),
      forks_(std::clamp(forks, 1, std::clamp(checks, 1, std::max(total, 1)))) {}

bool PrioritySlots::canTake(SlotClass c) const {
  if (used_ >= total_) return false;
  if (c == SlotClass::Deploy) return true;
  if (waiting_[static_cast<int>(SlotClass::Deploy)] > 0 || checksUsed_ >= checks_) return false;
  if (c == SlotClass::Check) return true;
  return waiting_[static_cast<int>(SlotClass::Check)] == 0 && forksUsed_ < forks_;
}

PrioritySlots::Held::Held(PrioritySlots& s, SlotClass c) : s_(s), c_(c) {
  MutexLock lk(s_.mu_);
  ++s_.waiting_[static_cast<int>(c)];
  lk.wait(s_.cv_, [&]() REQUIRES(s_.mu_) { return s_.canTake(c); });
  --s_.waiting_[static_cast<int>(c)];
  ++s_.used_;
  if (c != SlotClass::Deploy) ++s_.checksUsed_;
  if (c == SlotClass::Fork) ++s_.forksUsed_;
  lk.unlock();
  s_.cv_.notify_all();  // fewer waiting: a check held back for this one may go now
}

PrioritySlots::Held::~Held() {
  {
    MutexLock lk(s_.mu_);
    --s_.used_;
    if (c_ != SlotClass::Deploy) --s_.checksUsed_;
    if (c_ == SlotClass::Fork) --s_.forksUsed_;
  }
  s_.cv_.notify_all();
}

int PrioritySlots::inUse() const {
  MutexLock lk(mu_);
  return used_;
}

int PrioritySlots::inUse(SlotClass c) const {
  MutexLock lk(mu_);
  switch (c) {
    case SlotClass::Deploy:
      return used_ - checksUsed_;
    case SlotClass::Check:
      return checksUsed_ - forksUsed_;
    case SlotClass::Fork:
      return forksUsed_;
  }
  return 0;
}

}  // namespace runner
