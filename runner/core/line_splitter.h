// Cuts a byte stream that arrives in arbitrary chunks (a pipe, an SSH channel, a remote
// agent's log file) into lines. The process runner, the SSH connector and the deployer all
// hand output on line by line as it comes; this is the one place that keeps the unfinished
// last line between chunks.
#pragma once

#include <string>
#include <string_view>

namespace runner {

// Holds the unterminated end of what was fed so far. One per stream; not thread-safe.
class LineSplitter {
 public:
  // Appends `bytes` and calls `onLine(std::string_view)` once for each line this completes,
  // in order, without its '\n' (a '\r' before it is kept). The view is valid only during
  // the call. REQUIRES: `onLine` does not feed this splitter.
  template <class OnLine>
  void feed(std::string_view bytes, OnLine&& onLine) {
    pending_.append(bytes);
    size_t start = 0;
    for (size_t nl; (nl = pending_.find('\n', start)) != std::string::npos; start = nl + 1)
      onLine(std::string_view(pending_).substr(start, nl - start));
    pending_.erase(0, start);
  }

  // At the end of the stream: calls `onLine` with the unterminated last line, if there is
  // one, and forgets it.
  template <class OnLine>
  void finish(OnLine&& onLine) {
    if (!pending_.empty()) onLine(std::string_view(pending_));
    pending_.clear();
  }

 private:
  std::string pending_;
};

}  // namespace runner
