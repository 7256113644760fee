#include "runner/scheduler/scheduler.h"

#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/core/thread_annotations.h"
#include "runner/git/repository.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"
#include "runner/plan/plan_format.h"

namespace fs = std::filesystem;

namespace runner::scheduler {
namespace {

bool isFailure(HostState s) {
  return s == HostState::Failed || s == HostState::RolledBack || s == HostState::Unreachable ||
         s == HostState::Refused || s == HostState::Interrupted;
}

std::string branchOf(const std::string& ref) {
  return startsWith(ref, "refs/heads/") ? ref.substr(11) : "";
}

// decide()'s questions, answered from the runs table (inside the delivery's transaction).
class StoreRunLookup final : public RunLookup {
 public:
  explicit StoreRunLookup(store::Runs& runs) : runs_(runs) {}
  std::optional<RunView> run(int64_t id) override { return viewOf(runs_.get(id)); }
  std::optional<RunView> latestForRef(const std::string& forge, const std::string& repo,
                                      const std::string& ref, RunKind kind) override {
    return viewOf(runs_.latestForRef(forge, repo, ref, kind));
  }
  std::optional<RunView> latestForPullRequest(const std::string& forge, const std::string& repo,
                                              int64_t pr) override {
    return viewOf(runs_.latestForPullRequest(forge, repo, pr));
  }
  std::optional<RunView> latestForSha(const std::string& forge, const std::string& repo,
                                      const std::string& sha) override {
    return viewOf(runs_.latestForSha(forge, repo, sha));
  }

 private:
  static std::optional<RunView> viewOf(std::optional<store::RunRecord> r) {
    if (!r) return std::nullopt;
    return std::move(r->view);
  }
  store::Runs& runs_;
};

const char* deliveryState(Verdict v) { return v == Verdict::Ignore ? "ignored" : "processed"; }

// Progress and forge reporting are best effort: an outbox or progress row that cannot be
// written now must not fail a good plan or abandon a deploy halfway (before its health
// checks); the error is logged and the run goes on.
template <class Fn>
void bestEffort(Logger& log, const std::string& what, Fn&& fn) noexcept {
  try {
    fn();
  } catch (const std::exception& e) {
    log.warn(what + ": " + describe(e));
  }
}

// The run's hosts as the execution goes, persisted and reported on every change. Stage
// listeners call it from the stages' threads.
class RunContext final : public StageListener {
 public:
  // `runner`: this runner's id; a host is written only while the run is still its own.
  RunContext(store::Runs& runs, RunReporter& reporter, const Clock& clock, Logger& log,
             RunView view, std::string runner)
      : runs_(runs),
        reporter_(reporter),
        clock_(clock),
        log_(log),
        runner_(std::move(runner)),
        view_(std::move(view)) {}

  RunView view() {
    MutexLock lk(mu_);
    return view_;
  }
  void setBase(const std::string& base) {
    MutexLock lk(mu_);
    view_.baseSha = base;
  }
  void setError(const std::string& error) {
    MutexLock lk(mu_);
    view_.error = error;
  }
  std::optional<RunHostView> get(const std::string& host) {
    MutexLock lk(mu_);
    auto it = hosts_.find(host);
    if (it == hosts_.end()) return std::nullopt;
    return it->second;
  }
  void load(const std::vector<RunHostView>& hosts) {
    MutexLock lk(mu_);
    for (const auto& h : hosts) hosts_[h.host] = h;
  }
  // The run's evaluation: every host's rows start with it (its "plan" step).
  void setPlanTime(int64_t started, int64_t finished) {
    MutexLock lk(mu_);
    planTime_ = HostStepTime{"plan", started, finished};
  }
  // Sets a host's stage/state/summary (and whatever `edit` changes), writes and reports it.
  // Only a final state must be written (throws StoreError when it cannot be): a pending or
  // running one is progress, written again with the run's end; reporting never throws.
  void set(const std::string& host, Stage stage, HostState state, const std::string& summary,
           const std::function<void(RunHostView&)>& edit = {}) {
    RunHostView copy;
    RunView view;
    {
      MutexLock lk(mu_);
      RunHostView& h = hosts_[host];
      if (h.host.empty() && h.steps.empty() && planTime_) h.steps.push_back(*planTime_);
      h.host = host;
      bool stageChanged = h.stage != stage;
      const int64_t now = clock_.nowMillis();
      if (state == HostState::Running && (h.state != HostState::Running || stageChanged)) {
        h.startedAt = now;
        h.steps.push_back({std::string(toString(stage)), now, std::nullopt});
      }
      if (isFinal(state)) {
        h.finishedAt = now;
        closeStep(h, toString(stage), now);
      }
      h.stage = stage;
      h.state = state;
      h.summary = summary;
      if (edit) edit(h);
      try {
        if (!runs_.putHostAs(view_.id, h, runner_)) {
          // taken over by another runner after this one's lease expired: the run is theirs
          log_.warn("run " + std::to_string(view_.id) + " " + host +
                    ": not recorded, the run was taken over by another runner");
          return;
        }
      } catch (const std::exception& e) {
        if (isFinal(state)) throw;
        log_.warn("run " + std::to_string(view_.id) + " " + host +
                  ": recording progress: " + describe(e));
      }
      copy = h;
      view = view_;
    }
    bestEffort(log_, "run " + std::to_string(view.id) + " " + host + ": reporting",
               [&] { reporter_.hostChanged(view, copy); });
  }
  std::vector<RunHostView> all() {
    MutexLock lk(mu_);
    std::vector<RunHostView> out;
    for (const auto& [_, h] : hosts_) out.push_back(h);
    return out;
  }

