#include "runner/plan/evaluator.h"

#include <algorithm>
#include <cctype>
#include <regex>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/plan/ast_walk.h"

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

std::shared_ptr<Value> make(VKind k) {
  auto v = std::make_shared<Value>();
  v->kind = k;
  return v;
}

// Arity of the builtins and lib functions the evaluator models.
int arityOf(const std::string& n) {
  static const std::map<std::string, int> kArity = {
      {"import", 1},
      {"map", 2},
      {"filter", 2},
      {"attrNames", 1},
      {"attrValues", 1},
      {"listToAttrs", 1},
      {"mapAttrs", 2},
      {"genAttrs", 2},
      {"filterAttrs", 2},
      {"readDir", 1},
      {"readFile", 1},
      {"pathExists", 1},
      {"toString", 1},
      {"baseNameOf", 1},
      {"dirOf", 1},
      {"removeAttrs", 2},
      {"hasAttr", 2},
      {"getAttr", 2},
      {"concatMap", 2},
      {"concatLists", 1},
      {"flatten", 1},
      {"optional", 2},
      {"optionals", 2},
      {"mkIf", 2},
      {"mkMerge", 1},
      {"mkDefault", 1},
      {"mkForce", 1},
      {"mkOverride", 2},
      {"recursiveUpdate", 2},
      {"foldl'", 3},
      {"trace", 2},
      {"seq", 2},
      {"deepSeq", 2},
      {"throw", 1},
      {"abort", 1},
      {"nameValuePair", 2},
      {"mapAttrs'", 2},
      {"mapAttrsToList", 2},
      {"listFilesRecursive", 1},
      {"importApply", 2},
      {"flake-parts.mkFlake", 2},
      {"scopedImport", 2},
      {"fetchTarball", 1},
      {"fetchGit", 1},
      {"fetchurl", 1},
      {"fetchTree", 1},
      {"getFlake", 1},
      {"toPath", 1},
      {"storePath", 1},
      {"path", 1},
      {"isNull", 1},
      {"elem", 2},
      {"length", 1},
      {"head", 1},
      {"tail", 1},
      {"elemAt", 2},
      {"concatStringsSep", 2},
      {"intersectAttrs", 2},
      {"functionArgs", 1},
      {"isAttrs", 1},
      {"isList", 1},
      {"isString", 1},
      {"isFunction", 1},
      {"isPath", 1},
      {"hasPrefix", 2},
      {"hasSuffix", 2},
      {"removeSuffix", 2},
      {"removePrefix", 2},
      {"replaceStrings", 3},
      {"toJSON", 1},
      {"fromJSON", 1},
      {"derivation", 1},
      {"placeholder", 1},
      {"tryEval", 1},
      {"attrByPath", 3},
      {"unique", 1},
      {"id", 1},
      {"const", 2},
      {"makeOverridable", 2},
      {"toLower", 1},
      {"toUpper", 1},
      {"stringLength", 1},
      {"substring", 3},
      {"packagesFromDirectoryRecursive", 1},
      {"flake-parts.evalFlakeModule", 2},
      {"withSystem", 2},
      {"optionalAttrs", 2},
      {"match", 2},
      {"split", 2},
  };
  auto it = kArity.find(n);
  return it == kArity.end() ? -1 : it->second;
}

// Builtins whose result we never need to know beyond "some value".
// Carries `from`'s openness (and the values with unknown names) over to `to`.
void inheritOpen(Value& to, const Value& from) {
  if (!from.open) return;
  to.open = true;
  to.unknownEntries.insert(to.unknownEntries.end(), from.unknownEntries.begin(),
                           from.unknownEntries.end());
  if (to.openReason.empty()) to.openReason = from.openReason;
}

bool benign(const std::string& n) {
  static const std::set<std::string> kBenign = {
      "isNull",     "intersectAttrs", "functionArgs", "isAttrs",    "isList",
      "isString",   "isFunction",     "isPath",       "toJSON",     "fromJSON",
      "derivation", "placeholder",    "tryEval",      "attrByPath", "unique"};
  return kBenign.count(n) > 0;
}

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

