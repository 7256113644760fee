#include "runner/store/metrics_queries.h"

#include <nlohmann/json.hpp>

namespace runner::store {

MetricsSnapshot readMetrics(Database& db) {
  MetricsSnapshot m;
  for (const auto& r :
       db.query("SELECT source, state, COUNT(*) FROM deliveries GROUP BY source, state"))
    m.deliveries[{r.text(0), r.text(1)}] = r.integer(2);
  for (const auto& r : db.query("SELECT forge, state, COUNT(*), SUM(attempts), MIN(created_at) "
                                "FROM outbox GROUP BY forge, state")) {
    m.forgeCalls[{r.text(0), r.text(1)}] = r.integer(2);
    m.forgeAttempts[r.text(0)] += r.integer(3);
    if (r.text(1) == "pending") {
      m.outboxPending[r.text(0)] = r.integer(2);
      m.outboxOldestPendingMs[r.text(0)] = r.integer(4);
    }
  }
  for (const auto& r : db.query("SELECT kind, finished_at - started_at FROM runs WHERE "
                                "started_at IS NOT NULL AND finished_at IS NOT NULL"))
    m.runSeconds.emplace_back(r.text(0), static_cast<double>(r.integer(1)) / 1000.0);
  for (const auto& r : db.query("SELECT stage, finished_at - started_at FROM run_hosts WHERE "
                                "started_at IS NOT NULL AND finished_at IS NOT NULL"))
    m.stageSeconds.emplace_back(r.text(0), static_cast<double>(r.integer(1)) / 1000.0);
  for (const auto& r : db.query("SELECT durations FROM deployments")) {
    auto j = nlohmann::json::parse(r.text(0), nullptr, false);
    if (!j.is_object()) continue;
    for (const auto& [step, ms] : j.items())
      if (ms.is_number()) m.deployStepSeconds.emplace_back(step, ms.get<double>() / 1000.0);
  }
  for (const auto& r : db.query(
           "SELECT d.repo, d.host, d.result, d.finished_at, d.generation, d.forge FROM "
           "deployments d JOIN (SELECT MAX(id) AS id FROM deployments GROUP BY forge, repo, host) "
           "n ON n.id = d.id ORDER BY d.forge, d.repo, d.host"))
    m.lastDeploys.push_back(
        {r.text(5), r.text(0), r.text(1), r.text(2), r.integer(3), r.optInteger(4)});
  return m;
}

}  // namespace runner::store
