// Waiting in tests: poll a condition until it holds or a deadline passes, instead of sleeping a
// fixed time and hoping the other side got there meanwhile (a loaded CI machine is slower than
// any guess, and an idle one wastes the rest of the sleep).
#pragma once

#include <chrono>
#include <thread>

namespace tests {

// True as soon as ready() holds; false when `limit` passed first (the caller CHECKs the result,
// so a condition that never comes fails the test instead of hanging it).
template <class Ready>
bool waitUntil(Ready&& ready, std::chrono::milliseconds limit = std::chrono::seconds(30),
               std::chrono::milliseconds poll = std::chrono::milliseconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    if (ready()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(poll);
  }
}

}  // namespace tests
