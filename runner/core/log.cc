#include "runner/core/log.h"

#include <cstdio>

#include "runner/core/text.h"

namespace runner {

void Redactor::add(std::string secret) {
  if (secret.size() < 4) return;  // a 1-3 byte "secret" would redact ordinary text
  std::scoped_lock lk(mu_);
  secrets_.push_back(std::move(secret));
}

std::string Redactor::apply(std::string_view text) const {
  std::string out(text);
  std::scoped_lock lk(mu_);
  for (const auto& s : secrets_) {
    for (size_t pos = out.find(s); pos != std::string::npos; pos = out.find(s, pos)) {
      out.replace(pos, s.size(), "[redacted]");
      pos += 10;
    }
  }
  return out;
}

void StderrLogger::log(LogLevel level, std::string_view message) {
  if (level < min_) return;
  static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
  std::string line = formatUtc(std::chrono::system_clock::now()) + " " +
                     kNames[static_cast<int>(level)] + " " +
                     (redactor_ ? redactor_->apply(message) : std::string(message)) + "\n";
  std::scoped_lock lk(mu_);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace runner
