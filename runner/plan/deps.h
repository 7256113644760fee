// What a host's configuration depends on (DESIGN.md §5.3): the repository files reachable
// from its entry modules through path literals (import, imports, callPackage, readFile,
// "${./x}", directory literals meaning everything below), paths interpolated with the host
// name resolved per host, the flake inputs it reaches (inputs.X, self.inputs.X, arguments bound
// to inputs through specialArgs), and what the analyser could not follow (dynamic).
//
// Module files are summarised once (a syntactic pass that keeps the few nodes whose meaning
// depends on the host: interpolations, uses of module arguments), then each host evaluates
// only those nodes in its own context.
#pragma once

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "runner/plan/evaluator.h"

namespace runner::plan {

struct HostDeps {
  std::set<std::string> files;  // exact repo paths
  std::set<std::string> dirs;   // "dir/": everything below; "" = the whole repository
  std::set<PathRef> patterns;   // prefix*suffix
  // "dir/" -> regular expressions: the files below dir whose path relative to it, and every
  // directory on the way, match one of them (lib.sourceByRegex)
  std::map<std::string, std::vector<std::string>> filtered;
  std::set<std::string> inputs;           // root inputs reached
  std::vector<std::string> dynamic;       // "file:line: what the analyser met"
  std::vector<std::string> selfRevision;  // "file:line" where self.rev or self itself is used
  std::set<std::string> moduleFiles;      // .nix files followed
  // exact files whose text counts, not only their code (read, put in the store, …); a module
  // file outside it is reached only as imported code, so an edit of its comments is none
  std::set<std::string> textRefs;
  Trace trace;           // the flake-level code the host's definition used
  std::string hostName;  // the resolved networking.hostName ("" unknown)

  // True when the change of `path` can change this host.
  bool dependsOnFile(const std::string& path) const;
  // True when `path` is a dependency only as Nix code that is imported (not read as text, not
  // inside a directory or pattern the host depends on): only its syntax tree counts.
  bool dependsOnlyAsCode(const std::string& path) const;
};

class DepScanner {
 public:
  explicit DepScanner(Evaluator& ev) : ev_(ev) {}
  // Computes the host's dependencies. Never throws for what it cannot follow (that is
  // reported in `dynamic`); throws only on internal errors.
  HostDeps scan(const HostDef& host, bool hostNameDefaultsToName);

  // Dependencies of an expression evaluated in `env` (used by the evaluator for the
  // arguments of calls it does not model).
  Carried scanExpr(const nix::Expr& e, const EnvPtr& env);

  struct Interesting {
    const nix::Expr* node;
    std::vector<const nix::Expr*> chain;  // binders from the summary root down to the node
    // DataSelect: `(import P).a.b`, or `x.a.b` with `x = import P` bound by a let whose every
    // use selects from it: the file is data, not a module (issue 12 cause 2).
    // Overlays: the value of `nixpkgs.overlays`, whose attributes are charged by name
    // (issue 12 cause 3).
    enum class Kind { Value, FileRef, HostNameDef, DataSelect, Overlays } kind;
    // The node is used as a value in the configuration (an attribute's or list element's
    // value), so a whole `self` there puts the flake's source into the system.
    bool valueUse = false;
    const nix::Expr* importedFile = nullptr;  // DataSelect: P
    // A variable passed to a function or an operator (`lib.mapAttrs f inputs`,
    // `attrValues inputs`): when it is the flake's inputs, every input is read.
    bool wholeUse = false;
  };
  struct Summary {
    std::vector<std::string> staticPaths;   // resolved literal paths (but code paths)
    std::vector<std::string> codePaths;     // imported as code (imports = [ … ], import P)
    std::vector<std::string> outsidePaths;  // literal paths leaving the repository
    std::vector<Interesting> nodes;
    std::vector<std::string> dynamic;
    // The names of the module's `pkgs` this code refers to (`pkgs.N`, `with pkgs; N`,
    // `inherit (pkgs) N`, the formals of a file's function: callPackage arguments), and where
    // it uses `pkgs` in a way that may reach any name ("" when it does not).
    std::set<std::string> pkgsNames;
    std::string pkgsWhole;
    // `lib.sourceByRegex ./dir [ "re" … ]` with literal arguments: dir -> regexes
    std::vector<std::pair<std::string, std::vector<std::string>>> filtered;
  };

 private:
  struct HostCtx;
  const Summary& summarize(const nix::Expr& root, const std::string& file);
  void scanModuleValue(const ValuePtr& v, HostCtx& ctx, int depth);
  void scanFile(const std::string& path, HostCtx& ctx);
  void scanRoot(const nix::Expr& root, const EnvPtr& startEnv, bool bindModuleArgs,
                const std::string& file, HostCtx& ctx);
  // `asCode`: the path is imported as Nix code, its text does not count otherwise.
  void addPath(const PathRef& p, HostCtx& ctx, bool asCode = false);
  void addValueDeps(const ValuePtr& v, const nix::Expr* at, const std::string& file, HostCtx& ctx,
                    int depth, bool valueUse = true);
  EnvPtr buildEnv(const EnvPtr& start, const std::vector<const nix::Expr*>& chain,
                  bool bindModuleArgs, HostCtx& ctx);
  ThunkPtr moduleArg(const std::string& name, HostCtx& ctx);
  // Overlays of `nixpkgs.overlays`: each understood overlay is kept by attribute name and
  // charged when the host refers to a name (chargeOverlays); others are charged whole.
  void addOverlays(const ValuePtr& v, const nix::Expr* at, const std::string& file, HostCtx& ctx);
  bool addOverlay(const ValuePtr& v, HostCtx& ctx);
  void chargeOverlays(HostCtx& ctx);

  Evaluator& ev_;
  std::map<const nix::Expr*, Summary> summaries_;
};

}  // namespace runner::plan
