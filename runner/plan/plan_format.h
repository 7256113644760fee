// Human renderings of a Plan: a compact terminal table, and the Markdown a pull request
// comment shows.
#pragma once

#include <string>

#include "runner/core/plan.h"

namespace runner::plan {

std::string formatPlanTable(const Plan& plan);
std::string formatPlanMarkdown(const Plan& plan);
// "file modules/core/default.nix; input nixpkgs"
std::string describeReasons(const HostPlan& host, bool markdown = false);

}  // namespace runner::plan
