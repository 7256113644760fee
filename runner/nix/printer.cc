#include "runner/nix/printer.h"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace runner::nix {
namespace {

// The symbols Nix 2.8 creates before it parses anything (builtins, well-known attribute
// names), in the order its symbol table sorts them. Measured with nix-instantiate 2.8:
// `{ fresh, n1, n2, … }: 1` prints the pre-existing names first, in this order.
constexpr std::string_view kPreexistingSymbols[] = {
    "meta",
    "name",
    "value",
    "system",
    "__overrides",
    "outputs",
    "outputName",
    "__ignoreNulls",
    "file",
    "line",
    "column",
    "outPath",
    "drvPath",
    "type",
    "__functor",
    "__toString",
    "right",
    "wrong",
    "__structuredAttrs",
    "builder",
    "args",
    "__contentAddressed",
    "__impure",
    "outputHash",
    "outputHashAlgo",
    "outputHashMode",
    "recurseForDerivations",
    "description",
    "self",
    "startSet",
    "operator",
    "key",
    "path",
    "prefix",
    "builtins",
    "true",
    "false",
    "null",
    "__currentTime",
    "currentTime",
    "__currentSystem",
    "currentSystem",
    "__nixVersion",
    "nixVersion",
    "__storeDir",
    "storeDir",
    "__langVersion",
    "langVersion",
    "__nixPath",
    "nixPath",
    "__getFlake",
    "getFlake",
    "scopedImport",
    "import",
    "__typeOf",
    "typeOf",
    "isNull",
    "__isFunction",
    "isFunction",
    "__isInt",
    "isInt",
    "__isFloat",
    "isFloat",
    "__isString",
    "isString",
    "__isBool",
    "isBool",
    "__isPath",
    "isPath",
    "__genericClosure",
    "genericClosure",
    "abort",
    "throw",
    "__addErrorContext",
    "addErrorContext",
    "__ceil",
    "ceil",
    "__floor",
    "floor",
    "__tryEval",
    "tryEval",
    "__getEnv",
    "getEnv",
    "__seq",
    "seq",
    "__deepSeq",
    "deepSeq",
    "__trace",
    "trace",
    "derivationStrict",
    "placeholder",
    "__toPath",
    "toPath",
    "__storePath",
    "storePath",
    "__pathExists",
    "pathExists",
    "baseNameOf",
    "dirOf",
    "__readFile",
    "readFile",
    "__findFile",
    "findFile",
    "__hashFile",
    "hashFile",
    "__readDir",
    "readDir",
    "__toXML",
    "toXML",
    "__toJSON",
    "toJSON",
    "__fromJSON",
    "fromJSON",
    "__toFile",
    "toFile",
    "__filterSource",
    "filterSource",
    "__path",
    "__attrNames",
    "attrNames",
    "__attrValues",
    "attrValues",
    "__getAttr",
    "getAttr",
    "__unsafeGetAttrPos",
    "unsafeGetAttrPos",
    "__placeholder",
    "__removeAttrs",
    "__scopedImport",
    "__throw",
    "__true",
    "__hasAttr",
    "hasAttr",
    "__isAttrs",
    "isAttrs",
    "removeAttrs",
    "__listToAttrs",
    "listToAttrs",
    "__intersectAttrs",
    "intersectAttrs",
    "__catAttrs",
    "catAttrs",
    "__functionArgs",
    "functionArgs",
    "__mapAttrs",
    "mapAttrs",
    "__zipAttrsWith",
    "zipAttrsWith",
    "__isList",
    "isList",
    "__elemAt",
    "elemAt",
    "__head",
    "head",
    "__tail",
    "tail",
    "map",
    "__filter",
    "filter",
    "__elem",
    "elem",
    "__concatLists",
    "concatLists",
    "__length",
    "length",
    "__foldl'",
    "foldl'",
    "__any",
    "any",
    "__all",
    "all",
    "__genList",
    "genList",
    "__sort",
    "sort",
    "__partition",
    "partition",
    "__groupBy",
    "groupBy",
    "__concatMap",
    "concatMap",
    "__add",
    "add",
    "__sub",
    "sub",
    "__mul",
    "mul",
    "__div",
    "div",
    "__bitAnd",
    "bitAnd",
    "__bitOr",
    "bitOr",
    "__bitXor",
    "bitXor",
    "__lessThan",
    "lessThan",
    "toString",
    "__substring",
    "substring",
    "__stringLength",
    "stringLength",
    "__hashString",
    "hashString",
    "__match",
    "match",
    "__split",
    "split",
    "__concatStringsSep",
    "concatStringsSep",
    "__replaceStrings",
    "replaceStrings",
    "__parseDrvName",
    "parseDrvName",
    "__compareVersions",
    "compareVersions",
    "__splitVersion",
    "splitVersion",
    "__unsafeDiscardStringContext",
    "unsafeDiscardStringContext",
    "__hasContext",
    "hasContext",
    "__unsafeDiscardOutputDependency",
    "unsafeDiscardOutputDependency",
    "__getContext",
    "getContext",
    "__appendContext",
    "appendContext",
    "fetchMercurial",
    "fetchTree",
    "__fetchurl",
    "fetchurl",
    "fetchTarball",
    "fetchGit",
    "fromTOML",
    "derivation",
};

// Nix 2.8 quotes only this keyword when it prints an attribute name (measured).
bool isKeyword(std::string_view s) { return s == "if"; }

bool isIdentifier(std::string_view s) {
  if (s.empty()) return false;
  char c = s[0];
  if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')) return false;
  for (char d : s.substr(1))
    if (!((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9') || d == '_' ||
          d == '\'' || d == '-'))
      return false;
  return !isKeyword(s);
}

void showString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    if (c == '"' || c == '\\' || c == '$') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else {
      out += c;
    }
  }
  out += '"';
}

