// libFuzzer target for webhook deliveries (integrations/{github,gitea}/webhook.h and the
// shared rules in integrations/common/forge_webhook.h): any body under any event header must become
// an event or a BadPayload answer — never a crash, an exception or a hang — and an event
// that is accepted must serialise to JSON and back (the intake stores it so).
//
// Input layout: first byte picks the forge (even: GitHub, odd: Gitea), the next byte picks
// the event header from a list, the rest is the body.
#include <cstddef>
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "integrations/gitea/webhook.h"
#include "integrations/github/webhook.h"
#include "runner/core/event.h"

namespace {
const char* const kEvents[] = {
    "push",   "pull_request", "issue_comment", "check_run",           "check_suite", "ping",
    "create", "delete",       "installation",  "pull_request_review", "release",     ""};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const bool github = (data[0] & 1) == 0;
  const char* event = kEvents[data[1] % (sizeof kEvents / sizeof kEvents[0])];
  runner::WebhookDelivery d;
  d.body.assign(reinterpret_cast<const char*>(data + 2), size - 2);
  if (data[0] & 2) d.headers.add("Content-Type", "application/json");
  runner::ParseResult r;
  if (github) {
    d.headers.add("X-GitHub-Event", event);
    d.headers.add("X-GitHub-Delivery", "fuzz");
    r = integrations::github::parseDelivery(d, {"hub"});
  } else {
    d.headers.add("X-Gitea-Event", event);
    d.headers.add("X-Gitea-Delivery", "fuzz");
    r = integrations::gitea::parseDelivery(d, {"home", "gitea"});
  }
  if (r.ok()) {
    nlohmann::json j = r.event;
    auto back = j.get<runner::Event>();
    if (back.kind != r.event.kind) __builtin_trap();
  }
  return 0;
}
