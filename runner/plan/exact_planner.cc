#include "runner/plan/exact_planner.h"

#include <algorithm>
#include <ctime>
#include <map>
#include <optional>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/nix/flake_lock.h"
#include "runner/plan/static_planner.h"

namespace runner::plan {
namespace {

constexpr const char* kHostListKey = "#hosts";
constexpr const char* kVerdictPrefix = "self-revision:";
constexpr const char* kVerdictSelf = "self";
constexpr const char* kMissing = "#missing";  // cached: no such host in this tree

// One host at one commit.
struct HostDrv {
  std::optional<std::string> drv;
  std::optional<std::string> error;
  bool missing = false;
};

// What one commit evaluates to (for the hosts asked about).
struct Side {
  std::string sha;
  std::string tree;
  std::string flakeRef;
  int64_t time = 0;
  std::optional<std::string> flakeError;
  std::map<std::string, HostDrv> hosts;
  bool has(const std::string& h) const {
    auto it = hosts.find(h);
    return it != hosts.end() && !it->second.missing;
  }
};

std::string lastModifiedDate(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d%H%M%S", &tm);
  return buf;
}

// The strings by which a derivation can depend on which commit (not which tree) it came from.
std::vector<std::string> commitIdentity(const std::string& sha, int64_t time) {
  return {sha, sha.substr(0, 7), std::to_string(time), lastModifiedDate(time)};
}

bool isSubpathOf(const std::string& file, const std::string& dir) {
  return file == dir || startsWith(file, dir + "/");
}

// Paths below `source` that strings of the closure of `root` refer to ("${self}/files/x").
std::set<std::string> sourceSubpaths(const nix::DerivationSet& set, const std::string& root,
                                     const std::string& source) {
  std::set<std::string> out;
  const std::string prefix = source + "/";
  auto scan = [&](const std::string& s) {
    for (size_t pos = 0; (pos = s.find(prefix, pos)) != std::string::npos;) {
      size_t start = pos + prefix.size(), end = start;
      while (end < s.size() && (std::isalnum(static_cast<unsigned char>(s[end])) ||
                                std::string_view("._/+-@=,").find(s[end]) != std::string::npos))
        ++end;
      std::string sub = s.substr(start, end - start);
      while (!sub.empty() && (sub.back() == '/' || sub.back() == '.')) sub.pop_back();
      if (!sub.empty()) out.insert(sub);
      pos = end;
    }
  };
  for (const auto& p : nix::drvClosure(set, {root})) {
    const auto& d = set.at(p);
    scan(d.builder);
    for (const auto& a : d.args) scan(a);
    for (const auto& [k, v] : d.env) scan(v);
  }
  return out;
}

// "a differs; b differs (and 3 more)"
std::string describeDifferences(const std::vector<std::string>& diffs) {
  if (diffs.empty()) return "the derivation differs";
  constexpr size_t kShown = 3;
  std::vector<std::string> shown(diffs.begin(),
                                 diffs.begin() + static_cast<long>(std::min(diffs.size(), kShown)));
  std::string s = join(shown, "; ");
  if (diffs.size() > kShown) s += " (and " + std::to_string(diffs.size() - kShown) + " more)";
  return s;
}

class ExactEngine {
 public:
  ExactEngine(git::Repository& repo, nix::NixCli& nix, const ExactOptions& o)
      : repo_(repo), nix_(nix), o_(o) {
    repoPath_ = repo.workDir().value_or(repo.gitDir());
  }

  // drvPaths of `wanted` (nullopt: every host) at both commits: from the cache, then one
  // evaluation per commit for the rest. The two commits are evaluated concurrently (each in its own
  // nix processes; on two cores that halves the wall time of a plan), sharing evalWorkers.
  std::pair<Side, Side> resolveBoth(const std::string& fromSha, const std::string& toSha,
                                    const std::optional<std::vector<std::string>>& wanted) {
    Side from = prepare(fromSha), to = prepare(toSha);  // git, on this thread
    const int budget = std::max(1, o_.evalWorkers / 2);
    std::exception_ptr failure;
    std::thread other([&] {
      try {
        resolve(from, wanted, budget);
      } catch (...) {
        failure = std::current_exception();
      }
    });
    try {
      resolve(to, wanted, std::max(1, o_.evalWorkers - budget));
    } catch (...) {
      other.join();
      throw;
    }
    other.join();
    if (failure) std::rethrow_exception(failure);
    return {std::move(from), std::move(to)};
  }

