#include "runner/store/runs.h"

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/store/runners.h"

namespace runner::store {
namespace {

constexpr const char* kRunColumns =
    "id, delivery, repo, forge, kind, trigger, sha, ref, base_sha, pr_number, from_fork, "
    "hosts_filter, stage_filter, parent_run, superseded_by, forced, state, plan, error, "
    "created_at, started_at, finished_at, attempts, runner";

constexpr const char* kHostColumns =
    "host, stage, state, summary, drv_path, out_path, base_out_path, log_path, started_at, "
    "finished_at, log_tail, steps";

std::string stepsJson(const std::vector<HostStepTime>& steps) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& s : steps)
    j.push_back({{"name", s.name},
                 {"started_at", s.startedAt},
                 {"finished_at", s.finishedAt ? nlohmann::json(*s.finishedAt) : nullptr}});
  return j.dump();
}

std::vector<HostStepTime> stepsFrom(const std::string& text) {
  std::vector<HostStepTime> out;
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_array()) return out;
  for (const auto& e : j) {
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() ||
        !e.contains("started_at") || !e["started_at"].is_number_integer())
      continue;
    HostStepTime s{e["name"].get<std::string>(), e["started_at"].get<int64_t>(), std::nullopt};
    if (e.contains("finished_at") && e["finished_at"].is_number_integer())
      s.finishedAt = e["finished_at"].get<int64_t>();
    out.push_back(std::move(s));
  }
  return out;
}

RunHostView hostFrom(const SqlRow& r) {
  RunHostView h;
  h.host = r.text(0);
  h.stage = stageFrom(r.text(1));
  h.state = hostStateFrom(r.text(2));
  h.summary = r.text(3);
  h.drvPath = r.optText(4);
  h.outPath = r.optText(5);
  h.baseOutPath = r.optText(6);
  h.logPath = r.optText(7);
  h.startedAt = r.optInteger(8);
  h.finishedAt = r.optInteger(9);
  h.logTail = r.text(10);
  h.steps = stepsFrom(r.text(11));
  return h;
}

}  // namespace

std::vector<RunRecord> Runs::select(const std::string& where, const std::vector<SqlValue>& params) {
  std::vector<RunRecord> out;
  for (const auto& r :
       db_.query(std::string("SELECT ") + kRunColumns + " FROM runs " + where, params)) {
    RunRecord rec;
    RunView& v = rec.view;
    v.id = r.integer(0);
    rec.delivery = r.optInteger(1);
    v.repo = r.text(2);
    v.forge = r.text(3);
    v.kind = runKindFrom(r.text(4));
    v.trigger = runTriggerFrom(r.text(5));
    v.sha = r.text(6);
    v.ref = r.text(7);
    v.baseSha = r.text(8);
    v.prNumber = r.integer(9);
    v.fromFork = r.integer(10) != 0;
    auto filter = nlohmann::json::parse(r.text(11), nullptr, false);
    if (filter.is_array())
      for (const auto& h : filter)
        if (h.is_string()) v.hostsFilter.push_back(h.get<std::string>());
    if (!r.text(12).empty()) v.stageFilter = stageFrom(r.text(12));
    v.parentRunId = r.optInteger(13);
    v.supersededBy = r.optInteger(14);
    rec.forced = r.integer(15) != 0;
    v.state = runStateFrom(r.text(16));
    rec.planJson = r.optText(17);
    v.error = r.text(18);
    v.createdAt = r.integer(19);
    v.startedAt = r.optInteger(20);
    v.finishedAt = r.optInteger(21);
    rec.attempts = static_cast<int>(r.integer(22));
    rec.runner = r.text(23);
    v.url = publicUrl_ + "/runs/" + std::to_string(v.id);
    out.push_back(std::move(rec));
  }
  return out;
}