  // StageListener: progress only moves the summary (and marks the host running). Never
  // throws into the stage.
  void hostStarted(const std::string& host, const std::string& what) override {
    progress(host, what);
  }
  void hostProgress(const std::string& host, const std::string& what) override {
    progress(host, what);
  }
  // A deploy step's start or end: kept in the host's steps (written now, best effort; the
  // host's next change writes them again).
  void hostStep(const std::string& host, std::string_view step, bool finished) override {
    bestEffort(log_, "run step of " + host, [&] {
      MutexLock lk(mu_);
      auto it = hosts_.find(host);
      if (it == hosts_.end()) return;
      const int64_t now = clock_.nowMillis();
      if (finished)
        closeStep(it->second, step, now);
      else
        it->second.steps.push_back({std::string(step), now, std::nullopt});
      runs_.putHost(view_.id, it->second);
    });
  }

 private:
  // Ends the newest unfinished step named `name` at `now`.
  static void closeStep(RunHostView& h, std::string_view name, int64_t now) {
    for (auto it = h.steps.rbegin(); it != h.steps.rend(); ++it)
      if (it->name == name && !it->finishedAt) {
        it->finishedAt = now;
        return;
      }
  }

  void progress(const std::string& host, const std::string& what) noexcept {
    bestEffort(log_, "run progress of " + host, [&] {
      Stage stage;
      {
        MutexLock lk(mu_);
        stage = hosts_.count(host) ? hosts_[host].stage : Stage::Plan;
      }
      set(host, stage, HostState::Running, what);
    });
  }

