#include "runner/core/log.h"

#include <algorithm>
#include <cstdio>

#include "runner/core/text.h"

namespace runner {

void Redactor::add(std::string secret) {
  constexpr size_t kMin = 8;  // a shorter "secret" would redact ordinary words
  std::vector<std::string> add;
  if (secret.find('\n') != std::string::npos)
    for (const auto& raw : split(secret, '\n')) {
      std::string line(trim(raw));
      if (line.size() >= 16 && !startsWith(line, "-----")) add.push_back(line);
    }
  if (secret.size() >= kMin) add.push_back(std::move(secret));
  MutexLock lk(mu_);
  for (auto& s : add)
    if (std::find(secrets_.begin(), secrets_.end(), s) == secrets_.end())
      secrets_.push_back(std::move(s));
  // Longest first: a line of a key is replaced only where the whole key is not.
  std::sort(secrets_.begin(), secrets_.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
}

std::string Redactor::scrub(std::string_view text) const { return apply(neutralizeControls(text)); }

std::string Redactor::apply(std::string_view text) const {
  std::string out(text);
  MutexLock lk(mu_);
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
  MutexLock lk(mu_);
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace runner
