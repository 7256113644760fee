#include "integrations/gitea/webhook.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/os/files.h"

namespace integrations::gitea {

using nlohmann::json;
using runner::Event;
using runner::EventKind;
using runner::ParseResult;
using runner::PrAction;
using runner::SignatureCheck;
using runner::WebhookDelivery;

namespace {

bool isForm(const WebhookDelivery& d) {
  auto type = d.headers.get("Content-Type");
  return type && runner::startsWith(runner::toLower(runner::trim(*type)),
                                    "application/x-www-form-urlencoded");
}

// The JSON document of a delivery: the body, or the url-decoded `payload` of a form body.
std::optional<std::string> payloadText(const WebhookDelivery& d) {
  if (!isForm(d)) return d.body;
  return runner::formValue(d.body, "payload");
}

std::string firstHeader(const WebhookDelivery& d, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto v = d.headers.get(n); v && !runner::trim(*v).empty())
      return std::string(runner::trim(*v));
  return {};
}

bool macMatches(std::string_view secret, std::string_view message, std::string_view mac) {
  return runner::constantTimeEquals(runner::crypto::hmacSha256(secret, message), mac);
}

Event ignored(Event e, std::string why) {
  e.kind = EventKind::Ignored;
  e.ignoredReason = std::move(why);
  return e;
}

// owner/name of the head and base, and whether they differ (see the header for the rules).
void fillPullRequest(const json& pr, const json& payload, Event& e) {
  e.prNumber = runner::jsonInt(pr, {"number"});
  e.headSha = runner::jsonString(pr, {"head", "sha"});
  e.headRef = runner::jsonString(pr, {"head", "ref"});
  e.baseRef = runner::jsonString(pr, {"base", "ref"});
  e.baseSha = runner::jsonString(pr, {"base", "sha"});
  std::string baseRepo = runner::jsonString(pr, {"base", "repo", "full_name"});
  if (baseRepo.empty()) baseRepo = runner::jsonString(payload, {"repository", "full_name"});
  const json* headRepo = runner::jsonFind(pr, {"head", "repo"});
  if (headRepo && headRepo->is_object() && !runner::jsonString(*headRepo, {"full_name"}).empty()) {
    e.headRepo = runner::jsonString(*headRepo, {"full_name"});
    e.headCloneUrl = runner::jsonString(*headRepo, {"clone_url"});
    e.fromFork = e.headRepo != baseRepo;
    return;
  }
  int64_t headId = runner::jsonInt(pr, {"head", "repo_id"});
  int64_t baseId = runner::jsonInt(pr, {"base", "repo_id"});
  if (baseId == 0) baseId = runner::jsonInt(payload, {"repository", "id"});
  if (headId != 0 && headId == baseId) {
    e.headRepo = baseRepo;
    e.headCloneUrl = runner::jsonString(payload, {"repository", "clone_url"});
    e.fromFork = false;
    return;
  }
  e.fromFork = true;  // unknown or different head repository: treat as untrusted
}

ParseResult parsePush(const json& p, Event e) {
  for (const char* key : {"ref", "before", "after"}) {
    const json* v = runner::jsonFind(p, {key});
    if (!v || !v->is_string() || v->get<std::string>().empty())
      return ParseResult::bad(std::string("push payload has no '") + key + "'");
  }
  e.ref = p["ref"].get<std::string>();
  e.before = p["before"].get<std::string>();
  e.after = p["after"].get<std::string>();
  e.created = runner::isZeroSha(e.before);
  e.forced = false;  // Gitea does not say
  if (const json* total = runner::jsonFind(p, {"total_commits"});
      total && total->is_number_integer())
    e.totalCommits = total->get<int64_t>();
  else if (const json* commits = runner::jsonFind(p, {"commits"}); commits && commits->is_array())
    e.totalCommits = static_cast<int64_t>(commits->size());
  if (e.sender.empty()) e.sender = runner::jsonString(p, {"pusher", "login"});
  if (e.sender.empty()) e.sender = runner::jsonString(p, {"pusher", "username"});

  if (runner::startsWith(e.ref, "refs/tags/")) return ParseResult::parsed(ignored(e, "tag push"));
  if (!runner::startsWith(e.ref, "refs/heads/"))
    return ParseResult::parsed(ignored(e, "push to " + e.ref + " (not a branch)"));
  if (runner::isZeroSha(e.after)) return ParseResult::parsed(ignored(e, "branch deleted"));
  e.kind = EventKind::Push;
  return ParseResult::parsed(std::move(e));
}

ParseResult parsePullRequest(const json& p, Event e) {
  const json* pr = runner::jsonFind(p, {"pull_request"});
  if (!pr || !pr->is_object()) return ParseResult::bad("pull_request payload has no pull_request");
  std::string action = runner::jsonString(p, {"action"});
  fillPullRequest(*pr, p, e);
  if (e.prNumber == 0) e.prNumber = runner::jsonInt(p, {"number"});

  PrAction a = PrAction::None;
  if (action == "opened") {
    a = PrAction::Opened;
  } else if (action == "reopened") {
    a = PrAction::Reopened;
  } else if (action == "synchronized" || action == "synchronize") {
    a = PrAction::Synchronized;
  } else if (action == "closed") {
    a = runner::jsonBool(*pr, {"merged"}) ? PrAction::Merged : PrAction::Closed;
  } else if (action == "edited" && (runner::jsonFind(p, {"changes", "ref"}) ||
                                    runner::jsonFind(p, {"changes", "base"}))) {
    a = PrAction::Synchronized;  // retargeted to another base branch: the plan changes
  }
  if (a == PrAction::None)
    return ParseResult::parsed(
        ignored(e, "pull request " + (action.empty() ? std::string("without action") : action)));
  if (e.headSha.empty() || e.prNumber == 0)
    return ParseResult::bad("pull_request payload has no head sha or number");
  if (a == PrAction::Merged) e.mergeSha = runner::jsonString(*pr, {"merge_commit_sha"});
  e.prAction = a;
  e.kind = EventKind::PullRequest;
  return ParseResult::parsed(std::move(e));
}

ParseResult parseIssueComment(const json& p, Event e) {
  const json* comment = runner::jsonFind(p, {"comment"});
  const json* issue = runner::jsonFind(p, {"issue"});
  if (!comment || !comment->is_object() || !issue || !issue->is_object())
    return ParseResult::bad("issue_comment payload has no comment or issue");
  e.prNumber = runner::jsonInt(*issue, {"number"});
  e.commentId = runner::jsonInt(*comment, {"id"});
  e.commentAuthor = runner::jsonString(*comment, {"user", "login"});
  std::string action = runner::jsonString(p, {"action"});
  if (action != "created")
    return ParseResult::parsed(
        ignored(e, "comment " + (action.empty() ? "without action" : action)));
  const json* prMark = runner::jsonFind(*issue, {"pull_request"});
  bool onPull = runner::jsonBool(p, {"is_pull"}) || (prMark && prMark->is_object());
  if (!onPull) return ParseResult::parsed(ignored(e, "comment on an issue, not a pull request"));

  auto cmd = runner::parseCommentCommand(runner::jsonString(*comment, {"body"}));
  if (cmd.kind == runner::CommentCommand::Kind::None)
    return ParseResult::parsed(ignored(e, "comment without a /switchyard command"));
  if (cmd.kind == runner::CommentCommand::Kind::Invalid)
    return ParseResult::parsed(ignored(e, "invalid /switchyard command: " + cmd.problem));
  if (e.prNumber == 0 || e.commentId == 0)
    return ParseResult::bad("issue_comment payload has no issue number or comment id");

  // Newer Gitea sends the pull request too; older versions leave headSha "" (ask the forge).
  if (const json* pr = runner::jsonFind(p, {"pull_request"}); pr && pr->is_object())
    fillPullRequest(*pr, p, e);
  e.kind = EventKind::CommentCommand;
  e.command = cmd.command;
  e.hosts = cmd.hosts;
  return ParseResult::parsed(std::move(e));
}

}  // namespace

