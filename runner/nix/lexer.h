// The Nix lexer (used by runner/nix/parser.h; exposed for tests and tools).
//
// A hand-written equivalent of Nix 2.8's flex scanner (src/libexpr/lexer.l): the same
// tokens, the same longest-match rules (`x:x` is a URI, `1/2` a path, `.5` a float, `1e5`
// the integer 1 followed by the identifier `e5`), the same mode stack (strings, indented
// strings, interpolated paths) and the same positions (1-based lines and byte columns;
// CR and CR LF count as one line break). String tokens carry their decoded value (escapes
// processed, CR/CR LF normalised in "…" strings like Nix); indented-string pieces are raw
// and are stripped by the parser. Like Nix, a NUL byte outside a string ends the input.
//
// The lexer never allocates per character: identifiers, paths and URIs are views into the
// source; only decoded string pieces own their text.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runner/nix/ast.h"
#include "runner/nix/parser.h"

namespace runner::nix {

enum class Tok : uint8_t {
  Eof,
  Invalid,  // a byte no rule accepts (Bison: "invalid token")
  Id,
  Int,
  Float,
  Path,   // ./a, a/b, /abs, or the first segment of an interpolated path ("./hosts/")
  HPath,  // ~/x
  SPath,  // <nixpkgs>
  Uri,
  Str,     // a piece of a "…" string or of an interpolated path (decoded)
  IndStr,  // a piece of an ''…'' string (raw; see text)
  PathEnd,
  DollarCurly,  // ${
  IndStringOpen,
  IndStringClose,
  Ellipsis,
  If,
  Then,
  Else,
  Assert,
  With,
  Let,
  In,
  Rec,
  Inherit,
  OrKw,
  Eq,
  NEq,
  Leq,
  Geq,
  And,
  Or,
  Impl,
  Update,
  Concat,
  Char,  // a single-character token; see Token::ch
};

struct Token {
  Tok kind = Tok::Eof;
  char ch = 0;            // Tok::Char: the character ('{', ';', '"', …)
  Pos pos;                // where the token starts
  Pos end;                // just after its last byte (Bison's last_line/last_column)
  std::string_view text;  // the source bytes of the token
  std::string value;      // Str/IndStr: the decoded piece
  bool escaped = false;   // IndStr from ''\X: Nix strips no indentation inside it
  bool atEnd = false;     // PathEnd: the path ended at the end of the input
  int64_t intValue = 0;
  double floatValue = 0;
};

// Bison's name for a token in "unexpected X" messages: "ID", "';'", "end of file", …
std::string tokenName(const Token& t);

class Lexer {
 public:
  // REQUIRES: `source` and `fileName` outlive the lexer and every Token it returns.
  Lexer(std::string_view source, std::string_view fileName);

  // Returns the next token in the current mode. At the end it keeps returning Tok::Eof,
  // positioned like Nix (at the start of the last lexeme, whitespace and comments included).
  // Throws ParseError for "path has a trailing slash", "invalid integer", "invalid float".
  Token next();

  std::string_view fileName() const { return fileName_; }

 private:
  enum class Mode : uint8_t { Default, String, IndString, InPath, InPathSlash };

  Token lexDefault();
  Token lexString();
  Token lexIndString();
  Token lexInPath(bool afterSlash);
  Token make(Tok kind, size_t len);
  Token makeChar(char c);
  void advance(size_t len);  // moves over len bytes, updating line/column
  size_t pathCharsEnd(size_t q);
  size_t schemeCharsEnd(size_t q);
  void push(Mode m) { modes_.push_back(m); }
  void pop() {
    if (modes_.size() > 1) modes_.pop_back();
  }
  Mode mode() const { return modes_.back(); }
  [[noreturn]] void fail(Pos pos, const std::string& message) const;

  std::string_view src_;
  std::string_view fileName_;
  size_t at_ = 0;
  uint32_t line_ = 1, col_ = 1;
  Pos lastLexeme_{1, 1};
  std::vector<Mode> modes_;
  std::pair<size_t, size_t> pathRun_{1, 0};    // [start, end) of the last PATH_CHAR run
  std::pair<size_t, size_t> schemeRun_{1, 0};  // the same for URI scheme characters
  size_t noCommentCloseFrom_ = SIZE_MAX;       // no "*/" after this offset
};

// Decodes the body of a "…" string piece like Nix's unescapeStr: \n \r \t, \X -> X,
// CR and CR LF -> LF; stops at a NUL byte.
std::string unescapeString(std::string_view raw);

}  // namespace runner::nix
