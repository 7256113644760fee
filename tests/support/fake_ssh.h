// A hand-written ssh::Connector (STYLE.md P9) for deploy logic that must not reach a host:
// every connect() is recorded and answered with the configured failure (or, when none is
// configured, fails the running test). Thread-safe.
#pragma once

#include <mutex>
#include <optional>
#include <vector>

#include "runner/ssh/ssh.h"

namespace tests {

class FakeConnector final : public runner::ssh::Connector {
 public:
  explicit FakeConnector(std::optional<runner::ssh::ConnectFailure> answer = std::nullopt)
      : answer_(std::move(answer)) {}
  runner::ssh::ConnectResult connect(const runner::ssh::Endpoint& ep) override {
    std::lock_guard lk(mu_);
    calls_.push_back(ep);
    if (answer_) return *answer_;
    return runner::ssh::ConnectFailure{runner::ssh::ConnectFailure::Kind::Unreachable,
                                       "FakeConnector: no connection expected"};
  }
  std::vector<runner::ssh::Endpoint> calls() {
    std::lock_guard lk(mu_);
    return calls_;
  }

 private:
  std::mutex mu_;
  std::optional<runner::ssh::ConnectFailure> answer_;
  std::vector<runner::ssh::Endpoint> calls_;
};

}  // namespace tests
