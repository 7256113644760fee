// Markdown escaping (runner/report/markdown.h): text that cannot break out of a table cell,
// become HTML, a link or a mention; code spans and blocks whose fences outgrow the text.
#include "runner/report/markdown.h"

#include <catch2/catch.hpp>

#include "runner/core/text.h"

using namespace runner::report;

TEST_CASE("markdown: inline text is escaped so it stays text", "[unit][report]") {
  CHECK(escapeMarkdown("built in 2m14s") == "built in 2m14s");
  CHECK(escapeMarkdown("a|b") == "a\\|b");
  CHECK(escapeMarkdown("*bold* _it_ `code`") == "\\*bold\\* \\_it\\_ \\`code\\`");
  CHECK(escapeMarkdown("<!-- hide --> & <b>") == "&lt;\\!-- hide --&gt; &amp; &lt;b&gt;");
  CHECK(escapeMarkdown("[x](https://evil)") == "\\[x\\]\\(https\\://evil\\)");
  CHECK(escapeMarkdown("ping @alice") == "ping \\@alice");
  CHECK(escapeMarkdown("two\nlines\r\n") == "two lines ");
  CHECK(escapeMarkdown("r\xc3\xa9sum\xc3\xa9 \xe2\x86\x92") == "r\xc3\xa9sum\xc3\xa9 \xe2\x86\x92");
}

TEST_CASE("markdown: code spans outgrow the backticks inside and escape table pipes",
          "[unit][report]") {
  CHECK(codeSpan("modules/core/default.nix") == "`modules/core/default.nix`");
  CHECK(codeSpan("a`b") == "``a`b``");
  CHECK(codeSpan("``x") == "``` ``x ```");
  CHECK(codeSpan("a|b") == "`a\\|b`");
  CHECK(codeSpan("x\ny") == "`x y`");
  CHECK(codeSpan("") == "");
}

TEST_CASE("markdown: code blocks outgrow fences inside, HTML and links", "[unit][report]") {
  CHECK(codeBlock("error: boom") == "```\nerror: boom\n```\n");
  CHECK(codeBlock("line\n", "text") == "```text\nline\n```\n");
  CHECK(codeBlock("```\nnested\n```") == "````\n```\nnested\n```\n````\n");
  CHECK(runner::htmlEscape("<a href='x'>&\"") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;");
  CHECK(linkTarget("https://ci.example.org/runs/12") == "https://ci.example.org/runs/12");
  CHECK(linkTarget("https://x/a b)(<>") == "https://x/a%20b%29%28%3C%3E");
}

TEST_CASE("markdown: a log tail keeps the end, starting at a line and a code point",
          "[unit][report]") {
  CHECK(tailUtf8("short", 100) == "short");
  std::string log = "first line\nsecond line\nerror: builder failed\n";
  CHECK(tailUtf8(log, 30) == "\xe2\x80\xa6\nerror: builder failed\n");
  // never starts inside a multi-byte character: "é" is 2 bytes
  std::string accents = std::string(10, 'x') + "\xc3\xa9\xc3\xa9\xc3\xa9";
  CHECK(tailUtf8(accents, 8) == "\xe2\x80\xa6\n\xc3\xa9\xc3\xa9");
  CHECK(tailUtf8(accents, 7) == "\xe2\x80\xa6\n\xc3\xa9");
}

TEST_CASE("markdown: runs of blank lines collapse, except inside code blocks", "[unit][report]") {
  CHECK(collapseBlankLines("a\n\n\n\nb\n") == "a\n\nb\n");
  CHECK(collapseBlankLines("a\n \n\t\nb") == "a\n \nb");
  CHECK(collapseBlankLines("```\nx\n\n\n\ny\n```\n\n\nz\n") == "```\nx\n\n\n\ny\n```\n\nz\n");
  CHECK(collapseBlankLines("````\n```\n\n\n````\n") == "````\n```\n\n\n````\n");
  CHECK(collapseBlankLines("") == "");
}
