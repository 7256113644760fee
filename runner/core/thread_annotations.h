// Clang's thread-safety annotations (-Wthread-safety), and a mutex that carries them.
//
// A member written `int used_ GUARDED_BY(mu_);` may only be touched with `mu_` held; a function
// declared `bool canTake() const REQUIRES(mu_);` only be called with it held. Clang checks both at
// compile time (CI builds with clang and -Wthread-safety -Werror); other compilers ignore the
// macros. libstdc++'s std::mutex is not annotated, so guarded data sits beside a runner::Mutex
// and is locked with runner::MutexLock (or runner::RecursiveMutex / RecursiveMutexLock).
//
// A lambda that reads guarded data while the caller holds the lock (a condition variable's
// predicate) says so: `lk.wait(cv, [&]() REQUIRES(mu_) { return stopping_; });`
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define SY_THREAD_ANNOTATION(x) __attribute__((x))
#else
#define SY_THREAD_ANNOTATION(x)
#endif

#define CAPABILITY(x) SY_THREAD_ANNOTATION(capability(x))
#define SCOPED_CAPABILITY SY_THREAD_ANNOTATION(scoped_lockable)
#define GUARDED_BY(x) SY_THREAD_ANNOTATION(guarded_by(x))
#define PT_GUARDED_BY(x) SY_THREAD_ANNOTATION(pt_guarded_by(x))
#define REQUIRES(...) SY_THREAD_ANNOTATION(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) SY_THREAD_ANNOTATION(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) SY_THREAD_ANNOTATION(acquire_capability(__VA_ARGS__))
#define RELEASE(...) SY_THREAD_ANNOTATION(release_capability(__VA_ARGS__))
#define TRY_ACQUIRE(...) SY_THREAD_ANNOTATION(try_acquire_capability(__VA_ARGS__))
#define ASSERT_CAPABILITY(x) SY_THREAD_ANNOTATION(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS SY_THREAD_ANNOTATION(no_thread_safety_analysis)

namespace runner {

// std::mutex, as a capability the analysis knows.
class CAPABILITY("mutex") Mutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }

 private:
  friend class MutexLock;
  std::mutex m_;
};

// Holds a Mutex for its scope. unlock()/lock() leave it for a stretch; wait*() wait on a
// condition variable (the mutex is released while waiting and held again on return).
class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex& mu) ACQUIRE(mu) : lk_(mu.m_) {}
  ~MutexLock() RELEASE() {}
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

  void unlock() RELEASE() { lk_.unlock(); }
  void lock() ACQUIRE() { lk_.lock(); }

  void wait(std::condition_variable& cv) { cv.wait(lk_); }
  template <class Pred>
  void wait(std::condition_variable& cv, Pred ready) {
    cv.wait(lk_, ready);
  }
  template <class Rep, class Period>
  void waitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> d) {
    cv.wait_for(lk_, d);
  }
  // Returns ready() (false: the time ran out first).
  template <class Rep, class Period, class Pred>
  bool waitFor(std::condition_variable& cv, std::chrono::duration<Rep, Period> d, Pred ready) {
    return cv.wait_for(lk_, d, ready);
  }

 private:
  std::unique_lock<std::mutex> lk_;
};

// std::recursive_mutex as a capability. The analysis does not follow re-entry: a function that
// takes it while a caller may already hold it is fine at run time, and the analysis only sees
// each function's own lock.
class CAPABILITY("mutex") RecursiveMutex {
 public:
  void lock() ACQUIRE() { m_.lock(); }
  void unlock() RELEASE() { m_.unlock(); }

 private:
  std::recursive_mutex m_;
};

class SCOPED_CAPABILITY RecursiveMutexLock {
 public:
  explicit RecursiveMutexLock(RecursiveMutex& mu) ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~RecursiveMutexLock() RELEASE() { mu_.unlock(); }
  RecursiveMutexLock(const RecursiveMutexLock&) = delete;
  RecursiveMutexLock& operator=(const RecursiveMutexLock&) = delete;

 private:
  RecursiveMutex& mu_;
};

}  // namespace runner
