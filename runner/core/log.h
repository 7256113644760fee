// The logging port. Every message passes through the redactor first, so a secret that was
// registered (a token, a webhook secret) never reaches a log line, however it got there.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "runner/core/thread_annotations.h"

namespace runner {

enum class LogLevel { Debug, Info, Warn, Error };

// Replaces every registered secret with "[redacted]". Thread-safe.
class Redactor {
 public:
  // Registers a secret (shorter than 8 bytes: ignored, it would redact ordinary words). A
  // secret of several lines (a PEM key) is also registered line by line (lines of 16 bytes or
  // more, without its BEGIN/END lines), so a quoted line of it is redacted too.
  void add(std::string secret);
  std::string apply(std::string_view text) const;
  // For text from builds, evaluations and forges on its way to a log file or a terminal:
  // neutralizeControls, then apply.
  std::string scrub(std::string_view text) const;

 private:
  mutable Mutex mu_;
  std::vector<std::string> secrets_ GUARDED_BY(mu_);
};

class Logger {
 public:
  virtual ~Logger() = default;
  virtual void log(LogLevel level, std::string_view message) = 0;
  void debug(std::string_view m) { log(LogLevel::Debug, m); }
  void info(std::string_view m) { log(LogLevel::Info, m); }
  void warn(std::string_view m) { log(LogLevel::Warn, m); }
  void error(std::string_view m) { log(LogLevel::Error, m); }
};

// Writes "2026-11-25T19:20:00Z WARN message" lines to stderr, redacted. Thread-safe.
class StderrLogger final : public Logger {
 public:
  explicit StderrLogger(const Redactor* redactor = nullptr, LogLevel min = LogLevel::Info)
      : redactor_(redactor), min_(min) {}
  void log(LogLevel level, std::string_view message) override;

 private:
  const Redactor* redactor_;
  LogLevel min_;
  Mutex mu_;
};

// Discards everything (for tools and tests that do not care).
class NullLogger final : public Logger {
 public:
  void log(LogLevel, std::string_view) override {}
};

}  // namespace runner
