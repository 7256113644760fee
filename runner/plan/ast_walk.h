// Generic traversal of the Nix AST for analyses: visit every direct child of a node in
// source order (with a label saying which slot it is), and a shallow label of a node (its
// kind and own literal content, not its children). Together they let the planner walk whole
// files and serialise the parts of a file an evaluation touched.
#pragma once

#include <functional>
#include <string>

#include "runner/nix/ast.h"

namespace runner::plan {

// Which position a child occupies in its parent. Cheap to pass around; `text()` spells it
// ("lhs", "body", "arg0", "elem", "attr:<name>", "formal:<name>", …), stable across parses of
// equivalent text, so serialisations compare structurally.
struct Slot {
  const char* kind;                   // "lhs", "attr:", "arg", …
  const std::string* name = nullptr;  // attribute or formal name
  int index = -1;                     // argument / inherit-from index
  bool isAttr() const { return name && kind[0] == 'a' && kind[1] == 't'; }
  std::string text() const;
};

// Calls `f(slot, child)` for each non-null child, in source order.
void forEachChild(const nix::Expr& e,
                  const std::function<void(const Slot& slot, const nix::Expr& child)>& f);

// The node's own content without children: "Var(lib)", "Int(3)", "Select(.a.b)",
// "Lambda(x@{a,b,...})", "BinOp(//)", "String(text|${}|text)", "Path(./hosts/|${})", …
std::string shallowLabel(const nix::Expr& e);

}  // namespace runner::plan
