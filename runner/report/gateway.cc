#include "runner/report/gateway.h"

#include <cctype>

#include "runner/core/text.h"
#include "runner/report/markdown.h"

namespace runner::report {
namespace {

// "@login " when the login looks like one (so the reply notifies the person), else "".
std::string mention(const std::string& login) {
  if (login.empty() || login.size() > 100) return "";
  for (char c : login)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return "";
  return "@" + login + " ";
}

std::optional<Stage> stageOf(const std::string& s) {
  if (s.empty()) return std::nullopt;
  try {
    return stageFrom(s);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::string hostsWords(const std::vector<std::string>& hosts) {
  if (hosts.empty()) return "every machine";
  std::vector<std::string> quoted;
  for (const auto& h : hosts) quoted.push_back(codeSpan(h));
  return join(quoted, ", ");
}

}  // namespace

ForgeGateway::ForgeGateway(store::Database& db, Forges forges, Clock& clock, Logger& log,
                           std::function<void()> onEnqueued)
    : outbox_(db),
      forges_(std::move(forges)),
      clock_(clock),
      log_(log),
      onEnqueued_(std::move(onEnqueued)) {}

void ForgeGateway::observe(const Event& event) {
  if (event.installationId <= 0 || event.forge.empty()) return;
  auto it = forges_.find(event.forge);
  if (it != forges_.end() && it->second)
    it->second->noteInstallation(event.repo, event.installationId);
}

void ForgeGateway::queue(const store::NewOutboxRow& row) {
  if (enqueueCall(outbox_, row, clock_.nowMillis()) && onEnqueued_) onEnqueued_();
}

void ForgeGateway::reply(const Event& event, const std::string& text) {
  if (event.kind != EventKind::CommentCommand || event.prNumber <= 0 || event.forge.empty() ||
      !forges_.count(event.forge))
    return;
  const std::string& who = event.commentAuthor.empty() ? event.sender : event.commentAuthor;
  ReplyCall c;
  c.number = event.prNumber;
  c.inReplyTo = event.commentId;
  c.body = mention(who) + text;
  queue(toRow(event.forge, event.repo, c));
}

GatewayDecision ForgeGateway::refuse(const Event& event, std::string reason, bool tell) {
  log_.info("re-run refused (" + event.forge + " " + event.repo + ", delivery " + event.deliveryId +
            "): " + reason);
  if (tell) reply(event, "Switchyard did not re-run anything: " + reason);
  GatewayDecision d;
  d.kind = GatewayDecision::Kind::Refused;
  d.reason = std::move(reason);
  return d;
}

GatewayDecision ForgeGateway::handle(const Event& event) {
  observe(event);
  if (event.kind == EventKind::Rerun && event.forge.empty()) {
    // the UI or the CLI: the daemon authenticated the person
    GatewayDecision d;
    d.kind = GatewayDecision::Kind::Accepted;
    RerunRequest& r = d.request;
    r.repo = event.repo;
    r.sha = event.headSha.empty() ? event.after : event.headSha;
    r.prNumber = event.prNumber;
    r.fromFork = event.fromFork;
    r.hosts = event.hosts;
    r.stage = stageOf(event.stage);
    if (event.runId > 0) r.runId = event.runId;
    r.trigger = RunTrigger::Manual;
    r.requestedBy = event.sender;
    r.approve = event.command == "approve";
    return d;
  }
  if (event.kind != EventKind::CommentCommand && event.kind != EventKind::Rerun)
    return refuse(event, "not a re-run request", false);
  auto it = forges_.find(event.forge);
  if (it == forges_.end() || !it->second)
    return refuse(event, "no forge named '" + event.forge + "' is configured", false);
  if (event.kind == EventKind::CommentCommand) return commentCommand(event, *it->second);
  return checkRerun(event);
}

GatewayDecision ForgeGateway::commentCommand(const Event& event, Forge& forge) {
  if (event.command != "rerun" && event.command != "approve")
    return refuse(event, "unknown command '" + escapeMarkdown(event.command) + "'", true);
  const bool approve = event.command == "approve";
  if (event.prNumber <= 0) return refuse(event, "the comment is not on a pull request", false);
  const std::string author = event.commentAuthor.empty() ? event.sender : event.commentAuthor;

  auto permission = forge.userPermission(event.repo, author);
  if (permission.retryable()) {
    GatewayDecision d;
    d.kind = GatewayDecision::Kind::Retry;
    d.reason =
        "cannot ask " + event.forge + " for " + author + "'s permission: " + permission.message;
    d.retryAfter = permission.retryAfter;
    return d;
  }
  if (!permission.ok())  // not the commenter's fault: say what stopped the check
    return refuse(event,
                  "Switchyard could not check " + escapeMarkdown(author) + "'s access to " +
                      escapeMarkdown(event.repo) + ": " + escapeMarkdown(permission.message),
                  true);
  if (!permission.value.canWrite) {
    std::string level = permission.value.level;
    return refuse(event,
                  "only people with write access to " + escapeMarkdown(event.repo) + " can " +
                      (approve ? "approve builds" : "ask for re-runs") +
                      " (your access: " + escapeMarkdown(level) + ").",
                  true);
  }

  std::string sha = event.headSha;
  bool fromFork = event.fromFork;
  if (sha.empty()) {
    auto pr = forge.pullRequest(event.repo, event.prNumber);
    if (pr.retryable()) {
      GatewayDecision d;
      d.kind = GatewayDecision::Kind::Retry;
      d.reason = "cannot read pull request #" + std::to_string(event.prNumber) + ": " + pr.message;
      d.retryAfter = pr.retryAfter;
      return d;
    }
    if (!pr.ok())
      return refuse(event,
                    "cannot read pull request #" + std::to_string(event.prNumber) + " (" +
                        escapeMarkdown(pr.message) + ").",
                    true);
    if (pr.value.state != "open" || pr.value.merged)
      return refuse(event,
                    "pull request #" + std::to_string(event.prNumber) + " is " +
                        (pr.value.merged ? "merged" : "closed") + ".",
                    true);
    sha = pr.value.headSha;
    fromFork = pr.value.fromFork;
  }
  if (approve && !fromFork)
    return refuse(event,
                  "pull request #" + std::to_string(event.prNumber) +
                      " is not from a fork: its commits build without an approval.",
                  true);

  ReactionCall reaction;
  reaction.commentId = event.commentId;
  reaction.reaction = Reaction::ThumbsUp;
  if (event.commentId > 0) queue(toRow(event.forge, event.repo, reaction));
  log_.info(
      (approve ? std::string("approval of ") : "re-run of " + hostsWords(event.hosts) + " at ") +
      shortSha(sha) + " on " + event.repo + " #" + std::to_string(event.prNumber) + " by " +
      author + (fromFork ? " (fork: build only)" : ""));

  GatewayDecision d;
  d.kind = GatewayDecision::Kind::Accepted;
  RerunRequest& r = d.request;
  r.forge = event.forge;
  r.repo = event.repo;
  r.sha = sha;
  r.prNumber = event.prNumber;
  r.fromFork = fromFork;
  r.hosts = event.hosts;
  r.trigger = RunTrigger::Comment;
  r.requestedBy = author;
  r.approve = approve;
  return d;
}

GatewayDecision ForgeGateway::checkRerun(const Event& event) {
  if (event.headSha.empty()) return refuse(event, "the re-run request names no commit", false);
  GatewayDecision d;
  d.kind = GatewayDecision::Kind::Accepted;
  RerunRequest& r = d.request;
  r.forge = event.forge;
  r.repo = event.repo;
  r.sha = event.headSha;
  r.prNumber = event.prNumber;
  r.trigger = RunTrigger::Rerequest;
  r.requestedBy = event.sender;

  if (event.checkRunId > 0) {
    if (!event.requestedAction.empty() && event.requestedAction != "rerun")
      return refuse(event, "unknown check run action '" + event.requestedAction + "'", false);
    if (event.runId <= 0)
      return refuse(event,
                    "check run " + std::to_string(event.checkRunId) +
                        " is not one of Switchyard's (external_id '" + event.externalId + "')",
                    false);
    r.runId = event.runId;
    r.stage = stageOf(event.stage);
    r.hosts = event.hosts;
    return d;
  }
  if (event.checkSuiteId > 0) return d;  // the whole commit
  return refuse(event, "the re-run request names no check run or suite", false);
}

}  // namespace runner::report
