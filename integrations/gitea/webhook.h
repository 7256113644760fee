// Gitea and Forgejo webhooks: signature verification and normalisation into runner::Event
// (DESIGN.md §7; the traps are in fixtures/FORGE-FACTS.md §1).
//
// Signatures. Gitea signs the payload with HMAC-SHA256 and sends the same lowercase hex
// under X-Gitea-Signature and X-Gogs-Signature (Forgejo also X-Forgejo-Signature), and with
// a "sha256=" prefix under X-Hub-Signature-256. The first of those headers that is present
// and non-empty is checked (in that order: Forgejo, Gitea, Gogs, Hub); the SHA-1
// X-Hub-Signature is never accepted. A hook without a secret sends the headers EMPTY: that
// is rejected, as is everything when Switchyard has no secret for the forge.
//
// Form-encoded deliveries are refused (400, "set the hook's content type to
// application/json"): the signature must cover exactly the bytes that are parsed, and a form
// would be read differently from the same bytes under an unsigned Content-Type.
//
// Routing is on the coarse event header first (X-Forgejo-Event, X-Gitea-Event, X-Gogs-Event)
// and then on the payload's `action`, because Gitea reuses actions across events: a
// `pull_request_comment` event is a REVIEW comment, not a conversation comment, and old
// versions sent reviews as `action: synchronized` under review events.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "runner/core/config.h"
#include "runner/core/forge.h"
#include "runner/core/log.h"

namespace integrations::gitea {

// Checks the delivery's signature with `secret` in constant time (see above).
// Never throws for anything in the delivery.
runner::SignatureCheck verifySignature(std::string_view secret,
                                       const runner::WebhookDelivery& delivery);

// Who the events are from: copied into Event::forge and Event::forgeType.
struct Source {
  std::string forgeName;            // the key under `forges:`
  std::string forgeType = "gitea";  // "gitea" | "forgejo"
};

// Normalises a delivery (push, pull_request, issue_comment; everything else is Ignored with
// a reason). BadPayload when the body is not a JSON object, or an event we act on lacks a
// field it cannot do without (a push without `after`). Never throws for anything in the
// delivery. Does not check the signature.
//
// What comes out (see tests/integrations/gitea_webhook_test.cc for every fixture):
//  * push to a branch -> Push; `created` when `before` is all zeros (40 or 64 of them: Gitea
//    has no created/deleted flags); `forced` is always false (Gitea does not say);
//    totalCommits from total_commits (the `commits` list is cut to 5: never use it to see
//    what changed — plan from before..after). Tag pushes, branch deletions and other refs
//    -> Ignored.
//  * pull_request opened / reopened / synchronized (GitHub's "synchronize" is accepted too)
//    -> PullRequest with that action; closed -> Closed, or Merged when pull_request.merged;
//    edited with a changed base branch -> Synchronized; any other action -> Ignored.
//    Fork detection: head.repo.full_name vs base's, else head.repo_id vs base.repo_id; when
//    neither tells, the PR counts as a fork (builds without secrets, never deploys).
//  * issue_comment `created` on a pull request (is_pull, or issue.pull_request present)
//    whose body has a "/switchyard rerun [host…]" line -> CommentCommand. Newer Gitea sends
//    the PR's head in a top-level pull_request object; older versions do not, and then
//    headSha is "" (the scheduler asks Forge::pullRequest).
runner::ParseResult parseDelivery(const runner::WebhookDelivery& delivery, const Source& source);

// A WebhookReceiver for one configured Gitea/Forgejo forge. Reads the secret from
// config.webhookSecretFile (and registers it with `redactor` if given); without one, every
// delivery is rejected. Throws InputError if the secret file cannot be read or is empty.
std::unique_ptr<runner::WebhookReceiver> makeWebhookReceiver(const runner::ForgeConfig& config,
                                                             runner::Redactor* redactor = nullptr);

}  // namespace integrations::gitea
