// The fleet (issue 14): what every host of every repository runs now, where that came from,
// and whether it drifted from what the deploy branch's head built. The table behind the web
// UI's /fleet page, /api/fleet and `switchyard fleet [--json]`, assembled from the store:
// deploy records (deployments), the fleet probe's last look at each host (host_probes) and
// the runs of the deploy branches (what they built for each host).
//
// Drift, from the probe's view of the host (or, before any probe, the last deploy record):
//   in-sync          runs what the deploy branch's head built
//   behind           runs what we last deployed, but the branch has built something newer
//   rolled-back      runs a system we deployed earlier (an older generation), not the last
//   changed-by-hand  runs a system no deploy of ours put there (nixos-rebuild on the host)
//   unreachable      the last probe could not reach it (shown with when it was last seen)
//   not-probed       never probed yet (the row shows what the last deploy put there)
//   never-deployed   no deploy of ours reached it
//   not-managed      in the flake but left out by the config's `hosts:` (never deployed by
//                    this runner; shown so nobody thinks it is covered)
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/core/config.h"
#include "runner/store/database.h"
#include "runner/store/deployments.h"
#include "runner/store/host_probes.h"

namespace runner::fleet {

enum class Drift {
  InSync,
  Behind,
  RolledBack,
  ChangedByHand,
  Unreachable,
  NotProbed,
  NeverDeployed,
  NotManaged
};
const char* toString(Drift d);  // "in-sync", "behind", …
// Drifts that need a person's attention (the fleet page lists them first; /metrics sets
// switchyard_host_drift to 1 for them).
bool needsAttention(Drift d);

struct DriftInput {
  bool managed = true;
  std::optional<std::string> expected;                   // what the deploy branch last built
  std::optional<store::DeploymentRecord> lastSucceeded;  // our last successful deploy
  std::vector<std::string> deployedPaths;                // every system we deployed there
  std::optional<store::ProbeRecord> probe;
};
struct DriftVerdict {
  Drift drift = Drift::NotProbed;
  std::string detail;  // one sentence for a person
};
// Pure: the rules in the header comment.
DriftVerdict classifyDrift(const DriftInput& in);

struct FleetRow {
  std::string forge;  // the repository's forge ("" for hook/CLI-only repositories)
  std::string repo;
  std::string host;
  std::string target;  // the configured target, else the one last probed, else ""
  bool managed = true;
  // What the host runs: the probe's current system when it answered, else what our last
  // successful deploy put there (currentFrom says which: "probe" | "deploy" | "").
  std::optional<std::string> currentPath;
  std::optional<int64_t> generation;
  std::string currentFrom;
  std::optional<store::DeploymentRecord> lastDeploy;  // newest record, any result
  std::optional<store::DeploymentRecord> lastSucceeded;
  std::optional<store::ProbeRecord> probe;
  std::optional<store::BuiltPath> expected;  // the deploy branch's newest build of the host
  DriftVerdict drift;
};

// Every host of every configured repository: the config's hosts, the hosts the newest plan
// of a deploy branch saw, hosts with deploy records or probes, and `flakeHosts(repo)` when
// given (the flake's nixosConfigurations at the deploy branch's head; hosts the config leaves
// out become not-managed rows). A repository is (forge, name): two same-named repositories on
// two forges have rows of their own. In config order of repositories, then by host. Throws
// StoreError.
using FlakeHostsFn = std::function<std::vector<std::string>(const RepoConfig&)>;
std::vector<FleetRow> fleetTable(store::Database& db, const Config& config,
                                 const FlakeHostsFn& flakeHosts = {});

// The JSON of `switchyard fleet --json` and /api/fleet: a list of rows.
nlohmann::json fleetJson(const std::vector<FleetRow>& rows);
// The terminal table of `switchyard fleet`.
std::string fleetText(const std::vector<FleetRow>& rows);

// "system-12-link" (or a path ending in it) -> 12; nullopt for anything else.
std::optional<int64_t> generationOfLink(std::string_view link);

}  // namespace runner::fleet
