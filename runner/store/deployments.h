// What was deployed where: one record per host and deploy attempt (DESIGN.md §6 step 7).
// The last successful record of a host is what "never go backwards" compares against and
// what the fleet page shows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "runner/store/database.h"

namespace runner::store {

struct DeploymentRecord {
  int64_t id = 0;
  std::string host;
  std::string forge;  // the repository's forge ("" for hook/CLI-only repositories)
  std::string repo;
  std::string sha;
  std::string storePath;
  std::optional<int64_t> generation;
  std::optional<std::string> previousPath;
  std::optional<int64_t> previousGeneration;
  std::string result;  // "succeeded" | "failed" | "rolled-back" | "unreachable" | "refused"
  std::string detail;
  std::optional<int64_t> runId;
  int64_t startedAt = 0;             // unix ms
  int64_t finishedAt = 0;            // unix ms
  std::string durationsJson = "{}";  // {"copy": 230, "switch": 220, …} in ms
};

class Deployments {
 public:
  explicit Deployments(Database& db) : db_(db) {}
  // Stores a record; returns its id. Throws StoreError.
  int64_t record(const DeploymentRecord& r);
  // The newest record with result "succeeded" for `host`, by any repository.
  std::optional<DeploymentRecord> lastSucceeded(const std::string& host);
  // The same, made by the repository (`forge`, `repo`): a repository is (forge, name).
  std::optional<DeploymentRecord> lastSucceeded(const std::string& host, const std::string& forge,
                                                const std::string& repo);
  // The newest "succeeded" record of `host` by (`forge`, `repo`) that put `storePath` there
  // (the run a roll back to that system re-deploys), or nullopt.
  std::optional<DeploymentRecord> lastSucceededWithPath(const std::string& host,
                                                        const std::string& forge,
                                                        const std::string& repo,
                                                        const std::string& storePath);
  // The newest record run `runId` made for `host`, or nullopt.
  std::optional<DeploymentRecord> forRun(int64_t runId, const std::string& host);
  // Newest first, of every repository (each record names its forge and repository).
  std::vector<DeploymentRecord> history(const std::string& host, int limit = 20);

 private:
  Database& db_;
};

}  // namespace runner::store
