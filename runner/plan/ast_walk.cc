#include "runner/plan/ast_walk.h"

namespace runner::plan {

using namespace runner::nix;

namespace {

void attrPathChildren(const std::vector<AttrName>& path,
                      const std::function<void(const Slot&, const Expr&)>& f) {
  for (const auto& a : path)
    if (a.dynamic) f(Slot{"dyn"}, *a.dynamic);
}

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

std::string Slot::text() const {
  std::string out = kind;
  if (name) out += *name;
  if (index >= 0) out += std::to_string(index);
  return out;
}

void forEachChild(const Expr& e, const std::function<void(const Slot&, const Expr&)>& f) {
  switch (e.kind) {
    case ExprKind::Int:
    case ExprKind::Float:
    case ExprKind::Var:
    case ExprKind::CurPos:
      return;
    case ExprKind::String:
      for (const auto& p : e.as<ExprString>()->parts)
        if (p.expr) f(Slot{"part"}, *p.expr);
      return;
    case ExprKind::Path:
      for (const auto& p : e.as<ExprPath>()->parts)
        if (p.expr) f(Slot{"part"}, *p.expr);
      return;
    case ExprKind::Select: {
      const auto* s = e.as<ExprSelect>();
      f(Slot{"expr"}, *s->expr);
      attrPathChildren(s->path, f);
      if (s->orDefault) f(Slot{"or"}, *s->orDefault);
      return;
    }
    case ExprKind::HasAttr: {
      const auto* s = e.as<ExprHasAttr>();
      f(Slot{"expr"}, *s->expr);
      attrPathChildren(s->path, f);
      return;
    }
    case ExprKind::Attrs: {
      const auto* a = e.as<ExprAttrs>();
      for (size_t i = 0; i < a->inheritFrom.size(); ++i)
        f(Slot{"from", nullptr, static_cast<int>(i)}, *a->inheritFrom[i]);
      for (const auto& [name, def] : a->attrs)
        if (def.value) f(Slot{"attr:", &name}, *def.value);
      for (const auto& d : a->dynamicAttrs) {
        f(Slot{"dynname"}, *d.name);
        f(Slot{"dynvalue"}, *d.value);
      }
      return;
    }
    case ExprKind::List:
      for (const auto& x : e.as<ExprList>()->elems) f(Slot{"elem"}, *x);
      return;
    case ExprKind::Lambda: {
      const auto* l = e.as<ExprLambda>();
      if (l->formals)
        for (const auto& fm : l->formals->formals)
          if (fm.defaultValue) f(Slot{"formal:", &fm.name}, *fm.defaultValue);
      f(Slot{"body"}, *l->body);
      return;
    }
    case ExprKind::Call: {
      const auto* c = e.as<ExprCall>();
      f(Slot{"fn"}, *c->fn);
      for (size_t i = 0; i < c->args.size(); ++i)
        f(Slot{"arg", nullptr, static_cast<int>(i)}, *c->args[i]);
      return;
    }
    case ExprKind::Let: {
      const auto* l = e.as<ExprLet>();
      f(Slot{"bindings"}, *l->bindings);
      f(Slot{"body"}, *l->body);
      return;
    }
    case ExprKind::With: {
      const auto* w = e.as<ExprWith>();
      f(Slot{"attrs"}, *w->attrs);
      f(Slot{"body"}, *w->body);
      return;
    }
    case ExprKind::Assert: {
      const auto* a = e.as<ExprAssert>();
      f(Slot{"cond"}, *a->cond);
      f(Slot{"body"}, *a->body);
      return;
    }
    case ExprKind::If: {
      const auto* i = e.as<ExprIf>();
      f(Slot{"cond"}, *i->cond);
      f(Slot{"then"}, *i->then);
      f(Slot{"else"}, *i->otherwise);
      return;
    }
    case ExprKind::Not:
      f(Slot{"expr"}, *e.as<ExprNot>()->expr);
      return;
    case ExprKind::Neg:
      f(Slot{"expr"}, *e.as<ExprNeg>()->expr);
      return;
    case ExprKind::BinOp: {
      const auto* b = e.as<ExprBinOp>();
      f(Slot{"lhs"}, *b->lhs);
      f(Slot{"rhs"}, *b->rhs);
      return;
    }
  }
}

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
