#include "runner/report/forge_reporter.h"

#include <algorithm>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/report/comment.h"
#include "runner/report/mapping.h"

namespace runner::report {
namespace {

bool inFilter(const RunView& run, const std::string& host) {
  return run.hostsFilter.empty() ||
         std::find(run.hostsFilter.begin(), run.hostsFilter.end(), host) != run.hostsFilter.end();
}

bool reportsPlan(const RunView& run) { return !run.stageFilter || *run.stageFilter == Stage::Plan; }

bool offersRerun(HostState s) {
  return s == HostState::Failed || s == HostState::RolledBack || s == HostState::Unreachable ||
         s == HostState::Refused || s == HostState::Interrupted;
}

std::chrono::system_clock::time_point fromMillis(int64_t ms) {
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms));
}

// What a host's state at the end of a run is, when the run ended before the host did.
HostState settle(const RunView& run, HostState s) {
  if (isFinal(s)) return s;
  switch (run.state) {
    case RunState::Superseded:
      return HostState::Superseded;
    case RunState::Interrupted:
      return HostState::Interrupted;
    default:
      return HostState::Skipped;
  }
}

// A host whose statuses a folding run leaves to switchyard/plan: unaffected, or not selected
// at the plan stage.
bool foldedHost(const RunHostView& h) {
  return h.state == HostState::NotAffected ||
         (h.stage == Stage::Plan && h.state == HostState::Skipped);
}

}  // namespace

ForgeReporter::ForgeReporter(store::Database& db, const Forges& forges, const Templates& templates,
                             Clock& clock, Logger& log, ReporterOptions options)
    : db_(db),
      outbox_(db),
      forges_(forges),
      templates_(templates),
      clock_(clock),
      log_(log),
      options_(std::move(options)) {}

std::optional<ForgeReporter::Target> ForgeReporter::targetFor(const RunView& run) {
  if (run.forge.empty() || run.repo.empty()) return std::nullopt;
  auto it = forges_.find(run.forge);
  if (it == forges_.end() || !it->second) {
    MutexLock lk(mu_);
    if (warnedForges_.insert(run.forge).second)
      log_.warn("run " + std::to_string(run.id) + ": no forge named '" + run.forge +
                "' is configured; its statuses are not reported");
    return std::nullopt;
  }
  auto caps = it->second->capabilities();
  return Target{it->second, caps.checkRuns, caps.maxStatusDescription};
}

bool ForgeReporter::progressFor(const RunView& run) {
  MutexLock lk(mu_);
  auto it = memos_.find(run.id);
  if (it != memos_.end()) return it->second.progress;
  // not planned here (a re-run of named hosts without a plan, or a restart): small
  // re-runs still show progress, anything else only final states
  return !run.hostsFilter.empty() && run.hostsFilter.size() <= options_.progressHostLimit;
}

std::optional<size_t> ForgeReporter::foldThreshold(const RunView& run, size_t hosts) const {
  auto it = options_.foldStatusesAbove.find(run.forge);
  if (it == options_.foldStatusesAbove.end() || it->second == 0 || hosts <= it->second)
    return std::nullopt;
  return it->second;
}

bool ForgeReporter::foldedFor(const RunView& run, size_t hosts) {
  {
    MutexLock lk(mu_);
    auto it = memos_.find(run.id);
    if (it != memos_.end()) return it->second.fold;
  }
  return foldThreshold(run, hosts).has_value();  // not planned here (a restart)
}

bool ForgeReporter::deploys(const RunView& run) const {
  return options_.runDeploys ? options_.runDeploys(run) : runDeploys(run);
}

// The stages whose contexts a run reports for each host.
std::vector<Stage> ForgeReporter::hostStages(const RunView& run) const {
  std::vector<Stage> out;
  if (!run.stageFilter || *run.stageFilter != Stage::Deploy) out.push_back(Stage::Build);
  if (deploys(run) && (!run.stageFilter || *run.stageFilter != Stage::Build))
    out.push_back(Stage::Deploy);
  return out;
}

