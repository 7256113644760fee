// A log file people read later (build, deploy and plan logs under state_dir/logs): each line
// is scrubbed on its way in (Redactor::scrub: control characters made visible, secrets
// redacted) and written at once, so the web UI and `switchyard logs --follow` see it while it
// grows. A write that fails (a full disk) throws SysError: the run records that its log is
// incomplete instead of losing lines in silence.
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

 private:
  std::filesystem::path path_;
  const Redactor* redactor_;
  int fd_ = -1;
};

}  // namespace runner::os
