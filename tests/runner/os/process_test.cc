#include "runner/os/process.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "tests/support/wait.h"

using namespace runner;
using namespace std::chrono_literals;

namespace {
// A killed process whose new parent has not reaped it yet.
bool isZombie(pid_t pid) {
  auto stat = os::readFileIfExists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  size_t close = stat->rfind(')');
  return close != std::string::npos && close + 2 < stat->size() && (*stat)[close + 2] == 'Z';
}
}  // namespace

TEST_CASE("a child's output, exit status and stderr tail come back", "[unit][os]") {
  os::PosixProcessRunner r;
  auto res = r.run({.program = "sh", .args = {"-c", "echo out; echo err >&2; exit 3"}});
  CHECK(res.exitStatus == 3);
  CHECK(res.out == "out\n");
  CHECK(res.errTail == "err\n");
  CHECK(res.describeStatus() == "exited with status 3");
}

TEST_CASE("lines stream to callbacks as they arrive", "[unit][os]") {
  os::PosixProcessRunner r;
  std::vector<std::string> lines;
  RunOptions o{.program = "sh", .args = {"-c", "printf 'a\\nb\\n'; printf c >&2"}};
  o.onStdoutLine = [&](std::string_view l) { lines.emplace_back(l); };
  o.onStderrLine = [&](std::string_view l) { lines.push_back("E:" + std::string(l)); };
  auto res = r.run(o);
  CHECK(res.ok());
  CHECK(lines == std::vector<std::string>{"a", "b", "E:c"});
}

TEST_CASE("a timeout kills the whole process group", "[unit][os]") {
  os::PosixProcessRunner r;
  // the grandchild would keep the pipe open for 30 s if only the shell were killed
  auto res = r.run({.program = "sh", .args = {"-c", "sleep 30 & sleep 30"}, .timeout = 300ms});
  CHECK(res.timedOut);
  CHECK(res.duration < 5s);
  CHECK(res.describeStatus().find("timed out") == 0);
}

TEST_CASE("a child does not outlive a runner that is killed", "[unit][os]") {
  os::TempDir dir;
  const std::string pidFile = (dir.path() / "child.pid").string();
  pid_t runner = ::fork();
  REQUIRE(runner >= 0);
  if (runner == 0) {  // the "daemon": runs a long child, then is SIGKILLed below
    os::PosixProcessRunner r;
    r.run({.program = "sh",
           .args = {"-c", "echo $$ > " + pidFile + ".tmp && mv " + pidFile + ".tmp " + pidFile +
                              " && exec sleep 60"}});
    ::_exit(0);
  }
  pid_t child = 0;
  tests::waitUntil([&] {
    if (auto text = os::readFileIfExists(pidFile)) child = std::stoi(*text);
    return child > 0;
  });
  REQUIRE(child > 0);
  ::kill(runner, SIGKILL);
  ::waitpid(runner, nullptr, 0);
  // The child is re-parented and, with no death signal, would sleep on for a minute.
  bool gone = tests::waitUntil([&] { return ::kill(child, 0) != 0 || isZombie(child); }, 10s);
  CHECK(gone);
  if (!gone) ::kill(child, SIGKILL);
}

TEST_CASE("stdin data reaches the child, env overrides apply", "[unit][os]") {
  os::PosixProcessRunner r;
  RunOptions o{.program = "sh", .args = {"-c", "cat; echo \"$SY_X\""}};
  o.stdinData = std::string(200000, 'z');
  o.env["SY_X"] = "set";
  auto res = r.run(o);
  CHECK(res.ok());
  CHECK(res.out.size() == 200000 + 4);
  CHECK(res.out.substr(200000) == "set\n");
}

TEST_CASE("a missing program is an error, not an exit status", "[unit][os]") {
  os::PosixProcessRunner r;
  CHECK_THROWS_AS(r.run({.program = "/nonexistent/prog"}), SysError);
}

TEST_CASE("a signal is decoded into words", "[unit][os]") {
  os::PosixProcessRunner r;
  auto res = r.run({.program = "sh", .args = {"-c", "kill -9 $$"}});
  CHECK(res.signal == 9);
  CHECK(res.describeStatus().find("SIGKILL") != std::string::npos);
}