 private:
  Side prepare(const std::string& sha) {
    Side side;
    side.sha = sha;
    side.tree = repo_.treeOf(sha);
    side.time = repo_.commit(sha).time;
    side.flakeRef = o_.flakeRefFor ? o_.flakeRefFor(sha) : nix::gitFlakeRef(repoPath_, sha);
    return side;
  }

  // Fills `side` for `wanted` (nullopt: every host): from the cache, then one evaluation for
  // the rest with at most `processes` nix processes. Thread-safe (no git access).
  void resolve(Side& side, const std::optional<std::vector<std::string>>& wanted, int processes) {
    const std::string& sha = side.sha;
    const std::string commitKey = side.tree + "@" + sha;

    std::optional<std::vector<std::string>> names = wanted;
    bool listFromCache = false;
    if (!names && o_.cache) {
      if (auto cached = o_.cache->get(side.tree, kHostListKey)) {
        auto j = nlohmann::json::parse(*cached, nullptr, false);
        if (j.is_array()) {
          names = j.get<std::vector<std::string>>();
          listFromCache = true;
        }
      }
    }
    std::vector<std::string> toEval;
    if (names) {
      for (const auto& h : *names) {
        std::optional<std::string> hit;
        if (o_.cache) {
          hit = o_.cache->get(commitKey, h);
          if (!hit) hit = o_.cache->get(side.tree, h);
        }
        if (hit && *hit == kMissing)
          side.hosts[h].missing = true;
        else if (hit)
          side.hosts[h].drv = *hit;
        else
          toEval.push_back(h);
      }
      debug("plan: " + shortSha(sha) + ": " + std::to_string(names->size() - toEval.size()) +
            " of " + std::to_string(names->size()) + " drvPaths cached" +
            (listFromCache ? " (host list cached)" : ""));
      if (toEval.empty()) return;
    }
    size_t count = names ? toEval.size() : 0;
    nix::EvalParallelism par;
    par.processes = names ? processesFor(count, processes) : 1;
    par.fallbackWorkers = std::max(o_.evalWorkers, 1);
    nix::HostEvals ev = nix_.evalDrvPaths(
        side.flakeRef, names ? std::optional<std::vector<std::string>>(toEval) : std::nullopt, par);
    debug("plan: " + shortSha(sha) + ": evaluated " + std::to_string(ev.hosts.size()) +
          " hosts in " + std::to_string(ev.processes) + " nix processes");
    if (ev.flakeError) side.flakeError = ev.flakeError;
    std::vector<std::string> fresh;
    for (auto& [h, v] : ev.hosts) {
      HostDrv& d = side.hosts[h];
      d.missing = v.missing;
      d.error = v.error;
      if (v.value && v.value->is_string()) {
        d.drv = v.value->get<std::string>();
        fresh.push_back(*d.drv);
      } else if (v.value) {
        d.error = "drvPath is not a string";
      }
    }
    if (o_.cache) {
      if (!names && !ev.flakeError) {
        std::vector<std::string> list;
        for (const auto& [h, v] : ev.hosts)
          if (!v.missing) list.push_back(h);
        o_.cache->put(side.tree, kHostListKey, nlohmann::json(list).dump());
      }
      std::set<std::string> revDependent =
          fresh.empty() ? std::set<std::string>{}
                        : nix_.closuresMentioning(fresh, commitIdentity(sha, side.time));
      for (const auto& [h, d] : side.hosts) {
        if (d.missing && ev.hosts.count(h)) o_.cache->put(side.tree, h, kMissing);  // tree only
        if (!d.drv || std::find(fresh.begin(), fresh.end(), *d.drv) == fresh.end()) continue;
        if (revDependent.count(*d.drv))
          o_.cache->put(commitKey, h, *d.drv);
        else
          o_.cache->put(side.tree, h, *d.drv);
      }
    }
  }

