// RAII for C library handles (STYLE.md P4/P5): one alias per handle type, declared next to
// the adapter that uses it, and `Out` to adapt `T**` out-parameters without raw pointers.
#pragma once

#include <memory>

namespace runner {

template <auto Free>
struct FreeWith {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p) Free(p);
  }
};

template <class T, auto Free>
using CHandle = std::unique_ptr<T, FreeWith<Free>>;

// Out(handle) converts to `T**`; on destruction the pointer the C call wrote is owned by
// `handle`. Use only as a temporary in a call expression.
template <class H>
class Out {
 public:
  explicit Out(H& h) : h_(h) {}
  ~Out() {
    if (raw_) h_.reset(raw_);
  }
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;
  operator typename H::pointer *() noexcept { return &raw_; }

 private:
  H& h_;
  typename H::pointer raw_ = nullptr;
};

}  // namespace runner
