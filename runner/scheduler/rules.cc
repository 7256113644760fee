#include "runner/scheduler/rules.h"

#include <algorithm>

#include "runner/core/text.h"

namespace runner::scheduler {
namespace {

std::string branchOf(const std::string& ref) {
  return startsWith(ref, "refs/heads/") ? ref.substr(11) : "";
}

Decision ignore(std::string why) {
  Decision d;
  d.verdict = Verdict::Ignore;
  d.reason = std::move(why);
  return d;
}

Decision start(store::NewRun run, bool supersedeRef, std::string note = "") {
  Decision d;
  d.verdict = Verdict::StartRun;
  d.run = std::move(run);
  d.supersedeRef = supersedeRef;
  d.note = std::move(note);
  return d;
}

Decision decidePush(const Event& e, const RepoConfig* repo, RunLookup& runs) {
  if (!repo) return ignore("repository " + e.repo + " is not configured");
  std::string branch = branchOf(e.ref);
  if (branch.empty()) return ignore("not a branch: " + e.ref);
  if (std::find(repo->deployBranches.begin(), repo->deployBranches.end(), branch) ==
      repo->deployBranches.end())
    return ignore("branch " + branch + " is not a deploy branch");
  // A push that is already covered: the same push again (hook and forge both set up, a
  // redelivery) or an older one arriving after a newer. The branch's newest deploy run
  // tells: this push ends at its commit, or at the commit its changes start from, without
  // starting from its commit (that would be the branch moving back, e.g. a force push).
  if (auto last = runs.latestForRef(repo->forge.value_or(""), repo->name, e.ref, RunKind::Deploy);
      last && e.before != last->sha &&
      (e.after == last->sha || (!last->baseSha.empty() && e.after == last->baseSha))) {
    if (e.after == last->sha)
      return ignore("run " + std::to_string(last->id) + " already deploys " + shortSha(e.after));
    Decision d = ignore("older than run " + std::to_string(last->id) + " (" + shortSha(last->sha) +
                        "), which includes " + shortSha(e.after));
    // Older than the queued run: its changes are that run's to plan.
    if (last->state == RunState::Queued && !isZeroSha(e.before) && !e.before.empty())
      d.rebase = {last->id, e.before};
    return d;
  }
  store::NewRun n;
  n.repo = repo->name;
  n.forge = repo->forge.value_or("");
  n.kind = RunKind::Deploy;
  n.trigger = e.forgeType == "hook" ? RunTrigger::Hook : RunTrigger::Push;
  n.sha = e.after;
  n.ref = e.ref;
  n.baseSha = isZeroSha(e.before) ? "" : e.before;
  Decision d = start(std::move(n), true);
  d.planFromSuperseded = true;
  return d;
}

Decision decidePullRequest(const Event& e, const RepoConfig* repo) {
  if (!repo) return ignore("repository " + e.repo + " is not configured");
  std::string ref = pullRequestRef(e.prNumber);
  if (e.prAction == PrAction::Closed || e.prAction == PrAction::Merged) {
    Decision d;
    d.verdict = Verdict::SupersedeQueued;
    d.reason = e.prAction == PrAction::Merged ? "pull request merged" : "pull request closed";
    d.forge = repo->forge.value_or("");
    d.repo = repo->name;
    d.ref = ref;
    return d;
  }
  if (e.headSha.empty()) return ignore("pull request event without a head commit");
  store::NewRun n;
  n.repo = repo->name;
  n.forge = repo->forge.value_or("");
  n.kind = RunKind::Check;
  n.trigger = RunTrigger::PullRequest;
  n.sha = e.headSha;
  n.ref = ref;
  n.baseSha = e.baseSha;
  n.prNumber = e.prNumber;
  n.fromFork = e.fromFork;
  return start(std::move(n), true, e.fromFork ? " (fork: build only)" : "");
}

Decision decideComment(const Event& e, const std::optional<report::GatewayDecision>& gate,
                       const RepoConfig* repo, RunLookup& runs) {
  if (!repo) return ignore("repository " + e.repo + " is not configured");
  if (!gate || !gate->accepted())
    return ignore("re-run refused: " + (gate ? gate->reason : std::string("?")));
  const report::RerunRequest& rq = gate->request;
  std::string sha = rq.sha.empty() ? e.headSha : rq.sha;
  auto parent = runs.latestForPullRequest(repo->forge.value_or(""), repo->name, e.prNumber);
  store::NewRun n;
  n.repo = repo->name;
  n.forge = repo->forge.value_or("");
  n.trigger = RunTrigger::Comment;
  n.hostsFilter = rq.hosts.empty() ? e.hosts : rq.hosts;
  n.stageFilter = rq.stage;
  n.prNumber = e.prNumber;
  n.ref = pullRequestRef(e.prNumber);
  n.fromFork = rq.fromFork || e.fromFork;
  if (parent && (sha.empty() || parent->sha == sha)) {
    n.kind = RunKind::Rerun;
    n.sha = parent->sha;
    n.baseSha = parent->baseSha;
    n.fromFork = n.fromFork || parent->fromFork;
    n.parentRun = parent->id;
  } else {
    if (sha.empty()) return ignore("no run of this pull request to re-run yet");
    n.kind = RunKind::Check;  // the PR moved on (or never ran): check its head
    n.sha = sha;
    n.baseSha = e.baseSha;
  }
  std::optional<Approval> approval;
  if (rq.approve) {
    if (!n.fromFork) return ignore("nothing to approve: the pull request is not from a fork");
    approval = Approval{n.forge, n.repo, n.sha, e.prNumber, rq.requestedBy};
  }
  std::string note = rq.approve ? " (approved " + shortSha(n.sha) + ")" : "";
  Decision d = start(std::move(n), false, std::move(note));
  d.approval = std::move(approval);
  return d;
}

Decision decideRerun(const Event& e, const std::optional<report::GatewayDecision>& gate,
                     const RepoConfig* repo, RunLookup& runs) {
  // CLI and UI re-runs are authenticated by the daemon; forge ones went through the gateway.
  int64_t runId = e.runId;
  std::string sha = e.headSha;
  std::vector<std::string> hosts = e.hosts;
  std::optional<Stage> stage;
  if (!e.stage.empty()) stage = stageFrom(e.stage);
  RunTrigger trigger =
      e.forgeType == "cli" || e.forgeType == "ui" ? RunTrigger::Manual : RunTrigger::Rerequest;
  if (gate) {
    if (!gate->accepted()) return ignore("re-run refused: " + gate->reason);
    const report::RerunRequest& rq = gate->request;
    if (rq.runId) runId = *rq.runId;
    if (!rq.sha.empty()) sha = rq.sha;
    if (!rq.hosts.empty()) hosts = rq.hosts;
    if (rq.stage) stage = rq.stage;
    trigger = rq.trigger;
  }
  std::optional<RunView> parent;
  if (runId > 0) parent = runs.run(runId);
  if (!gate && e.command == "cancel") {  // the web's Cancel (authenticated by the daemon)
    if (!parent) return ignore("no run " + std::to_string(runId) + " to cancel");
    if (isFinal(parent->state))
      return ignore("run " + std::to_string(parent->id) + " already ended (" +
                    toString(parent->state) + ")");
    Decision d;
    d.verdict = Verdict::CancelRun;
    d.cancelRun = parent->id;
    d.reason = "cancelled by " + (e.sender.empty() ? e.forgeType : e.sender);
    return d;
  }
  if (!parent && !sha.empty() && repo)
    parent = runs.latestForSha(repo->forge.value_or(""), repo->name, sha);
  if (!parent) return ignore("no run to re-run");
  if (gate) {
    // A forge's re-run names the run by a check run's external_id: it only stands for a run
    // of the repository (and commit) the event is about.
    const std::string which = "run " + std::to_string(parent->id);
    if (!repo || parent->repo != repo->name || parent->forge != repo->forge.value_or(""))
      return ignore("re-run refused: " + which + " is of " + parent->repo + ", not " + e.repo);
    if (!e.headSha.empty() && parent->sha != e.headSha)
      return ignore("re-run refused: " + which + " is of commit " + shortSha(parent->sha) +
                    ", not " + shortSha(e.headSha));
  }
  std::optional<Approval> approval;
  if (gate ? gate->request.approve : e.command == "approve") {
    if (!parent->fromFork)
      return ignore("nothing to approve: run " + std::to_string(parent->id) +
                    " is not of a pull request from a fork");
    approval = Approval{parent->forge, parent->repo, parent->sha, parent->prNumber,
                        gate && !gate->request.requestedBy.empty()
                            ? gate->request.requestedBy
                            : (e.sender.empty() ? e.forgeType : e.sender)};
  }
  store::NewRun n;
  n.repo = parent->repo;
  n.forge = parent->forge;
  n.kind = RunKind::Rerun;
  n.trigger = trigger;
  n.sha = parent->sha;
  n.ref = parent->ref;
  n.baseSha = parent->baseSha;
  n.prNumber = parent->prNumber;
  n.fromFork = parent->fromFork;
  n.hostsFilter = hosts;
  n.stageFilter = stage;
  n.parentRun = parent->id;
  std::string note;
  if (!gate && e.command == "rollback") {
    // A roll back from the host page (authenticated by the daemon): the run that deployed the
    // host's previous system deploys it again, through the same locked, confirmed path. That
    // commit is older than the deployed one, so the run is forced past the ancestry check.
    if (hosts.size() != 1) return ignore("a roll back names exactly one host");
    n.forced = true;
    note = " (roll back of " + hosts.front() + " to run " + std::to_string(parent->id) + ")";
  }
  Decision d = start(std::move(n), false, std::move(note));
  d.approval = std::move(approval);
  return d;
}

}  // namespace

std::string pullRequestRef(int64_t number) {
  return "refs/pull/" + std::to_string(number) + "/head";
}

Decision decide(const Event& e, const std::optional<report::GatewayDecision>& gate,
                const RepoConfig* repo, RunLookup& runs) {
  switch (e.kind) {
    case EventKind::Ignored:
      return ignore(e.ignoredReason.empty() ? "ignored" : e.ignoredReason);
    case EventKind::Push:
      return decidePush(e, repo, runs);
    case EventKind::PullRequest:
      return decidePullRequest(e, repo);
    case EventKind::CommentCommand:
      return decideComment(e, gate, repo, runs);
    case EventKind::Rerun:
      return decideRerun(e, gate, repo, runs);
  }
  return ignore("unknown event kind");
}

}  // namespace runner::scheduler