void showName(std::string& out, std::string_view s) {
  if (isIdentifier(s))
    out += s;
  else
    showString(out, s);
}

// Emulates the order of Nix's symbol table: the pre-existing symbols first (in their
// order), then the others in the order the Bison parser would have created them.
class SymbolOrder {
 public:
  SymbolOrder() {
    uint32_t i = 0;
    for (auto s : kPreexistingSymbols) rank_.emplace(std::string(s), i++);
    next_ = i;
  }
  uint32_t rank(const std::string& name) const {
    auto it = rank_.find(name);
    return it == rank_.end() ? UINT32_MAX : it->second;
  }
  void visit(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Var:
        sym(static_cast<const ExprVar&>(e).name);
        return;
      case ExprKind::Select: {
        const auto& s = static_cast<const ExprSelect&>(e);
        visit(*s.expr);
        names(s.path);
        if (s.orDefault) visit(*s.orDefault);
        return;
      }
      case ExprKind::HasAttr: {
        const auto& h = static_cast<const ExprHasAttr&>(e);
        visit(*h.expr);
        names(h.path);
        return;
      }
      case ExprKind::Attrs:
        attrs(static_cast<const ExprAttrs&>(e));
        return;
      case ExprKind::Lambda: {
        const auto& l = static_cast<const ExprLambda&>(e);
        if (l.formals)
          for (const auto& f : l.formals->formals) {
            if (f.defaultValue) visit(*f.defaultValue);
            sym(f.name);
          }
        visit(*l.body);
        if (!l.arg.empty()) sym(l.arg);
        return;
      }
      case ExprKind::Let: {
        const auto& l = static_cast<const ExprLet&>(e);
        attrs(*l.bindings);
        visit(*l.body);
        return;
      }
      default:  // no names of its own: its children, in source order
        forEachChild(e, [&](const Slot&, const Expr& child) { visit(child); });
        return;
    }
  }

 private:
  void sym(const std::string& name) {
    if (!rank_.count(name)) rank_.emplace(name, next_++);
  }
  void names(const std::vector<AttrName>& path) {
    for (const auto& a : path) {
      if (a.dynamic)
        visit(*a.dynamic);
      else
        sym(a.name);
    }
  }
  static bool before(Pos a, Pos b) { return a.line != b.line ? a.line < b.line : a.col < b.col; }
  void attrs(const ExprAttrs& a) {
    // Visit the bindings in source order (the map lost it; positions keep it).
    struct Item {
      Pos pos;
      const std::string* name;
      const AttrDef* def;
      const DynamicAttr* dyn;
    };
    std::vector<Item> items;
    items.reserve(a.attrs.size() + a.dynamicAttrs.size());
    for (const auto& [name, def] : a.attrs) items.push_back({def.pos, &name, &def, nullptr});
    for (const auto& d : a.dynamicAttrs) items.push_back({d.pos, nullptr, nullptr, &d});
    std::stable_sort(items.begin(), items.end(),
                     [](const Item& x, const Item& y) { return before(x.pos, y.pos); });
    std::vector<bool> fromSeen(a.inheritFrom.size(), false);
    for (const auto& it : items) {
      if (it.dyn) {
        visit(*it.dyn->name);
        visit(*it.dyn->value);
        continue;
      }
      if (it.def->kind == AttrDef::Kind::InheritedFrom) {
        if (!fromSeen[it.def->fromIndex]) {
          fromSeen[it.def->fromIndex] = true;
          visit(*a.inheritFrom[it.def->fromIndex]);
        }
        sym(*it.name);
        continue;
      }
      sym(*it.name);
      if (it.def->kind == AttrDef::Kind::Plain) visit(*it.def->value);
    }
  }

  std::unordered_map<std::string, uint32_t> rank_;
  uint32_t next_ = 0;
};

