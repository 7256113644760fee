#include "runner/plan/ast_walk.h"

namespace runner::plan {

using namespace runner::nix;

namespace {

std::string attrPathText(const std::vector<AttrName>& path) {
  std::string s;
  for (const auto& a : path) s += "." + (a.isStatic() ? a.name : std::string("${}"));
  return s;
}

std::string partsText(const std::vector<StringPart>& parts) {
  std::string s;
  for (const auto& p : parts) {
    if (p.expr)
      s += "${}";
    else
      s += p.text;
    s += "|";
  }
  return s;
}

}  // namespace

std::string shallowLabel(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Int:
      return "Int(" + std::to_string(e.as<ExprInt>()->value) + ")";
    case ExprKind::Float:
      return "Float(" + std::to_string(e.as<ExprFloat>()->value) + ")";
    case ExprKind::String: {
      const auto* s = e.as<ExprString>();
      return std::string(s->uri ? "Uri(" : "String(") + partsText(s->parts) + ")";
    }
    case ExprKind::Path: {
      const auto* p = e.as<ExprPath>();
      return "Path(" + std::to_string(static_cast<int>(p->pathKind)) + ":" + partsText(p->parts) +
             ")";
    }
    case ExprKind::Var:
      return "Var(" + e.as<ExprVar>()->name + ")";
    case ExprKind::Select: {
      const auto* s = e.as<ExprSelect>();
      return "Select(" + attrPathText(s->path) + (s->orDefault ? " or" : "") + ")";
    }
    case ExprKind::HasAttr:
      return "HasAttr(" + attrPathText(e.as<ExprHasAttr>()->path) + ")";
    case ExprKind::Attrs: {
      const auto* a = e.as<ExprAttrs>();
      std::string s = a->recursive ? "RecAttrs(" : "Attrs(";
      // inherited attributes are part of the node itself
      for (const auto& [name, def] : a->attrs) {
        if (def.kind == AttrDef::Kind::Inherited) s += "inherit " + name + ";";
        if (def.kind == AttrDef::Kind::InheritedFrom)
          s += "inherit(" + std::to_string(def.fromIndex) + ") " + name + ";";
      }
      return s + ")";
    }
    case ExprKind::List:
      return "List";
    case ExprKind::Lambda: {
      const auto* l = e.as<ExprLambda>();
      std::string s = "Lambda(" + l->arg;
      if (l->formals) {
        s += "@{";
        for (const auto& f : l->formals->formals) s += f.name + (f.defaultValue ? "?" : "") + ",";
        if (l->formals->ellipsis) s += "...";
        s += "}";
      }
      return s + ")";
    }
    case ExprKind::Call:
      return "Call(" + std::to_string(e.as<ExprCall>()->args.size()) + ")";
    case ExprKind::Let:
      return "Let";
    case ExprKind::With:
      return "With";
    case ExprKind::Assert:
      return "Assert";
    case ExprKind::If:
      return "If";
    case ExprKind::Not:
      return "Not";
    case ExprKind::Neg:
      return "Neg";
    case ExprKind::BinOp:
      return std::string("BinOp(") + toString(e.as<ExprBinOp>()->op) + ")";
    case ExprKind::CurPos:
      return "CurPos";
  }
  return "?";
}

}  // namespace runner::plan
