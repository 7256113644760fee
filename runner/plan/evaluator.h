// A small abstract evaluator for the flake-level Nix code of an infra repository: flake.nix
// and the files it imports to build `nixosConfigurations` (flake-parts modules, host lists,
// Clan and Colmena definitions). It evaluates lazily, like Nix, over abstract values: what it
// cannot know (a config option, a package, a computed path) becomes Unknown instead of an
// error, and what it knows precisely (host names from genAttrs/readDir/mapAttrs, module lists,
// specialArgs, self.nixosModules.<name>) drives host discovery.
//
// Every thunk records a Trace: the AST nodes it evaluated and what it read from the tree
// (readDir, readFile, pathExists). A host's trace is the part of the flake-level code its
// configuration came from, so an edit to flake.nix that touches only devShells leaves the
// hosts' traces unchanged. Key computations (which hosts exist) are not recorded: adding a
// host to a list changes that host's existence, not the other hosts.
//
// The builtins it models are one table (builtins.cc); the frameworks that define hosts
// (flake-parts, lite-config, adios-flake, Clan, Colmena) are modelled in frameworks.cc.
//
// Not thread-safe; one Evaluator per commit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runner/nix/ast.h"
#include "runner/plan/source_tree.h"

namespace runner::plan {

struct Value;
struct Env;
struct Thunk;
using ValuePtr = std::shared_ptr<const Value>;
using EnvPtr = std::shared_ptr<Env>;
using ThunkPtr = std::shared_ptr<Thunk>;

// A file-system reference: an exact repo path, or a pattern prefix*suffix.
struct PathRef {
  bool exact = true;
  std::string path;    // exact: the repo-relative path ("" = root)
  std::string prefix;  // pattern: repo-relative text before the unknown part
  std::string suffix;  // pattern: text after it
  bool operator<(const PathRef& o) const {
    return std::tie(exact, path, prefix, suffix) < std::tie(o.exact, o.path, o.prefix, o.suffix);
  }
  bool operator==(const PathRef& o) const {
    return exact == o.exact && path == o.path && prefix == o.prefix && suffix == o.suffix;
  }
  std::string describe() const { return exact ? path : prefix + "*" + suffix; }
};

// What an evaluation depended on.
struct Trace {
  std::unordered_set<const nix::Expr*> nodes;
  std::set<std::string> externals;  // "readDir:hosts=a/d,b/f", "readFile:x=<oid>", "exists:x=1"
  std::set<std::string> inputs;     // root inputs whose values were used
  void merge(const Trace& o);
};

// Dependencies carried by a value we could not evaluate (a package built by callPackage from
// paths, …): whatever its arguments referred to.
struct Carried {
  std::set<PathRef> paths;
  std::set<std::string> inputs;
  std::vector<std::string> dynamic;  // "file:line: what"
  bool selfWhole = false;
  bool empty() const { return paths.empty() && inputs.empty() && dynamic.empty() && !selfWhole; }
  void merge(const Carried& o);
};

enum class VKind {
  Unknown,
  Null,
  Bool,
  Int,
  Float,
  String,
  Path,
  List,
  Attrs,
  Lambda,
  Builtin,
  Input,
  Self,
  NixosSystem,
};

struct Value {
  VKind kind = VKind::Unknown;
  std::string reason;  // Unknown: why; for messages
  Carried carried;     // Unknown: dependencies of what produced it
  bool b = false;
  int64_t i = 0;
  // String: known text, or unknown (nullopt). A string built from a path or `self`
  // ("${self}/hosts/x") also has `path`.
  std::optional<std::string> text;
  std::optional<PathRef> path;  // Path values always have it (unless outside the repo)
  std::string strPrefix;        // String with unknown text: the known text before/after it
  // String from readFile: the file's content, for fromJSON (`text` stays unknown: the
  // planner does not compute with file contents otherwise)
  std::shared_ptr<const std::string> fileText;
  std::string strSuffix;
  bool outsideRepo = false;   // absolute, ~, <search> paths
  bool searchPath = false;    // <nixpkgs>: pure flake evaluation refuses it
  bool selfRevision = false;  // derived from self.rev and friends
  // List and Attrs
  std::vector<ThunkPtr> elems;
  std::map<std::string, ThunkPtr> attrs;
  bool open = false;  // may contain entries we do not know
  // Attrs: values whose names could not be computed (selecting an unknown name may give any
  // of them), and why entries may be missing altogether ("" when that cannot hide files).
  std::vector<ThunkPtr> unknownEntries;
  std::string openReason;
  // Where an attrset or lambda came from (for scanning inline modules)
  const nix::Expr* origin = nullptr;
  EnvPtr originEnv;
  // Lambda
  const nix::ExprLambda* lambda = nullptr;
  // Builtin
  std::string name;
  std::vector<ThunkPtr> args;
  // Input: an input or something selected from it
  std::string input;
  std::vector<std::string> inputPath;
  // NixosSystem
  ThunkPtr modules;      // a list
  ThunkPtr specialArgs;  // an attrset (may be null)
  std::string libInput;  // the input that provides nixosSystem
  // Clan: files bound to the machine by convention (hardware facts, vars, sops secrets): an
  // exact path ending in '/' is everything below it, another exact path that file, a pattern
  // every path it matches (a secret's membership links, at either commit).
  std::vector<PathRef> conventionPaths;
  // The framework sets networking.hostName to the host's attribute name (Clan, lite-config;
  // not Colmena, whose hive passes the name as an argument only).
  bool hostNameIsName = false;
};

struct Env {
  const nix::Expr* binder = nullptr;  // the Let/Attrs/Lambda/With this frame belongs to
  std::map<std::string, ThunkPtr> vars;
  ThunkPtr withAttrs;  // With frames
  EnvPtr parent;
  std::shared_ptr<const ParsedFile> file;  // keeps the AST alive; paths resolve against it
};

struct Thunk {
  const nix::Expr* expr = nullptr;
  EnvPtr env;
  std::function<ValuePtr()> compute;  // when not an expression
  ValuePtr value;
  Trace trace;
  bool forcing = false;
};

// Bounds on one Evaluator's work, so that hostile Nix (a fork's flake.nix) cannot make planning
// run forever or take the daemon's memory: exponential recursion through conditionals the
// planner cannot decide, strings or lists doubled in a loop. One unit of work is an evaluation
// step, a thunk or environment made, an element of a list or attribute set built by copying,
// or 16 bytes of string built. Past `maxWork` evaluation throws PlanError; `maxDepth` nested
// evaluations give an Unknown ("evaluation too deep"), which marks what used it dynamic.
struct EvalLimits {
  uint64_t maxWork = 20'000'000;
  size_t maxStringBytes = 1 << 20;  // a longer string: PlanError
  int maxDepth = 300;
};

// A host as discovered from the flake outputs.
struct HostDef {
  std::string name;
  ThunkPtr value;   // evaluates to a NixosSystem (or something else: then it is dynamic)
  std::string via;  // "nixosConfigurations", "colmena", "clan machines/"
};

class Evaluator {
 public:
  // `inputs`: the root inputs' names (from flake.lock, else flake.nix).
  Evaluator(SourceTree& tree, std::set<std::string> inputs, EvalLimits limits = {});

