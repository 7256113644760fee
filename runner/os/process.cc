#include "runner/os/process.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <grp.h>
#include <linux/close_range.h>
#include <memory>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
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

// What a child that could not start tells its parent through the exec pipe.
enum class StartStep : int { Chdir, Network, Groups, Gid, Uid, NoNewPrivs, Exec };

const char* describeStep(StartStep s) {
  switch (s) {
    case StartStep::Chdir:
      return "changing to its directory";
    case StartStep::Network:
      return "giving it a network namespace of its own (needs root or CAP_SYS_ADMIN)";
    case StartStep::Groups:
      return "dropping its supplementary groups (needs root or CAP_SETGID)";
    case StartStep::Gid:
      return "switching its group (needs root or CAP_SETGID)";
    case StartStep::Uid:
      return "switching its user (needs root or CAP_SETUID)";
    case StartStep::NoNewPrivs:
      return "forbidding it new privileges";
    case StartStep::Exec:
      return "executing it";
  }
  return "starting it";
}

struct StartFailure {
  int err = 0;
  StartStep step = StartStep::Exec;
};

// A started child: the leader of its own process group. Until reap() has collected it, the
// destructor kills the whole group and waits for the leader, so no exit path (a line
// callback that throws, a failed poll) leaves a child behind.
class Child {
 public:
  explicit Child(pid_t pid) : pid_(pid) {}
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ <= 0) return;
    ::kill(-pid_, SIGKILL);
    while (::waitpid(pid_, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  pid_t pid() const { return pid_; }
  void signalGroup(int sig) const { ::kill(-pid_, sig); }
  // Waits for the leader (WNOHANG when !block); true and `status` once it has ended. The
  // group's stragglers get SIGKILL then: nothing of it outlives the call that reaped it.
  bool reap(int& status, bool block) {
    for (;;) {
      pid_t w = ::waitpid(pid_, &status, block ? 0 : WNOHANG);
      if (w == pid_) {
        ::kill(-pid_, SIGKILL);
        pid_ = -1;
        return true;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {  // not ours any more (cannot happen while we hold it); nothing to wait for
        status = 0;
        pid_ = -1;
        return true;
      }
      return false;
    }
  }

 private:
  pid_t pid_;
};

// The child's pipes, parent side.
struct ChildPipes {
  Fd out, err, in;
};

// Forks and execs `o`; returns the started child with the parent's ends of its pipes.
// Throws SysError when it cannot start (with the step that failed for a confined child).
std::unique_ptr<Child> spawn(const RunOptions& o, ChildPipes& pipes) {
  std::vector<std::string> argvStore;
  argvStore.push_back(o.program);
  argvStore.insert(argvStore.end(), o.args.begin(), o.args.end());
  std::vector<char*> argv;
  argv.reserve(argvStore.size() + 1);
  for (auto& a : argvStore) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> envStore = buildEnv(o);
  std::vector<char*> envp;
  envp.reserve(envStore.size() + 1);
  for (auto& e : envStore) envp.push_back(e.data());
  envp.push_back(nullptr);
  const std::string cwd = o.cwd ? o.cwd->string() : std::string();
  const std::optional<Confinement> confine = o.confine;

  Fd outW, errW, inR, execR, execW;
  makePipe(pipes.out, outW);
  makePipe(pipes.err, errW);
  makePipe(execR, execW);  // closed on successful exec; carries a StartFailure otherwise
  if (o.stdinData) makePipe(inR, pipes.in);

  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) throw SysError(errno, "fork for " + o.program);
  if (pid == 0) {
    // Child: only async-signal-safe calls from here on.
    auto fail = [&](StartStep step) {
      StartFailure f{errno, step};
      (void)!::write(execW.fd, &f, sizeof f);
      ::_exit(127);
    };
    ::setpgid(0, 0);
    // A runner that holds capabilities as ambient ones (a systemd unit's AmbientCapabilities
    // for the fork jail, as a non-root user) would hand them to every program it runs, and a
    // switch between two non-zero uids keeps them. Children get none; the confinement below
    // uses this process's effective set, which this does not touch. (EINVAL on kernels
    // without ambient capabilities, which then have none to pass on.)
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    if (confine) {
      if (confine->isolateNetwork && ::unshare(CLONE_NEWNET) != 0) fail(StartStep::Network);
      if (::setgroups(0, nullptr) != 0) fail(StartStep::Groups);
      if (::setresgid(confine->gid, confine->gid, confine->gid) != 0) fail(StartStep::Gid);
      if (::setresuid(confine->uid, confine->uid, confine->uid) != 0) fail(StartStep::Uid);
      if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) fail(StartStep::NoNewPrivs);
    }
    // Dies with the runner (the forking thread waits in run() until the child ends, so the
    // thread-exit case of PDEATHSIG cannot fire early). Set after the user switch, which
    // clears it. If the runner died before this line, nobody would send the signal: leave.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(127);
    int devnull = o.stdinData ? -1 : ::open("/dev/null", O_RDONLY);
    ::dup2(o.stdinData ? inR.fd : devnull, 0);
    ::dup2(outW.fd, 1);
    ::dup2(errW.fd, 2);
    // Whatever else this process has open (a library's descriptor without O_CLOEXEC: a
    // socket, the database) is not the child's business.
    ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) fail(StartStep::Chdir);
    ::execvpe(argv[0], argv.data(), envp.data());
    fail(StartStep::Exec);
  }
  ::setpgid(pid, pid);  // also from the parent, so the group exists before we may kill it
  auto child = std::make_unique<Child>(pid);
  execW.reset();

  StartFailure failure;
  ssize_t n;
  while ((n = ::read(execR.fd, &failure, sizeof failure)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof failure)) {
    int status;
    child->reap(status, true);
    std::string what = failure.step == StartStep::Exec ? "starting " + o.program
                                                       : std::string("starting ") + o.program +
                                                             ": " + describeStep(failure.step);
    if (failure.step == StartStep::Chdir) what += " " + cwd;
    throw SysError(failure.err, what);
  }
  return child;
}

