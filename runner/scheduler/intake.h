// Intake (DESIGN.md §1, §7, §8): one delivery in, one HTTP answer out, with the delivery
// durably stored before a 2xx. Independent of the HTTP server (which only moves bytes), so
// every rule here is testable with plain values and is the same for the server and tests.
//
//  * forge deliveries: the forge's WebhookReceiver verifies the signature over the raw body
//    (missing or wrong -> 401, nothing stored), parses (bad -> 400), and the normalised Event
//    is committed (group commit, store::DeliveryWriter) -> 202 {"delivery": id}; an event we
//    do not act on -> 200 {"delivery": id, "ignored": reason}; the same delivery id again ->
//    200 {"delivery": id, "duplicate": true} (still one row).
//  * git hook deliveries (hooks/post-receive): signed like Gitea — X-Switchyard-Signature is
//    the lowercase hex HMAC-SHA256 of the raw body with the shared hook secret ("sha256="
//    prefix accepted); the body is {"repo", "ref", "before", "after", "pusher", "delivery"}
//    (the delivery id inside the signed body; X-Switchyard-Delivery from older hooks).
//  * duplicates are told by the SHA-256 of the body — what the signature covers — never by
//    an unsigned delivery-id header.
//  * re-runs from the CLI and the web UI (source "cli" / "ui"), stored the same way.
//
// Nothing slow happens here: no git, no Nix, no forge calls. Thread-safe after setup.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/core/event.h"
#include "runner/core/forge.h"
#include "runner/core/log.h"
#include "runner/store/deliveries.h"

namespace runner::scheduler {

struct IntakeReply {
  int status = 500;
  std::string body;  // JSON
};

// Checks a git-hook delivery's X-Switchyard-Signature with `secret` in constant time.
SignatureCheck verifyHookSignature(std::string_view secret, const WebhookDelivery& delivery);
// Parses a git-hook body into an Event (Push, or Ignored for tags and deletions).
ParseResult parseHookDelivery(const WebhookDelivery& delivery);
// The hex signature the hook sends for `body` (tests and the demo sign with it).
std::string signHookBody(std::string_view secret, std::string_view body);

class Intake {
 public:
  // `writer` and `log` must outlive this object.
  Intake(store::DeliveryWriter& writer, Logger& log) : writer_(writer), log_(log) {}

  // Setup (before the first delivery): the receiver of forge `name`, and the hook secret
  // (without one, every /hooks/git delivery is refused with 401).
  void addForge(const std::string& name, std::unique_ptr<WebhookReceiver> receiver);
  void setHookSecret(std::string secret) { hookSecret_ = std::move(secret); }
  bool hasForge(const std::string& name) const { return receivers_.count(name) != 0; }
  std::vector<std::string> forgeNames() const;

  // A delivery for /hooks/<forgeName>. 404 for a forge that is not configured.
  IntakeReply forgeDelivery(const std::string& forgeName, const WebhookDelivery& delivery);
  // A delivery for /hooks/git.
  IntakeReply hookDelivery(const WebhookDelivery& delivery);
  // Stores an event made here (CLI/UI re-runs). Returns the delivery row.
  store::StoredDelivery submit(const Event& event);

 private:
  IntakeReply store(Event event, const std::string& source, const WebhookDelivery& delivery);

  store::DeliveryWriter& writer_;
  Logger& log_;
  std::map<std::string, std::unique_ptr<WebhookReceiver>> receivers_;
  std::optional<std::string> hookSecret_;
};

}  // namespace runner::scheduler
