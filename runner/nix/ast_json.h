// A JSON view of the Nix AST (runner/nix/ast.h), for `switchyard parse --json`, tests and
// tools that want to look at what the parser saw.
//
// Every node is an object with "type" (the ExprKind name: "Int", "Select", "Lambda", …) and
// "pos" ([line, column], 1-based). The other keys follow the AST's fields: for example
// {"type":"Var","name":"inputs","scope":"formal","binder":[1,1]} (binder: the position of
// the binding expression, null for globals), {"type":"Select","expr":…,"path":["a",{"dynamic":…}],
// "default":…}, {"type":"Attrs","rec":false,"attrs":{"name":{"kind":"plain","pos":…,"value":…}},
// "dynamic":[…],"inheritFrom":[…]}, string and path "parts" as a list of strings (literal
// text) and objects (interpolated expressions).
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "runner/nix/ast.h"

namespace runner::nix {

// Converts a parsed tree. Never throws (beyond allocation). Nix strings are byte strings:
// the result may hold text that is not valid UTF-8, so serialise it with dumpJson (or with
// nlohmann's error_handler_t::replace), never with a plain dump(), which would throw.
nlohmann::json toJson(const Expr& e);

// toJson(e) serialised; bytes that are not UTF-8 become U+FFFD. indent < 0: one line.
std::string dumpJson(const Expr& e, int indent = -1);

}  // namespace runner::nix
