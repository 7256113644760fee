#include "runner/nix/parser.h"

#include <algorithm>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "runner/nix/lexer.h"

namespace runner::nix {
namespace {

std::string formatPos(std::string_view fileName, Pos pos) {
  return std::string(fileName) + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.col);
}

// A string that Nix's parser sees as a plain ExprString (no interpolation, one piece).
bool isPlainString(const Expr& e) {
  const auto* s = e.as<ExprString>();
  return s && !s->uri && (s->parts.empty() || (s->parts.size() == 1 && !s->parts[0].expr));
}

std::string showAttrPath(const std::vector<AttrName>& path) {
  std::string out;
  for (size_t i = 0; i < path.size(); ++i) {
    if (i) out += '.';
    out += path[i].isStatic() ? path[i].name : "\"${...}\"";
  }
  return out;
}

// The names Nix 2.8 puts in the base environment (EvalState::staticBaseEnv).
const std::unordered_set<std::string_view>& globalNames() {
  static const std::unordered_set<std::string_view> names = {
      "abort",
      "baseNameOf",
      "builtins",
      "derivation",
      "derivationStrict",
      "dirOf",
      "false",
      "fetchGit",
      "fetchMercurial",
      "fetchTarball",
      "fetchTree",
      "fromTOML",
      "import",
      "isNull",
      "map",
      "null",
      "placeholder",
      "removeAttrs",
      "scopedImport",
      "throw",
      "toString",
      "true",
      "__add",
      "__addErrorContext",
      "__all",
      "__any",
      "__appendContext",
      "__attrNames",
      "__attrValues",
      "__bitAnd",
      "__bitOr",
      "__bitXor",
      "__catAttrs",
      "__ceil",
      "__compareVersions",
      "__concatLists",
      "__concatMap",
      "__concatStringsSep",
      "__currentSystem",
      "__currentTime",
      "__deepSeq",
      "__div",
      "__elem",
      "__elemAt",
      "__fetchurl",
      "__filter",
      "__filterSource",
      "__findFile",
      "__floor",
      "__foldl'",
      "__fromJSON",
      "__functionArgs",
      "__genList",
      "__genericClosure",
      "__getAttr",
      "__getContext",
      "__getEnv",
      "__getFlake",
      "__groupBy",
      "__hasAttr",
      "__hasContext",
      "__hashFile",
      "__hashString",
      "__head",
      "__intersectAttrs",
      "__isAttrs",
      "__isBool",
      "__isFloat",
      "__isFunction",
      "__isInt",
      "__isList",
      "__isPath",
      "__isString",
      "__langVersion",
      "__length",
      "__lessThan",
      "__listToAttrs",
      "__mapAttrs",
      "__match",
      "__mul",
      "__nixPath",
      "__nixVersion",
      "__parseDrvName",
      "__partition",
      "__path",
      "__pathExists",
      "__readDir",
      "__readFile",
      "__replaceStrings",
      "__seq",
      "__sort",
      "__split",
      "__splitVersion",
      "__storeDir",
      "__storePath",
      "__stringLength",
      "__sub",
      "__substring",
      "__tail",
      "__toFile",
      "__toJSON",
      "__toPath",
      "__toXML",
      "__trace",
      "__tryEval",
      "__typeOf",
      "__unsafeDiscardOutputDependency",
      "__unsafeDiscardStringContext",
      "__unsafeGetAttrPos",
      "__zipAttrsWith",
  };
  return names;
}

// Binary operators: precedence (higher binds tighter) and associativity, as in parser.y.
enum class Assoc { Left, Right, None };
struct OpInfo {
  int prec = 0;  // 0: not a binary operator
  Assoc assoc = Assoc::Left;
  BinOp op = BinOp::Eq;
  bool hasAttr = false;  // '?'
};
constexpr int kPrecNot = 7;
constexpr int kPrecNegate = 12;

OpInfo opInfo(const Token& t) {
  switch (t.kind) {
    case Tok::Impl:
      return {1, Assoc::Right, BinOp::Impl};
    case Tok::Or:
      return {2, Assoc::Left, BinOp::Or};
    case Tok::And:
      return {3, Assoc::Left, BinOp::And};
    case Tok::Eq:
      return {4, Assoc::None, BinOp::Eq};
    case Tok::NEq:
      return {4, Assoc::None, BinOp::NEq};
    case Tok::Leq:
      return {5, Assoc::None, BinOp::Le};
    case Tok::Geq:
      return {5, Assoc::None, BinOp::Ge};
    case Tok::Update:
      return {6, Assoc::Right, BinOp::Update};
    case Tok::Concat:
      return {10, Assoc::Right, BinOp::Concat};
    case Tok::Char:
      switch (t.ch) {
        case '<':
          return {5, Assoc::None, BinOp::Lt};
        case '>':
          return {5, Assoc::None, BinOp::Gt};
        case '+':
          return {8, Assoc::Left, BinOp::Add};
        case '-':
          return {8, Assoc::Left, BinOp::Sub};
        case '*':
          return {9, Assoc::Left, BinOp::Mul};
        case '/':
          return {9, Assoc::Left, BinOp::Div};
        case '?':
          return {11, Assoc::None, BinOp::Eq, true};
        default:
          return {};
      }
    default:
      return {};
  }
}

class Parser {
 public:
  Parser(std::string_view source, std::string_view fileName)
      : lex_(source, fileName), fileName_(fileName) {
    tok_ = lex_.next();
  }