  // Evaluates flake.nix; throws InputError when it is missing or does not parse.
  void loadFlake();
  // The hosts the flake defines, sorted by name. Computed without recording traces.
  std::vector<HostDef> hosts();
  // The trace of the code that produces the set of hosts (outputs → nixosConfigurations),
  // without the hosts' own values. Part of every host's fingerprint.
  Trace hostSetTrace();
  // Warnings met while discovering (e.g. "nixosConfigurations could not be evaluated").
  const std::vector<std::string>& warnings() const { return warnings_; }
  // After hosts(): why discovery failed or may have missed hosts ("" when it found every host
  // the outputs define). Soft gaps (options of flake modules the planner does not model)
  // count only when no host was found at all.
  const std::string& discoveryError() const { return discoveryError_; }
  // The work done so far (see EvalLimits).
  uint64_t work() const { return work_; }
  // Counts `units` of work; throws PlanError past the limit. Walks over values outside the
  // evaluator (DepScanner) count their steps here too: forcing a value already computed is
  // otherwise free, and a walk over a self-referencing list can branch without end.
  void charge(uint64_t units);

  // Owns the evaluation's memory: thunks and environments made through it (newThunk, newEnv,
  // thunk, ready) have their links cut when it is destroyed, which frees their cycles. A
  // ThunkPtr or EnvPtr kept longer than the Evaluator is empty then.
  ~Evaluator();
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;
  ThunkPtr newThunk();
  EnvPtr newEnv();

