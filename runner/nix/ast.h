// The Nix abstract syntax tree produced by runner/nix/parser.h (issue: the static planner).
//
// Close to Nix's own (nixexpr.hh) so that `nix-instantiate --parse` can serve as an oracle,
// with two differences that serve static analysis: paths keep the text they were written
// with (Nix makes them absolute at parse time), and string/path interpolations keep their
// parts. Nested attribute paths (`a.b.c = 1;`) are desugared into nested attribute sets and
// merged as Nix merges them. Every variable is resolved to the scope that binds it, which is
// also how undefined variables are rejected at parse time.
//
// Ownership: a node owns its children (unique_ptr). Raw pointers (`binder`) point into the
// same tree and live as long as its root.
//
// Shapes worth knowing (all as Nix 2.8 builds them):
// * `a.b.c = v;` becomes attrs["a"] = ExprAttrs{ "b" = ExprAttrs{ "c" = v } }; later
//   `a.d = w;` or `a = { d = w; };` merge into the same nested ExprAttrs. The nested sets
//   carry the position of their own name. Nothing marks them as desugared.
// * `inherit x;` is AttrDef{Inherited, value = ExprVar x resolved in the *enclosing* scope};
//   `inherit (e) x y;` is one ExprAttrs::inheritFrom entry plus AttrDefs{InheritedFrom,
//   fromIndex} for x and y (value null), meaning `x = e.x`. In `rec { }` and `let` the
//   `e` is resolved inside the set, as in Nix.
// * `let { a = 1; body = a; }` is ExprSelect{ expr = rec ExprAttrs, path = ["body"] }.
// * `f or` (Nix's old `or` function) is ExprCall{ f, [ExprVar "or"] }.
// * Calls are flattened like Nix: `f a b` and `(f a) b` are both ExprCall{ f, [a, b] }.
// * Strings: literal pieces of an indented string are kept as Nix cuts them, so
//   `''a''$b''` has three literal parts "a", "$", "b"; use literal() for the value.
// * `<nixpkgs/lib>` is ExprPath{Search, "nixpkgs/lib"}; `-x` is ExprNeg; `a <= b` is
//   ExprBinOp{Le} (Nix desugars these to calls; we keep them).
// * A dynamic attribute name that is a plain string literal (`"a"`, `${"a"}`) is static.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace runner::nix {

struct Pos {
  uint32_t line = 0;  // 1-based
  uint32_t col = 0;   // 1-based, in bytes
};

enum class ExprKind {
  Int,
  Float,
  String,  // also URIs (`uri` flag) and indented strings
  Path,
  Var,
  Select,
  HasAttr,
  Attrs,  // attribute sets, `rec` sets, and the bindings of `let`
  List,
  Lambda,
  Call,
  Let,
  With,
  Assert,
  If,
  Not,
  Neg,
  BinOp,
  CurPos,  // __curPos
};

struct Expr {
  explicit Expr(ExprKind k, Pos p = {}) : kind(k), pos(p) {}
  virtual ~Expr() = default;
  Expr(const Expr&) = delete;
  Expr& operator=(const Expr&) = delete;
  const ExprKind kind;
  Pos pos;

  // Checked downcast: `e.as<ExprSelect>()` returns null when the kind differs.
  template <class T>
  const T* as() const {
    return kind == T::kKind ? static_cast<const T*>(this) : nullptr;
  }
  template <class T>
  T* as() {
    return kind == T::kKind ? static_cast<T*>(this) : nullptr;
  }
};
using ExprPtr = std::unique_ptr<Expr>;

struct ExprInt : Expr {
  static constexpr ExprKind kKind = ExprKind::Int;
  explicit ExprInt(int64_t v, Pos p = {}) : Expr(kKind, p), value(v) {}
  int64_t value;
};

struct ExprFloat : Expr {
  static constexpr ExprKind kKind = ExprKind::Float;
  explicit ExprFloat(double v, Pos p = {}) : Expr(kKind, p), value(v) {}
  double value;
};

