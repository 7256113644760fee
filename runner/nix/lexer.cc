#include "runner/nix/lexer.h"

#include <cerrno>
#include <charconv>
#include <cstdlib>

namespace runner::nix {
namespace {

bool isDigit(char c) { return c >= '0' && c <= '9'; }
bool isAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool isIdStart(char c) { return isAlpha(c) || c == '_'; }
bool isIdChar(char c) { return isAlpha(c) || isDigit(c) || c == '_' || c == '\'' || c == '-'; }
// PATH_CHAR [a-zA-Z0-9\.\_\-\+]
bool isPathChar(char c) {
  return isAlpha(c) || isDigit(c) || c == '.' || c == '_' || c == '-' || c == '+';
}
bool isSchemeChar(char c) { return isAlpha(c) || isDigit(c) || c == '+' || c == '-' || c == '.'; }
bool isUriChar(char c) {
  if (isAlpha(c) || isDigit(c)) return true;
  switch (c) {
    case '%':
    case '/':
    case '?':
    case ':':
    case '@':
    case '&':
    case '=':
    case '+':
    case '$':
    case ',':
    case '-':
    case '_':
    case '.':
    case '!':
    case '~':
    case '*':
    case '\'':
      return true;
    default:
      return false;
  }
}
// The single characters the grammar uses as tokens; any other byte is "invalid token".
bool isGrammarChar(char c) {
  switch (c) {
    case ':':
    case '@':
    case ';':
    case '(':
    case ')':
    case '[':
    case ']':
    case '.':
    case ',':
    case '=':
    case '?':
    case '!':
    case '+':
    case '-':
    case '*':
    case '/':
    case '<':
    case '>':
      return true;
    default:
      return false;
  }
}

struct Keyword {
  std::string_view text;
  Tok tok;
};
constexpr Keyword kKeywords[] = {
    {"if", Tok::If},           {"then", Tok::Then}, {"else", Tok::Else}, {"assert", Tok::Assert},
    {"with", Tok::With},       {"let", Tok::Let},   {"in", Tok::In},     {"rec", Tok::Rec},
    {"inherit", Tok::Inherit}, {"or", Tok::OrKw},
};

}  // namespace

std::string unescapeString(std::string_view raw) {
  std::string t;
  t.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    char c = raw[i];
    if (c == '\0') break;
    if (c == '\\' && i + 1 < raw.size()) {
      c = raw[++i];
      if (c == '\0') break;
      if (c == 'n')
        t += '\n';
      else if (c == 'r')
        t += '\r';
      else if (c == 't')
        t += '\t';
      else
        t += c;
    } else if (c == '\r') {
      t += '\n';
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    } else {
      t += c;
    }
  }
  return t;
}

std::string tokenName(const Token& t) {
  switch (t.kind) {
    case Tok::Eof:
      return "end of file";
    case Tok::Invalid:
      return "invalid token";
    case Tok::Id:
      return "ID";
    case Tok::Int:
      return "INT";
    case Tok::Float:
      return "FLOAT";
    case Tok::Path:
      return "PATH";
    case Tok::HPath:
      return "HPATH";
    case Tok::SPath:
      return "SPATH";
    case Tok::Uri:
      return "URI";
    case Tok::Str:
      return "STR";
    case Tok::IndStr:
      return "IND_STR";
    case Tok::PathEnd:
      return "PATH_END";
    case Tok::DollarCurly:
      return "DOLLAR_CURLY";
    case Tok::IndStringOpen:
      return "IND_STRING_OPEN";
    case Tok::IndStringClose:
      return "IND_STRING_CLOSE";
    case Tok::Ellipsis:
      return "ELLIPSIS";
    case Tok::If:
      return "IF";
    case Tok::Then:
      return "THEN";
    case Tok::Else:
      return "ELSE";
    case Tok::Assert:
      return "ASSERT";
    case Tok::With:
      return "WITH";
    case Tok::Let:
      return "LET";
    case Tok::In:
      return "IN";
    case Tok::Rec:
      return "REC";
    case Tok::Inherit:
      return "INHERIT";
    case Tok::OrKw:
      return "OR_KW";
    case Tok::Eq:
      return "EQ";
    case Tok::NEq:
      return "NEQ";
    case Tok::Leq:
      return "LEQ";
    case Tok::Geq:
      return "GEQ";
    case Tok::And:
      return "AND";
    case Tok::Or:
      return "OR";
    case Tok::Impl:
      return "IMPL";
    case Tok::Update:
      return "UPDATE";
    case Tok::Concat:
      return "CONCAT";
    case Tok::Char:
      return std::string("'") + t.ch + "'";
  }
  return "?";
}

