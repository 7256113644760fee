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
// host, labelled with it) and when the probe last reached it.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "runner/core/config.h"
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

// Everything above, from the database and the fleet table. `nowMs` for ages.
std::string renderMetrics(store::Database& db, const std::vector<fleet::FleetRow>& fleet,
                          int64_t nowMs);

}  // namespace runner::app
