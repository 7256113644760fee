// What the PR comment and the check runs say in markdown, built from the run, its plan and
// its hosts and rendered with the templates (templates.h):
//
//  * the PR comment (one per pull request, edited in place): the plan table — every host,
//    affected or not, why, and once known its result — the changed inputs with old → new
//    revisions, and for each built affected host its closure diff between the base and the
//    new toplevel (`nix store diff-closures`, through ClosureDiffer);
//  * a check run's summary: its words, the plan table for the plan check run, the end of
//    the log for a host that failed.
//
// The comment is queued as a *model* (JSON: run, plan, hosts with their toplevels) and
// rendered by the sender when it is sent, so closure diffs (a Nix process each) never run on
// the scheduler's thread, and only the newest of a burst of updates is ever rendered.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/core/plan.h"
#include "runner/core/run.h"
#include "runner/report/closure_diff.h"
#include "runner/report/templates.h"

namespace runner::report {

// The comment's model. `plan` may be null (the plan failed or has not happened);
// `hosts` may be empty (not started: results come from the plan).
nlohmann::json commentModel(const RunView& run, const Plan* plan,
                            const std::vector<RunHostView>& hosts);

// The plan table's template view (templates/plan_table.md.mustache). `results`, when not
// null, adds a Result column: host -> words ("✅ built in 2m14s").
nlohmann::json planTableView(const Plan& plan, const std::map<std::string, std::string>* results);

// "✅ built in 2m14s", "⏳ waiting to build", "⚪ not affected", "❌ build failed", …
std::string resultWords(const RunView& run, const RunHostView& host);

struct CommentLimits {
  size_t packagesPerHost = 40;  // closure diff rows per host before "… and N more"
  size_t maxBytes = 60000;      // GitHub refuses comment bodies over 65536 characters
};

class CommentRenderer {
 public:
  // `templates` must outlive this; `differ` may be null (no closure diffs) and must outlive
  // this otherwise.
  CommentRenderer(const Templates& templates, ClosureDiffer* differ, CommentLimits limits = {})
      : templates_(templates), differ_(differ), limits_(limits) {}

  // The comment body (without the marker line) for a model from commentModel(). Runs
  // diff-closures for each affected host that was built and has a base toplevel. Throws
  // InputError when the model or a template is malformed.
  std::string render(const nlohmann::json& model) const;

 private:
  const Templates& templates_;
  ClosureDiffer* differ_;
  CommentLimits limits_;
};

// A check run's summary markdown (templates/check_run.md.mustache). `plan` (plan check run)
// and `logTail` (a failed host) may be null/empty. At most 60000 bytes.
std::string renderCheckRunSummary(const Templates& templates, const RunView& run,
                                  const std::string& description, const Plan* plan,
                                  const std::string& logTail);

}  // namespace runner::report
