#include "runner/plan/deps.h"

#include <algorithm>
#include <functional>
#include <regex>

#include "runner/core/text.h"
#include "runner/plan/ast_walk.h"

namespace runner::plan {

using namespace runner::nix;

namespace {

// Module arguments whose uses never point at files or inputs by themselves.
bool plainModuleArg(const std::string& n) {
  static const std::set<std::string> k = {"config",      "lib",         "options",
                                          "utils",       "modulesPath", "pkgs",
                                          "specialArgs", "nodes",       "extendModules"};
  return k.count(n) > 0;
}

bool isBinder(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Lambda:
    case ExprKind::Let:
    case ExprKind::With:
      return true;
    case ExprKind::Attrs:
      return e.as<ExprAttrs>()->recursive;
    default:
      return false;
  }
}

// The name of a builtin called as `f`, `builtins.f` (or nullopt).
std::optional<std::string> builtinName(const Expr& fn) {
  if (const auto* v = fn.as<ExprVar>(); v && v->scope == VarScope::Global) return v->name;
  if (const auto* s = fn.as<ExprSelect>()) {
    if (const auto* v = s->expr->as<ExprVar>(); v && v->scope == VarScope::Global &&
                                                v->name == "builtins" && s->path.size() == 1 &&
                                                s->path[0].isStatic())
      return s->path[0].name;
  }
  return std::nullopt;
}

// P when `e` is `import P` (the builtin, one argument), else null.
const Expr* importOf(const Expr& e) {
  const auto* c = e.as<ExprCall>();
  if (!c || c->args.size() != 1) return nullptr;
  auto name = builtinName(*c->fn);
  return name && *name == "import" ? c->args[0].get() : nullptr;
}

bool staticPath(const std::vector<AttrName>& path) {
  return std::all_of(path.begin(), path.end(), [](const AttrName& a) { return a.isStatic(); });
}

// True when every use of the let-bound `name` in `l` selects static attributes from it
// (`name.a.b`): its value is never passed on whole.
bool onlySelectedFrom(const ExprLet& l, const std::string& name) {
  bool ok = true;
  std::function<void(const Expr&, const Expr*)> walk = [&](const Expr& e, const Expr* parent) {
    if (!ok) return;
    if (const auto* v = e.as<ExprVar>(); v && v->name == name && v->binder == &l) {
      const auto* sel = parent ? parent->as<ExprSelect>() : nullptr;
      if (!sel || sel->expr.get() != &e || !staticPath(sel->path)) ok = false;
      return;
    }
    forEachChild(e, [&](const Slot&, const Expr& c) { walk(c, &e); });
  };
  walk(l, nullptr);
  return ok;
}

bool matches(const PathRef& p, const std::string& path) {
  return path.size() >= p.prefix.size() + p.suffix.size() && startsWith(path, p.prefix) &&
         endsWith(path, p.suffix);
}

std::string where(const std::string& file, const Expr* e) {
  return file + ":" + std::to_string(e ? e->pos.line : 0);
}

// The literal text of a string without interpolations.
std::optional<std::string> literalString(const Expr& e) {
  const auto* s = e.as<ExprString>();
  return s ? s->literal() : std::nullopt;
}

// True when `c` calls a function named `want` (`want`, `x.want`, `x.y.want`).
bool callsNamed(const ExprCall& c, const std::string& want) {
  if (const auto* v = c.fn->as<ExprVar>()) return v->name == want;
  if (const auto* sel = c.fn->as<ExprSelect>())
    return !sel->path.empty() && sel->path.back().isStatic() && sel->path.back().name == want;
  return false;
}

// `lib.sourceByRegex` keeps a file when its path relative to the source and the path of every
// directory on the way match one of the regular expressions (POSIX extended, whole string).
bool passesRegexFilter(const std::vector<std::regex>& res, const std::string& rel) {
  for (size_t slash = rel.find('/');; slash = rel.find('/', slash + 1)) {
    std::string part = slash == std::string::npos ? rel : rel.substr(0, slash);
    bool ok = std::any_of(res.begin(), res.end(),
                          [&](const std::regex& re) { return std::regex_match(part, re); });
    if (!ok) return false;
    if (slash == std::string::npos) return true;
  }
}

std::optional<std::vector<std::regex>> compileRegexes(const std::vector<std::string>& texts) {
  std::vector<std::regex> out;
  try {
    for (const auto& t : texts) out.emplace_back(t, std::regex::extended);
  } catch (const std::regex_error&) {
    return std::nullopt;
  }
  return out;
}

// Plain data written out in full: literals, lists and attribute sets of them. Its value
// changes exactly when its nodes do.
bool plainData(const Expr& e, int depth = 0) {
  if (depth > 64) return false;
  switch (e.kind) {
    case ExprKind::Int:
    case ExprKind::Float:
      return true;
    case ExprKind::String:
      return e.as<ExprString>()->literal().has_value();
    case ExprKind::Var: {
      const auto* v = e.as<ExprVar>();
      return v->scope == VarScope::Global &&
             (v->name == "true" || v->name == "false" || v->name == "null");
    }
    case ExprKind::List:
      for (const auto& x : e.as<ExprList>()->elems)
        if (!plainData(*x, depth + 1)) return false;
      return true;
    case ExprKind::Attrs: {
      const auto* a = e.as<ExprAttrs>();
      if (a->recursive || !a->dynamicAttrs.empty() || !a->inheritFrom.empty()) return false;
      for (const auto& [name, def] : a->attrs)
        if (def.kind != AttrDef::Kind::Plain || !def.value || !plainData(*def.value, depth + 1))
          return false;
      return true;
    }
    default:
      return false;
  }
}

// What `(import file).a.b` selects, when `file` is an attribute set written out down to a
// value that is plain data; null otherwise (a path there may be missing, computed, …).
const Expr* selectedData(const Expr& root, const std::vector<AttrName>& path) {
  const Expr* cur = &root;
  for (const auto& a : path) {
    const auto* attrs = cur->as<ExprAttrs>();
    if (!attrs) break;  // a selection inside plain data
    if (attrs->recursive || !attrs->dynamicAttrs.empty() || !a.isStatic()) return nullptr;
    auto it = attrs->attrs.find(a.name);
    if (it == attrs->attrs.end() || it->second.kind != AttrDef::Kind::Plain || !it->second.value)
      return nullptr;
    cur = it->second.value.get();
  }
  return plainData(*cur) ? cur : nullptr;
}

}  // namespace

bool HostDeps::dependsOnlyAsCode(const std::string& path) const {
  if (!files.count(path) || textRefs.count(path) || !moduleFiles.count(path)) return false;
  HostDeps rest;  // the same dependencies without the exact files
  rest.dirs = dirs;
  rest.patterns = patterns;
  rest.filtered = filtered;
  return !rest.dependsOnFile(path);
}

bool HostDeps::dependsOnFile(const std::string& path) const {
  if (files.count(path)) return true;
  for (const auto& d : dirs)
    if (d.empty() || startsWith(path, d)) return true;
  for (const auto& p : patterns)
    if (matches(p, path)) return true;
  for (const auto& [dir, texts] : filtered) {
    if (!startsWith(path, dir)) continue;
    auto res = compileRegexes(texts);  // they compiled when added; a failure is a dependency
    if (!res || passesRegexFilter(*res, path.substr(dir.size()))) return true;
  }
  return false;
}

