// The forge ports (DESIGN.md §7): what the rest of the runner needs from Gitea, Forgejo and
// GitHub, with no forge named. Two halves:
//
//  * Intake. A webhook delivery (headers + raw body) goes through a WebhookReceiver: verify()
//    checks the signature in constant time, parse() normalises the payload into one
//    runner::Event. Both return values, because a bad signature (401), a malformed body
//    (400) and an event we do not act on (2xx, stored as Ignored) are normal outcomes of
//    talking to the internet, not failures of the runner.
//
//  * Reporting. A Forge sets commit statuses, keeps one PR comment up to date, answers
//    "may this user trigger a re-run", reacts and replies to comments, reads a pull
//    request, and (GitHub App only) creates and updates check runs. Every call returns a
//    CallResult saying whether it worked and, if not, whether sending the same call again
//    later can work (Retryable, with the wait the forge asked for) or cannot (Permanent,
//    with the forge's message). The outbox (runner/report) stores calls and retries them on
//    that basis; nothing here sleeps or retries by itself, except a GitHub App refreshing an
//    expired installation token once.
//
// The implementations are integrations/gitea (Gitea and Forgejo) and integrations/github;
// runner/app picks one per configured forge by ForgeConfig::type.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runner/core/event.h"

namespace runner {

// ---------------------------------------------------------------------------------------------
// Intake

// HTTP header fields as received, with case-insensitive lookup (HTTP field names are
// case-insensitive; forges and proxies spell them differently).
class Headers {
 public:
  Headers() = default;
  Headers(std::initializer_list<std::pair<std::string, std::string>> fields);
  void add(std::string name, std::string value);
  // The value of the first field called `name` (any case), or nullopt when there is none.
  // A present but empty field returns "" (Gitea sends empty signatures when no secret is set).
  std::optional<std::string> get(std::string_view name) const;
  bool has(std::string_view name) const { return get(name).has_value(); }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

// One webhook delivery exactly as the HTTP server received it.
struct WebhookDelivery {
  Headers headers;
  std::string body;  // the raw bytes; signatures cover these (or the form's JSON, see Gitea)
};

// The verdict on a delivery's signature.
struct SignatureCheck {
  bool accepted = false;
  // accepted: the header whose signature matched ("X-Gitea-Signature");
  // rejected: why, in a few words safe to log and to return in the 401 body
  // ("missing signature header", "signature does not match"). Never contains the secret.
  std::string detail;

  static SignatureCheck accept(std::string header) { return {true, std::move(header)}; }
  static SignatureCheck reject(std::string reason) { return {false, std::move(reason)}; }
};

// The outcome of normalising a delivery.
struct ParseResult {
  enum class Kind {
    Parsed,      // `event` is filled; event.kind may be EventKind::Ignored (answer 2xx)
    BadPayload,  // the body is not the JSON this event should carry (answer 400)
  };
  Kind kind = Kind::BadPayload;
  Event event;
  std::string error;  // BadPayload: one line saying what is wrong ("not JSON: …")

