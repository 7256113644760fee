#include "runner/store/host_probes.h"

#include <nlohmann/json.hpp>

namespace runner::store {
namespace {

constexpr const char* kColumns =
    "repo, host, target, probed_at, reached, current_path, profile_path, generation, error, "
    "last_seen, forge";

ProbeRecord fromRow(const SqlRow& r) {
  ProbeRecord p;
  p.repo = r.text(0);
  p.host = r.text(1);
  p.target = r.text(2);
  p.probedAt = r.integer(3);
  p.reached = r.integer(4) != 0;
  p.currentPath = r.optText(5);
  p.profilePath = r.optText(6);
  p.generation = r.optInteger(7);
  p.error = r.text(8);
  p.lastSeen = r.optInteger(9);
  p.forge = r.text(10);
  return p;
}

}  // namespace

void HostProbes::record(const ProbeRecord& r) {
  if (r.reached) {
    db_.exec(
        "INSERT INTO host_probes(repo, host, target, probed_at, reached, current_path, "
        "profile_path, generation, error, last_seen, forge) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, "
        "?7, '', ?4, ?8) ON CONFLICT(forge, repo, host) DO UPDATE SET target = excluded.target, "
        "probed_at = "
        "excluded.probed_at, reached = 1, current_path = excluded.current_path, profile_path = "
        "excluded.profile_path, generation = excluded.generation, error = '', last_seen = "
        "excluded.last_seen",
        {r.repo, r.host, r.target, r.probedAt, sqlOpt(r.currentPath), sqlOpt(r.profilePath),
         sqlOpt(r.generation), r.forge});
  } else {
    db_.exec(
        "INSERT INTO host_probes(repo, host, target, probed_at, reached, error, forge) VALUES "
        "(?1, ?2, ?3, ?4, 0, ?5, ?6) ON CONFLICT(forge, repo, host) DO UPDATE SET target = "
        "excluded.target, probed_at = excluded.probed_at, reached = 0, error = excluded.error",
        {r.repo, r.host, r.target, r.probedAt, r.error, r.forge});
  }
}

std::vector<ProbeRecord> HostProbes::all() {
  std::vector<ProbeRecord> out;
  for (const auto& r : db_.query(std::string("SELECT ") + kColumns +
                                 " FROM host_probes ORDER BY forge, repo, host"))
    out.push_back(fromRow(r));
  return out;
}

std::optional<ProbeRecord> HostProbes::get(const std::string& forge, const std::string& repo,
                                           const std::string& host) {
  auto rows = db_.query(std::string("SELECT ") + kColumns +
                            " FROM host_probes WHERE forge = ? AND repo = ? AND host = ?",
                        {forge, repo, host});
  if (rows.empty()) return std::nullopt;
  return fromRow(rows[0]);
}

std::optional<BuiltPath> lastBuilt(Database& db, const std::string& forge, const std::string& repo,
                                   const std::string& ref, const std::string& host) {
  auto rows = db.query(
      "SELECT h.out_path, r.sha, r.id, r.created_at FROM run_hosts h JOIN runs r ON r.id = "
      "h.run WHERE r.forge = ?4 AND r.repo = ?1 AND r.ref = ?2 AND h.host = ?3 AND "
      "r.from_fork = 0 AND h.out_path IS NOT NULL AND h.out_path != '' ORDER BY r.id DESC "
      "LIMIT 1",
      {repo, ref, host, forge});
  if (rows.empty()) return std::nullopt;
  return BuiltPath{rows[0].text(0), rows[0].text(1), rows[0].integer(2), rows[0].integer(3)};
}

std::vector<std::string> lastPlannedHosts(Database& db, const std::string& forge,
                                          const std::string& repo, const std::string& ref) {
  auto rows = db.query(
      "SELECT plan FROM runs WHERE forge = ?3 AND repo = ?1 AND ref = ?2 AND from_fork = 0 AND "
      "plan IS NOT NULL ORDER BY id DESC LIMIT 1",
      {repo, ref, forge});
  std::vector<std::string> out;
  if (rows.empty()) return out;
  auto plan = nlohmann::json::parse(rows[0].text(0), nullptr, false);
  if (plan.is_discarded() || !plan.contains("hosts") || !plan["hosts"].is_array()) return out;
  for (const auto& h : plan["hosts"])
    if (h.is_object() && h.contains("name") && h["name"].is_string())
      out.push_back(h["name"].get<std::string>());
  return out;
}

std::vector<std::string> deployedHosts(Database& db, const std::string& forge,
                                       const std::string& repo) {
  std::vector<std::string> out;
  for (const auto& r :
       db.query("SELECT DISTINCT host FROM deployments WHERE forge = ? AND repo = ? ORDER BY host",
                {forge, repo}))
    out.push_back(r.text(0));
  return out;
}

}  // namespace runner::store
