// The port for running child processes (STYLE.md P8/P10). Programs are argv lists, never
// shell strings. The real implementation (runner/os) puts each child in its own process
// group, enforces the timeout by killing the whole group, keeps only a bounded tail of
// stderr, and decodes the wait status into words. Tests substitute a fake.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace runner {

// Runs a child as another, unprivileged account, cut off from the network: for code nobody
// vouched for (a fork's Nix code, runner/nix untrustedNixOptions). The child gets no
// supplementary groups, cannot gain privileges again (no_new_privs) and, with
// isolateNetwork, lives in a network namespace of its own whose only interface is a loopback
// that is down: it can reach no address, loopback services included. Unix sockets on the
// file system (the nix-daemon's) still work. REQUIRES a runner that is root or holds
// CAP_SETUID, CAP_SETGID (and CAP_SYS_ADMIN for the network namespace); otherwise run()
// throws SysError naming the step that was refused.
struct Confinement {
  uint32_t uid = 0;
  uint32_t gid = 0;
  bool isolateNetwork = true;
};

struct RunOptions {
  std::string program;  // looked up in PATH when it has no '/'
  std::vector<std::string> args;
  std::optional<std::filesystem::path> cwd;
  // Variables set (or, with an empty optional, removed) on top of the inherited
  // environment; with inheritEnv = false the child gets only these.
  std::map<std::string, std::optional<std::string>> env;
  bool inheritEnv = true;
  std::optional<std::string> stdinData;  // nullopt: stdin is /dev/null
  std::chrono::milliseconds timeout{0};  // 0: no timeout
  // Called on the calling thread for every complete line (without '\n') as it arrives.
  std::function<void(std::string_view)> onStdoutLine;
  std::function<void(std::string_view)> onStderrLine;
  size_t maxStdout = 64 << 20;     // bytes of stdout kept in RunResult::out
  size_t stderrTailBytes = 16384;  // bytes of stderr kept in RunResult::errTail
  // Optional: called once with the child's pid after it started (e.g. to record it).
  std::function<void(int pid)> onStarted;
  std::optional<Confinement> confine;  // run as another account, without network
};

struct RunResult {
  int exitStatus = -1;  // exit code, or -1 when killed by a signal
  int signal = 0;       // the signal that ended it, 0 if it exited
  bool timedOut = false;
  std::string out;      // stdout (up to maxStdout)
  std::string errTail;  // last stderrTailBytes of stderr
  std::chrono::milliseconds duration{0};

  bool ok() const { return exitStatus == 0 && !timedOut; }
  // "exited with status 3", "killed by signal 9 (SIGKILL: out of memory?)",
  // "timed out after 30s and was killed".
  std::string describeStatus() const;
};

class ProcessRunner {
 public:
  virtual ~ProcessRunner() = default;
  // Runs the program to completion. Never throws for a non-zero exit or a timeout.
  // Throws SysError only if the child could not be started (program not found, fork failed).
  // Thread-safe: may be called from several threads at once.
  virtual RunResult run(const RunOptions& opts) = 0;
};

}  // namespace runner
