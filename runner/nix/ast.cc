#include "runner/nix/ast.h"

#include <type_traits>

namespace runner::nix {
namespace {

// `e` as a T, as const as `e` is.
template <class T, class E>
auto& as(E& e) {
  using Q = std::conditional_t<std::is_const_v<E>, const T, T>;
  return static_cast<Q&>(e);
}

template <class E, class F>
void attrPathChildren(const std::vector<AttrName>& path, F& f) {
  for (const auto& a : path)
    if (a.dynamic) f(Slot{"dyn"}, static_cast<E&>(*a.dynamic));
}

// E is Expr or const Expr.
template <class E, class F>
void children(E& e, F& f) {
  switch (e.kind) {
    case ExprKind::Int:
    case ExprKind::Float:
    case ExprKind::Var:
    case ExprKind::CurPos:
      return;
    case ExprKind::String:
      for (auto& p : as<ExprString>(e).parts)
        if (p.expr) f(Slot{"part"}, *p.expr);
      return;
    case ExprKind::Path:
      for (auto& p : as<ExprPath>(e).parts)
        if (p.expr) f(Slot{"part"}, *p.expr);
      return;
    case ExprKind::Select: {
      auto& s = as<ExprSelect>(e);
      f(Slot{"expr"}, *s.expr);
      attrPathChildren<E>(s.path, f);
      if (s.orDefault) f(Slot{"or"}, *s.orDefault);
      return;
    }
    case ExprKind::HasAttr: {
      auto& s = as<ExprHasAttr>(e);
      f(Slot{"expr"}, *s.expr);
      attrPathChildren<E>(s.path, f);
      return;
    }
    case ExprKind::Attrs: {
      auto& a = as<ExprAttrs>(e);
      for (size_t i = 0; i < a.inheritFrom.size(); ++i)
        f(Slot{"from", nullptr, static_cast<int>(i)}, *a.inheritFrom[i]);
      for (auto& [name, def] : a.attrs)
        if (def.value) f(Slot{"attr:", &name}, *def.value);
      for (auto& d : a.dynamicAttrs) {
        f(Slot{"dynname"}, *d.name);
        f(Slot{"dynvalue"}, *d.value);
      }
      return;
    }
    case ExprKind::List:
      for (auto& x : as<ExprList>(e).elems) f(Slot{"elem"}, *x);
      return;
    case ExprKind::Lambda: {
      auto& l = as<ExprLambda>(e);
      if (l.formals)
        for (auto& fm : l.formals->formals)
          if (fm.defaultValue) f(Slot{"formal:", &fm.name}, *fm.defaultValue);
      f(Slot{"body"}, *l.body);
      return;
    }
    case ExprKind::Call: {
      auto& c = as<ExprCall>(e);
      f(Slot{"fn"}, *c.fn);
      for (size_t i = 0; i < c.args.size(); ++i)
        f(Slot{"arg", nullptr, static_cast<int>(i)}, *c.args[i]);
      return;
    }
    case ExprKind::Let: {
      auto& l = as<ExprLet>(e);
      f(Slot{"bindings"}, static_cast<E&>(*l.bindings));
      f(Slot{"body"}, *l.body);
      return;
    }
    case ExprKind::With: {
      auto& w = as<ExprWith>(e);
      f(Slot{"attrs"}, *w.attrs);
      f(Slot{"body"}, *w.body);
      return;
    }
    case ExprKind::Assert: {
      auto& a = as<ExprAssert>(e);
      f(Slot{"cond"}, *a.cond);
      f(Slot{"body"}, *a.body);
      return;
    }
    case ExprKind::If: {
      auto& i = as<ExprIf>(e);
      f(Slot{"cond"}, *i.cond);
      f(Slot{"then"}, *i.then);
      f(Slot{"else"}, *i.otherwise);
      return;
    }
    case ExprKind::Not:
      f(Slot{"expr"}, *as<ExprNot>(e).expr);
      return;
    case ExprKind::Neg:
      f(Slot{"expr"}, *as<ExprNeg>(e).expr);
      return;
    case ExprKind::BinOp: {
      auto& b = as<ExprBinOp>(e);
      f(Slot{"lhs"}, *b.lhs);
      f(Slot{"rhs"}, *b.rhs);
      return;
    }
  }
}

std::optional<std::string> joinLiteral(const std::vector<StringPart>& parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.expr) return std::nullopt;
    out += p.text;
  }
  return out;
}

}  // namespace

std::optional<std::string> ExprString::literal() const { return joinLiteral(parts); }

std::optional<std::string> ExprPath::literal() const { return joinLiteral(parts); }

std::string Slot::text() const {
  std::string out = kind;
  if (name) out += *name;
  if (index >= 0) out += std::to_string(index);
  return out;
}

void forEachChild(const Expr& e, const std::function<void(const Slot&, const Expr&)>& f) {
  children(e, f);
}

void forEachChild(Expr& e, const std::function<void(const Slot&, Expr&)>& f) { children(e, f); }

const Formal* Formals::find(const std::string& name) const {
  for (const auto& f : formals)
    if (f.name == name) return &f;
  return nullptr;
}

const char* toString(BinOp op) {
  switch (op) {
    case BinOp::Eq:
      return "==";
    case BinOp::NEq:
      return "!=";
    case BinOp::Lt:
      return "<";
    case BinOp::Le:
      return "<=";
    case BinOp::Gt:
      return ">";
    case BinOp::Ge:
      return ">=";
    case BinOp::And:
      return "&&";
    case BinOp::Or:
      return "||";
    case BinOp::Impl:
      return "->";
    case BinOp::Update:
      return "//";
    case BinOp::Add:
      return "+";
    case BinOp::Sub:
      return "-";
    case BinOp::Mul:
      return "*";
    case BinOp::Div:
      return "/";
    case BinOp::Concat:
      return "++";
  }
  return "?";
}

}  // namespace runner::nix