Lexer::Lexer(std::string_view source, std::string_view fileName)
    : src_(source), fileName_(fileName) {
  modes_.reserve(16);
  modes_.push_back(Mode::Default);
}

void Lexer::fail(Pos pos, const std::string& message) const {
  throw ParseError(fileName_, pos, message);
}

void Lexer::advance(size_t len) {
  size_t end = at_ + len;
  while (at_ < end) {
    char c = src_[at_++];
    if (c == '\r') {
      if (at_ < end && src_[at_] == '\n') ++at_;
      ++line_;
      col_ = 1;
    } else if (c == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
  }
}

Token Lexer::make(Tok kind, size_t len) {
  Token t;
  t.kind = kind;
  t.pos = {line_, col_};
  lastLexeme_ = t.pos;
  t.text = src_.substr(at_, len);
  advance(len);
  t.end = {line_, col_};
  return t;
}

Token Lexer::makeChar(char c) {
  Token t = make(Tok::Char, 1);
  t.ch = c;
  return t;
}

Token Lexer::next() {
  switch (mode()) {
    case Mode::Default:
      return lexDefault();
    case Mode::String:
      return lexString();
    case Mode::IndString:
      return lexIndString();
    case Mode::InPath:
      return lexInPath(false);
    case Mode::InPathSlash:
      return lexInPath(true);
  }
  return lexDefault();
}

// The end of the run of PATH_CHARs starting at q. Memoised: in "a.b.c.d…" every token
// would otherwise rescan the rest of the run (quadratic time on long runs).
size_t Lexer::pathCharsEnd(size_t q) {
  if (q < pathRun_.first || q > pathRun_.second) {
    size_t i = q;
    while (i < src_.size() && isPathChar(src_[i])) ++i;
    pathRun_ = {q, i};
  }
  return pathRun_.second;
}

size_t Lexer::schemeCharsEnd(size_t q) {
  if (q < schemeRun_.first || q > schemeRun_.second) {
    size_t i = q;
    while (i < src_.size() && isSchemeChar(src_[i])) ++i;
    schemeRun_ = {q, i};
  }
  return schemeRun_.second;
}

Token Lexer::lexDefault() {
  const size_t n = src_.size();
  const char* s = src_.data();
  // Whitespace and comments; each is one lexeme (the end-of-file position follows them).
  for (;;) {
    if (at_ >= n) {
      Token t;
      t.kind = Tok::Eof;
      t.pos = t.end = lastLexeme_;
      return t;
    }
    char c = s[at_];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      size_t q = at_;
      while (q < n && (s[q] == ' ' || s[q] == '\t' || s[q] == '\r' || s[q] == '\n')) ++q;
      lastLexeme_ = {line_, col_};
      advance(q - at_);
      continue;
    }
    if (c == '#') {
      size_t q = at_;
      while (q < n && s[q] != '\r' && s[q] != '\n') ++q;
      lastLexeme_ = {line_, col_};
      advance(q - at_);
      continue;
    }
    if (c == '/' && at_ + 1 < n && s[at_ + 1] == '*' && at_ < noCommentCloseFrom_) {
      size_t close = src_.find("*/", at_ + 2);
      if (close == std::string_view::npos) noCommentCloseFrom_ = at_;  // none later either
      if (close != std::string_view::npos) {
        lastLexeme_ = {line_, col_};
        advance(close + 2 - at_);
        continue;
      }
    }
    break;
  }
  const size_t p = at_;
  const char c = s[p];
  if (c == '\0') {
    // Nix's scanner hands the parser a 0 token: the input ends here.
    lastLexeme_ = {line_, col_};
    src_ = src_.substr(0, p);
    Token t;
    t.kind = Tok::Eof;
    t.pos = t.end = lastLexeme_;
    return t;
  }
  auto at = [&](size_t i) -> char { return i < n ? s[i] : '\0'; };

  // Lengths of the competing longest-match rules (0 = no match).
  auto pathLen = [&](size_t q) -> size_t {  // {PATH_CHAR}*(\/{PATH_CHAR}+)+\/?
    size_t i = pathCharsEnd(q);
    int segments = 0;
    while (i + 1 < n && s[i] == '/' && isPathChar(s[i + 1])) {
      i += 2;
      while (i < n && isPathChar(s[i])) ++i;
      ++segments;
    }
    if (segments == 0) return 0;
    if (i < n && s[i] == '/') ++i;
    return i - q;
  };
  auto pathStartLen = [&](size_t q) -> size_t {  // {PATH_SEG}\$\{  (PATH_SEG = PATH_CHAR* '/')
    size_t i = pathCharsEnd(q);
    if (at(i) == '/' && at(i + 1) == '$' && at(i + 2) == '{') return i + 3 - q;
    return 0;
  };
  auto emitPath = [&](Tok kind, size_t len) {
    Token t = make(kind, len);
    push(t.text.back() == '/' ? Mode::InPathSlash : Mode::InPath);
    return t;
  };

  if (c == '~') {
    // HPATH_START ${ | HPATH
    if (at(p + 1) == '/' && at(p + 2) == '$' && at(p + 3) == '{') return emitPath(Tok::HPath, 2);
    if (at(p + 1) == '/') {
      size_t len = pathLen(p + 1);
      if (len > 0 && s[p + 1] == '/') return emitPath(Tok::HPath, len + 1);
    }
    return make(Tok::Invalid, 1);
  }
  if (c == '"') {
    push(Mode::String);
    return makeChar('"');
  }
  if (c == '\'') {
    if (at(p + 1) == '\'') {
      size_t q = p + 2;
      while (q < n && s[q] == ' ') ++q;
      size_t len = (q < n && s[q] == '\n') ? q + 1 - p : 2;
      push(Mode::IndString);
      return make(Tok::IndStringOpen, len);
    }
    return make(Tok::Invalid, 1);
  }
  if (c == '$' && at(p + 1) == '{') {
    push(Mode::Default);
    return make(Tok::DollarCurly, 2);
  }
  if (c == '{') {
    push(Mode::Default);
    return makeChar('{');
  }
  if (c == '}') {
    pop();
    return makeChar('}');
  }

  // Candidates that may compete: pick the longest, the earlier rule on a tie.
  Tok best = Tok::Invalid;
  size_t bestLen = 0;
  auto consider = [&](Tok kind, size_t len) {
    if (len > bestLen) {
      best = kind;
      bestLen = len;
    }
  };
  bool isPathStart = false;
  char opChar = 0;

  if (c == '.' && at(p + 1) == '.' && at(p + 2) == '.') consider(Tok::Ellipsis, 3);
  switch (c) {  // two-character operators
    case '=':
      if (at(p + 1) == '=') consider(Tok::Eq, 2);
      break;
    case '!':
      if (at(p + 1) == '=') consider(Tok::NEq, 2);
      break;
    case '<':
      if (at(p + 1) == '=') consider(Tok::Leq, 2);
      break;
    case '>':
      if (at(p + 1) == '=') consider(Tok::Geq, 2);
      break;
    case '&':
      if (at(p + 1) == '&') consider(Tok::And, 2);
      break;
    case '|':
      if (at(p + 1) == '|') consider(Tok::Or, 2);
      break;
    case '-':
      if (at(p + 1) == '>') consider(Tok::Impl, 2);
      break;
    case '/':
      if (at(p + 1) == '/') consider(Tok::Update, 2);
      break;
    case '+':
      if (at(p + 1) == '+') consider(Tok::Concat, 2);
      break;
    default:
      break;
  }
  if (isIdStart(c)) {
    size_t q = p + 1;
    while (q < n && isIdChar(s[q])) ++q;
    Tok kind = Tok::Id;
    std::string_view word = src_.substr(p, q - p);
    if (word.size() >= 2 && word.size() <= 7 && c >= 'a' && c <= 'w')
      for (const auto& k : kKeywords)
        if (k.text[0] == c && k.text == word) kind = k.tok;
    consider(kind, q - p);
  }
  if (isDigit(c)) {
    size_t q = p;
    while (q < n && isDigit(s[q])) ++q;
    consider(Tok::Int, q - p);
  }
  if (isDigit(c) || c == '.') {
    // (([1-9][0-9]*\.[0-9]*)|(0?\.[0-9]+))([Ee][+-]?[0-9]+)?
    size_t q = p, len = 0;
    if (c >= '1' && c <= '9') {
      while (q < n && isDigit(s[q])) ++q;
      if (at(q) == '.') {
        ++q;
        while (q < n && isDigit(s[q])) ++q;
        len = q - p;
      }
    } else {
      if (c == '0') ++q;
      if (at(q) == '.' && isDigit(at(q + 1))) {
        q += 2;
        while (q < n && isDigit(s[q])) ++q;
        len = q - p;
      }
    }
    if (len > 0) {
      size_t e = p + len;
      if (at(e) == 'e' || at(e) == 'E') {
        size_t f = e + 1;
        if (at(f) == '+' || at(f) == '-') ++f;
        if (isDigit(at(f))) {
          while (f < n && isDigit(s[f])) ++f;
          len = f - p;
        }
      }
      consider(Tok::Float, len);
    }
  }
  if (isPathChar(c) || c == '/') {
    size_t ps = pathStartLen(p);
    if (ps > bestLen) {
      bestLen = ps;
      isPathStart = true;
    }
    size_t pl = pathLen(p);
    if (pl > bestLen) {
      best = Tok::Path;
      bestLen = pl;
      isPathStart = false;
    }
  }
  if (c == '<') {
    size_t q = p + 1;
    size_t seg = 0;
    bool ok = true;
    for (;;) {
      size_t st = q;
      while (q < n && isPathChar(s[q])) ++q;
      if (q == st) {
        ok = false;
        break;
      }
      ++seg;
      if (at(q) == '/') {
        ++q;
        continue;
      }
      break;
    }
    if (ok && seg > 0 && at(q) == '>') consider(Tok::SPath, q + 1 - p);
  }
  if (isAlpha(c)) {
    size_t q = schemeCharsEnd(p);
    if (at(q) == ':' && isUriChar(at(q + 1))) {
      ++q;
      while (q < n && isUriChar(s[q])) ++q;
      consider(Tok::Uri, q - p);
    }
  }
  if (isPathStart) {
    // Nix re-scans the first segment (PATH_SEG) in the PATH_START state.
    size_t seg = bestLen - 2;
    return emitPath(Tok::Path, seg);
  }
  if (bestLen == 0) {
    opChar = c;
    if (isGrammarChar(opChar)) return makeChar(opChar);
    return make(Tok::Invalid, 1);
  }
  if (best == Tok::Path) return emitPath(Tok::Path, bestLen);
  Token t = make(best, bestLen);
  if (best == Tok::Int) {
    auto [ptr, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), t.intValue);
    if (ec != std::errc()) fail(t.pos, "invalid integer '" + std::string(t.text) + "'");
  } else if (best == Tok::Float) {
    std::string buf(t.text);
    errno = 0;
    t.floatValue = std::strtod(buf.c_str(), nullptr);
    if (errno != 0) fail(t.pos, "invalid float '" + buf + "'");
  }
  return t;
}

