#include "runner/build/build_stage.h"

#include <algorithm>
#include <future>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"

namespace runner::build {
namespace {

// The builder's progress to the stage's listener (throttled: the database is not a progress
// bar), and all of it to `progress` when there is one.
class BuildProgressRelay final : public BuildObserver {
 public:
  BuildProgressRelay(StageListener& l, const Clock& clock, BuildObserver* progress)
      : l_(l), clock_(clock), progress_(progress) {}
  void onProgress(const BuildProgress& p, std::chrono::milliseconds elapsed) override {
    if (progress_) progress_->onProgress(p, elapsed);
    auto now = clock_.steadyNow();
    if (now - last_ < std::chrono::seconds(2)) return;
    last_ = now;
    for (const auto& h : p.hosts)
      if (h.state == HostState::Building)
        l_.hostProgress(h.host, "building " + std::to_string(h.built) + "/" +
                                    std::to_string(h.toBuild) +
                                    (h.currentDrv.empty() ? "" : " (" + h.currentDrv + ")"));
  }
  void onHostFinished(const HostProgress& host, std::chrono::milliseconds elapsed) override {
    if (progress_) progress_->onHostFinished(host, elapsed);
  }
  void onLogLine(const std::string& host, const std::string& drvName,
                 std::string_view line) override {
    if (progress_) progress_->onLogLine(host, drvName, line);
  }
  void onFinished(const BuildResult& result) override {
    if (progress_) progress_->onFinished(result);
  }