TEST_CASE("a line callback that throws leaves no child behind", "[unit][os]") {
  os::TempDir dir;
  const std::string pidFile = (dir.path() / "child.pid").string();
  os::PosixProcessRunner r;
  RunOptions o{.program = "sh",
               .args = {"-c", "echo $$ > " + pidFile + "; echo first; exec sleep 60"}};
  o.onStdoutLine = [](std::string_view) { throw InputError("the log line was refused"); };
  CHECK_THROWS_AS(r.run(o), InputError);
  auto text = os::readFileIfExists(pidFile);
  REQUIRE(text);
  pid_t child = std::stoi(*text);
  // run() has returned: the child was killed and reaped, not left sleeping or as a zombie.
  CHECK(::kill(child, 0) != 0);
}

namespace {
// The unprivileged account the confinement tests switch to (Debian's `nobody`).
constexpr uint32_t kNobody = 65534;
}  // namespace

TEST_CASE("a confined child runs as the other account, without groups or new privileges",
          "[unit][os]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: confinement needs root");
    return;
  }
  os::PosixProcessRunner r;
  RunOptions o{.program = "sh",
               .args = {"-c", "id -u; id -g; id -G; grep NoNewPrivs /proc/self/status"}};
  o.confine = Confinement{kNobody, kNobody, false};
  auto res = r.run(o);
  REQUIRE(res.ok());
  auto lines = split(res.out, '\n');
  REQUIRE(lines.size() >= 4);
  CHECK(lines[0] == "65534");
  CHECK(lines[1] == "65534");
  CHECK(lines[2] == "65534");  // no supplementary groups (root's would show here)
  CHECK(lines[3].find("1") != std::string::npos);
}

TEST_CASE("a confined child cannot read the runner's files or reach a loopback listener",
          "[unit][os]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: confinement needs root");
    return;
  }
  os::TempDir dir;
  const auto secret = dir.path() / "secret";
  os::writeFileAtomic(secret, "hunter2\n", std::filesystem::perms(0600));
  std::filesystem::permissions(dir.path(), std::filesystem::perms(0755));
  // a listener on the runner's loopback: the confined child must not get through
  int sock = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(sock >= 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(sock, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);

  os::PosixProcessRunner r;
  // bash's /dev/tcp is not in dash; busybox nc is not everywhere: use the shell's own test.
  const std::string probe = "cat " + secret.string() + " 2>&1; echo rc=$?; " +
                            "(exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) +
                            ") 2>/dev/null && echo connected || echo unreachable";
  RunOptions o{.program = "bash", .args = {"-c", probe}};
  o.confine = Confinement{kNobody, kNobody, true};
  auto confined = r.run(o);
  REQUIRE(confined.ok());
  CHECK(confined.out.find("hunter2") == std::string::npos);
  CHECK(confined.out.find("Permission denied") != std::string::npos);
  CHECK(confined.out.find("unreachable") != std::string::npos);
  // the same probe unconfined reads and connects: the test can tell the difference
  RunOptions plain{.program = "bash", .args = {"-c", probe}};
  auto open = r.run(plain);
  CHECK(open.out.find("hunter2") != std::string::npos);
  CHECK(open.out.find("connected") != std::string::npos);
  ::close(sock);
}

TEST_CASE("confinement a runner may not grant is an error naming the step", "[unit][os]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: needs root to become an unprivileged runner");
    return;
  }
  // A forked "runner" without privileges asks for confinement: start must fail, not run
  // the child unconfined.
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t runner = ::fork();
  REQUIRE(runner >= 0);
  if (runner == 0) {
    ::close(fds[0]);
    std::string msg;
    if (::setgid(kNobody) != 0 || ::setuid(kNobody) != 0) {
      msg = "could not drop privileges";
    } else {
      os::PosixProcessRunner r;
      RunOptions o{.program = "true"};
      o.confine = Confinement{12345, 12345, false};
      try {
        r.run(o);
        msg = "ran";
      } catch (const SysError& e) {
        msg = e.what();
      }
    }
    (void)!::write(fds[1], msg.data(), msg.size());
    ::_exit(0);
  }
  ::close(fds[1]);
  std::string got;
  char buf[512];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, size_t(n));
  ::close(fds[0]);
  ::waitpid(runner, nullptr, 0);
  CHECK(got.find("dropping its supplementary groups") != std::string::npos);
}