  store::Runs& runs_;
  RunReporter& reporter_;
  const Clock& clock_;
  Logger& log_;
  const std::string runner_;
  Mutex mu_;
  RunView view_ GUARDED_BY(mu_);
  std::map<std::string, RunHostView> hosts_ GUARDED_BY(mu_);
  std::optional<HostStepTime> planTime_ GUARDED_BY(mu_);
};

}  // namespace

bool runDeploys(const RunView& run, const RepoConfig& repo) {
  if (run.fromFork || run.prNumber != 0) return false;
  if (run.kind == RunKind::Check) return false;
  if (run.stageFilter && *run.stageFilter != Stage::Deploy) return false;
  std::string branch = branchOf(run.ref);
  return !branch.empty() && std::find(repo.deployBranches.begin(), repo.deployBranches.end(),
                                      branch) != repo.deployBranches.end();
}

SlotClass slotClassOf(const RunView& run, const RepoConfig& repo) {
  if (runDeploys(run, repo)) return SlotClass::Deploy;
  return run.fromFork ? SlotClass::Fork : SlotClass::Check;
}

Scheduler::Scheduler(SchedulerPorts ports, SchedulerOptions options)
    : p_(ports),
      o_(std::move(options)),
      deliveries_(p_.db, p_.clock),
      runs_(p_.db, p_.clock, p_.config.effectivePublicUrl()),
      approvals_(p_.db, p_.clock),
      runners_(p_.db, p_.clock),
      runnerId_(o_.runnerId.empty() ? store::Runners::newId() : o_.runnerId) {}

Scheduler::~Scheduler() { stop(); }

void Scheduler::start() {
  runners_.enter(runnerId_, o_.runnerLease);
  recover();
  stopping_ = false;
  {
    MutexLock lk(heartbeatMu_);
    heartbeatStop_ = false;
  }
  heartbeat_ = std::thread([this] { heartbeatLoop(); });
  threads_.emplace_back([this] { dispatcherLoop(); });
  for (int i = 0; i < std::max(1, o_.runWorkers); ++i)
    threads_.emplace_back([this] { workerLoop(); });
}

void Scheduler::stop() noexcept {
  {
    MutexLock lk(mu_);  // a thread between its predicate check and its wait sees it
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  const bool started = !threads_.empty();
  threads_.clear();
  const bool beating = heartbeat_.joinable();
  stopHeartbeat();
  // Gone cleanly: what this runner still holds (a run whose end could not be recorded) is
  // free for the others at once. A runner "killed" by stopHeartbeatForTest leaves its lease.
  if (started && beating) {
    try {
      runners_.leave(runnerId_);
    } catch (const std::exception& e) {
      p_.log.warn("ending this runner's lease: " + describe(e) + " (it expires by itself)");
    }
  }
}

void Scheduler::stopHeartbeat() noexcept {
  {
    MutexLock lk(heartbeatMu_);
    heartbeatStop_ = true;
  }
  heartbeatWake_.notify_all();
  if (heartbeat_.joinable()) heartbeat_.join();
}

void Scheduler::stopHeartbeatForTest() noexcept { stopHeartbeat(); }

void Scheduler::heartbeatLoop() {
  const auto every = std::max(std::chrono::milliseconds(1), o_.runnerLease / 3);
  for (;;) {
    {
      MutexLock lk(heartbeatMu_);
      lk.waitFor(heartbeatWake_, every, [&]() REQUIRES(heartbeatMu_) { return heartbeatStop_; });
      if (heartbeatStop_) return;
    }
    try {
      if (!runners_.renew(runnerId_, o_.runnerLease)) {
        p_.log.error("runner " + runnerId_ +
                     ": its lease had expired (the database was out of reach or this process "
                     "stood still); other runners may have taken over its runs and host locks");
        runners_.enter(runnerId_, o_.runnerLease);
      }
      if (recoverOrphans() > 0) runsChanged();
    } catch (const std::exception& e) {
      p_.log.warn("runner heartbeat: " + describe(e));
    }
  }
}

void Scheduler::wake() noexcept {
  {
    MutexLock lk(mu_);
    pending_ = true;
  }
  wake_.notify_all();
}

void Scheduler::dispatcherLoop() {
  std::optional<std::chrono::steady_clock::time_point> lastPrune;
  while (!stopping_) {
    try {  // the job-runner boundary for the dispatcher: log and go on
      if (dispatchQueued() > 0) runsChanged();  // new runs for the workers
    } catch (const std::exception& e) {
      p_.log.error("dispatching deliveries: " + describe(e));
    }
    if (auto now = p_.clock.steadyNow(); !lastPrune || now - *lastPrune >= std::chrono::hours(1)) {
      lastPrune = now;
      try {
        int64_t cutoff =
            p_.clock.nowMillis() -
            std::chrono::duration_cast<std::chrono::milliseconds>(o_.keepIgnored).count();
        if (int64_t n = deliveries_.pruneIgnored(cutoff); n > 0)
          p_.log.info("pruned " + std::to_string(n) + " ignored deliveries");
      } catch (const std::exception& e) {
        p_.log.warn("pruning ignored deliveries: " + describe(e));
      }
    }
    MutexLock lk(mu_);
    lk.waitFor(wake_, o_.poll, [&]() REQUIRES(mu_) { return stopping_ || pending_; });
    pending_ = false;
  }
}

void Scheduler::runsChanged() noexcept {
  {
    MutexLock lk(mu_);
    ++runsChanged_;
  }
  wake_.notify_all();
}

void Scheduler::workerLoop() {
  while (!stopping_) {
    // Read before trying: a change made while runNext looked (a run queued just after its
    // claim found nothing) ends the wait below at once instead of after the poll.
    uint64_t seen;
    {
      MutexLock lk(mu_);
      seen = runsChanged_;
    }
    bool ran = false;
    try {
      ran = runNext();
    } catch (const std::exception& e) {  // claiming failed (database); try again later
      p_.log.error("claiming a run: " + describe(e));
    }
    if (ran) continue;
    MutexLock lk(mu_);
    lk.waitFor(wake_, o_.poll, [&]() REQUIRES(mu_) { return stopping_ || runsChanged_ != seen; });
  }
}

// ---------------------------------------------------------------------------------------------
// restart recovery

int Scheduler::recover() {
  int n = recoverOrphans();
  // States committed just before the previous process died, before the forge heard of them
  // (a run queued or superseded by a delivery, a run that had just ended).
  for (const auto& rec : runs_.unannounced()) {
    if (rec.view.state == RunState::Queued)
      reportQueued(rec.view.id);
    else
      reportFinished(rec.view.id);
  }
  return n;
}

int Scheduler::recoverOrphans() {
  int n = 0;
  for (auto& rec : runs_.orphaned(runnerId_)) {
    // another live runner may be recovering it too: the first to adopt it does
    if (!runs_.adopt(rec.view.id, rec.runner, runnerId_)) continue;
    ++n;
    RunContext ctx(runs_, p_.reporter, p_.clock, p_.log, rec.view, runnerId_);
    ctx.load(runs_.hosts(rec.view.id));
    // A person asked the run to stop before the restart: it is not resumed. A host whose
    // deploy the restart cut short is left to its watchdog, which rolls back an activation
    // nobody confirms (confirm_timeout).
    const auto cancelled = runs_.cancelRequest(rec.view.id);
    for (const auto& h : ctx.all()) {
      if (isFinal(h.state)) continue;
      ctx.set(h.host, h.stage, HostState::Interrupted,
              "interrupted by a runner restart during " + std::string(toString(h.stage)) +
                  (cancelled ? "; the run was " + *cancelled : std::string()));
    }
    if (cancelled) {
      runs_.setState(rec.view.id, RunState::Cancelled, *cancelled);
      reportFinished(rec.view.id);
      p_.log.info("run " + std::to_string(rec.view.id) + " was " + *cancelled +
                  " before the restart; not resumed");
    } else if (rec.attempts >= o_.maxAttempts) {
      std::string why = "interrupted " + std::to_string(rec.attempts) +
                        " times by runner restarts; not resumed again";
      runs_.setState(rec.view.id, RunState::Interrupted, why);
      reportFinished(rec.view.id);
      p_.log.warn("run " + std::to_string(rec.view.id) + ": " + why);
    } else {
      runs_.requeue(rec.view.id, "resumed after a runner restart");
      p_.log.info("run " + std::to_string(rec.view.id) + " was in flight; queued again" +
                  (rec.runner.empty() ? "" : " (its runner " + rec.runner + " is gone)"));
    }
  }
  return n;
}

// ---------------------------------------------------------------------------------------------
// deliveries -> runs

// A repository is (forge, name) (issue 17). Hook deliveries name a repository by its path or
// name (no forge); CLI and web re-runs name a run, whose repository comes with it, so their
// name only matters when no run is found (then it must be unambiguous).
const RepoConfig* Scheduler::repoFor(const Event& e) const {
  const Config& c = p_.config;
  if (e.forgeType == "hook" || e.forgeType == "cli" || e.forgeType == "ui") {
    for (const auto& r : c.repos) {
      std::error_code ec;
      if (e.forgeType == "hook" && r.path && fs::equivalent(*r.path, e.repo, ec)) return &r;
    }
    if (const RepoConfig* r = c.findRepo("", e.repo)) return r;
    auto named = c.reposNamed(e.repo);
    return named.size() == 1 ? named.front() : nullptr;
  }
  return c.findRepo(e.forge, e.repo);
}

int Scheduler::dispatchQueued() {
  int n = 0;
  int64_t after = 0;
  const auto now = p_.clock.steadyNow();
  for (;;) {
    auto rows = deliveries_.queued(50, after);
    if (rows.empty()) return n;
    after = rows.back().id;
    // Prepared outside the transaction (the connection is shared with intake's group commit,
    // which should wait for SQL only): parsing, and the gateway, which may ask the forge.
    std::vector<store::DeliveryRecord> batch;
    std::vector<Prepared> prepared;
    for (const auto& d : rows) {
      if (auto it = deferred_.find(d.id); it != deferred_.end() && it->second > now) continue;
      std::optional<Prepared> p;
      try {
        p = prepare(d);
      } catch (const std::exception& e) {  // unreadable, or the gateway failed: not asked again
        if (failOrDefer(d, e)) ++n;
        continue;
      }
      if (!p) continue;  // the gateway asked to come back later
      deferred_.erase(d.id);
      batch.push_back(d);
      prepared.push_back(std::move(*p));
    }
    if (batch.empty()) continue;
    // One transaction (one fsync) for the whole batch; if any delivery in it fails, the
    // batch is rolled back and taken one by one, so a bad delivery fails alone.
    std::vector<Dispatched> done;
    bool batched = false;
    try {
      p_.db.transaction([&] {
        done.clear();
        for (size_t i = 0; i < batch.size(); ++i) done.push_back(applyOne(batch[i], prepared[i]));
      });
      batched = true;
    } catch (const std::exception& e) {
      p_.log.warn("a batch of " + std::to_string(batch.size()) +
                  " deliveries failed; taking them one by one (" + describe(e) + ")");
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batched) {
        if (!done[i].claimed) continue;
        setbacks_.erase(batch[i].id);
        announce(batch[i], done[i]);
        ++n;
      } else if (dispatchOne(batch[i], prepared[i])) {
        ++n;
      }
    }
  }
}

std::optional<Scheduler::Prepared> Scheduler::prepare(const store::DeliveryRecord& d) {
  Prepared p;
  p.event = nlohmann::json::parse(d.eventJson).get<Event>();
  const Event& e = p.event;
  if (o_.observe) o_.observe(e);
  bool gated = e.kind == EventKind::CommentCommand ||
               (e.kind == EventKind::Rerun && e.forgeType != "cli" && e.forgeType != "ui");
  if (!gated) return p;
  if (!o_.gateway) {
    report::GatewayDecision refused;
    refused.kind = report::GatewayDecision::Kind::Refused;
    refused.reason = "no re-run gateway is configured";
    p.decision = refused;
    return p;
  }
  auto decision = o_.gateway(e);
  if (decision.kind == report::GatewayDecision::Kind::Retry) {
    auto wait = decision.retryAfter.value_or(o_.gatewayRetry);
    deferred_[d.id] = p_.clock.steadyNow() + wait;
    p_.log.info("delivery " + std::to_string(d.id) + ": the forge could not answer (" +
                decision.reason + "); asking again in " + std::to_string(wait.count()) + "s");
    return std::nullopt;
  }
  p.decision = std::move(decision);
  return p;
}

Scheduler::Dispatched Scheduler::applyOne(const store::DeliveryRecord& d, const Prepared& p) {
  if (!deliveries_.claim(d.id)) return Dispatched{.claimed = false};
  StoreRunLookup lookup(runs_);
  Dispatched out = carryOut(d, decide(p.event, p.decision, repoFor(p.event), lookup));
  deliveries_.finish(d.id, deliveryState(out.verdict), out.detail);
  return out;
}

Scheduler::Dispatched Scheduler::carryOut(const store::DeliveryRecord& d, const Decision& dec) {
  Dispatched out;
  out.verdict = dec.verdict;
  auto superseded = [&] {
    return "; superseded " + std::to_string(out.created.superseded.size()) + " queued run(s)";
  };
  switch (dec.verdict) {
    case Verdict::Ignore:
      if (dec.rebase) runs_.setBaseSha(dec.rebase->first, dec.rebase->second);
      out.detail = dec.reason;
      return out;
    case Verdict::SupersedeQueued:
      out.created.superseded =
          runs_.supersedeQueued(dec.forge, dec.repo, dec.ref, std::nullopt, 0, dec.reason);
      out.detail = dec.reason + superseded();
      return out;
    case Verdict::CancelRun:
      // A queued run ends now (and is reported like a superseded one); a running one is
      // asked to stop: its worker skips the stages and hosts it has not started.
      if (runs_.cancelQueued(dec.cancelRun, dec.reason)) {
        out.created.superseded.push_back(dec.cancelRun);
        out.detail = "run " + std::to_string(dec.cancelRun) + " " + dec.reason;
      } else {
        // Kept in the run too: a restart ends it cancelled instead of resuming it (recover).
        runs_.requestCancel(dec.cancelRun, dec.reason);
        MutexLock lk(mu_);
        cancelRequests_[dec.cancelRun] = dec.reason;
        out.detail = "run " + std::to_string(dec.cancelRun) + " stops: " + dec.reason;
      }
      return out;
    case Verdict::StartRun:
      break;
  }
  if (const auto& a = dec.approval)
    approvals_.approve(a->forge, a->repo, a->sha, a->prNumber, a->by);
  store::NewRun n = dec.run;
  n.delivery = d.id;
  const int64_t id = runs_.create(n);
  out.created.queued.push_back(id);
  if (dec.supersedeRef) {
    out.created.superseded = runs_.supersedeQueued(
        n.forge, n.repo, n.ref, id, id,
        "superseded by run " + std::to_string(id) + " (" + shortSha(n.sha) + ")");
    // The superseded runs never started, so their changes are not deployed: plan from where
    // the oldest of them would have started.
    if (dec.planFromSuperseded && !out.created.superseded.empty())
      if (auto oldest = runs_.get(out.created.superseded.front()))
        runs_.setBaseSha(id, oldest->view.baseSha);
  }
  out.detail =
      "run " + std::to_string(id) + (out.created.superseded.empty() ? "" : superseded()) + dec.note;
  return out;
}

bool Scheduler::dispatchOne(const store::DeliveryRecord& d, const Prepared& prepared) {
  Dispatched out;
  try {  // the job-runner boundary for one delivery: it fails (or waits), the queue goes on
    p_.db.transaction([&] { out = applyOne(d, prepared); });
  } catch (const std::exception& e) {
    return failOrDefer(d, e);
  }
  if (!out.claimed) return false;
  setbacks_.erase(d.id);
  announce(d, out);
  return true;
}

bool Scheduler::failOrDefer(const store::DeliveryRecord& d, const std::exception& e) {
  const std::string why = describe(e);
  const bool invalid = dynamic_cast<const InputError*>(&e) != nullptr ||
                       dynamic_cast<const nlohmann::json::exception*>(&e) != nullptr;
  if (invalid) {
    p_.log.error("delivery " + std::to_string(d.id) + ": " + why);
    setbacks_.erase(d.id);
    deliveries_.finish(d.id, "failed", why);
    return true;
  }
  // Twice as long each time (from gatewayRetry, at most 10 minutes): a delivery that keeps
  // failing does not keep the dispatcher busy, and is not lost.
  const int setbacks = ++setbacks_[d.id];
  const auto wait = std::min<std::chrono::seconds>(
      o_.gatewayRetry * (1 << std::min(setbacks - 1, 10)), std::chrono::minutes(10));
  deferred_[d.id] = p_.clock.steadyNow() + wait;
  p_.log.warn("delivery " + std::to_string(d.id) + ": " + why + "; trying again in " +
              std::to_string(wait.count()) + "s");
  return false;
}

void Scheduler::announce(const store::DeliveryRecord& d, const Dispatched& out) {
  std::string line = "delivery " + std::to_string(d.id) + " (" + d.source + " " + d.eventName +
                     "): " + deliveryState(out.verdict) +
                     (out.detail.empty() ? "" : ": " + out.detail);
  if (out.verdict == Verdict::Ignore)
    p_.log.debug(line);
  else
    p_.log.info(line);
  // The delivery is processed (committed); telling the forge is best effort.
  for (int64_t id : out.created.superseded) reportFinished(id);
  for (int64_t id : out.created.queued) reportQueued(id);
}

void Scheduler::reportQueued(int64_t id) {
  bestEffort(p_.log, "run " + std::to_string(id) + ": reporting it queued", [&] {
    auto r = runs_.get(id);
    if (!r || r->view.state != RunState::Queued) return;
    p_.reporter.runQueued(r->view);
    runs_.markAnnounced(id, RunState::Queued);
  });
}

// ---------------------------------------------------------------------------------------------
// executing a run

bool Scheduler::runNext() {
  if (stopping_) return false;
  retryUnfinished();  // before claiming: a run finished late lets its branch go on
  // One worker is always left for a run that deploys (issue 19: a deploy never waits
  // behind pull request checks).
  auto rec = runs_.claimNext(std::max(1, o_.runWorkers - 1), runnerId_);
  if (!rec) return false;
  execute(std::move(*rec));
  runsChanged();  // a run of the same ref may be able to start now
  return true;
}

namespace {

std::optional<Event> eventOf(store::Deliveries& deliveries, const store::RunRecord& run) {
  if (!run.delivery) return std::nullopt;
  auto d = deliveries.get(*run.delivery);
  if (!d) return std::nullopt;
  auto j = nlohmann::json::parse(d->eventJson, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  return j.get<Event>();
}

// The fetch hint of a run: its delivery's event, or its parent's (re-runs); failing both
// (a comment command's check run), the clone URL of the repository's newest forge event.
FetchHint hintFor(store::Runs& runs, store::Deliveries& deliveries, const store::RunRecord& rec) {
  std::optional<store::RunRecord> cur = rec;
  for (int depth = 0; cur && depth < 8; ++depth) {
    if (auto e = eventOf(deliveries, *cur);
        e && (e->kind == EventKind::Push || e->kind == EventKind::PullRequest))
      return {e->cloneUrl, e->fromFork ? e->headCloneUrl : "", e->headRef, e->prNumber};
    if (!cur->view.parentRunId) break;
    cur = runs.get(*cur->view.parentRunId);
  }
  for (const auto& r : runs.list(50)) {
    if (r.view.repo != rec.view.repo) continue;
    if (auto e = eventOf(deliveries, r); e && !e->cloneUrl.empty()) return {e->cloneUrl, "", "", 0};
  }
  return {};
}

}  // namespace

// One run's state between its steps.
struct Scheduler::RunWork {
  store::RunRecord rec;
  RunContext& ctx;
  const RepoConfig* repo = nullptr;
  fs::path logDir, gitDir;
  std::optional<std::string> base;  // the plan's base commit
  SlotClass priority = SlotClass::Check;
  std::vector<std::string> notes;  // become the run's error text when it succeeds
  // Hosts finished in an earlier attempt of this run (before a restart).
  std::set<std::string> doneBefore, checkFirst;
  std::vector<BuildHost> toBuild;
  bool approved = false;  // a fork's commit approved for building
  std::map<std::string, BuildHostOutcome> built;

