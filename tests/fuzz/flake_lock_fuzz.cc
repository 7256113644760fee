// libFuzzer target for flake.lock reading (runner/nix/flake_lock.h): any bytes must parse
// or throw InputError — never crash or hang (follows cycles, deep paths) — and a lock that
// parses must diff against itself to nothing and against an empty lock without throwing.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "runner/core/error.h"
#include "runner/nix/flake_lock.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    auto lock = runner::nix::parseFlakeLock(text, "fuzz.lock");
    if (!runner::nix::diffLocks(lock, lock).empty()) __builtin_trap();
    auto empty = runner::nix::parseFlakeLock(R"({"nodes":{"root":{}},"root":"root","version":7})",
                                             "empty.lock");
    (void)runner::nix::diffLocks(empty, lock);
    (void)runner::nix::diffLocks(lock, empty);
  } catch (const runner::InputError&) {
    // rejected input is an expected outcome
  }
  return 0;
}
