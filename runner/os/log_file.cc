#include "runner/os/log_file.h"

#include <cerrno>
#include <chrono>
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
  timesFd_ = ::open(timesPathOf(path).c_str(), flags, 0600);
}

LogFile::~LogFile() {
  if (fd_ >= 0) ::close(fd_);
  if (timesFd_ >= 0) ::close(timesFd_);
}

fs::path LogFile::timesPathOf(const fs::path& log) { return fs::path(log.string() + ".times"); }

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
  const off_t end = ::lseek(fd_, 0, SEEK_CUR);
  if (timesFd_ < 0 || end < static_cast<off_t>(out.size())) return;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
  const std::string at =
      std::to_string(end - static_cast<off_t>(out.size())) + " " + std::to_string(ms) + "\n";
  // best effort: a line without a time is still shown
  if (::write(timesFd_, at.data(), at.size()) < 0) {
    ::close(timesFd_);
    timesFd_ = -1;
  }
}

}  // namespace runner::os
