// The forge side of re-runs (DESIGN.md §7): what the scheduler asks before it turns a
// forge-initiated event into a run, and the forge's answer to the person who asked.
//
//  * "/switchyard rerun [host…]" and "/switchyard approve" (a fork's head commit may build)
//    on a pull request (Gitea, Forgejo, GitHub): the commenter
//    must have write access — asked of the forge (Forge::userPermission); any failure to
//    get a yes is a no — then the pull request is read when the payload has no head sha
//    (GitHub never sends one; old Gitea neither) and must be open. Accepted commands get a
//    +1 reaction on the comment; refusals a reply that says why. A command on a pull
//    request from a fork is accepted as a build (fromFork: the scheduler builds without
//    secrets and never deploys); asking a fork to deploy is refused.
//  * GitHub check_run "rerequested": that check run's host and stage, read back from its
//    external_id "run:<id>:<stage>:<host>" (the scheduler refuses it unless run <id> is of the
//    event's repository and head commit); "requested_action" with identifier "rerun" (the
//    button the reporter puts on hosts that did not succeed): the same; check_suite
//    "rerequested": the whole commit. GitHub shows these buttons only to people with write
//    access, and the delivery is signed, so no permission check is made.
//  * re-runs from the UI or the CLI (no forge): passed through as accepted; the daemon
//    authenticates them.
//
// Replies and reactions go through the outbox (they survive an outage; a redelivered event
// does not reply twice). Only the permission and pull request questions are asked directly,
// on the caller's thread: call handle() from a worker, not from the HTTP handler.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/event.h"
#include "runner/core/log.h"
#include "runner/core/run.h"
#include "runner/report/calls.h"
#include "runner/store/database.h"
#include "runner/store/outbox.h"

namespace runner::report {

// What to run again.
struct RerunRequest {
  std::string forge;  // "" for UI/CLI re-runs
  std::string repo;
  std::string sha;        // the commit (a PR's current head for comment commands)
  int64_t prNumber = 0;   // 0 when not known to be a pull request
  bool fromFork = false;  // known for comment commands; for check runs take it from runId's run
  std::vector<std::string> hosts;  // empty: every host of the run/commit
  std::optional<Stage> stage;      // nullopt: from the plan on
  std::optional<int64_t> runId;    // the Switchyard run this re-runs, when the event names it
  RunTrigger trigger = RunTrigger::Rerequest;  // Comment | Rerequest | Manual
  std::string requestedBy;                     // forge login
  // "/switchyard approve" (or the run page's Approve): `requestedBy` approves `sha` of a
  // pull request from a fork, which may then build (untrusted.build: approve).
  bool approve = false;
};

struct GatewayDecision {
  enum class Kind {
    Accepted,  // `request` says what to run
    Refused,   // `reason` says why (the person was told, when they can be)
    Retry,     // the forge could not answer now; handle() the event again later (nothing
               // was posted); `retryAfter` when the forge said how long
  };
  Kind kind = Kind::Refused;
  RerunRequest request;
  std::string reason;
  std::optional<std::chrono::seconds> retryAfter;

  bool accepted() const { return kind == Kind::Accepted; }
};

class ForgeGateway {
 public:
  // `db`, the Forge objects in `forges`, `clock` and `log` must outlive this object.
  // `onEnqueued` is called after a reply or reaction was queued (e.g. to wake the sender).
  ForgeGateway(store::Database& db, Forges forges, Clock& clock, Logger& log,
               std::function<void()> onEnqueued = {});

  // Decides on a CommentCommand or Rerun event. Other kinds are Refused ("not a re-run").
  // Throws StoreError when the outbox cannot be written; never for forge trouble.
  GatewayDecision handle(const Event& event);

  // Posts `text` as a reply on the pull request of a comment command (e.g. the scheduler's
  // "no host named 'x' in this repository"); no-op for other events.
  void reply(const Event& event, const std::string& text);

  // Tells the event's forge which GitHub App installation serves its repository (so later
  // calls need not look it up). handle() does this too; call it for every forge event.
  void observe(const Event& event);

 private:
  GatewayDecision commentCommand(const Event& event, Forge& forge);
  GatewayDecision checkRerun(const Event& event);
  GatewayDecision refuse(const Event& event, std::string reason, bool tell);
  void queue(const store::NewOutboxRow& row);

  store::Outbox outbox_;
  Forges forges_;
  Clock& clock_;
  Logger& log_;
  std::function<void()> onEnqueued_;
};

}  // namespace runner::report