Token Lexer::lexString() {
  const size_t n = src_.size();
  const char* s = src_.data();
  const size_t p = at_;
  if (p >= n) {
    Token t;
    t.kind = Tok::Eof;
    t.pos = t.end = lastLexeme_;
    return t;
  }
  if (s[p] == '"') {
    pop();
    return makeChar('"');
  }
  if (s[p] == '$' && p + 1 < n && s[p + 1] == '{') {
    push(Mode::Default);
    return make(Tok::DollarCurly, 2);
  }
  size_t q = p;
  while (q < n) {
    char c = s[q];
    if (c == '"') break;
    if (c == '\\') {
      if (q + 1 < n) {
        q += 2;
        continue;
      }
      break;
    }
    if (c == '$') {
      if (q + 1 >= n) break;
      char d = s[q + 1];
      if (d == '{') break;
      if (d == '"') {
        ++q;  // a '$' right before the closing quote belongs to the text
        break;
      }
      if (d == '\\') {
        if (q + 2 < n) {
          q += 3;
          continue;
        }
        break;
      }
      q += 2;
      continue;
    }
    ++q;
  }
  if (q == p) {
    // A lone '\', '$' or '$\' at the end of the input: Nix's scanner reports end of file.
    Token t = make(Tok::Eof, n - p);
    return t;
  }
  Token t = make(Tok::Str, q - p);
  t.value = unescapeString(t.text);
  return t;
}