 public:
  // Host `name` at both sides -> its exact HostPlan (reasons: drv/self-revision-only/new/removed).
  HostPlan judge(const std::string& name, const Side& from, const Side& to,
                 const std::map<std::string, std::string>& verdicts) {
    HostPlan hp;
    hp.name = name;
    const HostDrv* f = from.hosts.count(name) ? &from.hosts.at(name) : nullptr;
    const HostDrv* t = to.hosts.count(name) ? &to.hosts.at(name) : nullptr;
    if (f && f->drv) hp.oldDrv = f->drv;
    if (t && t->drv) hp.newDrv = t->drv;
    if (to.flakeError || (t && t->error)) {
      hp.affected = true;
      hp.evalError = t && t->error ? *t->error : *to.flakeError;
      hp.reasons.push_back({ReasonKind::Drv, "", "", "does not evaluate at the new commit"});
      return hp;
    }
    if (!t || t->missing) {
      if (f && !f->missing) hp.reasons.push_back({ReasonKind::RemovedHost, "", "", ""});
      return hp;  // removed hosts are not affected: there is nothing to build
    }
    if (!f || f->missing) {
      hp.affected = true;
      hp.reasons.push_back({ReasonKind::NewHost, "", "", ""});
      return hp;
    }
    if (from.flakeError || f->error) {
      hp.affected = true;
      hp.reasons.push_back({ReasonKind::Drv, "", "", "did not evaluate at the old commit"});
      return hp;
    }
    if (*f->drv == *t->drv) return hp;
    hp.affected = true;
    auto v = verdicts.find(name);
    if (v != verdicts.end() && v->second == kVerdictSelf)
      hp.reasons.push_back({ReasonKind::SelfRevisionOnly, "", "", ""});
    else
      hp.reasons.push_back(
          {ReasonKind::Drv, "", "", v != verdicts.end() ? v->second : std::string()});
    return hp;
  }

  // For hosts whose drvPath differs: "self" when the closures are equal modulo the flake's
  // own identity, otherwise what differs. Hosts without an answer are left out (with a
  // warning in `warnings`).
  std::map<std::string, std::string> verdicts(const Side& from, const Side& to,
                                              const std::vector<std::string>& names,
                                              const std::vector<FileChange>& files,
                                              std::vector<std::string>& warnings) {
    std::map<std::string, std::string> out;
    if (!o_.detectSelfRevision) return out;
    std::vector<std::string> todo;
    for (const auto& n : names) {
      if (!from.has(n) || !to.has(n)) continue;
      const auto& f = from.hosts.at(n);
      const auto& t = to.hosts.at(n);
      if (!f.drv || !t.drv || *f.drv == *t.drv) continue;
      if (o_.cache)
        if (auto hit = o_.cache->get(kVerdictPrefix + *f.drv, *t.drv)) {
          out[n] = *hit;
          continue;
        }
      todo.push_back(n);
    }
    if (todo.empty()) return out;
    try {
      nix::FlakeMetadata a = nix_.metadata(from.flakeRef), b = nix_.metadata(to.flakeRef);
      nix::Substitutions subs = {
          {a.rev, b.rev},
          {a.rev.substr(0, 7), b.rev.substr(0, 7)},
          {a.narHash, b.narHash},
          {a.path, b.path},
          {std::to_string(a.lastModified), std::to_string(b.lastModified)},
          {lastModifiedDate(a.lastModified), lastModifiedDate(b.lastModified)}};
      std::vector<std::string> oldRoots, newRoots;
      for (const auto& n : todo) {
        oldRoots.push_back(*from.hosts.at(n).drv);
        newRoots.push_back(*to.hosts.at(n).drv);
      }
      nix::DerivationSet oldSet = nix_.showDerivations(oldRoots, true);
      nix::DerivationSet newSet = nix_.showDerivations(newRoots, true);
      for (const auto& n : todo) {
        const std::string& od = *from.hosts.at(n).drv;
        const std::string& nd = *to.hosts.at(n).drv;
        nix::ClosureComparison c = nix::compareClosures(oldSet, od, newSet, nd, subs);
        std::string verdict;
        if (c.equivalent) {
          verdict = kVerdictSelf;
          for (const auto& sub : sourceSubpaths(newSet, nd, b.path)) {
            for (const auto& fc : files) {
              if (isSubpathOf(fc.path, sub) || (fc.oldPath && isSubpathOf(*fc.oldPath, sub))) {
                verdict = "reads " + sub + " from the flake's source, and " + fc.path + " changed";
                break;
              }
            }
            if (verdict != kVerdictSelf) break;
          }
        } else {
          verdict = describeDifferences(c.differences);
        }
        out[n] = verdict;
        if (o_.cache) o_.cache->put(kVerdictPrefix + od, nd, verdict);
      }
    } catch (const NixError& e) {
      warnings.push_back(
          "could not compare derivation closures (self-revision-only detection "
          "skipped): " +
          describe(e));
    }
    return out;
  }

