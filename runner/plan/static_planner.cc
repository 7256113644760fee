#include "runner/plan/static_planner.h"

#include <algorithm>
#include <map>
#include <set>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/nix/flake_lock.h"
#include "runner/plan/ast_walk.h"
#include "runner/plan/deps.h"
#include "runner/plan/evaluator.h"
#include "runner/plan/source_tree.h"

namespace runner::plan {
namespace {

const char* kEmptyLock = R"({"version":7,"root":"root","nodes":{"root":{}}})";

std::optional<nix::FlakeLock> readLock(SourceTree& tree, const std::string& sha) {
  auto blob = tree.read("flake.lock");
  if (!blob) return std::nullopt;
  return nix::parseFlakeLock(blob->content, "flake.lock at " + shortSha(sha, 12));
}

// Root input names: the lock's, or when there is no lock the keys of flake.nix's `inputs`.
std::set<std::string> rootInputs(const std::optional<nix::FlakeLock>& lock, SourceTree& tree) {
  std::set<std::string> out;
  if (lock) {
    for (const auto& [name, _] : lock->rootNode().inputs) out.insert(name);
    return out;
  }
  auto f = tree.parse("flake.nix");
  if (f && f->ast) {
    if (const auto* top = f->ast->as<nix::ExprAttrs>()) {
      auto in = top->attrs.find("inputs");
      if (in != top->attrs.end() && in->second.value)
        if (const auto* ia = in->second.value->as<nix::ExprAttrs>())
          for (const auto& [name, _] : ia->attrs) out.insert(name);
    }
  }
  return out;
}

// Serialises the parts of a file's AST that a trace touched: untouched attributes are left
// out (adding an unrelated output changes nothing), untouched positions print as "_".
class Fingerprinter {
 public:
  explicit Fingerprinter(const Trace& t) : trace_(t) {}

  std::string file(const nix::Expr& root) {
    if (!below(root)) return "";
    std::string out;
    write(root, out);
    return out;
  }

 private:
  bool below(const nix::Expr& e) {
    auto it = memo_.find(&e);
    if (it != memo_.end()) return it->second;
    bool any = trace_.nodes.count(&e) > 0;
    forEachChild(e, [&](const Slot&, const nix::Expr& c) { any = below(c) || any; });
    return memo_[&e] = any;
  }
  void write(const nix::Expr& e, std::string& out) {
    out += trace_.nodes.count(&e) ? shallowLabel(e) : std::string("~");
    out += "{";
    forEachChild(e, [&](const Slot& slot, const nix::Expr& c) {
      bool touched = below(c);
      if (!touched && slot.isAttr()) return;
      out += slot.text() + "=";
      if (touched)
        write(c, out);
      else
        out += "_";
      out += ";";
    });
    out += "}";
  }
  const Trace& trace_;
  std::map<const nix::Expr*, bool> memo_;
};

std::string fingerprint(const HostDeps& deps, Evaluator& ev) {
  std::string out;
  for (const auto& path : ev.evaluatedFiles()) {
    auto f = ev.tree().parse(path);
    if (!f || !f->ast) continue;
    std::string s = Fingerprinter(deps.trace).file(*f->ast);
    if (!s.empty()) out += path + ":" + s + "\n";
  }
  for (const auto& e : deps.trace.externals) out += e + "\n";
  return out;
}

// The whole syntax tree below `e`, positions and comments left out.
void syntaxText(const nix::Expr& e, std::string& out) {
  out += shallowLabel(e);
  out += "{";
  forEachChild(e, [&](const Slot& slot, const nix::Expr& c) {
    out += slot.text() + "=";
    syntaxText(c, out);
    out += ";";
  });
  out += "}";
}

// True when `path` parses at both commits to the same syntax tree: only comments, spacing or
// layout changed.
bool sameSyntax(SourceTree& from, SourceTree& to, const std::string& path) {
  auto a = from.parse(path), b = to.parse(path);
  if (!a || !b || !a->ast || !b->ast) return false;
  std::string x, y;
  syntaxText(*a->ast, x);
  syntaxText(*b->ast, y);
  return x == y;
}

// True when flake-level code read `path` with readFile (an inventory.json of hosts).
bool readsFile(const Trace& t, const std::string& path) {
  auto it = t.externals.lower_bound("readFile:" + path + "=");
  return it != t.externals.end() && it->rfind("readFile:" + path + "=", 0) == 0;
}

struct Side {
  Side(git::Repository& repo, const std::string& sha, ParseCache& cache) : tree(repo, sha, cache) {}
  Side(CommitFiles& files, const std::string& sha, ParseCache& cache) : tree(files, sha, cache) {}
  SourceTree tree;
  std::unique_ptr<Evaluator> ev;
  std::unique_ptr<DepScanner> scanner;
  std::vector<HostDef> hosts;
  std::optional<nix::FlakeLock> lock;
  std::string error;  // flake-level evaluation failed (old side only)
  Trace hostSet;      // the code that builds the set of hosts: in every host's fingerprint

