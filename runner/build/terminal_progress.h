// The build's progress for people at a terminal: on a tty one status line redrawn in place
// ("\r", throttled), otherwise plain lines when a host starts building or finishes (logs and
// CI output stay readable).
#pragma once

#include <chrono>
#include <map>
#include <ostream>
#include <string>

#include "runner/build/builder.h"

namespace runner::build {

class TerminalProgress final : public BuildObserver {
 public:
  // `out` must outlive this object. `tty`: redraw one line; `width`: its maximum length.
  TerminalProgress(std::ostream& out, bool tty, size_t width = 110,
                   std::chrono::milliseconds minInterval = std::chrono::milliseconds(100));

  void onProgress(const BuildProgress& progress, std::chrono::milliseconds elapsed) override;
  void onHostFinished(const HostProgress& host, std::chrono::milliseconds elapsed) override;
  void onFinished(const BuildResult& result) override;

  // "[3.2s] 7/16 built, 2 running | web1 3/5 buildPhase | web2 built | db1 queued", cut to
  // `width` bytes.
  static std::string statusLine(const BuildProgress& progress, std::chrono::milliseconds elapsed,
                                size_t width);

 private:
  void clearLine();
  std::ostream& out_;
  bool tty_;
  size_t width_;
  std::chrono::milliseconds minInterval_;
  std::chrono::milliseconds lastDraw_{-1000000};
  size_t drawn_ = 0;  // length of the line on screen
  std::map<std::string, HostState> seen_;
};

}  // namespace runner::build