bool ForgeReporter::emit(const Target& t, const RunView& run, Stage stage, const RunHostView& in,
                         const Plan* plan) {
  RunHostView host = in;
  if (!isFinal(host.state)) host.summary.clear();  // progress chatter makes no calls
  const std::string words = describeHost(run, stage, host);
  const std::string context = contextName(stage, host.host);
  const int64_t now = clock_.nowMillis();
  if (!t.checkRuns) {
    StatusCall c;
    c.run = run.id;
    c.sha = run.sha;
    c.status.state = statusStateFor(host.state);
    c.status.context = context;
    c.status.description = t.maxDescription ? truncateChars(words, t.maxDescription) : words;
    c.status.targetUrl = run.url;
    return enqueueCall(outbox_, toRow(run.forge, run.repo, c), now);
  }
  CheckRunCall c;
  c.run = run.id;
  c.key =
      "check_run:" + std::to_string(run.id) + ":" +
      (stage == Stage::Plan ? std::string("plan") : std::string(toString(stage)) + "/" + host.host);
  CheckRunSpec& s = c.spec;
  s.name = context;
  s.headSha = run.sha;
  s.status = checkStatusFor(host.state);
  s.conclusion = conclusionFor(host.state);
  s.detailsUrl = run.url;
  s.externalId = toExternalId({run.id, stage, host.host});
  if (host.startedAt) s.startedAt = fromMillis(*host.startedAt);
  if (s.conclusion) s.completedAt = fromMillis(host.finishedAt ? *host.finishedAt : now);
  s.title = truncateChars(words, 250);
  bool failed = offersRerun(host.state);
  s.summary = renderCheckRunSummary(templates_, run, words, plan, failed ? host.logTail : "");
  if (failed) {
    s.actions.push_back({"Re-run", std::string("Run this ") + toString(stage) + " again", "rerun"});
    s.annotations =
        failureAnnotations(stage == Stage::Plan ? "plan" : host.host, words, host.logTail);
  }
  return enqueueCall(outbox_, toRow(run.forge, run.repo, c), now);
}

bool ForgeReporter::emitFinal(const Target& t, const RunView& run, const RunHostView& in) {
  RunHostView host = in;
  host.state = settle(run, host.state);
  if (host.state != in.state) host.summary.clear();  // "activating" no longer says what happened
  const bool deploying = deploys(run);
  const auto stages = hostStages(run);
  auto reports = [&](Stage s) {
    return std::find(stages.begin(), stages.end(), s) != stages.end();
  };
  bool added = false;

  if (host.state == HostState::NotAffected) {
    for (Stage s : stages) added |= emit(t, run, s, host, nullptr);
    return added;
  }
  Stage stage = host.stage == Stage::Plan ? Stage::Build : host.stage;  // plan-time host
                                                                        // failures show on build
  if (stage == Stage::Deploy || reports(stage)) added |= emit(t, run, stage, host, nullptr);
  if (deploying && stage == Stage::Build && reports(Stage::Deploy)) {
    // it never reached deploy: say why on the deploy context
    RunHostView d = host;
    d.stage = Stage::Deploy;
    d.logTail.clear();
    if (host.state == HostState::Succeeded) {
      if (!isFinal(run.state)) return added;  // still "waiting to deploy"
      d.state = settle(run, HostState::Pending);
      d.summary.clear();
    } else {
      d.state = host.state == HostState::Superseded || host.state == HostState::Interrupted
                    ? host.state
                    : HostState::Skipped;
      d.summary = "not deployed: " + describeHost(run, Stage::Build, host);
    }
    added |= emit(t, run, Stage::Deploy, d, nullptr);
  }
  return added;
}

bool ForgeReporter::emitComment(const Target& t, const RunView& run, const Plan* plan,
                                const std::vector<RunHostView>& hosts) {
  if (run.prNumber <= 0) return false;
  CommentCall c;
  c.run = run.id;
  c.pr = run.prNumber;
  c.model = commentModel(run, plan, hosts);
  return enqueueCall(outbox_, toRow(run.forge, run.repo, c), clock_.nowMillis());
}

void ForgeReporter::notify(bool added) {
  if (added && options_.onEnqueued) options_.onEnqueued();
}

void ForgeReporter::runQueued(const RunView& run) {
  auto t = targetFor(run);
  if (!t) return;
  bool added = false;
  db_.transaction([&] {
    if (reportsPlan(run)) {
      RunHostView plan;
      plan.stage = Stage::Plan;
      plan.state = HostState::Pending;
      added |= emit(*t, run, Stage::Plan, plan, nullptr);
    }
    // a re-run of named hosts: their contexts go back to pending now
    if (!run.hostsFilter.empty() && run.hostsFilter.size() <= options_.progressHostLimit) {
      for (const auto& name : run.hostsFilter)
        for (Stage s : hostStages(run)) {
          RunHostView h;
          h.host = name;
          h.stage = s;
          h.state = HostState::Pending;
          added |= emit(*t, run, s, h, nullptr);
        }
    }
  });
  notify(added);
}

