#include "runner/app/github_actions.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"

namespace runner::app {
namespace {

void appendTo(const std::filesystem::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::app | std::ios::binary);
  if (!out) throw SysError(errno, "opening " + file.string() + " to append");
  out << text;
  out.flush();
  if (!out) throw SysError(errno, "appending to " + file.string());
}

}  // namespace

GithubActionsTargets githubActionsTargetsFromEnv() {
  const char* output = std::getenv("GITHUB_OUTPUT");
  if (!output || !*output)
    throw InputError(
        "--format github-actions: GITHUB_OUTPUT is not set (run it as a step of GitHub or "
        "Gitea/Forgejo Actions, or set it to a file)");
  GithubActionsTargets t;
  t.output = output;
  if (const char* s = std::getenv("GITHUB_STEP_SUMMARY"); s && *s) t.summary = s;
  return t;
}

std::string escapeWorkflowData(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '%')
      out += "%25";
    else if (c == '\r')
      out += "%0D";
    else if (c == '\n')
      out += "%0A";
    else
      out += c;
  }
  return out;
}

void writeGithubActions(const Plan& plan, const std::string& summaryMarkdown,
                        const GithubActionsTargets& targets, std::ostream& log) {
  const auto affected = plan.affectedHosts();
  // One line per output: the JSON list has no newline in it (dump() without indent).
  std::string outputs = "hosts=" + nlohmann::json(affected).dump() + "\n" +
                        "count=" + std::to_string(affected.size()) + "\n" +
                        "any=" + (affected.empty() ? "false" : "true") + "\n";
  appendTo(targets.output, outputs);
  if (targets.summary) appendTo(*targets.summary, summaryMarkdown + "\n");

  for (const auto& w : plan.warnings)
    log << "::warning title=switchyard plan::" << escapeWorkflowData(w) << "\n";
  if (!plan.discoveryError.empty())
    log << "::warning title=switchyard plan::" << escapeWorkflowData(plan.discoveryError) << "\n";
  for (const auto& h : plan.hosts) {
    if (h.refused)
      log << "::error title=switchyard plan " << escapeWorkflowData(h.name)
          << "::" << escapeWorkflowData(*h.refused) << "\n";
    else if (h.evalError)
      log << "::error title=switchyard plan " << escapeWorkflowData(h.name)
          << "::" << escapeWorkflowData(*h.evalError) << "\n";
  }
  log << "switchyard: " << affected.size() << " of " << plan.hosts.size()
      << (plan.hosts.size() == 1 ? " host" : " hosts") << " affected"
      << (affected.empty() ? std::string() : ": " + nlohmann::json(affected).dump()) << "\n";
}

}  // namespace runner::app