  bool ok() const { return kind == Kind::Parsed; }
  static ParseResult parsed(Event e) { return {Kind::Parsed, std::move(e), {}}; }
  static ParseResult bad(std::string why) { return {Kind::BadPayload, {}, std::move(why)}; }
};

// Verifies and normalises the deliveries of one configured forge. Immutable after
// construction; both methods are thread-safe, never throw for anything a sender can put in
// a delivery, and do no I/O.
class WebhookReceiver {
 public:
  virtual ~WebhookReceiver() = default;
  // Checks the delivery's signature over its raw body with the forge's webhook secret, in
  // constant time. Missing, empty, malformed or wrong signatures are rejected, and so is
  // every delivery when no secret is configured.
  virtual SignatureCheck verify(const WebhookDelivery& delivery) const = 0;
  // Normalises the payload. REQUIRES: verify(delivery).accepted (parse does not re-check).
  // The event carries the forge's configured name and type and the delivery id.
  virtual ParseResult parse(const WebhookDelivery& delivery) const = 0;
};

// A WebhookReceiver made of two functions (an integration's verify and parse, bound to the
// forge's secret and name). Both must be thread-safe; they are called as the port says.
std::unique_ptr<WebhookReceiver> makeWebhookReceiver(
    std::function<SignatureCheck(const WebhookDelivery&)> verify,
    std::function<ParseResult(const WebhookDelivery&)> parse);

// A "/switchyard <command> [host…]" line in a comment (DESIGN.md §7, re-runs).
struct CommentCommand {
  enum class Kind {
    None,     // no line starts with "/switchyard": an ordinary comment
    Command,  // `command` and `hosts` are set
    Invalid,  // a /switchyard line we refuse; `problem` says why
  };
  Kind kind = Kind::None;
  std::string command;             // "rerun" | "approve"
  std::vector<std::string> hosts;  // in the order given, without duplicates; empty = all
  std::string problem;             // Invalid: "unknown command 'deploy'", "invalid host name …"
};

// A host attribute name as commands and check runs may name it: [A-Za-z0-9_][A-Za-z0-9_.-]*,
// at most 63 characters.
bool isHostName(std::string_view s);

// Finds the first line of `body` that a reader sees as text starting with "/switchyard" and
// parses it. Lines inside HTML comments, fenced or indented (4 spaces, a tab) code blocks and
// quotes ("> …") do not count: a command is only what people can see. Known commands:
// "rerun [host…]" and "approve" (a fork's head commit may build).
// Hosts are separated by spaces or commas and must look like host attribute names
// ([A-Za-z0-9_][A-Za-z0-9_.-]*, at most 63 characters), at most 50 of them.
CommentCommand parseCommentCommand(std::string_view body);

// ---------------------------------------------------------------------------------------------
// Reporting

// Whether a forge call worked, and if not whether it can work later.
enum class CallStatus {
  Ok,
  Retryable,  // send the same call again later (5xx, 429, rate limit, transport failure)
  Permanent,  // it will fail the same way every time (401, 403, 404, 422, bad arguments)
};
const char* toString(CallStatus s);

struct CallResult {
  CallStatus status = CallStatus::Ok;
  int httpStatus = 0;   // the last HTTP status; 0 when no response (transport) or not sent
  std::string message;  // failures: what went wrong, e.g. "HTTP 422: Validation Failed:
                        // description is too long"; never contains a token
  // Retryable: the least time to wait that the forge asked for (retry-after, or until
  // x-ratelimit-reset); nullopt when it said nothing (the caller uses its own back-off).
  std::optional<std::chrono::seconds> retryAfter;