struct DepScanner::HostCtx {
  const HostDef* host = nullptr;
  HostDeps* deps = nullptr;
  ThunkPtr specialArgs;
  std::string libInput = "nixpkgs";
  std::optional<std::string> hostName;
  std::set<std::string> visitedFiles;
  std::set<const Expr*> visitedInline;
  std::vector<ValuePtr> hostNameValues;
  std::map<std::string, ThunkPtr> args;
  int work = 0;
  // Overlays kept by name (issue 12 cause 3) and the names of pkgs the host refers to.
  struct OverlayEntry {
    std::string name;
    const Expr* expr = nullptr;  // null: a by-name directory entry
    EnvPtr env;
    std::string file;
    std::set<std::string> refs;  // final.N / prev.N it uses
    bool refsAll = false;        // final or prev used whole
    bool override = false;       // prev.<its own name>: changes what nixpkgs' own code sees
    bool charged = false;
  };
  std::vector<OverlayEntry> overlayEntries;
  std::vector<std::string> byNameDirs;  // packagesFromDirectoryRecursive directories ("d/")
  std::set<std::string> byNameCharged;  // "d/" + name already charged
  std::set<std::string> pkgsNames;
  std::string pkgsWhole;  // where pkgs is used whole ("" when never)
};

const DepScanner::Summary& DepScanner::summarize(const Expr& root, const std::string& file) {
  auto it = summaries_.find(&root);
  if (it != summaries_.end()) return it->second;
  Summary s;
  std::string dir = dirName(file);
  std::vector<const Expr*> chain;
  std::vector<const Expr*> parents;  // the nodes above the current one

  // let bindings `x = import P` whose uses only select from x: binding value -> P
  std::map<const Expr*, const Expr*> dataImports;

  // values of `nixpkgs.overlays`: recorded as Overlays nodes, not visited
  std::set<const Expr*> overlayValues;

  // The module's function: the outermost lambda above the current node.
  auto moduleFn = [&]() -> const Expr* {
    auto fn = std::find_if(chain.begin(), chain.end(),
                           [](const Expr* b) { return b->kind == ExprKind::Lambda; });
    return fn == chain.end() ? nullptr : *fn;
  };
  auto isModulePkgs = [&](const ExprVar& v) {
    return v.name == "pkgs" && v.scope == VarScope::Formal && v.binder && v.binder == moduleFn();
  };
  // `args@{ … }`: the module's arguments as one set
  auto isModuleArgSet = [&](const ExprVar& v) {
    if (v.scope != VarScope::Arg || !v.binder || v.binder != moduleFn()) return false;
    const auto* l = v.binder->as<ExprLambda>();
    return l->formals.has_value();
  };
  auto pkgsWhole = [&](const Expr& e, const std::string& how) {
    if (s.pkgsWhole.empty()) s.pkgsWhole = where(file, &e) + ": " + how;
  };
  // The module's pkgs (or its argument set, `viaArgs`) at `e`: which names does this use read?
  auto notePkgsUse = [&](const Expr& e, bool viaArgs) {
    const Expr* p = parents.empty() ? nullptr : parents.back();
    if (const auto* sel = p ? p->as<ExprSelect>() : nullptr; sel && sel->expr.get() == &e) {
      size_t i = 0;
      if (viaArgs) {
        if (sel->path.empty() || !sel->path[0].isStatic()) return pkgsWhole(e, "args.${…}");
        if (sel->path[0].name != "pkgs") return;
        i = 1;
      }
      if (sel->path.size() > i && sel->path[i].isStatic()) {
        s.pkgsNames.insert(sel->path[i].name);
        return;
      }
      return pkgsWhole(e, sel->path.size() > i ? "pkgs.${…}" : "pkgs used whole");
    }
    if (viaArgs) return pkgsWhole(e, "the module's arguments used whole");
    if (const auto* h = p ? p->as<ExprHasAttr>() : nullptr;
        h && h->expr.get() == &e && !h->path.empty() && h->path[0].isStatic()) {
      s.pkgsNames.insert(h->path[0].name);
      return;
    }
    if (const auto* w = p ? p->as<ExprWith>() : nullptr; w && w->attrs.get() == &e)
      return;  // the names used below it are noted where they are used
    if (const auto* a = p ? p->as<ExprAttrs>() : nullptr) {
      for (size_t i = 0; i < a->inheritFrom.size(); ++i) {
        if (a->inheritFrom[i].get() != &e) continue;
        for (const auto& [name, def] : a->attrs)
          if (def.kind == AttrDef::Kind::InheritedFrom && def.fromIndex == i)
            s.pkgsNames.insert(name);
        return;
      }
      // `import ./x.nix { inherit pkgs; }`, `callPackage ./x.nix { inherit pkgs; }`: the
      // file is followed, and its own uses of `pkgs` are noted there
      auto it = a->attrs.find("pkgs");
      const auto* c = parents.size() >= 2 ? parents[parents.size() - 2]->as<ExprCall>() : nullptr;
      if (it != a->attrs.end() && it->second.value.get() == &e && c && !c->args.empty() &&
          c->args.back().get() == a) {
        const Expr* fileArg = c->args.size() >= 2 ? c->args[c->args.size() - 2].get() : nullptr;
        if (!fileArg && importOf(*c->fn)) fileArg = importOf(*c->fn);
        bool callee = importOf(*c->fn) || callsNamed(*c, "import") ||
                      callsNamed(*c, "callPackage") || callsNamed(*c, "callPackages");
        if (callee && fileArg && fileArg->kind == ExprKind::Path &&
            fileArg->as<ExprPath>()->pathKind == PathKind::Relative)
          return;
      }
    }
    pkgsWhole(e, "pkgs used whole");
  };

  std::function<void(const Expr&)> visit = [&](const Expr& e) {
    if (dataImports.count(&e)) return;  // read where it is selected from
    if (overlayValues.count(&e)) return;
    auto valueUse = [&] {
      if (parents.empty()) return false;
      const Expr* p = parents.back();
      if (p->kind == ExprKind::List) return true;
      if (p->kind != ExprKind::Attrs) return false;
      return parents.size() < 2 || parents[parents.size() - 2]->kind != ExprKind::Let;
    };
    auto record = [&](Interesting::Kind k) {
      s.nodes.push_back({&e, chain, k, k == Interesting::Kind::Value && valueUse()});
    };
    // A `with` variable may come from anything the with's attribute set holds; only withs
    // over pkgs, lib or config cannot lead to files or inputs.
    auto withMayRefer = [&] {
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
        const auto* w = (*it)->as<ExprWith>();
        if (!w) continue;
        const Expr* root = w->attrs.get();
        while (const auto* sel = root->as<ExprSelect>()) root = sel->expr.get();
        const auto* rv = root->as<ExprVar>();
        if (!rv || rv->scope == VarScope::With || !plainModuleArg(rv->name)) return true;
        if (rv->name == "config") return true;  // config.foo may be anything
      }
      return false;
    };
    auto freeOrModuleArg = [&](const ExprVar& v) {
      if (v.scope == VarScope::With) return withMayRefer();
      if (v.scope == VarScope::Global) return false;
      bool inChain = std::find(chain.begin(), chain.end(), v.binder) != chain.end();
      if (!inChain) return true;  // bound outside this root (inline modules of flake.nix)
      // the outermost lambda is the module function; its arguments are module arguments
      auto fn = std::find_if(chain.begin(), chain.end(),
                             [](const Expr* b) { return b->kind == ExprKind::Lambda; });
      return fn != chain.end() && v.binder == *fn && !plainModuleArg(v.name);
    };
    // `let root = ../..; in …`: a relative path literal bound by a let is a dependency where
    // its variable is used, not where it is bound, so `lib.fileset.toSource { inherit root;
    // fileset = root + /src; }` depends on src only (issue 12 cause 1).
    auto letBoundPath = [&](const ExprVar& v) -> std::optional<std::string> {
      if (v.scope != VarScope::Let || !v.binder) return std::nullopt;
      const auto* l = v.binder->as<ExprLet>();
      if (!l || !l->bindings) return std::nullopt;
      auto it = l->bindings->attrs.find(v.name);
      if (it == l->bindings->attrs.end() || it->second.kind != AttrDef::Kind::Plain ||
          !it->second.value)
        return std::nullopt;
      const auto* p = it->second.value->as<ExprPath>();
      if (!p || p->pathKind != PathKind::Relative) return std::nullopt;
      return p->literal();
    };
    auto addLiteral = [&](const std::string& lit) {
      if (auto r = resolveRelative(dir, lit))
        s.staticPaths.push_back(*r);
      else
        s.outsidePaths.push_back(lit);
    };
    switch (e.kind) {
      case ExprKind::Path: {
        const auto* p = e.as<ExprPath>();
        if (p->pathKind != PathKind::Relative) return;
        if (parents.size() >= 2 && parents.back()->kind == ExprKind::Attrs) {
          const auto* l = parents[parents.size() - 2]->as<ExprLet>();
          if (l && l->bindings.get() == parents.back() && p->literal()) return;  // see above
        }
        if (auto lit = p->literal()) {
          if (auto r = resolveRelative(dir, *lit)) {
            // `imports = [ ./x.nix ]`, `import ./x.nix`, `callPackage ./x.nix`: code
            const Expr* up = parents.empty() ? nullptr : parents.back();
            bool code = false;
            if (const auto* c = up ? up->as<ExprCall>() : nullptr)
              code = !c->args.empty() && c->args[0].get() == &e &&
                     (callsNamed(*c, "import") || callsNamed(*c, "callPackage"));
            // the list may be one operand of `++` or a branch of `if` in the value
            size_t i = parents.size();
            if (up && up->kind == ExprKind::List) {
              --i;
              while (i > 0 && (parents[i - 1]->kind == ExprKind::If ||
                               (parents[i - 1]->kind == ExprKind::BinOp &&
                                parents[i - 1]->as<ExprBinOp>()->op == BinOp::Concat)))
                --i;
              if (const auto* a = i > 0 ? parents[i - 1]->as<ExprAttrs>() : nullptr) {
                auto im = a->attrs.find("imports");
                code = im != a->attrs.end() && im->second.value.get() == parents[i];
              }
            }
            (code ? s.codePaths : s.staticPaths).push_back(*r);
          } else {
            s.outsidePaths.push_back(*lit);
          }
          return;
        }
        record(Interesting::Kind::Value);
        return;  // its interpolations are evaluated as part of it
      }
      case ExprKind::String: {
        // A string is a file reference only when it starts with a path or with something
        // bound outside the module's own code ("${self}/hosts/x", "${inputs.foo}/bar");
        // "${pkgs.hello}/bin/hello" or "${config.x}" never are. Other parts are visited below.
        const auto* str = e.as<ExprString>();
        if (!str->parts.empty() && str->parts.front().expr) {
          const Expr* first = str->parts.front().expr.get();
          const Expr* root = first;
          if (const auto* sel = first->as<ExprSelect>()) root = sel->expr.get();
          const auto* var = root->as<ExprVar>();
          if (first->kind == ExprKind::Path || (var && freeOrModuleArg(*var))) {
            record(Interesting::Kind::Value);
            return;
          }
        }
        break;
      }
      case ExprKind::BinOp: {
        const auto* b = e.as<ExprBinOp>();
        if (const auto* lv = b->lhs->as<ExprVar>(); lv && b->op == BinOp::Add) {
          // root + /src, root + "/src": the path below root
          std::optional<std::string> rest;
          if (const auto* rp = b->rhs->as<ExprPath>(); rp && rp->pathKind == PathKind::Absolute)
            rest = rp->literal();
          if (const auto* rs = b->rhs->as<ExprString>()) {
            bool literal = true;
            std::string text;
            for (const auto& part : rs->parts) {
              if (part.expr) literal = false;
              text += part.text;
            }
            if (literal && startsWith(text, "/")) rest = text;
          }
          if (auto base = letBoundPath(*lv); base && rest) {
            addLiteral(*base + *rest);
            return;
          }
        }
        if (b->op == BinOp::Add &&
            (b->lhs->kind == ExprKind::Path ||
             (b->lhs->kind == ExprKind::String && !b->lhs->as<ExprString>()->parts.empty() &&
              b->lhs->as<ExprString>()->parts.front().expr))) {
          record(Interesting::Kind::Value);
          visit(*b->rhs);
          return;
        }
        break;
      }
      case ExprKind::Var: {
        const auto* v = e.as<ExprVar>();
        if (isModulePkgs(*v) || isModuleArgSet(*v)) notePkgsUse(e, !isModulePkgs(*v));
        if (v->scope == VarScope::With) {
          // `with pkgs; [ N ]`: N may be a package (with other withs around it, maybe not)
          for (auto it = chain.rbegin(); it != chain.rend(); ++it) {
            const auto* w = (*it)->as<ExprWith>();
            const auto* wv = w ? w->attrs->as<ExprVar>() : nullptr;
            if (wv && isModulePkgs(*wv)) s.pkgsNames.insert(v->name);
          }
        }
        if (auto lit = letBoundPath(*e.as<ExprVar>())) {
          addLiteral(*lit);
          return;
        }
        if (freeOrModuleArg(*e.as<ExprVar>())) {
          record(Interesting::Kind::Value);
          const Expr* p = parents.empty() ? nullptr : parents.back();
          const auto* call = p ? p->as<ExprCall>() : nullptr;
          if ((call && call->fn.get() != &e) || (p && p->kind == ExprKind::BinOp))
            s.nodes.back().wholeUse = true;
        }
        return;
      }
      case ExprKind::Select: {
        const auto* sel = e.as<ExprSelect>();
        const Expr* root = sel->expr.get();
        // a file's value selected from is data: the file, and what the selected value refers
        // to, not the file scanned as a module
        const Expr* imported = staticPath(sel->path) ? importOf(*root) : nullptr;
        if (const auto* v = root->as<ExprVar>();
            !imported && v && v->scope == VarScope::Let && v->binder && staticPath(sel->path)) {
          const auto* l = v->binder->as<ExprLet>();
          if (l && l->bindings) {
            auto def = l->bindings->attrs.find(v->name);
            if (def != l->bindings->attrs.end() && def->second.value) {
              auto it = dataImports.find(def->second.value.get());
              if (it != dataImports.end()) imported = it->second;
            }
          }
        }
        if (imported) {
          s.nodes.push_back({&e, chain, Interesting::Kind::DataSelect, valueUse(), imported});
          if (sel->orDefault) visit(*sel->orDefault);
          return;
        }
        if (const auto* v = root->as<ExprVar>(); v && freeOrModuleArg(*v)) {
          record(Interesting::Kind::Value);
          for (const auto& a : sel->path)
            if (a.dynamic) visit(*a.dynamic);
          if (sel->orDefault) visit(*sel->orDefault);
          return;
        }
        break;
      }
      case ExprKind::Lambda: {
        // a file's function: its formals are module arguments or, for a file callPackage'd,
        // the packages it is called with
        const auto* l = e.as<ExprLambda>();
        if (!moduleFn() && l->formals)
          for (const auto& f : l->formals->formals) s.pkgsNames.insert(f.name);
        break;
      }
      case ExprKind::Call: {
        const auto* c = e.as<ExprCall>();
        // lib.sourceByRegex ./dir [ "re" … ]: only the files the expressions keep
        if (callsNamed(*c, "sourceByRegex") && c->args.size() == 2) {
          const auto* dirArg = c->args[0]->as<ExprPath>();
          const auto* list = c->args[1]->as<ExprList>();
          std::optional<std::string> lit =
              dirArg && dirArg->pathKind == PathKind::Relative ? dirArg->literal() : std::nullopt;
          std::optional<std::string> dirPath = lit ? resolveRelative(dir, *lit) : std::nullopt;
          std::vector<std::string> res;
          for (size_t i = 0; list && i < list->elems.size(); ++i)
            if (auto t = literalString(*list->elems[i])) res.push_back(*t);
          if (dirPath && !dirPath->empty() && list && res.size() == list->elems.size() &&
              compileRegexes(res)) {
            parents.push_back(&e);
            visit(*c->fn);
            parents.pop_back();
            s.filtered.emplace_back(*dirPath, std::move(res));
            return;
          }
        }
        // lib.fileset.toSource { root = ../..; fileset = …; }: only the fileset's files are
        // in the source; `root` is just where they are relative to.
        if (const auto* sel = c->fn->as<ExprSelect>();
            sel && !sel->path.empty() && sel->path.back().isStatic() &&
            sel->path.back().name == "toSource" && c->args.size() == 1) {
          if (const auto* a = c->args[0]->as<ExprAttrs>();
              a && a->attrs.count("root") && a->attrs.count("fileset")) {
            parents.push_back(&e);
            visit(*c->fn);
            parents.push_back(a);
            for (const auto& [name, def] : a->attrs)
              if (name != "root" && def.value) visit(*def.value);
            parents.pop_back();
            parents.pop_back();
            return;
          }
        }
        if (auto name = builtinName(*c->fn)) {
          static const std::set<std::string> kFileRefs = {"import",     "readDir",      "readFile",
                                                          "pathExists", "scopedImport", "path"};
          if (kFileRefs.count(*name) && !c->args.empty()) {
            const Expr& arg = *c->args.back();
            if (arg.kind != ExprKind::Path)
              s.nodes.push_back({&arg, chain, Interesting::Kind::FileRef});
          }
          bool lockedFlake = false;
          if (*name == "getFlake" && c->args.size() == 1)
            if (const auto* str = c->args[0]->as<ExprString>()) {
              std::string text;
              bool literal = true;
              for (const auto& part : str->parts) {
                if (part.expr) literal = false;
                text += part.text;
              }
              lockedFlake = literal && isLockedFlakeRef(text);
            }
          if ((*name == "getFlake" && !lockedFlake) || *name == "toPath" || *name == "storePath")
            s.dynamic.push_back(where(file, &e) + ": builtins." + *name);
        }
        break;
      }
      case ExprKind::Attrs: {
        const auto* a = e.as<ExprAttrs>();
        auto net = a->attrs.find("networking");
        if (net != a->attrs.end() && net->second.value) {
          if (const auto* na = net->second.value->as<ExprAttrs>()) {
            auto hn = na->attrs.find("hostName");
            if (hn != na->attrs.end() && hn->second.value)
              s.nodes.push_back({hn->second.value.get(), chain, Interesting::Kind::HostNameDef});
          }
        }
        // nixpkgs.overlays = [ … ]: charged by the names the host uses (chargeOverlays)
        auto np = a->attrs.find("nixpkgs");
        if (np != a->attrs.end() && np->second.kind == AttrDef::Kind::Plain && np->second.value) {
          if (const auto* na = np->second.value->as<ExprAttrs>()) {
            auto ov = na->attrs.find("overlays");
            if (ov != na->attrs.end() && ov->second.kind == AttrDef::Kind::Plain &&
                ov->second.value) {
              std::vector<const Expr*> inner = chain;
              if (isBinder(e)) inner.push_back(&e);
              if (isBinder(*na)) inner.push_back(na);
              s.nodes.push_back({ov->second.value.get(), inner, Interesting::Kind::Overlays});
              overlayValues.insert(ov->second.value.get());
            }
          }
        }
        break;
      }
      case ExprKind::Let: {
        const auto* l = e.as<ExprLet>();
        for (const auto& [name, def] : l->bindings->attrs) {
          if (def.kind != AttrDef::Kind::Plain || !def.value) continue;
          const Expr* p = importOf(*def.value);
          if (p && onlySelectedFrom(*l, name)) dataImports.emplace(def.value.get(), p);
        }
        break;
      }
      default:
        break;
    }
    bool binder = isBinder(e);
    parents.push_back(&e);
    forEachChild(e, [&](const Slot& slot, const Expr& c) {
      // a with's attrs are outside its own scope
      bool inside = binder && !(e.kind == ExprKind::With && slot.kind[0] == 'a');
      if (inside) chain.push_back(&e);
      visit(c);
      if (inside) chain.pop_back();
    });
    parents.pop_back();
  };
  visit(root);
  return summaries_.emplace(&root, std::move(s)).first->second;
}