// Moves data between the child's pipes and `r` until both output pipes are closed, enforcing
// the timeout (SIGTERM to the group, SIGKILL 3 s later). Line callbacks run here; an
// exception from one propagates (the caller's Child then kills the group).
void pump(Child& child, ChildPipes& pipes, const RunOptions& o,
          std::chrono::steady_clock::time_point start, RunResult& r, bool& killedHard) {
  using Clock = std::chrono::steady_clock;
  LineSplitter outLines, errLines;
  size_t stdinPos = 0;
  if (o.stdinData && o.stdinData->empty()) pipes.in.reset();
  if (pipes.in.fd >= 0) ::fcntl(pipes.in.fd, F_SETFL, O_NONBLOCK);

  bool killedTerm = false;
  Clock::time_point termAt{};
  char buf[65536];
  while (pipes.out.fd >= 0 || pipes.err.fd >= 0) {
    pollfd fds[3];
    int nfds = 0;
    int iOut = -1, iErr = -1, iIn = -1;
    if (pipes.out.fd >= 0) fds[iOut = nfds++] = {pipes.out.fd, POLLIN, 0};
    if (pipes.err.fd >= 0) fds[iErr = nfds++] = {pipes.err.fd, POLLIN, 0};
    if (pipes.in.fd >= 0) fds[iIn = nfds++] = {pipes.in.fd, POLLOUT, 0};
    int waitMs = -1;
    auto now = Clock::now();
    if (o.timeout.count() > 0 && !killedHard) {
      auto deadline = killedTerm ? termAt + std::chrono::seconds(3) : start + o.timeout;
      if (now >= deadline) {
        if (!killedTerm) {
          r.timedOut = true;
          killedTerm = true;
          termAt = now;
          child.signalGroup(SIGTERM);
        } else {
          killedHard = true;
          child.signalGroup(SIGKILL);
        }
        continue;
      }
      waitMs = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1);
    }
    int pr = ::poll(fds, nfds, waitMs);
    if (pr < 0) {
      if (errno == EINTR) continue;
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
    drain(iOut, pipes.out, true);
    drain(iErr, pipes.err, false);
    if (iIn >= 0 && (fds[iIn].revents & (POLLOUT | POLLERR | POLLHUP))) {
      if (fds[iIn].revents & (POLLERR | POLLHUP)) {
        pipes.in.reset();
      } else {
        ssize_t w =
            ::write(pipes.in.fd, o.stdinData->data() + stdinPos, o.stdinData->size() - stdinPos);
        if (w > 0) stdinPos += static_cast<size_t>(w);
        if (w < 0 && errno != EAGAIN && errno != EINTR) pipes.in.reset();
        if (stdinPos >= o.stdinData->size()) pipes.in.reset();
      }
    }
  }
  if (o.onStdoutLine) outLines.finish(o.onStdoutLine);
  if (o.onStderrLine) errLines.finish(o.onStderrLine);
  if (r.errTail.size() > o.stderrTailBytes)
    r.errTail.erase(0, r.errTail.size() - o.stderrTailBytes);
}

// Both pipes are closed: waits for the leader, still under the timeout, and decodes its end.
void reap(Child& child, const RunOptions& o, std::chrono::steady_clock::time_point start,
          RunResult& r, bool killedHard) {
  int status = 0;
  while (!child.reap(status, false)) {
    if (o.timeout.count() > 0 && std::chrono::steady_clock::now() >= start + o.timeout &&
        !killedHard) {
      r.timedOut = true;
      killedHard = true;
      child.signalGroup(SIGKILL);
    }
    ::usleep(2000);
  }
  if (WIFEXITED(status)) {
    r.exitStatus = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    r.exitStatus = -1;
    r.signal = WTERMSIG(status);
  }
}

}  // namespace

RunResult PosixProcessRunner::run(const RunOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  ChildPipes pipes;
  std::unique_ptr<Child> child = spawn(o, pipes);
  if (o.onStarted) o.onStarted(child->pid());
  RunResult r;
  bool killedHard = false;
  pump(*child, pipes, o, start, r, killedHard);
  reap(*child, o, start, r, killedHard);
  r.duration = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return r;
}

}  // namespace os
}  // namespace runner
