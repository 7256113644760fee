#include "runner/nix/ast_json.h"

namespace runner::nix {
namespace {

using nlohmann::json;

json pos(Pos p) { return json::array({p.line, p.col}); }

json parts(const std::vector<StringPart>& ps) {
  json out = json::array();
  for (const auto& p : ps) out.push_back(p.expr ? toJson(*p.expr) : json(p.text));
  return out;
}

json attrPath(const std::vector<AttrName>& path) {
  json out = json::array();
  for (const auto& a : path)
    out.push_back(a.dynamic ? json{{"dynamic", toJson(*a.dynamic)}} : json(a.name));
  return out;
}

const char* scopeName(VarScope s) {
  switch (s) {
    case VarScope::Global:
      return "global";
    case VarScope::Let:
      return "let";
    case VarScope::Rec:
      return "rec";
    case VarScope::Arg:
      return "arg";
    case VarScope::Formal:
      return "formal";
    case VarScope::With:
      return "with";
  }
  return "?";
}

const char* pathKindName(PathKind k) {
  switch (k) {
    case PathKind::Relative:
      return "relative";
    case PathKind::Absolute:
      return "absolute";
    case PathKind::Home:
      return "home";
    case PathKind::Search:
      return "search";
  }
  return "?";
}

json attrs(const ExprAttrs& a) {
  json j{{"type", "Attrs"}, {"pos", pos(a.pos)}, {"rec", a.recursive}};
  json defs = json::object();
  for (const auto& [name, d] : a.attrs) {
    json def{{"pos", pos(d.pos)}};
    switch (d.kind) {
      case AttrDef::Kind::Plain:
        def["kind"] = "plain";
        def["value"] = toJson(*d.value);
        break;
      case AttrDef::Kind::Inherited:
        def["kind"] = "inherit";
        def["value"] = toJson(*d.value);
        break;
      case AttrDef::Kind::InheritedFrom:
        def["kind"] = "inheritFrom";
        def["from"] = d.fromIndex;
        break;
    }
    defs[name] = std::move(def);
  }
  j["attrs"] = std::move(defs);
  json dyn = json::array();
  for (const auto& d : a.dynamicAttrs)
    dyn.push_back({{"pos", pos(d.pos)}, {"name", toJson(*d.name)}, {"value", toJson(*d.value)}});
  j["dynamic"] = std::move(dyn);
  json from = json::array();
  for (const auto& f : a.inheritFrom) from.push_back(toJson(*f));
  j["inheritFrom"] = std::move(from);
  return j;
}

}  // namespace

json toJson(const Expr& e) {
  json j;
  switch (e.kind) {
    case ExprKind::Int:
      return {{"type", "Int"}, {"pos", pos(e.pos)}, {"value", e.as<ExprInt>()->value}};
    case ExprKind::Float:
      return {{"type", "Float"}, {"pos", pos(e.pos)}, {"value", e.as<ExprFloat>()->value}};
    case ExprKind::String: {
      const auto& s = *e.as<ExprString>();
      return {{"type", "String"},
              {"pos", pos(e.pos)},
              {"parts", parts(s.parts)},
              {"indented", s.indented},
              {"uri", s.uri}};
    }
    case ExprKind::Path: {
      const auto& p = *e.as<ExprPath>();
      return {{"type", "Path"},
              {"pos", pos(e.pos)},
              {"kind", pathKindName(p.pathKind)},
              {"parts", parts(p.parts)}};
    }
    case ExprKind::Var: {
      const auto& v = *e.as<ExprVar>();
      return {{"type", "Var"},
              {"pos", pos(e.pos)},
              {"name", v.name},
              {"scope", scopeName(v.scope)},
              {"binder", v.binder ? pos(v.binder->pos) : json(nullptr)}};
    }
    case ExprKind::Select: {
      const auto& s = *e.as<ExprSelect>();
      j = {{"type", "Select"},
           {"pos", pos(e.pos)},
           {"expr", toJson(*s.expr)},
           {"path", attrPath(s.path)}};
      if (s.orDefault) j["default"] = toJson(*s.orDefault);
      return j;
    }
    case ExprKind::HasAttr: {
      const auto& h = *e.as<ExprHasAttr>();
      return {{"type", "HasAttr"},
              {"pos", pos(e.pos)},
              {"expr", toJson(*h.expr)},
              {"path", attrPath(h.path)}};
    }
    case ExprKind::Attrs:
      return attrs(*e.as<ExprAttrs>());
    case ExprKind::List: {
      json elems = json::array();
      for (const auto& x : e.as<ExprList>()->elems) elems.push_back(toJson(*x));
      return {{"type", "List"}, {"pos", pos(e.pos)}, {"elems", std::move(elems)}};
    }
    case ExprKind::Lambda: {
      const auto& l = *e.as<ExprLambda>();
      j = {{"type", "Lambda"}, {"pos", pos(e.pos)}};
      j["arg"] = l.arg.empty() ? json(nullptr) : json(l.arg);
      if (l.formals) {
        json fs = json::array();
        for (const auto& f : l.formals->formals) {
          json fj{{"name", f.name}, {"pos", pos(f.pos)}};
          if (f.defaultValue) fj["default"] = toJson(*f.defaultValue);
          fs.push_back(std::move(fj));
        }
        j["formals"] = {{"formals", std::move(fs)}, {"ellipsis", l.formals->ellipsis}};
      } else {
        j["formals"] = nullptr;
      }
      j["body"] = toJson(*l.body);
      return j;
    }
    case ExprKind::Call: {
      const auto& c = *e.as<ExprCall>();
      json args = json::array();
      for (const auto& a : c.args) args.push_back(toJson(*a));
      return {{"type", "Call"}, {"pos", pos(e.pos)}, {"fn", toJson(*c.fn)}, {"args", args}};
    }
    case ExprKind::Let: {
      const auto& l = *e.as<ExprLet>();
      return {{"type", "Let"},
              {"pos", pos(e.pos)},
              {"bindings", attrs(*l.bindings)},
              {"body", toJson(*l.body)}};
    }
    case ExprKind::With: {
      const auto& w = *e.as<ExprWith>();
      return {{"type", "With"},
              {"pos", pos(e.pos)},
              {"attrs", toJson(*w.attrs)},
              {"body", toJson(*w.body)}};
    }
    case ExprKind::Assert: {
      const auto& a = *e.as<ExprAssert>();
      return {{"type", "Assert"},
              {"pos", pos(e.pos)},
              {"cond", toJson(*a.cond)},
              {"body", toJson(*a.body)}};
    }
    case ExprKind::If: {
      const auto& i = *e.as<ExprIf>();
      return {{"type", "If"},
              {"pos", pos(e.pos)},
              {"cond", toJson(*i.cond)},
              {"then", toJson(*i.then)},
              {"else", toJson(*i.otherwise)}};
    }
    case ExprKind::Not:
      return {{"type", "Not"}, {"pos", pos(e.pos)}, {"expr", toJson(*e.as<ExprNot>()->expr)}};
    case ExprKind::Neg:
      return {{"type", "Neg"}, {"pos", pos(e.pos)}, {"expr", toJson(*e.as<ExprNeg>()->expr)}};
    case ExprKind::BinOp: {
      const auto& b = *e.as<ExprBinOp>();
      return {{"type", "BinOp"},
              {"pos", pos(e.pos)},
              {"op", toString(b.op)},
              {"lhs", toJson(*b.lhs)},
              {"rhs", toJson(*b.rhs)}};
    }
    case ExprKind::CurPos:
      return {{"type", "CurPos"}, {"pos", pos(e.pos)}};
  }
  return j;
}

}  // namespace runner::nix
