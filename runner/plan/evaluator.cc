#include "runner/plan/evaluator.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/plan/ast_walk.h"
#include "runner/plan/evaluator_internal.h"

namespace runner::plan {

using namespace runner::nix;

void Trace::merge(const Trace& o) {
  if (o.nodes.empty() && o.externals.empty() && o.inputs.empty()) return;
  nodes.insert(o.nodes.begin(), o.nodes.end());
  externals.insert(o.externals.begin(), o.externals.end());
  inputs.insert(o.inputs.begin(), o.inputs.end());
}

void Carried::merge(const Carried& o) {
  paths.insert(o.paths.begin(), o.paths.end());
  inputs.insert(o.inputs.begin(), o.inputs.end());
  dynamic.insert(dynamic.end(), o.dynamic.begin(), o.dynamic.end());
  selfWhole = selfWhole || o.selfWhole;
}

namespace {

const std::set<std::string>& selfRevisionAttrs() {
  static const std::set<std::string> k = {"rev",           "shortRev",     "dirtyRev",
                                          "dirtyShortRev", "lastModified", "lastModifiedDate",
                                          "narHash",       "revCount",     "submodules"};
  return k;
}

bool isCommitId(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

// Joins a path-like base with appended text ("/hosts/x") into a normalised repo path.
std::optional<std::string> appendPath(const std::string& base, const std::string& text) {
  std::string joined = base.empty() ? text : base + "/" + text;
  return resolveRelative("", joined);
}

}  // namespace

Evaluator::Evaluator(SourceTree& tree, std::set<std::string> inputs, EvalLimits limits)
    : tree_(tree), inputs_(std::move(inputs)), limits_(limits) {}

void Evaluator::charge(uint64_t units) {
  work_ += units;
  if (work_ > limits_.maxWork)
    throw PlanError("the static planner's evaluation of the flake at " + tree_.commit() +
                    " stopped after " + std::to_string(limits_.maxWork) +
                    " units of work (unbounded recursion, or values built up exponentially)");
}

void Evaluator::chargeText(size_t bytes, size_t total) {
  if (std::max(bytes, total) > limits_.maxStringBytes)
    throw PlanError("the static planner's evaluation of the flake at " + tree_.commit() +
                    " built a string longer than " + std::to_string(limits_.maxStringBytes) +
                    " bytes");
  charge(bytes / 16);
}

const ValuePtr& Evaluator::charged(const ValuePtr& v) {
  // What a step returns may be a copy of what it was given: count its size (passing a large
  // value along is counted again, which real flakes, with small values, do not notice).
  if (v) charge((v->text ? v->text->size() / 64 : 0) + v->elems.size() / 8 + v->attrs.size() / 8);
  return v;
}

bool isLockedFlakeRef(const std::string& ref) {
  auto q = ref.find('?');
  if (q != std::string::npos) {
    for (const auto& param : split(ref.substr(q + 1), '&')) {
      if (startsWith(param, "narHash=") && param.size() > 8) return true;
      if (startsWith(param, "rev=") && isCommitId(param.substr(4))) return true;
    }
  }
  std::string path = ref.substr(0, q);
  for (const char* scheme : {"github:", "gitlab:", "sourcehut:"}) {
    if (!startsWith(path, scheme)) continue;
    auto parts = split(path.substr(std::string_view(scheme).size()), '/');
    return parts.size() == 3 && isCommitId(parts[2]);
  }
  return false;
}

Evaluator::~Evaluator() {
  // Thunks, environments and values point at each other in cycles (a `rec` set's env holds
  // its attributes' thunks, which hold the env; a forced thunk's value holds the env it was
  // made in). Cut every link, so each object is freed when its last outside owner lets go.
  for (const auto& t : thunks_) {
    t->compute = nullptr;
    t->value.reset();
    t->env.reset();
  }
  for (const auto& e : envs_) {
    e->vars.clear();
    e->withAttrs.reset();
    e->parent.reset();
  }
}

ThunkPtr Evaluator::newThunk() {
  charge(1);
  thunks_.push_back(std::make_shared<Thunk>());
  return thunks_.back();
}

EnvPtr Evaluator::newEnv() {
  charge(1);
  envs_.push_back(std::make_shared<Env>());
  return envs_.back();
}

ThunkPtr Evaluator::thunk(const Expr& e, const EnvPtr& env) {
  auto t = newThunk();
  t->expr = &e;
  t->env = env;
  return t;
}

ThunkPtr Evaluator::ready(ValuePtr v) {
  auto t = newThunk();
  t->value = std::move(v);
  return t;
}

ValuePtr Evaluator::unknown(std::string reason, Carried carried) {
  auto v = make(VKind::Unknown);
  v->reason = std::move(reason);
  v->carried = std::move(carried);
  return v;
}

ValuePtr Evaluator::str(std::string s) {
  auto v = make(VKind::String);
  v->text = std::move(s);
  return v;
}

ValuePtr Evaluator::pathValue(PathRef p) {
  auto v = make(VKind::Path);
  v->path = std::move(p);
  return v;
}

Carried Evaluator::valueCarried(const ValuePtr& v, int depth) {
  charge(1);
  Carried c = v->carried;
  switch (v->kind) {
    case VKind::Path:
    case VKind::String:
      if (v->path) c.paths.insert(*v->path);
      break;
    case VKind::Input:
      if (v->input != "self") c.inputs.insert(v->input);
      break;
    case VKind::Self:
      c.selfWhole = true;
      break;
    case VKind::Attrs:
    case VKind::Lambda:
      if (v->origin && v->originEnv && scanExpr) {
        c.merge(scanExpr(*v->origin, v->originEnv));
      } else if (v->kind == VKind::Attrs && depth < 3) {
        for (const auto& [k, t] : v->attrs) c.merge(valueCarried(force(t), depth + 1));
      }
      if (depth < 3)
        for (const auto& e : v->unknownEntries) c.merge(valueCarried(force(e), depth + 1));
      if (!v->openReason.empty()) c.dynamic.push_back(v->openReason);
      break;
    case VKind::List:
      if (depth < 3)
        for (const auto& t : v->elems) c.merge(valueCarried(force(t), depth + 1));
      break;
    default:
      break;
  }
  return c;
}

void Evaluator::pushTrace(Trace* t) { traces_.push_back(t); }

void Evaluator::popTrace(bool merge) {
  Trace* t = traces_.back();
  traces_.pop_back();
  if (merge && !traces_.empty()) traces_.back()->merge(*t);
}

void Evaluator::touchDeep(const Expr& e) {
  if (traces_.empty()) return;
  Trace* t = traces_.back();
  std::vector<const Expr*> stack{&e};
  uint64_t visited = 0;
  while (!stack.empty()) {
    const Expr* x = stack.back();
    stack.pop_back();
    if (++visited % 16 == 0) charge(1);
    t->nodes.insert(x);  // also descend below nodes already touched: their children may not be
    forEachChild(*x, [&](const Slot&, const Expr& c) { stack.push_back(&c); });
  }
}

void Evaluator::touch(const Expr& e) {
  if (!traces_.empty()) traces_.back()->nodes.insert(&e);
}

void Evaluator::recordExternal(std::string s) {
  if (!traces_.empty()) traces_.back()->externals.insert(std::move(s));
}

void Evaluator::recordInput(const std::string& name) {
  if (!traces_.empty()) traces_.back()->inputs.insert(name);
}

ValuePtr Evaluator::force(const ThunkPtr& t) {
  if (!t) return unknown("missing value");
  if (t->value) {
    charge(1);
    if (!traces_.empty()) traces_.back()->merge(t->trace);
    return t->value;
  }
  if (t->forcing) return unknown("infinite recursion");
  if (depth_ > limits_.maxDepth) return unknown("evaluation too deep");
  t->forcing = true;
  ++depth_;
  pushTrace(&t->trace);
  ValuePtr v;
  try {
    v = t->expr ? eval(*t->expr, t->env) : charged(t->compute());
  } catch (...) {
    popTrace(true);
    --depth_;
    t->forcing = false;
    throw;
  }
  popTrace(true);
  --depth_;
  t->forcing = false;
  t->value = v;
  t->compute = nullptr;
  return v;
}

ValuePtr Evaluator::eval(const Expr& e, const EnvPtr& env) {
  // Only flake-level code can be part of a host's fingerprint; module files are dependencies
  // as a whole, so their nodes need not be recorded.
  if (!traces_.empty() && env && env->file && flakeLevel_.count(env->file.get()))
    traces_.back()->nodes.insert(&e);
  charge(1);
  if (depth_ > limits_.maxDepth) return unknown("evaluation too deep");
  ++depth_;
  ValuePtr v;
  try {
    v = evalUncached(e, env);
  } catch (...) {
    --depth_;
    throw;
  }
  --depth_;
  charged(v);
  if (v && v->kind == VKind::Input) recordInput(v->input);
  return v;
}

EnvPtr Evaluator::letFrame(const ExprLet& l, const EnvPtr& env) {
  auto frame = newEnv();
  frame->binder = &l;
  frame->parent = env;
  frame->file = env ? env->file : nullptr;
  std::vector<ThunkPtr> froms;
  for (const auto& f : l.bindings->inheritFrom) froms.push_back(thunk(*f, frame));
  for (const auto& [name, def] : l.bindings->attrs) {
    if (def.kind == AttrDef::Kind::Plain) {
      frame->vars[name] = thunk(*def.value, frame);
    } else if (def.kind == AttrDef::Kind::Inherited) {
      frame->vars[name] = thunk(*def.value, env);
    } else {
      ThunkPtr from = froms.at(def.fromIndex);
      std::string n = name;
      auto t = newThunk();
      t->compute = [this, from, n] {
        ThunkPtr s = select(force(from), n);
        return s ? force(s) : unknown("inherit of missing attribute '" + n + "'");
      };
      frame->vars[name] = t;
    }
  }
  return frame;
}

EnvPtr Evaluator::fileEnv(const std::shared_ptr<const ParsedFile>& file) {
  auto env = newEnv();
  env->file = file;
  return env;
}

ThunkPtr Evaluator::importFile(const std::string& pathIn) {
  std::string path = pathIn;
  if (tree_.isDir(path)) path = path.empty() ? "default.nix" : path + "/default.nix";
  auto it = imports_.find(path);
  if (it != imports_.end()) return it->second;
  ThunkPtr t;
  auto file = tree_.parse(path);
  if (!file) {
    Carried c;
    c.paths.insert(PathRef{true, path, "", ""});
    t = ready(unknown("import of " + path + ", which does not exist", c));
  } else if (!file->ast) {
    Carried c;
    c.paths.insert(PathRef{true, path, "", ""});
    c.dynamic.push_back(file->error);
    t = ready(unknown(file->error, c));
  } else {
    evaluatedFiles_.insert(path);
    flakeLevel_.insert(file.get());
    // Forcing the import records it, so every trace that uses this file names it.
    t = newThunk();
    EnvPtr env = fileEnv(file);
    t->compute = [this, file, env, path] {
      recordExternal("import:" + path);
      return eval(*file->ast, env);
    };
  }
  imports_.emplace(path, t);
  return t;
}

void Evaluator::loadFlake() {
  flakeFile_ = tree_.parse("flake.nix");
  if (!flakeFile_) throw InputError("no flake.nix at commit " + tree_.commit());
  if (!flakeFile_->ast) throw InputError(flakeFile_->error);
  evaluatedFiles_.insert("flake.nix");
  flakeLevel_.insert(flakeFile_.get());
  const auto* top = flakeFile_->ast->as<ExprAttrs>();
  if (!top) throw InputError("flake.nix: the top level is not an attribute set");
  auto outIt = top->attrs.find("outputs");
  if (outIt == top->attrs.end() || !outIt->second.value)
    throw InputError("flake.nix: no 'outputs' attribute");
  auto env = fileEnv(flakeFile_);

  auto inputsAttrs = make(VKind::Attrs);
  for (const auto& name : inputs_) {
    auto in = make(VKind::Input);
    in->input = name;
    inputsAttrs->attrs[name] = ready(in);
  }
  self_ = ready(make(VKind::Self));
  inputsAttrs->attrs["self"] = self_;
  inputsAttrs_ = ready(inputsAttrs);
  ThunkPtr outputsFn = thunk(*outIt->second.value, env);
  auto argsThunk = inputsAttrs_;
  outputs_ = newThunk();
  outputs_->compute = [this, outputsFn, argsThunk] {
    return apply(force(outputsFn), argsThunk, nullptr, nullptr);
  };
}

ThunkPtr Evaluator::select(const ValuePtr& v, const std::string& name) {
  switch (v->kind) {
    case VKind::Attrs: {
      auto it = v->attrs.find(name);
      if (it != v->attrs.end()) return it->second;
      if (!v->open) return nullptr;
      if (v->unknownEntries.empty() && v->openReason.empty())
        return ready(unknown("attribute '" + name + "' of a partly known set"));
      // The attribute may be one whose name the planner could not compute: it depends on
      // whatever any of those values refers to (and on anything, if some are not even known).
      auto t = newThunk();
      t->compute = [this, v, name] {
        Carried c;
        for (const auto& e : v->unknownEntries) c.merge(valueCarried(force(e)));
        if (!v->openReason.empty())
          c.dynamic.push_back("attribute '" + name + "' of a set the planner could not fully " +
                              "evaluate: " + v->openReason);
        return unknown("attribute '" + name + "' of a partly known set", c);
      };
      return t;
    }
    case VKind::Builtin:
      if (v->name == "builtins") {
        auto b = make(VKind::Builtin);
        b->name = name;
        if (name == "true" || name == "false") {
          auto bv = make(VKind::Bool);
          bv->b = name == "true";
          return ready(bv);
        }
        return ready(b);
      }
      return nullptr;
    case VKind::Input: {
      auto in = make(VKind::Input);
      in->input = v->input;
      in->inputPath = v->inputPath;
      in->inputPath.push_back(name);
      in->carried = v->carried;
      if (v->input == "self") return select(force(self_), name);
      return ready(in);
    }
    case VKind::Self: {
      if (selfRevisionAttrs().count(name)) {
        auto s = make(VKind::String);
        s->selfRevision = true;
        return ready(s);
      }
      if (name == "outPath") return ready(pathValue(PathRef{true, "", "", ""}));
      if (name == "inputs") return inputsAttrs_;
      if (name == "sourceInfo") return self_;
      // `inherit (self) outputs;` (a common template): Nix's self carries its outputs
      if (name == "outputs" && outputs_) return outputs_;
      if (name == "_type") return ready(str("flake"));
      return select(force(outputs_), name);
    }
    case VKind::NixosSystem:
      return ready(unknown("an option of a NixOS system"));
    case VKind::Unknown:
      return ready(unknown(v->reason, v->carried));
    default:
      return nullptr;
  }
}

ValuePtr Evaluator::globalVar(const std::string& name) {
  if (name == "true" || name == "false") {
    auto v = make(VKind::Bool);
    v->b = name == "true";
    return v;
  }
  if (name == "null") return make(VKind::Null);
  auto b = make(VKind::Builtin);
  b->name = startsWith(name, "__") ? name.substr(2) : name;
  return b;
}

ValuePtr Evaluator::lookupVar(const ExprVar& v, const EnvPtr& env) {
  if (v.scope == VarScope::Global) return globalVar(v.name);
  if (v.scope == VarScope::With) {
    for (Env* f = env.get(); f; f = f->parent.get()) {
      if (!f->withAttrs) continue;
      ValuePtr attrs = force(f->withAttrs);
      if (attrs->kind == VKind::Attrs) {
        auto it = attrs->attrs.find(v.name);
        if (it != attrs->attrs.end()) return force(it->second);
        if (attrs->open) return unknown("'" + v.name + "' from a partly known with");
        continue;
      }
      if (attrs->kind == VKind::Input || attrs->kind == VKind::Self ||
          (attrs->kind == VKind::Builtin && attrs->name == "builtins")) {
        auto t = select(attrs, v.name);
        return t ? force(t) : unknown("'" + v.name + "' not in with");
      }
      return unknown("'" + v.name + "' from a with we cannot evaluate", attrs->carried);
    }
    return globalVar(v.name);
  }
  for (Env* f = env.get(); f; f = f->parent.get()) {
    if (f->binder != v.binder) continue;
    auto it = f->vars.find(v.name);
    if (it != f->vars.end()) return force(it->second);
    break;
  }
  return unknown("unbound variable '" + v.name + "'");
}

ValuePtr Evaluator::evalString(const std::vector<StringPart>& parts, const EnvPtr& env, bool isPath,
                               const std::string& baseDir) {
  // Path-likeness comes from the first part: a path, `self`, or (for path literals) the
  // literal text itself.
  std::optional<std::string> base;  // repo path the string starts with
  std::string text;                 // text after the base (or whole text), while known
  bool known = true;
  std::string prefixText, suffixText;
  bool selfRev = false;
  Carried carried;
  bool first = true;
  for (const auto& p : parts) {
    if (!p.expr) {
      chargeText(p.text.size(), text.size() + suffixText.size() + p.text.size());
      if (known)
        text += p.text;
      else
        suffixText += p.text;
      first = false;
      continue;
    }
    ValuePtr v = eval(*p.expr, env);
    if (first && !isPath) {
      if (v->kind == VKind::Path && v->path && v->path->exact) {
        base = v->path->path;
        first = false;
        continue;
      }
      if (v->kind == VKind::Self) {
        base = "";
        first = false;
        continue;
      }
      if (v->kind == VKind::String && v->path && v->path->exact) {
        base = v->path->path;
        first = false;
        continue;
      }
    }
    first = false;
    selfRev = selfRev || v->selfRevision;
    carried.merge(v->carried);
    if (v->kind == VKind::Input) carried.inputs.insert(v->input);
    if (v->kind == VKind::Path && v->path) carried.paths.insert(*v->path);
    if (v->kind == VKind::String && v->text)
      chargeText(v->text->size(), text.size() + suffixText.size() + v->text->size());
    if (known && v->kind == VKind::String && v->text) {
      text += *v->text;
    } else if (known && v->kind == VKind::Int) {
      text += std::to_string(v->i);
    } else if (!known && v->kind == VKind::String && v->text) {
      suffixText += *v->text;
    } else {
      if (known) {
        known = false;
        prefixText = text;
      } else {
        suffixText.clear();  // a second unknown part: only the last suffix is reliable
      }
    }
  }
  auto out = make(isPath ? VKind::Path : VKind::String);
  out->selfRevision = selfRev;
  out->carried = std::move(carried);
  if (isPath) {
    // Literal relative path text: "./hosts/" + unknown + "/default.nix"
    if (known) {
      auto r = resolveRelative(baseDir, text);
      if (!r) {
        out->outsideRepo = true;
        return out;
      }
      out->path = PathRef{true, *r, "", ""};
      return out;
    }
    auto slash = prefixText.rfind('/');
    std::string dirPart = slash == std::string::npos ? "" : prefixText.substr(0, slash);
    std::string rest = slash == std::string::npos ? prefixText : prefixText.substr(slash + 1);
    auto r = resolveRelative(baseDir, dirPart);
    if (!r) {
      out->outsideRepo = true;
      return out;
    }
    out->path = PathRef{false, "", (r->empty() ? "" : *r + "/") + rest, suffixText};
    return out;
  }
  if (base) {
    if (known) {
      auto r = appendPath(*base, text);
      if (r) out->path = PathRef{true, *r, "", ""};
      out->text = std::nullopt;  // a store path: its text is not known
    } else {
      std::string pre = (base->empty() ? "" : *base + "/") + prefixText;
      while (startsWith(pre, "/")) pre.erase(0, 1);
      out->path = PathRef{false, "", pre, suffixText};
    }
    return out;
  }
  if (known) {
    out->text = text;
  } else {
    out->strPrefix = prefixText;
    out->strSuffix = suffixText;
  }
  return out;
}

ValuePtr Evaluator::attrsFromExpr(const ExprAttrs& a, const EnvPtr& env) {
  auto v = make(VKind::Attrs);
  v->origin = &a;
  v->originEnv = env;
  EnvPtr inner = env;
  if (a.recursive) {
    inner = newEnv();
    inner->binder = &a;
    inner->parent = env;
    inner->file = env ? env->file : nullptr;
  }
  std::vector<ThunkPtr> froms;
  for (const auto& f : a.inheritFrom) froms.push_back(thunk(*f, inner));
  for (const auto& [name, def] : a.attrs) {
    ThunkPtr t;
    switch (def.kind) {
      case AttrDef::Kind::Plain:
        t = thunk(*def.value, inner);
        break;
      case AttrDef::Kind::Inherited:
        t = thunk(*def.value, env);
        break;
      case AttrDef::Kind::InheritedFrom: {
        ThunkPtr from = froms.at(def.fromIndex);
        std::string n = name;
        t = newThunk();
        t->compute = [this, from, n] {
          ValuePtr fv = force(from);
          ThunkPtr s = select(fv, n);
          return s ? force(s) : unknown("inherit of missing attribute '" + n + "'");
        };
        break;
      }
    }
    v->attrs[name] = t;
  }
  for (const auto& d : a.dynamicAttrs) {
    ValuePtr n = unrecorded([&] { return eval(*d.name, inner); });
    if (n->kind == VKind::String && n->text) {
      v->attrs[*n->text] = thunk(*d.value, inner);
    } else {
      v->open = true;
      v->unknownEntries.push_back(thunk(*d.value, inner));
    }
  }
  if (a.recursive) inner->vars = v->attrs;
  return v;
}

ValuePtr Evaluator::mergeAttrs(const std::vector<ThunkPtr>& parts) {
  // Recursive merge of attribute sets (later parts win for non-attrset values), lazily.
  auto out = make(VKind::Attrs);
  std::map<std::string, std::vector<ThunkPtr>> byName;
  for (const auto& p : parts) {
    ValuePtr v = force(p);
    charge(v->attrs.size());
    if (v->kind != VKind::Attrs) {
      out->open = true;
      out->carried.merge(v->carried);
      if (out->openReason.empty())
        out->openReason = "merged with a value the planner cannot evaluate" +
                          (v->reason.empty() ? std::string() : " (" + v->reason + ")");
      continue;
    }
    inheritOpen(*out, *v);
    for (const auto& [k, t] : v->attrs) byName[k].push_back(t);
  }
  for (auto& [k, ts] : byName) {
    if (ts.size() == 1) {
      out->attrs[k] = ts[0];
      continue;
    }
    auto t = newThunk();
    auto copy = ts;
    t->compute = [this, copy] {
      std::vector<ThunkPtr> attrsParts;
      for (const auto& x : copy) {
        ValuePtr v = force(x);
        if (v->kind == VKind::Attrs) attrsParts.push_back(x);
      }
      if (attrsParts.size() == copy.size()) return mergeAttrs(attrsParts);
      return force(copy.back());
    };
    out->attrs[k] = t;
  }
  return out;
}

std::optional<std::vector<std::string>> Evaluator::knownStrings(const ValuePtr& list) {
  if (list->kind != VKind::List || list->open) return std::nullopt;
  std::vector<std::string> out;
  for (const auto& t : list->elems) {
    ValuePtr v = force(t);
    if (v->kind != VKind::String || !v->text) return std::nullopt;
    out.push_back(*v->text);
  }
  return out;
}

ValuePtr Evaluator::binOp(const ExprBinOp& b, const EnvPtr& env) {
  switch (b.op) {
    case BinOp::And:
    case BinOp::Or:
    case BinOp::Impl: {
      ValuePtr l = eval(*b.lhs, env);
      if (l->kind == VKind::Bool) {
        if (b.op == BinOp::And && !l->b) return l;
        if (b.op == BinOp::Or && l->b) return l;
        if (b.op == BinOp::Impl && !l->b) {
          auto t = make(VKind::Bool);
          t->b = true;
          return t;
        }
        return eval(*b.rhs, env);
      }
      touchDeep(b);
      return unknown("a condition we cannot evaluate");
    }
    default:
      break;
  }
  ValuePtr l = eval(*b.lhs, env);
  ValuePtr r = eval(*b.rhs, env);
  switch (b.op) {
    case BinOp::Update: {
      if (l->kind == VKind::Attrs && r->kind == VKind::Attrs) {
        auto out = make(VKind::Attrs);
        charge(l->attrs.size() + r->attrs.size());
        out->attrs = l->attrs;
        for (const auto& [k, t] : r->attrs) out->attrs[k] = t;
        inheritOpen(*out, *l);
        inheritOpen(*out, *r);
        return out;
      }
      if (l->kind == VKind::Unknown && r->kind == VKind::Attrs) {
        auto out = make(VKind::Attrs);
        out->attrs = r->attrs;
        inheritOpen(*out, *r);
        out->open = true;
        out->carried = l->carried;
        out->openReason = "'//' with a value the planner cannot evaluate (" + l->reason + ")";
        return out;
      }
      if (l->kind == VKind::Input && r->kind == VKind::Input && l->input != "self" &&
          r->input != "self") {
        // `nixpkgs.lib // home-manager.lib` (a common flake template): the planner takes any
        // input's `nixosSystem` for NixOS's, so the merge is the left input's value that also
        // depends on the right input (issue 12 corpus: every host was dynamic).
        auto out = make(VKind::Input);
        out->input = l->input;
        out->inputPath = l->inputPath;
        out->carried = l->carried;
        out->carried.merge(r->carried);
        out->carried.inputs.insert(r->input);
        return out;
      }
      Carried c = l->carried;
      c.merge(r->carried);
      return unknown("'//' of values we cannot evaluate", c);
    }
    case BinOp::Concat: {
      auto out = make(VKind::List);
      charge(l->elems.size() + r->elems.size());
      for (const auto& side : {l, r}) {
        if (side->kind == VKind::List) {
          out->elems.insert(out->elems.end(), side->elems.begin(), side->elems.end());
          out->open = out->open || side->open;
        } else {
          out->open = true;
          out->carried.merge(side->carried);
          if (side->kind == VKind::Unknown) out->reason = side->reason;
        }
      }
      return out;
    }
    case BinOp::Add: {
      bool lPathy = (l->kind == VKind::Path || l->kind == VKind::String) && l->path;
      if (lPathy && (r->kind == VKind::String || r->kind == VKind::Path)) {
        auto out = make(l->kind);
        out->carried = l->carried;
        out->carried.merge(r->carried);
        const PathRef& p = *l->path;
        std::optional<std::string> add = r->kind == VKind::String ? r->text : std::nullopt;
        // root + /src appends, like Nix's path + path
        if (const auto* rp = b.rhs->as<ExprPath>(); rp && rp->pathKind == PathKind::Absolute)
          add = rp->literal();
        if (p.exact && add) {
          auto joined = resolveRelative("", p.path + "/" + *add);
          // "./x" + ".nix" appends to the last component, like Nix's path + string
          if (!add->empty() && add->front() != '/') joined = resolveRelative("", p.path + *add);
          if (joined)
            out->path = PathRef{true, *joined, "", ""};
          else
            out->outsideRepo = true;
        } else if (p.exact) {
          // an unknown string appended: a pattern prefix*suffix from its known ends
          std::string pre = p.path + (r->kind == VKind::String ? r->strPrefix : std::string());
          while (startsWith(pre, "/")) pre.erase(0, 1);
          out->path = PathRef{false, "", pre, r->kind == VKind::String ? r->strSuffix : ""};
        } else {
          out->path = PathRef{false, "", p.prefix, ""};
        }
        return out;
      }
      if (l->kind == VKind::String && r->kind == VKind::String) {
        auto out = make(VKind::String);
        out->selfRevision = l->selfRevision || r->selfRevision;
        out->carried = l->carried;
        out->carried.merge(r->carried);
        if (l->text && r->text) {
          chargeText(l->text->size() + r->text->size());
          out->text = *l->text + *r->text;
        }
        return out;
      }
      if (l->kind == VKind::Int && r->kind == VKind::Int) {
        auto out = make(VKind::Int);
        if (__builtin_add_overflow(l->i, r->i, &out->i)) return unknown("integer overflow");
        return out;
      }
      Carried c = l->carried;
      c.merge(r->carried);
      return unknown("'+' of values we cannot evaluate", c);
    }
    case BinOp::Eq:
    case BinOp::NEq: {
      std::optional<bool> eq;
      if (l->kind == VKind::String && r->kind == VKind::String && l->text && r->text)
        eq = *l->text == *r->text;
      else if (l->kind == VKind::Int && r->kind == VKind::Int)
        eq = l->i == r->i;
      else if (l->kind == VKind::Bool && r->kind == VKind::Bool)
        eq = l->b == r->b;
      else if (l->kind == VKind::Null || r->kind == VKind::Null)
        if (l->kind != VKind::Unknown && r->kind != VKind::Unknown) eq = l->kind == r->kind;
      if (!eq) return unknown("a comparison we cannot evaluate");
      auto out = make(VKind::Bool);
      out->b = b.op == BinOp::Eq ? *eq : !*eq;
      return out;
    }
    default:
      return unknown("arithmetic we do not evaluate");
  }
}

ValuePtr Evaluator::evalUncached(const Expr& e, const EnvPtr& env) {
  switch (e.kind) {
    case ExprKind::Int: {
      auto v = make(VKind::Int);
      v->i = e.as<ExprInt>()->value;
      return v;
    }
    case ExprKind::Float:
      return make(VKind::Float);
    case ExprKind::String:
      return evalString(e.as<ExprString>()->parts, env, false, "");
    case ExprKind::Path: {
      const auto* p = e.as<ExprPath>();
      if (p->pathKind != PathKind::Relative) {
        auto v = make(VKind::Path);
        v->outsideRepo = true;
        v->searchPath = p->pathKind == PathKind::Search;
        return v;
      }
      std::string baseDir = env && env->file ? dirName(env->file->path) : "";
      return evalString(p->parts, env, true, baseDir);
    }
    case ExprKind::Var:
      return lookupVar(*e.as<ExprVar>(), env);
    case ExprKind::Select: {
      const auto* s = e.as<ExprSelect>();
      ValuePtr cur = eval(*s->expr, env);
      for (const auto& a : s->path) {
        std::string name;
        if (a.isStatic()) {
          name = a.name;
        } else {
          ValuePtr n = eval(*a.dynamic, env);
          if (n->kind != VKind::String || !n->text) {
            if (s->orDefault) touchDeep(*s->orDefault);
            Carried c = cur->carried;
            if (cur->kind == VKind::Input) c.inputs.insert(cur->input);
            // any of the set's attributes (`self.packages.${pkgs.system}.x`)
            if (cur->kind == VKind::Attrs) c.merge(valueCarried(cur));
            return unknown("attribute with a computed name", c);
          }
          name = *n->text;
        }
        ThunkPtr t = select(cur, name);
        if (!t) {
          if (s->orDefault) return eval(*s->orDefault, env);
          return unknown("missing attribute '" + name + "' at " + locate(&e, env));
        }
        cur = force(t);
        if (cur->kind == VKind::Unknown && s->orDefault) {
          touchDeep(*s->orDefault);
          return cur;
        }
      }
      return cur;
    }
    case ExprKind::HasAttr: {
      const auto* h = e.as<ExprHasAttr>();
      ValuePtr cur = eval(*h->expr, env);
      for (const auto& a : h->path) {
        if (!a.isStatic() || cur->kind != VKind::Attrs) return unknown("'?' we cannot evaluate");
        ThunkPtr t = select(cur, a.name);
        if (!t) {
          auto v = make(VKind::Bool);
          v->b = false;
          return v;
        }
        if (cur->open) return unknown("'?' on a partly known set");
        cur = force(t);
      }
      auto v = make(VKind::Bool);
      v->b = true;
      return v;
    }
    case ExprKind::Attrs:
      return attrsFromExpr(*e.as<ExprAttrs>(), env);
    case ExprKind::List: {
      auto v = make(VKind::List);
      for (const auto& x : e.as<ExprList>()->elems) v->elems.push_back(thunk(*x, env));
      v->origin = &e;
      v->originEnv = env;
      return v;
    }
    case ExprKind::Lambda: {
      auto v = make(VKind::Lambda);
      v->lambda = e.as<ExprLambda>();
      v->origin = &e;
      v->originEnv = env;
      return v;
    }
    case ExprKind::Call: {
      const auto* c = e.as<ExprCall>();
      ValuePtr f = eval(*c->fn, env);
      for (const auto& a : c->args) f = apply(f, thunk(*a, env), &e, env);
      return f;
    }
    case ExprKind::Let: {
      const auto* l = e.as<ExprLet>();
      return eval(*l->body, letFrame(*l, env));
    }
    case ExprKind::With: {
      const auto* w = e.as<ExprWith>();
      auto frame = newEnv();
      frame->binder = w;
      frame->parent = env;
      frame->file = env ? env->file : nullptr;
      frame->withAttrs = thunk(*w->attrs, env);
      return eval(*w->body, frame);
    }
    case ExprKind::Assert: {
      const auto* a = e.as<ExprAssert>();
      touchDeep(*a->cond);
      return eval(*a->body, env);
    }
    case ExprKind::If: {
      const auto* i = e.as<ExprIf>();
      ValuePtr c = eval(*i->cond, env);
      if (c->kind == VKind::Bool) return eval(c->b ? *i->then : *i->otherwise, env);
      touchDeep(*i->cond);
      ValuePtr a = eval(*i->then, env);
      ValuePtr b = eval(*i->otherwise, env);
      charge(a->elems.size() + b->elems.size() + a->attrs.size() + b->attrs.size());
      if (a->kind == VKind::List && b->kind == VKind::List) {
        auto out = make(VKind::List);
        out->elems = a->elems;
        out->elems.insert(out->elems.end(), b->elems.begin(), b->elems.end());
        out->open = a->open || b->open;
        return out;
      }
      if (a->kind == VKind::Attrs && b->kind == VKind::Attrs) {
        auto out = make(VKind::Attrs);
        out->attrs = a->attrs;
        for (const auto& [k, t] : b->attrs) out->attrs.emplace(k, t);
        inheritOpen(*out, *a);
        inheritOpen(*out, *b);
        out->open = true;
        return out;
      }
      Carried carried;
      if (scanExpr) {
        carried.merge(scanExpr(*i->then, env));
        carried.merge(scanExpr(*i->otherwise, env));
      }
      touchDeep(e);
      return unknown("a conditional we cannot decide", carried);
    }
    case ExprKind::Not: {
      ValuePtr v = eval(*e.as<ExprNot>()->expr, env);
      if (v->kind != VKind::Bool) return unknown("'!' of an unknown value");
      auto out = make(VKind::Bool);
      out->b = !v->b;
      return out;
    }
    case ExprKind::Neg: {
      ValuePtr v = eval(*e.as<ExprNeg>()->expr, env);
      if (v->kind != VKind::Int) return unknown("'-' of an unknown value");
      auto out = make(VKind::Int);
      if (__builtin_sub_overflow(int64_t(0), v->i, &out->i)) return unknown("integer overflow");
      return out;
    }
    case ExprKind::BinOp:
      return binOp(*e.as<ExprBinOp>(), env);
    case ExprKind::CurPos:
      return unknown("__curPos");
  }
  return unknown("?");
}

ValuePtr Evaluator::apply(const ValuePtr& fn, const ThunkPtr& arg, const Expr* site,
                          const EnvPtr& env) {
  charge(1);
  return charged(applyUncharged(fn, arg, site, env));
}

ValuePtr Evaluator::applyUncharged(const ValuePtr& fn, const ThunkPtr& arg, const Expr* site,
                                   const EnvPtr& env) {
  switch (fn->kind) {
    case VKind::Lambda: {
      const ExprLambda* l = fn->lambda;
      auto frame = newEnv();
      frame->binder = l;
      frame->parent = fn->originEnv;
      frame->file = fn->originEnv ? fn->originEnv->file : nullptr;
      if (!l->arg.empty()) frame->vars[l->arg] = arg;
      if (l->formals) {
        ValuePtr a = force(arg);
        for (const auto& f : l->formals->formals) {
          ThunkPtr t =
              (a->kind == VKind::Attrs || a->kind == VKind::Self || a->kind == VKind::Unknown)
                  ? select(a, f.name)
                  : nullptr;
          if ((!t || (a->kind == VKind::Attrs && !a->attrs.count(f.name))) && f.defaultValue)
            t = thunk(*f.defaultValue, frame);
          if (!t) t = ready(unknown("missing argument '" + f.name + "'"));
          frame->vars[f.name] = t;
        }
      }
      return eval(*l->body, frame);
    }
    case VKind::Builtin: {
      if (fn->name == "builtins") return unknown("builtins is not a function");
      const Builtin* def = findBuiltin(fn->name);
      auto b = make(VKind::Builtin);
      b->name = fn->name;
      b->args = fn->args;
      b->args.push_back(arg);
      if (!def) {
        Carried c;
        if (scanExpr && arg->expr) c = scanExpr(*arg->expr, arg->env);
        return unknown("builtins." + fn->name + " is not modelled", c);
      }
      if (static_cast<int>(b->args.size()) < def->arity) return b;
      return (this->*def->fn)(b->name, b->args, site, env);
    }
    case VKind::Input:
      return callInputFunction(fn, arg, site, env);
    case VKind::Attrs: {
      auto it = fn->attrs.find("__functor");
      if (it != fn->attrs.end()) {
        ValuePtr f = apply(force(it->second), ready(fn), site, env);
        return apply(f, arg, site, env);
      }
      return unknown("call of an attribute set");
    }
    default: {
      Carried c = fn->carried;
      if (scanExpr && arg->expr) c.merge(scanExpr(*arg->expr, arg->env));
      return unknown(fn->kind == VKind::Unknown ? fn->reason : "call of a non-function", c);
    }
  }
}

ValuePtr Evaluator::callInputFunction(const ValuePtr& fn, const ThunkPtr& arg, const Expr* site,
                                      const EnvPtr& env) {
  recordInput(fn->input);
  const auto& path = fn->inputPath;
  std::string last = path.empty() ? "" : path.back();
  if (path.size() == 1 && last == "<import>") {
    auto pkgs = make(VKind::Input);
    pkgs->input = fn->input;
    pkgs->inputPath = {"<pkgs>"};
    return pkgs;
  }
  if (last == "nixosSystem") {
    ValuePtr a = force(arg);
    auto sys = make(VKind::NixosSystem);
    sys->libInput = fn->input;
    sys->carried.inputs = fn->carried.inputs;  // `(nixpkgs.lib // other.lib).nixosSystem`
    if (a->kind == VKind::Attrs) {
      ThunkPtr m = select(a, "modules");
      sys->modules = m ? m : ready(make(VKind::List));
      sys->specialArgs = select(a, "specialArgs");
      if (ThunkPtr extra = select(a, "extraModules")) {
        auto both = newThunk();
        ThunkPtr mods = sys->modules;
        both->compute = [this, mods, extra] {
          auto out = make(VKind::List);
          for (const auto& t : {mods, extra}) {
            ValuePtr v = force(t);
            if (v->kind == VKind::List) {
              out->elems.insert(out->elems.end(), v->elems.begin(), v->elems.end());
              out->open = out->open || v->open;
            } else {
              out->open = true;
            }
          }
          return ValuePtr(out);
        };
        sys->modules = both;
      }
    } else {
      sys->modules = ready(unknown("nixosSystem called with arguments we cannot evaluate"));
    }
    return sys;
  }
  if (last == "evalFlakeModule") {  // (flake-parts.lib.evalFlakeModule args module).config.flake
    auto b = make(VKind::Builtin);
    b->name = "flake-parts.evalFlakeModule";
    b->args = {arg};
    return b;
  }
  if (last == "mkFlake" && isAdiosCall(fn->input, arg)) return adiosFlake(arg);
  if (last == "mkFlake") {
    auto b = make(VKind::Builtin);
    b->name = "flake-parts.mkFlake";
    b->args = {arg};
    return b;
  }
  if (last == "clan" || last == "buildClan") return clan(arg);
  if (last == "makeHive") return makeHive(arg, fn->input);
  bool inLib = std::find(path.begin(), path.end(), "lib") != path.end() ||
               std::find(path.begin(), path.end(), "builtins") != path.end();
  if (const Builtin* def = inLib ? findBuiltin(last) : nullptr; def && def->viaLib) {
    auto b = make(VKind::Builtin);
    b->name = last;
    return apply(b, arg, site, env);
  }
  Carried c;
  c.inputs.insert(fn->input);
  if (scanExpr && arg->expr) c.merge(scanExpr(*arg->expr, arg->env));
  return unknown("call of " + fn->input + "." + join(path, "."), c);
}

ValuePtr Evaluator::fromJson(const nlohmann::json& j, const Carried& from, int depth) {
  // deeper JSON is no host inventory; the recursion must not reach the stack's end
  if (depth > 64) return unknown("JSON nested too deeply", from);
  switch (j.type()) {
    case nlohmann::json::value_t::object: {
      auto v = make(VKind::Attrs);
      for (const auto& [k, x] : j.items()) v->attrs[k] = ready(fromJson(x, from, depth + 1));
      return v;
    }
    case nlohmann::json::value_t::array: {
      auto v = make(VKind::List);
      for (const auto& x : j) v->elems.push_back(ready(fromJson(x, from, depth + 1)));
      return v;
    }
    case nlohmann::json::value_t::string: {
      auto v = make(VKind::String);
      v->text = j.get<std::string>();
      v->carried = from;
      return v;
    }
    case nlohmann::json::value_t::boolean: {
      auto v = make(VKind::Bool);
      v->b = j.get<bool>();
      return v;
    }
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned: {
      auto v = make(VKind::Int);
      v->i = j.get<int64_t>();
      return v;
    }
    case nlohmann::json::value_t::null:
      return make(VKind::Null);
    default:
      return unknown("a JSON number", from);
  }
}

Trace Evaluator::hostSetTrace() {
  Trace t;
  pushTrace(&t);
  struct Pop {  // also when evaluation throws (a limit)
    Evaluator* e;
    ~Pop() { e->popTrace(false); }
  } pop{this};
  ValuePtr outputs = force(outputs_);
  if (outputs->kind == VKind::Attrs) {
    for (const char* key : {"nixosConfigurations", "colmena", "colmenaHive"}) {
      if (ThunkPtr set = select(outputs, key)) {
        force(set);
        break;
      }
    }
  }
  return t;
}

std::vector<HostDef> Evaluator::hosts() {
  std::vector<HostDef> out = unrecorded([&] { return discover(); });
  discoveryError_.clear();
  std::vector<std::string> gaps = discoveryGaps_;
  if (out.empty()) gaps.insert(gaps.end(), discoverySoftGaps_.begin(), discoverySoftGaps_.end());
  std::sort(gaps.begin(), gaps.end());
  gaps.erase(std::unique(gaps.begin(), gaps.end()), gaps.end());
  discoveryError_ = join(gaps, "; ");
  return out;
}

std::vector<HostDef> Evaluator::discover() {
  {
    std::vector<HostDef> out;
    ValuePtr outputs = force(outputs_);
    if (outputs->kind != VKind::Attrs) {
      std::string why =
          "the flake's outputs could not be evaluated (" +
          (outputs->reason.empty() ? std::string("not an attribute set") : outputs->reason) + ")";
      warnings_.push_back(why +
                          ": no hosts found; use exact mode or list them under hosts: in the "
                          "config");
      discoveryGaps_.push_back(why);
      return out;
    }
    if (ThunkPtr nc = select(outputs, "nixosConfigurations")) {
      ValuePtr v = force(nc);
      if (v->kind == VKind::Attrs) {
        for (const auto& [name, t] : v->attrs) out.push_back({name, t, "nixosConfigurations"});
        if (v->open) {
          warnings_.push_back(
              "nixosConfigurations has entries the planner cannot name; list the hosts under "
              "hosts: in the config");
          discoveryGaps_.push_back("nixosConfigurations has entries the planner cannot name" +
                                   (v->openReason.empty() ? "" : " (" + v->openReason + ")"));
        }
        return out;
      }
      warnings_.push_back("nixosConfigurations could not be evaluated: " + v->reason);
      discoveryGaps_.push_back("nixosConfigurations could not be evaluated: " + v->reason);
      return out;
    }
    for (const char* key : {"colmena", "colmenaHive"}) {
      if (ThunkPtr c = select(outputs, key)) {
        ValuePtr hive = force(c);
        // `colmenaHive = colmena.lib.makeHive self.colmena`: its nodes
        ValuePtr hosts = hive->kind == VKind::Attrs && hive->name == "colmena.makeHive"
                             ? force(select(hive, "nodes"))
                             : colmenaHosts(hive);
        for (const auto& [name, t] : hosts->attrs) out.push_back({name, t, key});
        if (hosts->open)
          discoveryGaps_.push_back(
              std::string(key) + " has nodes the planner cannot name" +
              (hosts->openReason.empty() ? "" : " (" + hosts->openReason + ")"));
        if (!out.empty()) return out;
      }
    }
    if (inputs_.count("clan-core")) {
      ValuePtr c = clan(ready(make(VKind::Attrs)));
      ValuePtr configs = force(select(c, "nixosConfigurations"));
      for (const auto& [name, t] : configs->attrs) out.push_back({name, t, "clan machines/"});
    }
    return out;
  }
}

}  // namespace runner::plan
