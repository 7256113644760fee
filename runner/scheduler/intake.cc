#include "runner/scheduler/intake.h"

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"

namespace runner::scheduler {
namespace {

IntakeReply reply(int status, const nlohmann::json& body) { return {status, body.dump()}; }

bool isHex(std::string_view s) {
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return !s.empty();
}

}  // namespace

std::string signHookBody(std::string_view secret, std::string_view body) {
  return toHex(crypto::hmacSha256(secret, body));
}

SignatureCheck verifyHookSignature(std::string_view secret, const WebhookDelivery& delivery) {
  if (secret.empty()) return SignatureCheck::reject("no hook secret is configured");
  auto header = delivery.headers.get("X-Switchyard-Signature");
  if (!header || trim(*header).empty()) return SignatureCheck::reject("missing signature header");
  std::string_view given = trim(*header);
  if (startsWith(given, "sha256=")) given.remove_prefix(7);
  std::string expected = signHookBody(secret, delivery.body);
  if (!constantTimeEquals(toLower(given), expected))
    return SignatureCheck::reject("signature does not match");
  return SignatureCheck::accept("X-Switchyard-Signature");
}

ParseResult parseHookDelivery(const WebhookDelivery& delivery) {
  auto j = nlohmann::json::parse(delivery.body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return ParseResult::bad("not a JSON object");
  Event e;
  e.forgeType = "hook";
  e.eventName = "push";
  // the hook puts its delivery id into the signed body; the header is for older hooks
  e.deliveryId = jsonString(j, {"delivery"});
  if (e.deliveryId.empty())
    e.deliveryId = delivery.headers.get("X-Switchyard-Delivery").value_or("");
  e.repo = jsonString(j, {"repo"});
  e.ref = jsonString(j, {"ref"});
  e.before = jsonString(j, {"before"});
  e.after = jsonString(j, {"after"});
  e.sender = jsonString(j, {"pusher"});
  if (e.repo.empty()) return ParseResult::bad("missing \"repo\"");
  if (e.ref.empty()) return ParseResult::bad("missing \"ref\"");
  if (!isHex(e.after) || (e.after.size() != 40 && e.after.size() != 64))
    return ParseResult::bad("\"after\" is not a commit id");
  if (!e.before.empty() && !isHex(e.before))
    return ParseResult::bad("\"before\" is not a commit id");
  if (isZeroSha(e.after)) {
    e.kind = EventKind::Ignored;
    e.ignoredReason = "branch deleted";
  } else if (startsWith(e.ref, "refs/tags/")) {
    e.kind = EventKind::Ignored;
    e.ignoredReason = "tag push";
  } else if (!startsWith(e.ref, "refs/heads/")) {
    e.kind = EventKind::Ignored;
    e.ignoredReason = "not a branch: " + e.ref;
  } else {
    e.kind = EventKind::Push;
    e.created = e.before.empty() || isZeroSha(e.before);
  }
  return ParseResult::parsed(std::move(e));
}

void Intake::addForge(const std::string& name, std::unique_ptr<WebhookReceiver> receiver) {
  receivers_[name] = std::move(receiver);
}

std::vector<std::string> Intake::forgeNames() const {
  std::vector<std::string> out;
  for (const auto& [name, _] : receivers_) out.push_back(name);
  return out;
}

IntakeReply Intake::store(Event event, const std::string& source, const WebhookDelivery& delivery) {
  // A duplicate is told by what the signature covers, the body: the delivery id header is
  // not signed, so an old body replayed under a new delivery's id must not turn the real
  // delivery into a "duplicate". The header's id stays in the event for people to read.
  const std::string bodyHash = toHex(crypto::sha256(delivery.body));
  if (event.deliveryId.empty()) event.deliveryId = "sha256:" + bodyHash;
  store::NewDelivery d;
  d.source = source;
  d.deliveryId = event.deliveryId;
  d.bodySha256 = bodyHash;
  d.eventName = event.eventName.empty() ? toString(event.kind) : event.eventName;
  d.ignored = event.kind == EventKind::Ignored;
  d.detail = event.ignoredReason;
  nlohmann::json j = event;
  d.eventJson = j.dump();
  store::StoredDelivery stored;
  try {
    stored = writer_.submit(std::move(d));
  } catch (const StoreError& e) {
    log_.error("storing delivery " + event.deliveryId + " from " + source + ": " + describe(e));
    return reply(
        503, nlohmann::json::object({{"error", "could not store the delivery; send it again"}}));
  }
  if (stored.duplicate)
    return reply(200, nlohmann::json::object({{"delivery", stored.id}, {"duplicate", true}}));
  if (stored.state == "ignored")
    return reply(200,
                 nlohmann::json::object({{"delivery", stored.id}, {"ignored", stored.detail}}));
  return reply(202, nlohmann::json::object({{"delivery", stored.id}}));
}

IntakeReply Intake::forgeDelivery(const std::string& forgeName, const WebhookDelivery& delivery) {
  auto it = receivers_.find(forgeName);
  if (it == receivers_.end())
    return reply(404, nlohmann::json::object({{"error", "no forge named '" + forgeName + "'"}}));
  auto check = it->second->verify(delivery);
  if (!check.accepted) {
    log_.warn("refused a delivery for forge " + forgeName + ": " + check.detail);
    return reply(401, nlohmann::json::object({{"error", check.detail}}));
  }
  auto parsed = it->second->parse(delivery);
  if (!parsed.ok()) return reply(400, nlohmann::json::object({{"error", parsed.error}}));
  return store(std::move(parsed.event), forgeName, delivery);
}

IntakeReply Intake::hookDelivery(const WebhookDelivery& delivery) {
  auto check = verifyHookSignature(hookSecret_.value_or(""), delivery);
  if (!check.accepted) {
    log_.warn("refused a git hook delivery: " + check.detail);
    return reply(401, nlohmann::json::object({{"error", check.detail}}));
  }
  auto parsed = parseHookDelivery(delivery);
  if (!parsed.ok()) return reply(400, nlohmann::json::object({{"error", parsed.error}}));
  return store(std::move(parsed.event), "hook", delivery);
}

store::StoredDelivery Intake::submit(const Event& event) {
  store::NewDelivery d;
  d.source = event.forgeType;
  d.deliveryId = event.deliveryId.empty() ? crypto::randomToken(16) : event.deliveryId;
  d.eventName = event.eventName.empty() ? toString(event.kind) : event.eventName;
  nlohmann::json j = event;
  d.eventJson = j.dump();
  return writer_.submit(std::move(d));
}

}  // namespace runner::scheduler