  ExprPtr parseFile() {
    ExprPtr e = parseExpr();
    if (tok_.kind != Tok::Eof) syntaxError({"end of file"});
    return e;
  }

 private:
  // ---- tokens ----
  bool isChar(char c) const { return tok_.kind == Tok::Char && tok_.ch == c; }
  static bool isChar(const Token& t, char c) { return t.kind == Tok::Char && t.ch == c; }

  void advance() {
    if (!ahead_.empty()) {
      tok_ = std::move(ahead_.front());
      ahead_.erase(ahead_.begin());
    } else {
      tok_ = lex_.next();
    }
  }
  // The k-th token after the current one (k >= 1).
  const Token& peek(size_t k) {
    while (ahead_.size() < k) ahead_.push_back(lex_.next());
    return ahead_[k - 1];
  }

  [[noreturn]] void fail(Pos pos, const std::string& message) {
    throw ParseError(fileName_, pos, message);
  }
  [[noreturn]] void syntaxError(std::initializer_list<const char*> expecting) {
    std::string msg = "syntax error, unexpected " + tokenName(tok_);
    bool first = true;
    for (const char* e : expecting) {
      msg += first ? ", expecting " : " or ";
      msg += e;
      first = false;
    }
    fail(tok_.pos, msg);
  }
  void expectChar(char c, const char* name) {
    if (!isChar(c)) syntaxError({name});
    advance();
  }
  void expect(Tok kind, const char* name) {
    if (tok_.kind != kind) syntaxError({name});
    advance();
  }

  struct DepthGuard {
    explicit DepthGuard(Parser& p) : p_(p) {
      if (++p_.depth_ > kMaxNesting)
        p_.fail(p_.tok_.pos, "expression nested too deeply (more than " +
                                 std::to_string(kMaxNesting) + " levels)");
    }
    ~DepthGuard() { --p_.depth_; }
    Parser& p_;
  };
  void deepen(size_t& extra) {
    ++extra;
    if (++depth_ > kMaxNesting)
      fail(tok_.pos,
           "expression nested too deeply (more than " + std::to_string(kMaxNesting) + " levels)");
  }

  // ---- expressions ----
  ExprPtr parseExpr() { return parseFunction(); }

  bool looksLikeFormals() {  // tok_ is '{'
    const Token& t1 = peek(1);
    if (isChar(t1, '}')) {
      const Token& t2 = peek(2);
      return isChar(t2, ':') || isChar(t2, '@');
    }
    if (t1.kind == Tok::Ellipsis) return true;
    if (t1.kind == Tok::Id) {
      const Token& t2 = peek(2);
      return isChar(t2, ',') || isChar(t2, '?') || isChar(t2, '}');
    }
    return false;
  }

