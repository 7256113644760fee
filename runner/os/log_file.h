// A log file people read later (build, deploy and plan logs under state_dir/logs): each line
// is scrubbed on its way in (Redactor::scrub: control characters made visible, secrets
// redacted) and written at once, so the web UI and `switchyard logs --follow` see it while it
// grows. A write that fails (a full disk) throws SysError: the run records that its log is
// incomplete instead of losing lines in silence.
//
// Beside it, <path>.times (timesPathOf) gets "<byte offset> <unix ms>\n" for each line():
// where the line starts in the log and when it was written, so the web's log page can show
// a time per line while the log itself stays plain text. Writing that file is best effort.
//
// Not thread-safe: one writer per file (callers that share one lock around it).
#pragma once

#include <filesystem>
#include <string_view>

namespace runner {
class Redactor;
}

namespace runner::os {

class LogFile {
 public:
  enum class Mode { Append, Truncate };
  // Opens (creating it and its directory, mode 0600). `redactor` may be null and must
  // outlive the object. Throws SysError.
  LogFile(const std::filesystem::path& path, Mode mode, const Redactor* redactor);
  ~LogFile();
  LogFile(const LogFile&) = delete;
  LogFile& operator=(const LogFile&) = delete;

  // Writes `text` and a newline. Throws SysError naming the file when the write fails.
  void line(std::string_view text);
  const std::filesystem::path& path() const { return path_; }
  // "<log path>.times"
  static std::filesystem::path timesPathOf(const std::filesystem::path& log);

 private:
  std::filesystem::path path_;
  const Redactor* redactor_;
  int fd_ = -1;
  int timesFd_ = -1;  // -1 when it could not be opened
};

}  // namespace runner::os
