#include "runner/app/console_listener.h"

#include "runner/core/text.h"

namespace runner::app {

void ConsoleListener::hostStarted(const std::string& host, const std::string& what) {
  std::scoped_lock lk(mu_);
  out_ << "[" << neutralizeControls(host) << "] " << what << "\n";
}

void ConsoleListener::hostProgress(const std::string& host, const std::string& what) {
  if (!progress_) return;
  std::scoped_lock lk(mu_);
  out_ << "[" << neutralizeControls(host) << "] " << what << "\n";
}

void ConsoleListener::hostLine(const std::string& host, std::string_view line) {
  std::scoped_lock lk(mu_);
  out_ << "[" << neutralizeControls(host) << "]   | " << line << "\n";
}

void ConsoleListener::hostFinished(const std::string& host, const std::string& what) {
  std::scoped_lock lk(mu_);
  out_ << "[" << neutralizeControls(host) << "] => " << what << "\n";
}

}  // namespace runner::app
