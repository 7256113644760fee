#include "integrations/gitea/webhook.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "integrations/common/forge_webhook.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/os/files.h"

namespace integrations::gitea {

using nlohmann::json;
using runner::Event;
using runner::ignoredEvent;
using runner::ParseResult;
using runner::SignatureCheck;
using runner::WebhookDelivery;

namespace {

std::string firstHeader(const WebhookDelivery& d, std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (auto v = d.headers.get(n); v && !runner::trim(*v).empty())
      return std::string(runner::trim(*v));
  return {};
}

bool macMatches(std::string_view secret, std::string_view message, std::string_view mac) {
  return runner::constantTimeEquals(runner::crypto::hmacSha256(secret, message), mac);
}

// Gitea may leave head.repo out of a pull request; the head and base repository ids still
// tell a pull request inside one repository from a fork. When they do not, it counts as a
// fork (builds without secrets, never deploys).
void identifyHeadRepoById(const json& pr, const json& payload, const std::string& baseRepo,
                          Event& e) {
  int64_t headId = runner::jsonInt(pr, {"head", "repo_id"});
  int64_t baseId = runner::jsonInt(pr, {"base", "repo_id"});
  if (baseId == 0) baseId = runner::jsonInt(payload, {"repository", "id"});
  const bool sameRepo = headId != 0 && headId == baseId;
  e.headRepo = sameRepo ? baseRepo : std::string();
  e.headCloneUrl = sameRepo ? runner::jsonString(payload, {"repository", "clone_url"}) : "";
  e.fromFork = !sameRepo;  // unknown or different head repository: treat as untrusted
}

// (built on first use: a namespace-scope constant that allocates could throw before main)
const runner::PullRequestDialect& dialect() {
  static const runner::PullRequestDialect d{
      .retargetKeys = {"ref", "base"},
      .pullRequestFlag = "is_pull",
      .commentHasPullRequest = true,  // newer Gitea; older versions leave headSha ""
      .identifyHeadRepo = &identifyHeadRepoById,
  };
  return d;
}

ParseResult parsePush(const json& p, Event e) {
  if (auto missing = runner::readPushRefs(p, e)) return ParseResult::bad(*missing);
  e.created = runner::isZeroSha(e.before);
  e.forced = false;  // Gitea does not say
  if (const json* total = runner::jsonFind(p, {"total_commits"});
      total && total->is_number_integer())
    e.totalCommits = total->get<int64_t>();
  else if (const json* commits = runner::jsonFind(p, {"commits"}); commits && commits->is_array())
    e.totalCommits = static_cast<int64_t>(commits->size());
  if (e.sender.empty()) e.sender = runner::jsonString(p, {"pusher", "login"});
  if (e.sender.empty()) e.sender = runner::jsonString(p, {"pusher", "username"});
  return runner::classifyPush(std::move(e), /*deleted=*/false);  // a zero `after` says it
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
    // the MAC covers the body's bytes, and those bytes are what the parser reads
    if (!macMatches(secret, d.body, mac)) return SignatureCheck::reject("signature does not match");
    return SignatureCheck::accept(c.header);
  }
  return SignatureCheck::reject(sawEmpty ? "empty signature (is a secret set on the forge's hook?)"
                                         : "missing signature header");
}

ParseResult parseDelivery(const WebhookDelivery& d, const Source& source) {
  json p;
  if (auto why = runner::readWebhookPayload(d, p)) return ParseResult::bad(*why);

  Event e;
  e.forge = source.forgeName;
  e.forgeType = source.forgeType;
  e.deliveryId = firstHeader(d, {"X-Forgejo-Delivery", "X-Gitea-Delivery", "X-Gogs-Delivery"});
  e.eventName = firstHeader(d, {"X-Forgejo-Event", "X-Gitea-Event", "X-Gogs-Event"});
  e.repo = runner::jsonString(p, {"repository", "full_name"});
  e.cloneUrl = runner::jsonString(p, {"repository", "clone_url"});
  e.sender = runner::jsonString(p, {"sender", "login"});
  if (e.eventName.empty()) return ParseResult::bad("no X-Gitea-Event header");

  // a copy: `e` is moved into the calls below, and C++ leaves open whether that happens
  // before or after their other arguments (which read `ev`) are evaluated
  const std::string ev = e.eventName;
  if (ev == "push" || ev == "pull_request" || ev == "issue_comment") {
    if (e.repo.empty()) return ParseResult::bad(ev + " payload has no repository.full_name");
    if (ev == "push") return parsePush(p, std::move(e));
    if (ev == "pull_request") return runner::parsePullRequestPayload(p, std::move(e), dialect());
    return runner::parseIssueCommentPayload(p, std::move(e), dialect());
  }
  if (ev == "create" || ev == "delete") {
    e.ref = runner::jsonString(p, {"ref"});  // a SHORT name on these events
    return ParseResult::parsed(
        ignoredEvent(std::move(e), ev == "create" ? "create event (new branches arrive as push)"
                                                  : "delete event"));
  }
  if (ev == "pull_request_comment")
    return ParseResult::parsed(ignoredEvent(std::move(e), "review comment"));
  if (ev == "pull_request_approved" || ev == "pull_request_rejected" ||
      runner::startsWith(ev, "pull_request_review"))
    return ParseResult::parsed(ignoredEvent(std::move(e), "pull request review"));
  return ParseResult::parsed(ignoredEvent(std::move(e), "event '" + ev + "' is not used"));
}

std::unique_ptr<runner::WebhookReceiver> makeWebhookReceiver(const runner::ForgeConfig& config,
                                                             runner::Redactor* redactor) {
  std::string secret;
  if (config.webhookSecretFile)
    secret = runner::os::readSecretFile(*config.webhookSecretFile, redactor);
  Source source{config.name, config.type == "forgejo" ? "forgejo" : "gitea"};
  return runner::makeWebhookReceiver(
      [secret](const WebhookDelivery& d) { return verifySignature(secret, d); },
      [source](const WebhookDelivery& d) { return parseDelivery(d, source); });
}

}  // namespace integrations::gitea
