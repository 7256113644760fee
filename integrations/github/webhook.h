// GitHub webhooks: signature verification and normalisation into runner::Event
// (DESIGN.md §7; the traps are in fixtures/FORGE-FACTS.md §2).
//
// Signatures: X-Hub-Signature-256 = "sha256=" + lowercase hex HMAC-SHA256 of the raw body,
// compared in constant time. The SHA-1 X-Hub-Signature is never accepted. A hook may be
// configured with the form content type; GitHub then signs the body it sends (the
// url-encoded form), and the parser url-decodes its `payload` field.
//
// Routing is on X-GitHub-Event first, then on `action` (GitHub adds actions over time; an
// action we do not know is Ignored, never an error). App deliveries carry installation.id,
// copied to Event::installationId so replies can mint the right installation token.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "runner/core/config.h"
#include "runner/core/forge.h"
#include "runner/core/log.h"

namespace integrations::github {

// Checks X-Hub-Signature-256 against HMAC-SHA256(secret, raw body) in constant time.
// Never throws for anything in the delivery.
runner::SignatureCheck verifySignature(std::string_view secret,
                                       const runner::WebhookDelivery& delivery);

// Who the events are from: copied into Event::forge (Event::forgeType is "github").
struct Source {
  std::string forgeName;
};

// Normalises a delivery. BadPayload when the body is not a JSON object, X-GitHub-Event is
// missing, or an event we act on lacks a field it cannot do without. Never throws for
// anything in the delivery. Does not check the signature.
//
// What comes out (tests/integrations/github_webhook_test.cc covers every fixture):
//  * push to a branch -> Push (created/forced from GitHub's flags; a zero `before` also
//    means created). `deleted` or a zero `after` -> Ignored "branch deleted"; tags and
//    other refs -> Ignored. `commits` holds at most 2048 entries: plan from before..after.
//  * pull_request opened / reopened / synchronize -> PullRequest; closed -> Closed, or
//    Merged (with merge_commit_sha) when pull_request.merged; edited with changes.base ->
//    Synchronized (synchronize also fills before/after: the old and new head); other
//    actions -> Ignored. A null head.repo (deleted fork) or a head repo
//    other than the base -> fromFork.
//  * issue_comment `created` on a pull request (issue.pull_request present) with a
//    "/switchyard rerun [host…]" line -> CommentCommand; headSha stays "" because GitHub
//    does not send it (the scheduler asks Forge::pullRequest).
//  * check_run rerequested -> Rerun of that run (checkRunId, headSha, externalId; runId,
//    stage and host parsed from an external id "run:<id>:<stage>:<host>" we set);
//    check_run requested_action -> Rerun with requestedAction = the button's identifier;
//    check_suite rerequested -> Rerun of the commit (checkSuiteId, headSha, all hosts).
//    check_run created/completed and check_suite requested/completed -> Ignored (our own
//    runs echo back; runs start from push and pull_request events).
//  * ping, and every other event -> Ignored.
runner::ParseResult parseDelivery(const runner::WebhookDelivery& delivery, const Source& source);

// A WebhookReceiver for one configured GitHub forge. Reads the secret from
// config.webhookSecretFile (registering it with `redactor` if given); without one, every
// delivery is rejected. Throws InputError if the secret file cannot be read or is empty.
std::unique_ptr<runner::WebhookReceiver> makeWebhookReceiver(const runner::ForgeConfig& config,
                                                             runner::Redactor* redactor = nullptr);

}  // namespace integrations::github
