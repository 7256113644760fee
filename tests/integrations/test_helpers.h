// Helpers for the forge integration tests: recorded webhook bodies from tests/data/webhooks
// (read byte for byte: signatures cover the exact bytes), deliveries built from them, and a
// clock the test moves by hand.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/core/clock.h"
#include "runner/core/forge.h"
#include "runner/core/log.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

namespace tests {

// The bytes of tests/data/webhooks/<rel>.
inline std::string webhookBody(const std::string& rel) {
  return runner::os::readFile(dataDir() / "webhooks" / rel);
}

inline nlohmann::json webhookJson(const std::string& rel) {
  return nlohmann::json::parse(webhookBody(rel));
}

inline runner::WebhookDelivery delivery(std::string body,
                                        std::vector<std::pair<std::string, std::string>> headers) {
  runner::WebhookDelivery d;
  d.body = std::move(body);
  for (auto& [k, v] : headers) d.headers.add(k, v);
  return d;
}

// A wall clock that stands still until the test moves it.
class ManualClock final : public runner::Clock {
 public:
  explicit ManualClock(int64_t epochSeconds = 1767225600)  // 2026-01-01T00:00:00Z
      : now_(std::chrono::seconds(epochSeconds)) {}
  std::chrono::system_clock::time_point now() const override {
    std::scoped_lock lk(mu_);
    return now_;
  }
  std::chrono::steady_clock::time_point steadyNow() const override {
    std::scoped_lock lk(mu_);
    return std::chrono::steady_clock::time_point(now_.time_since_epoch());
  }
  void advance(std::chrono::seconds d) {
    std::scoped_lock lk(mu_);
    now_ += d;
  }
  int64_t epochSeconds() const {
    return std::chrono::duration_cast<std::chrono::seconds>(now().time_since_epoch()).count();
  }

 private:
  mutable std::mutex mu_;
  std::chrono::system_clock::time_point now_;
};

// Keeps every line (for checking that secrets never reach the log).
class RecordingLogger final : public runner::Logger {
 public:
  void log(runner::LogLevel, std::string_view m) override {
    std::scoped_lock lk(mu_);
    lines_.emplace_back(m);
  }
  std::string all() const {
    std::scoped_lock lk(mu_);
    std::string out;
    for (const auto& l : lines_) out += l + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

}  // namespace tests