ThunkPtr DepScanner::moduleArg(const std::string& name, HostCtx& ctx) {
  auto it = ctx.args.find(name);
  if (it != ctx.args.end()) return it->second;
  ThunkPtr t;
  ValuePtr special = ctx.specialArgs ? ev_.force(ctx.specialArgs) : nullptr;
  if (special && special->kind == VKind::Attrs && special->attrs.count(name)) {
    t = special->attrs.at(name);
  } else if (name == "inputs") {
    t = ev_.inputsThunk();
  } else if (name == "self") {
    t = ev_.selfThunk();
  } else if (name == "name") {
    t = ev_.ready(Evaluator::str(ctx.host->name));
  } else if (name == "config") {
    auto hostName =
        ctx.hostName ? Evaluator::str(*ctx.hostName) : Evaluator::unknown("networking.hostName");
    auto networking = std::make_shared<Value>();
    networking->kind = VKind::Attrs;
    networking->open = true;
    networking->attrs["hostName"] = ev_.ready(hostName);
    auto config = std::make_shared<Value>();
    config->kind = VKind::Attrs;
    config->open = true;
    config->attrs["networking"] = ev_.ready(networking);
    t = ev_.ready(config);
  } else if (name == "pkgs" || name == "lib" || name == "modulesPath") {
    auto in = std::make_shared<Value>();
    in->kind = VKind::Input;
    in->input = ctx.libInput;
    in->inputPath = {name == "pkgs" ? "<pkgs>" : name};
    t = ev_.ready(in);
  } else if (ev_.inputNames().count(name)) {
    auto in = std::make_shared<Value>();
    in->kind = VKind::Input;
    in->input = name;
    t = ev_.ready(in);
  } else {
    t = ev_.ready(Evaluator::unknown("module argument '" + name + "'"));
  }
  ctx.args.emplace(name, t);
  return t;
}

