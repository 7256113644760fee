#include "runner/fleet/fleet.h"

#include <algorithm>
#include <charconv>
#include <map>
#include <set>
#include <tuple>

#include "runner/core/text.h"

namespace runner::fleet {
namespace {

std::string timeOf(int64_t ms) { return ms ? formatUtcMillis(ms) : ""; }

template <class T>
nlohmann::json opt(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json deployJson(const std::optional<store::DeploymentRecord>& d) {
  if (!d) return nullptr;
  return {
      {"result", d->result}, {"store_path", d->storePath}, {"generation", opt(d->generation)},
      {"sha", d->sha},       {"run", opt(d->runId)},       {"finished_at", timeOf(d->finishedAt)},
      {"detail", d->detail}};
}

}  // namespace

const char* toString(Drift d) {
  switch (d) {
    case Drift::InSync:
      return "in-sync";
    case Drift::Behind:
      return "behind";
    case Drift::RolledBack:
      return "rolled-back";
    case Drift::ChangedByHand:
      return "changed-by-hand";
    case Drift::Unreachable:
      return "unreachable";
    case Drift::NotProbed:
      return "not-probed";
    case Drift::NeverDeployed:
      return "never-deployed";
    case Drift::NotManaged:
      return "not-managed";
  }
  return "unknown";
}

bool needsAttention(Drift d) {
  return d == Drift::Behind || d == Drift::RolledBack || d == Drift::ChangedByHand ||
         d == Drift::Unreachable;
}

std::optional<int64_t> generationOfLink(std::string_view s) {
  s = trim(s);
  auto slash = s.rfind('/');
  if (slash != std::string_view::npos) s = s.substr(slash + 1);
  if (!startsWith(s, "system-") || !endsWith(s, "-link") || s.size() <= 12) return std::nullopt;
  std::string_view num = s.substr(7, s.size() - 7 - 5);
  int64_t n = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), n);
  if (ec != std::errc() || p != num.data() + num.size() || n <= 0) return std::nullopt;
  return n;
}

DriftVerdict classifyDrift(const DriftInput& given) {
  if (!given.managed)
    return {Drift::NotManaged, "in the flake, but the config's hosts: leave it out"};
  DriftInput in = given;
  const auto& ok = in.lastSucceeded;
  // A probe older than our last deploy saw the system before it: the deploy is newer news.
  if (in.probe && in.probe->reached && ok && in.probe->probedAt < ok->finishedAt) in.probe.reset();
  if (in.probe && !in.probe->reached) {
    std::string d = in.probe->lastSeen ? "not reached since " + timeOf(*in.probe->lastSeen)
                                       : std::string("never reached");
    if (!in.probe->error.empty()) d += ": " + in.probe->error;
    return {Drift::Unreachable, d};
  }
  if (!in.probe) {
    if (!ok) return {Drift::NeverDeployed, "no deploy of ours reached it; not probed yet"};
    if (in.expected && *in.expected != ok->storePath)
      return {Drift::Behind, "the deploy branch built a newer system; not probed yet"};
    return {Drift::NotProbed, "runs what we deployed, as far as we know (not probed yet)"};
  }
  const auto& p = *in.probe;
  std::optional<std::string> current = p.currentPath ? p.currentPath : p.profilePath;
  if (!current) return {Drift::ChangedByHand, "reached, but it has no current system"};
  if (!ok) {
    if (in.expected && *current == *in.expected)
      return {Drift::InSync, "runs what the deploy branch built"};
    return {Drift::NeverDeployed, "no deploy of ours reached it"};
  }
  if (*current == ok->storePath) {
    if (in.expected && *in.expected != *current)
      return {Drift::Behind, "runs our last deploy; the deploy branch built a newer system"};
    return {Drift::InSync, "runs what we deployed last"};
  }
  if (in.expected && *current == *in.expected)
    return {Drift::InSync, "runs what the deploy branch built"};
  const bool older = p.generation && ok->generation && *p.generation < *ok->generation;
  const bool ours = std::find(in.deployedPaths.begin(), in.deployedPaths.end(), *current) !=
                        in.deployedPaths.end() ||
                    (ok->previousPath && *ok->previousPath == *current);
  if (ours || older)
    return {
        Drift::RolledBack,
        "runs an earlier system" +
            (p.generation ? " (generation " + std::to_string(*p.generation) + ")" : std::string()) +
            ", not our last deploy" +
            (ok->generation ? " (generation " + std::to_string(*ok->generation) + ")"
                            : std::string())};
  return {Drift::ChangedByHand, "runs a system no deploy of ours put there"};
}