SignatureCheck verifySignature(std::string_view secret, const WebhookDelivery& d) {
  if (secret.empty()) return SignatureCheck::reject("no webhook secret configured");
  struct Candidate {
    const char* header;
    std::string_view prefix;
  };
  static constexpr Candidate kCandidates[] = {{"X-Forgejo-Signature", ""},
                                              {"X-Gitea-Signature", ""},
                                              {"X-Gogs-Signature", ""},
                                              {"X-Hub-Signature-256", "sha256="}};
  bool sawEmpty = false;
  for (const auto& c : kCandidates) {
    auto raw = d.headers.get(c.header);
    if (!raw) continue;
    std::string_view value = runner::trim(*raw);
    if (!c.prefix.empty()) {
      if (!runner::startsWith(runner::toLower(value), c.prefix) && !value.empty())
        return SignatureCheck::reject(std::string("malformed signature in ") + c.header);
      value.remove_prefix(std::min(c.prefix.size(), value.size()));
    }
    if (value.empty()) {
      sawEmpty = true;
      continue;
    }
    std::string mac;
    if (value.size() != 64 || !runner::fromHex(value, mac))
      return SignatureCheck::reject(std::string("malformed signature in ") + c.header);
    auto json = payloadText(d);
    bool match = json && macMatches(secret, *json, mac);
    if (!match && isForm(d)) match = macMatches(secret, d.body, mac);
    if (!match) return SignatureCheck::reject("signature does not match");
    return SignatureCheck::accept(c.header);
  }
  return SignatureCheck::reject(sawEmpty ? "empty signature (is a secret set on the forge's hook?)"
                                         : "missing signature header");
}