 private:
  static int processesFor(size_t hosts, int budget) {
    if (hosts < 4) return 1;
    return static_cast<int>(std::clamp<size_t>(hosts / 2, 1, std::max(budget, 1)));
  }
  void debug(const std::string& m) {
    if (o_.log) o_.log->debug(m);
  }

  git::Repository& repo_;
  nix::NixCli& nix_;
  const ExactOptions& o_;
  std::filesystem::path repoPath_;
};

std::optional<std::vector<std::string>> configHosts(const ExactOptions& o) {
  if (o.hosts.empty()) return std::nullopt;
  std::vector<std::string> names;
  for (const auto& h : o.hosts) names.push_back(h.name);
  return names;
}

std::vector<InputChange> lockChanges(git::Repository& repo, const std::string& from,
                                     const std::string& to, const std::vector<FileChange>& files) {
  bool changed = std::any_of(files.begin(), files.end(), [](const FileChange& f) {
    return f.path == "flake.lock" || (f.oldPath && *f.oldPath == "flake.lock");
  });
  if (!changed) return {};
  auto parse = [&](const std::string& sha) {
    auto blob = repo.readFile(sha, "flake.lock");
    if (!blob) return nix::parseFlakeLock(R"({"version":7,"root":"root","nodes":{"root":{}}})", "");
    return nix::parseFlakeLock(blob->content, "flake.lock at " + shortSha(sha));
  };
  try {
    return nix::diffLocks(parse(from), parse(to));
  } catch (const InputError&) {
    return {};  // a broken lock shows up as evaluation errors
  }
}

}  // namespace

Plan planExact(git::Repository& repo, nix::NixCli& nix, const std::string& fromSha,
               const std::string& toSha, const ExactOptions& options) {
  Plan plan;
  plan.repo = options.repoLabel;
  plan.from = fromSha;
  plan.to = toSha;
  plan.mode = PlanMode::Exact;
  plan.filesChanged = repo.diff(fromSha, toSha);
  plan.inputsChanged = lockChanges(repo, fromSha, toSha, plan.filesChanged);

  ExactEngine engine(repo, nix, options);
  auto wanted = configHosts(options);
  auto [from, to] = engine.resolveBoth(fromSha, toSha, wanted);
  if (to.flakeError)
    throw PlanError("the flake at " + shortSha(toSha, 12) +
                    " does not evaluate: " + std::string(trim(*to.flakeError)));
  std::set<std::string> names;
  if (wanted) {
    names.insert(wanted->begin(), wanted->end());
  } else {
    for (const auto& [h, d] : to.hosts)
      if (!d.missing) names.insert(h);
    for (const auto& [h, d] : from.hosts)
      if (!d.missing) names.insert(h);
  }
  std::vector<std::string> list(names.begin(), names.end());
  auto verdicts = engine.verdicts(from, to, list, plan.filesChanged, plan.warnings);
  for (const auto& n : list) plan.hosts.push_back(engine.judge(n, from, to, verdicts));
  refuseBadHostNames(plan);
  return plan;
}

Plan planAuto(git::Repository& repo, nix::NixCli& nix, const std::string& fromSha,
              const std::string& toSha, const StaticOptions& staticOptions,
              const ExactOptions& options) {
  Plan staticPlan;
  try {
    staticPlan = planStatic(repo, fromSha, toSha, staticOptions);
  } catch (const PlanError& e) {
    // The static planner could not answer (its parser or its model of the flake fell short,
    // or the flake is broken): Nix decides, and fails the plan if the flake is broken.
    Plan exact = planExact(repo, nix, fromSha, toSha, options);
    exact.mode = PlanMode::Auto;
    exact.warnings.insert(exact.warnings.begin(), std::string("static planning failed (") +
                                                      describe(e) + "): every host was evaluated");
    return exact;
  }
  return planAuto(repo, nix, staticPlan, options);
}

Plan planAuto(git::Repository& repo, nix::NixCli& nix, const Plan& staticPlan,
              const ExactOptions& options) {
  // Static planning that found no host at all, or whose discovery was incomplete, could not
  // evaluate how the flake builds its hosts (a framework it does not model): ask Nix about
  // every host instead of only those it found.
  const bool incomplete = !staticPlan.discoveryError.empty();
  if ((staticPlan.hosts.empty() || incomplete) &&
      (!staticPlan.filesChanged.empty() || !staticPlan.inputsChanged.empty())) {
    Plan exact = planExact(repo, nix, staticPlan.from, staticPlan.to, options);
    exact.mode = PlanMode::Auto;
    exact.warnings.insert(exact.warnings.begin(), staticPlan.warnings.begin(),
                          staticPlan.warnings.end());
    exact.warnings.push_back(incomplete
                                 ? "static host discovery was incomplete (" +
                                       staticPlan.discoveryError + "): every host was evaluated"
                                 : "static planning found no hosts: every host was "
                                   "evaluated");
    return exact;
  }
  Plan plan = staticPlan;
  plan.mode = PlanMode::Auto;
  std::vector<std::string> suspects;
  for (const auto& h : plan.hosts)
    if (h.affected && !h.hasReason(ReasonKind::RemovedHost)) suspects.push_back(h.name);
  if (suspects.empty()) return plan;

  ExactEngine engine(repo, nix, options);
  auto [from, to] = engine.resolveBoth(plan.from, plan.to, suspects);
  auto verdicts = engine.verdicts(from, to, suspects, plan.filesChanged, plan.warnings);
  for (auto& h : plan.hosts) {
    if (std::find(suspects.begin(), suspects.end(), h.name) == suspects.end()) continue;
    HostPlan exact = engine.judge(h.name, from, to, verdicts);
    h.oldDrv = exact.oldDrv;
    h.newDrv = exact.newDrv;
    h.evalError = exact.evalError;
    if (!exact.affected) {
      if (!to.has(h.name) && !from.has(h.name))
        plan.warnings.push_back(h.name +
                                ": listed by the static planner but not in the "
                                "flake's nixosConfigurations");
      h.affected = false;
      h.reasons.clear();
      if (exact.hasReason(ReasonKind::RemovedHost)) h.reasons = exact.reasons;
      continue;
    }
    h.affected = true;
    for (const auto& r : exact.reasons)
      if (std::find(h.reasons.begin(), h.reasons.end(), r) == h.reasons.end())
        h.reasons.push_back(r);
  }
  return plan;
}

int dropSelfRevisionOnly(Plan& plan) {
  int n = 0;
  for (auto& h : plan.hosts) {
    if (!h.affected || !h.hasReason(ReasonKind::SelfRevisionOnly)) continue;
    bool onlyThat = std::all_of(h.reasons.begin(), h.reasons.end(), [](const Reason& r) {
      return r.kind == ReasonKind::SelfRevisionOnly || r.kind == ReasonKind::File ||
             r.kind == ReasonKind::Global || r.kind == ReasonKind::Input ||
             r.kind == ReasonKind::Dynamic;
    });
    if (onlyThat && !h.hasReason(ReasonKind::Drv)) {
      h.affected = false;
      ++n;
    }
  }
  return n;
}

}  // namespace runner::plan
