#include "runner/fleet/retry.h"

#include <algorithm>
#include <optional>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/event.h"
#include "runner/store/deliveries.h"
#include "runner/store/deployments.h"

namespace runner::fleet {
namespace {

// The newest deploy record of `host` made by `repo`.
std::optional<store::DeploymentRecord> newestOf(store::Database& db, const RepoConfig& repo,
                                                const std::string& host) {
  const std::string forge = repo.forge.value_or("");
  for (auto& r : store::Deployments(db).history(host, 50))
    if (r.forge == forge && r.repo == repo.name) return std::move(r);
  return std::nullopt;
}

// The retry `host` of `repo` has pending at `nowMs`, if any.
std::optional<PendingRetry> pendingFor(store::Database& db, const RepoConfig& repo,
                                       const std::string& host, int64_t nowMs) {
  const auto window = retryWindow(repo, host);
  if (window.count() <= 0) return std::nullopt;
  auto last = newestOf(db, repo, host);
  if (!last || last->result != "unreachable" || !last->runId) return std::nullopt;
  if (nowMs - last->finishedAt > std::chrono::milliseconds(window).count()) return std::nullopt;
  return PendingRetry{repo.forge.value_or(""), repo.name, host, last->sha, *last->runId, last->id};
}

}  // namespace

std::chrono::seconds retryWindow(const RepoConfig& repo, const std::string& host) {
  for (const auto& h : repo.hosts)
    if (h.name == host && h.retryUnreachable) return *h.retryUnreachable;
  return repo.rollout.retryUnreachable;
}

std::vector<PendingRetry> dueRetries(store::Database& db, const Config& config,
                                     const std::vector<store::ProbeRecord>& probes, int64_t nowMs) {
  std::vector<PendingRetry> out;
  for (const auto& p : probes) {
    if (!p.reached) continue;
    // A probe is of one repository (forge, name): only that one's records count.
    if (const RepoConfig* repo = config.findRepo(p.forge, p.repo))
      if (auto r = pendingFor(db, *repo, p.host, nowMs)) out.push_back(std::move(*r));
  }
  return out;
}

std::vector<ProbeTarget> retryProbeTargets(store::Database& db, const Config& config,
                                           const std::vector<ProbeTarget>& configured,
                                           int64_t nowMs) {
  std::set<std::tuple<std::string, std::string, std::string>> seen;
  for (const auto& t : configured) seen.emplace(t.forge, t.repo, t.host);
  std::vector<ProbeTarget> out;
  for (const auto& row : store::HostProbes(db).all()) {
    if (row.target.empty() || seen.count({row.forge, row.repo, row.host})) continue;
    const RepoConfig* repo = config.findRepo(row.forge, row.repo);
    if (!repo || !pendingFor(db, *repo, row.host, nowMs)) continue;
    try {
      out.push_back({row.forge, row.repo, row.host, parseTarget(row.target)});
    } catch (const InputError&) {  // written by us from a checked target; skip if not
    }
  }
  return out;
}

bool queueRetry(store::Database& db, const Clock& clock, const PendingRetry& r) {
  Event e;
  e.kind = EventKind::Rerun;
  e.forgeType = "cli";  // authenticated by the daemon itself, like `switchyard rerun`
  e.eventName = "rerun";
  e.deliveryId = "retry-unreachable-" + std::to_string(r.recordId);
  e.runId = r.runId;
  e.hosts = {r.host};
  e.repo = r.repo;
  e.sender = "retry_unreachable";
  nlohmann::json j = e;
  auto stored = store::Deliveries(db, clock).insert({"cli", e.deliveryId, "rerun", j.dump()});
  return !stored.duplicate;
}

}  // namespace runner::fleet
