#include "runner/app/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "runner/core/run.h"
#include "runner/store/metrics_queries.h"
#include "runner/store/runs.h"

namespace runner::app {
namespace {

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string labelText(const std::map<std::string, std::string>& labels) {
  if (labels.empty()) return "";
  std::string s = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    if (!first) s += ",";
    first = false;
    s += k + "=\"" + escapeLabelValue(v) + "\"";
  }
  return s + "}";
}

const std::vector<double> kRunBounds = {1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200};
const std::vector<double> kStepBounds = {0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600};

}  // namespace

std::string escapeLabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void PromWriter::family(const std::string& name, const std::string& type, const std::string& help) {
  std::string h;
  for (char c : help) h += c == '\n' ? std::string("\\n") : c == '\\' ? "\\\\" : std::string(1, c);
  out_ += "# HELP " + name + " " + h + "\n# TYPE " + name + " " + type + "\n";
}

void PromWriter::sample(const std::string& name, const std::map<std::string, std::string>& labels,
                        double value) {
  out_ += name + labelText(labels) + " " + number(value) + "\n";
}

void PromWriter::histogram(const std::string& name, const std::string& help,
                           const std::vector<double>& bounds, const std::string& labelName,
                           const std::vector<std::pair<std::string, double>>& observations) {
  family(name, "histogram", help);
  std::map<std::string, std::vector<double>> by;
  for (const auto& [label, v] : observations) by[label].push_back(v);
  for (const auto& [label, values] : by) {
    double sum = 0;
    for (double v : values) sum += v;
    for (double b : bounds) {
      auto n = std::count_if(values.begin(), values.end(), [&](double v) { return v <= b; });
      sample(name + "_bucket", {{labelName, label}, {"le", number(b)}}, static_cast<double>(n));
    }
    sample(name + "_bucket", {{labelName, label}, {"le", "+Inf"}},
           static_cast<double>(values.size()));
    sample(name + "_sum", {{labelName, label}}, sum);
    sample(name + "_count", {{labelName, label}}, static_cast<double>(values.size()));
  }
}

std::optional<std::string> CountingDrvCache::get(const std::string& treeHash,
                                                 const std::string& host) {
  auto hit = inner_.get(treeHash, host);
  ++(hit ? counters_.cached : counters_.run);
  return hit;
}

void CountingDrvCache::put(const std::string& treeHash, const std::string& host,
                           const std::string& drvPath) {
  inner_.put(treeHash, host, drvPath);
}

void ForgeAnswers::add(const std::string& forge, int httpStatus) {
  MutexLock lk(mu_);
  ++n_[{forge, httpStatus}];
}

std::map<std::pair<std::string, int>, int64_t> ForgeAnswers::counts() const {
  MutexLock lk(mu_);
  return n_;
}