std::vector<FleetRow> fleetTable(store::Database& db, const Config& config,
                                 const FlakeHostsFn& flakeHosts) {
  store::Deployments deployments(db);
  store::HostProbes probes(db);
  std::map<std::tuple<std::string, std::string, std::string>, store::ProbeRecord> probeOf;
  for (auto& p : probes.all()) probeOf[{p.forge, p.repo, p.host}] = p;
  std::vector<FleetRow> out;
  for (const auto& repo : config.repos) {
    const std::string forge = repo.forge.value_or("");
    std::set<std::string> configured, names;
    std::map<std::string, std::string> targets;
    for (const auto& h : repo.hosts) {
      configured.insert(h.name);
      names.insert(h.name);
      if (h.target) targets[h.name] = *h.target;
    }
    std::vector<std::string> refs;
    for (const auto& b : repo.deployBranches) refs.push_back("refs/heads/" + b);
    for (const auto& ref : refs)
      for (auto& h : store::lastPlannedHosts(db, forge, repo.name, ref)) names.insert(h);
    for (auto& h : store::deployedHosts(db, forge, repo.name)) names.insert(h);
    for (const auto& [key, p] : probeOf)
      if (std::get<0>(key) == forge && std::get<1>(key) == repo.name)
        names.insert(std::get<2>(key));
    if (flakeHosts)
      for (auto& h : flakeHosts(repo)) names.insert(h);
    for (const auto& name : names) {
      FleetRow row;
      row.forge = forge;
      row.repo = repo.name;
      row.host = name;
      row.managed = configured.empty() || configured.count(name);
      DriftInput in;
      in.managed = row.managed;
      for (auto& d : deployments.history(name, 200)) {
        if (d.forge != forge || d.repo != repo.name) continue;
        if (!row.lastDeploy) row.lastDeploy = d;
        if (d.result == "succeeded") {
          if (!row.lastSucceeded) row.lastSucceeded = d;
          in.deployedPaths.push_back(d.storePath);
        }
      }
      in.lastSucceeded = row.lastSucceeded;
      for (const auto& ref : refs) {
        auto b = store::lastBuilt(db, forge, repo.name, ref, name);
        if (b && (!row.expected || b->runId > row.expected->runId)) row.expected = b;
      }
      if (row.expected) in.expected = row.expected->path;
      if (auto it = probeOf.find({forge, repo.name, name}); it != probeOf.end())
        row.probe = it->second;
      in.probe = row.probe;
      row.target = targets.count(name) ? targets[name] : row.probe ? row.probe->target : "";
      const bool probeFresh =
          row.probe && (!row.lastSucceeded || row.probe->probedAt >= row.lastSucceeded->finishedAt);
      if (row.probe && row.probe->reached && probeFresh) {
        row.currentPath = row.probe->currentPath ? row.probe->currentPath : row.probe->profilePath;
        row.generation = row.probe->generation;
        row.currentFrom = "probe";
      } else if (row.probe && probeFresh && row.probe->lastSeen && row.probe->currentPath) {
        row.currentPath = row.probe->currentPath;  // as last seen
        row.generation = row.probe->generation;
        row.currentFrom = "probe";
      } else if (row.lastSucceeded) {
        row.currentPath = row.lastSucceeded->storePath;
        row.generation = row.lastSucceeded->generation;
        row.currentFrom = "deploy";
      }
      row.drift = classifyDrift(in);
      out.push_back(std::move(row));
    }
  }
  return out;
}

nlohmann::json fleetJson(const std::vector<FleetRow>& rows) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : rows) {
    nlohmann::json j = {{"forge", r.forge},
                        {"repo", r.repo},
                        {"host", r.host},
                        {"target", r.target},
                        {"managed", r.managed},
                        {"current_path", opt(r.currentPath)},
                        {"generation", opt(r.generation)},
                        {"current_from", r.currentFrom},
                        {"drift", toString(r.drift.drift)},
                        {"drift_detail", r.drift.detail},
                        {"last_deploy", deployJson(r.lastDeploy)},
                        {"last_succeeded", deployJson(r.lastSucceeded)}};
    if (r.lastSucceeded) {
      j["commit"] = r.lastSucceeded->sha;
      j["run"] = opt(r.lastSucceeded->runId);
      j["deployed_at"] = timeOf(r.lastSucceeded->finishedAt);
    } else {
      j["commit"] = nullptr;
      j["run"] = nullptr;
      j["deployed_at"] = nullptr;
    }
    j["expected"] = r.expected ? nlohmann::json{{"store_path", r.expected->path},
                                                {"sha", r.expected->sha},
                                                {"run", r.expected->runId}}
                               : nlohmann::json(nullptr);
    if (r.probe)
      j["probe"] = {{"reached", r.probe->reached},
                    {"probed_at", timeOf(r.probe->probedAt)},
                    {"last_seen", r.probe->lastSeen ? timeOf(*r.probe->lastSeen) : ""},
                    {"error", r.probe->error}};
    else
      j["probe"] = nullptr;
    out.push_back(std::move(j));
  }
  return out;
}

std::string fleetText(const std::vector<FleetRow>& rows) {
  std::vector<std::vector<std::string>> cells = {
      {"FORGE", "REPO", "HOST", "GEN", "COMMIT", "RUN", "LAST DEPLOY", "DRIFT", "SYSTEM", "SEEN"}};
  for (const auto& r : rows) {
    std::string seen;
    if (r.probe && r.probe->lastSeen) seen = timeOf(*r.probe->lastSeen);
    cells.push_back({r.forge.empty() ? "-" : r.forge, r.repo, r.host,
                     r.generation ? std::to_string(*r.generation) : "-",
                     r.lastSucceeded ? shortSha(r.lastSucceeded->sha) : "-",
                     r.lastSucceeded && r.lastSucceeded->runId
                         ? "#" + std::to_string(*r.lastSucceeded->runId)
                         : "-",
                     r.lastDeploy ? r.lastDeploy->result : "-", toString(r.drift.drift),
                     r.currentPath ? *r.currentPath : "-", seen.empty() ? "-" : seen});
  }
  std::vector<size_t> width(cells[0].size(), 0);
  for (const auto& row : cells)
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  std::string out;
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    out += std::string(trim(line)) + "\n";
  }
  return out;
}

}  // namespace runner::fleet