  int64_t id() const { return rec.view.id; }
};

void Scheduler::execute(store::RunRecord rec) {
  const int64_t id = rec.view.id;
  RunContext ctx(runs_, p_.reporter, p_.clock, p_.log, rec.view, runnerId_);
  p_.log.info("run " + std::to_string(id) + " started: " + toString(rec.view.kind) + " of " +
              rec.view.repo + " " + shortSha(rec.view.sha) +
              (rec.attempts > 1 ? " (resumed)" : ""));
  RunWork w{std::move(rec), ctx};
  RunEnd end;
  end.id = id;
  try {  // the job-runner boundary (STYLE.md P3): a failing run is marked failed
    prepareSource(w);
    const int64_t planStarted = p_.clock.nowMillis();
    Plan plan = planStep(w);
    w.ctx.setPlanTime(planStarted, p_.clock.nowMillis());
    selectHosts(w, plan);
    holdForkBuild(w);
    const bool buildCancelled = cancelRequest(id).has_value();
    if (!buildCancelled) buildStep(w);
    const bool deployCancelled = cancelRequest(id).has_value();
    if (!deployCancelled) deployStep(w);
    // Stopped by a person: what finished stays as it is (a host whose deploy was under way
    // finished it, or was rolled back); what was still to do is skipped. A run that had
    // nothing left to do when the request came ends as it would have.
    bool stopped = false;
    if (auto why = cancelRequest(id)) {
      const std::string skipped = "not started: the run was " + *why;
      for (const auto& h : ctx.all()) {
        if (!isFinal(h.state)) ctx.set(h.host, h.stage, HostState::Skipped, skipped);
        stopped |= !isFinal(h.state) || h.summary.find(skipped) != std::string::npos;
      }
      if (deployCancelled && runDeploys(ctx.view(), *w.repo))
        for (const auto& b : w.toBuild)
          if (auto it = w.built.find(b.host); it != w.built.end() && it->second.ok) {
            ctx.set(b.host, Stage::Deploy, HostState::Skipped, skipped);
            stopped = true;
          }
      if (stopped) {
        end.state = RunState::Cancelled;
        end.error = *why;
      }
    }
    if (!stopped) {
      bool failed = false;
      for (const auto& h : ctx.all()) failed |= isFailure(h.state);
      end.state = failed ? RunState::Failed : RunState::Succeeded;
      end.error = join(w.notes, "; ");
    }
  } catch (const std::exception& e) {
    end.state = RunState::Failed;
    end.error = describe(e);
    p_.log.error("run " + std::to_string(id) + " failed: " + end.error);
    // Hosts in flight fail with the run. When the database is what failed, writing them
    // fails too: they are failed in memory, and finishRun writes them with the run's state.
    for (const auto& h : ctx.all()) {
      if (isFinal(h.state)) continue;
      try {
        ctx.set(h.host, h.stage, HostState::Failed, "run failed: " + end.error);
      } catch (const std::exception& e2) {
        p_.log.error("run " + std::to_string(id) + " " + h.host + ": " + describe(e2));
      }
    }
  }
  end.hosts = ctx.all();
  {
    MutexLock lk(mu_);
    cancelRequests_.erase(id);
  }
  finishRun(std::move(end));
}

void Scheduler::prepareSource(RunWork& w) {
  const RunView& run = w.rec.view;
  w.ctx.load(runs_.hosts(w.id()));
  w.repo = p_.config.findRepo(run.forge, run.repo);
  if (!w.repo)
    throw InputError("repository " + run.repo +
                     (run.forge.empty() ? "" : " on forge " + run.forge) +
                     " is no longer configured");
  w.logDir = o_.stateDir / "logs" / std::to_string(w.id());
  fs::create_directories(w.logDir);
  // A full or read-only state disk: the run does not start (its logs, GC roots and
  // records would be lost in silence); it fails saying why.
  if (auto why = os::writeProblem(w.logDir))
    throw InputError("not started: the state directory cannot be written: " + *why);

  for (const auto& h : w.ctx.all()) {
    if (h.stage == Stage::Deploy && h.state == HostState::Succeeded) w.doneBefore.insert(h.host);
    if (h.stage == Stage::Deploy && h.state == HostState::Interrupted) w.checkFirst.insert(h.host);
  }

  w.gitDir = p_.mirrors.prepare(*w.repo, {run.sha}, hintFor(runs_, deliveries_, w.rec));
  auto usable = [&](const std::string& sha) {
    return !sha.empty() && !isZeroSha(sha) && hasCommit(w.gitDir, sha);
  };
  if (run.kind == RunKind::Deploy) {
    auto last = runs_.lastDeployedSha(run.forge, run.repo, run.ref);
    if (last && *last != run.sha && usable(*last) &&
        git::Repository::open(w.gitDir)->isAncestor(*last, run.sha))
      w.base = *last;
  }
  if (!w.base && usable(run.baseSha)) w.base = run.baseSha;
  w.ctx.setBase(w.base.value_or(""));
  w.priority = slotClassOf(run, *w.repo);
}

Plan Scheduler::planStep(RunWork& w) {
  const RunView& run = w.rec.view;
  // A fork's code is evaluated in the jail (README "Untrusted evaluation").
  const fs::path planLogPath = os::pathUnder(w.logDir, kPlanLogName, ".log");
  PlanInput pin{w.repo, w.gitDir, w.base, run.sha, planLogPath, run.fromFork, w.priority};
  Plan plan = p_.planner.plan(pin);
  nlohmann::json pj = plan;
  runs_.setPlan(w.id(), w.base.value_or(""), pj.dump());
  {
    os::LogFile planLog(planLogPath, os::LogFile::Mode::Truncate, p_.redactor);
    planLog.line("# plan " + (w.base ? shortSha(*w.base) : std::string("(no base)")) + ".." +
                 shortSha(run.sha) + " (" + toString(plan.mode) + ")");
    for (const auto& line : split(plan::formatPlanTable(plan), '\n')) planLog.line(line);
  }
  bestEffort(p_.log, "run " + std::to_string(w.id()) + ": reporting the plan",
             [&] { p_.reporter.planned(w.ctx.view(), plan); });
  return plan;
}

void Scheduler::selectHosts(RunWork& w, const Plan& plan) {
  const RunView& run = w.rec.view;
  std::set<std::string> named(run.hostsFilter.begin(), run.hostsFilter.end());
  std::vector<std::string> unknown;
  for (const auto& n : named)
    if (!plan.host(n)) unknown.push_back(n);
  if (!unknown.empty()) w.notes.push_back("unknown host(s): " + join(unknown, ", "));
  if (!named.empty() && unknown.size() == named.size())
    throw InputError("none of the named hosts exist: " + join(unknown, ", "));

  for (const auto& h : plan.hosts) {
    bool selected = named.empty() ? h.affected : named.count(h.name) > 0;
    if (h.hasReason(ReasonKind::RemovedHost)) selected = false;
    if (w.doneBefore.count(h.name)) continue;  // deployed before the restart: keep
    if (h.refused) {  // a name that breaks the host-name rule: never built, always shown
      w.ctx.set(h.name, Stage::Plan, HostState::Failed, "refused: " + *h.refused);
      continue;
    }
    if (!selected) {
      w.ctx.set(h.name, Stage::Plan, h.affected ? HostState::Skipped : HostState::NotAffected,
                h.affected ? "not named in this re-run" : "not affected");
      continue;
    }
    if (h.evalError) {
      w.ctx.set(h.name, Stage::Plan, HostState::Failed,
                "does not evaluate: " + truncateUtf8(*h.evalError, 300),
                [&](RunHostView& v) { v.logTail = *h.evalError; });
      continue;
    }
    std::string why = h.affected ? "affected: " + describeReasons(h) : "named in re-run";
    if (run.stageFilter == Stage::Plan) {
      w.ctx.set(h.name, Stage::Plan, HostState::Succeeded, truncateUtf8(why, 300));
      continue;
    }
    w.ctx.set(h.name, Stage::Build, HostState::Pending, truncateUtf8(why, 300),
              [&](RunHostView& v) { v.drvPath = h.newDrv; });
    w.toBuild.push_back({h.name, h.newDrv});
  }
}

void Scheduler::holdForkBuild(RunWork& w) {
  const RunView& run = w.rec.view;
  if (!run.fromFork || w.toBuild.empty()) return;
  w.approved = approvals_.find(run.forge, run.repo, run.sha).has_value();
  std::optional<std::pair<HostState, std::string>> hold;
  const UntrustedPolicy& policy = w.repo->untrusted;
  if (!policy.evaluate)
    hold = {HostState::Skipped,
            "not built: pull requests from forks are planned only (untrusted.evaluate: off)"};
  else if (policy.build == UntrustedBuild::Never)
    hold = {HostState::Skipped,
            "not built: pull requests from forks are not built (untrusted.build: never)"};
  else if (policy.build == UntrustedBuild::Approve && !w.approved)
    hold = {HostState::Waiting,
            "waiting for approval: a writer comments /switchyard approve (or approves it on "
            "the run page) to build " +
                shortSha(run.sha)};
  if (hold) {
    for (const auto& b : w.toBuild) w.ctx.set(b.host, Stage::Build, hold->first, hold->second);
    w.toBuild.clear();
  }
}

void Scheduler::buildStep(RunWork& w) {
  if (w.toBuild.empty()) return;
  const RunView& run = w.rec.view;
  BuildInput bin{w.repo,       w.gitDir,   run.sha,
                 w.toBuild,    w.logDir,   o_.stateDir / "gcroots" / std::to_string(w.id()),
                 run.fromFork, w.priority, w.base,
                 w.approved};
  for (auto& o : p_.builder.build(bin, w.ctx)) w.built[o.host] = o;
  for (const auto& b : w.toBuild) {
    auto it = w.built.find(b.host);
    if (it == w.built.end()) {
      w.ctx.set(b.host, Stage::Build, HostState::Failed, "the build reported nothing");
      continue;
    }
    const auto& o = it->second;
    const HostState state = o.ok              ? HostState::Succeeded
                            : o.needsApproval ? HostState::Waiting
                                              : HostState::Failed;
    w.ctx.set(b.host, Stage::Build, state, o.summary, [&](RunHostView& v) {
      v.drvPath = o.drvPath;
      v.outPath = o.outPath;
      v.logTail = o.logTail;
      v.logPath = os::pathUnder(w.logDir, b.host, ".log").string();
    });
  }
}

void Scheduler::deployStep(RunWork& w) {
  if (!runDeploys(w.ctx.view(), *w.repo)) return;
  DeployInput din;
  din.repo = w.repo;
  din.gitDir = w.gitDir;
  din.sha = w.rec.view.sha;
  din.runId = w.id();
  din.force = w.rec.forced;
  din.logDir = w.logDir;
  din.named = w.rec.view.hostsFilter;  // deploy: manual hosts go only when named
  din.stopRequested = [this, id = w.id()] { return cancelRequest(id); };
  for (const auto& b : w.toBuild) {
    auto it = w.built.find(b.host);
    if (it == w.built.end() || !it->second.ok || !it->second.outPath) continue;
    din.hosts.push_back({b.host, *it->second.outPath, w.checkFirst.count(b.host) > 0});
    w.ctx.set(b.host, Stage::Deploy, HostState::Pending, "waiting to deploy");
  }
  if (din.hosts.empty()) return;
  std::map<std::string, DeployHostOutcome> deployed;
  for (auto& o : p_.deployer.deploy(din, w.ctx)) deployed[o.host] = o;
  for (const auto& h : din.hosts) {
    auto it = deployed.find(h.host);
    if (it == deployed.end())
      w.ctx.set(h.host, Stage::Deploy, HostState::Failed, "the deploy reported nothing");
    else
      w.ctx.set(h.host, Stage::Deploy, it->second.state, it->second.summary);
  }
}

std::optional<std::string> Scheduler::cancelRequest(int64_t id) {
  MutexLock lk(mu_);
  auto it = cancelRequests_.find(id);
  if (it == cancelRequests_.end()) return std::nullopt;
  return it->second;
}

bool Scheduler::recordEnd(const RunEnd& end) {
  bool ours = false;
  p_.db.transaction([&] {
    ours = runs_.isRunBy(end.id, runnerId_);
    if (!ours) return;
    for (const auto& h : end.hosts) runs_.putHost(end.id, h);
    runs_.setState(end.id, end.state, end.error);
  });
  if (!ours)
    p_.log.warn("run " + std::to_string(end.id) + " (" + toString(end.state) +
                " here) was taken over by another runner after this one's lease expired; "
                "its end here is not recorded");
  return ours;
}

void Scheduler::finishRun(RunEnd end) {
  // A run left `running` blocks every later run of its branch (claimNext), so its end is
  // retried for as long as the daemon lives; a restart's recovery is only the last resort.
  const int attempts = std::max(1, o_.finishAttempts);
  auto wait = o_.finishRetry;
  for (int attempt = 1;; ++attempt) {
    try {
      if (!recordEnd(end)) return;
      break;
    } catch (const std::exception& e) {
      std::string what = "run " + std::to_string(end.id) + ": recording its end (" +
                         toString(end.state) + "): " + describe(e);
      if (attempt >= attempts) {
        p_.log.error(what + "; retrying later");
        MutexLock lk(unfinishedMu_);
        unfinished_.push_back(std::move(end));
        return;
      }
      p_.log.warn(what + "; retrying in " + std::to_string(wait.count()) + "ms");
      std::this_thread::sleep_for(wait);
      wait *= 2;
    }
  }
  reportFinished(end.id);
}

void Scheduler::retryUnfinished() {
  std::vector<RunEnd> todo;
  {
    MutexLock lk(unfinishedMu_);
    todo.swap(unfinished_);
  }
  for (auto& end : todo) {
    try {
      if (!recordEnd(end)) continue;
    } catch (const std::exception&) {  // still failing: logged once, by finishRun
      MutexLock lk(unfinishedMu_);
      unfinished_.push_back(std::move(end));
      continue;
    }
    p_.log.info("run " + std::to_string(end.id) + ": its end is recorded now");
    reportFinished(end.id);
  }
}

void Scheduler::reportFinished(int64_t id) {
  bestEffort(p_.log, "run " + std::to_string(id) + ": reporting its end", [&] {
    auto final = runs_.get(id);
    if (!final) return;
    p_.log.info("run " + std::to_string(id) + " " + toString(final->view.state));
    p_.reporter.runFinished(final->view, runs_.hosts(id));
    runs_.markAnnounced(id, final->view.state);
  });
}

// ---------------------------------------------------------------------------------------------

void LoggingRunReporter::runQueued(const RunView& run) {
  log_.info("run " + std::to_string(run.id) + " queued: " + toString(run.kind) + " " + run.repo +
            " " + shortSha(run.sha) + " " + run.url);
}
void LoggingRunReporter::planned(const RunView& run, const Plan& plan) {
  log_.info("run " + std::to_string(run.id) +
            " planned: " + std::to_string(plan.affectedHosts().size()) + " of " +
            std::to_string(plan.hosts.size()) + " hosts affected");
}
void LoggingRunReporter::hostChanged(const RunView& run, const RunHostView& host) {
  log_.debug("run " + std::to_string(run.id) + " " + host.host + ": " + toString(host.stage) + " " +
             toString(host.state) + " " + host.summary);
}
void LoggingRunReporter::runFinished(const RunView& run, const std::vector<RunHostView>& hosts) {
  std::string line = "run " + std::to_string(run.id) + " " + toString(run.state) + ":";
  for (const auto& h : hosts) line += " " + h.host + "=" + toString(h.state);
  log_.info(line);
}

}  // namespace runner::scheduler