std::string renderMetrics(store::Database& db, const std::vector<fleet::FleetRow>& fleet,
                          int64_t nowMs, const LiveCounters* live) {
  auto m = store::readMetrics(db);
  PromWriter w;
  const EvalCounters* evals = live ? &live->evals : nullptr;

  w.family("switchyard_nix_evaluations_total", "counter",
           "Evaluations of a host's drvPath since the daemon started: run by Nix (a cache "
           "miss) or answered from the drvPath cache.");
  w.sample("switchyard_nix_evaluations_total", {{"result", "run"}},
           static_cast<double>(evals ? evals->run.load() : 0));
  w.sample("switchyard_nix_evaluations_total", {{"result", "cached"}},
           static_cast<double>(evals ? evals->cached.load() : 0));

  w.family("switchyard_deliveries_total", "counter",
           "Deliveries stored, by source (forge name, hook, cli, ui) and state. Ignored "
           "deliveries older than 30 days are pruned.");
  for (const auto& [key, n] : m.deliveries)
    w.sample("switchyard_deliveries_total", {{"forge", key.first}, {"state", key.second}},
             static_cast<double>(n));

  // The older family (kept for existing dashboards): every source together, by state.
  std::map<std::string, int64_t> byState;
  for (const auto& [key, n] : m.deliveries) byState[key.second] += n;
  w.family("switchyard_deliveries", "gauge", "Deliveries stored, by state.");
  for (const char* s : {"queued", "processed", "ignored", "failed"})
    w.sample("switchyard_deliveries", {{"state", s}},
             static_cast<double>(byState.count(s) ? byState.at(s) : 0));

  SystemClock clock;
  store::Runs runs(db, clock, "");
  auto rs = runs.countByState();
  w.family("switchyard_runs", "gauge", "Runs, by state.");
  for (auto s : {RunState::Queued, RunState::Running, RunState::Succeeded, RunState::Failed,
                 RunState::Superseded, RunState::Interrupted, RunState::Cancelled}) {
    std::string name = toString(s);
    w.sample("switchyard_runs", {{"state", name}},
             static_cast<double>(rs.count(name) ? rs.at(name) : 0));
  }
  int64_t queuedDeliveries = 0;
  for (const auto& [key, n] : m.deliveries)
    if (key.second == "queued") queuedDeliveries += n;
  w.family("switchyard_queue_depth", "gauge", "Deliveries and runs waiting.");
  w.sample("switchyard_queue_depth", {},
           static_cast<double>(queuedDeliveries + (rs.count("queued") ? rs.at("queued") : 0)));

  w.family("switchyard_outbox_pending", "gauge", "Forge calls waiting in the outbox, by forge.");
  for (const auto& [forge, n] : m.outboxPending)
    w.sample("switchyard_outbox_pending", {{"forge", forge}}, static_cast<double>(n));
  w.family("switchyard_outbox_oldest_pending_age_seconds", "gauge",
           "Age of the oldest forge call still waiting in the outbox, by forge.");
  for (const auto& [forge, at] : m.outboxOldestPendingMs)
    w.sample("switchyard_outbox_oldest_pending_age_seconds", {{"forge", forge}},
             static_cast<double>(std::max<int64_t>(0, nowMs - at)) / 1000.0);
  w.family("switchyard_forge_calls_total", "counter",
           "Forge calls (outbox rows) by forge and outcome: sent, failed (gave up), superseded "
           "(a newer state replaced it before it was sent), pending.");
  for (const auto& [key, n] : m.forgeCalls)
    w.sample("switchyard_forge_calls_total", {{"forge", key.first}, {"result", key.second}},
             static_cast<double>(n));
  w.family("switchyard_forge_responses_total", "counter",
           "The forges' answers to outbox calls since the daemon started, by forge and HTTP "
           "status code (\"none\": no answer, e.g. a timeout or a refused connection).");
  if (live)
    for (const auto& [key, n] : live->forgeAnswers.counts())
      w.sample("switchyard_forge_responses_total",
               {{"forge", key.first}, {"code", key.second ? std::to_string(key.second) : "none"}},
               static_cast<double>(n));
  w.family("switchyard_forge_call_attempts_total", "counter",
           "HTTP attempts made for forge calls, retries included, by forge.");
  for (const auto& [forge, n] : m.forgeAttempts)
    w.sample("switchyard_forge_call_attempts_total", {{"forge", forge}}, static_cast<double>(n));

  w.histogram("switchyard_run_duration_seconds", "Duration of finished runs, by kind.", kRunBounds,
              "kind", m.runSeconds);
  w.histogram("switchyard_host_stage_duration_seconds",
              "Duration of each host's last stage in finished runs (plan, build, deploy).",
              kRunBounds, "stage", m.stageSeconds);
  w.histogram("switchyard_deploy_step_duration_seconds",
              "Duration of deploy steps (connect, copy, activate, health, confirm, …).",
              kStepBounds, "step", m.deployStepSeconds);

  w.family("switchyard_host_last_deploy_timestamp_seconds", "gauge",
           "When the newest deploy of the host finished (unix seconds).");
  for (const auto& d : m.lastDeploys)
    w.sample("switchyard_host_last_deploy_timestamp_seconds",
             {{"forge", d.forge}, {"repo", d.repo}, {"host", d.host}},
             static_cast<double>(d.finishedAt) / 1000.0);
  w.family("switchyard_host_last_deploy_result", "gauge",
           "1 for the result of the host's newest deploy (succeeded, failed, rolled-back, "
           "unreachable, refused).");
  for (const auto& d : m.lastDeploys)
    w.sample("switchyard_host_last_deploy_result",
             {{"forge", d.forge}, {"repo", d.repo}, {"host", d.host}, {"result", d.result}}, 1);

  w.family("switchyard_host_generation", "gauge",
           "The system profile generation the host runs (probe, else the last deploy).");
  for (const auto& r : fleet)
    if (r.generation)
      w.sample("switchyard_host_generation",
               {{"forge", r.forge}, {"repo", r.repo}, {"host", r.host}},
               static_cast<double>(*r.generation));
  w.family("switchyard_host_drift", "gauge",
           "1 when the host needs attention (behind, rolled-back, changed-by-hand, "
           "unreachable), else 0; the drift label says which state it is in.");
  for (const auto& r : fleet)
    w.sample("switchyard_host_drift",
             {{"forge", r.forge},
              {"repo", r.repo},
              {"host", r.host},
              {"drift", fleet::toString(r.drift.drift)}},
             fleet::needsAttention(r.drift.drift) ? 1 : 0);
  w.family("switchyard_host_last_seen_timestamp_seconds", "gauge",
           "When the fleet probe last reached the host (unix seconds).");
  for (const auto& r : fleet)
    if (r.probe && r.probe->lastSeen)
      w.sample("switchyard_host_last_seen_timestamp_seconds",
               {{"forge", r.forge}, {"repo", r.repo}, {"host", r.host}},
               static_cast<double>(*r.probe->lastSeen) / 1000.0);
  return w.text();
}

}  // namespace runner::app