class Printer {
 public:
  Printer(const NixPrintOptions& o, const SymbolOrder& order) : o_(o), order_(order) {}

  void show(const Expr& e) {
    switch (e.kind) {
      case ExprKind::Int:
        out += std::to_string(static_cast<const ExprInt&>(e).value);
        return;
      case ExprKind::Float: {
        char buf[64];
        std::snprintf(buf, sizeof buf, "%g", static_cast<const ExprFloat&>(e).value);
        out += buf;
        return;
      }
      case ExprKind::String:
        showStringExpr(static_cast<const ExprString&>(e));
        return;
      case ExprKind::Path:
        showPath(static_cast<const ExprPath&>(e));
        return;
      case ExprKind::Var:
        out += static_cast<const ExprVar&>(e).name;
        return;
      case ExprKind::Select: {
        const auto& s = static_cast<const ExprSelect&>(e);
        out += '(';
        show(*s.expr);
        out += ").";
        showAttrPath(s.path);
        if (s.orDefault) {
          out += " or (";
          show(*s.orDefault);
          out += ')';
        }
        return;
      }
      case ExprKind::HasAttr: {
        const auto& h = static_cast<const ExprHasAttr&>(e);
        out += "((";
        show(*h.expr);
        out += ") ? ";
        showAttrPath(h.path);
        out += ')';
        return;
      }
      case ExprKind::Attrs:
        showAttrs(static_cast<const ExprAttrs&>(e));
        return;
      case ExprKind::List:
        out += "[ ";
        for (const auto& x : static_cast<const ExprList&>(e).elems) {
          out += '(';
          show(*x);
          out += ") ";
        }
        out += ']';
        return;
      case ExprKind::Lambda:
        showLambda(static_cast<const ExprLambda&>(e));
        return;
      case ExprKind::Call: {
        const auto& c = static_cast<const ExprCall&>(e);
        out += '(';
        showCallHead(*c.fn);
        for (const auto& a : c.args) {
          out += ' ';
          show(*a);
        }
        out += ')';
        return;
      }
      case ExprKind::Let: {
        const auto& l = static_cast<const ExprLet&>(e);
        out += "(let ";
        std::vector<const std::pair<const std::string, AttrDef>*> defs;
        for (const auto& d : l.bindings->attrs) defs.push_back(&d);
        if (!o_.sortByName)
          std::stable_sort(defs.begin(), defs.end(), [&](auto* a, auto* b) {
            return order_.rank(a->first) < order_.rank(b->first);
          });
        for (const auto* d : defs) {
          if (d->second.kind == AttrDef::Kind::Inherited) {
            out += "inherit ";
            showName(out, d->first);
            out += "; ";
          } else {
            showName(out, d->first);
            out += " = ";
            showAttrValue(*l.bindings, d->first, d->second);
            out += "; ";
          }
        }
        out += "in ";
        show(*l.body);
        out += ')';
        return;
      }
      case ExprKind::With: {
        const auto& w = static_cast<const ExprWith&>(e);
        out += "(with ";
        show(*w.attrs);
        out += "; ";
        show(*w.body);
        out += ')';
        return;
      }
      case ExprKind::Assert: {
        const auto& a = static_cast<const ExprAssert&>(e);
        out += "assert ";
        show(*a.cond);
        out += "; ";
        show(*a.body);
        return;
      }
      case ExprKind::If: {
        const auto& i = static_cast<const ExprIf&>(e);
        out += "(if ";
        show(*i.cond);
        out += " then ";
        show(*i.then);
        out += " else ";
        show(*i.otherwise);
        out += ')';
        return;
      }
      case ExprKind::Not:
        out += "(! ";
        show(*static_cast<const ExprNot&>(e).expr);
        out += ')';
        return;
      case ExprKind::Neg:
      case ExprKind::BinOp:
        showOp(e);
        return;
      case ExprKind::CurPos:
        out += "__curPos";
        return;
    }
  }