std::string locate(const Expr* e, const EnvPtr& env) {
  std::string f = env && env->file ? env->file->path : "?";
  if (!e) return f;
  return f + ":" + std::to_string(e->pos.line);
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
      int arity = arityOf(fn->name);
      auto b = make(VKind::Builtin);
      b->name = fn->name;
      b->args = fn->args;
      b->args.push_back(arg);
      if (arity < 0) {
        Carried c;
        if (scanExpr && arg->expr) c = scanExpr(*arg->expr, arg->env);
        return unknown("builtins." + fn->name + " is not modelled", c);
      }
      if (static_cast<int>(b->args.size()) < arity) return b;
      return callBuiltin(b->name, b->args, site, env);
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
  if (last == "makeHive") return force(arg);
  std::string name = last == "listFilesRecursive" || last == "importApply" ? last : last;
  bool inLib = std::find(path.begin(), path.end(), "lib") != path.end() ||
               std::find(path.begin(), path.end(), "builtins") != path.end();
  if (inLib && arityOf(name) > 0 && !benign(name)) {
    auto b = make(VKind::Builtin);
    b->name = name;
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

ValuePtr Evaluator::callBuiltin(const std::string& name, const std::vector<ThunkPtr>& args,
                                const Expr* site, const EnvPtr& env) {
  auto F = [&](size_t i) { return force(args.at(i)); };
  auto boolv = [](bool b) {
    auto v = make(VKind::Bool);
    v->b = b;
    return v;
  };
  auto carriedOfArgs = [&] {
    Carried c;
    for (const auto& a : args) {
      if (scanExpr && a->expr) c.merge(scanExpr(*a->expr, a->env));
    }
    return c;
  };
  if (name == "import" || name == "scopedImport") {
    ValuePtr p = F(name == "import" ? 0 : 1);
    if ((p->kind == VKind::Path || p->kind == VKind::String) && p->path && p->path->exact)
      return force(importFile(p->path->path));
    if (p->kind == VKind::Input) {
      auto in = make(VKind::Input);
      in->input = p->input;
      in->inputPath = {"<import>"};
      return in;
    }
    if (p->kind == VKind::String && !p->path && !p->carried.inputs.empty()) {
      // "${nixpkgs}/nixos/lib/eval-config.nix" and friends: code from an input
      auto in = make(VKind::Input);
      in->input = *p->carried.inputs.begin();
      in->inputPath = {"<file>"};
      return in;
    }
    Carried c = p->carried;
    if (p->path) c.paths.insert(*p->path);
    c.dynamic.push_back(locate(site, env) + ": import of a path the planner cannot determine");
    return unknown("import of a computed path", c);
  }
  if (name == "map") {
    ValuePtr f = F(0), l = F(1);
    if (l->kind != VKind::List) return unknown("map over an unknown list", l->carried);
    auto out = make(VKind::List);
    out->open = l->open;
    for (const auto& el : l->elems) {
      auto t = newThunk();
      t->compute = [this, f, el, site, env] { return apply(f, el, site, env); };
      out->elems.push_back(t);
    }
    return out;
  }
  if (name == "filter") {
    ValuePtr f = F(0), l = F(1);
    if (l->kind != VKind::List) return unknown("filter over an unknown list", l->carried);
    auto out = make(VKind::List);
    out->open = l->open;
    for (const auto& el : l->elems) {
      ValuePtr keep = apply(f, el, site, env);
      if (keep->kind == VKind::Bool && !keep->b) continue;
      out->elems.push_back(el);
    }
    return out;
  }
  if (name == "attrNames" || name == "attrValues") {
    ValuePtr a = F(0);
    if (a->kind != VKind::Attrs) return unknown(name + " of an unknown set", a->carried);
    auto out = make(VKind::List);
    out->open = a->open;
    for (const auto& [k, t] : a->attrs)
      out->elems.push_back(name == "attrNames" ? ready(str(k)) : t);
    return out;
  }
  if (name == "listToAttrs") {
    ValuePtr l = F(0);
    if (l->kind != VKind::List) return unknown("listToAttrs of an unknown list", l->carried);
    auto out = make(VKind::Attrs);
    if (l->open) {
      out->open = true;
      out->openReason = "listToAttrs of a list the planner cannot evaluate fully";
    }
    for (const auto& el : l->elems) {
      ValuePtr pair = unrecorded([&] { return force(el); });
      if (pair->kind != VKind::Attrs) {
        out->open = true;
        out->unknownEntries.push_back(el);
        continue;
      }
      ThunkPtr n = select(pair, "name"), v = select(pair, "value");
      ValuePtr nv = n ? unrecorded([&] { return force(n); }) : nullptr;
      if (!nv || nv->kind != VKind::String || !nv->text || !v) {
        out->open = true;
        out->unknownEntries.push_back(v ? v : el);
        continue;
      }
      out->attrs[*nv->text] = v;
    }
    return out;
  }
  if (name == "mapAttrs" || name == "mapAttrsToList") {
    ValuePtr f = F(0), a = F(1);
    if (a->kind != VKind::Attrs) return unknown(name + " of an unknown set", a->carried);
    auto out = make(name == "mapAttrs" ? VKind::Attrs : VKind::List);
    out->open = a->open;
    out->openReason = a->openReason;
    for (const auto& e : a->unknownEntries) {  // values whose names are unknown, mapped too
      auto r = newThunk();
      r->compute = [this, f, e, site, env] {
        return apply(apply(f, ready(unknown("an attribute name")), site, env), e, site, env);
      };
      out->unknownEntries.push_back(r);
    }
    for (const auto& [k, t] : a->attrs) {
      auto r = newThunk();
      std::string key = k;
      ThunkPtr val = t;
      r->compute = [this, f, key, val, site, env] {
        return apply(apply(f, ready(str(key)), site, env), val, site, env);
      };
      if (name == "mapAttrs")
        out->attrs[k] = r;
      else
        out->elems.push_back(r);
    }
    return out;
  }
  if (name == "mapAttrs'") {
    ValuePtr f = F(0), a = F(1);
    if (a->kind != VKind::Attrs) return unknown("mapAttrs' of an unknown set", a->carried);
    auto out = make(VKind::Attrs);
    inheritOpen(*out, *a);
    for (const auto& [k, t] : a->attrs) {
      // clang 14 (the fuzz build) cannot capture structured bindings
      const std::string& key = k;
      const ThunkPtr& val = t;
      ValuePtr pair =
          unrecorded([&] { return apply(apply(f, ready(str(key)), site, env), val, site, env); });
      ThunkPtr n = pair->kind == VKind::Attrs ? select(pair, "name") : nullptr;
      ValuePtr nv = n ? unrecorded([&] { return force(n); }) : nullptr;
      ThunkPtr v = pair->kind == VKind::Attrs ? select(pair, "value") : nullptr;
      if (nv && nv->kind == VKind::String && nv->text && v) {
        out->attrs[*nv->text] = v;
      } else {
        out->open = true;
        if (v)
          out->unknownEntries.push_back(v);
        else if (out->openReason.empty())
          out->openReason = "mapAttrs' produced an entry the planner cannot evaluate";
      }
    }
    return out;
  }
  if (name == "nameValuePair") {
    auto out = make(VKind::Attrs);
    out->attrs["name"] = args[0];
    out->attrs["value"] = args[1];
    return out;
  }
  if (name == "genAttrs") {
    auto names = unrecorded([&] { return knownStrings(F(0)); });
    if (!names) return unknown("genAttrs over names the planner cannot evaluate", F(0)->carried);
    auto out = make(VKind::Attrs);
    ThunkPtr fThunk = args[1];
    for (const auto& n : *names) {
      auto r = newThunk();
      r->compute = [this, fThunk, n, site, env] {
        return apply(force(fThunk), ready(str(n)), site, env);
      };
      out->attrs[n] = r;
    }
    return out;
  }
  if (name == "filterAttrs") {
    ValuePtr pred = F(0), a = F(1);
    if (a->kind != VKind::Attrs) return unknown("filterAttrs of an unknown set", a->carried);
    auto out = make(VKind::Attrs);
    inheritOpen(*out, *a);
    for (const auto& [k, t] : a->attrs) {
      const std::string& key = k;  // clang 14 cannot capture structured bindings
      const ThunkPtr& val = t;
      ValuePtr keep = unrecorded(
          [&] { return apply(apply(pred, ready(str(key)), site, env), val, site, env); });
      if (keep->kind == VKind::Bool && !keep->b) continue;
      out->attrs[k] = t;
    }
    return out;
  }
  if (name == "removeAttrs") {
    ValuePtr a = F(0);
    auto names = knownStrings(F(1));
    if (a->kind != VKind::Attrs) return unknown("removeAttrs of an unknown set", a->carried);
    charge(a->attrs.size());
    auto out = make(VKind::Attrs);
    *out = *a;
    if (!names) {
      out->open = true;
      return out;
    }
    for (const auto& n : *names) out->attrs.erase(n);
    return out;
  }
  if (name == "hasAttr" || name == "getAttr") {
    ValuePtr n = F(0), a = F(1);
    if (n->kind != VKind::String || !n->text || a->kind != VKind::Attrs)
      return unknown(name + " we cannot evaluate");
    ThunkPtr t = select(a, *n->text);
    if (name == "hasAttr") {
      if (!t) return boolv(false);
      if (a->attrs.count(*n->text)) return boolv(true);
      return unknown("hasAttr on a partly known set");
    }
    return t ? force(t) : unknown("getAttr of a missing attribute");
  }
  if (name == "readDir") {
    ValuePtr p = F(0);
    if (!p->path || !p->path->exact) {
      Carried c = p->carried;
      if (p->path) c.paths.insert(*p->path);
      c.dynamic.push_back(locate(site, env) + ": readDir of a path the planner cannot determine");
      return unknown("readDir of a computed path", c);
    }
    const auto* kids = tree_.children(p->path->path);
    auto out = make(VKind::Attrs);
    std::string listing;
    if (kids) {
      for (const auto& k : *kids) {
        std::string base =
            k.path.substr(k.path.rfind('/') == std::string::npos ? 0 : k.path.rfind('/') + 1);
        std::string type = k.kind == git::EntryKind::Tree      ? "directory"
                           : k.kind == git::EntryKind::Symlink ? "symlink"
                                                               : "regular";
        out->attrs[base] = ready(str(type));
        listing += base + "/" + type.substr(0, 1) + ",";
      }
    }
    recordExternal("readDir:" + p->path->path + "=" + listing);
    return out;
  }
  if (name == "readFile") {
    ValuePtr p = F(0);
    auto out = make(VKind::String);
    if (p->path) out->carried.paths.insert(*p->path);
    if (p->path && p->path->exact) {
      auto blob = tree_.read(p->path->path);
      recordExternal("readFile:" + p->path->path + "=" + (blob ? blob->oid : "-"));
      if (blob) out->fileText = std::make_shared<const std::string>(blob->content);
    } else {
      out->carried.dynamic.push_back(locate(site, env) +
                                     ": readFile of a path the planner cannot determine");
    }
    return out;
  }
  if (name == "fromJSON") {
    // JSON the planner can read (a repository file: an inventory of hosts): its values, each
    // string carrying what the text came from
    ValuePtr sv = F(0);
    const std::string* textp = sv->text ? &*sv->text : sv->fileText.get();
    if (sv->kind == VKind::String && textp) {
      auto j = nlohmann::json::parse(*textp, nullptr, false);
      if (!j.is_discarded()) return fromJson(j, sv->carried);
    }
    Carried c = sv->carried;
    c.merge(carriedOfArgs());
    return unknown("fromJSON of text the planner cannot read", c);
  }
  if (name == "pathExists") {
    ValuePtr p = F(0);
    if (!p->path || !p->path->exact) return unknown("pathExists of a computed path", p->carried);
    bool exists = tree_.exists(p->path->path);
    recordExternal("exists:" + p->path->path + "=" + (exists ? "1" : "0"));
    return boolv(exists);
  }
  if (name == "listFilesRecursive") {
    ValuePtr p = F(0);
    if (!p->path || !p->path->exact)
      return unknown("listFilesRecursive of a computed path", p->carried);
    auto out = make(VKind::List);
    std::string listing;
    for (const auto& f : tree_.filesBelow(p->path->path)) {
      out->elems.push_back(ready(pathValue(PathRef{true, f.path, "", ""})));
      listing += f.path + ",";
    }
    recordExternal("listFiles:" + p->path->path + "=" + listing);
    return out;
  }
  if (name == "toString") {
    ValuePtr v = F(0);
    if (v->kind == VKind::String) return v;
    if (v->kind == VKind::Path) {
      auto s = make(VKind::String);
      s->path = v->path;
      s->outsideRepo = v->outsideRepo;
      return s;
    }
    if (v->kind == VKind::Int) return str(std::to_string(v->i));
    if (v->kind == VKind::Bool) return str(v->b ? "1" : "");
    if (v->kind == VKind::Self) {
      auto s = make(VKind::String);
      s->path = PathRef{true, "", "", ""};
      return s;
    }
    return unknown("toString of an unknown value", v->carried);
  }
  if (name == "baseNameOf" || name == "dirOf") {
    ValuePtr v = F(0);
    if (v->kind == VKind::String && v->text) {
      const std::string& s = *v->text;
      auto slash = s.rfind('/');
      if (name == "baseNameOf") return str(slash == std::string::npos ? s : s.substr(slash + 1));
      return str(slash == std::string::npos ? "." : s.substr(0, slash));
    }
    if (v->kind == VKind::Path && v->path && v->path->exact) {
      const std::string& s = v->path->path;
      auto slash = s.rfind('/');
      if (name == "baseNameOf") return str(slash == std::string::npos ? s : s.substr(slash + 1));
      return pathValue(PathRef{true, dirName(s), "", ""});
    }
    return unknown(name + " of an unknown value", v->carried);
  }
  if (name == "concatMap") {
    ValuePtr f = F(0), l = F(1);
    if (l->kind != VKind::List) return unknown("concatMap over an unknown list", l->carried);
    auto out = make(VKind::List);
    out->open = l->open;
    for (const auto& el : l->elems) {
      ValuePtr r = apply(f, el, site, env);
      charge(r->elems.size());
      if (r->kind == VKind::List) {
        out->elems.insert(out->elems.end(), r->elems.begin(), r->elems.end());
        out->open = out->open || r->open;
      } else {
        out->open = true;
        out->carried.merge(r->carried);
      }
    }
    return out;
  }
  if (name == "concatLists" || name == "flatten" || name == "mkMerge") {
    ValuePtr l = F(0);
    if (l->kind != VKind::List)
      return name == "mkMerge" ? l : unknown(name + " of unknown", l->carried);
    auto out = make(VKind::List);
    out->open = l->open;
    for (const auto& el : l->elems) {
      ValuePtr r = force(el);
      charge(r->elems.size());
      if (r->kind == VKind::List) {
        out->elems.insert(out->elems.end(), r->elems.begin(), r->elems.end());
        out->open = out->open || r->open;
      } else if (name == "concatLists") {
        out->open = true;
      } else {
        out->elems.push_back(el);
      }
    }
    return out;
  }
  if (name == "optional" || name == "optionals") {
    ValuePtr c = F(0);
    if (c->kind == VKind::Bool && !c->b) return make(VKind::List);
    if (c->kind != VKind::Bool && args[0]->expr) touchDeep(*args[0]->expr);
    if (name == "optionals") return F(1);
    auto out = make(VKind::List);
    out->elems.push_back(args[1]);
    return out;
  }
  if (name == "optionalAttrs") {
    // An unknown condition gives the set itself: a superset of both answers.
    ValuePtr c = F(0);
    if (c->kind == VKind::Bool && !c->b) return make(VKind::Attrs);
    if (c->kind != VKind::Bool && args[0]->expr) touchDeep(*args[0]->expr);
    return F(1);
  }
  if (name == "match" || name == "split") {
    // POSIX extended regular expressions, as Nix's builtins use (std::regex::extended).
    ValuePtr re = F(0), text = F(1);
    if (re->kind != VKind::String || !re->text || text->kind != VKind::String || !text->text ||
        text->text->size() > 4096)
      return unknown("builtins." + name + " of unknown text", text->carried);
    std::regex regex;
    try {
      regex = std::regex(*re->text, std::regex::extended);
    } catch (const std::regex_error&) {
      return unknown("builtins." + name + " of an invalid regular expression");
    }
    auto groups = [&](const std::smatch& m) {
      auto list = make(VKind::List);
      for (size_t g = 1; g < m.size(); ++g)
        list->elems.push_back(ready(m[g].matched ? str(m[g].str()) : make(VKind::Null)));
      return list;
    };
    const std::string& t = *text->text;
    if (name == "match") {
      std::smatch m;
      if (!std::regex_match(t, m, regex)) return make(VKind::Null);
      return groups(m);
    }
    auto out = make(VKind::List);
    auto begin = t.cbegin();
    for (std::sregex_iterator it(t.begin(), t.end(), regex), end; it != end; ++it) {
      const std::smatch& m = *it;
      out->elems.push_back(ready(str(std::string(begin, m[0].first))));
      out->elems.push_back(ready(groups(m)));
      begin = m[0].second;
      if (out->elems.size() > 2048) return unknown("builtins.split with too many matches");
    }
    out->elems.push_back(ready(str(std::string(begin, t.cend()))));
    return out;
  }
  if (name == "mkIf") {
    ValuePtr c = F(0);
    if (c->kind != VKind::Bool && args[0]->expr) touchDeep(*args[0]->expr);
    return F(1);
  }
  if (name == "mkDefault" || name == "mkForce" || name == "trace" || name == "seq" ||
      name == "deepSeq" || name == "mkOverride" || name == "id") {
    return F(args.size() - 1);
  }
  if (name == "const") return F(0);
  if (name == "makeOverridable") return apply(F(0), args[1], site, env);
  // String and list functions on known values (attribute names are often computed with
  // them: removeSuffix ".nix" over a readDir, …).
  auto knownText = [&](size_t i) -> std::optional<std::string> {
    ValuePtr v = F(i);
    if (v->kind == VKind::String && v->text) return v->text;
    return std::nullopt;
  };
  if (name == "removeSuffix" || name == "removePrefix" || name == "hasSuffix" ||
      name == "hasPrefix") {
    auto affix = knownText(0), text = knownText(1);
    if (!affix || !text) return unknown("builtins." + name + " of unknown text");
    bool suffix = name == "removeSuffix" || name == "hasSuffix";
    bool has = suffix ? endsWith(*text, *affix) : startsWith(*text, *affix);
    if (name == "hasSuffix" || name == "hasPrefix") return boolv(has);
    if (!has) return str(*text);
    return str(suffix ? text->substr(0, text->size() - affix->size())
                      : text->substr(affix->size()));
  }
  if (name == "toLower" || name == "toUpper") {
    auto text = knownText(0);
    if (!text) return unknown("builtins." + name + " of unknown text");
    std::string out = *text;
    for (char& ch : out)
      ch = name == "toLower" ? static_cast<char>(std::tolower(ch))
                             : static_cast<char>(std::toupper(ch));
    return str(out);
  }
  if (name == "stringLength") {
    auto text = knownText(0);
    if (!text) return unknown("stringLength of unknown text");
    auto v = make(VKind::Int);
    v->i = static_cast<int64_t>(text->size());
    return v;
  }
  if (name == "substring") {
    ValuePtr start = F(0), len = F(1);
    auto text = knownText(2);
    if (start->kind != VKind::Int || len->kind != VKind::Int || !text || start->i < 0)
      return unknown("substring of unknown text");
    size_t b = std::min(static_cast<size_t>(start->i), text->size());
    return str(text->substr(b, len->i < 0 ? std::string::npos : static_cast<size_t>(len->i)));
  }
  if (name == "replaceStrings") {
    auto from = knownStrings(F(0)), to = knownStrings(F(1));
    auto text = knownText(2);
    if (!from || !to || !text || from->size() != to->size())
      return unknown("replaceStrings of unknown text");
    std::string out;
    for (size_t i = 0; i < text->size();) {
      chargeText(0, out.size());
      bool done = false;
      for (size_t k = 0; k < from->size(); ++k) {
        const std::string& f = (*from)[k];
        if (!f.empty() && text->compare(i, f.size(), f) == 0) {
          out += (*to)[k];
          i += f.size();
          done = true;
          break;
        }
      }
      if (!done) out += (*text)[i++];
    }
    chargeText(out.size());
    return str(out);
  }
  if (name == "concatStringsSep") {
    auto sep = knownText(0);
    auto parts = knownStrings(F(1));
    if (!sep || !parts) return unknown("concatStringsSep of unknown text");
    size_t total = 0;
    for (const auto& p : *parts) total += p.size() + sep->size();
    chargeText(total);
    return str(join(*parts, *sep));
  }
  if (name == "head" || name == "tail" || name == "length" || name == "elemAt") {
    ValuePtr l = F(0);
    if (l->kind != VKind::List || l->open) return unknown(name + " of an unknown list", l->carried);
    if (name == "length") {
      auto v = make(VKind::Int);
      v->i = static_cast<int64_t>(l->elems.size());
      return v;
    }
    if (name == "tail") {
      charge(l->elems.size());
      auto out = make(VKind::List);
      if (!l->elems.empty()) out->elems.assign(l->elems.begin() + 1, l->elems.end());
      return out;
    }
    size_t idx = 0;
    if (name == "elemAt") {
      ValuePtr i = F(1);
      if (i->kind != VKind::Int || i->i < 0) return unknown("elemAt of an unknown index");
      idx = static_cast<size_t>(i->i);
    }
    if (idx >= l->elems.size()) return unknown(name + " out of range");
    return force(l->elems[idx]);
  }
  if (name == "elem") {
    auto x = knownText(0);
    auto list = knownStrings(F(1));
    if (!x || !list) return unknown("elem we cannot evaluate");
    return boolv(std::find(list->begin(), list->end(), *x) != list->end());
  }
  if (name == "packagesFromDirectoryRecursive") {
    // Every Nix file below `directory` is a package, callPackage'd: depend on all of them.
    ValuePtr a = F(0);
    Carried c = carriedOfArgs();
    if (a->kind == VKind::Attrs) {
      if (ThunkPtr d = select(a, "directory")) {
        ValuePtr dv = force(d);
        if (dv->path) c.paths.insert(*dv->path);
      }
    }
    return unknown("packagesFromDirectoryRecursive", c);
  }
  if (name == "recursiveUpdate") return mergeAttrs({args[0], args[1]});
  if (name == "foldl'") {
    ValuePtr op = F(0), l = F(2);
    if (l->kind != VKind::List || l->open || l->elems.size() > 64)
      return unknown("foldl' we do not evaluate", carriedOfArgs());
    ThunkPtr acc = args[1];
    for (const auto& el : l->elems) {
      ValuePtr r = apply(apply(op, acc, site, env), el, site, env);
      acc = ready(r);
    }
    return force(acc);
  }
  if (name == "importApply") {
    ValuePtr p = F(0);
    if (!p->path || !p->path->exact)
      return unknown("importApply of a computed path", carriedOfArgs());
    return apply(force(importFile(p->path->path)), args[1], site, env);
  }
  if (name == "flake-parts.mkFlake") return flakeParts(args[0], args[1]);
  if (name == "flake-parts.evalFlakeModule") {
    auto config = make(VKind::Attrs);
    config->open = true;
    config->attrs["flake"] = ready(flakeParts(args[0], args[1]));
    auto out = make(VKind::Attrs);
    out->open = true;
    out->attrs["config"] = ready(config);
    return out;
  }
  if (name == "withSystem") return apply(F(1), ready(systemArgs()), site, env);
  if (name == "throw" || name == "abort") return unknown(name);
  if (name == "getFlake") {
    // A locked reference (a commit id or a narHash) names immutable code: a change to it is a
    // change of this file. Unlocked or computed references can change under us: dynamic.
    ValuePtr ref = F(0);
    if (ref->kind == VKind::String && ref->text && ref->carried.empty() &&
        isLockedFlakeRef(*ref->text)) {
      auto in = make(VKind::Input);
      in->input = "getFlake:" + *ref->text;
      return in;
    }
  }
  if (name == "getFlake" || name == "toPath" || name == "storePath") {
    Carried c = carriedOfArgs();
    c.dynamic.push_back(locate(site, env) + ": builtins." + name);
    return unknown("builtins." + name, c);
  }
  if (benign(name)) return unknown("builtins." + name);
  // fetchers, builtins.path, …: whatever they read is in their arguments
  return unknown("builtins." + name, carriedOfArgs());
}

void Evaluator::collectFlakePartsModule(const ValuePtr& module, const ThunkPtr& moduleArgs,
                                        FlakePartsCollected& out, int depth) {
  if (depth > 20) return;
  charge(1);
  switch (module->kind) {
    case VKind::Path:
    case VKind::String:
      if (module->path && module->path->exact) {
        collectFlakePartsModule(force(importFile(module->path->path)), moduleArgs, out, depth + 1);
        return;
      }
      break;
    case VKind::Lambda:
      collectFlakePartsModule(apply(module, moduleArgs, nullptr, nullptr), moduleArgs, out,
                              depth + 1);
      return;
    case VKind::List:
      for (const auto& el : module->elems)
        collectFlakePartsModule(force(el), moduleArgs, out, depth + 1);
      return;
    case VKind::Attrs: {
      static const std::set<std::string> kModelled = {
          "flake", "clan",          "lite-config", "imports",          "perSystem", "systems",
          "debug", "transposition", "partitions",  "partitionedAttrs", "_class",    "_file",
          "key",   "options",       "config",      "disabledModules"};
      if (ThunkPtr f = select(module, "flake")) out.flake.push_back(f);
      if (ThunkPtr c = select(module, "clan")) out.clan.push_back(c);
      if (ThunkPtr l = select(module, "lite-config")) out.liteConfig.push_back(l);
      if (ThunkPtr p = select(module, "perSystem")) out.perSystem.push_back(p);
      if (ThunkPtr s = select(module, "systems")) out.systems.push_back(s);
      if (ThunkPtr c = select(module, "config")) {  // { options = …; config = { flake = …; }; }
        ValuePtr cv = force(c);
        if (cv->kind == VKind::Attrs) collectFlakePartsModule(cv, moduleArgs, out, depth + 1);
      }
      if (ThunkPtr i = select(module, "imports"))
        collectFlakePartsModule(force(i), moduleArgs, out, depth + 1);
      for (const auto& [k, _] : module->attrs)
        if (!kModelled.count(k)) out.otherOptions.insert(k);
      return;
    }
    case VKind::Input:
      // a flake module from an input (clan-core.flakeModules.default, lite-config, …)
      out.externalModules.push_back(module->input + "." + join(module->inputPath, "."));
      return;
    default:
      break;
  }
  std::string gap = "a flake-parts module the planner cannot evaluate: " +
                    (module->reason.empty() ? std::string("unknown value") : module->reason);
  warnings_.push_back(gap);
  discoveryGaps_.push_back(gap);
}

// yelite/lite-config: hosts.<name>.system, hostModuleDir/<name>, systemModules for every
// host; darwin systems become darwinConfigurations, not NixOS hosts.
ValuePtr Evaluator::liteConfig(const std::vector<ThunkPtr>& parts, const ThunkPtr& moduleArgs) {
  std::vector<ThunkPtr> values;
  for (const auto& p : parts) {
    ValuePtr v = force(p);
    if (v->kind == VKind::Lambda) v = apply(v, moduleArgs, nullptr, nullptr);
    values.push_back(ready(v));
  }
  ValuePtr cfg = mergeAttrs(values);
  auto configs = make(VKind::Attrs);
  if (cfg->kind != VKind::Attrs) return configs;
  std::optional<std::string> hostDir;
  if (ThunkPtr d = select(cfg, "hostModuleDir")) {
    ValuePtr dv = force(d);
    if (dv->path && dv->path->exact) hostDir = dv->path->path;
  }
  // Everything else lite-config is given (systemModules, nixpkgs overlays, …) may end up in
  // every host: a module value without an origin, so its parts are scanned one by one.
  auto shared = make(VKind::Attrs);
  for (const auto& [k, t] : cfg->attrs)
    if (k != "hostModuleDir" && k != "hosts") shared->attrs[k] = t;
  ThunkPtr hostsT = select(cfg, "hosts");
  ValuePtr hosts = hostsT ? force(hostsT) : make(VKind::Attrs);
  if (hosts->kind != VKind::Attrs) {
    configs->open = true;
    configs->openReason = "lite-config hosts the planner cannot evaluate";
    return configs;
  }
  for (const auto& [name, spec] : hosts->attrs) {
    ValuePtr sv = force(spec);
    if (sv->kind == VKind::Attrs) {
      if (ThunkPtr sys = select(sv, "system")) {
        ValuePtr system = force(sys);
        if (system->kind == VKind::String && system->text && endsWith(*system->text, "-darwin"))
          continue;
      }
    }
    auto sys = make(VKind::NixosSystem);
    sys->libInput = inputs_.count("nixpkgs") ? "nixpkgs" : "lite-config";
    sys->hostNameIsName = true;  // lite-config sets networking.hostName to the host's name
    auto mods = make(VKind::List);
    if (hostDir)
      mods->elems.push_back(ready(pathValue(PathRef{true, *hostDir + "/" + name, "", ""})));
    mods->elems.push_back(ready(shared));
    mods->elems.push_back(spec);
    sys->modules = ready(mods);
    configs->attrs[name] = ready(sys);
  }
  return configs;
}

ValuePtr Evaluator::flakeParts(const ThunkPtr& args, const ThunkPtr& module) {
  // The module arguments flake-parts gives its modules.
  auto margs = make(VKind::Attrs);
  margs->open = true;
  margs->attrs["self"] = self_;
  margs->attrs["inputs"] = inputsAttrs_;
  auto lib = make(VKind::Input);
  lib->input = inputs_.count("nixpkgs") ? "nixpkgs" : "flake-parts";
  lib->inputPath = {"lib"};
  margs->attrs["lib"] = ready(lib);
  auto fpl = make(VKind::Input);
  fpl->input = "flake-parts";
  fpl->inputPath = {"lib"};
  margs->attrs["flake-parts-lib"] = ready(fpl);
  auto config = make(VKind::Attrs);
  config->open = true;
  config->attrs["flake"] = self_;
  margs->attrs["config"] = ready(config);
  margs->attrs["withSystem"] = ready(withSystemFunction());
  ThunkPtr moduleArgs = ready(margs);

  FlakePartsCollected c;
  collectFlakePartsModule(force(module), moduleArgs, c, 0);
  std::vector<ThunkPtr> flakeParts = c.flake;
  // `self.packages.<system>.x` of a perSystem package: the outputs flake-parts transposes
  if (!c.perSystem.empty()) flakeParts.insert(flakeParts.begin(), ready(perSystemCategories(c)));
  ValuePtr merged = mergeAttrs(flakeParts);
  std::vector<ThunkPtr> hostSets;
  if (!c.clan.empty()) {
    ValuePtr clanResult = clan(ready(mergeAttrs(c.clan)));
    if (ThunkPtr cc = select(clanResult, "nixosConfigurations")) hostSets.push_back(cc);
  }
  if (!c.liteConfig.empty()) hostSets.push_back(ready(liteConfig(c.liteConfig, moduleArgs)));
  // Options set by flake modules of inputs that the planner does not model may define hosts.
  std::vector<std::string> unmodelled;
  for (const auto& o : c.otherOptions) unmodelled.push_back(o);
  if (!c.externalModules.empty() && !unmodelled.empty()) {
    warnings_.push_back("flake-parts options " + join(unmodelled, ", ") +
                        " come from flake modules the planner does not model (" +
                        join(c.externalModules, ", ") +
                        "): hosts they define are not discovered; list them under hosts: in the "
                        "config");
    discoverySoftGaps_.push_back("flake-parts options " + join(unmodelled, ", ") +
                                 " come from flake modules the planner does not model");
  }
  if (hostSets.empty()) return merged;
  auto out = make(VKind::Attrs);
  *out = *merged;
  if (ThunkPtr own = select(merged, "nixosConfigurations")) hostSets.push_back(own);
  out->attrs["nixosConfigurations"] = ready(mergeAttrs(hostSets));
  return out;
}

ValuePtr Evaluator::perSystemOutputs(const std::vector<ThunkPtr>& modules, const ValuePtr& system) {
  auto args = make(VKind::Attrs);
  *args = *systemArgs();
  args->attrs["system"] = ready(system);
  // `config` and `self'` are these same outputs (filled in below; forced early, unknown)
  ThunkPtr own = newThunk();
  own->compute = [] { return unknown("perSystem config read while it is being defined"); };
  args->attrs["config"] = own;
  args->attrs["self'"] = own;
  ThunkPtr argsT = ready(args);
  std::vector<ThunkPtr> parts;
  static const std::set<std::string> kNotOutputs = {"imports", "options", "config",         "_file",
                                                    "key",     "_class",  "disabledModules"};
  std::function<void(ValuePtr, int)> collect = [&](ValuePtr m, int depth) {
    charge(1);
    if (depth > 20) {
      parts.push_back(ready(unknown("perSystem modules nested too deeply")));
      return;
    }
    if ((m->kind == VKind::Path || m->kind == VKind::String) && m->path && m->path->exact)
      m = force(importFile(m->path->path));
    if (m->kind == VKind::Lambda) m = apply(m, argsT, nullptr, nullptr);
    if (m->kind == VKind::List) {
      for (const auto& el : m->elems) collect(force(el), depth + 1);
      if (m->open) parts.push_back(ready(unknown("a perSystem imports list not fully known")));
      return;
    }
    if (m->kind != VKind::Attrs) {
      // every per-system output may come from it: selecting one is dynamic (mergeAttrs)
      parts.push_back(ready(m));
      return;
    }
    auto outputs = make(VKind::Attrs);
    inheritOpen(*outputs, *m);
    for (const auto& [k, t] : m->attrs)
      if (!kNotOutputs.count(k)) outputs->attrs[k] = t;
    parts.push_back(ready(outputs));
    if (ThunkPtr cfg = select(m, "config")) collect(force(cfg), depth + 1);
    if (ThunkPtr i = select(m, "imports")) collect(force(i), depth + 1);
  };
  for (const auto& t : modules) collect(force(t), 0);
  ValuePtr out = mergeAttrs(parts);
  if (!own->value) {
    own->compute = nullptr;
    own->value = out;
  }
  return out;
}

ValuePtr Evaluator::perSystemCategories(const FlakePartsCollected& c) {
  // The systems: a list option, its definitions concatenate.
  std::optional<std::vector<std::string>> systems = std::vector<std::string>{};
  for (const auto& t : c.systems) {
    auto s = knownStrings(force(t));
    if (!s) {
      systems.reset();
      break;
    }
    systems->insert(systems->end(), s->begin(), s->end());
  }
  if (c.systems.empty()) systems.reset();
  std::vector<ThunkPtr> modules = c.perSystem;
  // One evaluation per system, on demand (a host that never reads self.packages forces none).
  auto bySystem = std::make_shared<std::map<std::string, ThunkPtr>>();
  auto forSystem = [this, modules, bySystem](const std::optional<std::string>& sys) {
    std::string key = sys ? *sys : std::string("<unknown>");
    auto it = bySystem->find(key);
    if (it != bySystem->end()) return it->second;
    auto t = newThunk();
    t->compute = [this, modules, sys] {
      return perSystemOutputs(modules, sys ? str(*sys) : unknown("the system"));
    };
    return (*bySystem)[key] = t;
  };
  auto out = make(VKind::Attrs);
  // flake-parts' own transposed options; other transpositions come from modules
  for (const char* category :
       {"packages", "legacyPackages", "checks", "devShells", "apps", "formatter"}) {
    std::string cat = category;
    auto t = newThunk();
    t->compute = [this, cat, systems, forSystem] {
      auto perSys = make(VKind::Attrs);
      auto one = [this, cat, forSystem](const std::optional<std::string>& sys) {
        auto x = newThunk();
        x->compute = [this, cat, forSystem, sys] {
          ThunkPtr outputs = forSystem(sys);
          ThunkPtr v = select(force(outputs), cat);
          return v ? force(v) : make(VKind::Attrs);
        };
        return x;
      };
      if (systems) {
        for (const auto& s : *systems) perSys->attrs[s] = one(s);
      } else {
        perSys->open = true;
        perSys->unknownEntries.push_back(one(std::nullopt));
      }
      return ValuePtr(perSys);
    };
    out->attrs[cat] = t;
  }
  return out;
}

// The arguments a per-system function gets (flake-parts' and adios-flake's `withSystem`,
// perSystem): pkgs from nixpkgs, its lib; the system and the primed inputs are unknown.
ValuePtr Evaluator::systemArgs() {
  auto a = make(VKind::Attrs);
  a->open = true;
  if (inputs_.count("nixpkgs")) {
    auto pkgs = make(VKind::Input);
    pkgs->input = "nixpkgs";
    pkgs->inputPath = {"<pkgs>"};
    a->attrs["pkgs"] = ready(pkgs);
    auto lib = make(VKind::Input);
    lib->input = "nixpkgs";
    lib->inputPath = {"lib"};
    a->attrs["lib"] = ready(lib);
  }
  return a;
}

ValuePtr Evaluator::withSystemFunction() {
  auto b = make(VKind::Builtin);
  b->name = "withSystem";
  return b;
}

// adios-flake (Mic92/adios-flake) is called with one attribute set
// `{ inputs; self; systems; modules; perSystem; config; flake; }`; flake-parts' mkFlake takes two
// arguments, the first of which never has those keys.
bool Evaluator::isAdiosCall(const std::string& input, const ThunkPtr& arg) {
  if (input.find("adios") != std::string::npos) return true;
  ValuePtr a = force(arg);
  if (a->kind != VKind::Attrs) return false;
  for (const char* k : {"systems", "modules", "perSystem", "flake"})
    if (a->attrs.count(k)) return true;
  return false;
}

// adios-flake's outputs: flake-scoped categories (nixosConfigurations among them) come from the
// `flake` argument (a set, or a function of `{ withSystem }`) and from modules that do not
// depend on a system (functions without pkgs/system/inputs'/self' arguments, which adios calls
// with self, withSystem and lib, and plain attribute sets). A system-dependent module's outputs
// always land under a system: adios refuses flake-scoped ones from it.
ValuePtr Evaluator::adiosFlake(const ThunkPtr& argsThunk) {
  ValuePtr a = force(argsThunk);
  // Per-system outputs (packages, devShells, …) are left out: they hold no hosts.
  auto out = make(VKind::Attrs);
  if (a->kind != VKind::Attrs) {
    std::string gap = "adios-flake mkFlake called with arguments the planner cannot evaluate";
    warnings_.push_back(gap);
    discoveryGaps_.push_back(gap);
    return out;
  }
  auto moduleArgs = make(VKind::Attrs);
  moduleArgs->attrs["self"] = self_;
  moduleArgs->attrs["withSystem"] = ready(withSystemFunction());
  if (inputs_.count("nixpkgs")) {
    auto lib = make(VKind::Input);
    lib->input = "nixpkgs";
    lib->inputPath = {"lib"};
    moduleArgs->attrs["lib"] = ready(lib);
  }
  std::vector<ThunkPtr> hostSets;
  auto gap = [&](const std::string& what) {
    std::string g = "an adios-flake module the planner cannot evaluate: " + what;
    warnings_.push_back(g);
    discoveryGaps_.push_back(g);
  };
  auto fromResult = [&](const ValuePtr& r, const std::string& what) {
    if (r->kind != VKind::Attrs)
      return gap(what + (r->reason.empty() ? "" : " (" + r->reason + ")"));
    if (r->open && !r->unknownEntries.empty()) gap(what + " has outputs the planner cannot name");
    if (ThunkPtr nc = select(r, "nixosConfigurations")) hostSets.push_back(nc);
  };
  auto oneModule = [&](ValuePtr m, const std::string& what) {
    if ((m->kind == VKind::Path || m->kind == VKind::String) && m->path && m->path->exact)
      m = force(importFile(m->path->path));
    if (m->kind == VKind::Lambda) {
      static const std::set<std::string> kSystemArgs = {"pkgs", "system", "inputs'", "self'"};
      if (m->lambda->formals)
        for (const auto& f : m->lambda->formals->formals)
          if (kSystemArgs.count(f.name)) return;  // per-system outputs only
      return fromResult(apply(m, ready(moduleArgs), nullptr, nullptr), what);
    }
    if (m->kind == VKind::Attrs) {
      for (const char* k : {"options", "inputs", "impl", "modules", "outputs"})
        if (m->attrs.count(k)) return gap(what + " (a native adios module)");
      return fromResult(m, what);
    }
    if (m->kind == VKind::Null) return;
    gap(what + (m->reason.empty() ? "" : " (" + m->reason + ")"));
  };
  if (ThunkPtr mods = select(a, "modules")) {
    ValuePtr ml = force(mods);
    if (ml->kind == VKind::List) {
      for (size_t i = 0; i < ml->elems.size(); ++i)
        oneModule(force(ml->elems[i]), "modules[" + std::to_string(i) + "]");
      if (ml->open) gap("a modules list the planner cannot evaluate fully");
    } else {
      gap("modules" + (ml->reason.empty() ? std::string() : " (" + ml->reason + ")"));
    }
  }
  if (ThunkPtr ps = select(a, "perSystem")) oneModule(force(ps), "perSystem");
  if (ThunkPtr f = select(a, "flake")) {
    ValuePtr fv = force(f);
    if (fv->kind == VKind::Lambda) {
      auto wargs = make(VKind::Attrs);
      wargs->attrs["withSystem"] = ready(withSystemFunction());
      fv = apply(fv, ready(wargs), nullptr, nullptr);
    }
    fromResult(fv, "the flake argument");
    if (fv->kind == VKind::Attrs) *out = *fv;
  }
  out->attrs.erase("nixosConfigurations");
  if (!hostSets.empty()) out->attrs["nixosConfigurations"] = ready(mergeAttrs(hostSets));
  return out;
}

ValuePtr Evaluator::clan(const ThunkPtr& argsThunk) {
  ValuePtr a = force(argsThunk);
  ThunkPtr machines = a->kind == VKind::Attrs ? select(a, "machines") : nullptr;
  ThunkPtr specialArgs = a->kind == VKind::Attrs ? select(a, "specialArgs") : nullptr;
  ThunkPtr inventory = a->kind == VKind::Attrs ? select(a, "inventory") : nullptr;
  std::string dir;
  if (ThunkPtr d = a->kind == VKind::Attrs ? select(a, "directory") : nullptr) {
    ValuePtr dv = force(d);
    if (dv->path && dv->path->exact) dir = dv->path->path;
  }
  std::string machinesDir = dir.empty() ? "machines" : dir + "/machines";
  std::map<std::string, ThunkPtr> explicitMachines;
  bool open = false;
  if (machines) {
    ValuePtr m = force(machines);
    if (m->kind == VKind::Attrs) {
      explicitMachines = m->attrs;
      open = m->open;
    } else {
      open = true;
      warnings_.push_back("Clan machines the planner cannot evaluate: " + m->reason);
    }
  }
  std::set<std::string> names;
  for (const auto& [k, _] : explicitMachines) names.insert(k);
  // Clan discovers machines from machines/<name>/configuration.nix.
  if (const auto* kids = tree_.children(machinesDir)) {
    for (const auto& k : *kids) {
      if (k.kind != git::EntryKind::Tree) continue;
      if (tree_.exists(k.path + "/configuration.nix"))
        names.insert(k.path.substr(k.path.rfind('/') + 1));
    }
  }
  std::set<std::string> darwin;
  if (inventory) {
    ValuePtr inv = force(inventory);
    if (inv->kind == VKind::Attrs) {
      if (ThunkPtr im = select(inv, "machines")) {
        ValuePtr imv = force(im);
        if (imv->kind == VKind::Attrs) {
          for (const auto& [k, spec] : imv->attrs) {
            names.insert(k);
            ValuePtr sv = force(spec);
            ThunkPtr mc = sv->kind == VKind::Attrs ? select(sv, "machineClass") : nullptr;
            ValuePtr mcv = mc ? force(mc) : nullptr;
            if (mcv && mcv->kind == VKind::String && mcv->text == "darwin") darwin.insert(k);
          }
        }
      }
    }
  }
  for (const auto& d : darwin) names.erase(d);  // darwinConfigurations, not NixOS hosts
  auto configs = make(VKind::Attrs);
  configs->open = open;
  if (open) configs->openReason = "Clan machines the planner cannot evaluate";
  std::string libInput = inputs_.count("clan-core") ? "clan-core" : "nixpkgs";
  for (const auto& n : names) {
    auto sys = make(VKind::NixosSystem);
    sys->libInput = libInput;
    sys->specialArgs = specialArgs;
    sys->hostNameIsName = true;  // clan-core sets networking.hostName to the machine's name
    auto mods = make(VKind::List);
    if (auto it = explicitMachines.find(n); it != explicitMachines.end())
      mods->elems.push_back(it->second);
    std::string conf = machinesDir + "/" + n + "/configuration.nix";
    if (tree_.exists(conf)) mods->elems.push_back(ready(pathValue(PathRef{true, conf, "", ""})));
    // inventory roles/tags may add modules to any machine: scan the whole inventory
    if (inventory) mods->elems.push_back(inventory);
    sys->modules = ready(mods);
    // vars, secrets and hardware facts bound to the machine by convention
    std::string root = dir.empty() ? "" : dir + "/";
    sys->conventionPaths = {machinesDir + "/" + n + "/", root + "vars/per-machine/" + n + "/",
                            root + "vars/shared/",       root + "sops/machines/" + n + "/",
                            root + "sops/secrets/",      root + "sops/users/"};
    configs->attrs[n] = ready(sys);
  }
  auto config = make(VKind::Attrs);
  config->open = true;
  config->attrs["nixosConfigurations"] = ready(configs);
  auto out = make(VKind::Attrs);
  out->open = true;
  out->attrs["config"] = ready(config);
  out->attrs["nixosConfigurations"] = ready(configs);
  return out;
}

ValuePtr Evaluator::colmenaHosts(const ValuePtr& hive) {
  auto out = make(VKind::Attrs);
  if (hive->kind != VKind::Attrs) return out;
  ThunkPtr meta = select(hive, "meta");
  ThunkPtr defaults = select(hive, "defaults");
  ThunkPtr specialArgs;
  std::string libInput = "nixpkgs";
  ValuePtr metaV = meta ? force(meta) : nullptr;
  if (metaV && metaV->kind == VKind::Attrs) {
    specialArgs = select(metaV, "specialArgs");
    if (ThunkPtr np = select(metaV, "nixpkgs")) {
      ValuePtr npv = force(np);
      if (npv->kind == VKind::Input) libInput = npv->input;
    }
  }
  for (const auto& [name, t] : hive->attrs) {
    if (name == "meta" || name == "defaults") continue;
    auto sys = make(VKind::NixosSystem);
    sys->libInput = libInput;
    sys->specialArgs = specialArgs;
    auto mods = make(VKind::List);
    if (defaults) mods->elems.push_back(defaults);
    mods->elems.push_back(t);
    sys->modules = ready(mods);
    out->attrs[name] = ready(sys);
  }
  return out;
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
        ValuePtr hosts = colmenaHosts(force(c));
        for (const auto& [name, t] : hosts->attrs) out.push_back({name, t, key});
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