int64_t Runs::create(const NewRun& n) {
  nlohmann::json filter = n.hostsFilter;
  auto rows = db_.query(
      "INSERT INTO runs(delivery, repo, forge, kind, trigger, sha, ref, base_sha, pr_number, "
      "from_fork, hosts_filter, stage_filter, parent_run, forced, state, created_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'queued', ?15) "
      "RETURNING id",
      {sqlOpt(n.delivery), n.repo, n.forge, std::string(toString(n.kind)),
       std::string(toString(n.trigger)), n.sha, n.ref, n.baseSha, n.prNumber,
       int64_t{n.fromFork ? 1 : 0}, filter.dump(),
       std::string(n.stageFilter ? toString(*n.stageFilter) : ""), sqlOpt(n.parentRun),
       int64_t{n.forced ? 1 : 0}, clock_.nowMillis()});
  return rows.at(0).integer(0);
}

std::optional<RunRecord> Runs::get(int64_t id) {
  auto rows = select("WHERE id = ?1", {id});
  if (rows.empty()) return std::nullopt;
  return std::move(rows[0]);
}

std::vector<RunRecord> Runs::list(int limit, int offset) {
  return select("ORDER BY id DESC LIMIT ?1 OFFSET ?2", {int64_t{limit}, int64_t{offset}});
}

std::vector<RunRecord> Runs::inState(RunState state) {
  return select("WHERE state = ?1 ORDER BY id", {std::string(toString(state))});
}

std::optional<RunRecord> Runs::byDelivery(int64_t deliveryId) {
  auto rows = select("WHERE delivery = ?1 ORDER BY id LIMIT 1", {deliveryId});
  if (rows.empty()) return std::nullopt;
  return std::move(rows[0]);
}

std::vector<int64_t> Runs::supersedeQueued(const std::string& forge, const std::string& repo,
                                           const std::string& ref, std::optional<int64_t> by,
                                           int64_t except, const std::string& why) {
  std::vector<int64_t> ids;
  db_.transaction([&] {
    ids.clear();
    for (const auto& r : db_.query(
             "SELECT id FROM runs WHERE forge = ?4 AND repo = ?1 AND ref = ?2 AND state = 'queued' "
             "AND id != ?3 ORDER BY id",
             {repo, ref, except, forge}))
      ids.push_back(r.integer(0));
    for (int64_t id : ids)
      db_.exec(
          "UPDATE runs SET state = 'superseded', superseded_by = ?1, error = ?2, "
          "finished_at = ?3 WHERE id = ?4",
          {sqlOpt(by), why, clock_.nowMillis(), id});
  });
  return ids;
}

namespace {
// SQL: whether run `r` (an alias) may deploy — the runs that go first (slots.h).
std::string deploysSql(const std::string& r) {
  return "(" + r + ".kind = 'deploy' OR (" + r + ".kind = 'rerun' AND " + r +
         ".pr_number = 0 AND " + r + ".from_fork = 0 AND " + r +
         ".stage_filter IN ('', 'deploy')))";
}
}  // namespace

std::optional<RunRecord> Runs::claimNext(int maxRunningChecks, const std::string& runner) {
  std::optional<RunRecord> out;
  db_.transaction([&] {
    // another runner choosing at the same time would not see this one's choice yet
    db_.lockForTransaction(Database::TxnLock::RunClaims);
    auto rows = select(
        "AS r WHERE state = 'queued' AND NOT EXISTS (SELECT 1 FROM runs AS o WHERE "
        "o.state = 'running' AND o.forge = r.forge AND o.repo = r.repo AND o.ref = r.ref) AND (" +
            deploysSql("r") +
            " OR (SELECT COUNT(*) FROM runs AS c WHERE c.state = 'running' AND NOT " +
            deploysSql("c") + ") < ?1) ORDER BY " + deploysSql("r") + " DESC, id LIMIT 1",
        {int64_t{maxRunningChecks}});
    if (rows.empty()) return;
    int64_t now = clock_.nowMillis();
    db_.exec(
        "UPDATE runs SET state = 'running', started_at = ?1, attempts = attempts + 1, "
        "runner = ?3 WHERE id = ?2",
        {now, rows[0].view.id, runner.empty() ? SqlValue(nullptr) : SqlValue(runner)});
    out = std::move(rows[0]);
    out->view.state = RunState::Running;
    out->view.startedAt = now;
    out->attempts += 1;
    out->runner = runner;
  });
  return out;
}

