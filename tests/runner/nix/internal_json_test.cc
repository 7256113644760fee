// The internal-json log parser, on lines recorded from Nix 2.8 (tests/data/nix/*.log) and on
// hand-written edge cases.
#include "runner/nix/internal_json.h"

#include <fstream>
#include <map>

#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

using namespace runner::nix;

TEST_CASE("internal-json: a recorded build of three hosts", "[unit][nix]") {
  auto text = runner::os::readFile(tests::dataDir() / "nix" / "build_internal_json.log");
  int builds = 0, stops = 0, progress = 0;
  std::map<uint64_t, std::string> buildDrv;
  std::vector<std::string> logLines;
  int64_t lastDone = -1, lastExpected = -1;
  for (const auto& line : runner::split(text, '\n')) {
    if (line.empty()) continue;
    LogEvent ev = parseLogLine(line);
    REQUIRE_FALSE(std::holds_alternative<PlainLine>(ev));
    if (auto* s = std::get_if<ActivityStart>(&ev); s && s->type == ActivityType::Build) {
      ++builds;
      REQUIRE(s->path());
      buildDrv[s->id] = *s->path();
    } else if (std::holds_alternative<ActivityStop>(ev)) {
      ++stops;
    } else if (auto* r = std::get_if<ActivityResult>(&ev)) {
      if (r->type == ResultType::BuildLogLine)
        logLines.push_back(storePathName(buildDrv.at(r->id)) + ": " + r->text(0));
      if (r->type == ResultType::Progress && r->number(1) > 0) {
        ++progress;
        lastDone = r->number(0);
        lastExpected = r->number(1);
      }
    }
  }
  CHECK(builds == 11);  // 3 config.json, 3 etc, etc-lab-nonce, etc-flake-source, 3 toplevels
  CHECK(stops > builds);
  CHECK(progress > 0);
  CHECK(lastDone == lastExpected);
  CHECK(logLines == std::vector<std::string>{"nixos-system-db1-fake-24.05: built db1",
                                             "nixos-system-web1-fake-24.05: built web1",
                                             "nixos-system-web2-fake-24.05: built web2"});
}

TEST_CASE("internal-json: a recorded failure names the failing derivation", "[unit][nix]") {
  auto text = runner::os::readFile(tests::dataDir() / "nix" / "build_failure_internal_json.log");
  std::vector<std::string> errors;
  for (const auto& line : runner::split(text, '\n')) {
    LogEvent ev = parseLogLine(line);
    if (auto* m = std::get_if<LogMessage>(&ev); m && m->level == 0) errors.push_back(m->msg);
  }
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] ==
        "error: builder for "
        "'/nix/store/5kv8dx1hxvi4v70982g6ik9azggflrbp-nixos-system-db1-fake-24.05.drv' failed "
        "with exit code 1");
}

TEST_CASE("internal-json: odd lines", "[unit][nix]") {
  CHECK(std::holds_alternative<PlainLine>(parseLogLine("building '/nix/store/x.drv'...")));
  CHECK(std::holds_alternative<PlainLine>(parseLogLine("@nix {not json")));
  CHECK(std::holds_alternative<PlainLine>(parseLogLine("@nix {\"id\":1}")));
  CHECK(
      std::holds_alternative<PlainLine>(parseLogLine("@nix {\"action\":\"msg\",\"level\":\"x\"}")));
  auto ev = parseLogLine(R"(@nix {"action":"result","fields":[5,"a",{"x":1}],"id":7,"type":106})");
  auto& r = std::get<ActivityResult>(ev);
  CHECK(r.id == 7);
  CHECK(r.type == ResultType::SetExpected);
  CHECK(r.number(0) == 5);
  CHECK(r.number(1) == 0);
  CHECK(r.text(1) == "a");
  CHECK(r.text(2) == "{\"x\":1}");
  CHECK(r.text(9).empty());
  auto s = std::get<ActivityStart>(
      parseLogLine(R"(@nix {"action":"start","id":3,"level":3,"text":"t","type":108})"));
  CHECK(s.type == ActivityType::Substitute);
  CHECK_FALSE(s.path());
}

TEST_CASE("stripAnsi and nixErrorText", "[unit][nix]") {
  CHECK(stripAnsi("\x1b[31;1merror:\x1b[0m boom") == "error: boom");
  CHECK(nixErrorText("warning: Git tree '/x' is dirty\n"
                     "error: attribute 'foo' missing\n\n"
                     "       at /nix/store/abc-source/hosts/a.nix:4:3:\n"
                     "(use '--show-trace' to show detailed location information)\n") ==
        "error: attribute 'foo' missing\n\n       at /nix/store/abc-source/hosts/a.nix:4:3:");
  CHECK(nixErrorText("warning: w\nsomething odd\n") == "something odd");
}

TEST_CASE("gitFlakeRef and nixStringLiteral", "[unit][nix]") {
  CHECK(gitFlakeRef("/srv/git/infra.git/", "abc") == "git+file:///srv/git/infra.git?rev=abc");
  CHECK(gitFlakeRef("/tmp/a b#c", "abc") == "git+file:///tmp/a%20b%23c?rev=abc");
  CHECK(nixStringLiteral("a\"b\\c${d}$e\n") == R"("a\"b\\c\${d}$e\n")");
}
