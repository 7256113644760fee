// Generic traversal of the Nix AST for analyses: visit every direct child of a node in
// source order (with a label saying which slot it is), and a shallow label of a node (its
// kind and own literal content, not its children). Together they let the planner walk whole
// files and serialise the parts of a file an evaluation touched.
#pragma once

#include <functional>
#include <string>

#include "runner/nix/ast.h"

namespace runner::plan {

// The children of a node, with the slot each occupies (runner/nix/ast.h).
using nix::forEachChild;
using nix::Slot;

// The node's own content without children: "Var(lib)", "Int(3)", "Select(.a.b)",
// "Lambda(x@{a,b,...})", "BinOp(//)", "String(text|${}|text)", "Path(./hosts/|${})", …
std::string shallowLabel(const nix::Expr& e);

}  // namespace runner::plan