EnvPtr DepScanner::buildEnv(const EnvPtr& start, const std::vector<const Expr*>& chain,
                            bool bindModuleArgs, HostCtx& ctx) {
  EnvPtr env = start;
  bool moduleFnBound = !bindModuleArgs;
  for (const Expr* b : chain) {
    switch (b->kind) {
      case ExprKind::Lambda: {
        const auto* l = b->as<ExprLambda>();
        auto frame = ev_.newEnv();
        frame->binder = l;
        frame->parent = env;
        frame->file = env ? env->file : nullptr;
        bool asModule = !moduleFnBound;
        moduleFnBound = true;
        if (l->formals) {
          for (const auto& f : l->formals->formals)
            frame->vars[f.name] =
                asModule ? moduleArg(f.name, ctx) : ev_.ready(Evaluator::unknown("argument"));
        }
        if (!l->arg.empty()) {
          if (asModule && l->formals) {
            auto all = std::make_shared<Value>();
            all->kind = VKind::Attrs;
            all->open = true;
            for (const auto& [k, v] : frame->vars) all->attrs[k] = v;
            frame->vars[l->arg] = ev_.ready(all);
          } else {
            frame->vars[l->arg] = ev_.ready(Evaluator::unknown("argument"));
          }
        }
        env = frame;
        break;
      }
      case ExprKind::Let:
        env = ev_.letFrame(*b->as<ExprLet>(), env);
        break;
      case ExprKind::Attrs: {
        ValuePtr v = ev_.unrecorded([&] { return ev_.eval(*b, env); });
        // eval created the rec frame inside the values' thunks; find it through one of them
        auto frame = ev_.newEnv();
        frame->binder = b;
        frame->parent = env;
        frame->file = env ? env->file : nullptr;
        frame->vars = v->attrs;
        env = frame;
        break;
      }
      case ExprKind::With: {
        auto frame = ev_.newEnv();
        frame->binder = b;
        frame->parent = env;
        frame->file = env ? env->file : nullptr;
        frame->withAttrs = ev_.thunk(*b->as<ExprWith>()->attrs, env);
        env = frame;
        break;
      }
      default:
        break;
    }
  }
  return env;
}

