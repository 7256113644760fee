#include "runner/nix/ast_json.h"

namespace runner::nix {
namespace {

using nlohmann::json;

// Written as small steps (no big initializer lists): each level of the tree costs one
// modest stack frame, so trees as deep as the parser allows convert safely.
json pos(Pos p) {
  json a = json::array();
  a.push_back(p.line);
  a.push_back(p.col);
  return a;
}

json node(const char* type, const Expr& e) {
  json j = json::object();
  j["type"] = type;
  j["pos"] = pos(e.pos);
  return j;
}

json parts(const std::vector<StringPart>& ps) {
  json out = json::array();
  for (const auto& p : ps) {
    if (p.expr)
      out.push_back(toJson(*p.expr));
    else
      out.push_back(p.text);
  }
  return out;
}

json attrPath(const std::vector<AttrName>& path) {
  json out = json::array();
  for (const auto& a : path) {
    if (a.dynamic) {
      json d = json::object();
      d["dynamic"] = toJson(*a.dynamic);
      out.push_back(std::move(d));
    } else {
      out.push_back(a.name);
    }
  }
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

json attrDef(const AttrDef& d) {
  json def = json::object();
  def["pos"] = pos(d.pos);
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
  return def;
}

json dynamicAttr(const DynamicAttr& d) {
  json j = json::object();
  j["pos"] = pos(d.pos);
  j["name"] = toJson(*d.name);
  j["value"] = toJson(*d.value);
  return j;
}

json attrs(const ExprAttrs& a) {
  json j = node("Attrs", a);
  j["rec"] = a.recursive;
  json& defs = j["attrs"] = json::object();
  for (const auto& [name, d] : a.attrs) defs[name] = attrDef(d);
  json& dyn = j["dynamic"] = json::array();
  for (const auto& d : a.dynamicAttrs) dyn.push_back(dynamicAttr(d));
  json& from = j["inheritFrom"] = json::array();
  for (const auto& f : a.inheritFrom) from.push_back(toJson(*f));
  return j;
}

json formals(const Formals& fs) {
  json out = json::object();
  json& list = out["formals"] = json::array();
  for (const auto& f : fs.formals) {
    json fj = json::object();
    fj["name"] = f.name;
    fj["pos"] = pos(f.pos);
    if (f.defaultValue) fj["default"] = toJson(*f.defaultValue);
    list.push_back(std::move(fj));
  }
  out["ellipsis"] = fs.ellipsis;
  return out;
}

}  // namespace

json toJson(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Int: {
      json j = node("Int", e);
      j["value"] = e.as<ExprInt>()->value;
      return j;
    }
    case ExprKind::Float: {
      json j = node("Float", e);
      j["value"] = e.as<ExprFloat>()->value;
      return j;
    }
    case ExprKind::String: {
      const auto& s = *e.as<ExprString>();
      json j = node("String", e);
      j["parts"] = parts(s.parts);
      j["indented"] = s.indented;
      j["uri"] = s.uri;
      return j;
    }
    case ExprKind::Path: {
      const auto& p = *e.as<ExprPath>();
      json j = node("Path", e);
      j["kind"] = pathKindName(p.pathKind);
      j["parts"] = parts(p.parts);
      return j;
    }
    case ExprKind::Var: {
      const auto& v = *e.as<ExprVar>();
      json j = node("Var", e);
      j["name"] = v.name;
      j["scope"] = scopeName(v.scope);
      j["binder"] = v.binder ? pos(v.binder->pos) : json(nullptr);
      return j;
    }
    case ExprKind::Select: {
      const auto& s = *e.as<ExprSelect>();
      json j = node("Select", e);
      j["expr"] = toJson(*s.expr);
      j["path"] = attrPath(s.path);
      if (s.orDefault) j["default"] = toJson(*s.orDefault);
      return j;
    }
    case ExprKind::HasAttr: {
      const auto& h = *e.as<ExprHasAttr>();
      json j = node("HasAttr", e);
      j["expr"] = toJson(*h.expr);
      j["path"] = attrPath(h.path);
      return j;
    }
    case ExprKind::Attrs:
      return attrs(*e.as<ExprAttrs>());
    case ExprKind::List: {
      json j = node("List", e);
      json& elems = j["elems"] = json::array();
      for (const auto& x : e.as<ExprList>()->elems) elems.push_back(toJson(*x));
      return j;
    }
    case ExprKind::Lambda: {
      const auto& l = *e.as<ExprLambda>();
      json j = node("Lambda", e);
      j["arg"] = l.arg.empty() ? json(nullptr) : json(l.arg);
      j["formals"] = l.formals ? formals(*l.formals) : json(nullptr);
      j["body"] = toJson(*l.body);
      return j;
    }
    case ExprKind::Call: {
      const auto& c = *e.as<ExprCall>();
      json j = node("Call", e);
      j["fn"] = toJson(*c.fn);
      json& args = j["args"] = json::array();
      for (const auto& a : c.args) args.push_back(toJson(*a));
      return j;
    }
    case ExprKind::Let: {
      const auto& l = *e.as<ExprLet>();
      json j = node("Let", e);
      j["bindings"] = attrs(*l.bindings);
      j["body"] = toJson(*l.body);
      return j;
    }
    case ExprKind::With: {
      const auto& w = *e.as<ExprWith>();
      json j = node("With", e);
      j["attrs"] = toJson(*w.attrs);
      j["body"] = toJson(*w.body);
      return j;
    }
    case ExprKind::Assert: {
      const auto& a = *e.as<ExprAssert>();
      json j = node("Assert", e);
      j["cond"] = toJson(*a.cond);
      j["body"] = toJson(*a.body);
      return j;
    }
    case ExprKind::If: {
      const auto& i = *e.as<ExprIf>();
      json j = node("If", e);
      j["cond"] = toJson(*i.cond);
      j["then"] = toJson(*i.then);
      j["else"] = toJson(*i.otherwise);
      return j;
    }
    case ExprKind::Not: {
      json j = node("Not", e);
      j["expr"] = toJson(*e.as<ExprNot>()->expr);
      return j;
    }
    case ExprKind::Neg: {
      json j = node("Neg", e);
      j["expr"] = toJson(*e.as<ExprNeg>()->expr);
      return j;
    }
    case ExprKind::BinOp: {
      const auto& b = *e.as<ExprBinOp>();
      json j = node("BinOp", e);
      j["op"] = toString(b.op);
      j["lhs"] = toJson(*b.lhs);
      j["rhs"] = toJson(*b.rhs);
      return j;
    }
    case ExprKind::CurPos:
      return node("CurPos", e);
  }
  return json(nullptr);
}

std::string dumpJson(const Expr& e, int indent) {
  return toJson(e).dump(indent, ' ', false, json::error_handler_t::replace);
}

}  // namespace runner::nix
