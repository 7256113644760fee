#include "runner/os/process.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include "runner/core/error.h"
#include "runner/core/line_splitter.h"
#include "runner/core/text.h"

extern char** environ;

namespace runner {

std::string RunResult::describeStatus() const {
  if (timedOut) return "timed out after " + formatDuration(duration) + " and was killed";
  if (signal) {
    std::string s = "killed by " + os::signalName(signal);
    if (signal == SIGKILL) s += " (out of memory, or killed by hand?)";
    return s;
  }
  return "exited with status " + std::to_string(exitStatus);
}

namespace os {

std::string signalName(int sig) {
  switch (sig) {
    case SIGKILL:
      return "SIGKILL";
    case SIGTERM:
      return "SIGTERM";
    case SIGSEGV:
      return "SIGSEGV";
    case SIGABRT:
      return "SIGABRT";
    case SIGINT:
      return "SIGINT";
    case SIGHUP:
      return "SIGHUP";
    case SIGPIPE:
      return "SIGPIPE";
    case SIGBUS:
      return "SIGBUS";
    default:
      return "signal " + std::to_string(sig);
  }
}

namespace {

struct Fd {
  int fd = -1;
  Fd() = default;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd& operator=(Fd&& o) noexcept {
    reset();
    fd = o.fd;
    o.fd = -1;
    return *this;
  }
  ~Fd() { reset(); }
  void reset() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void makePipe(Fd& r, Fd& w) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) throw SysError(errno, "creating a pipe");
  r = Fd(p[0]);
  w = Fd(p[1]);
}

std::vector<std::string> buildEnv(const RunOptions& o) {
  std::map<std::string, std::string> env;
  if (o.inheritEnv) {
    for (char** e = environ; e && *e; ++e) {
      std::string_view kv(*e);
      auto eq = kv.find('=');
      if (eq != std::string_view::npos) env[std::string(kv.substr(0, eq))] = kv.substr(eq + 1);
    }
  }
  for (const auto& [k, v] : o.env) {
    if (v)
      env[k] = *v;
    else
      env.erase(k);
  }
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

}  // namespace

RunResult PosixProcessRunner::run(const RunOptions& o) {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();

  std::vector<std::string> argvStore;
  argvStore.push_back(o.program);
  argvStore.insert(argvStore.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  for (auto& a : argvStore) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envStore = buildEnv(o);
  std::vector<char*> envp;
  for (auto& e : envStore) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::string cwd = o.cwd ? o.cwd->string() : std::string();

  Fd outR, outW, errR, errW, inR, inW, execR, execW;
  makePipe(outR, outW);
  makePipe(errR, errW);
  makePipe(execR, execW);  // closed on successful exec; carries errno otherwise
  if (o.stdinData) makePipe(inR, inW);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw SysError(errno, "fork for " + o.program);
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    ::setpgid(0, 0);
    // Dies with the runner (the forking thread waits in run() until the child ends, so the
    // thread-exit case of PDEATHSIG cannot fire early). If the runner died before this line,
    // nobody would send the signal: leave now.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    int devnull = o.stdinData ? -1 : ::open("/dev/null", O_RDONLY);
    ::dup2(o.stdinData ? inR.fd : devnull, 0);
    ::dup2(outW.fd, 1);
    ::dup2(errW.fd, 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) {
      int e = errno;
      (void)!::write(execW.fd, &e, sizeof e);
      ::_exit(127);
    }
    ::execvpe(argv[0], argv.data(), envp.data());
    int e = errno;
    (void)!::write(execW.fd, &e, sizeof e);
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also from the parent, so the group exists before we may kill it
  outW.reset();
  errW.reset();
  execW.reset();
  inR.reset();

  int execErr = 0;
  ssize_t n = ::read(execR.fd, &execErr, sizeof execErr);
  if (n == static_cast<ssize_t>(sizeof execErr)) {
    int status;
    ::waitpid(pid, &status, 0);
    throw SysError(execErr, "starting " + o.program + (cwd.empty() ? "" : " in " + cwd));
  }
  if (o.onStarted) o.onStarted(pid);

  RunResult r;
  LineSplitter outLines, errLines;
  size_t stdinPos = 0;
  if (o.stdinData && o.stdinData->empty()) inW.reset();
  if (inW.fd >= 0) ::fcntl(inW.fd, F_SETFL, O_NONBLOCK);

  bool killedTerm = false, killedHard = false;
  Clock::time_point termAt{};
  char buf[65536];
  while (outR.fd >= 0 || errR.fd >= 0) {
    pollfd fds[3];
    int nfds = 0;
    int iOut = -1, iErr = -1, iIn = -1;
    if (outR.fd >= 0) fds[iOut = nfds++] = {outR.fd, POLLIN, 0};
    if (errR.fd >= 0) fds[iErr = nfds++] = {errR.fd, POLLIN, 0};
    if (inW.fd >= 0) fds[iIn = nfds++] = {inW.fd, POLLOUT, 0};
    int waitMs = -1;
    auto now = Clock::now();
    if (o.timeout.count() > 0 && !killedHard) {
      auto deadline = killedTerm ? termAt + std::chrono::seconds(3) : start + o.timeout;
      if (now >= deadline) {
        if (!killedTerm) {
          r.timedOut = true;
          killedTerm = true;
          termAt = now;
          ::kill(-pid, SIGTERM);
        } else {
          killedHard = true;
          ::kill(-pid, SIGKILL);
        }
        continue;
      }
      waitMs = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    }
    int pr = ::poll(fds, nfds, waitMs);
    if (pr < 0) {
      if (errno == EINTR) continue;
      ::kill(-pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      throw SysError(errno, "poll on " + o.program);
    }
    auto drain = [&](int idx, Fd& fd, bool isOut) {
      if (idx < 0 || !(fds[idx].revents & (POLLIN | POLLHUP | POLLERR))) return;
      ssize_t got = ::read(fd.fd, buf, sizeof buf);
      if (got <= 0) {
        if (got < 0 && errno == EINTR) return;
        fd.reset();
        return;
      }
      std::string_view chunk(buf, static_cast<size_t>(got));
      if (isOut) {
        if (r.out.size() < o.maxStdout) r.out.append(chunk.substr(0, o.maxStdout - r.out.size()));
        if (o.onStdoutLine) outLines.feed(chunk, o.onStdoutLine);
      } else {
        r.errTail.append(chunk);
        if (r.errTail.size() > 2 * o.stderrTailBytes)
          r.errTail.erase(0, r.errTail.size() - o.stderrTailBytes);
        if (o.onStderrLine) errLines.feed(chunk, o.onStderrLine);
      }
    };
    drain(iOut, outR, true);
    drain(iErr, errR, false);
    if (iIn >= 0 && (fds[iIn].revents & (POLLOUT | POLLERR | POLLHUP))) {
      if (fds[iIn].revents & (POLLERR | POLLHUP)) {
        inW.reset();
      } else {
        ssize_t w = ::write(inW.fd, o.stdinData->data() + stdinPos, o.stdinData->size() - stdinPos);
        if (w > 0) stdinPos += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) inW.reset();
        if (stdinPos >= o.stdinData->size()) inW.reset();
      }
    }
  }
  if (o.onStdoutLine) outLines.finish(o.onStdoutLine);
  if (o.onStderrLine) errLines.finish(o.onStderrLine);
  if (r.errTail.size() > o.stderrTailBytes)
    r.errTail.erase(0, r.errTail.size() - o.stderrTailBytes);

  // Both pipes are closed; the child has exited or closed them. Wait, still under the timeout.
  int status = 0;
  for (;;) {
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) break;
    if (w < 0 && errno != EINTR) break;
    auto now = Clock::now();
    if (o.timeout.count() > 0 && now >= start + o.timeout && !killedHard) {
      r.timedOut = true;
      killedHard = true;
      ::kill(-pid, SIGKILL);
    }
    ::usleep(2000);
  }
  // Whatever the leader did, leave no stragglers of its group behind.
  ::kill(-pid, SIGKILL);
  if (WIFEXITED(status)) {
    r.exitStatus = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exitStatus = -1;
    r.signal = WTERMSIG(status);
  }
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return r;
}

}  // namespace os
}  // namespace runner