  ExprPtr parseFunction() {
    DepthGuard guard(*this);
    Pos pos = tok_.pos;
    switch (tok_.kind) {
      case Tok::Id: {
        const Token& t1 = peek(1);
        if (isChar(t1, ':')) {
          auto lam = std::make_unique<ExprLambda>(pos);
          lam->arg = std::string(tok_.text);
          advance();
          advance();
          lam->body = parseFunction();
          return lam;
        }
        if (isChar(t1, '@')) {
          auto lam = std::make_unique<ExprLambda>(pos);
          lam->arg = std::string(tok_.text);
          advance();
          advance();
          expectChar('{', "'{'");
          lam->formals = parseFormals();
          expectChar(':', "':'");
          lam->body = parseFunction();
          checkFormals(*lam);
          return lam;
        }
        break;
      }
      case Tok::Char:
        if (tok_.ch == '{' && looksLikeFormals()) {
          auto lam = std::make_unique<ExprLambda>(pos);
          advance();
          lam->formals = parseFormals();
          if (isChar('@')) {
            advance();
            if (tok_.kind != Tok::Id) syntaxError({"ID"});
            lam->arg = std::string(tok_.text);
            advance();
            expectChar(':', "':'");
          } else if (isChar(':')) {
            advance();
          } else {
            syntaxError({"':'", "'@'"});
          }
          lam->body = parseFunction();
          checkFormals(*lam);
          return lam;
        }
        break;
      case Tok::Assert: {
        advance();
        auto e = std::make_unique<ExprAssert>(pos);
        e->cond = parseExpr();
        expectChar(';', "';'");
        e->body = parseFunction();
        return e;
      }
      case Tok::With: {
        advance();
        auto e = std::make_unique<ExprWith>(pos);
        e->attrs = parseExpr();
        expectChar(';', "';'");
        e->body = parseFunction();
        return e;
      }
      case Tok::Let: {
        if (isChar(peek(1), '{')) break;  // let { …; body = …; }
        advance();
        auto e = std::make_unique<ExprLet>(pos);
        e->bindings = std::make_unique<ExprAttrs>(pos);
        parseBinds(*e->bindings, /*inLet=*/true);
        if (tok_.kind != Tok::In) syntaxError({});
        advance();
        e->body = parseFunction();
        if (!e->bindings->dynamicAttrs.empty()) fail(pos, "dynamic attributes not allowed in let");
        return e;
      }
      default:
        break;
    }
    return parseIf();
  }

  // After '{': formals up to and including '}'.
  Formals parseFormals() {
    Formals f;
    for (;;) {
      if (isChar('}')) {
        advance();
        return f;
      }
      if (tok_.kind == Tok::Ellipsis) {
        f.ellipsis = true;
        advance();
        expectChar('}', "'}'");
        return f;
      }
      if (tok_.kind != Tok::Id) syntaxError({});
      Formal formal;
      formal.name = std::string(tok_.text);
      formal.pos = tok_.pos;
      advance();
      if (isChar('?')) {
        advance();
        formal.defaultValue = parseExpr();
      }
      f.formals.push_back(std::move(formal));
      if (isChar(',')) {
        advance();
        continue;
      }
      if (isChar('}')) {
        advance();
        return f;
      }
      syntaxError({});
    }
  }

