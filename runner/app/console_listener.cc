#include "runner/app/console_listener.h"

#include "runner/core/text.h"

namespace runner::app {

// Host names, summaries and log lines come from the flake and the build (untrusted): every one
// is neutralised before it reaches the terminal, so a build cannot set the title, write the
// clipboard or rewrite earlier lines.
void ConsoleListener::print(const std::string& host, std::string_view mark, std::string_view text) {
  std::string line = "[" + neutralizeControls(host) + "] ";
  line += mark;
  line += neutralizeControls(text);
  line += "\n";
  MutexLock lk(mu_);
  out_ << line << std::flush;
}

void ConsoleListener::hostStarted(const std::string& host, const std::string& what) {
  print(host, "", what);
}

void ConsoleListener::hostProgress(const std::string& host, const std::string& what) {
  if (progress_) print(host, "", what);
}

void ConsoleListener::hostLine(const std::string& host, std::string_view line) {
  print(host, "  | ", line);
}

void ConsoleListener::hostFinished(const std::string& host, const std::string& what) {
  print(host, "=> ", what);
}

}  // namespace runner::app
