// What the fleet probe last saw on each host (issue 14): the system it runs
// (/run/current-system), the system profile's generation, when it last answered. One row per
// (forge, repo, host), rewritten by each probe; a probe that cannot reach the host keeps what was
// seen before and when (last_seen), so "unreachable since" can be shown.
// Also the two questions the fleet page asks of runs: what a branch last built for a host.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runner/store/database.h"

namespace runner::store {

struct ProbeRecord {
  std::string forge;  // the repository's forge ("" for hook/CLI-only repositories)
  std::string repo;
  std::string host;
  std::string target;    // "root@10.0.0.1" as probed
  int64_t probedAt = 0;  // unix ms of the last attempt
  bool reached = false;
  std::optional<std::string> currentPath;
  std::optional<std::string> profilePath;
  std::optional<int64_t> generation;
  std::string error;                // why the last attempt failed ("" when reached)
  std::optional<int64_t> lastSeen;  // unix ms of the last attempt that answered
};

// The newest output path a branch's runs built for a host, and where it came from.
struct BuiltPath {
  std::string path;
  std::string sha;
  int64_t runId = 0;
  int64_t at = 0;  // the run's creation, unix ms
};

class HostProbes {
 public:
  explicit HostProbes(Database& db) : db_(db) {}
  // Stores a probe's result. When `r.reached` is false the paths, generation and last_seen
  // seen before are kept (the host still runs what it ran when last seen, as far as we
  // know). Throws StoreError.
  void record(const ProbeRecord& r);
  // Every row, ordered by forge, repo and host.
  std::vector<ProbeRecord> all();
  // nullopt when the host was never probed for the repository (`forge`, `repo`).
  std::optional<ProbeRecord> get(const std::string& forge, const std::string& repo,
                                 const std::string& host);

 private:
  Database& db_;
};

// A repository is (forge, name): `forge` is "" for hook/CLI-only repositories.
// The newest out_path built for `host` by a run of (`forge`, `repo`) on `ref` (a deploy
// branch, "refs/heads/main"), forks' runs excluded; nullopt when none built it. Throws
// StoreError.
std::optional<BuiltPath> lastBuilt(Database& db, const std::string& forge, const std::string& repo,
                                   const std::string& ref, const std::string& host);
// The hosts of the newest planned run of (`forge`, `repo`) on `ref` (every host the planner
// saw, affected or not); empty when there is none. Throws StoreError.
std::vector<std::string> lastPlannedHosts(Database& db, const std::string& forge,
                                          const std::string& repo, const std::string& ref);
// Hosts with a deploy record of (`forge`, `repo`), sorted.
std::vector<std::string> deployedHosts(Database& db, const std::string& forge,
                                       const std::string& repo);

}  // namespace runner::store