void Runs::setState(int64_t id, RunState state, const std::string& error) {
  std::optional<int64_t> finished;
  if (isFinal(state)) finished = clock_.nowMillis();
  if (error.empty())
    db_.exec("UPDATE runs SET state = ?1, finished_at = ?2 WHERE id = ?3",
             {std::string(toString(state)), sqlOpt(finished), id});
  else
    db_.exec("UPDATE runs SET state = ?1, finished_at = ?2, error = ?3 WHERE id = ?4",
             {std::string(toString(state)), sqlOpt(finished), error, id});
}

bool Runs::cancelQueued(int64_t id, const std::string& why) {
  return db_.exec(
             "UPDATE runs SET state = 'cancelled', error = ?1, finished_at = ?2 "
             "WHERE id = ?3 AND state = 'queued'",
             {why, clock_.nowMillis(), id}) > 0;
}

bool Runs::requestCancel(int64_t id, const std::string& why) {
  return db_.exec("UPDATE runs SET cancel_requested = ?1 WHERE id = ?2 AND state = 'running'",
                  {why, id}) > 0;
}

std::optional<std::string> Runs::cancelRequest(int64_t id) {
  auto rows = db_.query("SELECT cancel_requested FROM runs WHERE id = ?1", {id});
  if (rows.empty()) return std::nullopt;
  return rows[0].optText(0);
}

void Runs::requeue(int64_t id, const std::string& note) {
  db_.exec(
      "UPDATE runs SET state = 'queued', error = ?1, finished_at = NULL, runner = NULL "
      "WHERE id = ?2",
      {note, id});
}

std::vector<RunRecord> Runs::orphaned(const std::string& self) {
  Runners runners(db_, clock_);
  std::vector<RunRecord> out;
  for (auto& r : select("WHERE state = 'running' ORDER BY id", {})) {
    if (!self.empty() && r.runner == self) continue;
    if (!r.runner.empty() && runners.isLive(r.runner)) continue;
    out.push_back(std::move(r));
  }
  return out;
}

bool Runs::adopt(int64_t id, const std::string& from, const std::string& to) {
  return db_.exec(
             "UPDATE runs SET runner = ?1 WHERE id = ?2 AND state = 'running' AND "
             "COALESCE(runner, '') = ?3",
             {to.empty() ? SqlValue(nullptr) : SqlValue(to), id, from}) > 0;
}

bool Runs::isRunBy(int64_t id, const std::string& runner) {
  return !db_.query(
                 "SELECT 1 FROM runs WHERE id = ?1 AND state = 'running' AND "
                 "COALESCE(runner, '') = ?2",
                 {id, runner})
              .empty();
}

void Runs::setPlan(int64_t id, const std::string& baseSha, const std::string& planJson) {
  db_.exec("UPDATE runs SET base_sha = ?1, plan = ?2 WHERE id = ?3", {baseSha, planJson, id});
}

void Runs::setBaseSha(int64_t id, const std::string& baseSha) {
  db_.exec("UPDATE runs SET base_sha = ?1 WHERE id = ?2", {baseSha, id});
}

void Runs::putHost(int64_t id, const RunHostView& h) {
  // every column is written: the row is replaced as a whole
  db_.exec(std::string("INSERT INTO run_hosts(run, ") + kHostColumns +
               ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) "
               "ON CONFLICT(run, host) DO UPDATE SET stage = excluded.stage, state = "
               "excluded.state, summary = excluded.summary, drv_path = excluded.drv_path, "
               "out_path = excluded.out_path, base_out_path = excluded.base_out_path, log_path = "
               "excluded.log_path, started_at = excluded.started_at, finished_at = "
               "excluded.finished_at, log_tail = excluded.log_tail, steps = excluded.steps",
           {id, h.host, std::string(toString(h.stage)), std::string(toString(h.state)), h.summary,
            sqlOpt(h.drvPath), sqlOpt(h.outPath), sqlOpt(h.baseOutPath), sqlOpt(h.logPath),
            sqlOpt(h.startedAt), sqlOpt(h.finishedAt), h.logTail, stepsJson(h.steps)});
}

