// Unit tests of the Nix lexer, parser, printer and JSON view (runner/nix/parser.h).
//
// Most expectations are written in the format of `nix-instantiate --parse` (what Nix 2.8
// prints for the same input, recorded by running it on a file in /base with HOME=/home/u),
// which states the whole tree — precedence, desugaring, decoded strings — in one line.
#include "runner/nix/parser.h"

#include <string>

#include <catch2/catch.hpp>

#include "runner/nix/ast_json.h"
#include "runner/nix/lexer.h"
#include "runner/nix/printer.h"

using namespace runner::nix;

namespace {

std::string show(std::string_view src) {
  auto ast = parseNix(src, "/base/t.nix");
  return printNixParse(*ast, {"/base", "/home/u"});
}

// The message of the ParseError `src` throws ("" if it parses).
std::string errorOf(std::string_view src) {
  try {
    parseNix(src, "t.nix");
  } catch (const ParseError& e) {
    return e.what();
  }
  return "";
}

template <class T>
const T& as(const Expr& e) {
  const T* t = e.as<T>();
  REQUIRE(t != nullptr);
  return *t;
}

}  // namespace

TEST_CASE("literals: ints, floats, strings with escapes, URIs", "[unit][parser]") {
  CHECK(show("42") == "42");
  CHECK(show("9223372036854775807") == "9223372036854775807");
  CHECK(show("00") == "0");
  CHECK(show("1.5") == "1.5");
  CHECK(show(".5e-3") == "0.0005");
  CHECK(show("1.") == "1");
  CHECK(show("1.e5") == "100000");
  CHECK(show("123456789.0") == "1.23457e+08");
  CHECK(show(R"("a\nb\t$c \${x} \" \\ \r \q")") == R"("a\nb\t\$c \${x} \" \\ \r q")");
  CHECK(show(R"("$${x}")") == R"("\$\${x}")");
  CHECK(show(R"("a$")") == R"("a\$")");
  CHECK(show("\"a\r\nb\rc\"") == R"("a\nb\nc")");
  CHECK(show("http://x.y/z?q=1&r=2") == R"("http://x.y/z?q=1&r=2")");
  CHECK(show("x:x") == R"("x:x")");  // a URI, as in Nix
  CHECK(show("\"\"") == "\"\"");
  CHECK(show("__curPos") == "__curPos");
}

TEST_CASE("lexing follows flex's longest-match rules", "[unit][parser]") {
  CHECK(show("1/2") == "/base/1/2");    // a path, not a division
  CHECK(show("1.5.3") == "(1.5 0.3)");  // float then float: an application
  CHECK(show("01.5") == "(1 0.5)");
  CHECK(show("x: x.1") == "(x: (x 0.1))");                        // `.1` is a float
  CHECK(errorOf("1e5") == "t.nix:1:2: undefined variable 'e5'");  // int 1, then e5
  CHECK(show("a'b-c: a'b-c") == "(a'b-c: a'b-c)");
  // A NUL byte outside a string ends the input, as in Nix.
  CHECK(show(std::string_view("1 \0 ]", 5)) == "1");
}

TEST_CASE("operators have Nix's precedence and associativity", "[unit][parser]") {
  CHECK(show("x: y: x + y - 3 * 4 / 5 ++ [1 2] // {}") ==
        "(x: (y: ((__sub (x + y) (__div (__mul 3 4) (5 ++ [ (1) (2) ]))) // { })))");
  CHECK(show("x: x // x // x ++ x ++ x + x + x * x * x") ==
        "(x: (x // (x // (((x ++ (x ++ x)) + x) + (__mul (__mul x x) x)))))");
  CHECK(show("a: a -> a -> a") == "(a: (a -> (a -> a)))");
  CHECK(show("x: x < 1 || x > 2 && x >= 3 -> !x == x") ==
        "(x: (((__lessThan x 1) || ((__lessThan 2 x) && (! (__lessThan x 3)))) -> ((! x) == x)))");
  CHECK(show("x: x <= 1") == "(x: (! (__lessThan 1 x)))");
  CHECK(show("-1 - -2") == "(__sub (__sub 0 1) (__sub 0 2))");
  CHECK(show("x: - - x") == "(x: (__sub 0 (__sub 0 x)))");
  CHECK(show("x: -x.a") == "(x: (__sub 0 (x).a))");
  CHECK(show("x: !x ? a") == "(x: (! ((x) ? a)))");
  CHECK(show("x: -x ? a") == "(x: (((__sub 0 x)) ? a))");
  CHECK(show("x: x ? a.b ? c") == "(x: ((((x) ? a.b)) ? c))");
  CHECK(show("x: x ++ x ? a") == "(x: (x ++ ((x) ? a)))");
  CHECK(show("x: !x + x") == "(x: (! (x + x)))");
  CHECK(errorOf("a: a == a == a") == "t.nix:1:11: syntax error, unexpected EQ");
  CHECK(errorOf("a: a < a < a") == "t.nix:1:10: syntax error, unexpected '<'");
}

TEST_CASE("application, select, `or` and calls merged like Nix", "[unit][parser]") {
  CHECK(show("x: (x.a).b (x.c or x) ((x x) x) [x (x) x.y]") ==
        "(x: (((x).a).b (x).c or (x) (x x x) [ (x) (x) ((x).y) ]))");
  CHECK(show("x: x.a or x.b or x") == "(x: (x).a or ((x).b or (x)))");
  CHECK(show("x: x.a or x x") == "(x: ((x).a or (x) x))");
  CHECK(show("x: x.or or 1") == "(x: (x).or or (1))");
  CHECK(show("with {}; map or [] 1") == "(with { }; (map or [ ] 1))");
  CHECK(show("(1 - 2) 3") == "(__sub 1 2 3)");
  CHECK(show("<nixpkgs> {}") == "(__findFile __nixPath \"nixpkgs\" { })");
  CHECK(show("x: x.\"a b\".${\"c\"}.${x}") == "(x: (x).\"a b\".c.\"${x}\")");
}

TEST_CASE("paths keep their text, the printer makes them absolute like Nix", "[unit][parser]") {
  CHECK(show("./a/../../b/./c") == "/b/c");
  CHECK(show("./.") == "/base");
  CHECK(show("~/a/../b") == "/home/u/a/../b");
  CHECK(show("<nixpkgs/lib>") == "(__findFile __nixPath \"nixpkgs/lib\")");
  CHECK(show("x: ./a/${x}/b.nix") == "(x: (/base/a/ + x + \"/b.nix\"))");
  CHECK(show("x: ./${x}") == "(x: (/base/ + x))");
  CHECK(show("x: ./a${x}") == "(x: (/base/a + x))");
  CHECK(show("x: /${x}") == "(x: (/ + x))");

  auto ast = parseNix("host: ./hosts/${host}/default.nix", "t.nix");
  const auto& body = as<ExprPath>(*as<ExprLambda>(*ast).body);
  CHECK(body.pathKind == PathKind::Relative);
  REQUIRE(body.parts.size() == 3);
  CHECK(body.parts[0].text == "./hosts/");
  CHECK(as<ExprVar>(*body.parts[1].expr).name == "host");
  CHECK(body.parts[2].text == "/default.nix");
  CHECK_FALSE(body.literal().has_value());

  auto plain = parseNix("../modules", "t.nix");
  CHECK(as<ExprPath>(*plain).literal() == std::optional<std::string>("../modules"));
  CHECK(as<ExprPath>(*parseNix("~/x", "t.nix")).pathKind == PathKind::Home);
  CHECK(as<ExprPath>(*parseNix("/etc/x", "t.nix")).pathKind == PathKind::Absolute);
  auto search = parseNix("<nixpkgs/lib>", "t.nix");
  CHECK(as<ExprPath>(*search).pathKind == PathKind::Search);
  CHECK(as<ExprPath>(*search).literal() == std::optional<std::string>("nixpkgs/lib"));

  // Nix 2.8's grammar needs an interpolation before a path's second literal piece.
  CHECK(errorOf("./a//b") ==
        "t.nix:1:1: syntax error, unexpected PATH_END, expecting DOLLAR_CURLY");
  CHECK(errorOf("./a//b ]") ==
        "t.nix:1:5: syntax error, unexpected PATH_END, expecting DOLLAR_CURLY");
  CHECK(errorOf("./a//b//c") == "t.nix:1:8: syntax error, unexpected STR, expecting DOLLAR_CURLY");
  CHECK(show("x: ./a//b${x}") == "(x: (/base/a/ + \"/b\" + x))");
  CHECK(errorOf("./a/") == "t.nix:1:1: path has a trailing slash");
  CHECK(errorOf("./a/${\"x\"}/") == "t.nix:1:11: path has a trailing slash");
}

TEST_CASE("indented strings: escapes and Nix's indentation stripping", "[unit][parser]") {
  CHECK(show("''\n  a\n    b\n  ''") == R"("a\n  b\n")");
  CHECK(show("''a''$b''") == R"(("a" + "\$" + "b"))");
  CHECK(show("''a'''b''") == R"(("a" + "''" + "b"))");
  CHECK(show("''a''\\nb''") == R"(("a" + "\n" + "b"))");
  CHECK(show("''''") == "\"\"");
  CHECK(show("''  ''") == "\"\"");
  CHECK(show("'' a'b ''") == "\"a'b \"");
  CHECK(show("x: ''  ${x}''") == "(x: (\"\" + x))");
  CHECK(show("''\n  a ${\"x\"}\n    b\n  ''") == R"(("a " + "x" + "\n  b\n"))");
  CHECK(show("''\n        ''${n} ''\\n ''\\t\n  ''") ==
        R"(("" + "\$" + "{n} " + "\n" + "" + "\t" + "\n"))");
  auto ast = parseNix("''\n  a\n  b\n''", "t.nix");
  const auto& s = as<ExprString>(*ast);
  CHECK(s.indented);
  CHECK(s.literal() == std::optional<std::string>("a\nb\n"));
}

TEST_CASE("attribute sets: nested paths are desugared and merged like Nix", "[unit][parser]") {
  CHECK(show("{ b = 1; a = 2; }") == "{ a = 2; b = 1; }");
  CHECK(show("{ a.b = 1; a = { c = 2; }; }") == "{ a = { b = 1; c = 2; }; }");
  CHECK(show("{ a = { c = 2; }; a.b = 1; }") == "{ a = { b = 1; c = 2; }; }");
  CHECK(show("{ a = rec { }; a.b = 1; }") == "{ a = rec { b = 1; }; }");
  CHECK(show("let x.y.z = 1; x.y.w = 2; in x") == "(let x = { y = { w = 2; z = 1; }; }; in x)");
  CHECK(show("{ ${\"a\"}.b = 1; a.c = 2; }") == "{ a = { b = 1; c = 2; }; }");
  CHECK(show("x: { a.${x}.c = 1; \"q r\" = 2; or = 3; \"if\" = 4; }") ==
        "(x: { a = { \"${x}\" = { c = 1; }; }; \"if\" = 4; or = 3; \"q r\" = 2; })");
  CHECK(show("rec { a = b; b = 1; }") == "rec { a = b; b = 1; }");
  CHECK(show("let { body = 1; a = 2; }") == "(rec { a = 2; body = 1; }).body");

  auto ast = parseNix("{ a.b.c = 1; a.d = 2; }", "t.nix");
  const auto& top = as<ExprAttrs>(*ast);
  REQUIRE(top.attrs.count("a") == 1);
  const auto& a = as<ExprAttrs>(*top.attrs.at("a").value);
  CHECK(a.attrs.size() == 2);
  CHECK(as<ExprInt>(*as<ExprAttrs>(*a.attrs.at("b").value).attrs.at("c").value).value == 1);
  CHECK(top.attrs.at("a").pos.col == 3);
}

TEST_CASE("inherit and inherit (e)", "[unit][parser]") {
  CHECK(show("x: rec { inherit x; inherit (x) y z; }") ==
        "(x: rec { inherit x ; y = (x).y; z = (x).z; })");
  CHECK(show("let a = 1; inherit (a) b c; in b") == "(let a = 1; b = (a).b; c = (a).c; in b)");
  CHECK(show("let x = 1; in let inherit x; in x") == "(let x = 1; in (let inherit x; in x))");
  CHECK(show("x: { inherit (x) or; }") == "(x: { or = (x).or; })");

  auto ast = parseNix("x: let y = 1; in { inherit y; inherit (x) a b; }", "t.nix");
  const auto& let = as<ExprLet>(*as<ExprLambda>(*ast).body);
  const auto& set = as<ExprAttrs>(*let.body);
  const AttrDef& y = set.attrs.at("y");
  CHECK(y.kind == AttrDef::Kind::Inherited);
  CHECK(as<ExprVar>(*y.value).scope == VarScope::Let);
  CHECK(as<ExprVar>(*y.value).binder == &let);
  const AttrDef& b = set.attrs.at("b");
  CHECK(b.kind == AttrDef::Kind::InheritedFrom);
  CHECK(b.value == nullptr);
  REQUIRE(set.inheritFrom.size() == 1);
  CHECK(b.fromIndex == 0);
  CHECK(set.attrs.at("a").fromIndex == 0);
  CHECK(as<ExprVar>(*set.inheritFrom[0]).scope == VarScope::Arg);
}

TEST_CASE("lambdas: formals, defaults, ellipsis, @ on either side", "[unit][parser]") {
  CHECK(show("{ zzz, yyy, a ? 1, ... }@args: a") == "({ zzz, yyy, a ? 1, ... } @ args: a)");
  CHECK(show("args@{ a ? args, ... }: a") == "({ a ? args, ... } @ args: a)");
  CHECK(show("{ }: 1") == "({  }: 1)");
  CHECK(show("{ a, }: 1") == "({ a }: 1)");
  CHECK(show("{...}: 1") == "({ ... }: 1)");
  // Nix prints formals in its symbol-table order: `b` was created first (in a's default).
  CHECK(show("{ a ? b, b }: a") == "({ b, a ? b }: a)");
  CHECK(show("{ pkgs, system, lib }: 1") == "({ system, pkgs, lib }: 1)");
  NixPrintOptions sorted{"/base", "/home/u"};
  sorted.sortByName = true;
  CHECK(printNixParse(*parseNix("{ pkgs, system, lib }: let b = 1; a = 2; in a", "t.nix"),
                      sorted) == "({ lib, pkgs, system }: (let a = 2; b = 1; in a))");

  auto ast = parseNix("inputs@{ self, nixpkgs ? null, ... }: self", "t.nix");
  const auto& lam = as<ExprLambda>(*ast);
  CHECK(lam.arg == "inputs");
  REQUIRE(lam.formals.has_value());
  CHECK(lam.formals->ellipsis);
  REQUIRE(lam.formals->formals.size() == 2);
  CHECK(lam.formals->formals[0].name == "self");
  CHECK(lam.formals->find("nixpkgs") != nullptr);
  CHECK(lam.formals->find("nixpkgs")->defaultValue != nullptr);
  CHECK(lam.formals->find("absent") == nullptr);
  CHECK(as<ExprVar>(*lam.body).scope == VarScope::Formal);
  CHECK(as<ExprVar>(*lam.body).binder == &lam);

  CHECK(errorOf("{ a, a }: a") == "t.nix:1:6: duplicate formal function argument 'a'");
  CHECK(errorOf("x @ { x }: x") == "t.nix:1:1: duplicate formal function argument 'x'");
  CHECK(errorOf("{ x, ... } @ x: x") == "t.nix:1:1: duplicate formal function argument 'x'");
  CHECK(errorOf("{ ... , a }: 1") == "t.nix:1:7: syntax error, unexpected ',', expecting '}'");
  CHECK(errorOf("{ a }") ==
        "t.nix:1:5: syntax error, unexpected end of file, expecting ':' or '@'");
  CHECK(errorOf("{a?1,...}@x:x") == "t.nix:1:11: syntax error, unexpected URI, expecting ID");
}

TEST_CASE("let, with, assert, if", "[unit][parser]") {
  CHECK(show("let a = 1; in assert a; with a; if !a then -a else a.b or 1 <= 2") ==
        "(let a = 1; in assert a; (with a; (if (! a) then (__sub 0 a) else (! (__lessThan 2 "
        "(a).b or (1))))))");
  CHECK(show("let bq = 1; aq = 2; in aq") == "(let bq = 1; aq = 2; in aq)");
  CHECK(show("let in 1") == "(let in 1)");
  CHECK(errorOf("let ${\"a\"}.b = 1; in 2").empty());
  CHECK(errorOf("let \"${a}\" = 1; in 2") == "t.nix:1:1: dynamic attributes not allowed in let");
  CHECK(errorOf("1 + if true then 1 else 2") == "t.nix:1:5: syntax error, unexpected IF");
}

TEST_CASE("variables are resolved to their binders", "[unit][parser]") {
  auto ast = parseNix(
      "{ self, inputs, ... }: let lib = inputs.nixpkgs.lib; in rec { a = lib; b = a; "
      "c = with lib; [ foo map self ]; d = x: x; }",
      "t.nix");
  const auto& lam = as<ExprLambda>(*ast);
  const auto& let = as<ExprLet>(*lam.body);
  const auto& lib = as<ExprSelect>(*let.bindings->attrs.at("lib").value);
  CHECK(as<ExprVar>(*lib.expr).scope == VarScope::Formal);
  REQUIRE(lib.path.size() == 2);
  CHECK(lib.path[0].name == "nixpkgs");
  const auto& set = as<ExprAttrs>(*let.body);
  CHECK(set.recursive);
  CHECK(as<ExprVar>(*set.attrs.at("a").value).scope == VarScope::Let);
  CHECK(as<ExprVar>(*set.attrs.at("b").value).scope == VarScope::Rec);
  CHECK(as<ExprVar>(*set.attrs.at("b").value).binder == &set);
  const auto& with = as<ExprWith>(*set.attrs.at("c").value);
  const auto& list = as<ExprList>(*with.body);
  CHECK(as<ExprVar>(*list.elems[0]).scope == VarScope::With);
  CHECK(as<ExprVar>(*list.elems[0]).binder == &with);
  CHECK(as<ExprVar>(*list.elems[1]).scope == VarScope::Global);  // builtins win over `with`
  CHECK(as<ExprVar>(*list.elems[2]).scope == VarScope::Formal);  // lexical wins over `with`
  const auto& d = as<ExprLambda>(*set.attrs.at("d").value);
  CHECK(as<ExprVar>(*d.body).scope == VarScope::Arg);

  CHECK(errorOf("{ a = b; }") == "t.nix:1:7: undefined variable 'b'");
  CHECK(errorOf("{ a = 1; b = a; }") == "t.nix:1:14: undefined variable 'a'");
  CHECK(errorOf("(with {}; a) + b") == "t.nix:1:16: undefined variable 'b'");
  CHECK(errorOf("let or = 1; in or") == "t.nix:1:16: syntax error, unexpected OR_KW");
  CHECK(errorOf("{ a.b = 1; a = rec { c = b; }; }") == "t.nix:1:26: undefined variable 'b'");
  CHECK(errorOf("fetchurl") == "t.nix:1:1: undefined variable 'fetchurl'");  // not global in 2.8
  CHECK(errorOf("[ builtins true null import map __findFile derivation ]").empty());
}

TEST_CASE("duplicate attributes are rejected like Nix", "[unit][parser]") {
  CHECK(errorOf("{\n  a = 1;\n  a = 2;\n}") ==
        "t.nix:3:3: attribute 'a' already defined at t.nix:2:3");
  CHECK(errorOf("{ a.b = 1; a.b = 2; }") ==
        "t.nix:1:14: attribute 'a.b' already defined at t.nix:1:5");
  CHECK(errorOf("{ a.b = 1; a = { b = 2; }; }") ==
        "t.nix:1:18: attribute 'b' already defined at t.nix:1:5");
  CHECK(errorOf("{ a = 1; a.b = 2; }") ==
        "t.nix:1:10: attribute 'a.b' already defined at t.nix:1:3");
  CHECK(errorOf("x: { a = x; a.b = 1; }") ==
        "t.nix:1:13: attribute 'a.b' already defined at t.nix:1:6");
  CHECK(errorOf("let x = 1; in { inherit x; x = 2; }") ==
        "t.nix:1:28: attribute 'x' already defined at t.nix:1:25");
  CHECK(errorOf("{ inherit ${\"x\"}; x = 1; }") ==
        "t.nix:1:19: attribute 'x' already defined at t.nix:1:11");
  CHECK(errorOf("let x = \"a\"; in { inherit \"${x}\"; }") ==
        "t.nix:1:27: dynamic attributes not allowed in inherit");
}

TEST_CASE("syntax errors carry Nix's wording and position", "[unit][parser]") {
  CHECK(errorOf("{ a = 1 }") == "t.nix:1:9: syntax error, unexpected '}', expecting ';'");
  CHECK(errorOf("1 +") == "t.nix:1:3: syntax error, unexpected end of file");
  CHECK(errorOf("1 +\n\n  ") == "t.nix:1:4: syntax error, unexpected end of file");
  CHECK(errorOf("1 + # c\n") == "t.nix:1:8: syntax error, unexpected end of file");
  CHECK(errorOf("") == "t.nix:1:1: syntax error, unexpected end of file");
  CHECK(errorOf("(1\n  2\n  ]") == "t.nix:3:3: syntax error, unexpected ']', expecting ')'");
  CHECK(errorOf("\"abc") == "t.nix:1:2: syntax error, unexpected end of file, expecting '\"'");
  CHECK(errorOf("\xc3\xa9 + ]") == "t.nix:1:1: syntax error, unexpected invalid token");
  CHECK(errorOf("\"a\n\nb\" ]") ==
        "t.nix:3:4: syntax error, unexpected ']', expecting end of file");
  CHECK(errorOf("{ if = 1; }") == "t.nix:1:3: syntax error, unexpected IF");
  CHECK(errorOf("{ a ; }") == "t.nix:1:5: syntax error, unexpected ';', expecting '.' or '='");
  CHECK(errorOf("x: x.") ==
        "t.nix:1:5: syntax error, unexpected end of file, expecting ID or OR_KW or DOLLAR_CURLY "
        "or '\"'");
  CHECK(errorOf("/* open") == "t.nix:1:1: syntax error, unexpected '/'");
  CHECK(errorOf("9223372036854775808") == "t.nix:1:1: invalid integer '9223372036854775808'");
  CHECK(errorOf("1.0e999") == "t.nix:1:1: invalid float '1.0e999'");
  CHECK(errorOf("1 }") == "t.nix:1:3: syntax error, unexpected '}', expecting end of file");
}

TEST_CASE("ParseError is an InputError with the position split out", "[unit][parser]") {
  try {
    parseNix("{\n  a = ;\n}", "hosts/web.nix");
    FAIL("no error");
  } catch (const runner::InputError& e) {
    const auto* pe = dynamic_cast<const ParseError*>(&e);
    REQUIRE(pe != nullptr);
    CHECK(pe->pos.line == 2);
    CHECK(pe->pos.col == 7);
    CHECK(pe->message == "syntax error, unexpected ';'");
    CHECK(std::string(e.what()) == "hosts/web.nix:2:7: syntax error, unexpected ';'");
  }
}

TEST_CASE("deep nesting is an error, not a stack overflow", "[unit][parser]") {
  std::string parens = std::string(5000, '(') + "1" + std::string(5000, ')');
  CHECK(errorOf(parens).find("expression nested too deeply") != std::string::npos);
  std::string lists = std::string(5000, '[') + std::string(5000, ']');
  CHECK(errorOf(lists).find("nested too deeply") != std::string::npos);
  std::string lambdas = "x: ";
  for (int i = 0; i < 5000; ++i) lambdas += "x: ";
  CHECK(errorOf(lambdas + "x").find("nested too deeply") != std::string::npos);
  std::string chain = "x: x";
  for (int i = 0; i < 5000; ++i) chain += " + x";
  CHECK(errorOf(chain).find("nested too deeply") != std::string::npos);
  std::string path = "{ ";
  for (int i = 0; i < 5000; ++i) path += "a.";
  CHECK(errorOf(path + "b = 1; }").find("nested too deeply") != std::string::npos);
  std::string negs = std::string(5000, '-') + "1";
  CHECK(errorOf(negs).find("nested too deeply") != std::string::npos);
  // Real files are far from the limit.
  std::string ok = std::string(100, '(') + "1" + std::string(100, ')');
  CHECK(show(ok) == "1");
}

TEST_CASE("fuzz regressions", "[unit][parser]") {
  // crash-970ab851: a string with a byte that is not UTF-8 made the JSON dump throw.
  auto ast = parseNix("''\\n  a\\n\\\276    b\\n  c''", "t.nix");
  CHECK_NOTHROW(dumpJson(*ast));
  CHECK(dumpJson(*parseNix("\"\xbe\"", "t.nix")).find("\xef\xbf\xbd") != std::string::npos);
  // Long runs of path characters and unclosed comments must stay linear (no timeout).
  std::string run;
  for (int i = 0; i < 20000; ++i) run += "a.";
  CHECK(errorOf(run).find("t.nix:") == 0);
  std::string comments;
  for (int i = 0; i < 20000; ++i) comments += "/*";
  CHECK(errorOf(comments) == "t.nix:1:6: syntax error, unexpected '*'");  // "/*/*/" is a comment
}

TEST_CASE("JSON view names every node and the scope of variables", "[unit][parser]") {
  auto ast = parseNix("{ inputs, ... }: { a = inputs.self; b = ./x/${\"y\"}; }", "t.nix");
  auto j = toJson(*ast);
  CHECK(j["type"] == "Lambda");
  CHECK(j["pos"] == nlohmann::json::array({1, 1}));
  CHECK(j["formals"]["ellipsis"] == true);
  CHECK(j["formals"]["formals"][0]["name"] == "inputs");
  const auto& a = j["body"]["attrs"]["a"];
  CHECK(a["kind"] == "plain");
  CHECK(a["value"]["type"] == "Select");
  CHECK(a["value"]["path"] == nlohmann::json::array({"self"}));
  CHECK(a["value"]["expr"]["scope"] == "formal");
  CHECK(a["value"]["expr"]["binder"] == nlohmann::json::array({1, 1}));
  const auto& b = j["body"]["attrs"]["b"]["value"];
  CHECK(b["type"] == "Path");
  CHECK(b["kind"] == "relative");
  CHECK(b["parts"][0] == "./x/");
  CHECK(b["parts"][1]["type"] == "String");
}

TEST_CASE("toString(BinOp) and tokenName", "[unit][parser]") {
  CHECK(std::string(toString(BinOp::Update)) == "//");
  CHECK(std::string(toString(BinOp::Concat)) == "++");
  CHECK(std::string(toString(BinOp::Impl)) == "->");
  Lexer lex("{ a = 1; }", "t.nix");
  Token t = lex.next();
  CHECK(tokenName(t) == "'{'");
  CHECK(tokenName(lex.next()) == "ID");
}