  void checkFormals(const ExprLambda& lam) {
    const auto& fs = lam.formals->formals;
    for (size_t i = 1; i < fs.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (fs[i].name == fs[j].name)
          fail(fs[i].pos, "duplicate formal function argument '" + fs[i].name + "'");
    if (!lam.arg.empty() && lam.formals->find(lam.arg))
      fail(lam.pos, "duplicate formal function argument '" + lam.arg + "'");
  }

  ExprPtr parseIf() {
    if (tok_.kind != Tok::If) return parseOp(1);
    auto e = std::make_unique<ExprIf>(tok_.pos);
    advance();
    e->cond = parseExpr();
    expect(Tok::Then, "THEN");
    e->then = parseExpr();
    expect(Tok::Else, "ELSE");
    e->otherwise = parseExpr();
    return e;
  }

  ExprPtr parseOp(int minPrec) {
    Pos start = tok_.pos;
    ExprPtr lhs = parseUnary();
    size_t extra = 0;
    for (;;) {
      OpInfo info = opInfo(tok_);
      if (info.prec == 0 || info.prec < minPrec) break;
      deepen(extra);
      if (info.hasAttr) {
        advance();
        auto e = std::make_unique<ExprHasAttr>(start);
        e->expr = std::move(lhs);
        e->path = parseAttrPath();
        lhs = std::move(e);
        continue;
      }
      advance();
      ExprPtr rhs = parseOp(info.assoc == Assoc::Right ? info.prec : info.prec + 1);
      auto e = std::make_unique<ExprBinOp>(info.op, start);
      e->lhs = std::move(lhs);
      e->rhs = std::move(rhs);
      lhs = std::move(e);
      if (info.assoc == Assoc::None) {
        OpInfo again = opInfo(tok_);
        if (again.prec == info.prec) syntaxError({});
      }
    }
    depth_ -= extra;
    return lhs;
  }

  ExprPtr parseUnary() {
    if (isChar('!')) {
      DepthGuard guard(*this);
      auto e = std::make_unique<ExprNot>(tok_.pos);
      advance();
      e->expr = parseOp(kPrecNot + 1);
      return e;
    }
    if (isChar('-')) {
      DepthGuard guard(*this);
      auto e = std::make_unique<ExprNeg>(tok_.pos);
      advance();
      e->expr = parseOp(kPrecNegate + 1);
      return e;
    }
    return parseApp();
  }

  bool startsSimple() const {
    switch (tok_.kind) {
      case Tok::Id:
      case Tok::Int:
      case Tok::Float:
      case Tok::IndStringOpen:
      case Tok::Path:
      case Tok::HPath:
      case Tok::SPath:
      case Tok::Uri:
      case Tok::Let:
      case Tok::Rec:
        return true;
      case Tok::Char:
        return tok_.ch == '"' || tok_.ch == '(' || tok_.ch == '{' || tok_.ch == '[';
      default:
        return false;
    }
  }

  ExprPtr parseApp() {
    Pos pos = tok_.pos;
    ExprPtr fn = parseSelect();
    while (startsSimple()) {
      ExprPtr arg = parseSelect();
      if (auto* call = fn->as<ExprCall>()) {
        call->args.push_back(std::move(arg));
      } else {
        auto c = std::make_unique<ExprCall>(pos);
        c->fn = std::move(fn);
        c->args.push_back(std::move(arg));
        fn = std::move(c);
      }
    }
    return fn;
  }

  ExprPtr parseSelect() {
    Pos pos = tok_.pos;
    ExprPtr e = parseSimple();
    if (isChar('.')) {
      advance();
      auto sel = std::make_unique<ExprSelect>(pos);
      sel->expr = std::move(e);
      sel->path = parseAttrPath();
      if (tok_.kind == Tok::OrKw) {
        advance();
        DepthGuard guard(*this);
        sel->orDefault = parseSelect();
      }
      return sel;
    }
    if (tok_.kind == Tok::OrKw) {
      // Nix accepts `f or` as `f` applied to a variable named `or`.
      auto call = std::make_unique<ExprCall>(pos);
      call->fn = std::move(e);
      call->args.push_back(std::make_unique<ExprVar>("or", tok_.pos));
      advance();
      return call;
    }
    return e;
  }

  AttrName parseAttrName() {
    AttrName a;
    a.pos = tok_.pos;
    if (tok_.kind == Tok::Id || tok_.kind == Tok::OrKw) {
      a.name = std::string(tok_.text);
      advance();
      return a;
    }
    ExprPtr e;
    if (isChar('"')) {
      e = parseString();
    } else if (tok_.kind == Tok::DollarCurly) {
      advance();
      e = parseExpr();
      expectChar('}', "'}'");
    } else {
      syntaxError({"ID", "OR_KW", "DOLLAR_CURLY", "'\"'"});
    }
    if (isPlainString(*e)) {
      auto* s = e->as<ExprString>();
      a.name = s->parts.empty() ? std::string() : std::move(s->parts[0].text);
    } else {
      a.dynamic = std::move(e);
    }
    return a;
  }

  std::vector<AttrName> parseAttrPath() {
    std::vector<AttrName> path;
    path.reserve(4);
    path.push_back(parseAttrName());
    while (isChar('.')) {
      advance();
      path.push_back(parseAttrName());
    }
    return path;
  }

  ExprPtr parseSimple() {
    DepthGuard guard(*this);
    Pos pos = tok_.pos;
    switch (tok_.kind) {
      case Tok::Id: {
        ExprPtr e;
        if (tok_.text == "__curPos")
          e = std::make_unique<ExprCurPos>(pos);
        else
          e = std::make_unique<ExprVar>(std::string(tok_.text), pos);
        advance();
        return e;
      }
      case Tok::Int: {
        auto e = std::make_unique<ExprInt>(tok_.intValue, pos);
        advance();
        return e;
      }
      case Tok::Float: {
        auto e = std::make_unique<ExprFloat>(tok_.floatValue, pos);
        advance();
        return e;
      }
      case Tok::IndStringOpen:
        return parseIndString();
      case Tok::Path:
      case Tok::HPath:
        return parsePath();
      case Tok::SPath: {
        auto e = std::make_unique<ExprPath>(pos);
        e->pathKind = PathKind::Search;
        e->parts.push_back({std::string(tok_.text.substr(1, tok_.text.size() - 2)), nullptr});
        advance();
        return e;
      }
      case Tok::Uri: {
        auto e = std::make_unique<ExprString>(pos);
        e->uri = true;
        e->parts.push_back({std::string(tok_.text), nullptr});
        advance();
        return e;
      }
      case Tok::Let: {
        advance();
        expectChar('{', "'{'");
        auto attrs = std::make_unique<ExprAttrs>(pos);
        attrs->recursive = true;
        parseBinds(*attrs, false);
        endBinds();
        auto sel = std::make_unique<ExprSelect>(pos);
        sel->expr = std::move(attrs);
        AttrName body;
        body.name = "body";
        body.pos = pos;
        sel->path.push_back(std::move(body));
        return sel;
      }
      case Tok::Rec: {
        advance();
        expectChar('{', "'{'");
        auto attrs = std::make_unique<ExprAttrs>(pos);
        attrs->recursive = true;
        parseBinds(*attrs, false);
        endBinds();
        return attrs;
      }
      case Tok::Char:
        switch (tok_.ch) {
          case '"':
            return parseString();
          case '(': {
            advance();
            ExprPtr e = parseExpr();
            expectChar(')', "')'");
            return e;
          }
          case '{': {
            advance();
            auto attrs = std::make_unique<ExprAttrs>(pos);
            parseBinds(*attrs, false);
            endBinds();
            return attrs;
          }
          case '[': {
            advance();
            auto list = std::make_unique<ExprList>(pos);
            while (startsSimple()) list->elems.push_back(parseSelect());
            if (!isChar(']')) syntaxError({});
            advance();
            return list;
          }
          default:
            break;
        }
        break;
      default:
        break;
    }
    syntaxError({});
  }

  // tok_ is the opening '"'.
  std::unique_ptr<ExprString> parseString() {
    auto s = std::make_unique<ExprString>(tok_.pos);
    advance();
    for (;;) {
      if (tok_.kind == Tok::Str) {
        s->parts.push_back({std::move(tok_.value), nullptr});
        advance();
      } else if (tok_.kind == Tok::DollarCurly) {
        advance();
        StringPart part;
        part.expr = parseExpr();
        expectChar('}', "'}'");
        s->parts.push_back(std::move(part));
      } else if (isChar('"')) {
        advance();
        return s;
      } else {
        syntaxError({"'\"'"});
      }
    }
  }

  // A piece of an indented string before indentation stripping.
  struct IndPiece {
    std::string text;
    ExprPtr expr;          // an interpolation
    bool escaped = false;  // from ''\X: Nix leaves it alone, like an interpolation
  };

  ExprPtr parseIndString() {
    auto s = std::make_unique<ExprString>(tok_.pos);
    s->indented = true;
    advance();
    std::vector<IndPiece> raw;
    for (;;) {
      if (tok_.kind == Tok::IndStr) {
        raw.push_back({std::move(tok_.value), nullptr, tok_.escaped});
        advance();
      } else if (tok_.kind == Tok::DollarCurly) {
        advance();
        IndPiece piece;
        piece.expr = parseExpr();
        expectChar('}', "'}'");
        raw.push_back(std::move(piece));
      } else if (tok_.kind == Tok::IndStringClose) {
        advance();
        break;
      } else {
        syntaxError({"IND_STR", "DOLLAR_CURLY", "IND_STRING_CLOSE"});
      }
    }
    stripIndentation(raw, s->parts);
    return s;
  }

  // Nix's stripIndentation: drop the common leading spaces of all lines (whitespace-only
  // lines do not count), and a final line made of spaces only. When measuring, escapes
  // (''\X) end the leading whitespace like interpolations do; when stripping, they are text.
  static void stripIndentation(std::vector<IndPiece>& es, std::vector<StringPart>& out) {
    if (es.empty()) return;
    bool atStartOfLine = true;
    size_t minIndent = 1000000;
    size_t curIndent = 0;
    for (const auto& p : es) {
      if (p.expr || p.escaped) {
        if (atStartOfLine) {
          atStartOfLine = false;
          minIndent = std::min(minIndent, curIndent);
        }
        continue;
      }
      for (char c : p.text) {
        if (atStartOfLine) {
          if (c == ' ') {
            ++curIndent;
          } else if (c == '\n') {
            curIndent = 0;
          } else {
            atStartOfLine = false;
            minIndent = std::min(minIndent, curIndent);
          }
        } else if (c == '\n') {
          atStartOfLine = true;
          curIndent = 0;
        }
      }
    }
    atStartOfLine = true;
    size_t curDropped = 0;
    size_t n = es.size();
    out.reserve(es.size());
    for (auto& p : es) {
      --n;
      if (p.expr) {
        atStartOfLine = false;
        curDropped = 0;
        out.push_back({std::string(), std::move(p.expr)});
        continue;
      }
      std::string s2;
      s2.reserve(p.text.size());
      for (char c : p.text) {
        if (atStartOfLine) {
          if (c == ' ') {
            if (curDropped++ >= minIndent) s2 += c;
          } else if (c == '\n') {
            curDropped = 0;
            s2 += c;
          } else {
            atStartOfLine = false;
            curDropped = 0;
            s2 += c;
          }
        } else {
          s2 += c;
          if (c == '\n') atStartOfLine = true;
        }
      }
      if (n == 0) {
        size_t nl = s2.find_last_of('\n');
        if (nl != std::string::npos && s2.find_first_not_of(' ', nl + 1) == std::string::npos)
          s2.resize(nl + 1);
      }
      out.push_back({std::move(s2), nullptr});
    }
  }

  // Nix's grammar: path_start PATH_END, or path_start followed by an interpolation, or by
  // one STR and then an interpolation, then any pieces. So `./a//b` (a second literal piece
  // without an interpolation) is a syntax error in Nix 2.8, and so it is here.
  ExprPtr parsePath() {
    auto e = std::make_unique<ExprPath>(tok_.pos);
    Pos startPos = tok_.pos;
    if (tok_.kind == Tok::HPath)
      e->pathKind = PathKind::Home;
    else if (!tok_.text.empty() && tok_.text[0] == '/')
      e->pathKind = PathKind::Absolute;
    e->parts.push_back({std::string(tok_.text), nullptr});
    advance();
    bool interpolated = false;
    for (;;) {
      if (tok_.kind == Tok::PathEnd) {
        if (!interpolated && e->parts.size() > 1) {
          // Bison reports PATH_END where Nix's scanner left its location: at the literal
          // piece before it, or (at the end of the input) at the start of the path.
          tok_.pos = tok_.atEnd ? startPos : lastPiecePos_;
          syntaxError({"DOLLAR_CURLY"});
        }
        advance();
        return e;
      }
      if (tok_.kind == Tok::Str) {
        if (!interpolated && e->parts.size() > 1) syntaxError({"DOLLAR_CURLY"});
        lastPiecePos_ = tok_.pos;
        e->parts.push_back({std::move(tok_.value), nullptr});
        advance();
      } else if (tok_.kind == Tok::DollarCurly) {
        advance();
        StringPart part;
        part.expr = parseExpr();
        expectChar('}', "'}'");
        e->parts.push_back(std::move(part));
        interpolated = true;
      } else {
        syntaxError({});
      }
    }
  }

  // ---- bindings ----
  void endBinds() {  // Bison lists no expectations here: too many tokens could follow
    if (!isChar('}')) syntaxError({});
    advance();
  }

  void parseBinds(ExprAttrs& attrs, bool inLet) {
    for (;;) {
      if (tok_.kind == Tok::Inherit) {
        parseInherit(attrs);
        continue;
      }
      if (tok_.kind == Tok::Id || tok_.kind == Tok::OrKw || isChar('"') ||
          tok_.kind == Tok::DollarCurly) {
        Pos pos = tok_.pos;
        std::vector<AttrName> path = parseAttrPath();
        if (!isChar('=')) {
          if (path.size() == 1) syntaxError({"'.'", "'='"});
          syntaxError({"'='"});
        }
        advance();
        ExprPtr value = parseExpr();
        expectChar(';', "';'");
        addAttr(attrs, path, std::move(value), pos);
        continue;
      }
      return;  // the caller expects '}' or IN
    }
  }

  void parseInherit(ExprAttrs& attrs) {
    advance();
    std::optional<size_t> from;
    if (isChar('(')) {
      advance();
      from = attrs.inheritFrom.size();
      attrs.inheritFrom.push_back(parseExpr());
      expectChar(')', "')'");
    }
    for (;;) {
      Pos pos = tok_.pos;
      std::string name;
      if (tok_.kind == Tok::Id || tok_.kind == Tok::OrKw) {
        name = std::string(tok_.text);
        advance();
      } else if (isChar('"') || tok_.kind == Tok::DollarCurly) {
        AttrName a = parseAttrName();
        if (!a.isStatic()) fail(pos, "dynamic attributes not allowed in inherit");
        name = std::move(a.name);
      } else {
        break;
      }
      auto it = attrs.attrs.find(name);
      if (it != attrs.attrs.end())
        fail(pos,
             "attribute '" + name + "' already defined at " + formatPos(fileName_, it->second.pos));
      AttrDef def;
      def.pos = pos;
      if (from) {
        def.kind = AttrDef::Kind::InheritedFrom;
        def.fromIndex = *from;
      } else {
        def.kind = AttrDef::Kind::Inherited;
        def.value = std::make_unique<ExprVar>(name, pos);
      }
      attrs.attrs.emplace(std::move(name), std::move(def));
    }
    expectChar(';', "';'");
  }

  [[noreturn]] void dupAttr(const std::string& shown, Pos pos, Pos prev) {
    fail(pos, "attribute '" + shown + "' already defined at " + formatPos(fileName_, prev));
  }

  // Nix's addAttr: desugars `a.b.c = v;` into nested sets and merges with earlier ones.
  void addAttr(ExprAttrs& top, std::vector<AttrName>& path, ExprPtr value, Pos pos) {
    if (path.size() + depth_ > kMaxNesting)
      fail(pos, "attribute path nested too deeply (more than " + std::to_string(kMaxNesting) +
                    " levels)");
    ExprAttrs* attrs = &top;
    for (size_t i = 0; i + 1 < path.size(); ++i) {
      AttrName& a = path[i];
      if (a.isStatic()) {
        auto it = attrs->attrs.find(a.name);
        if (it != attrs->attrs.end()) {
          ExprAttrs* nested = it->second.kind == AttrDef::Kind::Plain && it->second.value
                                  ? it->second.value->as<ExprAttrs>()
                                  : nullptr;
          if (!nested) dupAttr(showAttrPath(path), a.pos, it->second.pos);
          attrs = nested;
        } else {
          auto nested = std::make_unique<ExprAttrs>(a.pos);
          ExprAttrs* raw = nested.get();
          AttrDef def;
          def.value = std::move(nested);
          def.pos = a.pos;
          attrs->attrs.emplace(a.name, std::move(def));
          attrs = raw;
        }
      } else {
        auto nested = std::make_unique<ExprAttrs>(a.pos);
        ExprAttrs* raw = nested.get();
        attrs->dynamicAttrs.push_back({std::move(a.dynamic), std::move(nested), a.pos});
        attrs = raw;
      }
    }
    AttrName& last = path.back();
    if (!last.isStatic()) {
      attrs->dynamicAttrs.push_back({std::move(last.dynamic), std::move(value), last.pos});
      return;
    }
    auto it = attrs->attrs.find(last.name);
    if (it == attrs->attrs.end()) {
      AttrDef def;
      def.value = std::move(value);
      def.pos = last.pos;
      attrs->attrs.emplace(last.name, std::move(def));
      return;
    }
    ExprAttrs* existing = it->second.kind == AttrDef::Kind::Plain && it->second.value
                              ? it->second.value->as<ExprAttrs>()
                              : nullptr;
    ExprAttrs* incoming = value->as<ExprAttrs>();
    if (!existing || !incoming) dupAttr(showAttrPath(path), last.pos, it->second.pos);
    // Both are attribute sets: merge the new one into the old one, like Nix.
    size_t fromBase = existing->inheritFrom.size();
    for (auto& f : incoming->inheritFrom) existing->inheritFrom.push_back(std::move(f));
    for (auto& [name, def] : incoming->attrs) {
      auto j = existing->attrs.find(name);
      if (j != existing->attrs.end()) dupAttr(name, def.pos, j->second.pos);
      if (def.kind == AttrDef::Kind::InheritedFrom) def.fromIndex += fromBase;
      existing->attrs.emplace(name, std::move(def));
    }
    for (auto& d : incoming->dynamicAttrs) existing->dynamicAttrs.push_back(std::move(d));
  }

  Lexer lex_;
  std::string_view fileName_;
  Token tok_;
  std::vector<Token> ahead_;
  size_t depth_ = 0;
  Pos lastPiecePos_;  // parsePath: the last literal piece after the path's start
};

// ---- scope resolution (Nix's bindVars) ----

struct Scope {
  enum class Kind { Attrs, Lambda, With };
  Kind kind = Kind::Attrs;
  const Scope* up = nullptr;
  const ExprAttrs* attrs = nullptr;    // Attrs: the names it binds
  const ExprLambda* lambda = nullptr;  // Lambda
  const Expr* binder = nullptr;        // the ExprLet / rec ExprAttrs / ExprWith
  VarScope varScope = VarScope::Global;
};

class Binder {
 public:
  explicit Binder(std::string_view fileName) : fileName_(fileName) {}

