// A pass-through ProcessRunner that counts (and remembers) the processes it runs, so tests
// can assert how many `nix` processes an operation needed (e.g. zero on a cache hit).
#pragma once

#include <mutex>
#include <string>
#include <vector>

#include "runner/core/process.h"

namespace tests {

class CountingProcessRunner final : public runner::ProcessRunner {
 public:
  explicit CountingProcessRunner(runner::ProcessRunner& inner) : inner_(inner) {}

  runner::RunResult run(const runner::RunOptions& opts) override {
    {
      std::scoped_lock lk(mu_);
      calls_.push_back(opts.program + (opts.args.empty() ? "" : " " + describe(opts.args)));
    }
    return inner_.run(opts);
  }

  // Processes whose program's file name is `program` ("nix", "nix-store", "git").
  int count(const std::string& program) const {
    std::scoped_lock lk(mu_);
    int n = 0;
    for (const auto& c : calls_) {
      std::string prog = c.substr(0, c.find(' '));
      prog = prog.substr(prog.rfind('/') == std::string::npos ? 0 : prog.rfind('/') + 1);
      if (prog == program) ++n;
    }
    return n;
  }
  int total() const {
    std::scoped_lock lk(mu_);
    return static_cast<int>(calls_.size());
  }
  std::vector<std::string> calls() const {
    std::scoped_lock lk(mu_);
    return calls_;
  }
  void reset() {
    std::scoped_lock lk(mu_);
    calls_.clear();
  }

 private:
  static std::string describe(const std::vector<std::string>& args) {
    std::string s;
    for (const auto& a : args) s += (s.empty() ? "" : " ") + a.substr(0, 80);
    return s;
  }
  runner::ProcessRunner& inner_;
  mutable std::mutex mu_;
  std::vector<std::string> calls_;
};

}  // namespace tests
