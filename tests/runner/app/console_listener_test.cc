// What `switchyard build` and `deploy` print while the stages run (runner/app/console_listener.h).
#include "runner/app/console_listener.h"

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "runner/core/text.h"

using runner::app::ConsoleListener;

TEST_CASE("console listener: one line per event, progress only when asked", "[unit][cli]") {
  std::ostringstream out;
  ConsoleListener quiet(out, false);
  quiet.hostStarted("web1", "building");
  quiet.hostProgress("web1", "3/10 derivations");
  quiet.hostLine("web1", "building '/nix/store/x-web1.drv'");
  quiet.hostFinished("web1", "built");
  CHECK(out.str() ==
        "[web1] building\n"
        "[web1]   | building '/nix/store/x-web1.drv'\n"
        "[web1] => built\n");
  std::ostringstream out2;
  ConsoleListener chatty(out2, true);
  chatty.hostProgress("db1", "copying 4 paths");
  CHECK(out2.str() == "[db1] copying 4 paths\n");
}

TEST_CASE("console listener: a build's control sequences never reach the terminal",
          "[unit][cli][security]") {
  std::ostringstream out;
  ConsoleListener l(out, true);
  const std::string osc = "\x1b]0;pwned\x07";         // window title
  const std::string clip = "\x1b]52;c;c2VjcmV0\x07";  // clipboard write
  l.hostLine("web1", "ok " + osc + " then " + clip);
  l.hostStarted("web\x1b[2J", "evaluating\r" + osc);
  l.hostProgress("web1", osc);
  l.hostFinished("web1", "failed: " + clip);
  const std::string text = out.str();
  INFO(text);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(text.find('\x07') == std::string::npos);
  CHECK(text.find('\r') == std::string::npos);
  // what was neutralised is still visible, so a reader sees that the build tried
  CHECK(text.find(runner::neutralizeControls(osc)) != std::string::npos);
}

TEST_CASE("console listener: lines from several hosts' threads are never interleaved",
          "[unit][cli]") {
  std::ostringstream out;
  ConsoleListener l(out, true);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&l, t] {
      const std::string host = "h" + std::to_string(t);
      for (int i = 0; i < 500; ++i) l.hostLine(host, std::string(40, char('a' + t)));
    });
  for (auto& t : threads) t.join();
  std::istringstream in(out.str());
  int lines = 0;
  for (std::string line; std::getline(in, line); ++lines) {
    REQUIRE(line.size() == 4 + 5 + 40);  // "[hN]" "   | " and 40 of one letter
    const char c = line.back();
    CHECK(line == "[h" + std::to_string(c - 'a') + "]   | " + std::string(40, c));
  }
  CHECK(lines == 2000);
}
