// The steps of webhook parsing that Gitea/Forgejo and GitHub share (DESIGN.md §7). Both
// forges send push, pull_request and issue_comment payloads of nearly the same shape, so the
// rules for reading them live here once and each integration passes what its forge does
// differently (a field only one of them sends, another way to tell a fork) as parameters.
// A fix to the shared rules then reaches both forges, and neither integration includes the
// other (DESIGN.md §2).
//
// Everything here reads untrusted JSON: no function throws for anything a sender can put in
// a delivery (only std::bad_alloc), none does I/O, and all are thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "integrations/common/rest.h"
#include "runner/core/event.h"
#include "runner/core/forge.h"

namespace runner {

// True when the delivery's Content-Type is application/x-www-form-urlencoded (a hook may be
// configured to send its JSON as the `payload` field of a form).
bool isFormDelivery(const WebhookDelivery& delivery);

// Reads the JSON object a delivery's body is into `payload` — exactly the signed bytes, as
// JSON: form-encoded deliveries and other content types are refused. Returns nullopt when it
// did, else what is wrong, in words fit for a 400 answer.
std::optional<std::string> readWebhookPayload(const WebhookDelivery& delivery,
                                              nlohmann::json& payload);

// `e` as an Ignored event with `why` as its reason (the rest of it is kept for the record).
Event ignoredEvent(Event e, std::string why);

// Reads a push payload's `ref`, `before` and `after` into `e`, checking the payload has a
// push's shape (the event name is an unsigned header): a well-formed ref, commit ids (all
// zeros for a created or deleted branch), repository.full_name, and none of the objects
// other events carry. Returns nullopt when it does, else what is wrong.
std::optional<std::string> readPushRefs(const nlohmann::json& payload, Event& e);

// The verdict on a push whose fields have been read: a tag push, a push to a ref that is
// not a branch, and a deleted branch (`deleted`, or an all-zero `after`) are Ignored, each
// with its reason; anything else is a Push.
ParseResult classifyPush(Event e, bool deleted);

// What one forge's pull_request and issue_comment payloads do differently. The defaults
// describe neither forge in particular: no extra fields are read.
struct PullRequestDialect {
  // Keys under `changes` of an `edited` pull_request payload that mean the pull request
  // now targets another base branch (GitHub: "base"; Gitea also "ref").
  std::vector<std::string> retargetKeys;
  // A synchronized pull_request payload carries the old and new head as `before` and
  // `after` (GitHub); they are copied into the event for the plan's range.
  bool synchronizeHasRange = false;
  // A top-level boolean of issue_comment payloads that marks a comment on a pull request
  // (Gitea: "is_pull"); "" when the forge has none. issue.pull_request always counts.
  std::string pullRequestFlag;
  // issue_comment payloads may carry the pull request at the top level (newer Gitea); when
  // one is there, its head and base are read into the event.
  bool commentHasPullRequest = false;
  // Called when the head repository has no full_name (GitHub: the fork was deleted), with
  // `e.headRepo` "" and `e.fromFork` true and the base repository's name; may set
  // headRepo, headCloneUrl and fromFork from other fields. nullptr: nothing else tells.
  void (*identifyHeadRepo)(const nlohmann::json& pr, const nlohmann::json& payload,
                           const std::string& baseRepo, Event& e) = nullptr;
};

// Normalises a pull_request payload into `e` (which carries the delivery's common fields,
// e.repo among them):
//  * opened / reopened / synchronize(d) -> PullRequest with that action; closed -> Closed,
//    or Merged (with merge_commit_sha) when pull_request.merged; edited with one of the
//    dialect's retargetKeys under `changes` -> Synchronized; other actions -> Ignored.
//  * The pull request is read as pullRequestFromJson reads an API answer; fromFork when
//    the head repository is unknown or differs from the base (whose name falls back to
//    e.repo). A head repository without full_name goes to the dialect's identifyHeadRepo.
//  * BadPayload when there is no pull_request object, or an action we act on comes without
//    head sha or number.
ParseResult parsePullRequestPayload(const nlohmann::json& payload, Event e,
                                    const PullRequestDialect& dialect);

// Normalises an issue_comment payload into `e`: a `created` comment on a pull request whose
// body has a valid "/switchyard …" line -> CommentCommand (command, hosts, comment id and
// author, PR number); other actions, comments on issues and comments without (or with an
// invalid) command -> Ignored. BadPayload without comment and issue objects, or when a
// command comes without issue number or comment id. headSha stays "" unless the dialect's
// commentHasPullRequest finds the pull request in the payload.
ParseResult parseIssueCommentPayload(const nlohmann::json& payload, Event e,
                                     const PullRequestDialect& dialect);

}  // namespace runner
