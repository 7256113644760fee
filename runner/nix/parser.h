// The Nix parser: source text -> the AST of runner/nix/ast.h (DESIGN.md §5, issue 3).
//
// A hand-written recursive-descent parser for the whole Nix language, accepting exactly
// what Nix 2.8's Bison grammar (src/libexpr/parser.y) accepts: the same operator precedence
// and associativity, the same desugaring of nested attribute paths (merged like Nix, with
// the same duplicate-attribute errors), and the same scope check (`bindVars`): every
// variable is resolved to its binder, and a variable bound nowhere and not under a `with`
// is an error, as in Nix. Static analysis (the planner) needs exactly this resolution to
// know what `inputs`, `self` or a module argument refer to.
//
// Errors are ParseError with the message "FILE:LINE:COL: message", worded like Nix
// ("syntax error, unexpected '}', expecting ';'", "attribute 'a.b' already defined at
// FILE:1:3", "undefined variable 'x'"). Deeply nested input is rejected with an error
// instead of overflowing the stack (see kMaxNesting).
//
// Thread-safety: parseNix is a pure function; call it from any number of threads.
#pragma once

#include <cstddef>
#include <string_view>

#include "runner/core/error.h"
#include "runner/nix/ast.h"

namespace runner::nix {

// A Nix file that Nix itself would refuse to parse. Bad input: exit status 2.
class ParseError : public InputError {
 public:
  ParseError(std::string_view fileName, Pos pos, const std::string& message);
  Pos pos;              // where the error is
  std::string message;  // without the "FILE:LINE:COL: " prefix
};

// The deepest nesting of expressions accepted (parentheses, operator chains, lambdas, …).
// Nix's own parser gives up ("memory exhausted") at a similar depth.
inline constexpr size_t kMaxNesting = 1000;

// Parses one Nix expression (a whole file). `fileName` is used only in error messages.
// Returns the root of the AST, owned by the caller; never null.
// Throws ParseError when Nix would reject the text at parse time.
ExprPtr parseNix(std::string_view source, std::string_view fileName);

}  // namespace runner::nix