ParseResult parseDelivery(const WebhookDelivery& d, const Source& source) {
  auto text = payloadText(d);
  if (!text) return ParseResult::bad("form body has no payload field");
  json p = json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (p.is_discarded()) return ParseResult::bad("body is not JSON");
  if (!p.is_object()) return ParseResult::bad("body is not a JSON object");

  Event e;
  e.forge = source.forgeName;
  e.forgeType = source.forgeType;
  e.deliveryId = firstHeader(d, {"X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery"});
  e.eventName = firstHeader(d, {"X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event"});
  e.repo = runner::jsonString(p, {"repository", "full_name"});
  e.cloneUrl = runner::jsonString(p, {"repository", "clone_url"});
  e.sender = runner::jsonString(p, {"sender", "login"});
  if (e.eventName.empty()) return ParseResult::bad("no X-Gitea-Event header");

  const std::string& ev = e.eventName;
  if (ev == "push" || ev == "pull_request" || ev == "issue_comment") {
    if (e.repo.empty()) return ParseResult::bad(ev + " payload has no repository.full_name");
    if (ev == "push") return parsePush(p, std::move(e));
    if (ev == "pull_request") return parsePullRequest(p, std::move(e));
    return parseIssueComment(p, std::move(e));
  }
  if (ev == "create" || ev == "delete") {
    e.ref = runner::jsonString(p, {"ref"});  // a SHORT name on these events
    return ParseResult::parsed(
        ignored(std::move(e),
                ev == "create" ? "create event (new branches arrive as push)" : "delete event"));
  }
  if (ev == "pull_request_comment")
    return ParseResult::parsed(ignored(std::move(e), "review comment"));
  if (ev == "pull_request_approved" || ev == "pull_request_rejected" ||
      runner::startsWith(ev, "pull_request_review"))
    return ParseResult::parsed(ignored(std::move(e), "pull request review"));
  return ParseResult::parsed(ignored(std::move(e), "event '" + ev + "' is not used"));
}

std::unique_ptr<runner::WebhookReceiver> makeWebhookReceiver(const runner::ForgeConfig& config,
                                                             runner::Redactor* redactor) {
  std::string secret;
  if (config.webhookSecretFile) {
    secret = runner::os::readSecretFile(*config.webhookSecretFile);
    if (redactor) redactor->add(secret);
  }
  Source source{config.name, config.type == "forgejo" ? "forgejo" : "gitea"};
  return runner::makeWebhookReceiver(
      [secret](const WebhookDelivery& d) { return verifySignature(secret, d); },
      [source](const WebhookDelivery& d) { return parseDelivery(d, source); });
}

}  // namespace integrations::gitea
