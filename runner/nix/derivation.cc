#include "runner/nix/derivation.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::nix {

std::string storePathName(std::string_view path) {
  constexpr std::string_view kStore = "/nix/store/";
  if (!startsWith(path, kStore) || path.size() < kStore.size() + 33) return std::string(path);
  std::string_view rest = path.substr(kStore.size() + 33);  // hash (32) + '-'
  auto slash = rest.find('/');
  if (slash != std::string_view::npos) rest = rest.substr(0, slash);
  if (endsWith(rest, ".drv")) rest.remove_suffix(4);
  return std::string(rest);
}

std::string Derivation::name() const { return storePathName(path); }

DerivationSet parseShowDerivation(std::string_view json, std::string_view what) {
  nlohmann::json j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw NixError("show-derivation: " + std::string(what) + " is not a JSON object");
  DerivationSet out;
  try {
    for (const auto& [path, d] : j.items()) {
      Derivation drv;
      drv.path = path;
      for (const auto& [name, o] : d.at("outputs").items())
        drv.outputs[name] = o.value("path", std::string());
      drv.inputSrcs = d.value("inputSrcs", std::vector<std::string>{});
      for (const auto& [p, outs] : d.at("inputDrvs").items())
        drv.inputDrvs[p] = outs.get<std::vector<std::string>>();
      drv.system = d.value("system", std::string());
      drv.builder = d.value("builder", std::string());
      drv.args = d.value("args", std::vector<std::string>{});
      drv.env = d.value("env", std::map<std::string, std::string>{});
      out.emplace(path, std::move(drv));
    }
  } catch (const nlohmann::json::exception& e) {
    throw NixError("show-derivation: " + std::string(what) + ": unexpected shape: " + describe(e));
  }
  return out;
}

std::set<std::string> drvClosure(const DerivationSet& set, const std::vector<std::string>& roots) {
  std::set<std::string> seen;
  std::vector<std::string> todo(roots.begin(), roots.end());
  while (!todo.empty()) {
    std::string p = std::move(todo.back());
    todo.pop_back();
    auto it = set.find(p);
    if (it == set.end() || !seen.insert(p).second) continue;
    for (const auto& [in, _] : it->second.inputDrvs) todo.push_back(in);
  }
  return seen;
}

std::string substitute(std::string s, const Substitutions& subs) {
  for (const auto& [from, to] : subs) {
    if (from.empty() || from == to) continue;
    for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size())
      s.replace(pos, from.size(), to);
  }
  return s;
}

namespace {

class Comparer {
 public:
  Comparer(const DerivationSet& o, const DerivationSet& n, const Substitutions& base)
      : old_(o), new_(n), base_(base) {
    sortLongestFirst(base_);
  }

  // True when equivalent; otherwise `why` gets the differences, innermost first.
  bool equiv(const std::string& a, const std::string& b, std::vector<std::string>& why) {
    if (a == b) return true;
    auto key = std::make_pair(a, b);
    if (auto it = memo_.find(key); it != memo_.end()) {
      if (!it->second.first) why = it->second.second;
      return it->second.first;
    }
    std::vector<std::string> diffs;
    bool ok = compare(get(old_, a, "old"), get(new_, b, "new"), diffs);
    memo_[key] = {ok, diffs};
    if (!ok) why = diffs;
    return ok;
  }

