#include "runner/plan/plan_format.h"

#include <algorithm>

#include "runner/core/text.h"

namespace runner::plan {
namespace {

std::string locked(const std::optional<LockedSummary>& s) {
  if (!s) return "-";
  if (s->rev) return shortSha(*s->rev, 12);
  if (s->narHash) return s->narHash->substr(0, 19);
  return "?";
}

}  // namespace

std::string formatPlanTable(const Plan& plan) {
  size_t affected = plan.affectedHosts().size();
  size_t total = std::count_if(plan.hosts.begin(), plan.hosts.end(), [](const HostPlan& h) {
    return !h.hasReason(ReasonKind::RemovedHost);
  });
  std::string out = "plan " + shortSha(plan.from) + ".." + shortSha(plan.to) + " (" +
                    toString(plan.mode) + "): " + std::to_string(affected) + " of " +
                    std::to_string(total) + " hosts affected\n";
  size_t w = 4;
  for (const auto& h : plan.hosts) w = std::max(w, h.name.size());
  out += "HOST" + std::string(w - 4 + 2, ' ') + "AFFECTED  REASONS\n";
  for (const auto& h : plan.hosts) {
    out += h.name + std::string(w - h.name.size() + 2, ' ') +
           (h.affected ? "yes       " : "no        ") + describeReasons(h) + "\n";
  }
  for (const auto& c : plan.inputsChanged) {
    out += "input " + c.name + ": ";
    if (c.added)
      out += "added";
    else if (c.removed)
      out += "removed";
    else
      out += (c.transitive
                  ? "via " + join(std::vector<std::string>(c.path.begin() + 1, c.path.end()), "/") +
                        " "
                  : "") +
             locked(c.oldLocked) + " -> " + locked(c.newLocked);
    out += "\n";
  }
  out += std::to_string(plan.filesChanged.size()) + " files changed\n";
  for (const auto& w2 : plan.warnings) out += "warning: " + w2 + "\n";
  return out;
}

}  // namespace runner::plan
