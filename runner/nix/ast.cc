#include "runner/nix/ast.h"

namespace runner::nix {
namespace {

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
