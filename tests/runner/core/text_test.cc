#include "runner/core/text.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"

using namespace runner;

TEST_CASE("split, join and trim", "[unit][core]") {
  CHECK(split("a,b,,c", ',') == std::vector<std::string>{"a", "b", "", "c"});
  CHECK(join({"x", "y"}, "/") == "x/y");
  CHECK(trim("  hi \n") == "hi");
}

TEST_CASE("hex round trip and constant-time comparison", "[unit][core]") {
  CHECK(toHex("\x01\xab") == "01ab");
  std::string bytes;
  REQUIRE(fromHex("01AB", bytes));
  CHECK(bytes == "\x01\xab");
  CHECK_FALSE(fromHex("0g", bytes));
  CHECK(constantTimeEquals("abc", "abc"));
  CHECK_FALSE(constantTimeEquals("abc", "abd"));
  CHECK_FALSE(constantTimeEquals("abc", "ab"));
}

TEST_CASE("durations read like a person would write them", "[unit][core]") {
  using std::chrono::milliseconds;
  CHECK(formatDuration(milliseconds(3)) == "3ms");
  CHECK(formatDuration(milliseconds(1234)) == "1.2s");
  CHECK(formatDuration(milliseconds(134000)) == "2m14s");
  CHECK(formatDuration(milliseconds(3 * 3600 * 1000 + 60000)) == "3h1m");
}

TEST_CASE("truncateUtf8 never splits a code point", "[unit][core]") {
  std::string s = "ab\xc3\xa9\xc3\xa9";  // "abéé", 6 bytes
  CHECK(truncateUtf8(s, 6) == s);
  std::string cut = truncateUtf8(s, 5);  // room for "ab" + "…" (3 bytes)
  CHECK(cut == "ab\xe2\x80\xa6");
  CHECK(truncateUtf8(std::string(200, 'x'), 140).size() == 140);
}

TEST_CASE("errors carry their context on one line and map to exit codes", "[unit][core]") {
  InputError e("old.lock: not JSON");
  e.addContext("while reading OLD");
  CHECK(e.describe() == "old.lock: not JSON (while reading OLD)");
  CHECK(exitCodeFor(e) == 2);
  CHECK(exitCodeFor(GitError("boom")) == 1);
  CHECK(exitCodeFor(ConfigError("x")) == 2);
}

TEST_CASE("percentEncode keeps the unreserved characters and those asked for", "[unit][core]") {
  CHECK(percentEncode("a-Z_0.~") == "a-Z_0.~");
  CHECK(percentEncode("a b/c?d&e") == "a%20b%2Fc%3Fd%26e");
  CHECK(percentEncode("/srv/my repo", "/") == "/srv/my%20repo");
  CHECK(percentEncode(std::string("\0\xff", 2), "/") == "%00%FF");
}

TEST_CASE("shellQuote survives single quotes", "[unit][core]") {
  CHECK(shellQuote("it's") == "'it'\\''s'");
}