void DepScanner::addPath(const PathRef& p, HostCtx& ctx, bool asCode) {
  HostDeps& d = *ctx.deps;
  if (!p.exact) {
    if (!d.patterns.insert(p).second) return;
    std::string base = p.prefix;
    auto slash = base.rfind('/');
    std::string dir = slash == std::string::npos ? "" : base.substr(0, slash);
    int followed = 0;
    for (const auto& f : ev_.tree().filesBelow(dir)) {
      if (!matches(p, f.path) || !endsWith(f.path, ".nix")) continue;
      if (++followed > 5000) break;
      scanFile(f.path, ctx);
    }
    return;
  }
  if (p.path.empty()) {
    d.dirs.insert("");
    return;
  }
  auto kind = ev_.tree().kind(p.path);
  if (kind == git::EntryKind::Tree) {
    // Everything below a directory is a dependency, and the Nix files in it may refer to
    // files elsewhere (a package's src): follow them all.
    if (!d.dirs.insert(p.path + "/").second) return;
    int followed = 0;
    for (const auto& f : ev_.tree().filesBelow(p.path)) {
      if (!endsWith(f.path, ".nix")) continue;
      if (++followed > 5000) break;
      scanFile(f.path, ctx);
    }
    return;
  }
  bool code = asCode && kind && endsWith(p.path, ".nix");
  if (!code) d.textRefs.insert(p.path);
  d.files.insert(p.path);
  if (kind && endsWith(p.path, ".nix")) scanFile(p.path, ctx);
}

void DepScanner::addValueDeps(const ValuePtr& v, const Expr* at, const std::string& file,
                              HostCtx& ctx, int depth, bool valueUse) {
  if (!v || depth > 4) return;
  ev_.charge(1);
  HostDeps& d = *ctx.deps;
  for (const auto& p : v->carried.paths) addPath(p, ctx);
  d.inputs.insert(v->carried.inputs.begin(), v->carried.inputs.end());
  d.dynamic.insert(d.dynamic.end(), v->carried.dynamic.begin(), v->carried.dynamic.end());
  if (v->carried.selfWhole) d.selfRevision.push_back(where(file, at) + " (self)");
  if (v->selfRevision) d.selfRevision.push_back(where(file, at) + " (self revision)");
  switch (v->kind) {
    case VKind::Path:
    case VKind::String:
      if (v->path) addPath(*v->path, ctx);
      return;
    case VKind::Input:
      if (v->input == "self") return;
      d.inputs.insert(v->input);
      return;
    case VKind::Self:
      if (valueUse) d.selfRevision.push_back(where(file, at) + " (self)");
      return;
    case VKind::Attrs:
    case VKind::Lambda:
      if (v->origin && v->originEnv) {
        if (ctx.visitedInline.insert(v->origin).second) {
          ev_.touchDeep(*v->origin);
          scanRoot(*v->origin, v->originEnv, true,
                   v->originEnv->file ? v->originEnv->file->path : file, ctx);
        }
        return;
      }
      if (v->kind == VKind::Attrs && v.get() != ev_.inputsThunk()->value.get()) {
        for (const auto& [k, t] : v->attrs) addValueDeps(ev_.force(t), at, file, ctx, depth + 1);
        for (const auto& e : v->unknownEntries)
          addValueDeps(ev_.force(e), at, file, ctx, depth + 1);
        if (!v->openReason.empty()) d.dynamic.push_back(where(file, at) + ": " + v->openReason);
      }
      return;
    case VKind::List:
      for (const auto& t : v->elems) addValueDeps(ev_.force(t), at, file, ctx, depth + 1);
      return;
    default:
      return;
  }
}

