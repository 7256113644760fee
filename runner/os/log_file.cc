#include "runner/os/log_file.h"

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/core/text.h"

namespace fs = std::filesystem;

namespace runner::os {

LogFile::LogFile(const fs::path& path, Mode mode, const Redactor* redactor)
    : path_(path), redactor_(redactor) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  if (ec) throw SysError(ec.value(), "creating " + path.parent_path().string());
  int flags = O_WRONLY | O_CREAT | O_CLOEXEC | (mode == Mode::Append ? O_APPEND : O_TRUNC);
  fd_ = ::open(path.c_str(), flags, 0600);
  if (fd_ < 0) throw SysError(errno, "opening the log " + path.string());
}

LogFile::~LogFile() {
  if (fd_ >= 0) ::close(fd_);
}

void LogFile::line(std::string_view text) {
  std::string out = redactor_ ? redactor_->scrub(text) : neutralizeControls(text);
  out += '\n';
  size_t off = 0;
  while (off < out.size()) {
    ssize_t w = ::write(fd_, out.data() + off, out.size() - off);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw SysError(errno, "writing the log " + path_.string());
    off += static_cast<size_t>(w);
  }
}

}  // namespace runner::os
