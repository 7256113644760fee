#include "runner/os/files.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/log.h"

using namespace runner;

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
