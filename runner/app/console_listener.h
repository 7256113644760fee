// The stages' progress for a person at a terminal (core/stages.h): what `switchyard build`
// and `switchyard deploy` print on stderr while they drive the same stages as the daemon.
// One line per event, "[host] what", "[host]   | a log line", "[host] => result"; control
// characters in any of it (host names and lines come from the flake and the build) are made
// visible, not passed to the terminal.
//
// Thread-safe (the deploy stage reports from several hosts' threads at once).
#pragma once

#include <ostream>
#include <string>
#include <string_view>

#include "runner/core/stages.h"
#include "runner/core/thread_annotations.h"

namespace runner::app {

class ConsoleListener final : public StageListener {
 public:
  // `out` must outlive this object. `progressLines`: print hostProgress too (off while a
  // build's terminal progress line shows the same).
  ConsoleListener(std::ostream& out, bool progressLines) : out_(out), progress_(progressLines) {}
  void hostStarted(const std::string& host, const std::string& what) override;
  void hostProgress(const std::string& host, const std::string& what) override;
  void hostLine(const std::string& host, std::string_view line) override;
  void hostFinished(const std::string& host, const std::string& what) override;

 private:
  void print(const std::string& host, std::string_view mark, std::string_view text);

  Mutex mu_;
  std::ostream& out_ GUARDED_BY(mu_);
  const bool progress_;
};

}  // namespace runner::app