  void bind(Expr& e, const Scope* env) {
    switch (e.kind) {
      case ExprKind::Var:
        resolve(static_cast<ExprVar&>(e), env);
        return;
      case ExprKind::Attrs: {
        auto& a = static_cast<ExprAttrs&>(e);
        if (a.recursive) {
          Scope scope{Scope::Kind::Attrs, env, &a, nullptr, &a, VarScope::Rec};
          bindAttrs(a, env, &scope);
        } else {
          bindAttrs(a, env, env);
        }
        return;
      }
      case ExprKind::Lambda: {
        auto& l = static_cast<ExprLambda&>(e);
        Scope scope{Scope::Kind::Lambda, env, nullptr, &l, &l, VarScope::Arg};
        if (l.formals)
          for (auto& f : l.formals->formals)
            if (f.defaultValue) bind(*f.defaultValue, &scope);
        bind(*l.body, &scope);
        return;
      }
      case ExprKind::Let: {
        auto& l = static_cast<ExprLet&>(e);
        Scope scope{Scope::Kind::Attrs, env, l.bindings.get(), nullptr, &l, VarScope::Let};
        bindAttrs(*l.bindings, env, &scope);
        bind(*l.body, &scope);
        return;
      }
      case ExprKind::With: {
        auto& w = static_cast<ExprWith&>(e);
        bind(*w.attrs, env);
        Scope scope{Scope::Kind::With, env, nullptr, nullptr, &w, VarScope::With};
        bind(*w.body, &scope);
        return;
      }
      default:  // no scope of its own: its children see `env`
        forEachChild(e, [&](const Slot&, Expr& child) { bind(child, env); });
        return;
    }
  }