 private:
  StageListener& l_;
  const Clock& clock_;
  BuildObserver* progress_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

NixBuildStage::Result NixBuildStage::buildHosts(const BuildInput& in, StageListener& listener,
                                                BuildObserver* progress) {
  nix::NixCli& nix = in.untrusted ? untrusted_.jailOrThrow() : nix_;
  Result out;
  std::vector<HostBuildResult> evalFailures;
  std::vector<HostTarget> targets;
  std::vector<std::string> needEval;
  for (const auto& h : in.hosts) {
    if (h.drvPath)
      targets.push_back({h.host, *h.drvPath});
    else
      needEval.push_back(h.host);
  }
  if (!needEval.empty()) {
    for (const auto& h : needEval) listener.hostStarted(h, "evaluating");
    PrioritySlots::Held slot(evals_, in.priority);
    const std::string flakeRef =
        in.untrusted ? untrusted_.sources->flakeRef(*in.repo, in.gitDir, in.sha, in.baseSha)
                     : nix::gitFlakeRef(in.gitDir, in.sha);
    auto evals = nix.evalDrvPaths(flakeRef, needEval);
    for (const auto& h : needEval) {
      auto it = evals.hosts.find(h);
      if (it != evals.hosts.end() && it->second.value && it->second.value->is_string()) {
        targets.push_back({h, it->second.value->get<std::string>()});
        continue;
      }
      HostBuildResult f;
      f.host = h;
      f.state = HostState::Failed;
      std::string why = evals.flakeError.value_or("");
      if (it != evals.hosts.end()) {
        if (it->second.error) why = *it->second.error;
        if (it->second.missing) {
          why = "no such host in nixosConfigurations";
          out.missing.push_back(h);
        }
      }
      f.message = "does not evaluate: " + truncateUtf8(std::string(trim(why)), 300);
      f.logTail = why;
      evalFailures.push_back(std::move(f));
    }
  }
  // Hosts built on their targets (trusted code only: a fork's derivations never leave the jail).
  std::vector<std::future<HostBuildResult>> onTarget;
  std::vector<HostBuildResult> placementFailures;
  if (onTarget_ && !in.untrusted && !targets.empty()) {
    std::vector<std::string> names;
    for (const auto& t : targets) names.push_back(t.host);
    std::map<std::string, BuildPlacement> placed;
    {
      PrioritySlots::Held slot(evals_, in.priority);
      placed = placeBuilds(nix, *in.repo, nix::gitFlakeRef(in.gitDir, in.sha), names);
    }
    std::vector<HostTarget> here;
    std::vector<TargetBuildJob> jobs;
    for (const auto& t : targets) {
      auto p = placed.find(t.host);
      if (p == placed.end() || (!p->second.onTarget && !p->second.problem)) {
        here.push_back(t);
        continue;
      }
      if (p->second.problem) {
        HostBuildResult f;
        f.host = t.host;
        f.drvPath = t.drvPath;
        f.state = HostState::Failed;
        f.message = "not built: " + *p->second.problem;
        f.logTail = f.message;
        placementFailures.push_back(std::move(f));
        continue;
      }
      jobs.push_back({t.host, t.drvPath, "", p->second});
    }
    if (!jobs.empty()) {
      std::vector<std::string> drvs;
      for (const auto& j : jobs) drvs.push_back(j.drvPath);
      nix::DerivationSet d = nix.showDerivations(drvs, false);
      for (auto& j : jobs)
        if (auto it = d.find(j.drvPath); it != d.end() && it->second.outputs.count("out"))
          j.outPath = it->second.outputs.at("out");
    }
    targets = std::move(here);
    for (auto& job : jobs) {
      listener.hostStarted(job.host, "building on the target " + job.placement.target.toString());
      onTarget.push_back(std::async(std::launch::async, [this, &in, &listener, job] {
        std::unique_ptr<os::LogFile> log;
        if (!in.logDir.empty())
          log = std::make_unique<os::LogFile>(os::pathUnder(in.logDir, job.host, ".log"),
                                              os::LogFile::Mode::Truncate, redactor_);
        if (log) log->line("# switchyard build of " + job.host + ": " + job.drvPath);
        return onTarget_->build(job, in.repo->buildTimeout, [&](std::string_view l) {
          if (log) log->line(l);
          listener.hostLine(job.host, l);
        });
      }));
    }
  }
  if (!targets.empty()) {
    for (const auto& t : targets) listener.hostStarted(t.host, "building");
    BuildOptions opts;
    opts.timeout = in.repo->buildTimeout;
    if (in.maxJobs > 0) opts.maxJobs = in.maxJobs;
    opts.logDir = in.logDir;
    opts.gcRootDir = in.gcRootDir;
    opts.redactor = redactor_;
    if (in.untrusted) {
      opts.timeout = std::min<std::chrono::milliseconds>(opts.timeout, untrusted_.buildTimeout);
      opts.maxSilentTime = untrusted_.maxSilentTime;
      opts.refuseFixedOutput = !in.approved;
    }
    BuildProgressRelay relay(listener, clock_, progress);
    PrioritySlots::Held slot(builds_, in.priority);
    if (remote_ && remote_->active() && !in.untrusted) {
      RemoteBuildSetup setup = remote_->setup();
      opts.nixArgs = std::move(setup.nixArgs);
      opts.nixEnv = std::move(setup.env);
      opts.notes = std::move(setup.notes);
      opts.refusal = std::move(setup.failure);
      if (in.maxJobs <= 0 && setup.maxJobs) opts.maxJobs = *setup.maxJobs;
    }
    Builder builder(nix, clock_);
    out.build = builder.build(targets, opts, &relay);
  }
  for (auto& f : onTarget) {
    HostBuildResult r = f.get();
    if (r.ok()) listener.hostProgress(r.host, r.message);
    out.build.hosts.push_back(std::move(r));
  }
  for (auto& f : placementFailures) out.build.hosts.push_back(std::move(f));
  std::sort(out.build.hosts.begin(), out.build.hosts.end(),
            [](const HostBuildResult& a, const HostBuildResult& b) { return a.host < b.host; });
  out.build.hosts.insert(out.build.hosts.begin(), std::make_move_iterator(evalFailures.begin()),
                         std::make_move_iterator(evalFailures.end()));
  return out;
}

std::vector<BuildHostOutcome> NixBuildStage::build(const BuildInput& in, StageListener& listener) {
  std::vector<BuildHostOutcome> out;
  for (const auto& h : buildHosts(in, listener).build.hosts) {
    BuildHostOutcome o;
    o.host = h.host;
    o.ok = h.ok();
    o.needsApproval = h.state == HostState::NeedsApproval;
    if (!h.drvPath.empty()) o.drvPath = h.drvPath;
    o.outPath = h.outPath;
    o.logTail = h.logTail;
    if (h.ok() && startsWith(h.message, "built on the target"))
      o.summary = h.message + " in " + formatDuration(h.duration);
    else if (h.ok())
      o.summary =
          h.duration.count() > 0 ? "built in " + formatDuration(h.duration) : "already built";
    else
      o.summary = h.message.empty() ? std::string("build ") + toString(h.state) : h.message;
    out.push_back(std::move(o));
  }
  return out;
}

}  // namespace runner::build