  std::string out;

 private:
  // Nodes that Nix represents as a call (so `(a - b) c` prints as `(__sub a b c)`).
  static bool isNixCall(const Expr& e) {
    if (e.kind == ExprKind::Call || e.kind == ExprKind::Neg) return true;
    if (const auto* p = e.as<ExprPath>()) return p->pathKind == PathKind::Search;
    if (const auto* b = e.as<ExprBinOp>())
      return b->op == BinOp::Sub || b->op == BinOp::Mul || b->op == BinOp::Div ||
             b->op == BinOp::Lt || b->op == BinOp::Gt;
    return false;
  }

  // Prints a call's function; when Nix would have merged it into one call, prints its
  // inside without the parentheses.
  void showCallHead(const Expr& fn) {
    if (!isNixCall(fn)) {
      show(fn);
      return;
    }
    std::string inner;
    std::swap(inner, out);
    show(fn);
    std::swap(inner, out);
    // inner is "(...)": drop the outer parentheses.
    out.append(inner, 1, inner.size() - 2);
  }

  void showOp(const Expr& e) {
    if (const auto* n = e.as<ExprNeg>()) {
      out += "(__sub 0 ";
      show(*n->expr);
      out += ')';
      return;
    }
    const auto& b = static_cast<const ExprBinOp&>(e);
    auto call = [&](const char* fn, const Expr& x, const Expr& y) {
      out += '(';
      out += fn;
      out += ' ';
      show(x);
      out += ' ';
      show(y);
      out += ')';
    };
    switch (b.op) {
      case BinOp::Sub:
        return call("__sub", *b.lhs, *b.rhs);
      case BinOp::Mul:
        return call("__mul", *b.lhs, *b.rhs);
      case BinOp::Div:
        return call("__div", *b.lhs, *b.rhs);
      case BinOp::Lt:
        return call("__lessThan", *b.lhs, *b.rhs);
      case BinOp::Gt:
        return call("__lessThan", *b.rhs, *b.lhs);
      case BinOp::Le:
        out += "(! ";
        call("__lessThan", *b.rhs, *b.lhs);
        out += ')';
        return;
      case BinOp::Ge:
        out += "(! ";
        call("__lessThan", *b.lhs, *b.rhs);
        out += ')';
        return;
      default:
        out += '(';
        show(*b.lhs);
        out += ' ';
        out += toString(b.op);
        out += ' ';
        show(*b.rhs);
        out += ')';
        return;
    }
  }

  void showParts(const std::vector<StringPart>& parts, size_t from) {
    for (size_t i = from; i < parts.size(); ++i) {
      if (i > from) out += " + ";
      if (parts[i].expr)
        show(*parts[i].expr);
      else
        showString(out, parts[i].text);
    }
  }

  void showStringExpr(const ExprString& s) {
    if (s.parts.empty()) {
      out += "\"\"";
      return;
    }
    if (s.parts.size() == 1 && !s.parts[0].expr) {
      showString(out, s.parts[0].text);
      return;
    }
    out += '(';
    showParts(s.parts, 0);
    out += ')';
  }

