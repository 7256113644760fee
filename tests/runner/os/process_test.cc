#include "runner/os/process.h"

#include <signal.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/os/files.h"

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
  for (int i = 0; i < 500 && child == 0; ++i) {
    if (auto text = os::readFileIfExists(pidFile)) child = std::stoi(*text);
    std::this_thread::sleep_for(10ms);
  }
  REQUIRE(child > 0);
  ::kill(runner, SIGKILL);
  ::waitpid(runner, nullptr, 0);
  // The child is re-parented and, with no death signal, would sleep on for a minute.
  bool gone = false;
  for (int i = 0; i < 300 && !gone; ++i) {
    gone = ::kill(child, 0) != 0 || isZombie(child);
    if (!gone) std::this_thread::sleep_for(10ms);
  }
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