// A piece of a string or path: literal text (expr == null) or an interpolation ${expr}.
struct StringPart {
  std::string text;
  ExprPtr expr;
};

struct ExprString : Expr {
  static constexpr ExprKind kKind = ExprKind::String;
  explicit ExprString(Pos p = {}) : Expr(kKind, p) {}
  std::vector<StringPart> parts;  // escapes already processed; indentation already stripped
  bool indented = false;          // ''...''
  bool uri = false;               // an unquoted URI (http://x)
  // The value when there is no interpolation.
  std::optional<std::string> literal() const;
};

enum class PathKind {
  Relative,  // ./a, ../b, a/b (text keeps the leading ./ or ../)
  Absolute,  // /abs
  Home,      // ~/x
  Search,    // <nixpkgs/lib> (text is "nixpkgs/lib")
};

struct ExprPath : Expr {
  static constexpr ExprKind kKind = ExprKind::Path;
  explicit ExprPath(Pos p = {}) : Expr(kKind, p) {}
  PathKind pathKind = PathKind::Relative;
  std::vector<StringPart> parts;  // "./hosts/" + ${host} for ./hosts/${host}
  std::optional<std::string> literal() const;
};

// Where a variable is bound. Resolved by the parser (like Nix's bindVars).
enum class VarScope {
  Global,  // a builtin constant/function: true, null, builtins, import, map, …
  Let,     // binder: the ExprLet
  Rec,     // binder: the recursive ExprAttrs
  Arg,     // binder: the ExprLambda whose plain argument (x: …, or the @-name) it is
  Formal,  // binder: the ExprLambda whose formal ({ x, … }: …) it is
  With,    // not statically bound: binder is the innermost ExprWith
};

struct ExprVar : Expr {
  static constexpr ExprKind kKind = ExprKind::Var;
  ExprVar(std::string n, Pos p = {}) : Expr(kKind, p), name(std::move(n)) {}
  std::string name;
  VarScope scope = VarScope::Global;
  const Expr* binder = nullptr;
};

// One element of an attribute path: a static name, or a dynamic one ("${e}", "a${b}").
struct AttrName {
  std::string name;  // static name (empty when dynamic)
  ExprPtr dynamic;   // an ExprString or other expression when the name is computed
  Pos pos;           // where the element starts
  bool isStatic() const { return dynamic == nullptr; }
};

