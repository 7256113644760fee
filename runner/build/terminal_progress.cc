#include "runner/build/terminal_progress.h"

#include "runner/core/text.h"

namespace runner::build {

TerminalProgress::TerminalProgress(std::ostream& out, bool tty, size_t width,
                                   std::chrono::milliseconds minInterval)
    : out_(out), tty_(tty), width_(width), minInterval_(minInterval) {}

std::string TerminalProgress::statusLine(const BuildProgress& p, std::chrono::milliseconds elapsed,
                                         size_t width) {
  std::string s = "[" + formatDuration(elapsed) + "] ";
  if (p.drvsExpected > 0) {
    s += std::to_string(p.drvsDone) + "/" + std::to_string(p.drvsExpected) + " built";
    if (p.drvsRunning) s += ", " + std::to_string(p.drvsRunning) + " running";
    if (p.drvsFailed) s += ", " + std::to_string(p.drvsFailed) + " failed";
  } else {
    s += "starting";
  }
  if (p.bytesExpected > 0)
    s += ", fetched " + std::to_string(p.bytesDone >> 10) + "/" +
         std::to_string(p.bytesExpected >> 10) + " KiB";
  for (const auto& h : p.hosts) {
    s += " | " + h.host + " ";
    if (h.state == HostState::Building) {
      s += std::to_string(h.built) + "/" + std::to_string(h.toBuild);
      if (!h.phase.empty()) s += " " + h.phase;
    } else {
      s += toString(h.state);
    }
  }
  return truncateUtf8(s, width);
}

void TerminalProgress::clearLine() {
  if (tty_ && drawn_ > 0) {
    out_ << "\r\x1b[K";
    drawn_ = 0;
  }
}

void TerminalProgress::onProgress(const BuildProgress& p, std::chrono::milliseconds elapsed) {
  if (tty_) {
    if (elapsed - lastDraw_ < minInterval_) return;
    lastDraw_ = elapsed;
    std::string line = statusLine(p, elapsed, width_);
    out_ << "\r" << line << "\x1b[K" << std::flush;
    drawn_ = line.size();
    return;
  }
  for (const auto& h : p.hosts) {
    HostState& before = seen_[h.host];
    if (h.state == HostState::Building && before == HostState::Queued)
      out_ << h.host << ": building (" << h.toBuild << " derivation" << (h.toBuild == 1 ? "" : "s")
           << ")\n"
           << std::flush;
    if (before == HostState::Queued || before == HostState::Building) before = h.state;
  }
}

void TerminalProgress::onHostFinished(const HostProgress& h, std::chrono::milliseconds elapsed) {
  clearLine();
  out_ << h.host << ": " << toString(h.state) << " after " << formatDuration(elapsed) << "\n"
       << std::flush;
  seen_[h.host] = h.state;
}

void TerminalProgress::onFinished(const BuildResult& result) {
  clearLine();
  out_ << std::flush;
}

}  // namespace runner::build
