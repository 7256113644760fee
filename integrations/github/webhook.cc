#include "integrations/github/webhook.h"

#include <nlohmann/json.hpp>

#include "integrations/common/forge_webhook.h"
#include "runner/core/run.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/os/files.h"

namespace integrations::github {

using nlohmann::json;
using runner::Event;
using runner::EventKind;
using runner::ignoredEvent;
using runner::ParseResult;
using runner::SignatureCheck;
using runner::WebhookDelivery;

namespace {

std::string header(const WebhookDelivery& d, const char* name) {
  auto v = d.headers.get(name);
  return v ? std::string(runner::trim(*v)) : std::string();
}

// (built on first use: a namespace-scope constant that allocates could throw before main)
const runner::PullRequestDialect& dialect() {
  static const runner::PullRequestDialect d{
      .retargetKeys = {"base"},
      .synchronizeHasRange = true,
  };
  return d;
}

// The first PR a check run/suite belongs to (empty for fork PRs: GitHub does not link them).
void fillFirstPullRequest(const json* prs, Event& e) {
  if (!prs || !prs->is_array() || prs->empty()) return;
  e.prNumber = runner::jsonInt((*prs)[0], {"number"});
}

// Our check runs carry external_id "run:<id>:<stage>:<host>"; other apps' ids name nothing.
void fillFromExternalId(const std::string& id, Event& e) {
  auto key = runner::parseExternalId(id);
  if (!key) return;
  e.runId = key->runId;
  e.stage = runner::toString(key->stage);
  if (!key->host.empty()) e.hosts = {key->host};
}

ParseResult parsePush(const json& p, Event e) {
  if (auto missing = runner::readPushRefs(p, e)) return ParseResult::bad(*missing);
  e.created = runner::jsonBool(p, {"created"}) || runner::isZeroSha(e.before);
  e.forced = runner::jsonBool(p, {"forced"});
  if (const json* commits = runner::jsonFind(p, {"commits"}); commits && commits->is_array())
    e.totalCommits = static_cast<int64_t>(commits->size());
  return runner::classifyPush(std::move(e), runner::jsonBool(p, {"deleted"}));
}

ParseResult parseCheckRun(const json& p, Event e) {
  const json* run = runner::jsonFind(p, {"check_run"});
  if (!run || !run->is_object()) return ParseResult::bad("check_run payload has no check_run");
  std::string action = runner::jsonString(p, {"action"});
  e.checkRunId = runner::jsonInt(*run, {"id"});
  e.headSha = runner::jsonString(*run, {"head_sha"});
  e.headRef = runner::jsonString(*run, {"check_suite", "head_branch"});
  e.checkSuiteId = runner::jsonInt(*run, {"check_suite", "id"});
  e.externalId = runner::jsonString(*run, {"external_id"});
  fillFirstPullRequest(runner::jsonFind(*run, {"pull_requests"}), e);
  if (action != "rerequested" && action != "requested_action")
    return ParseResult::parsed(
        ignoredEvent(e, "check run " + (action.empty() ? "without action" : action)));
  if (e.checkRunId == 0 || e.headSha.empty())
    return ParseResult::bad("check_run payload has no id or head_sha");
  if (action == "requested_action") {
    e.requestedAction = runner::jsonString(p, {"requested_action", "identifier"});
    if (e.requestedAction.empty())
      return ParseResult::bad("check_run requested_action without an identifier");
  }
  fillFromExternalId(e.externalId, e);
  e.kind = EventKind::Rerun;
  return ParseResult::parsed(std::move(e));
}

ParseResult parseCheckSuite(const json& p, Event e) {
  const json* suite = runner::jsonFind(p, {"check_suite"});
  if (!suite || !suite->is_object())
    return ParseResult::bad("check_suite payload has no check_suite");
  std::string action = runner::jsonString(p, {"action"});
  e.checkSuiteId = runner::jsonInt(*suite, {"id"});
  e.headSha = runner::jsonString(*suite, {"head_sha"});
  e.headRef = runner::jsonString(*suite, {"head_branch"});
  fillFirstPullRequest(runner::jsonFind(*suite, {"pull_requests"}), e);
  if (action == "requested")
    return ParseResult::parsed(
        ignoredEvent(e, "check suite requested (runs start from push and pull_request events)"));
  if (action != "rerequested")
    return ParseResult::parsed(
        ignoredEvent(e, "check suite " + (action.empty() ? "without action" : action)));
  if (e.checkSuiteId == 0 || e.headSha.empty())
    return ParseResult::bad("check_suite payload has no id or head_sha");
  e.kind = EventKind::Rerun;
  return ParseResult::parsed(std::move(e));
}

}  // namespace

SignatureCheck verifySignature(std::string_view secret, const WebhookDelivery& d) {
  if (secret.empty()) return SignatureCheck::reject("no webhook secret configured");
  auto raw = d.headers.get("X-Hub-Signature-256");
  if (!raw) return SignatureCheck::reject("missing signature header");
  std::string_view value = runner::trim(*raw);
  if (value.empty() || runner::toLower(value) == "sha256=")
    return SignatureCheck::reject("empty signature (is a secret set on the hook?)");
  if (!runner::startsWith(runner::toLower(value), "sha256="))
    return SignatureCheck::reject("malformed signature in X-Hub-Signature-256");
  value.remove_prefix(7);
  std::string mac;
  if (value.size() != 64 || !runner::fromHex(value, mac))
    return SignatureCheck::reject("malformed signature in X-Hub-Signature-256");
  if (!runner::constantTimeEquals(runner::crypto::hmacSha256(secret, d.body), mac))
    return SignatureCheck::reject("signature does not match");
  return SignatureCheck::accept("X-Hub-Signature-256");
}

ParseResult parseDelivery(const WebhookDelivery& d, const Source& source) {
  json p;
  if (auto why = runner::readWebhookPayload(d, p)) return ParseResult::bad(*why);

  Event e;
  e.forge = source.forgeName;
  e.forgeType = "github";
  e.deliveryId = header(d, "X-GitHub-Delivery");
  e.eventName = header(d, "X-GitHub-Event");
  e.repo = runner::jsonString(p, {"repository", "full_name"});
  e.cloneUrl = runner::jsonString(p, {"repository", "clone_url"});
  e.sender = runner::jsonString(p, {"sender", "login"});
  e.installationId = runner::jsonInt(p, {"installation", "id"});
  if (e.eventName.empty()) return ParseResult::bad("no X-GitHub-Event header");

  // a copy: `e` is moved into the calls below, and C++ leaves open whether that happens
  // before or after their other arguments (which read `ev`) are evaluated
  const std::string ev = e.eventName;
  if (ev == "ping") {
    return ParseResult::parsed(ignoredEvent(
        std::move(e), "ping (hook " + std::to_string(runner::jsonInt(p, {"hook_id"})) + ")"));
  }
  if (ev == "push" || ev == "pull_request" || ev == "issue_comment" || ev == "check_run" ||
      ev == "check_suite") {
    if (e.repo.empty()) return ParseResult::bad(ev + " payload has no repository.full_name");
    if (ev == "push") return parsePush(p, std::move(e));
    if (ev == "pull_request") return runner::parsePullRequestPayload(p, std::move(e), dialect());
    if (ev == "issue_comment") return runner::parseIssueCommentPayload(p, std::move(e), dialect());
    if (ev == "check_run") return parseCheckRun(p, std::move(e));
    return parseCheckSuite(p, std::move(e));
  }
  if (ev == "pull_request_review" || ev == "pull_request_review_comment" ||
      ev == "pull_request_review_thread")
    return ParseResult::parsed(ignoredEvent(std::move(e), "pull request review"));
  return ParseResult::parsed(ignoredEvent(std::move(e), "event '" + ev + "' is not used"));
}

std::unique_ptr<runner::WebhookReceiver> makeWebhookReceiver(const runner::ForgeConfig& config,
                                                             runner::Redactor* redactor) {
  std::string secret;
  if (config.webhookSecretFile)
    secret = runner::os::readSecretFile(*config.webhookSecretFile, redactor);
  Source source{config.name};
  return runner::makeWebhookReceiver(
      [secret](const WebhookDelivery& d) { return verifySignature(secret, d); },
      [source](const WebhookDelivery& d) { return parseDelivery(d, source); });
}

}  // namespace integrations::github