  ValuePtr force(const ThunkPtr& t);
  ValuePtr eval(const nix::Expr& e, const EnvPtr& env);
  ValuePtr apply(const ValuePtr& fn, const ThunkPtr& arg, const nix::Expr* site, const EnvPtr& env);
  // The attribute `name` of a value, or null when it has none (Unknown values: an Unknown).
  ThunkPtr select(const ValuePtr& v, const std::string& name);

  ThunkPtr thunk(const nix::Expr& e, const EnvPtr& env);
  // The dependencies a value can carry into a configuration: its paths, inputs, the code of
  // inline modules (scanned), depth-limited into attribute sets and lists.
  Carried valueCarried(const ValuePtr& v, int depth = 0);
  ThunkPtr ready(ValuePtr v);
  static ValuePtr unknown(std::string reason, Carried carried = {});
  static ValuePtr str(std::string s);
  static ValuePtr pathValue(PathRef p);

  // The frame a `let` creates (its bindings, lazily), for evaluating code inside it.
  EnvPtr letFrame(const nix::ExprLet& l, const EnvPtr& env);
  // The env for code at the top of `file` (globals only).
  EnvPtr fileEnv(const std::shared_ptr<const ParsedFile>& file);
  // Deep-touch: record every node below `e` in the current trace.
  void touchDeep(const nix::Expr& e);
  // Records `e` alone (not its children) in the current trace.
  void touch(const nix::Expr& e);
  void recordExternal(std::string s);
  void recordInput(const std::string& name);

  // Starts recording into `t` (nested); merges into the enclosing recording on stop.
  void pushTrace(Trace* t);
  void popTrace(bool merge = true);
  // Runs `fn` without recording into the current trace.
  template <class F>
  auto unrecorded(F&& fn) {
    Trace scratch;
    pushTrace(&scratch);
    struct Pop {
      Evaluator* e;
      ~Pop() { e->popTrace(false); }
    } pop{this};
    return fn();
  }

  SourceTree& tree() { return tree_; }
  const std::set<std::string>& inputNames() const { return inputs_; }
  ThunkPtr selfThunk() const { return self_; }
  ThunkPtr inputsThunk() const { return inputsAttrs_; }
  // Files imported while evaluating (flake.nix included): "flake-level" files.
  const std::set<std::string>& evaluatedFiles() const { return evaluatedFiles_; }
  // Imports and evaluates a Nix file of the tree (cached per path).
  ThunkPtr importFile(const std::string& path);

  // A builtin (or nixpkgs lib function) the evaluator models: its name, how many arguments it
  // takes before it runs, whether `lib.<name>` reached through an input means it too (false
  // for the ones whose result is never more than "some value"), and its implementation.
  using BuiltinFn = ValuePtr (Evaluator::*)(const std::string& name,
                                            const std::vector<ThunkPtr>& args,
                                            const nix::Expr* site, const EnvPtr& env);
  struct Builtin {
    std::string_view name;
    int arity;
    bool viaLib;
    BuiltinFn fn;
  };
  // Every modelled builtin, once each. Thread-safe.
  static std::span<const Builtin> builtins();
  // The row of `name`, or null when the evaluator does not model it. Thread-safe.
  static const Builtin* findBuiltin(std::string_view name);

  // Scanning support (deps.cc): deps of the arguments of an unmodelled call.
  std::function<Carried(const nix::Expr&, const EnvPtr&)> scanExpr;

