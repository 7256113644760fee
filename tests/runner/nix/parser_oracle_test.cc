// The parser against its oracle: for every file of the corpus in tests/data/nix
// (parse-okay/, parse-fail/, infra/), `nix-instantiate --parse` (Nix 2.8) and our parser
// must accept the same files, print the same AST for accepted ones (byte for byte; should
// Nix's symbol-table order of formals or let bindings ever differ from our emulation, the
// test warns and compares modulo that order), and report syntax errors with the same
// message and position. The [unit] half checks the corpus against the
// directory it sits in, without Nix.
#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "runner/nix/parser.h"
#include "runner/nix/printer.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::nix;

namespace {

std::vector<fs::path> corpus(const std::string& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(tests::dataDir() / "nix" / dir))
    if (e.path().extension() == ".nix") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  return files;
}

struct Outcome {
  bool ok = false;
  std::string text;  // printed AST, or the error message without position
  int line = 0, col = 0;
};

Outcome ours(const fs::path& file) {
  Outcome o;
  std::string source = runner::os::readFile(file);
  try {
    auto ast = parseNix(source, file.string());
    const char* home = std::getenv("HOME");
    o.text = printNixParse(*ast, {file.parent_path().string(), home ? home : ""});
    o.ok = true;
  } catch (const ParseError& e) {
    o.text = e.message;
    o.line = static_cast<int>(e.pos.line);
    o.col = static_cast<int>(e.pos.col);
  }
  return o;
}

Outcome nix(const fs::path& file) {
  Outcome o;
  auto r = tests::run("nix-instantiate", {"--parse", file.string()});
  if (r.exitStatus == 0) {
    o.ok = true;
    o.text = r.out;
    while (!o.text.empty() && o.text.back() == '\n') o.text.pop_back();
    return o;
  }
  // "error: MESSAGE\n\n       at FILE:LINE:COL:"
  static const std::regex re(R"(error: ([^\n]*)\n(?:[^\n]*\n)*?\s+at (.*):(\d+):(\d+))");
  std::smatch m;
  if (std::regex_search(r.errTail, m, re)) {
    o.text = m[1];
    o.line = std::stoi(m[3]);
    o.col = std::stoi(m[4]);
  } else {
    o.text = r.errTail;
  }
  return o;
}

// The printed AST re-parsed and printed with formals and let bindings sorted by name: Nix
// 2.8 orders those by the heap addresses of its symbols, which we can only approximate.
std::string canonical(const std::string& printed) {
  try {
    auto ast = parseNix("with {}; " + printed, "printed.nix");
    NixPrintOptions o{"/", "/"};
    o.sortByName = true;
    return printNixParse(*ast, o);
  } catch (const ParseError& e) {
    return std::string("unparsable: ") + e.what();
  }
}

bool haveNix() { return tests::run("nix-instantiate", {"--version"}).exitStatus == 0; }

}  // namespace

TEST_CASE("corpus: every parse-okay and infra file parses, every parse-fail file fails",
          "[unit][parser]") {
  int checked = 0;
  for (const char* dir : {"parse-okay", "infra"})
    for (const auto& f : corpus(dir)) {
      INFO(f);
      Outcome o = ours(f);
      CHECK(o.ok);
      if (!o.ok) WARN(o.text << " at " << o.line << ":" << o.col);
      ++checked;
    }
  for (const auto& f : corpus("parse-fail")) {
    INFO(f);
    CHECK_FALSE(ours(f).ok);
    ++checked;
  }
  CHECK(checked > 200);
}

TEST_CASE("oracle: the parser agrees with nix-instantiate --parse on the corpus",
          "[integration][nix]") {
  if (!haveNix()) {
    WARN("SKIPPED: nix-instantiate not found; the oracle did not run");
    return;
  }
  int accepted = 0, rejected = 0;
  for (const char* dir : {"parse-okay", "parse-fail", "infra"}) {
    for (const auto& f : corpus(dir)) {
      INFO(f);
      Outcome n = nix(f), o = ours(f);
      REQUIRE(o.ok == n.ok);
      if (n.ok) {
        if (o.text != n.text) {
          WARN("printed AST differs (checking modulo Nix's symbol order) for "
               << f << "\nnix: " << n.text << "\nus:  " << o.text);
          CHECK(canonical(o.text) == canonical(n.text));
        }
        ++accepted;
        continue;
      }
      ++rejected;
      INFO("nix: " << n.text << " at " << n.line << ":" << n.col);
      INFO("us:  " << o.text << " at " << o.line << ":" << o.col);
      // Syntax and lexical errors match exactly. For duplicate attributes and undefined
      // variables we report the position of the offending name (Nix sometimes reports the
      // start of the enclosing binding list), so only the kind of error is compared.
      if (n.text.rfind("attribute '", 0) == 0 || n.text.rfind("undefined variable", 0) == 0 ||
          n.text.rfind("duplicate formal", 0) == 0) {
        CHECK(o.text.substr(0, 12) == n.text.substr(0, 12));
      } else {
        CHECK(o.text == n.text);
        CHECK(o.line == n.line);
        CHECK(o.col == n.col);
      }
    }
  }
  CHECK(accepted > 100);
  CHECK(rejected > 50);
}

TEST_CASE("switchyard parse: exit 0 with --json, exit 2 with file:line:col", "[integration]") {
  auto ok = tests::switchyard(
      {"parse", (tests::dataDir() / "nix/infra/flake-genattrs.nix").string(), "--json"});
  CHECK(ok.exitStatus == 0);
  CHECK(ok.out.find("\"type\": \"Attrs\"") != std::string::npos);
  auto quiet = tests::switchyard({"parse", (tests::dataDir() / "nix/infra/package.nix").string()});
  CHECK(quiet.exitStatus == 0);
  CHECK(quiet.out.empty());
  auto f = tests::dataDir() / "nix/parse-fail/missing-semicolon.nix";
  auto bad = tests::switchyard({"parse", f.string()});
  CHECK(bad.exitStatus == 2);
  CHECK(bad.errTail ==
        "switchyard: error: " + f.string() + ":3:5: syntax error, unexpected '=', expecting ';'\n");
  auto missing = tests::switchyard({"parse", "/nonexistent/x.nix"});
  CHECK(missing.exitStatus == 2);
}
