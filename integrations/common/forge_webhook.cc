#include "integrations/common/forge_webhook.h"

#include <nlohmann/json.hpp>

#include "runner/core/text.h"

namespace runner {

using nlohmann::json;

bool isFormDelivery(const WebhookDelivery& d) {
  auto type = d.headers.get("Content-Type");
  return type && startsWith(toLower(trim(*type)), "application/x-www-form-urlencoded");
}

std::optional<std::string> readWebhookPayload(const WebhookDelivery& d, json& payload) {
  // The signature covers the body's bytes; they are read as exactly one thing, JSON. A form
  // delivery would be read differently under an unsigned Content-Type (README "Decisions").
  if (isFormDelivery(d))
    return "form-encoded deliveries are not accepted: set the hook's content type to "
           "application/json";
  if (auto type = d.headers.get("Content-Type")) {
    std::string t = toLower(trim(*type));
    if (!t.empty() && !startsWith(t, "application/json"))
      return "Content-Type must be application/json, not " + neutralizeControls(*type);
  }
  payload = json::parse(d.body, nullptr, /*allow_exceptions=*/false);
  if (payload.is_discarded()) return "body is not JSON";
  if (!payload.is_object()) return "body is not a JSON object";
  return std::nullopt;
}

Event ignoredEvent(Event e, std::string why) {
  e.kind = EventKind::Ignored;
  e.ignoredReason = std::move(why);
  return e;
}

std::optional<std::string> readPushRefs(const json& p, Event& e) {
  // The event name comes from an unsigned header: the payload must have a push's shape.
  for (const char* key : {"ref", "before", "after"}) {
    const json* v = jsonFind(p, {key});
    if (!v || !v->is_string() || v->get<std::string>().empty())
      return std::string("push payload has no '") + key + "'";
  }
  for (const char* key : {"pull_request", "issue", "comment", "check_run", "check_suite"})
    if (jsonFind(p, {key})) return std::string("push payload has a '") + key + "' object";
  const json* repo = jsonFind(p, {"repository", "full_name"});
  if (!repo || !repo->is_string() || repo->get<std::string>().empty())
    return std::string("push payload has no repository.full_name");
  e.ref = p["ref"].get<std::string>();
  e.before = p["before"].get<std::string>();
  e.after = p["after"].get<std::string>();
  if (auto why = refNameProblem(e.ref)) return "push ref is not a ref name: " + *why;
  if (!isCommitId(e.before)) return std::string("push 'before' is not a commit id");
  if (!isCommitId(e.after)) return std::string("push 'after' is not a commit id");
  return std::nullopt;
}

ParseResult classifyPush(Event e, bool deleted) {
  if (startsWith(e.ref, "refs/tags/")) return ParseResult::parsed(ignoredEvent(e, "tag push"));
  if (!startsWith(e.ref, "refs/heads/"))
    return ParseResult::parsed(ignoredEvent(e, "push to " + e.ref + " (not a branch)"));
  if (deleted || isZeroSha(e.after)) return ParseResult::parsed(ignoredEvent(e, "branch deleted"));
  e.kind = EventKind::Push;
  return ParseResult::parsed(std::move(e));
}

namespace {

void fillPullRequest(const json& pr, const json& payload, const PullRequestDialect& dialect,
                     Event& e) {
  PullRequestInfo info = pullRequestFromJson(pr, e.repo);
  e.prNumber = info.number;
  e.headSha = std::move(info.headSha);
  e.headRef = std::move(info.headRef);
  e.baseRef = std::move(info.baseRef);
  e.baseSha = std::move(info.baseSha);
  // head.repo is null when the fork was deleted; compare names, not head.repo.fork (a PR
  // inside a repository that is itself a fork has fork: true on both sides).
  e.headRepo = std::move(info.headRepo);
  e.headCloneUrl = std::move(info.headCloneUrl);
  e.fromFork = info.fromFork;
  if (e.headRepo.empty() && dialect.identifyHeadRepo)
    dialect.identifyHeadRepo(pr, payload, info.baseRepo, e);
}

bool retargeted(const json& p, const PullRequestDialect& dialect) {
  for (const auto& key : dialect.retargetKeys)
    if (jsonFind(p, {"changes", key})) return true;
  return false;
}

std::string actionOrNone(const std::string& action) {
  return action.empty() ? std::string("without action") : action;
}

}  // namespace

ParseResult parsePullRequestPayload(const json& p, Event e, const PullRequestDialect& dialect) {
  const json* pr = jsonFind(p, {"pull_request"});
  if (!pr || !pr->is_object()) return ParseResult::bad("pull_request payload has no pull_request");
  std::string action = jsonString(p, {"action"});
  fillPullRequest(*pr, p, dialect, e);
  if (e.prNumber == 0) e.prNumber = jsonInt(p, {"number"});

  PrAction a = PrAction::None;
  if (action == "opened") {
    a = PrAction::Opened;
  } else if (action == "reopened") {
    a = PrAction::Reopened;
  } else if (action == "synchronize" ||
             action == "synchronized" ||  // GitHub || Gitea
                                          // retargeted to another base branch: the plan changes
             (action == "edited" && retargeted(p, dialect))) {
    a = PrAction::Synchronized;
  } else if (action == "closed") {
    a = jsonBool(*pr, {"merged"}) ? PrAction::Merged : PrAction::Closed;
  }
  if (a == PrAction::None)
    return ParseResult::parsed(ignoredEvent(e, "pull request " + actionOrNone(action)));
  if (e.headSha.empty() || e.prNumber == 0)
    return ParseResult::bad("pull_request payload has no head sha or number");
  if (!isCommitId(e.headSha) || (!e.baseSha.empty() && !isCommitId(e.baseSha)))
    return ParseResult::bad("pull_request head or base sha is not a commit id");
  if (e.prNumber < 0) return ParseResult::bad("pull_request number is negative");
  // the head branch name reaches a git refspec when the runner fetches a fork's commit
  for (const std::string* branch : {&e.headRef, &e.baseRef})
    if (!branch->empty() && refNameProblem("refs/heads/" + *branch))
      return ParseResult::bad("pull_request branch name '" + neutralizeControls(*branch) +
                              "' is not a branch name");
  if (a == PrAction::Synchronized && dialect.synchronizeHasRange) {
    // synchronize carries the old and new head; keep them for the plan's range
    e.before = jsonString(p, {"before"});
    e.after = jsonString(p, {"after"});
    if ((!e.before.empty() && !isCommitId(e.before)) || (!e.after.empty() && !isCommitId(e.after)))
      return ParseResult::bad("pull_request before or after is not a commit id");
  }
  // merge_commit_sha is also set on open PRs (a test merge); it means something only when merged
  if (a == PrAction::Merged) e.mergeSha = jsonString(*pr, {"merge_commit_sha"});
  e.prAction = a;
  e.kind = EventKind::PullRequest;
  return ParseResult::parsed(std::move(e));
}

ParseResult parseIssueCommentPayload(const json& p, Event e, const PullRequestDialect& dialect) {
  const json* comment = jsonFind(p, {"comment"});
  const json* issue = jsonFind(p, {"issue"});
  if (!comment || !comment->is_object() || !issue || !issue->is_object())
    return ParseResult::bad("issue_comment payload has no comment or issue");
  e.prNumber = jsonInt(*issue, {"number"});
  e.commentId = jsonInt(*comment, {"id"});
  e.commentAuthor = jsonString(*comment, {"user", "login"});
  std::string action = jsonString(p, {"action"});
  if (action != "created")
    return ParseResult::parsed(ignoredEvent(e, "comment " + actionOrNone(action)));
  const json* prMark = jsonFind(*issue, {"pull_request"});
  bool onPull = (prMark && prMark->is_object()) ||
                (!dialect.pullRequestFlag.empty() && jsonBool(p, {dialect.pullRequestFlag}));
  if (!onPull)
    return ParseResult::parsed(ignoredEvent(e, "comment on an issue, not a pull request"));

  auto cmd = parseCommentCommand(jsonString(*comment, {"body"}));
  if (cmd.kind == CommentCommand::Kind::None)
    return ParseResult::parsed(ignoredEvent(e, "comment without a /switchyard command"));
  if (cmd.kind == CommentCommand::Kind::Invalid)
    return ParseResult::parsed(ignoredEvent(e, "invalid /switchyard command: " + cmd.problem));
  if (e.prNumber == 0 || e.commentId == 0)
    return ParseResult::bad("issue_comment payload has no issue number or comment id");

  // Otherwise headSha stays "" and the scheduler asks Forge::pullRequest.
  if (dialect.commentHasPullRequest)
    if (const json* pr = jsonFind(p, {"pull_request"}); pr && pr->is_object())
      fillPullRequest(*pr, p, dialect, e);
  e.kind = EventKind::CommentCommand;
  e.command = cmd.command;
  e.hosts = cmd.hosts;
  return ParseResult::parsed(std::move(e));
}

}  // namespace runner
