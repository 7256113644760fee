#include "runner/core/forge_webhook.h"

#include <nlohmann/json.hpp>

#include "runner/core/text.h"

namespace runner {

using nlohmann::json;

bool isFormDelivery(const WebhookDelivery& d) {
  auto type = d.headers.get("Content-Type");
  return type && startsWith(toLower(trim(*type)), "application/x-www-form-urlencoded");
}

std::optional<std::string> webhookPayloadText(const WebhookDelivery& d) {
  if (!isFormDelivery(d)) return d.body;
  return formValue(d.body, "payload");
}

std::optional<std::string> readWebhookPayload(const WebhookDelivery& d, json& payload) {
  auto text = webhookPayloadText(d);
  if (!text) return "form body has no payload field";
  payload = json::parse(*text, nullptr, /*allow_exceptions=*/false);
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
  for (const char* key : {"ref", "before", "after"}) {
    const json* v = jsonFind(p, {key});
    if (!v || !v->is_string() || v->get<std::string>().empty())
      return std::string("push payload has no '") + key + "'";
  }
  e.ref = p["ref"].get<std::string>();
  e.before = p["before"].get<std::string>();
  e.after = p["after"].get<std::string>();
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
  } else if (action == "synchronize" || action == "synchronized") {  // GitHub || Gitea
    a = PrAction::Synchronized;
  } else if (action == "closed") {
    a = jsonBool(*pr, {"merged"}) ? PrAction::Merged : PrAction::Closed;
  } else if (action == "edited" && retargeted(p, dialect)) {
    a = PrAction::Synchronized;  // retargeted to another base branch: the plan changes
  }
  if (a == PrAction::None)
    return ParseResult::parsed(ignoredEvent(e, "pull request " + actionOrNone(action)));
  if (e.headSha.empty() || e.prNumber == 0)
    return ParseResult::bad("pull_request payload has no head sha or number");
  if (a == PrAction::Synchronized && dialect.synchronizeHasRange) {
    // synchronize carries the old and new head; keep them for the plan's range
    e.before = jsonString(p, {"before"});
    e.after = jsonString(p, {"after"});
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