void DepScanner::scanRoot(const Expr& root, const EnvPtr& startEnv, bool bindModuleArgs,
                          const std::string& file, HostCtx& ctx) {
  if (++ctx.work > 200000) {
    ctx.deps->dynamic.push_back(file + ": the configuration is too large to follow");
    return;
  }
  const Summary& s = summarize(root, file);
  for (const auto& p : s.codePaths) addPath(PathRef{true, p, "", ""}, ctx, true);
  for (const auto& p : s.staticPaths) addPath(PathRef{true, p, "", ""}, ctx);
  for (const auto& [dir, res] : s.filtered) {
    auto& kept = ctx.deps->filtered[dir + "/"];
    kept.insert(kept.end(), res.begin(), res.end());
    auto compiled = compileRegexes(res);
    int followed = 0;
    for (const auto& f : ev_.tree().filesBelow(dir)) {  // its Nix files may refer to others
      if (!endsWith(f.path, ".nix") || ++followed > 5000) continue;
      if (compiled && passesRegexFilter(*compiled, f.path.substr(dir.size() + 1)))
        scanFile(f.path, ctx);
    }
  }
  ctx.deps->dynamic.insert(ctx.deps->dynamic.end(), s.dynamic.begin(), s.dynamic.end());
  ctx.pkgsNames.insert(s.pkgsNames.begin(), s.pkgsNames.end());
  if (ctx.pkgsWhole.empty()) ctx.pkgsWhole = s.pkgsWhole;
  for (const auto& n : s.nodes) {
    EnvPtr env = buildEnv(startEnv, n.chain, bindModuleArgs, ctx);
    ValuePtr v = ev_.eval(*n.node, env);
    switch (n.kind) {
      case Interesting::Kind::HostNameDef:
        ctx.hostNameValues.push_back(v);
        addValueDeps(v, n.node, file, ctx, 0);
        break;
      case Interesting::Kind::FileRef:
        if (v->kind == VKind::String && !v->path && !v->text && v->carried.empty())
          ctx.deps->dynamic.push_back(where(file, n.node) +
                                      ": a file reference the planner cannot follow");
        addValueDeps(v, n.node, file, ctx, 0);
        break;
      case Interesting::Kind::Value:
        // the inputs set walked by a function (`mapAttrs (_: flake: { inherit flake; })
        // inputs` into nix.registry): every input (issue 12 corpus, Misterio77/nix-config)
        if (ThunkPtr all = ev_.inputsThunk();
            n.wholeUse && all && all->value && v.get() == all->value.get())
          for (const auto& in : ev_.inputNames())
            if (in != "self") ctx.deps->inputs.insert(in);
        addValueDeps(v, n.node, file, ctx, 0, n.valueUse);
        break;
      case Interesting::Kind::Overlays:
        addOverlays(v, n.node, file, ctx);
        break;
      case Interesting::Kind::DataSelect: {
        ValuePtr p = ev_.eval(*n.importedFile, env);
        if ((p->kind == VKind::Path || p->kind == VKind::String) && p->path && p->path->exact) {
          std::string f = p->path->path;
          if (ev_.tree().isDir(f)) f = f.empty() ? "default.nix" : f + "/default.nix";
          // flake.nix's selected value, when it is plain data, counts by its own nodes (the
          // host's fingerprint of flake.nix); otherwise the file counts whole
          const auto* sel = n.node->as<ExprSelect>();
          auto parsed = f == "flake.nix" && sel ? ev_.tree().parse(f) : nullptr;
          const Expr* data =
              parsed && parsed->ast ? selectedData(*parsed->ast, sel->path) : nullptr;
          if (data) {
            ev_.touchDeep(*data);
          } else {
            ctx.deps->files.insert(f);
            ctx.deps->textRefs.insert(f);
          }
          for (const auto& c : p->carried.paths) addPath(c, ctx);
        } else {
          addValueDeps(p, n.node, file, ctx, 0);  // a file the planner cannot name: as before
        }
        addValueDeps(v, n.node, file, ctx, 0, n.valueUse);
        break;
      }
    }
  }
}

namespace {

// The names an overlay's code reads from `final` and `prev` (the binders of its two lambdas),
// whether it uses either whole, and whether it reads `prev.<own>` (an override).
struct OverlayRefs {
  std::set<std::string> names;
  bool all = false;
  bool prevOwn = false;
};

void overlayRefs(const Expr& e, const Expr* parent, const Expr* finalFn, const Expr* prevFn,
                 const std::string& own, OverlayRefs& out) {
  if (const auto* v = e.as<ExprVar>();
      v && (v->scope == VarScope::Arg || v->scope == VarScope::Formal) &&
      (v->binder == finalFn || v->binder == prevFn)) {
    const auto* sel = parent ? parent->as<ExprSelect>() : nullptr;
    const auto* attrs = parent ? parent->as<ExprAttrs>() : nullptr;
    if (sel && sel->expr.get() == &e && !sel->path.empty() && sel->path[0].isStatic()) {
      out.names.insert(sel->path[0].name);
      if (v->binder == prevFn && sel->path[0].name == own) out.prevOwn = true;
      return;
    }
    if (attrs) {
      for (size_t i = 0; i < attrs->inheritFrom.size(); ++i) {
        if (attrs->inheritFrom[i].get() != &e) continue;
        for (const auto& [name, def] : attrs->attrs)
          if (def.kind == AttrDef::Kind::InheritedFrom && def.fromIndex == i) {
            out.names.insert(name);
            if (v->binder == prevFn && name == own) out.prevOwn = true;
          }
        return;
      }
    }
    out.all = true;
    if (v->binder == prevFn) out.prevOwn = true;  // prev.${x} may be its own name
    return;
  }
  forEachChild(e,
               [&](const Slot&, const Expr& c) { overlayRefs(c, &e, finalFn, prevFn, own, out); });
}

}  // namespace

void DepScanner::addOverlays(const ValuePtr& v, const Expr* at, const std::string& file,
                             HostCtx& ctx) {
  if (v->kind != VKind::List || v->open) {
    addValueDeps(v, at, file, ctx, 0);
    return;
  }
  for (const auto& p : v->carried.paths) addPath(p, ctx);
  ctx.deps->inputs.insert(v->carried.inputs.begin(), v->carried.inputs.end());
  ctx.deps->dynamic.insert(ctx.deps->dynamic.end(), v->carried.dynamic.begin(),
                           v->carried.dynamic.end());
  for (const auto& t : v->elems) {
    ValuePtr o = ev_.force(t);
    if (!addOverlay(o, ctx)) addValueDeps(o, at, file, ctx, 0);
  }
}

