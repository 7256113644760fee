// Small helpers shared by the evaluator's own files (evaluator.cc, builtins.cc,
// frameworks.cc): making values and describing where code is. Not part of the plan library's
// interface; include it only from those files.
#pragma once

#include <memory>
#include <string>

#include "runner/plan/evaluator.h"

namespace runner::plan {

// A fresh value of kind `k`.
inline std::shared_ptr<Value> make(VKind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

inline ValuePtr boolValue(bool b) {
  auto v = make(VKind::Bool);
  v->b = b;
  return v;
}

// Carries `from`'s openness (and the values with unknown names) over to `to`.
inline void inheritOpen(Value& to, const Value& from) {
  if (!from.open) return;
  to.open = true;
  to.unknownEntries.insert(to.unknownEntries.end(), from.unknownEntries.begin(),
                           from.unknownEntries.end());
  if (to.openReason.empty()) to.openReason = from.openReason;
}

// "file:line" of `e` in the file `env` belongs to, for messages.
inline std::string locate(const nix::Expr* e, const EnvPtr& env) {
  std::string f = env && env->file ? env->file->path : "?";
  if (!e) return f;
  return f + ":" + std::to_string(e->pos.line);
}

}  // namespace runner::plan
