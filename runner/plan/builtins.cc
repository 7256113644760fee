// The builtins (and nixpkgs lib functions) the abstract evaluator models, as one table:
// name, arity, whether `lib.<name>` of an input means the same function, and the member
// that implements it (issue 12: the 500-line `name ==` chain with separate arity and "benign"
// lists drifted). A name missing from the table is "not modelled": its call is Unknown and
// carries whatever its arguments refer to. Each row has a unit test (builtins_test.cc).
#include <algorithm>
#include <cctype>
#include <regex>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/plan/evaluator.h"
#include "runner/plan/evaluator_internal.h"

namespace runner::plan {

using namespace runner::nix;

std::span<const Evaluator::Builtin> Evaluator::builtins() {
  static const Builtin kTable[] = {
      {"import", 1, true, &Evaluator::builtinImport},
      {"map", 2, true, &Evaluator::builtinMap},
      {"filter", 2, true, &Evaluator::builtinFilter},
      {"attrNames", 1, true, &Evaluator::builtinAttrNames},
      {"attrValues", 1, true, &Evaluator::builtinAttrNames},
      {"listToAttrs", 1, true, &Evaluator::builtinListToAttrs},
      {"mapAttrs", 2, true, &Evaluator::builtinMapAttrs},
      {"genAttrs", 2, true, &Evaluator::builtinGenAttrs},
      {"filterAttrs", 2, true, &Evaluator::builtinFilterAttrs},
      {"readDir", 1, true, &Evaluator::builtinReadDir},
      {"readFile", 1, true, &Evaluator::builtinReadFile},
      {"pathExists", 1, true, &Evaluator::builtinPathExists},
      {"toString", 1, true, &Evaluator::builtinToString},
      {"baseNameOf", 1, true, &Evaluator::builtinBaseNameOf},
      {"dirOf", 1, true, &Evaluator::builtinBaseNameOf},
      {"removeAttrs", 2, true, &Evaluator::builtinRemoveAttrs},
      {"hasAttr", 2, true, &Evaluator::builtinHasAttr},
      {"getAttr", 2, true, &Evaluator::builtinHasAttr},
      {"concatMap", 2, true, &Evaluator::builtinConcatMap},
      {"concatLists", 1, true, &Evaluator::builtinConcatLists},
      {"flatten", 1, true, &Evaluator::builtinConcatLists},
      {"optional", 2, true, &Evaluator::builtinOptional},
      {"optionals", 2, true, &Evaluator::builtinOptional},
      {"mkIf", 2, true, &Evaluator::builtinMkIf},
      {"mkMerge", 1, true, &Evaluator::builtinConcatLists},
      {"mkDefault", 1, true, &Evaluator::builtinPassThrough},
      {"mkForce", 1, true, &Evaluator::builtinPassThrough},
      {"mkOverride", 2, true, &Evaluator::builtinPassThrough},
      {"recursiveUpdate", 2, true, &Evaluator::builtinRecursiveUpdate},
      {"foldl'", 3, true, &Evaluator::builtinFoldl},
      {"trace", 2, true, &Evaluator::builtinPassThrough},
      {"seq", 2, true, &Evaluator::builtinPassThrough},
      {"deepSeq", 2, true, &Evaluator::builtinPassThrough},
      {"throw", 1, true, &Evaluator::builtinThrow},
      {"abort", 1, true, &Evaluator::builtinThrow},
      {"nameValuePair", 2, true, &Evaluator::builtinNameValuePair},
      {"mapAttrs'", 2, true, &Evaluator::builtinMapAttrsPrime},
      {"mapAttrsToList", 2, true, &Evaluator::builtinMapAttrs},
      {"listFilesRecursive", 1, true, &Evaluator::builtinListFilesRecursive},
      {"importApply", 2, true, &Evaluator::builtinImportApply},
      {"flake-parts.mkFlake", 2, true, &Evaluator::builtinFlakePartsMkFlake},
      {"scopedImport", 2, true, &Evaluator::builtinImport},
      {"fetchTarball", 1, true, &Evaluator::builtinFetcher},
      {"fetchGit", 1, true, &Evaluator::builtinFetcher},
      {"fetchurl", 1, true, &Evaluator::builtinFetcher},
      {"fetchTree", 1, true, &Evaluator::builtinFetcher},
      {"getFlake", 1, true, &Evaluator::builtinGetFlake},
      {"toPath", 1, true, &Evaluator::builtinUnsafePath},
      {"storePath", 1, true, &Evaluator::builtinUnsafePath},
      {"path", 1, true, &Evaluator::builtinFetcher},
      {"isNull", 1, false, &Evaluator::builtinOpaque},
      {"elem", 2, true, &Evaluator::builtinElem},
      {"length", 1, true, &Evaluator::builtinListAccess},
      {"head", 1, true, &Evaluator::builtinListAccess},
      {"tail", 1, true, &Evaluator::builtinListAccess},
      {"elemAt", 2, true, &Evaluator::builtinListAccess},
      {"concatStringsSep", 2, true, &Evaluator::builtinConcatStringsSep},
      {"intersectAttrs", 2, false, &Evaluator::builtinOpaque},
      {"functionArgs", 1, false, &Evaluator::builtinOpaque},
      {"isAttrs", 1, false, &Evaluator::builtinOpaque},
      {"isList", 1, false, &Evaluator::builtinOpaque},
      {"isString", 1, false, &Evaluator::builtinOpaque},
      {"isFunction", 1, false, &Evaluator::builtinOpaque},
      {"isPath", 1, false, &Evaluator::builtinOpaque},
      {"hasPrefix", 2, true, &Evaluator::builtinAffix},
      {"hasSuffix", 2, true, &Evaluator::builtinAffix},
      {"removeSuffix", 2, true, &Evaluator::builtinAffix},
      {"removePrefix", 2, true, &Evaluator::builtinAffix},
      {"replaceStrings", 3, true, &Evaluator::builtinReplaceStrings},
      {"toJSON", 1, false, &Evaluator::builtinOpaque},
      {"fromJSON", 1, false, &Evaluator::builtinFromJson},
      {"derivation", 1, false, &Evaluator::builtinOpaque},
      {"placeholder", 1, false, &Evaluator::builtinOpaque},
      {"tryEval", 1, false, &Evaluator::builtinOpaque},
      {"attrByPath", 3, false, &Evaluator::builtinOpaque},
      {"unique", 1, false, &Evaluator::builtinOpaque},
      {"id", 1, true, &Evaluator::builtinPassThrough},
      {"const", 2, true, &Evaluator::builtinConst},
      {"makeOverridable", 2, true, &Evaluator::builtinMakeOverridable},
      {"toLower", 1, true, &Evaluator::builtinChangeCase},
      {"toUpper", 1, true, &Evaluator::builtinChangeCase},
      {"stringLength", 1, true, &Evaluator::builtinStringLength},
      {"substring", 3, true, &Evaluator::builtinSubstring},
      {"packagesFromDirectoryRecursive", 1, true,
       &Evaluator::builtinPackagesFromDirectoryRecursive},
      {"flake-parts.evalFlakeModule", 2, true, &Evaluator::builtinFlakePartsEvalFlakeModule},
      {"withSystem", 2, true, &Evaluator::builtinWithSystem},
      {"optionalAttrs", 2, true, &Evaluator::builtinOptionalAttrs},
      {"match", 2, true, &Evaluator::builtinMatch},
      {"split", 2, true, &Evaluator::builtinMatch},
  };
  return kTable;
}

const Evaluator::Builtin* Evaluator::findBuiltin(std::string_view name) {
  static const std::unordered_map<std::string_view, const Builtin*> byName = [] {
    std::unordered_map<std::string_view, const Builtin*> m;
    for (const auto& b : builtins()) m.emplace(b.name, &b);
    return m;
  }();
  auto it = byName.find(name);
  return it == byName.end() ? nullptr : it->second;
}

ValuePtr Evaluator::argValue(const std::vector<ThunkPtr>& args, size_t i) {
  return force(args.at(i));
}

Carried Evaluator::carriedOf(const std::vector<ThunkPtr>& args) {
  Carried c;
  for (const auto& a : args) {
    if (scanExpr && a->expr) c.merge(scanExpr(*a->expr, a->env));
  }
  return c;
}

// Text of a known string argument (attribute names are often computed with string functions:
// removeSuffix ".nix" over a readDir, …); nullopt otherwise.
std::optional<std::string> Evaluator::knownText(const std::vector<ThunkPtr>& args, size_t i) {
  ValuePtr v = force(args.at(i));
  if (v->kind == VKind::String && v->text) return v->text;
  return std::nullopt;
}

// import, scopedImport
ValuePtr Evaluator::builtinImport(const std::string& name, const std::vector<ThunkPtr>& args,
                                  const Expr* site, const EnvPtr& env) {
  ValuePtr p = argValue(args, name == "import" ? 0 : 1);
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
  // `with import <nixpkgs> { }` in a dev shell: a search path fails in pure flake
  // evaluation, so no configuration can depend on it (issue 12 cause 10)
  if (p->kind == VKind::Path && p->searchPath)
    return unknown("import of a search path, which pure flake evaluation refuses");
  Carried c = p->carried;
  if (p->path) c.paths.insert(*p->path);
  c.dynamic.push_back(locate(site, env) + ": import of a path the planner cannot determine");
  return unknown("import of a computed path", c);
}

// map
ValuePtr Evaluator::builtinMap(const std::string& name, const std::vector<ThunkPtr>& args,
                               const Expr* site, const EnvPtr& env) {
  ValuePtr f = argValue(args, 0), l = argValue(args, 1);
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

// filter
ValuePtr Evaluator::builtinFilter(const std::string& name, const std::vector<ThunkPtr>& args,
                                  const Expr* site, const EnvPtr& env) {
  ValuePtr f = argValue(args, 0), l = argValue(args, 1);
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

// attrNames, attrValues
ValuePtr Evaluator::builtinAttrNames(const std::string& name, const std::vector<ThunkPtr>& args,
                                     const Expr* site, const EnvPtr& env) {
  ValuePtr a = argValue(args, 0);
  if (a->kind != VKind::Attrs) return unknown(name + " of an unknown set", a->carried);
  auto out = make(VKind::List);
  out->open = a->open;
  for (const auto& [k, t] : a->attrs) out->elems.push_back(name == "attrNames" ? ready(str(k)) : t);
  return out;
}

// listToAttrs
ValuePtr Evaluator::builtinListToAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                                       const Expr* site, const EnvPtr& env) {
  ValuePtr l = argValue(args, 0);
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

// mapAttrs, mapAttrsToList
ValuePtr Evaluator::builtinMapAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const Expr* site, const EnvPtr& env) {
  ValuePtr f = argValue(args, 0), a = argValue(args, 1);
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

// mapAttrs'
ValuePtr Evaluator::builtinMapAttrsPrime(const std::string& name, const std::vector<ThunkPtr>& args,
                                         const Expr* site, const EnvPtr& env) {
  ValuePtr f = argValue(args, 0), a = argValue(args, 1);
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

// nameValuePair
ValuePtr Evaluator::builtinNameValuePair(const std::string& name, const std::vector<ThunkPtr>& args,
                                         const Expr* site, const EnvPtr& env) {
  auto out = make(VKind::Attrs);
  out->attrs["name"] = args[0];
  out->attrs["value"] = args[1];
  return out;
}

// genAttrs
ValuePtr Evaluator::builtinGenAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const Expr* site, const EnvPtr& env) {
  auto names = unrecorded([&] { return knownStrings(argValue(args, 0)); });
  if (!names)
    return unknown("genAttrs over names the planner cannot evaluate", argValue(args, 0)->carried);
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

// filterAttrs
ValuePtr Evaluator::builtinFilterAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                                       const Expr* site, const EnvPtr& env) {
  ValuePtr pred = argValue(args, 0), a = argValue(args, 1);
  if (a->kind != VKind::Attrs) return unknown("filterAttrs of an unknown set", a->carried);
  auto out = make(VKind::Attrs);
  inheritOpen(*out, *a);
  for (const auto& [k, t] : a->attrs) {
    const std::string& key = k;  // clang 14 cannot capture structured bindings
    const ThunkPtr& val = t;
    ValuePtr keep =
        unrecorded([&] { return apply(apply(pred, ready(str(key)), site, env), val, site, env); });
    if (keep->kind == VKind::Bool && !keep->b) continue;
    out->attrs[k] = t;
  }
  return out;
}

// removeAttrs
ValuePtr Evaluator::builtinRemoveAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                                       const Expr* site, const EnvPtr& env) {
  ValuePtr a = argValue(args, 0);
  auto names = knownStrings(argValue(args, 1));
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

// hasAttr, getAttr
ValuePtr Evaluator::builtinHasAttr(const std::string& name, const std::vector<ThunkPtr>& args,
                                   const Expr* site, const EnvPtr& env) {
  ValuePtr n = argValue(args, 0), a = argValue(args, 1);
  if (n->kind != VKind::String || !n->text || a->kind != VKind::Attrs)
    return unknown(name + " we cannot evaluate");
  ThunkPtr t = select(a, *n->text);
  if (name == "hasAttr") {
    if (!t) return boolValue(false);
    if (a->attrs.count(*n->text)) return boolValue(true);
    return unknown("hasAttr on a partly known set");
  }
  return t ? force(t) : unknown("getAttr of a missing attribute");
}

// readDir
ValuePtr Evaluator::builtinReadDir(const std::string& name, const std::vector<ThunkPtr>& args,
                                   const Expr* site, const EnvPtr& env) {
  ValuePtr p = argValue(args, 0);
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

// readFile
ValuePtr Evaluator::builtinReadFile(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const Expr* site, const EnvPtr& env) {
  ValuePtr p = argValue(args, 0);
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

// fromJSON
ValuePtr Evaluator::builtinFromJson(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const Expr* site, const EnvPtr& env) {
  // JSON the planner can read (a repository file: an inventory of hosts): its values, each
  // string carrying what the text came from
  ValuePtr sv = argValue(args, 0);
  const std::string* textp = sv->text ? &*sv->text : sv->fileText.get();
  if (sv->kind == VKind::String && textp) {
    auto j = nlohmann::json::parse(*textp, nullptr, false);
    if (!j.is_discarded()) return fromJson(j, sv->carried);
  }
  Carried c = sv->carried;
  c.merge(carriedOf(args));
  return unknown("fromJSON of text the planner cannot read", c);
}

// pathExists
ValuePtr Evaluator::builtinPathExists(const std::string& name, const std::vector<ThunkPtr>& args,
                                      const Expr* site, const EnvPtr& env) {
  ValuePtr p = argValue(args, 0);
  if (!p->path || !p->path->exact) return unknown("pathExists of a computed path", p->carried);
  bool exists = tree_.exists(p->path->path);
  recordExternal("exists:" + p->path->path + "=" + (exists ? "1" : "0"));
  return boolValue(exists);
}

// listFilesRecursive
ValuePtr Evaluator::builtinListFilesRecursive(const std::string& name,
                                              const std::vector<ThunkPtr>& args, const Expr* site,
                                              const EnvPtr& env) {
  ValuePtr p = argValue(args, 0);
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

// toString
ValuePtr Evaluator::builtinToString(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const Expr* site, const EnvPtr& env) {
  ValuePtr v = argValue(args, 0);
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

// baseNameOf, dirOf
ValuePtr Evaluator::builtinBaseNameOf(const std::string& name, const std::vector<ThunkPtr>& args,
                                      const Expr* site, const EnvPtr& env) {
  ValuePtr v = argValue(args, 0);
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

// concatMap
ValuePtr Evaluator::builtinConcatMap(const std::string& name, const std::vector<ThunkPtr>& args,
                                     const Expr* site, const EnvPtr& env) {
  ValuePtr f = argValue(args, 0), l = argValue(args, 1);
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

// concatLists, flatten, mkMerge
ValuePtr Evaluator::builtinConcatLists(const std::string& name, const std::vector<ThunkPtr>& args,
                                       const Expr* site, const EnvPtr& env) {
  ValuePtr l = argValue(args, 0);
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

// optional, optionals
ValuePtr Evaluator::builtinOptional(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const Expr* site, const EnvPtr& env) {
  ValuePtr c = argValue(args, 0);
  if (c->kind == VKind::Bool && !c->b) return make(VKind::List);
  if (c->kind != VKind::Bool && args[0]->expr) touchDeep(*args[0]->expr);
  if (name == "optionals") return argValue(args, 1);
  auto out = make(VKind::List);
  out->elems.push_back(args[1]);
  return out;
}

// optionalAttrs
ValuePtr Evaluator::builtinOptionalAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                                         const Expr* site, const EnvPtr& env) {
  // An unknown condition gives the set itself: a superset of both answers.
  ValuePtr c = argValue(args, 0);
  if (c->kind == VKind::Bool && !c->b) return make(VKind::Attrs);
  if (c->kind != VKind::Bool && args[0]->expr) touchDeep(*args[0]->expr);
  return argValue(args, 1);
}

// match, split
ValuePtr Evaluator::builtinMatch(const std::string& name, const std::vector<ThunkPtr>& args,
                                 const Expr* site, const EnvPtr& env) {
  // POSIX extended regular expressions, as Nix's builtins use (std::regex::extended).
  ValuePtr re = argValue(args, 0), text = argValue(args, 1);
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

// mkIf
ValuePtr Evaluator::builtinMkIf(const std::string& name, const std::vector<ThunkPtr>& args,
                                const Expr* site, const EnvPtr& env) {
  ValuePtr c = argValue(args, 0);
  if (c->kind != VKind::Bool && args[0]->expr) touchDeep(*args[0]->expr);
  return argValue(args, 1);
}

// mkDefault, mkForce, trace, seq, deepSeq, mkOverride, id
ValuePtr Evaluator::builtinPassThrough(const std::string& name, const std::vector<ThunkPtr>& args,
                                       const Expr* site, const EnvPtr& env) {
  return argValue(args, args.size() - 1);
}

// const
ValuePtr Evaluator::builtinConst(const std::string& name, const std::vector<ThunkPtr>& args,
                                 const Expr* site, const EnvPtr& env) {
  return argValue(args, 0);
}

// makeOverridable
ValuePtr Evaluator::builtinMakeOverridable(const std::string& name,
                                           const std::vector<ThunkPtr>& args, const Expr* site,
                                           const EnvPtr& env) {
  return apply(argValue(args, 0), args[1], site, env);
}

// removeSuffix, removePrefix, hasSuffix, hasPrefix
ValuePtr Evaluator::builtinAffix(const std::string& name, const std::vector<ThunkPtr>& args,
                                 const Expr* site, const EnvPtr& env) {
  auto affix = knownText(args, 0), text = knownText(args, 1);
  if (!affix || !text) return unknown("builtins." + name + " of unknown text");
  bool suffix = name == "removeSuffix" || name == "hasSuffix";
  bool has = suffix ? endsWith(*text, *affix) : startsWith(*text, *affix);
  if (name == "hasSuffix" || name == "hasPrefix") return boolValue(has);
  if (!has) return str(*text);
  return str(suffix ? text->substr(0, text->size() - affix->size()) : text->substr(affix->size()));
}

// toLower, toUpper
ValuePtr Evaluator::builtinChangeCase(const std::string& name, const std::vector<ThunkPtr>& args,
                                      const Expr* site, const EnvPtr& env) {
  auto text = knownText(args, 0);
  if (!text) return unknown("builtins." + name + " of unknown text");
  std::string out = *text;
  for (char& ch : out)
    ch = name == "toLower" ? static_cast<char>(std::tolower(ch))
                           : static_cast<char>(std::toupper(ch));
  return str(out);
}

// stringLength
ValuePtr Evaluator::builtinStringLength(const std::string& name, const std::vector<ThunkPtr>& args,
                                        const Expr* site, const EnvPtr& env) {
  auto text = knownText(args, 0);
  if (!text) return unknown("stringLength of unknown text");
  auto v = make(VKind::Int);
  v->i = static_cast<int64_t>(text->size());
  return v;
}

// substring
ValuePtr Evaluator::builtinSubstring(const std::string& name, const std::vector<ThunkPtr>& args,
                                     const Expr* site, const EnvPtr& env) {
  ValuePtr start = argValue(args, 0), len = argValue(args, 1);
  auto text = knownText(args, 2);
  if (start->kind != VKind::Int || len->kind != VKind::Int || !text || start->i < 0)
    return unknown("substring of unknown text");
  size_t b = std::min(static_cast<size_t>(start->i), text->size());
  return str(text->substr(b, len->i < 0 ? std::string::npos : static_cast<size_t>(len->i)));
}

// replaceStrings
ValuePtr Evaluator::builtinReplaceStrings(const std::string& name,
                                          const std::vector<ThunkPtr>& args, const Expr* site,
                                          const EnvPtr& env) {
  auto from = knownStrings(argValue(args, 0)), to = knownStrings(argValue(args, 1));
  auto text = knownText(args, 2);
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

// concatStringsSep
ValuePtr Evaluator::builtinConcatStringsSep(const std::string& name,
                                            const std::vector<ThunkPtr>& args, const Expr* site,
                                            const EnvPtr& env) {
  auto sep = knownText(args, 0);
  auto parts = knownStrings(argValue(args, 1));
  if (!sep || !parts) return unknown("concatStringsSep of unknown text");
  size_t total = 0;
  for (const auto& p : *parts) total += p.size() + sep->size();
  chargeText(total);
  return str(join(*parts, *sep));
}

// head, tail, length, elemAt
ValuePtr Evaluator::builtinListAccess(const std::string& name, const std::vector<ThunkPtr>& args,
                                      const Expr* site, const EnvPtr& env) {
  ValuePtr l = argValue(args, 0);
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
    ValuePtr i = argValue(args, 1);
    if (i->kind != VKind::Int || i->i < 0) return unknown("elemAt of an unknown index");
    idx = static_cast<size_t>(i->i);
  }
  if (idx >= l->elems.size()) return unknown(name + " out of range");
  return force(l->elems[idx]);
}

// elem
ValuePtr Evaluator::builtinElem(const std::string& name, const std::vector<ThunkPtr>& args,
                                const Expr* site, const EnvPtr& env) {
  auto x = knownText(args, 0);
  auto list = knownStrings(argValue(args, 1));
  if (!x || !list) return unknown("elem we cannot evaluate");
  return boolValue(std::find(list->begin(), list->end(), *x) != list->end());
}

// packagesFromDirectoryRecursive
ValuePtr Evaluator::builtinPackagesFromDirectoryRecursive(const std::string& name,
                                                          const std::vector<ThunkPtr>& args,
                                                          const Expr* site, const EnvPtr& env) {
  // Every Nix file below `directory` is a package, callPackage'd: depend on all of them.
  ValuePtr a = argValue(args, 0);
  Carried c = carriedOf(args);
  if (a->kind == VKind::Attrs) {
    if (ThunkPtr d = select(a, "directory")) {
      ValuePtr dv = force(d);
      if (dv->path) c.paths.insert(*dv->path);
    }
  }
  return unknown("packagesFromDirectoryRecursive", c);
}

// recursiveUpdate
ValuePtr Evaluator::builtinRecursiveUpdate(const std::string& name,
                                           const std::vector<ThunkPtr>& args, const Expr* site,
                                           const EnvPtr& env) {
  return mergeAttrs({args[0], args[1]});
}

// foldl'
ValuePtr Evaluator::builtinFoldl(const std::string& name, const std::vector<ThunkPtr>& args,
                                 const Expr* site, const EnvPtr& env) {
  ValuePtr op = argValue(args, 0), l = argValue(args, 2);
  if (l->kind != VKind::List || l->open || l->elems.size() > 64)
    return unknown("foldl' we do not evaluate", carriedOf(args));
  ThunkPtr acc = args[1];
  for (const auto& el : l->elems) {
    ValuePtr r = apply(apply(op, acc, site, env), el, site, env);
    acc = ready(r);
  }
  return force(acc);
}

// importApply
ValuePtr Evaluator::builtinImportApply(const std::string& name, const std::vector<ThunkPtr>& args,
                                       const Expr* site, const EnvPtr& env) {
  ValuePtr p = argValue(args, 0);
  if (!p->path || !p->path->exact)
    return unknown("importApply of a computed path", carriedOf(args));
  return apply(force(importFile(p->path->path)), args[1], site, env);
}

// throw, abort
ValuePtr Evaluator::builtinThrow(const std::string& name, const std::vector<ThunkPtr>& args,
                                 const Expr* site, const EnvPtr& env) {
  return unknown(name);
}

// getFlake
ValuePtr Evaluator::builtinGetFlake(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const Expr* site, const EnvPtr& env) {
  // A locked reference (a commit id or a narHash) names immutable code: a change to it is a
  // change of this file. Unlocked or computed references can change under us: dynamic.
  ValuePtr ref = argValue(args, 0);
  if (ref->kind == VKind::String && ref->text && ref->carried.empty() &&
      isLockedFlakeRef(*ref->text)) {
    auto in = make(VKind::Input);
    in->input = "getFlake:" + *ref->text;
    return in;
  }
  Carried c = carriedOf(args);
  c.dynamic.push_back(locate(site, env) + ": builtins." + name);
  return unknown("builtins." + name, c);
}

// toPath, storePath
ValuePtr Evaluator::builtinUnsafePath(const std::string& name, const std::vector<ThunkPtr>& args,
                                      const Expr* site, const EnvPtr& env) {
  Carried c = carriedOf(args);
  c.dynamic.push_back(locate(site, env) + ": builtins." + name);
  return unknown("builtins." + name, c);
}

// Builtins whose result the planner never needs beyond "some value" (isAttrs, toJSON, …).
ValuePtr Evaluator::builtinOpaque(const std::string& name, const std::vector<ThunkPtr>& args,
                                  const Expr* site, const EnvPtr& env) {
  return unknown("builtins." + name);
}

// Fetchers and builtins.path: whatever they read is in their arguments.
ValuePtr Evaluator::builtinFetcher(const std::string& name, const std::vector<ThunkPtr>& args,
                                   const Expr* site, const EnvPtr& env) {
  return unknown("builtins." + name, carriedOf(args));
}

}  // namespace runner::plan
