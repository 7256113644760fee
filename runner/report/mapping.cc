#include "runner/report/mapping.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <set>

#include "runner/core/text.h"

namespace runner::report {
namespace {

const char* pastTense(Stage stage) {
  switch (stage) {
    case Stage::Plan:
      return "planned";
    case Stage::Build:
      return "built";
    case Stage::Deploy:
      return "deployed";
  }
  return "built";
}

const char* progressive(Stage stage) {
  switch (stage) {
    case Stage::Plan:
      return "planning";
    case Stage::Build:
      return "building";
    case Stage::Deploy:
      return "deploying";
  }
  return "building";
}

}  // namespace

std::string contextName(Stage stage, std::string_view host) {
  if (stage == Stage::Plan || host.empty()) return "switchyard/plan";
  return std::string("switchyard/") + toString(stage) + "/" + std::string(host);
}

StatusState statusStateFor(HostState state) {
  switch (state) {
    case HostState::Pending:
    case HostState::Running:
    case HostState::Waiting:  // a required status stays pending until someone approves
      return StatusState::Pending;
    case HostState::Succeeded:
    case HostState::NotAffected:
      return StatusState::Success;
    case HostState::Failed:
    case HostState::RolledBack:
      return StatusState::Failure;
    case HostState::Unreachable:
    case HostState::Refused:
    case HostState::Skipped:
    case HostState::Superseded:
    case HostState::Interrupted:
      return StatusState::Error;
  }
  return StatusState::Error;
}

CheckStatus checkStatusFor(HostState state) {
  if (state == HostState::Pending) return CheckStatus::Queued;
  if (state == HostState::Running) return CheckStatus::InProgress;
  return CheckStatus::Completed;
}

std::optional<CheckConclusion> conclusionFor(HostState state) {
  switch (state) {
    case HostState::Pending:
    case HostState::Running:
      return std::nullopt;
    case HostState::Succeeded:
    case HostState::NotAffected:
      return CheckConclusion::Success;
    case HostState::Failed:
    case HostState::RolledBack:
    case HostState::Unreachable:
    case HostState::Refused:
      return CheckConclusion::Failure;
    case HostState::Skipped:
      return CheckConclusion::Skipped;
    case HostState::Waiting:
      return CheckConclusion::ActionRequired;
    case HostState::Superseded:
    case HostState::Interrupted:
      return CheckConclusion::Cancelled;
  }
  return CheckConclusion::Failure;
}

std::string oneLine(std::string_view text) {
  std::string out;
  bool space = false;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

std::string describeHost(const RunView& run, Stage stage, const RunHostView& host) {
  std::string summary = oneLine(host.summary);
  if (!summary.empty()) return summary;
  switch (host.state) {
    case HostState::Pending:
      return std::string("waiting to ") + toString(stage);
    case HostState::Running:
      return progressive(stage);
    case HostState::Succeeded:
      if (host.startedAt && host.finishedAt && *host.finishedAt >= *host.startedAt)
        return std::string(pastTense(stage)) + " in " +
               formatDuration(std::chrono::milliseconds(*host.finishedAt - *host.startedAt));
      return pastTense(stage);
    case HostState::NotAffected:
      return "not affected";
    case HostState::Failed:
      return std::string(toString(stage)) + " failed";
    case HostState::RolledBack:
      return "rolled back";
    case HostState::Unreachable:
      return "unreachable";
    case HostState::Refused:
      return std::string(toString(stage)) + " refused";
    case HostState::Skipped:
      return "skipped";
    case HostState::Superseded:
      return run.supersededBy ? "superseded by run #" + std::to_string(*run.supersededBy)
                              : std::string("superseded");
    case HostState::Interrupted:
      return "interrupted: the runner stopped";
    case HostState::Waiting:
      return "waiting for approval (a writer comments /switchyard approve)";
  }
  return toString(host.state);
}

std::string describePlan(const Plan& plan) {
  size_t total = 0, affected = 0, broken = 0;
  for (const auto& h : plan.hosts) {
    if (h.hasReason(ReasonKind::RemovedHost)) continue;
    ++total;
    affected += h.affected;
    broken += h.evalError.has_value();
  }
  std::string out;
  if (affected == 0)
    out =
        "no machine affected (" + std::to_string(total) + (total == 1 ? " machine)" : " machines)");
  else
    out = std::to_string(affected) + " of " + std::to_string(total) +
          (total == 1 ? " machine affected" : " machines affected");
  if (broken > 0)
    out += ", " + std::to_string(broken) + (broken == 1 ? " does" : " do") + " not evaluate";
  return out;
}

bool runDeploys(const RunView& run) {
  if (run.fromFork || run.prNumber != 0) return false;
  if (run.kind == RunKind::Deploy) return true;
  if (run.kind == RunKind::Rerun) return !run.stageFilter || *run.stageFilter == Stage::Deploy;
  return false;
}

namespace {

bool inNixpkgsTree(std::string_view rel) {
  if (startsWith(rel, "nixos/") || startsWith(rel, "pkgs/")) return true;
  return startsWith(rel, "lib/") && rel.find('/', 4) == std::string_view::npos;
}

// "hosts/web1.nix", 12 of a line holding "/nix/store/<32>-source/hosts/web1.nix:12:5".
std::optional<std::pair<std::string, int>> sourcePlace(std::string_view line) {
  static constexpr std::string_view kStore = "/nix/store/";
  for (size_t at = line.find(kStore); at != std::string_view::npos;
       at = line.find(kStore, at + 1)) {
    std::string_view rest = line.substr(at + kStore.size());
    if (rest.size() < 40 || rest.substr(32, 8) != "-source/") continue;
    rest.remove_prefix(40);
    size_t colon = rest.find(':');
    if (colon == 0 || colon == std::string_view::npos) continue;
    std::string_view rel = rest.substr(0, colon);
    if (rel.find_first_of(" \t\"'") != std::string_view::npos || rel.find("..") != rel.npos)
      continue;
    std::string_view digits = rest.substr(colon + 1);
    int lineNo = 0;
    size_t n = 0;
    while (n < digits.size() && n < 7 && digits[n] >= '0' && digits[n] <= '9')
      lineNo = lineNo * 10 + (digits[n++] - '0');
    if (n == 0 || lineNo < 1) continue;
    return std::make_pair(std::string(rel), lineNo);
  }
  return std::nullopt;
}

}  // namespace

std::vector<CheckAnnotation> failureAnnotations(std::string_view subject, std::string_view words,
                                                std::string_view log) {
  constexpr size_t kMaxPlaces = 10, kTailLines = 20;
  std::vector<CheckAnnotation> out;
  if (trim(log).empty()) return out;
  auto lines = split(log, '\n');
  std::string error;
  for (const auto& l : lines)
    if (auto e = l.find("error:"); e != std::string::npos && error.empty())
      error = std::string(trim(std::string_view(l).substr(e)));
  size_t first = lines.size() > kTailLines ? lines.size() - kTailLines : 0;
  std::string tail;
  for (size_t i = first; i < lines.size(); ++i)
    tail += lines[i] + (i + 1 < lines.size() ? "\n" : "");
  const std::string title = std::string(subject) + ": " + std::string(words);

  std::set<std::pair<std::string, int>> seen;
  for (const auto& l : lines) {
    auto place = sourcePlace(l);
    if (!place || inNixpkgsTree(place->first) || !seen.insert(*place).second) continue;
    CheckAnnotation a;
    a.path = place->first;
    a.startLine = a.endLine = place->second;
    a.title = title;
    a.message = error.empty() ? std::string(words) : error;
    if (out.empty()) a.rawDetails = tail;
    out.push_back(std::move(a));
    if (out.size() == kMaxPlaces) break;
  }
  if (out.empty()) {
    CheckAnnotation a;
    a.path = "flake.nix";
    a.title = title + " (last log lines)";
    a.message = tail;
    out.push_back(std::move(a));
  }
  return out;
}

}  // namespace runner::report