void ForgeReporter::planned(const RunView& run, const Plan& plan) {
  auto t = targetFor(run);
  if (!t) return;
  size_t affected = 0, reported = 0;
  for (const auto& h : plan.hosts) {
    if (h.hasReason(ReasonKind::RemovedHost) || !inFilter(run, h.name)) continue;
    ++reported;
    affected += h.affected;
  }
  const bool progress = affected <= options_.progressHostLimit;
  const std::optional<size_t> fold = foldThreshold(run, reported);
  {
    MutexLock lk(mu_);
    memos_[run.id] = Memo{plan, progress, fold.has_value()};
  }
  bool added = false;
  db_.transaction([&] {
    RunHostView p;
    p.stage = Stage::Plan;
    p.state = HostState::Succeeded;
    p.summary = describePlan(plan);
    if (fold && reported > affected)
      p.summary += "; the " + std::to_string(reported - affected) +
                   " unaffected are reported here only (over " + std::to_string(*fold) +
                   " machines)";
    added |= emit(*t, run, Stage::Plan, p, &plan);
    for (const auto& h : plan.hosts) {
      if (h.hasReason(ReasonKind::RemovedHost) || !inFilter(run, h.name)) continue;
      if (h.affected && !progress) continue;
      if (!h.affected && fold) continue;
      for (Stage s : hostStages(run)) {
        RunHostView v;
        v.host = h.name;
        v.stage = s;
        v.state = h.affected ? HostState::Pending : HostState::NotAffected;
        added |= emit(*t, run, s, v, nullptr);
      }
    }
    added |= emitComment(*t, run, &plan, {});
  });
  notify(added);
}

void ForgeReporter::hostChanged(const RunView& run, const RunHostView& host) {
  auto t = targetFor(run);
  if (!t) return;
  if (foldedHost(host) && foldedFor(run, 0)) return;
  if (!isFinal(host.state)) {
    // a host being evaluated for the plan is the plan's business (switchyard/plan is pending)
    if (host.stage == Stage::Plan || !progressFor(run)) return;
  }
  bool added = false;
  db_.transaction([&] {
    added =
        isFinal(host.state) ? emitFinal(*t, run, host) : emit(*t, run, host.stage, host, nullptr);
  });
  notify(added);
}

void ForgeReporter::runFinished(const RunView& run, const std::vector<RunHostView>& hosts) {
  auto t = targetFor(run);
  std::optional<Plan> plan;
  std::optional<bool> folded;
  {
    MutexLock lk(mu_);
    auto it = memos_.find(run.id);
    if (it != memos_.end()) {
      plan = std::move(it->second.plan);
      folded = it->second.fold;
      memos_.erase(it);
    }
  }
  if (!t) return;
  if (!folded) {
    size_t n = 0;
    for (const auto& h : hosts) n += inFilter(run, h.host);
    folded = foldThreshold(run, n).has_value();
  }
  bool added = false;
  db_.transaction([&] {
    if (!plan && run.prNumber > 0) {
      // planned before a restart: the plan is in the comment queued then
      auto last = outbox_.newest(run.forge, run.repo, commentObjectKey(run.prNumber));
      if (last) {
        try {
          auto c = commentCallFrom(last->payload);
          if (c.run == run.id && c.model.contains("plan") && !c.model["plan"].is_null())
            plan = c.model["plan"].get<Plan>();
        } catch (const std::exception& e) {
          log_.warn("run " + std::to_string(run.id) +
                    ": cannot read the queued comment: " + describe(e));
        }
      }
    }
    if (hosts.empty() && !plan && reportsPlan(run) && isFinal(run.state)) {
      // it ended before a plan: the plan context says how
      RunHostView p;
      p.stage = Stage::Plan;
      switch (run.state) {
        case RunState::Succeeded:
          p.state = HostState::Succeeded;
          p.summary = "no machines";
          break;
        case RunState::Failed:
          p.state = HostState::Failed;
          p.summary = run.error.empty() ? "plan failed" : "plan failed: " + oneLine(run.error);
          p.logTail = run.error;  // Nix's error trace: where evaluation failed
          break;
        case RunState::Superseded:
          p.state = HostState::Superseded;
          break;
        default:
          p.state = HostState::Interrupted;
      }
      added |= emit(*t, run, Stage::Plan, p, nullptr);
    }
    for (const auto& h : hosts)
      if (inFilter(run, h.host) && !(*folded && foldedHost(h))) added |= emitFinal(*t, run, h);
    added |= emitComment(*t, run, plan ? &*plan : nullptr, hosts);
  });
  notify(added);
}

}  // namespace runner::report
