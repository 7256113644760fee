// The human rendering of a Plan in a terminal: a compact table.
#pragma once

#include <string>

#include "runner/core/plan.h"

namespace runner::plan {

std::string formatPlanTable(const Plan& plan);
// (Reasons in words: runner::describeReasons in core/plan.h. The PR comment, also what
// `switchyard plan --markdown` prints, is rendered by runner/report from templates/.)

}  // namespace runner::plan
