// The error hierarchy of the runner (STYLE.md P1-P3).
//
// Failures throw one of these; expected outcomes (a failed build, an ignored webhook) are
// values. Each error carries a message and a chain of context lines added on the way up
// ("while planning alice/infra"), so the boundary that catches it can print one line that
// says what went wrong and where. `exitCodeFor` maps an error to the CLI's exit status:
// 2 for bad input or usage (the user can fix the input), 1 for an operation that failed.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}

  // Adds a "while ..." line; innermost first. Cheap; call it while rethrowing.
  void addContext(std::string context) { context_.push_back(std::move(context)); }
  const std::vector<std::string>& context() const noexcept { return context_; }

  // One line: the message followed by its context, e.g.
  // "old.lock: not JSON at byte 3 (while reading OLD_FLAKE_LOCK)".
  std::string describe() const;

 private:
  std::vector<std::string> context_;
};

// The input the user gave is wrong: a file, a flag, a payload, a config key. Exit status 2.
class InputError : public Error {
  using Error::Error;
};
class UsageError : public InputError {
  using InputError::InputError;
};
class ConfigError : public InputError {
  using InputError::InputError;
};

// An OS call failed; `err` is the errno value.
class SysError : public Error {
 public:
  SysError(int err, std::string_view doing);
  int err;
};

class GitError : public Error {
  using Error::Error;
};
class NixError : public Error {
  using Error::Error;
};
// A plan could not be made: the flake at the new commit does not parse or evaluate, or the
// hosts it defines cannot be found. Never answered with an empty plan (exit status 1).
class PlanError : public Error {
  using Error::Error;
};
class StoreError : public Error {
  using Error::Error;
};
class SshError : public Error {
  using Error::Error;
};
class HttpError : public Error {
  using Error::Error;
};

// Describes any exception on one line: runner::Error with its context, else what().
std::string describe(const std::exception& e);

// 2 for InputError (and subclasses), 1 otherwise.
int exitCodeFor(const std::exception& e) noexcept;

}  // namespace runner