 private:
  static void sortLongestFirst(Substitutions& s) {
    std::stable_sort(s.begin(), s.end(),
                     [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
  }

  static const Derivation& get(const DerivationSet& set, const std::string& p, const char* side) {
    auto it = set.find(p);
    if (it == set.end())
      throw NixError(std::string("comparing derivations: ") + side + " closure lacks " + p);
    return it->second;
  }

  // On failure `diffs` gets the leaf differences: the derivations whose own fields differ, or
  // inputs that appeared, disappeared or were replaced. A derivation whose inputs differ is
  // not described itself (its own strings differ as a consequence).
  bool compare(const Derivation& A, const Derivation& B, std::vector<std::string>& diffs) {
    const std::string label = B.name();
    if (substitute(A.name(), base_) != B.name()) {
      diffs.push_back(label + ": name differs (was " + A.name() + ")");
      return false;
    }
    Substitutions subs = base_;
    // Input derivations: identical paths pair trivially; the rest pair up by name.
    std::vector<std::string> oldLeft, newLeft;
    for (const auto& [p, outs] : A.inputDrvs)
      if (!B.inputDrvs.count(p)) oldLeft.push_back(p);
    for (const auto& [p, outs] : B.inputDrvs)
      if (!A.inputDrvs.count(p)) newLeft.push_back(p);
    std::vector<bool> used(newLeft.size(), false);
    std::vector<std::string> leaves, gone;
    for (const auto& x : oldLeft) {
      const std::string xName = substitute(storePathName(x), base_);
      bool paired = false, sawCandidate = false;
      std::vector<std::string> inner;
      for (size_t i = 0; i < newLeft.size() && !paired; ++i) {
        if (used[i] || storePathName(newLeft[i]) != xName) continue;
        sawCandidate = true;
        std::vector<std::string> why;
        if (A.inputDrvs.at(x) == B.inputDrvs.at(newLeft[i]) && equiv(x, newLeft[i], why)) {
          used[i] = paired = true;
          const auto& xo = get(old_, x, "old").outputs;
          const auto& yo = get(new_, newLeft[i], "new").outputs;
          for (const auto& [name, path] : xo)
            if (auto it = yo.find(name); it != yo.end()) subs.emplace_back(path, it->second);
        } else if (inner.empty()) {
          inner = why;
          if (inner.empty()) inner.push_back(xName + ": requested outputs differ");
        }
      }
      if (paired) continue;
      if (sawCandidate)
        leaves.insert(leaves.end(), inner.begin(), inner.end());
      else
        gone.push_back(xName);
    }
    std::set<std::string> oldNames;
    for (const auto& x : oldLeft) oldNames.insert(substitute(storePathName(x), base_));
    std::vector<std::string> added;  // new inputs no old input had the name of
    for (size_t i = 0; i < newLeft.size(); ++i)
      if (!used[i] && !oldNames.count(storePathName(newLeft[i])))
        added.push_back(storePathName(newLeft[i]));
    if (gone.size() == 1 && added.size() == 1) {
      leaves.push_back(label + ": input " + gone[0] + " replaced by " + added[0]);
    } else {
      for (const auto& g : gone) leaves.push_back(label + ": input " + g + " removed");
      for (const auto& a : added) leaves.push_back(label + ": input " + a + " added");
    }
    if (!leaves.empty()) {
      diffs.insert(diffs.end(), leaves.begin(), leaves.end());
      return false;
    }
    for (const auto& [name, path] : A.outputs)
      if (auto it = B.outputs.find(name); it != B.outputs.end())
        subs.emplace_back(path, it->second);
    sortLongestFirst(subs);

    std::vector<std::string> fields;
    std::set<std::string> newSrcs(B.inputSrcs.begin(), B.inputSrcs.end());
    std::set<std::string> oldSrcs;
    for (const auto& s : A.inputSrcs) oldSrcs.insert(substitute(s, subs));
    for (const auto& s : oldSrcs)
      if (!newSrcs.count(s)) fields.push_back("input source " + storePathName(s));
    for (const auto& s : newSrcs)
      if (!oldSrcs.count(s)) fields.push_back("input source " + storePathName(s));
    if (substitute(A.system, subs) != B.system) fields.push_back("system");
    if (substitute(A.builder, subs) != B.builder) fields.push_back("builder");
    bool argsSame = A.args.size() == B.args.size();
    for (size_t i = 0; argsSame && i < A.args.size(); ++i)
      argsSame = substitute(A.args[i], subs) == B.args[i];
    if (!argsSame) fields.push_back("args");
    for (const auto& [k, v] : A.env) {
      auto it = B.env.find(k);
      if (it == B.env.end() || substitute(v, subs) != it->second) fields.push_back("env." + k);
    }
    for (const auto& [k, v] : B.env)
      if (!A.env.count(k)) fields.push_back("env." + k);
    std::set<std::string> oldOuts, newOuts;
    for (const auto& [n, p] : A.outputs) oldOuts.insert(n);
    for (const auto& [n, p] : B.outputs) newOuts.insert(n);
    if (oldOuts != newOuts) fields.push_back("outputs");
    if (fields.empty()) return true;
    std::sort(fields.begin(), fields.end());
    fields.erase(std::unique(fields.begin(), fields.end()), fields.end());
    diffs.push_back(label + ": " + join(fields, ", ") +
                    (fields.size() == 1 ? " differs" : " differ"));
    return false;
  }

  const DerivationSet& old_;
  const DerivationSet& new_;
  Substitutions base_;
  std::map<std::pair<std::string, std::string>, std::pair<bool, std::vector<std::string>>> memo_;
};

}  // namespace

ClosureComparison compareClosures(const DerivationSet& oldSet, const std::string& oldDrv,
                                  const DerivationSet& newSet, const std::string& newDrv,
                                  const Substitutions& subs) {
  Comparer c(oldSet, newSet, subs);
  ClosureComparison r;
  r.equivalent = c.equiv(oldDrv, newDrv, r.differences);
  std::sort(r.differences.begin(), r.differences.end());
  r.differences.erase(std::unique(r.differences.begin(), r.differences.end()), r.differences.end());
  return r;
}

}  // namespace runner::nix