 private:
  // `outer` is where `inherit x;` looks; `inner` is where values and dynamic names look.
  void bindAttrs(ExprAttrs& a, const Scope* outer, const Scope* inner) {
    for (auto& f : a.inheritFrom) bind(*f, inner);
    for (auto& [name, def] : a.attrs) {
      if (!def.value) continue;
      bind(*def.value, def.kind == AttrDef::Kind::Inherited ? outer : inner);
    }
    for (auto& d : a.dynamicAttrs) {
      bind(*d.name, inner);
      bind(*d.value, inner);
    }
  }

  void resolve(ExprVar& v, const Scope* env) {
    const Scope* with = nullptr;
    for (const Scope* s = env; s; s = s->up) {
      switch (s->kind) {
        case Scope::Kind::With:
          if (!with) with = s;
          break;
        case Scope::Kind::Attrs:
          if (s->attrs->attrs.count(v.name)) {
            v.scope = s->varScope;
            v.binder = s->binder;
            return;
          }
          break;
        case Scope::Kind::Lambda:
          if (s->lambda->arg == v.name) {
            v.scope = VarScope::Arg;
            v.binder = s->binder;
            return;
          }
          if (s->lambda->formals && s->lambda->formals->find(v.name)) {
            v.scope = VarScope::Formal;
            v.binder = s->binder;
            return;
          }
          break;
      }
    }
    if (globalNames().count(v.name)) {
      v.scope = VarScope::Global;
      v.binder = nullptr;
      return;
    }
    if (!with) throw ParseError(fileName_, v.pos, "undefined variable '" + v.name + "'");
    v.scope = VarScope::With;
    v.binder = with->binder;
  }

  std::string_view fileName_;
};

}  // namespace

ParseError::ParseError(std::string_view fileName, Pos p, const std::string& msg)
    : InputError(formatPos(fileName, p) + ": " + msg), pos(p), message(msg) {}

ExprPtr parseNix(std::string_view source, std::string_view fileName) {
  Parser parser(source, fileName);
  ExprPtr root = parser.parseFile();
  Binder(fileName).bind(*root, nullptr);
  return root;
}

}  // namespace runner::nix