struct ExprSelect : Expr {
  static constexpr ExprKind kKind = ExprKind::Select;
  explicit ExprSelect(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr expr;
  std::vector<AttrName> path;
  ExprPtr orDefault;  // `e.a or d`; null when absent
};

struct ExprHasAttr : Expr {
  static constexpr ExprKind kKind = ExprKind::HasAttr;
  explicit ExprHasAttr(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr expr;
  std::vector<AttrName> path;
};

struct AttrDef {
  enum class Kind {
    Plain,         // name = value;
    Inherited,     // inherit name;   value is the ExprVar, resolved in the enclosing scope
    InheritedFrom  // inherit (from) name;  value is null; see `fromIndex`
  };
  Kind kind = Kind::Plain;
  ExprPtr value;
  size_t fromIndex = 0;  // InheritedFrom: index into ExprAttrs::inheritFrom
  Pos pos;               // the attribute's name (for `a.b = …`, each element's own position)
};

struct DynamicAttr {
  ExprPtr name;
  ExprPtr value;
  Pos pos;
};

struct ExprAttrs : Expr {
  static constexpr ExprKind kKind = ExprKind::Attrs;
  explicit ExprAttrs(Pos p = {}) : Expr(kKind, p) {}
  bool recursive = false;
  std::map<std::string, AttrDef> attrs;
  std::vector<DynamicAttr> dynamicAttrs;
  std::vector<ExprPtr> inheritFrom;  // the `(e)` of each `inherit (e) …;`
};

struct ExprList : Expr {
  static constexpr ExprKind kKind = ExprKind::List;
  explicit ExprList(Pos p = {}) : Expr(kKind, p) {}
  std::vector<ExprPtr> elems;
};

struct Formal {
  std::string name;
  ExprPtr defaultValue;  // null when none
  Pos pos;
};

struct Formals {
  std::vector<Formal> formals;  // in source order
  bool ellipsis = false;
  const Formal* find(const std::string& name) const;
};

struct ExprLambda : Expr {
  static constexpr ExprKind kKind = ExprKind::Lambda;
  explicit ExprLambda(Pos p = {}) : Expr(kKind, p) {}
  std::string arg;                 // x in `x: …` or `args@{ … }`; empty when none
  std::optional<Formals> formals;  // { a, b ? 1, ... }
  ExprPtr body;
};

struct ExprCall : Expr {
  static constexpr ExprKind kKind = ExprKind::Call;
  explicit ExprCall(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr fn;
  std::vector<ExprPtr> args;  // f a b c
};

struct ExprLet : Expr {
  static constexpr ExprKind kKind = ExprKind::Let;
  explicit ExprLet(Pos p = {}) : Expr(kKind, p) {}
  std::unique_ptr<ExprAttrs> bindings;
  ExprPtr body;
};

struct ExprWith : Expr {
  static constexpr ExprKind kKind = ExprKind::With;
  explicit ExprWith(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr attrs;
  ExprPtr body;
};

struct ExprAssert : Expr {
  static constexpr ExprKind kKind = ExprKind::Assert;
  explicit ExprAssert(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr cond;
  ExprPtr body;
};

struct ExprIf : Expr {
  static constexpr ExprKind kKind = ExprKind::If;
  explicit ExprIf(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr cond;
  ExprPtr then;
  ExprPtr otherwise;
};

struct ExprNot : Expr {
  static constexpr ExprKind kKind = ExprKind::Not;
  explicit ExprNot(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr expr;
};

struct ExprNeg : Expr {
  static constexpr ExprKind kKind = ExprKind::Neg;
  explicit ExprNeg(Pos p = {}) : Expr(kKind, p) {}
  ExprPtr expr;
};

enum class BinOp { Eq, NEq, Lt, Le, Gt, Ge, And, Or, Impl, Update, Add, Sub, Mul, Div, Concat };
const char* toString(BinOp op);  // "==", "//", "++", …

struct ExprBinOp : Expr {
  static constexpr ExprKind kKind = ExprKind::BinOp;
  ExprBinOp(BinOp o, Pos p = {}) : Expr(kKind, p), op(o) {}
  BinOp op;
  ExprPtr lhs;
  ExprPtr rhs;
};

struct ExprCurPos : Expr {
  static constexpr ExprKind kKind = ExprKind::CurPos;
  explicit ExprCurPos(Pos p = {}) : Expr(kKind, p) {}
};

// Which position a child occupies in its parent. Cheap to pass around; `text()` spells it
// ("lhs", "body", "arg0", "elem", "attr:<name>", "formal:<name>", …), stable across parses of
// equivalent text, so serialisations compare structurally.
struct Slot {
  const char* kind = "";              // "lhs", "attr:", "arg", …
  const std::string* name = nullptr;  // attribute or formal name
  int index = -1;                     // argument / inherit-from index
  bool isAttr() const { return name && kind[0] == 'a' && kind[1] == 't'; }
  std::string text() const;
};

// The one place that knows every node's children: calls `f(slot, child)` for each non-null
// child of `e`, in source order (Select: the expression, dynamic path elements, the `or`
// default; Attrs: inherit-from expressions, attribute values by name, then dynamic names and
// values; Lambda: formal defaults, then the body). A walk that treats some kinds specially
// (scopes, printing) handles those itself and leaves the rest to this.
void forEachChild(const Expr& e, const std::function<void(const Slot& slot, const Expr& child)>& f);
void forEachChild(Expr& e, const std::function<void(const Slot& slot, Expr& child)>& f);

}  // namespace runner::nix