bool Runs::putHostAs(int64_t id, const RunHostView& h, const std::string& runner) {
  bool ours = false;
  db_.transaction([&] {
    ours = isRunBy(id, runner);
    if (ours) putHost(id, h);
  });
  return ours;
}

std::vector<RunHostView> Runs::hosts(int64_t id) {
  std::vector<RunHostView> out;
  for (const auto& r : db_.query(std::string("SELECT ") + kHostColumns +
                                     " FROM run_hosts WHERE run = ?1 "
                                     "ORDER BY host",
                                 {id}))
    out.push_back(hostFrom(r));
  return out;
}

std::optional<RunHostView> Runs::host(int64_t id, const std::string& name) {
  auto rows = db_.query(
      std::string("SELECT ") + kHostColumns + " FROM run_hosts WHERE run = ?1 AND host = ?2",
      {id, name});
  if (rows.empty()) return std::nullopt;
  return hostFrom(rows[0]);
}

std::optional<RunRecord> Runs::latestForPullRequest(const std::string& forge,
                                                    const std::string& repo, int64_t prNumber) {
  auto rows = select("WHERE forge = ?3 AND repo = ?1 AND pr_number = ?2 ORDER BY id DESC LIMIT 1",
                     {repo, prNumber, forge});
  if (rows.empty()) return std::nullopt;
  return std::move(rows[0]);
}

void Runs::markAnnounced(int64_t id, RunState state) {
  db_.exec("UPDATE runs SET announced_state = ?1 WHERE id = ?2",
           {std::string(toString(state)), id});
}

std::vector<RunRecord> Runs::unannounced() {
  return select("WHERE state != announced_state AND state != 'running' ORDER BY id", {});
}

std::optional<RunRecord> Runs::latestForRef(const std::string& forge, const std::string& repo,
                                            const std::string& ref, RunKind kind) {
  auto rows =
      select("WHERE forge = ?4 AND repo = ?1 AND ref = ?2 AND kind = ?3 ORDER BY id DESC LIMIT 1",
             {repo, ref, std::string(toString(kind)), forge});
  if (rows.empty()) return std::nullopt;
  return std::move(rows[0]);
}

std::optional<RunRecord> Runs::latestForSha(const std::string& forge, const std::string& repo,
                                            const std::string& sha) {
  auto rows = select("WHERE forge = ?3 AND repo = ?1 AND sha = ?2 ORDER BY id DESC LIMIT 1",
                     {repo, sha, forge});
  if (rows.empty()) return std::nullopt;
  return std::move(rows[0]);
}

std::optional<std::string> Runs::lastDeployedSha(const std::string& forge, const std::string& repo,
                                                 const std::string& ref) {
  auto rows = db_.query(
      "SELECT sha FROM runs WHERE forge = ?3 AND repo = ?1 AND ref = ?2 AND state = 'succeeded' "
      "AND kind IN ('deploy', 'rerun') AND pr_number = 0 AND stage_filter IN ('', 'deploy') "
      "ORDER BY id DESC LIMIT 1",
      {repo, ref, forge});
  if (rows.empty()) return std::nullopt;
  return rows[0].text(0);
}

std::map<std::string, int64_t> Runs::countByState() {
  std::map<std::string, int64_t> out;
  for (const auto& r : db_.query("SELECT state, COUNT(*) FROM runs GROUP BY state"))
    out[r.text(0)] = r.integer(1);
  return out;
}

}  // namespace runner::store
