#include "runner/core/line_splitter.h"

#include <string>
#include <vector>

#include <catch2/catch.hpp>

using runner::LineSplitter;

TEST_CASE("line splitter: lines cut across chunks come out whole, the last one at finish",
          "[unit][core]") {
  LineSplitter lines;
  std::vector<std::string> got;
  auto collect = [&](std::string_view l) { got.emplace_back(l); };
  lines.feed("one\ntw", collect);
  CHECK(got == std::vector<std::string>{"one"});
  lines.feed("o\r\n\nthr", collect);
  CHECK(got == std::vector<std::string>{"one", "two\r", ""});
  lines.feed("ee", collect);
  lines.finish(collect);
  CHECK(got == std::vector<std::string>{"one", "two\r", "", "three"});
  lines.finish(collect);  // nothing left: no empty line
  CHECK(got.size() == 4);
}