  bool ok() const { return status == CallStatus::Ok; }
  bool retryable() const { return status == CallStatus::Retryable; }
  static CallResult success(int httpStatus) { return {CallStatus::Ok, httpStatus, {}, {}}; }
  // A call refused before sending (bad arguments, unsupported by this forge).
  static CallResult refused(std::string why) {
    return {CallStatus::Permanent, 0, std::move(why), {}};
  }
};

// A CallResult that carries a value on success.
template <class T>
struct ForgeResult : CallResult {
  T value{};  // meaningful only when ok()
  ForgeResult() = default;
  ForgeResult(CallResult r) : CallResult(std::move(r)) {}  // NOLINT: failures convert
  ForgeResult(CallResult r, T v) : CallResult(std::move(r)), value(std::move(v)) {}
};

enum class StatusState { Pending, Success, Failure, Error };
const char* toString(StatusState s);

// A commit status (DESIGN.md §7: "switchyard/plan", "switchyard/build/<host>", …).
struct CommitStatus {
  StatusState state = StatusState::Pending;
  std::string context;
  std::string description;  // GitHub keeps at most 140 characters: longer ones are cut
  std::string targetUrl;    // "" sends none
};

// Where a comment ended up.
struct CommentRef {
  enum class Change { Created, Updated, Unchanged };
  int64_t id = 0;
  std::string url;  // html_url
  Change change = Change::Created;
};

enum class Reaction { ThumbsUp, ThumbsDown, Laugh, Confused, Heart, Hooray, Rocket, Eyes };
const char* toString(Reaction r);  // the forges' names: "+1", "-1", "laugh", …, "eyes"

struct UserPermission {
  std::string level;      // as the forge says: none|read|write|admin (+ owner on Gitea;
                          // GitHub's finer role_name, e.g. maintain|triage, when present)
  bool canWrite = false;  // write, maintain, admin or owner
};

struct PullRequestInfo {
  int64_t number = 0;
  std::string state;  // "open" | "closed"
  bool merged = false;
  std::string headSha;
  std::string headRef;
  std::string headRepo;      // "owner/name"; "" when the fork was deleted
  std::string headCloneUrl;  // "" when the fork was deleted
  std::string baseRef;
  std::string baseSha;
  std::string baseRepo;
  bool fromFork = false;  // head repository differs from the base (or is gone)
};

// GitHub check runs (Checks API; only for a GitHub App).
enum class CheckStatus { Queued, InProgress, Completed };
enum class CheckConclusion {
  ActionRequired,
  Cancelled,
  Failure,
  Neutral,
  Success,
  Skipped,
  TimedOut
};
const char* toString(CheckStatus s);
const char* toString(CheckConclusion c);

// A button on a check run; clicking it sends check_run.requested_action with `identifier`.
struct CheckAction {
  std::string label;        // at most 20 characters (cut if longer)
  std::string description;  // at most 40 characters (cut if longer)
  std::string identifier;   // at most 20 characters (refused if longer: it must round-trip)
};

// A note on a line range of a file in the repository, shown on the check run and in the pull
// request's diff (GitHub check run annotations).
struct CheckAnnotation {
  enum class Level { Notice, Warning, Failure };
  std::string path;  // relative to the repository root ("hosts/web1.nix")
  int startLine = 1, endLine = 1;
  Level level = Level::Failure;
  std::string title;       // "" sends none; cut to 255 characters
  std::string message;     // required; cut to 64 KiB
  std::string rawDetails;  // "" sends none; cut to 64 KiB
};
const char* toString(CheckAnnotation::Level level);  // "notice" | "warning" | "failure"

struct CheckRunSpec {
  std::string name;     // required on create; on update sent only when non-empty
  std::string headSha;  // required on create; ignored on update
  CheckStatus status = CheckStatus::Queued;
  std::optional<CheckConclusion> conclusion;  // REQUIRED when status == Completed
  std::string detailsUrl;                     // "" sends none
  std::string externalId;                     // "" sends none
  std::optional<std::chrono::system_clock::time_point> startedAt;
  std::optional<std::chrono::system_clock::time_point> completedAt;
  // Output: sent when `title` is non-empty. summary and text are cut to 65535 bytes.
  std::string title;
  std::string summary;
  std::string text;
  std::vector<CheckAction> actions;  // at most 3 (refused if more)
  // Sent with the output (so only with a title); GitHub takes 50 per request: the rest go
  // in further updates of the same check run, 50 at a time.
  std::vector<CheckAnnotation> annotations;
};

struct ForgeCapabilities {
  bool checkRuns = false;           // createCheckRun/updateCheckRun can work
  size_t maxStatusDescription = 0;  // characters kept of a status description; 0 = no limit
  // The forge keeps one status per context compared without case (GitHub: "…/Web" replaces
  // "…/web" on a commit); setStatus refuses a context that would replace another one.
  bool statusContextsIgnoreCase = false;
};

// The API client of one configured forge. Implementations are thread-safe: any method may
// be called from several threads at once. No method throws for anything the forge or the
// network does; they throw only std::bad_alloc. `repo` is always "owner/name"; a malformed
// one is refused (Permanent, httpStatus 0) without sending anything.
class Forge {
 public:
  virtual ~Forge() = default;

  virtual ForgeCapabilities capabilities() const = 0;

  // Sets a commit status on `sha`. Every call adds a status; the forge shows the latest per
  // context. Ok value: none.
  virtual CallResult setStatus(const std::string& repo, const std::string& sha,
                               const CommitStatus& status) = 0;

  // Keeps one comment per pull request up to date: lists the PR's comments, takes the
  // oldest whose body starts with `marker` (an HTML comment such as
  // "<!-- switchyard:plan -->"), and edits it if its body differs, else posts a new one.
  // The posted body is `marker` + "\n" + `body`. REQUIRES: marker is non-empty.
  // Ok value: the comment's id and whether it was Created, Updated or Unchanged.
  virtual ForgeResult<CommentRef> upsertComment(const std::string& repo, int64_t prNumber,
                                                const std::string& marker,
                                                const std::string& body) = 0;

