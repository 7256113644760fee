// The one event type every intake path produces (DESIGN.md §1): forge webhooks (Gitea,
// Forgejo, GitHub), the git post-receive hook, and re-run requests from the CLI or the UI.
// The integrations normalise payloads into this; the scheduler turns events into runs.
// Stored as JSON in the queue, so the fields are plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace runner {

enum class EventKind {
  Push,            // a branch moved (created or updated); deletions are Ignored
  PullRequest,     // opened / synchronized / reopened / closed / merged
  CommentCommand,  // "/switchyard rerun [host…]" on a pull request
  Rerun,           // re-run of a commit, a host or a stage (check_run/check_suite, UI, CLI)
  Ignored,         // a delivery we accept and store but do not act on (ping, tag push, …)
};
const char* toString(EventKind k);

enum class PrAction { None, Opened, Synchronized, Reopened, Closed, Merged };
const char* toString(PrAction a);

struct Event {
  EventKind kind = EventKind::Ignored;
  std::string forge;       // configured forge name ("home"); "" for hook/CLI events
  std::string forgeType;   // "gitea" | "forgejo" | "github" | "hook" | "cli" | "ui"
  std::string deliveryId;  // forge delivery id; dedupe key together with `forge`
  std::string eventName;   // raw event header value ("push", "pull_request", …)
  std::string repo;        // "owner/name" as the forge names it
  std::string cloneUrl;
  std::string sender;  // login of whoever caused it

  // Push
  std::string ref;     // full ref, "refs/heads/main"
  std::string before;  // sha (all zeros when created)
  std::string after;   // sha
  bool created = false;
  bool forced = false;
  int64_t totalCommits = 0;

  // Pull request (also filled for comment commands when the payload says)
  PrAction prAction = PrAction::None;
  int64_t prNumber = 0;
  std::string headSha;
  std::string headRef;
  std::string baseRef;
  std::string baseSha;
  std::string headRepo;      // "owner/name" of the head; differs from repo for forks
  std::string headCloneUrl;  // where to fetch a fork's head from
  bool fromFork = false;
  std::string mergeSha;  // merged PRs

  // Comment command
  int64_t commentId = 0;
  std::string commentAuthor;
  std::string command;             // "rerun"
  std::vector<std::string> hosts;  // named hosts (empty: all of the run's hosts)

  // Re-run (GitHub check_run / check_suite, UI, CLI)
  std::string stage;       // "plan" | "build" | "deploy" | "" (everything)
  int64_t runId = 0;       // the Switchyard run being re-run, when known
  int64_t checkRunId = 0;  // GitHub
  int64_t checkSuiteId = 0;
  std::string externalId;       // check_run.external_id (we set "run:<id>:<stage>:<host>")
  std::string requestedAction;  // check_run.requested_action.identifier

  int64_t installationId = 0;  // GitHub App deliveries

  std::string ignoredReason;  // kind == Ignored: why, in a few words
};

void to_json(nlohmann::json& j, const Event& e);
void from_json(const nlohmann::json& j, Event& e);

// True when every character of a sha is '0' (created/deleted refs; SHA-1 or SHA-256 repos).
bool isZeroSha(std::string_view sha);

}  // namespace runner
