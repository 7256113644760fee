#include "runner/os/files.h"

#include <algorithm>
#include <regex>
#include <string>
#include <sys/statvfs.h>
#include <vector>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/os/log_file.h"

using namespace runner;
namespace fs = std::filesystem;

TEST_CASE("a secret file is read without its newline and redacted from then on", "[unit][os]") {
  os::TempDir dir;
  os::writeFileAtomic(dir.path() / "token", "s3cr3t-token\n", std::filesystem::perms(0600));
  Redactor redactor;
  CHECK(os::readSecretFile(dir.path() / "token", &redactor) == "s3cr3t-token");
  CHECK(redactor.apply("Authorization: token s3cr3t-token") == "Authorization: token [redacted]");
}

TEST_CASE("a missing or empty secret file names the path, never a content", "[unit][os]") {
  os::TempDir dir;
  Redactor redactor;
  CHECK_THROWS_WITH(os::readSecretFile(dir.path() / "absent", &redactor),
                    Catch::Contains("absent: no such file"));
  os::writeFileAtomic(dir.path() / "empty", "\n");
  CHECK_THROWS_WITH(os::readSecretFile(dir.path() / "empty", nullptr),
                    Catch::Contains("empty: secret file is empty"));
}

TEST_CASE("pathUnder keeps names from outside inside their base directory", "[unit][os]") {
  const fs::path base = "/var/lib/switchyard/logs/7";
  CHECK(os::pathUnder(base, "web-01", ".log") == base / "web-01.log");
  CHECK(os::pathUnder(base, "owner/repo", ".git") == base / "owner" / "repo.git");
  CHECK(os::pathUnder(base, "a.b_c") == base / "a.b_c");
  for (const std::string& bad :
       std::vector<std::string>{"", "/etc/x", "../x", "../../../../root/.ssh/authorized_keys2",
                                "a/../../x", "a//b", ".", "..", "a/.", "x\n", "a\\b", "trailing/",
                                std::string("nul\0byte", 8), std::string(300, 'a')}) {
    INFO(bad);
    CHECK_THROWS_AS(os::pathUnder(base, bad, ".log"), InputError);
  }
  CHECK_THROWS_WITH(os::pathUnder(base, "../../x", ".log"),
                    Catch::Contains("\"..\" component") && Catch::Contains(base.string()));
}

TEST_CASE("writeProblem tells a writable directory from a full or missing one", "[unit][os]") {
  os::TempDir tmp("sy-write");
  CHECK_FALSE(os::writeProblem(tmp.path(), 0));
  auto tooLittle = os::writeProblem(tmp.path(), uint64_t(1) << 62);
  REQUIRE(tooLittle);
  CHECK(tooLittle->find("MiB free (at least ") != std::string::npos);
  auto missing = os::writeProblem(tmp.path() / "nope", 0);
  REQUIRE(missing);
  CHECK(missing->find("No such file or directory") != std::string::npos);
  CHECK(fs::is_empty(tmp.path()));  // the probe file is gone
}

TEST_CASE("writeProblem does not count the blocks the file system reserves for root",
          "[unit][os]") {
  // The daemon runs as root, which may write into the reserve; it must stop taking work
  // before that, so the machine stays administrable.
  os::TempDir tmp("sy-write");
  struct statvfs st {};
  REQUIRE(::statvfs(tmp.path().c_str(), &st) == 0);
  const uint64_t avail = uint64_t(st.f_bavail) * st.f_frsize;
  const uint64_t withReserve = uint64_t(st.f_bfree) * st.f_frsize;
  if (withReserve - avail < (uint64_t(4) << 20)) {
    WARN("the file system of " << tmp.path() << " reserves no blocks for root: nothing to check");
    return;
  }
  // more than unprivileged writers may use, less than root could
  auto problem = os::writeProblem(tmp.path(), avail + (withReserve - avail) / 2);
  REQUIRE(problem);
  CHECK(problem->find("MiB free (at least ") != std::string::npos);
}

TEST_CASE("a log file notes where each line starts and when it was written, beside it",
          "[unit][os]") {
  runner::os::TempDir tmp("sy-logtimes");
  const auto log = tmp.path() / "logs" / "web1.log";
  {
    runner::os::LogFile f(log, runner::os::LogFile::Mode::Truncate, nullptr);
    f.line("# build");
    f.line("building");
  }
  {
    runner::os::LogFile f(log, runner::os::LogFile::Mode::Append, nullptr);  // the deploy's
    f.line("# deploy: copy");
  }
  CHECK(runner::os::readFile(log) == "# build\nbuilding\n# deploy: copy\n");
  const auto times = runner::os::readFile(runner::os::LogFile::timesPathOf(log));
  std::regex record("([0-9]+) ([0-9]{13})\n");
  std::vector<std::string> offsets;
  for (auto it = std::sregex_iterator(times.begin(), times.end(), record);
       it != std::sregex_iterator(); ++it)
    offsets.push_back((*it)[1]);
  CHECK(offsets == std::vector<std::string>{"0", "8", "17"});
  // truncating the log starts its times again
  runner::os::LogFile again(log, runner::os::LogFile::Mode::Truncate, nullptr);
  again.line("x");
  CHECK(runner::os::readFile(runner::os::LogFile::timesPathOf(log)).rfind("0 ", 0) == 0);
  CHECK(std::count(times.begin(), times.end(), '\n') == 3);
}
