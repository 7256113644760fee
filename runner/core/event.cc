#include "runner/core/event.h"

#include <nlohmann/json.hpp>

#include "runner/core/error.h"

namespace runner {

const char* toString(EventKind k) {
  switch (k) {
    case EventKind::Push:
      return "push";
    case EventKind::PullRequest:
      return "pull_request";
    case EventKind::CommentCommand:
      return "comment_command";
    case EventKind::Rerun:
      return "rerun";
    case EventKind::Ignored:
      return "ignored";
  }
  return "?";
}

const char* toString(PrAction a) {
  switch (a) {
    case PrAction::None:
      return "";
    case PrAction::Opened:
      return "opened";
    case PrAction::Synchronized:
      return "synchronized";
    case PrAction::Reopened:
      return "reopened";
    case PrAction::Closed:
      return "closed";
    case PrAction::Merged:
      return "merged";
  }
  return "?";
}

namespace {
EventKind kindFrom(const std::string& s) {
  for (auto k : {EventKind::Push, EventKind::PullRequest, EventKind::CommentCommand,
                 EventKind::Rerun, EventKind::Ignored})
    if (s == toString(k)) return k;
  throw InputError("unknown event kind '" + s + "'");
}
PrAction actionFrom(const std::string& s) {
  for (auto a : {PrAction::None, PrAction::Opened, PrAction::Synchronized, PrAction::Reopened,
                 PrAction::Closed, PrAction::Merged})
    if (s == toString(a)) return a;
  throw InputError("unknown pull request action '" + s + "'");
}
}  // namespace

void to_json(nlohmann::json& j, const Event& e) {
  j = {{"kind", toString(e.kind)},
       {"forge", e.forge},
       {"forge_type", e.forgeType},
       {"delivery_id", e.deliveryId},
       {"event_name", e.eventName},
       {"repo", e.repo},
       {"clone_url", e.cloneUrl},
       {"sender", e.sender},
       {"ref", e.ref},
       {"before", e.before},
       {"after", e.after},
       {"created", e.created},
       {"forced", e.forced},
       {"total_commits", e.totalCommits},
       {"pr_action", toString(e.prAction)},
       {"pr_number", e.prNumber},
       {"head_sha", e.headSha},
       {"head_ref", e.headRef},
       {"base_ref", e.baseRef},
       {"base_sha", e.baseSha},
       {"head_repo", e.headRepo},
       {"head_clone_url", e.headCloneUrl},
       {"from_fork", e.fromFork},
       {"merge_sha", e.mergeSha},
       {"comment_id", e.commentId},
       {"comment_author", e.commentAuthor},
       {"command", e.command},
       {"hosts", e.hosts},
       {"stage", e.stage},
       {"run_id", e.runId},
       {"check_run_id", e.checkRunId},
       {"check_suite_id", e.checkSuiteId},
       {"external_id", e.externalId},
       {"requested_action", e.requestedAction},
       {"installation_id", e.installationId},
       {"ignored_reason", e.ignoredReason}};
}

void from_json(const nlohmann::json& j, Event& e) {
  e.kind = kindFrom(j.at("kind").get<std::string>());
  e.forge = j.value("forge", "");
  e.forgeType = j.value("forge_type", "");
  e.deliveryId = j.value("delivery_id", "");
  e.eventName = j.value("event_name", "");
  e.repo = j.value("repo", "");
  e.cloneUrl = j.value("clone_url", "");
  e.sender = j.value("sender", "");
  e.ref = j.value("ref", "");
  e.before = j.value("before", "");
  e.after = j.value("after", "");
  e.created = j.value("created", false);
  e.forced = j.value("forced", false);
  e.totalCommits = j.value("total_commits", int64_t{0});
  e.prAction = actionFrom(j.value("pr_action", ""));
  e.prNumber = j.value("pr_number", int64_t{0});
  e.headSha = j.value("head_sha", "");
  e.headRef = j.value("head_ref", "");
  e.baseRef = j.value("base_ref", "");
  e.baseSha = j.value("base_sha", "");
  e.headRepo = j.value("head_repo", "");
  e.headCloneUrl = j.value("head_clone_url", "");
  e.fromFork = j.value("from_fork", false);
  e.mergeSha = j.value("merge_sha", "");
  e.commentId = j.value("comment_id", int64_t{0});
  e.commentAuthor = j.value("comment_author", "");
  e.command = j.value("command", "");
  e.hosts = j.value("hosts", std::vector<std::string>{});
  e.stage = j.value("stage", "");
  e.runId = j.value("run_id", int64_t{0});
  e.checkRunId = j.value("check_run_id", int64_t{0});
  e.checkSuiteId = j.value("check_suite_id", int64_t{0});
  e.externalId = j.value("external_id", "");
  e.requestedAction = j.value("requested_action", "");
  e.installationId = j.value("installation_id", int64_t{0});
  e.ignoredReason = j.value("ignored_reason", "");
}

bool isZeroSha(std::string_view sha) {
  if (sha.empty()) return false;
  for (char c : sha)
    if (c != '0') return false;
  return true;
}

}  // namespace runner
