#include "runner/plan/plan_format.h"

#include <algorithm>

#include "runner/core/text.h"

namespace runner::plan {
namespace {

std::string code(const std::string& s, bool md) { return md ? "`" + s + "`" : s; }

std::string locked(const std::optional<LockedSummary>& s) {
  if (!s) return "-";
  if (s->rev) return shortSha(*s->rev, 12);
  if (s->narHash) return s->narHash->substr(0, 19);
  return "?";
}

}  // namespace

std::string describeReasons(const HostPlan& host, bool md) {
  std::vector<std::string> parts;
  for (const auto& r : host.reasons) {
    switch (r.kind) {
      case ReasonKind::File:
        parts.push_back("file " + code(r.path, md));
        break;
      case ReasonKind::Input:
        parts.push_back("input " + code(r.name, md));
        break;
      case ReasonKind::Global:
        parts.push_back("global " + code(r.path, md) +
                        (r.detail.empty() ? "" : " (" + r.detail + ")"));
        break;
      case ReasonKind::Dynamic:
        parts.push_back("dynamic: " + r.detail);
        break;
      case ReasonKind::Drv:
        parts.push_back("derivation changed");
        break;
      case ReasonKind::SelfRevisionOnly:
        parts.push_back("only the flake's own revision changed");
        break;
      case ReasonKind::NewHost:
        parts.push_back("new host");
        break;
      case ReasonKind::RemovedHost:
        parts.push_back("removed");
        break;
    }
  }
  if (host.evalError) parts.push_back("evaluation failed: " + *host.evalError);
  return parts.empty() ? "-" : join(parts, "; ");
}

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

std::string formatPlanMarkdown(const Plan& plan) {
  size_t affected = plan.affectedHosts().size();
  size_t total = std::count_if(plan.hosts.begin(), plan.hosts.end(), [](const HostPlan& h) {
    return !h.hasReason(ReasonKind::RemovedHost);
  });
  std::string out = "### Switchyard plan: " + std::to_string(affected) + " of " +
                    std::to_string(total) + " machines affected\n\n";
  out += "`" + shortSha(plan.from) + "` → `" + shortSha(plan.to) + "` (" + toString(plan.mode) +
         ")\n\n";
  out += "| Machine | Affected | Why |\n|---|---|---|\n";
  for (const auto& h : plan.hosts)
    out += "| " + h.name + " | " + (h.affected ? "**yes**" : "no") + " | " +
           describeReasons(h, true) + " |\n";
  if (!plan.inputsChanged.empty()) {
    out += "\n**Inputs changed**\n\n| Input | Change | Old | New |\n|---|---|---|---|\n";
    for (const auto& c : plan.inputsChanged) {
      std::string change =
          c.added     ? "added"
          : c.removed ? "removed"
          : c.transitive
              ? "via " + join(std::vector<std::string>(c.path.begin() + 1, c.path.end()), "/")
              : "updated";
      out += "| `" + c.name + "` | " + change + " | `" + locked(c.oldLocked) + "` | `" +
             locked(c.newLocked) + "` |\n";
    }
  }
  if (!plan.warnings.empty()) {
    out += "\n";
    for (const auto& w : plan.warnings) out += "> ⚠️ " + w + "\n";
  }
  return out;
}

}  // namespace runner::plan
