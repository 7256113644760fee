// The built switchyard binary as a daemon process for tests: `switchyard serve --config F`
// started with fork/exec, its port read from the "listening on … port N" line, stopped with
// SIGTERM or killed with SIGKILL (the crash test). The destructor kills and reaps it.
#pragma once

#include <chrono>
#include <fcntl.h>
#include <filesystem>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "tests/support/run.h"

namespace tests {

class DaemonProcess {
 public:
  // Starts the daemon and waits (up to 10 s) for its port. `stderrFile` collects its log.
  DaemonProcess(const std::filesystem::path& config, const std::filesystem::path& stderrFile,
                std::vector<std::string> extraArgs = {}) {
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    std::string bin = switchyardBinary().string();
    std::vector<std::string> args = {bin, "serve", "--config", config.string()};
    args.insert(args.end(), extraArgs.begin(), extraArgs.end());
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      int err = ::open(stderrFile.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (err >= 0) ::dup2(err, 2);
      ::close(out[0]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(bin.c_str(), argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    fd_ = out[0];
    std::string line;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[256];
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    auto at = line.rfind(" port ");
    if (at == std::string::npos) {
      kill(SIGKILL);
      throw std::runtime_error("the daemon did not start: '" + line + "'");
    }
    port_ = std::stoi(line.substr(at + 6));
  }
  ~DaemonProcess() { kill(SIGKILL); }
  DaemonProcess(const DaemonProcess&) = delete;
  DaemonProcess& operator=(const DaemonProcess&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Sends `sig` and reaps the process; returns its wait status (0 when already gone).
  int kill(int sig) {
    if (pid_ <= 0) return 0;
    ::kill(pid_, sig);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  int port_ = 0;
};

}  // namespace tests