  void load(const EvalLimits& limits = {}) {
    ev = std::make_unique<Evaluator>(tree, rootInputs(lock, tree), limits);
    scanner = std::make_unique<DepScanner>(*ev);
    ev->scanExpr = [s = scanner.get()](const nix::Expr& e, const EnvPtr& env) {
      return s->scanExpr(e, env);
    };
    ev->loadFlake();
    hosts = ev->hosts();
    hostSet = ev->hostSetTrace();
  }
  const HostDef* host(const std::string& name) const {
    for (const auto& h : hosts)
      if (h.name == name) return &h;
    return nullptr;
  }
};

}  // namespace

std::vector<std::string> discoverHosts(git::Repository& repo, const std::string& sha) {
  ParseCache cache;
  Side side(repo, sha, cache);
  side.lock = readLock(side.tree, sha);
  side.load();
  std::vector<std::string> out;
  for (const auto& h : side.hosts) out.push_back(h.name);
  return out;
}

Plan planStatic(git::Repository& repo, const std::string& fromSha, const std::string& toSha,
                const StaticOptions& opts) {
  GitCommitFiles fromFiles(repo, fromSha), toFiles(repo, toSha);
  if (!toFiles.kindAt("flake.nix"))
    throw InputError("no flake.nix at " + shortSha(toSha, 12) + " in " + repo.gitDir().string());
  return planStatic(fromFiles, fromSha, toFiles, toSha, repo.diff(fromSha, toSha), opts);
}

Plan planStatic(CommitFiles& fromFiles, const std::string& fromSha, CommitFiles& toFiles,
                const std::string& toSha, std::vector<FileChange> filesChanged,
                const StaticOptions& opts) {
  Plan plan;
  plan.repo = opts.repoLabel;
  plan.from = fromSha;
  plan.to = toSha;
  plan.mode = PlanMode::Static;

  ParseCache cache;
  Side to(toFiles, toSha, cache), from(fromFiles, fromSha, cache);
  if (!to.tree.exists("flake.nix")) throw InputError("no flake.nix at " + shortSha(toSha, 12));
  // The new commit's flake must parse: a plan of a flake that does not is a failed plan, not
  // an empty one.
  try {
    to.lock = readLock(to.tree, toSha);
  } catch (const InputError& e) {
    throw PlanError("the flake at " + shortSha(toSha, 12) + " cannot be planned: " + describe(e));
  }
  try {
    from.lock = readLock(from.tree, fromSha);
  } catch (const InputError& e) {
    plan.warnings.push_back(std::string("the old flake.lock does not parse: ") + describe(e));
  }
  auto emptyLock = nix::parseFlakeLock(kEmptyLock, "");
  plan.inputsChanged =
      nix::diffLocks(from.lock ? *from.lock : emptyLock, to.lock ? *to.lock : emptyLock);
  plan.filesChanged = std::move(filesChanged);
  try {
    to.load(opts.limits);
  } catch (const InputError& e) {
    throw PlanError("the flake at " + shortSha(toSha, 12) + " cannot be planned: " + describe(e));
  }
  try {
    if (from.tree.exists("flake.nix")) from.load(opts.limits);
  } catch (const Error& e) {
    from.error = describe(e);
    plan.warnings.push_back("the old commit's flake.nix cannot be evaluated: " + from.error);
  }
  for (const auto& w : to.ev->warnings()) plan.warnings.push_back(w);

  // Which hosts: the config's list when given, else what discovery found.
  std::vector<std::string> names;
  if (!opts.hosts.empty()) {
    for (const auto& h : opts.hosts) names.push_back(h.name);
  } else {
    for (const auto& h : to.hosts) names.push_back(h.name);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());

  std::vector<std::string> changedPaths;
  for (const auto& f : plan.filesChanged) {
    changedPaths.push_back(f.path);
    if (f.oldPath) changedPaths.push_back(*f.oldPath);
  }
  bool anyChange = !plan.filesChanged.empty() || !plan.inputsChanged.empty();
  // Nix files edited in comments or layout only: no change for a host that imports them as
  // code and reads them no other way
  std::set<std::string> layoutOnly;
  for (const auto& f : plan.filesChanged)
    if (f.status == FileStatus::Modified && !f.oldPath && endsWith(f.path, ".nix") &&
        sameSyntax(from.tree, to.tree, f.path))
      layoutOnly.insert(f.path);

  std::map<std::string, HostDeps> depsByHost;
  std::map<std::string, std::vector<std::string>> hostsByFile;  // changed file -> hosts
  std::vector<std::string> selfRevisionHosts;
  std::string selfRevisionWhere;
  for (const auto& name : names) {
    HostPlan hp;
    hp.name = name;
    const HostDef* def = to.host(name);
    if (!def) {
      hp.reasons.push_back({ReasonKind::Dynamic, "flake.nix", "",
                            "host listed in the config but not found in the flake's outputs"});
      hp.affected = anyChange;
      if (!anyChange) hp.reasons.clear();
      plan.hosts.push_back(std::move(hp));
      continue;
    }
    bool clanDefault =
        def->via == "clan machines/" || (is(to.ev->force(def->value), VKind::NixosSystem) &&
                                         to.ev->force(def->value)->hostNameIsName);
    HostDeps deps = to.scanner->scan(*def, clanDefault);
    if (!deps.selfRevision.empty()) {
      selfRevisionHosts.push_back(name);
      if (selfRevisionWhere.empty()) selfRevisionWhere = deps.selfRevision.front();
    }
    const HostDef* oldDef = from.ev && from.error.empty() ? from.host(name) : nullptr;
    if (!oldDef && from.error.empty() && anyChange)
      hp.reasons.push_back({ReasonKind::NewHost, "", "", ""});
    if (!from.error.empty())
      hp.reasons.push_back(
          {ReasonKind::Global, "flake.nix", "", "the old commit could not be evaluated"});
    for (const auto& p : changedPaths) {
      if (deps.dependsOnFile(p)) {
        if (layoutOnly.count(p) && deps.dependsOnlyAsCode(p)) continue;
        hostsByFile[p].push_back(name);
        hp.reasons.push_back({ReasonKind::File, p, "", ""});
      }
    }
    // Flake-level files this host's definition was evaluated from: flake.nix and whatever it
    // imported on the way (recorded in the trace). A change there counts only when the part
    // of the code the host used changed.
    std::set<std::string> flakeLevelChanged;
    for (const auto& p : changedPaths) {
      if (p == "flake.nix" || deps.trace.externals.count("import:" + p) ||
          to.hostSet.externals.count("import:" + p) || readsFile(deps.trace, p) ||
          readsFile(to.hostSet, p))
        flakeLevelChanged.insert(p);
    }
    if (!flakeLevelChanged.empty() && oldDef) {
      HostDeps oldDeps = from.scanner->scan(*oldDef, clanDefault);
      deps.trace.merge(to.hostSet);
      oldDeps.trace.merge(from.hostSet);
      if (fingerprint(deps, *to.ev) != fingerprint(oldDeps, *from.ev))
        hp.reasons.push_back({ReasonKind::Global, *flakeLevelChanged.begin(), "",
                              "the host's definition in the flake changed"});
    }
    for (const auto& c : plan.inputsChanged)
      if (deps.inputs.count(c.name)) hp.reasons.push_back({ReasonKind::Input, "", c.name, ""});
    if (!deps.dynamic.empty() && anyChange) {
      std::string detail = deps.dynamic.front();
      if (deps.dynamic.size() > 1)
        detail += " (and " + std::to_string(deps.dynamic.size() - 1) + " more)";
      hp.reasons.push_back({ReasonKind::Dynamic, "", "", detail});
    }
    // one reason per file
    std::vector<Reason> unique;
    for (auto& r : hp.reasons)
      if (std::find(unique.begin(), unique.end(), r) == unique.end()) unique.push_back(r);
    hp.reasons = std::move(unique);
    hp.affected = !hp.reasons.empty();
    depsByHost.emplace(name, std::move(deps));
    plan.hosts.push_back(std::move(hp));
  }
  // A changed file every host reaches is global.
  if (plan.hosts.size() > 1) {
    for (const auto& [file, hs] : hostsByFile) {
      if (hs.size() != plan.hosts.size()) continue;
      for (auto& h : plan.hosts)
        for (auto& r : h.reasons)
          if (r.kind == ReasonKind::File && r.path == file) {
            r.kind = ReasonKind::Global;
            r.detail = "every host reaches it";
          }
    }
  }
  // Discovery that failed, or found nothing where the old commit had hosts, is not "every
  // host removed": the old commit's hosts are reported dynamic, with the reason.
  plan.discoveryError = to.ev->discoveryError();
  if (plan.discoveryError.empty() && to.hosts.empty() && opts.hosts.empty() && !from.hosts.empty())
    plan.discoveryError = "no hosts found at the new commit, where the old commit has " +
                          std::to_string(from.hosts.size());
  if (from.ev && from.error.empty()) {
    for (const auto& h : from.hosts) {
      if (std::find(names.begin(), names.end(), h.name) != names.end()) continue;
      if (!opts.hosts.empty()) continue;
      HostPlan hp;
      hp.name = h.name;
      if (plan.discoveryError.empty()) {
        hp.affected = false;
        hp.reasons.push_back({ReasonKind::RemovedHost, "", "", ""});
      } else {
        hp.affected = true;
        hp.reasons.push_back({ReasonKind::Dynamic, "flake.nix", "",
                              "host discovery at the new commit failed (" + plan.discoveryError +
                                  "); the old commit has this host"});
      }
      plan.hosts.push_back(std::move(hp));
    }
  }
  if (!plan.discoveryError.empty() && plan.hosts.empty())
    throw PlanError("static planning cannot tell which hosts the flake at " + shortSha(toSha, 12) +
                    " defines: " + plan.discoveryError +
                    "; list them under hosts: in the config, or plan with --mode auto or exact");
  if (!plan.discoveryError.empty())
    plan.warnings.push_back("host discovery at the new commit is incomplete (" +
                            plan.discoveryError +
                            "): the hosts known from the old commit and the config are listed; "
                            "hosts only the new commit defines may be missing (auto mode asks "
                            "Nix about every host)");
  std::sort(plan.hosts.begin(), plan.hosts.end(),
            [](const HostPlan& a, const HostPlan& b) { return a.name < b.name; });
  if (!selfRevisionHosts.empty()) {
    plan.warnings.push_back(
        join(selfRevisionHosts, ", ") + (selfRevisionHosts.size() == 1 ? " uses" : " use") +
        " the flake's own revision or source (" + selfRevisionWhere +
        "): the derivation changes on every commit; static planning does not count that, exact "
        "mode reports it as self-revision-only");
  }
  refuseBadHostNames(plan);
  if (opts.stats) {
    opts.stats->fromWork = from.ev ? from.ev->work() : 0;
    opts.stats->toWork = to.ev ? to.ev->work() : 0;
  }
  return plan;
}

}  // namespace runner::plan