// An overlay `final: prev: BODY` where BODY is attribute sets (`{ N = …; }`), directories of
// packages (`lib.packagesFromDirectoryRecursive { directory = ./d; … }`), joined with `//`,
// under `let`s. Anything else is not understood: false, and the caller charges it whole.
bool DepScanner::addOverlay(const ValuePtr& v, HostCtx& ctx) {
  if (v->kind != VKind::Lambda || !v->origin || !v->originEnv || !v->carried.empty()) return false;
  const auto* outer = v->origin->as<ExprLambda>();
  if (!outer || outer->arg.empty() || outer->formals) return false;
  const auto* inner = outer->body->as<ExprLambda>();
  if (!inner || inner->arg.empty() || inner->formals) return false;
  std::string file = v->originEnv->file ? v->originEnv->file->path : "flake.nix";

  EnvPtr env = v->originEnv;
  for (const ExprLambda* l : {outer, inner}) {
    auto frame = ev_.newEnv();
    frame->binder = l;
    frame->parent = env;
    frame->file = env->file;
    frame->vars[l->arg] = ev_.ready(Evaluator::unknown("overlay argument"));
    env = frame;
  }
  std::vector<HostCtx::OverlayEntry> entries;
  std::vector<std::string> dirs;
  // charged with the overlay: code to follow, and code whose final.N / prev.N count as used
  std::vector<std::pair<const Expr*, EnvPtr>> common;
  std::vector<const Expr*> commonRefs;
  auto isOverlayArg = [&](const Expr& x) {
    const auto* fv = x.as<ExprVar>();
    return fv && (fv->binder == outer || fv->binder == inner);
  };
  std::vector<const Expr*> shallow{outer, inner};  // its structure, for the trace
  std::function<bool(const Expr&, const EnvPtr&)> body = [&](const Expr& e, const EnvPtr& env) {
    ev_.charge(1);
    shallow.push_back(&e);
    if (const auto* l = e.as<ExprLet>()) {
      EnvPtr frame = ev_.letFrame(*l, env);
      common.emplace_back(l->bindings.get(), frame);
      commonRefs.push_back(l->bindings.get());
      return body(*l->body, frame);
    }
    if (const auto* b = e.as<ExprBinOp>(); b && b->op == BinOp::Update)
      return body(*b->lhs, env) && body(*b->rhs, env);
    if (const auto* a = e.as<ExprAttrs>(); a && !a->recursive && a->dynamicAttrs.empty()) {
      for (const auto& f : a->inheritFrom) {
        if (isOverlayArg(*f)) continue;  // `inherit (final) N`: the entry's own reference
        common.emplace_back(f.get(), env);
        commonRefs.push_back(f.get());
      }
      for (const auto& [name, def] : a->attrs) {
        HostCtx::OverlayEntry en;
        en.name = name;
        en.file = file;
        en.env = env;
        en.expr = def.value.get();  // inherit (from) N: null, the `from` is common
        OverlayRefs refs;
        if (def.kind == AttrDef::Kind::InheritedFrom) {
          if (const auto* fv = a->inheritFrom[def.fromIndex]->as<ExprVar>();
              fv && (fv->binder == outer || fv->binder == inner)) {
            refs.names.insert(name);
            refs.prevOwn = fv->binder == inner;
          }
        } else if (en.expr) {
          overlayRefs(*en.expr, nullptr, outer, inner, name, refs);
        }
        en.refs = std::move(refs.names);
        en.refsAll = refs.all;
        en.override = refs.prevOwn;
        entries.push_back(std::move(en));
      }
      return true;
    }
    if (const auto* c = e.as<ExprCall>();
        c && callsNamed(*c, "packagesFromDirectoryRecursive") && c->args.size() == 1) {
      const auto* a = c->args[0]->as<ExprAttrs>();
      if (!a || !a->attrs.count("directory") || !a->dynamicAttrs.empty()) return false;
      const auto& d = a->attrs.at("directory");
      if (d.kind != AttrDef::Kind::Plain || !d.value) return false;
      ValuePtr dir = ev_.eval(*d.value, env);
      if (dir->kind != VKind::Path || !dir->path || !dir->path->exact || dir->path->path.empty() ||
          !ev_.tree().isDir(dir->path->path) || !dir->carried.empty())
        return false;
      common.emplace_back(c->fn.get(), env);
      commonRefs.push_back(c->fn.get());
      commonRefs.push_back(a);  // `inherit (final) callPackage;` and the like
      for (const auto& [name, def] : a->attrs)
        if (name != "directory" && def.value && def.kind == AttrDef::Kind::Plain)
          common.emplace_back(def.value.get(), env);
      for (const auto& f : a->inheritFrom)
        if (!isOverlayArg(*f)) common.emplace_back(f.get(), env);
      dirs.push_back(dir->path->path + "/");
      shallow.push_back(a);
      shallow.push_back(d.value.get());
      return true;
    }
    return false;
  };
  if (!body(*inner->body, env)) return false;

  for (const Expr* x : shallow) ev_.touch(*x);
  // A file that is not flake-level code (no trace records its nodes) is a dependency whole.
  if (file != "flake.nix" && !ctx.deps->trace.externals.count("import:" + file))
    ctx.deps->files.insert(file);
  ctx.deps->textRefs.insert(file);
  for (const Expr* x : commonRefs) {
    ev_.touchDeep(*x);
    OverlayRefs refs;
    overlayRefs(*x, nullptr, outer, inner, "", refs);
    ctx.pkgsNames.insert(refs.names.begin(), refs.names.end());
    if (refs.all && ctx.pkgsWhole.empty())
      ctx.pkgsWhole = where(file, x) + ": an overlay uses its final or prev set whole";
  }
  for (const auto& [x, xenv] : common) {
    ev_.touchDeep(*x);
    scanRoot(*x, xenv, false, file, ctx);
  }
  for (auto& en : entries) ctx.overlayEntries.push_back(std::move(en));
  ctx.byNameDirs.insert(ctx.byNameDirs.end(), dirs.begin(), dirs.end());
  return true;
}

// Charges the overlay attributes the host may read: the names its code refers to, those the
// charged attributes refer to in turn, every override of an existing name, and everything
// when the host uses pkgs whole. Charging follows files, which may refer to more names.
void DepScanner::chargeOverlays(HostCtx& ctx) {
  for (bool progress = true; progress;) {
    progress = false;
    for (size_t i = 0; i < ctx.overlayEntries.size(); ++i) {
      auto& en = ctx.overlayEntries[i];
      if (en.charged) continue;
      if (ctx.pkgsWhole.empty() && !en.override && !ctx.pkgsNames.count(en.name)) continue;
      en.charged = true;
      progress = true;
      ctx.pkgsNames.insert(en.refs.begin(), en.refs.end());
      if (en.refsAll && ctx.pkgsWhole.empty())
        ctx.pkgsWhole = en.file + ": overlay attribute " + en.name + " uses final or prev whole";
      if (!en.expr) continue;
      const Expr* x = en.expr;
      EnvPtr env = en.env;
      std::string file = en.file;
      ev_.touchDeep(*x);
      scanRoot(*x, env, false, file, ctx);  // may add entries' names; `en` may move
    }
    for (const auto& dir : ctx.byNameDirs) {
      auto charge = [&](const std::string& name) {
        if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..")
          return;
        if (!ctx.byNameCharged.insert(dir + name).second) return;
        progress = true;
        // a directory's package.nix may read its neighbours; N.nix is a package too. Both
        // count when absent: a package added there replaces the one of the same name
        addPath(PathRef{true, dir + name, "", ""}, ctx);
        ctx.deps->dirs.insert(dir + name + "/");
        addPath(PathRef{true, dir + name + ".nix", "", ""}, ctx);
      };
      if (!ctx.pkgsWhole.empty()) {
        if (ctx.byNameCharged.insert(dir).second) {
          progress = true;
          addPath(PathRef{true, dir.substr(0, dir.size() - 1), "", ""}, ctx);
        }
        continue;
      }
      std::vector<std::string> names(ctx.pkgsNames.begin(), ctx.pkgsNames.end());
      for (const auto& n : names) charge(n);
    }
  }
}

void DepScanner::scanFile(const std::string& path, HostCtx& ctx) {
  if (!ctx.visitedFiles.insert(path).second) return;
  HostDeps& d = *ctx.deps;
  d.files.insert(path);
  d.moduleFiles.insert(path);
  auto parsed = ev_.tree().parse(path);
  if (!parsed) return;
  if (!parsed->ast) {
    d.dynamic.push_back(parsed->error);
    return;
  }
  scanRoot(*parsed->ast, ev_.fileEnv(parsed), true, path, ctx);
}