  void showPath(const ExprPath& p) {
    const std::string& first = p.parts[0].text;
    std::string text;
    switch (p.pathKind) {
      case PathKind::Search:
        out += "(__findFile __nixPath ";
        showString(out, first);
        out += ')';
        return;
      case PathKind::Home:
        text = o_.home + first.substr(1);
        break;
      case PathKind::Relative:
      case PathKind::Absolute:
        text = nixAbsPath(first, o_.basePath);
        if (first.size() > 1 && first.back() == '/') text += '/';
        break;
    }
    if (p.parts.size() == 1) {
      out += text;
      return;
    }
    out += '(';
    out += text;
    out += " + ";
    showParts(p.parts, 1);
    out += ')';
  }

  void showAttrPath(const std::vector<AttrName>& path) {
    for (size_t i = 0; i < path.size(); ++i) {
      if (i) out += '.';
      if (path[i].dynamic) {
        out += "\"${";
        show(*path[i].dynamic);
        out += "}\"";
      } else {
        showName(out, path[i].name);
      }
    }
  }

  void showAttrValue(const ExprAttrs& a, const std::string& name, const AttrDef& d) {
    if (d.kind == AttrDef::Kind::InheritedFrom) {
      out += '(';
      show(*a.inheritFrom[d.fromIndex]);
      out += ").";
      showName(out, name);
    } else {
      show(*d.value);
    }
  }

  void showAttrs(const ExprAttrs& a) {
    if (a.recursive) out += "rec ";
    out += "{ ";
    for (const auto& [name, d] : a.attrs) {
      if (d.kind == AttrDef::Kind::Inherited) {
        out += "inherit ";
        showName(out, name);
        out += " ; ";
      } else {
        showName(out, name);
        out += " = ";
        showAttrValue(a, name, d);
        out += "; ";
      }
    }
    for (const auto& d : a.dynamicAttrs) {
      out += "\"${";
      show(*d.name);
      out += "}\" = ";
      show(*d.value);
      out += "; ";
    }
    out += '}';
  }

  void showLambda(const ExprLambda& l) {
    out += '(';
    if (l.formals) {
      out += "{ ";
      std::vector<const Formal*> fs;
      for (const auto& f : l.formals->formals) fs.push_back(&f);
      std::stable_sort(fs.begin(), fs.end(), [&](const Formal* a, const Formal* b) {
        if (o_.sortByName) return a->name < b->name;
        return order_.rank(a->name) < order_.rank(b->name);
      });
      bool first = true;
      for (const Formal* f : fs) {
        if (!first) out += ", ";
        first = false;
        out += f->name;
        if (f->defaultValue) {
          out += " ? ";
          show(*f->defaultValue);
        }
      }
      if (l.formals->ellipsis) {
        if (!first) out += ", ";
        out += "...";
      }
      out += " }";
      if (!l.arg.empty()) out += " @ ";
    }
    out += l.arg;
    out += ": ";
    show(*l.body);
    out += ')';
  }

  const NixPrintOptions& o_;
  const SymbolOrder& order_;
};

}  // namespace

std::string nixAbsPath(std::string_view path, std::string_view base) {
  std::string full;
  if (!path.empty() && path[0] == '/') {
    full = std::string(path);
  } else {
    full = std::string(base);
    full += '/';
    full += path;
  }
  // canonPath: split on '/', drop "" and ".", ".." pops.
  std::vector<std::string_view> segs;
  std::string_view rest = full;
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view seg = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (seg.empty() || seg == ".") continue;
    if (seg == "..") {
      if (!segs.empty()) segs.pop_back();
      continue;
    }
    segs.push_back(seg);
  }
  std::string out;
  for (auto s : segs) {
    out += '/';
    out += s;
  }
  return out.empty() ? "/" : out;
}

std::string printNixParse(const Expr& e, const NixPrintOptions& options) {
  SymbolOrder order;
  order.visit(e);
  Printer p(options, order);
  p.show(e);
  return std::move(p.out);
}

}  // namespace runner::nix
