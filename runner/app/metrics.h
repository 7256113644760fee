// /metrics in the Prometheus text exposition format (0.0.4), issue 14. Every family has its
// # HELP and # TYPE lines once, before its samples; label values are escaped (\\, \", \n);
// names follow the conventions (switchyard_…_seconds for durations, _total for counters,
// _timestamp_seconds for points in time). Histograms have cumulative buckets, +Inf, _sum
// and _count.
//
// Families: deliveries by forge and state (switchyard_deliveries_total), runs by state,
// queue depth, outbox depth and oldest pending age per forge, forge calls by forge and
// outcome (and attempts), run / host stage / deploy step duration histograms, and per host:
// the last deploy's time and result, the current generation, the drift state (one series per
// host, labelled with it) and when the probe last reached it. Counted in memory since the
// daemon started: forge answers by status code, Nix evaluations run vs answered from the
// drvPath cache. templates/grafana-dashboard.json charts them.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/drv_cache.h"
#include "runner/core/thread_annotations.h"
#include "runner/fleet/fleet.h"
#include "runner/store/database.h"

namespace runner::app {

// Writes one exposition. Families must be written whole (help/type, then their samples).
class PromWriter {
 public:
  void family(const std::string& name, const std::string& type, const std::string& help);
  void sample(const std::string& name, const std::map<std::string, std::string>& labels,
              double value);
  // A histogram family `name` (no suffix) with these upper bounds, one series per label set.
  void histogram(const std::string& name, const std::string& help,
                 const std::vector<double>& bounds, const std::string& labelName,
                 const std::vector<std::pair<std::string, double>>& observations);
  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

// "a\"b" -> a\"b with backslash, double quote and newline escaped.
std::string escapeLabelValue(const std::string& v);

// How Nix evaluations of hosts' drvPaths went since the daemon started: answered from the
// drvPath cache, or run (a cache miss: the planner asks Nix). Counted by CountingDrvCache.
struct EvalCounters {
  std::atomic<int64_t> cached{0};
  std::atomic<int64_t> run{0};
};

// A DrvPathCache that counts its answers into `counters` and forwards everything to `inner`.
// Thread-safe as far as `inner` is; both must outlive it.
class CountingDrvCache final : public DrvPathCache {
 public:
  CountingDrvCache(DrvPathCache& inner, EvalCounters& counters)
      : inner_(inner), counters_(counters) {}
  std::optional<std::string> get(const std::string& treeHash, const std::string& host) override;
  void put(const std::string& treeHash, const std::string& host,
           const std::string& drvPath) override;

 private:
  DrvPathCache& inner_;
  EvalCounters& counters_;
};

// The forges' answers to the outbox's calls since the daemon started, by forge and HTTP status
// (0: no answer). Fed by report::SenderOptions::answered. Thread-safe.
class ForgeAnswers {
 public:
  void add(const std::string& forge, int httpStatus);
  std::map<std::pair<std::string, int>, int64_t> counts() const;

 private:
  mutable Mutex mu_;
  std::map<std::pair<std::string, int>, int64_t> n_ GUARDED_BY(mu_);
};

// What only the running daemon knows (counted in memory since it started).
struct LiveCounters {
  EvalCounters evals;
  ForgeAnswers forgeAnswers;
};

// Everything above, from the database and the fleet table. `nowMs` for ages. `live`: the
// daemon's counters (nullptr: those families are written without samples, or zeros).
std::string renderMetrics(store::Database& db, const std::vector<fleet::FleetRow>& fleet,
                          int64_t nowMs, const LiveCounters* live = nullptr);

}  // namespace runner::app