void DepScanner::scanModuleValue(const ValuePtr& v, HostCtx& ctx, int depth) {
  if (!v || depth > 16) return;
  ev_.charge(1);
  switch (v->kind) {
    case VKind::List:
      for (const auto& t : v->elems) scanModuleValue(ev_.force(t), ctx, depth + 1);
      if (v->open) {
        addValueDeps(v, nullptr, "flake.nix", ctx, 0);
        if (v->carried.empty())
          ctx.deps->dynamic.push_back("modules list with entries the planner cannot evaluate" +
                                      (v->reason.empty() ? std::string() : ": " + v->reason));
      }
      return;
    case VKind::Unknown:
      addValueDeps(v, nullptr, "flake.nix", ctx, 0);
      if (v->carried.paths.empty() && v->carried.dynamic.empty())
        ctx.deps->dynamic.push_back("a module the planner cannot evaluate: " + v->reason);
      return;
    case VKind::NixosSystem:
    case VKind::Null:
    case VKind::Bool:
      return;
    case VKind::Path:
    case VKind::String:
      // a directory as a module is what `import` reads from it, its default.nix; its other
      // files count only when that refers to them (a README next to a host's module does not)
      if (v->path && v->path->exact && !v->path->path.empty() && v->carried.empty() &&
          !v->selfRevision && ev_.tree().isDir(v->path->path)) {
        addPath(PathRef{true, v->path->path + "/default.nix", "", ""}, ctx, true);
        return;
      }
      if (v->path && v->path->exact && v->carried.empty() && !v->selfRevision &&
          endsWith(v->path->path, ".nix")) {
        addPath(*v->path, ctx, true);
        return;
      }
      addValueDeps(v, nullptr, "flake.nix", ctx, 0);
      return;
    default:
      addValueDeps(v, nullptr, "flake.nix", ctx, 0);
  }
}

HostDeps DepScanner::scan(const HostDef& host, bool hostNameDefaultsToName) {
  auto attempt = [&](std::optional<std::string> hostName, bool& verified) {
    HostDeps deps;
    HostCtx ctx;
    ctx.host = &host;
    ctx.deps = &deps;
    ctx.hostName = hostName;
    ev_.pushTrace(&deps.trace);
    struct Pop {  // also when evaluation throws (a limit): the trace lives on this frame
      Evaluator& ev;
      bool done = false;
      void operator()() {
        if (!done) ev.popTrace(false);
        done = true;
      }
      ~Pop() { (*this)(); }
    } pop{ev_};
    ValuePtr v = ev_.force(host.value);
    if (v->kind == VKind::NixosSystem) {
      ctx.specialArgs = v->specialArgs;
      ctx.libInput = v->libInput;
      deps.inputs.insert(v->libInput);
      deps.inputs.insert(v->carried.inputs.begin(), v->carried.inputs.end());
      for (const auto& c : v->conventionPaths) {
        if (!c.exact)
          deps.patterns.insert(c);
        else if (c.path.empty() || endsWith(c.path, "/"))
          deps.dirs.insert(c.path);
        else
          deps.files.insert(c.path), deps.textRefs.insert(c.path);
      }
      scanModuleValue(ev_.force(v->modules), ctx, 0);
    } else {
      addValueDeps(v, nullptr, "flake.nix", ctx, 0);
      deps.dynamic.push_back("host '" + host.name + "' is defined by something the planner " +
                             "does not model (" +
                             (v->reason.empty() ? "not nixosSystem" : v->reason) + ")");
    }
    chargeOverlays(ctx);
    pop();
    deps.inputs.insert(deps.trace.inputs.begin(), deps.trace.inputs.end());
    deps.inputs.erase("self");
    // Was the host name we assumed right? Every definition must say so.
    verified = true;
    if (ctx.hostNameValues.empty()) verified = hostNameDefaultsToName;
    for (const auto& hv : ctx.hostNameValues)
      if (hv->kind != VKind::String || !hv->text || !hostName || *hv->text != *hostName)
        verified = false;
    if (hostName && verified) deps.hostName = *hostName;
    if (!hostName && ctx.hostNameValues.size() == 1 && ctx.hostNameValues[0]->text)
      deps.hostName = *ctx.hostNameValues[0]->text;
    return deps;
  };
  bool verified = false;
  HostDeps deps = attempt(host.name, verified);
  if (verified) return deps;
  // The host name is not the attribute name (or not known): follow hostname-interpolated
  // paths as patterns instead.
  bool ignored = false;
  HostDeps second = attempt(std::nullopt, ignored);
  // keep whatever the first attempt reached too (an over-approximation is safe)
  second.files.insert(deps.files.begin(), deps.files.end());
  second.textRefs.insert(deps.textRefs.begin(), deps.textRefs.end());
  second.dirs.insert(deps.dirs.begin(), deps.dirs.end());
  second.patterns.insert(deps.patterns.begin(), deps.patterns.end());
  second.inputs.insert(deps.inputs.begin(), deps.inputs.end());
  second.moduleFiles.insert(deps.moduleFiles.begin(), deps.moduleFiles.end());
  second.trace.merge(deps.trace);
  return second;
}

Carried DepScanner::scanExpr(const Expr& e, const EnvPtr& env) {
  Carried out;
  std::string file = env && env->file ? env->file->path : "flake.nix";
  const Summary& s = summarize(e, file);
  for (const auto& p : s.staticPaths) out.paths.insert(PathRef{true, p, "", ""});
  for (const auto& p : s.codePaths) out.paths.insert(PathRef{true, p, "", ""});
  for (const auto& f : s.filtered) out.paths.insert(PathRef{true, f.first, "", ""});  // whole
  out.dynamic.insert(out.dynamic.end(), s.dynamic.begin(), s.dynamic.end());
  HostCtx scratch;
  HostDef none{"", nullptr, ""};
  scratch.host = &none;
  for (const auto& n : s.nodes) {
    EnvPtr nodeEnv = buildEnv(env, n.chain, false, scratch);
    if (n.kind == Interesting::Kind::DataSelect) {  // the file, followed as before
      ValuePtr p = ev_.eval(*n.importedFile, nodeEnv);
      out.merge(p->carried);
      if (p->path) out.paths.insert(*p->path);
    }
    ValuePtr v = ev_.eval(*n.node, nodeEnv);
    if (n.kind == Interesting::Kind::Overlays) {  // whole, as any other value
      out.merge(ev_.valueCarried(v));
      continue;
    }
    out.merge(v->carried);
    if (v->path) out.paths.insert(*v->path);
    if (v->kind == VKind::Input && v->input != "self") out.inputs.insert(v->input);
    if (v->kind == VKind::Self) out.selfWhole = true;
    if ((v->kind == VKind::Attrs || v->kind == VKind::Lambda) && v->origin && v->originEnv &&
        v->origin != &e) {
      static thread_local int depth = 0;
      if (depth < 4) {
        // restored when the evaluation throws (a limit), or the next plan of this thread
        // would scan less deeply
        struct Nest {
          Nest() { ++depth; }
          ~Nest() { --depth; }
        } nest;
        out.merge(scanExpr(*v->origin, v->originEnv));
      }
    }
  }
  return out;
}

}  // namespace runner::plan
