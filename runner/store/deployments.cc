#include "runner/store/deployments.h"

namespace runner::store {
namespace {

constexpr const char* kColumns =
    "id, host, repo, sha, store_path, generation, previous_path, previous_generation, result, "
    "detail, run_id, started_at, finished_at, durations, forge";

DeploymentRecord fromRow(const SqlRow& r) {
  DeploymentRecord d;
  d.id = r.integer(0);
  d.host = r.text(1);
  d.repo = r.text(2);
  d.sha = r.text(3);
  d.storePath = r.text(4);
  d.generation = r.optInteger(5);
  d.previousPath = r.optText(6);
  d.previousGeneration = r.optInteger(7);
  d.result = r.text(8);
  d.detail = r.text(9);
  d.runId = r.optInteger(10);
  d.startedAt = r.integer(11);
  d.finishedAt = r.integer(12);
  d.durationsJson = r.text(13);
  d.forge = r.text(14);
  return d;
}

}  // namespace

int64_t Deployments::record(const DeploymentRecord& r) {
  return db_
      .query(
          "INSERT INTO deployments(host, repo, sha, store_path, generation, previous_path, "
          "previous_generation, result, detail, run_id, started_at, finished_at, durations, forge) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
          {r.host, r.repo, r.sha, r.storePath, sqlOpt(r.generation), sqlOpt(r.previousPath),
           sqlOpt(r.previousGeneration), r.result, r.detail, sqlOpt(r.runId), r.startedAt,
           r.finishedAt, r.durationsJson, r.forge})
      .at(0)
      .integer(0);
}

std::optional<DeploymentRecord> Deployments::lastSucceeded(const std::string& host) {
  auto rows = db_.query(std::string("SELECT ") + kColumns +
                            " FROM deployments WHERE host = ?1 AND result = 'succeeded' "
                            "ORDER BY id DESC LIMIT 1",
                        {host});
  if (rows.empty()) return std::nullopt;
  return fromRow(rows[0]);
}

std::optional<DeploymentRecord> Deployments::lastSucceeded(const std::string& host,
                                                           const std::string& forge,
                                                           const std::string& repo) {
  auto rows = db_.query(std::string("SELECT ") + kColumns +
                            " FROM deployments WHERE forge = ?1 AND repo = ?2 AND host = ?3 AND "
                            "result = 'succeeded' ORDER BY id DESC LIMIT 1",
                        {forge, repo, host});
  if (rows.empty()) return std::nullopt;
  return fromRow(rows[0]);
}

std::optional<DeploymentRecord> Deployments::lastSucceededWithPath(const std::string& host,
                                                                   const std::string& forge,
                                                                   const std::string& repo,
                                                                   const std::string& storePath) {
  auto rows = db_.query(std::string("SELECT ") + kColumns +
                            " FROM deployments WHERE forge = ?1 AND repo = ?2 AND host = ?3 AND "
                            "store_path = ?4 AND result = 'succeeded' AND run_id IS NOT NULL "
                            "ORDER BY id DESC LIMIT 1",
                        {forge, repo, host, storePath});
  if (rows.empty()) return std::nullopt;
  return fromRow(rows[0]);
}

std::optional<DeploymentRecord> Deployments::forRun(int64_t runId, const std::string& host) {
  auto rows = db_.query(std::string("SELECT ") + kColumns +
                            " FROM deployments WHERE run_id = ?1 AND host = ?2 "
                            "ORDER BY id DESC LIMIT 1",
                        {runId, host});
  if (rows.empty()) return std::nullopt;
  return fromRow(rows[0]);
}

std::vector<DeploymentRecord> Deployments::history(const std::string& host, int limit) {
  auto rows = db_.query(std::string("SELECT ") + kColumns +
                            " FROM deployments WHERE host = ? ORDER BY id DESC LIMIT ?",
                        {host, int64_t{limit}});
  std::vector<DeploymentRecord> out;
  for (const auto& r : rows) out.push_back(fromRow(r));
  return out;
}

}  // namespace runner::store