 private:
  std::vector<HostDef> discover();
  ValuePtr evalUncached(const nix::Expr& e, const EnvPtr& env);
  ValuePtr evalString(const std::vector<nix::StringPart>& parts, const EnvPtr& env, bool isPath,
                      const std::string& baseDir);
  ValuePtr lookupVar(const nix::ExprVar& v, const EnvPtr& env);
  ValuePtr globalVar(const std::string& name);
  ValuePtr fromJson(const nlohmann::json& j, const Carried& from, int depth = 0);
  // builtins.cc (and frameworks.cc for the framework entry points): one member per builtin
  // or family of builtins, all of the BuiltinFn type
  ValuePtr builtinImport(const std::string& name, const std::vector<ThunkPtr>& args,
                         const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinMap(const std::string& name, const std::vector<ThunkPtr>& args,
                      const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinFilter(const std::string& name, const std::vector<ThunkPtr>& args,
                         const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinAttrNames(const std::string& name, const std::vector<ThunkPtr>& args,
                            const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinListToAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                              const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinMapAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                           const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinMapAttrsPrime(const std::string& name, const std::vector<ThunkPtr>& args,
                                const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinNameValuePair(const std::string& name, const std::vector<ThunkPtr>& args,
                                const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinGenAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                           const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinFilterAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                              const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinRemoveAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                              const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinHasAttr(const std::string& name, const std::vector<ThunkPtr>& args,
                          const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinReadDir(const std::string& name, const std::vector<ThunkPtr>& args,
                          const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinReadFile(const std::string& name, const std::vector<ThunkPtr>& args,
                           const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinFromJson(const std::string& name, const std::vector<ThunkPtr>& args,
                           const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinPathExists(const std::string& name, const std::vector<ThunkPtr>& args,
                             const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinListFilesRecursive(const std::string& name, const std::vector<ThunkPtr>& args,
                                     const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinToString(const std::string& name, const std::vector<ThunkPtr>& args,
                           const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinBaseNameOf(const std::string& name, const std::vector<ThunkPtr>& args,
                             const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinConcatMap(const std::string& name, const std::vector<ThunkPtr>& args,
                            const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinConcatLists(const std::string& name, const std::vector<ThunkPtr>& args,
                              const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinOptional(const std::string& name, const std::vector<ThunkPtr>& args,
                           const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinOptionalAttrs(const std::string& name, const std::vector<ThunkPtr>& args,
                                const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinMatch(const std::string& name, const std::vector<ThunkPtr>& args,
                        const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinMkIf(const std::string& name, const std::vector<ThunkPtr>& args,
                       const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinPassThrough(const std::string& name, const std::vector<ThunkPtr>& args,
                              const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinConst(const std::string& name, const std::vector<ThunkPtr>& args,
                        const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinMakeOverridable(const std::string& name, const std::vector<ThunkPtr>& args,
                                  const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinAffix(const std::string& name, const std::vector<ThunkPtr>& args,
                        const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinChangeCase(const std::string& name, const std::vector<ThunkPtr>& args,
                             const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinStringLength(const std::string& name, const std::vector<ThunkPtr>& args,
                               const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinSubstring(const std::string& name, const std::vector<ThunkPtr>& args,
                            const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinReplaceStrings(const std::string& name, const std::vector<ThunkPtr>& args,
                                 const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinConcatStringsSep(const std::string& name, const std::vector<ThunkPtr>& args,
                                   const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinListAccess(const std::string& name, const std::vector<ThunkPtr>& args,
                             const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinElem(const std::string& name, const std::vector<ThunkPtr>& args,
                       const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinPackagesFromDirectoryRecursive(const std::string& name,
                                                 const std::vector<ThunkPtr>& args,
                                                 const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinRecursiveUpdate(const std::string& name, const std::vector<ThunkPtr>& args,
                                  const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinFoldl(const std::string& name, const std::vector<ThunkPtr>& args,
                        const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinImportApply(const std::string& name, const std::vector<ThunkPtr>& args,
                              const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinFlakePartsMkFlake(const std::string& name, const std::vector<ThunkPtr>& args,
                                    const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinFlakePartsEvalFlakeModule(const std::string& name,
                                            const std::vector<ThunkPtr>& args,
                                            const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinWithSystem(const std::string& name, const std::vector<ThunkPtr>& args,
                             const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinThrow(const std::string& name, const std::vector<ThunkPtr>& args,
                        const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinGetFlake(const std::string& name, const std::vector<ThunkPtr>& args,
                           const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinUnsafePath(const std::string& name, const std::vector<ThunkPtr>& args,
                             const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinOpaque(const std::string& name, const std::vector<ThunkPtr>& args,
                         const nix::Expr* site, const EnvPtr& env);
  ValuePtr builtinFetcher(const std::string& name, const std::vector<ThunkPtr>& args,
                          const nix::Expr* site, const EnvPtr& env);
  ValuePtr argValue(const std::vector<ThunkPtr>& args, size_t i);
  Carried carriedOf(const std::vector<ThunkPtr>& args);
  std::optional<std::string> knownText(const std::vector<ThunkPtr>& args, size_t i);
  ValuePtr callInputFunction(const ValuePtr& fn, const ThunkPtr& arg, const nix::Expr* site,
                             const EnvPtr& env);
  ValuePtr attrsFromExpr(const nix::ExprAttrs& a, const EnvPtr& env);
  ValuePtr binOp(const nix::ExprBinOp& b, const EnvPtr& env);
  ValuePtr flakeParts(const ThunkPtr& args, const ThunkPtr& module);
  // What a flake-parts module tree sets that the planner models.
  struct FlakePartsCollected {
    std::vector<ThunkPtr> flake;               // `flake = …`
    std::vector<ThunkPtr> clan;                // `clan = …` (clan-core's flake module)
    std::vector<ThunkPtr> liteConfig;          // `lite-config = …` (yelite/lite-config)
    std::vector<ThunkPtr> perSystem;           // `perSystem = …`
    std::vector<ThunkPtr> systems;             // `systems = […]`
    std::vector<std::string> externalModules;  // flake modules imported from inputs
    std::set<std::string> otherOptions;        // top-level options set we do not model
  };
  void collectFlakePartsModule(const ValuePtr& module, const ThunkPtr& moduleArgs,
                               FlakePartsCollected& out, int depth);
  ValuePtr liteConfig(const std::vector<ThunkPtr>& parts, const ThunkPtr& moduleArgs);
  // flake-parts: what the perSystem modules define for one system (packages, checks, …).
  ValuePtr perSystemOutputs(const std::vector<ThunkPtr>& modules, const ValuePtr& system);
  // flake-parts: the transposed outputs (packages.<system>.<name>, …) of the perSystem modules.
  ValuePtr perSystemCategories(const FlakePartsCollected& c);
  ValuePtr clan(const ThunkPtr& args);
  std::vector<PathRef> clanSopsSecrets(const std::string& sopsDir, const std::string& machine);
  bool isAdiosCall(const std::string& input, const ThunkPtr& arg);
  ValuePtr adiosFlake(const ThunkPtr& args);
  ValuePtr systemArgs();
  ValuePtr withSystemFunction();
  ValuePtr colmenaHosts(const ValuePtr& hive, const std::string& colmenaInput = "");
  ValuePtr makeHive(const ThunkPtr& hive, const std::string& colmenaInput);
  ValuePtr mergeAttrs(const std::vector<ThunkPtr>& parts);
  std::optional<std::vector<std::string>> knownStrings(const ValuePtr& list);

  SourceTree& tree_;
  std::set<std::string> inputs_;
  std::shared_ptr<const ParsedFile> flakeFile_;
  ThunkPtr outputs_;
  ThunkPtr self_;
  ThunkPtr inputsAttrs_;
  std::vector<Trace*> traces_;
  std::vector<std::string> warnings_;
  std::vector<std::string> discoveryGaps_;      // hard: a host may be missing
  std::vector<std::string> discoverySoftGaps_;  // soft: counted only when nothing was found
  std::string discoveryError_;
  std::map<std::string, ThunkPtr> imports_;
  std::set<std::string> evaluatedFiles_;
  std::unordered_set<const ParsedFile*> flakeLevel_;  // files whose nodes traces record
  int depth_ = 0;
  EvalLimits limits_;
  uint64_t work_ = 0;
  // Counts `bytes` of string built, of a string `total` bytes long (0: `bytes`); throws
  // PlanError when either passes limits_.maxStringBytes.
  void chargeText(size_t bytes, size_t total = 0);
  // Counts the size of a step's result; returns it.
  const ValuePtr& charged(const ValuePtr& v);
  ValuePtr applyUncharged(const ValuePtr& fn, const ThunkPtr& arg, const nix::Expr* site,
                          const EnvPtr& env);
  // Every thunk and environment of this evaluation (see ~Evaluator).
  std::vector<ThunkPtr> thunks_;
  std::vector<EnvPtr> envs_;
};

// True when the flake reference names one immutable source: `?rev=<commit>` or `?narHash=…`
// in its query, or a `github:`/`gitlab:`/`sourcehut:` reference whose third path part is a
// commit id (builtins.getFlake of it is then as fixed as the text that calls it).
bool isLockedFlakeRef(const std::string& ref);

// True when `v` is a Value of kind k.
inline bool is(const ValuePtr& v, VKind k) { return v && v->kind == k; }

}  // namespace runner::plan
