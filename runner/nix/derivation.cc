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
    throw NixError("show-derivation: " + std::string(what) + ": unexpected shape: " + e.what());
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

  bool compare(const Derivation& A, const Derivation& B, std::vector<std::string>& diffs) {
    const std::string label = B.name();
    auto fail = [&](const std::string& what) {
      diffs.push_back(label + ": " + what);
      return false;
    };
    if (substitute(A.name(), base_) != B.name()) return fail("name differs (" + A.name() + ")");

    Substitutions subs = base_;
    // Input derivations: identical paths pair trivially; the rest pair up by name.
    std::vector<std::string> oldLeft, newLeft;
    for (const auto& [p, outs] : A.inputDrvs)
      if (!B.inputDrvs.count(p)) oldLeft.push_back(p);
    for (const auto& [p, outs] : B.inputDrvs)
      if (!A.inputDrvs.count(p)) newLeft.push_back(p);
    std::vector<bool> used(newLeft.size(), false);
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
        }
      }
      if (!paired) {
        diffs.insert(diffs.end(), inner.begin(), inner.end());
        return fail("input " + xName + (sawCandidate ? " differs" : " removed"));
      }
    }
    for (size_t i = 0; i < newLeft.size(); ++i)
      if (!used[i]) return fail("input " + storePathName(newLeft[i]) + " added");
    for (const auto& [name, path] : A.outputs)
      if (auto it = B.outputs.find(name); it != B.outputs.end())
        subs.emplace_back(path, it->second);
    sortLongestFirst(subs);

    std::set<std::string> newSrcs(B.inputSrcs.begin(), B.inputSrcs.end());
    std::set<std::string> oldSrcs;
    for (const auto& s : A.inputSrcs) oldSrcs.insert(substitute(s, subs));
    if (oldSrcs != newSrcs) {
      for (const auto& s : oldSrcs)
        if (!newSrcs.count(s)) return fail("input source " + storePathName(s) + " differs");
      return fail("input sources differ");
    }
    if (substitute(A.system, subs) != B.system) return fail("system differs");
    if (substitute(A.builder, subs) != B.builder) return fail("builder differs");
    if (A.args.size() != B.args.size()) return fail("args differ");
    for (size_t i = 0; i < A.args.size(); ++i)
      if (substitute(A.args[i], subs) != B.args[i])
        return fail("args[" + std::to_string(i) + "] differs");
    for (const auto& [k, v] : A.env) {
      auto it = B.env.find(k);
      if (it == B.env.end()) return fail("env." + k + " removed");
      if (substitute(v, subs) != it->second) return fail("env." + k + " differs");
    }
    for (const auto& [k, v] : B.env)
      if (!A.env.count(k)) return fail("env." + k + " added");
    for (const auto& [name, path] : A.outputs) {
      auto it = B.outputs.find(name);
      if (it == B.outputs.end()) return fail("output " + name + " removed");
    }
    if (A.outputs.size() != B.outputs.size()) return fail("outputs differ");
    return true;
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
  return r;
}

}  // namespace runner::nix