Token Lexer::lexIndString() {
  const size_t n = src_.size();
  const char* s = src_.data();
  const size_t p = at_;
  if (p >= n) {
    Token t;
    t.kind = Tok::Eof;
    t.pos = t.end = lastLexeme_;
    return t;
  }
  auto at = [&](size_t i) -> char { return i < n ? s[i] : '\0'; };
  auto piece = [&](size_t len, std::string value) {
    Token t = make(Tok::IndStr, len);
    t.value = std::move(value);
    return t;
  };
  auto textLen = [&]() {  // ([^\$\']|\$[^\{\']|\'[^\'\$])+
    size_t q = p;
    while (q < n) {
      char c = s[q];
      if (c == '$' || c == '\'') {
        if (q + 1 >= n) break;
        char d = s[q + 1];
        if (c == '$' && (d == '{' || d == '\'')) break;
        if (c == '\'' && (d == '\'' || d == '$')) break;
        q += 2;
      } else {
        ++q;
      }
    }
    return q - p;
  };
  char c = s[p];
  if (c == '\'' && at(p + 1) == '\'') {
    char d = at(p + 2);
    if (p + 2 < n && d == '$') return piece(3, "$");
    if (p + 2 < n && d == '\'') return piece(3, "''");
    if (p + 3 < n && d == '\\') {
      Token t = make(Tok::IndStr, 4);
      t.value = unescapeString(t.text.substr(2));
      t.escaped = true;
      return t;
    }
    pop();
    return make(Tok::IndStringClose, 2);
  }
  if (c == '$' && at(p + 1) == '{' && p + 1 < n) {
    push(Mode::Default);
    return make(Tok::DollarCurly, 2);
  }
  size_t len = textLen();
  if (len == 0) return piece(1, std::string(1, c));  // a lone '$' or '\''
  Token t = make(Tok::IndStr, len);
  std::string_view raw = t.text;
  size_t nul = raw.find('\0');
  t.value = std::string(nul == std::string_view::npos ? raw : raw.substr(0, nul));
  return t;
}