  // upsertComment for a comment whose id an earlier upsertComment returned: edits comment
  // `commentId` to `marker` + "\n" + `body` without listing the pull request's comments, and
  // falls back to upsertComment when the forge answers 404 (the comment was deleted). Ok
  // value: the comment (Updated), or what upsertComment returned. The default lists.
  virtual ForgeResult<CommentRef> updateComment(const std::string& repo, int64_t prNumber,
                                                int64_t commentId, const std::string& marker,
                                                const std::string& body) {
    (void)commentId;
    return upsertComment(repo, prNumber, marker, body);
  }

  // Posts a new comment on an issue or pull request (a reply to a comment command).
  virtual ForgeResult<CommentRef> postComment(const std::string& repo, int64_t number,
                                              const std::string& body) = 0;

  // Adds a reaction to an issue/PR comment. Reacting twice with the same content is Ok.
  virtual CallResult addReaction(const std::string& repo, int64_t commentId, Reaction reaction) = 0;

  // The permission `user` has on `repo` (for "/switchyard rerun" from comments). A user the
  // forge does not know is a Permanent failure (404): treat any failure as "no".
  virtual ForgeResult<UserPermission> userPermission(const std::string& repo,
                                                     const std::string& user) = 0;

  // The pull request's head, base and state (comment commands carry no head sha).
  virtual ForgeResult<PullRequestInfo> pullRequest(const std::string& repo, int64_t number) = 0;

  // Check runs. Forges without them (capabilities().checkRuns == false) refuse: Permanent,
  // httpStatus 0. createCheckRun's Ok value is the new check run's id.
  virtual ForgeResult<int64_t> createCheckRun(const std::string& repo, const CheckRunSpec& run) = 0;
  virtual CallResult updateCheckRun(const std::string& repo, int64_t checkRunId,
                                    const CheckRunSpec& run) = 0;

  // Tells a GitHub App which installation serves `repo` (from Event::installationId), so it
  // need not ask the API. Other forges ignore it. Thread-safe.
  virtual void noteInstallation(const std::string& repo, int64_t installationId) {}
};

// ---------------------------------------------------------------------------------------------
// Helpers shared by the integrations

// Splits "owner/name" into its two parts; nullopt unless both are non-empty, neither is "."
// or "..", and there is exactly one '/'.
std::optional<std::pair<std::string, std::string>> splitRepo(std::string_view repo);

// True for 7 to 64 hex digits (an abbreviated or full SHA-1/SHA-256 commit id).
bool looksLikeSha(std::string_view s);
// True for a full commit id as forges send it: 40 (SHA-1) or 64 (SHA-256) lowercase hex
// digits. Webhook fields that name commits must be this (they reach git and Nix).
bool isCommitId(std::string_view s);
// nullopt when `ref` is a well-formed full ref name ("refs/heads/main": git check-ref-format
// rules — no "..", "@{", control characters, spaces or ~^:?*[\, no part starting with '.'
// or ending in ".lock", no empty part, at most 1024 bytes), else what is wrong.
std::optional<std::string> refNameProblem(std::string_view ref);

// Reads from untrusted JSON (webhook payloads, API answers) without throwing: the value at
// `path` (a chain of object keys), or nullptr / "" / 0 / false when a step is missing or
// the value has another type.
const nlohmann::json* jsonFind(const nlohmann::json& j,
                               std::initializer_list<std::string_view> path);
std::string jsonString(const nlohmann::json& j, std::initializer_list<std::string_view> path);
int64_t jsonInt(const nlohmann::json& j, std::initializer_list<std::string_view> path);
bool jsonBool(const nlohmann::json& j, std::initializer_list<std::string_view> path);

// Cuts `s` to at most `maxChars` Unicode code points (UTF-8), appending "…" (counted) when
// it cut. Counts lead bytes, so it never splits a code point.
std::string truncateChars(std::string_view s, size_t maxChars);

}  // namespace runner
