#include "runner/core/run.h"

#include "runner/core/error.h"
#include "runner/core/forge.h"
#include "runner/core/text.h"

namespace runner {

const char* toString(RunKind k) {
  switch (k) {
    case RunKind::Check:
      return "check";
    case RunKind::Deploy:
      return "deploy";
    case RunKind::Rerun:
      return "rerun";
  }
  return "?";
}

const char* toString(RunTrigger t) {
  switch (t) {
    case RunTrigger::Push:
      return "push";
    case RunTrigger::PullRequest:
      return "pull_request";
    case RunTrigger::Comment:
      return "comment";
    case RunTrigger::Rerequest:
      return "rerequest";
    case RunTrigger::Manual:
      return "manual";
    case RunTrigger::Hook:
      return "hook";
  }
  return "?";
}

const char* toString(RunState s) {
  switch (s) {
    case RunState::Queued:
      return "queued";
    case RunState::Running:
      return "running";
    case RunState::Succeeded:
      return "succeeded";
    case RunState::Failed:
      return "failed";
    case RunState::Superseded:
      return "superseded";
    case RunState::Interrupted:
      return "interrupted";
    case RunState::Cancelled:
      return "cancelled";
  }
  return "?";
}

const char* toString(Stage s) {
  switch (s) {
    case Stage::Plan:
      return "plan";
    case Stage::Build:
      return "build";
    case Stage::Deploy:
      return "deploy";
  }
  return "?";
}

const char* toString(HostState s) {
  switch (s) {
    case HostState::Pending:
      return "pending";
    case HostState::Running:
      return "running";
    case HostState::Succeeded:
      return "succeeded";
    case HostState::Failed:
      return "failed";
    case HostState::NotAffected:
      return "not-affected";
    case HostState::Skipped:
      return "skipped";
    case HostState::RolledBack:
      return "rolled-back";
    case HostState::Unreachable:
      return "unreachable";
    case HostState::Refused:
      return "refused";
    case HostState::Superseded:
      return "superseded";
    case HostState::Interrupted:
      return "interrupted";
    case HostState::Waiting:
      return "waiting";
  }
  return "?";
}

namespace {
template <class E, class... Es>
E parse(std::string_view s, const char* what, E first, Es... rest) {
  for (E v : {first, rest...})
    if (s == toString(v)) return v;
  throw InputError(std::string("unknown ") + what + " '" + std::string(s) + "'");
}
}  // namespace

RunKind runKindFrom(std::string_view s) {
  return parse(s, "run kind", RunKind::Check, RunKind::Deploy, RunKind::Rerun);
}
RunTrigger runTriggerFrom(std::string_view s) {
  return parse(s, "run trigger", RunTrigger::Push, RunTrigger::PullRequest, RunTrigger::Comment,
               RunTrigger::Rerequest, RunTrigger::Manual, RunTrigger::Hook);
}
RunState runStateFrom(std::string_view s) {
  return parse(s, "run state", RunState::Queued, RunState::Running, RunState::Succeeded,
               RunState::Failed, RunState::Superseded, RunState::Interrupted, RunState::Cancelled);
}
Stage stageFrom(std::string_view s) {
  return parse(s, "stage", Stage::Plan, Stage::Build, Stage::Deploy);
}
HostState hostStateFrom(std::string_view s) {
  return parse(s, "host state", HostState::Pending, HostState::Running, HostState::Succeeded,
               HostState::Failed, HostState::NotAffected, HostState::Skipped, HostState::RolledBack,
               HostState::Unreachable, HostState::Refused, HostState::Superseded,
               HostState::Interrupted, HostState::Waiting);
}

std::string toExternalId(const CheckRunKey& key) {
  return "run:" + std::to_string(key.runId) + ":" + toString(key.stage) + ":" +
         (key.stage == Stage::Plan ? std::string() : key.host);
}

std::optional<CheckRunKey> parseExternalId(std::string_view id) {
  auto parts = split(id, ':');
  if (parts.size() != 4 || parts[0] != "run" || parts[1].empty()) return std::nullopt;
  CheckRunKey key;
  for (char c : parts[1]) {
    if (c < '0' || c > '9' || key.runId > (INT64_MAX - 9) / 10) return std::nullopt;
    key.runId = key.runId * 10 + (c - '0');
  }
  if (parts[2] == "plan")
    key.stage = Stage::Plan;
  else if (parts[2] == "build")
    key.stage = Stage::Build;
  else if (parts[2] == "deploy")
    key.stage = Stage::Deploy;
  else
    return std::nullopt;
  if (!parts[3].empty() && !isHostName(parts[3])) return std::nullopt;
  key.host = std::move(parts[3]);
  return key;
}

bool isFinal(RunState s) { return s != RunState::Queued && s != RunState::Running; }
bool isFinal(HostState s) { return s != HostState::Pending && s != HostState::Running; }

}  // namespace runner