Token Lexer::lexInPath(bool afterSlash) {
  const size_t n = src_.size();
  const char* s = src_.data();
  const size_t p = at_;
  if (p + 1 < n && s[p] == '$' && s[p + 1] == '{') {
    pop();
    push(Mode::InPath);
    push(Mode::Default);
    return make(Tok::DollarCurly, 2);
  }
  // {PATH}|{PATH_SEG}|{PATH_CHAR}+, the longest: PATH_CHAR* (/PATH_CHAR+)* /?
  size_t q = p;
  while (q < n && isPathChar(s[q])) ++q;
  while (q + 1 < n && s[q] == '/' && isPathChar(s[q + 1])) {
    q += 2;
    while (q < n && isPathChar(s[q])) ++q;
  }
  if (q < n && s[q] == '/') ++q;
  if (q > p) {
    pop();
    Token t = make(Tok::Str, q - p);
    push(t.text.back() == '/' ? Mode::InPathSlash : Mode::InPath);
    std::string_view raw = t.text;
    t.value = std::string(raw);
    return t;
  }
  if (afterSlash) {
    Pos pos = p >= n ? lastLexeme_ : Pos{line_, col_};
    fail(pos, "path has a trailing slash");
  }
  pop();
  Token t;
  t.kind = Tok::PathEnd;
  t.pos = t.end = {line_, col_};
  t.atEnd = p >= n;
  return t;
}

}  // namespace runner::nix
