// `switchyard plan --format github-actions`: a plan as a step of someone else's CI (GitHub
// Actions, and Gitea/Forgejo Actions, which use the same variables):
//  * $GITHUB_OUTPUT gets `hosts=<JSON list of affected hosts>` (usable as a build matrix with
//    fromJSON), `count=<N>` and `any=true|false` (an empty matrix fails a job: guard on it);
//  * $GITHUB_STEP_SUMMARY gets the plan as the pull request comment shows it (Markdown);
//  * the plan's warnings become `::warning` workflow commands and hosts that cannot be built
//    (refused names, evaluation errors) `::error` commands, on the step's log.
#pragma once

#include <filesystem>
#include <optional>
#include <ostream>
#include <string>

#include "runner/core/plan.h"

namespace runner::app {

struct GithubActionsTargets {
  std::filesystem::path output;                  // $GITHUB_OUTPUT; appended to
  std::optional<std::filesystem::path> summary;  // $GITHUB_STEP_SUMMARY; appended to
};

// Reads GITHUB_OUTPUT and GITHUB_STEP_SUMMARY. Throws InputError naming the variable when
// GITHUB_OUTPUT is unset or empty (not inside an Actions step).
GithubActionsTargets githubActionsTargetsFromEnv();

// A workflow command's message, escaped as the runner reads it (%, CR, LF).
std::string escapeWorkflowData(std::string_view s);

// Appends the outputs and the summary (`summaryMarkdown`) to their files and writes the
// workflow commands and a one-line verdict to `log`. Throws SysError when a file cannot be
// appended to.
void writeGithubActions(const Plan& plan, const std::string& summaryMarkdown,
                        const GithubActionsTargets& targets, std::ostream& log);

}  // namespace runner::app
