// The aggregates /metrics reports (issue 14), read from the tables in one place so the web
// layer sees no SQL: deliveries by source and state, the outbox's depth and oldest pending
// row per forge, forge calls by outcome, durations of runs, host stages and deploy steps,
// and each host's newest deploy record.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "runner/store/database.h"

namespace runner::store {

struct HostLastDeploy {
  std::string forge, repo, host, result;
  int64_t finishedAt = 0;  // unix ms
  std::optional<int64_t> generation;
};

struct MetricsSnapshot {
  std::map<std::pair<std::string, std::string>, int64_t> deliveries;  // (source, state) -> n
  std::map<std::string, int64_t> outboxPending;                       // forge -> rows
  std::map<std::string, int64_t> outboxOldestPendingMs;  // forge -> created_at of the oldest
  std::map<std::pair<std::string, std::string>, int64_t> forgeCalls;  // (forge, state) -> n
  std::map<std::string, int64_t> forgeAttempts;              // forge -> attempts made (sent or not)
  std::vector<std::pair<std::string, double>> runSeconds;    // (kind, seconds), finished runs
  std::vector<std::pair<std::string, double>> stageSeconds;  // (stage, seconds), finished hosts
  std::vector<std::pair<std::string, double>> deployStepSeconds;  // (step, seconds)
  std::vector<HostLastDeploy> lastDeploys;
};

// Throws StoreError.
MetricsSnapshot readMetrics(Database& db);

}  // namespace runner::store
