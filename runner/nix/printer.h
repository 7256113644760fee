// Prints an AST exactly as Nix 2.8's `nix-instantiate --parse` prints its own AST.
//
// This exists for the oracle tests: for every file Nix accepts, printNixParse(parseNix(f))
// must equal `nix-instantiate --parse f` byte for byte, which checks precedence,
// desugaring, string decoding and indentation stripping all at once. It re-applies the
// desugarings Nix performs at parse time and our AST keeps apart: relative paths become
// absolute (canonicalised against `basePath`), `~/x` is prefixed with `home`, `<p>` becomes
// `__findFile __nixPath "p"`, `a - b` becomes `__sub a b`, `a < b` becomes `__lessThan a b`
// and so on. Nix prints `let` bindings and lambda formals in the order of its symbol table
// (roughly: the order in which names first appear, after the names Nix defines at start-up);
// the printer emulates that order. Floats are printed like C++ streams (6 significant
// digits), as Nix does.
#pragma once

#include <string>

#include "runner/nix/ast.h"

namespace runner::nix {

struct NixPrintOptions {
  std::string basePath;  // absolute directory of the parsed file (relative paths resolve here)
  std::string home;      // $HOME, for ~/ paths
  // Print lambda formals and `let` bindings sorted by name instead of in Nix's symbol-table
  // order. That order follows heap addresses in Nix 2.8 and cannot always be reproduced;
  // comparisons that should ignore it print both sides this way.
  bool sortByName = false;
};

// The `nix-instantiate --parse` text of `e` (without the trailing newline).
// REQUIRES: `e` came from parseNix (variables resolved, attribute paths desugared).
std::string printNixParse(const Expr& e, const NixPrintOptions& options);

// Nix's canonPath(absPath(path, base)): "." and ".." removed lexically, no symlinks.
std::string nixAbsPath(std::string_view path, std::string_view base);

}  // namespace runner::nix
