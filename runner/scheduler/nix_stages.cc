#include "runner/scheduler/nix_stages.h"

#include <fstream>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "runner/build/builder.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/core/thread_annotations.h"
#include "runner/deploy/ancestry.h"
#include "runner/deploy/rollout.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/git/repository.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"
#include "runner/plan/exact_planner.h"
#include "runner/plan/plan_format.h"
#include "runner/plan/static_planner.h"

namespace fs = std::filesystem;

namespace runner::scheduler {
namespace {

// Appends lines to per-host log files (os::LogFile: scrubbed); thread-safe.
class LogFiles {
 public:
  LogFiles(fs::path dir, const Redactor* redactor) : dir_(std::move(dir)), redactor_(redactor) {}
  void line(const std::string& host, std::string_view text) {
    MutexLock lk(mu_);
    auto& f = files_[host];
    if (!f)
      f = std::make_unique<os::LogFile>(os::pathUnder(dir_, host, ".log"),
                                        os::LogFile::Mode::Append, redactor_);
    f->line(text);
  }

 private:
  fs::path dir_;
  const Redactor* redactor_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<os::LogFile>> files_ GUARDED_BY(mu_);
};

}  // namespace

// ---------------------------------------------------------------------------------------------
// plan

namespace {

// The cache as a fork's evaluation may use it: it reads what trusted evaluations cached (the
// same tree evaluates to the same drvPath) and its own entries, and writes only its own — a
// fork's answers never reach a trusted plan.
class UntrustedDrvCache final : public DrvPathCache {
 public:
  explicit UntrustedDrvCache(DrvPathCache& inner) : inner_(inner) {}
  std::optional<std::string> get(const std::string& tree, const std::string& host) override {
    if (auto own = inner_.get(kPrefix + tree, host)) return own;
    return inner_.get(tree, host);
  }
  void put(const std::string& tree, const std::string& host, const std::string& drv) override {
    inner_.put(kPrefix + tree, host, drv);
  }

 private:
  static constexpr const char* kPrefix = "untrusted:";
  DrvPathCache& inner_;
};

// The jail, or the reason there is none.
nix::NixCli& jailOf(const UntrustedNix& u) {
  if (!u.jail || !u.sources)
    throw InputError(
        "pull requests from forks cannot be evaluated on this runner: " +
        (u.unavailable.empty() ? std::string("no untrusted account is set up") : u.unavailable));
  return *u.jail;
}

}  // namespace

Plan NixPlanStage::plan(const PlanInput& in) {
  PrioritySlots::Held slot(evals_, in.priority);
  auto repo = git::Repository::open(in.gitDir);
  plan::StaticOptions so;
  so.repoLabel = in.repo->name;
  so.hosts = in.repo->hosts;
  PlanMode mode = in.repo->detection;
  if (in.untrusted && !in.repo->untrusted.evaluate) mode = PlanMode::Static;
  plan::ExactOptions eo;
  eo.repoLabel = so.repoLabel;
  eo.hosts = so.hosts;
  eo.evalWorkers = evalWorkers_;
  eo.cache = cache_;
  eo.log = &log_;
  std::optional<UntrustedDrvCache> forkCache;
  // The Nix that evaluates this commit: a fork's code only in the jail.
  auto nixFor = [&]() -> nix::NixCli& {
    if (!in.untrusted) return nix_;
    nix::NixCli& jail = jailOf(untrusted_);
    if (cache_ && !forkCache) eo.cache = &forkCache.emplace(*cache_);
    // The pull request's commit is checked against its base's lock; the base is trusted.
    eo.flakeRefFor = [&](const std::string& sha) {
      return untrusted_.sources->flakeRef(*in.repo, in.gitDir, sha,
                                          sha == in.to ? in.from : std::nullopt);
    };
    return jail;
  };
  Plan p;
  if (!in.from) {
    // No base commit (a new branch, nothing deployed yet): every host is affected. The hosts
    // come from static discovery, or from Nix when that fails (and the mode allows Nix).
    try {
      p = plan::planStatic(*repo, in.to, in.to, so);
    } catch (const PlanError&) {
      if (mode == PlanMode::Static) throw;
    }
    if (mode != PlanMode::Static && (p.hosts.empty() || !p.discoveryError.empty()))
      p = plan::planExact(*repo, nixFor(), in.to, in.to, eo);
    p.from = "";
    for (auto& h : p.hosts) {
      h.affected = true;
      h.reasons = {Reason{ReasonKind::Global, "", "", "no base commit to compare with"}};
    }
    return p;
  }
  switch (mode) {
    case PlanMode::Static:
      p = plan::planStatic(*repo, *in.from, in.to, so);
      break;
    case PlanMode::Exact:
      p = plan::planExact(*repo, nixFor(), *in.from, in.to, eo);
      break;
    case PlanMode::Auto:
      p = plan::planAuto(*repo, nixFor(), *in.from, in.to, so, eo);
      break;
  }
  if (in.repo->skipSelfRevisionOnly) plan::dropSelfRevisionOnly(p);
  return p;
}

// ---------------------------------------------------------------------------------------------
// build

namespace {

class BuildProgressRelay final : public build::BuildObserver {
 public:
  BuildProgressRelay(StageListener& l, const Clock& clock) : l_(l), clock_(clock) {}
  void onProgress(const build::BuildProgress& p, std::chrono::milliseconds) override {
    auto now = clock_.steadyNow();
    if (now - last_ < std::chrono::seconds(2)) return;  // the database is not a progress bar
    last_ = now;
    for (const auto& h : p.hosts)
      if (h.state == build::HostState::Building)
        l_.hostProgress(h.host, "building " + std::to_string(h.built) + "/" +
                                    std::to_string(h.toBuild) +
                                    (h.currentDrv.empty() ? "" : " (" + h.currentDrv + ")"));
  }

 private:
  StageListener& l_;
  const Clock& clock_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace

std::vector<BuildHostOutcome> NixBuildStage::build(const BuildInput& in, StageListener& listener) {
  nix::NixCli& nix = in.untrusted ? jailOf(untrusted_) : nix_;
  std::vector<BuildHostOutcome> out;
  std::vector<build::HostTarget> targets;
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
      BuildHostOutcome o;
      o.host = h;
      std::string why = evals.flakeError.value_or("");
      if (it != evals.hosts.end()) {
        if (it->second.error) why = *it->second.error;
        if (it->second.missing) why = "no such host in nixosConfigurations";
      }
      o.summary = "does not evaluate: " + truncateUtf8(std::string(trim(why)), 300);
      o.logTail = why;
      out.push_back(std::move(o));
    }
  }
  if (targets.empty()) return out;
  for (const auto& t : targets) listener.hostStarted(t.host, "building");
  build::BuildOptions opts;
  opts.timeout = in.repo->buildTimeout;
  opts.logDir = in.logDir;
  opts.gcRootDir = in.gcRootDir;
  opts.redactor = redactor_;
  if (in.untrusted) {
    opts.timeout = std::min<std::chrono::milliseconds>(opts.timeout, untrusted_.buildTimeout);
    opts.maxSilentTime = untrusted_.maxSilentTime;
    opts.refuseFixedOutput = !in.approved;
  }
  BuildProgressRelay relay(listener, clock_);
  build::BuildResult result;
  {
    PrioritySlots::Held slot(builds_, in.priority);
    build::Builder builder(nix, clock_);
    result = builder.build(targets, opts, &relay);
  }
  for (const auto& h : result.hosts) {
    BuildHostOutcome o;
    o.host = h.host;
    o.ok = h.ok();
    o.needsApproval = h.state == build::HostState::NeedsApproval;
    o.drvPath = h.drvPath;
    o.outPath = h.outPath;
    o.logTail = h.logTail;
    if (h.ok())
      o.summary =
          h.duration.count() > 0 ? "built in " + formatDuration(h.duration) : "already built";
    else
      o.summary = h.message.empty() ? std::string("build ") + build::toString(h.state) : h.message;
    out.push_back(std::move(o));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// deploy

std::map<std::string, Target> resolveTargets(nix::NixCli& nix, const RepoConfig& repo,
                                             const fs::path& gitDir, const std::string& sha,
                                             const std::vector<std::string>& hosts,
                                             std::map<std::string, std::string>& problems) {
  std::map<std::string, std::string> given;
  for (const auto& c : repo.hosts)
    if (c.target) given[c.name] = *c.target;
  std::vector<std::string> discover;
  for (const auto& h : hosts)
    if (!given.count(h)) discover.push_back(h);
  nix::HostEvals info;
  if (!discover.empty()) info = nix.evalHostInfo(nix::gitFlakeRef(gitDir, sha), discover);
  std::map<std::string, Target> out;
  for (const auto& h : hosts) {
    auto it = info.hosts.find(h);
    auto choice = nix::chooseTarget(h, given, it == info.hosts.end() ? nullptr : &it->second);
    try {
      out[h] = parseTarget(choice.text);  // the flake's text is checked like the config's
    } catch (const InputError& e) {
      problems[h] = "the deploy target from " + choice.from + ": " + describe(e);
    }
  }
  return out;
}

// Caps the hosts deployed at once across every run (Concurrency::deploys).
class SshDeployStage::LimitedDeployer final : public deploy::HostDeployer {
 public:
  LimitedDeployer(deploy::HostDeployer& inner, Slots& slots) : inner_(inner), slots_(slots) {}
  deploy::HostOutcome deploy(const deploy::HostJob& job, const deploy::DeployRequest& request,
                             deploy::DeployObserver& observer) override {
    Slots::Held slot(slots_);
    return inner_.deploy(job, request, observer);
  }

 private:
  deploy::HostDeployer& inner_;
  Slots& slots_;
};

namespace {

class DeployRelay final : public deploy::DeployObserver {
 public:
  DeployRelay(StageListener& l, LogFiles& logs) : l_(l), logs_(logs) {}
  void stepStarted(const std::string& host, deploy::Step step, std::string_view detail) override {
    std::string what = "deploy: " + std::string(deploy::stepName(step));
    if (!detail.empty()) what += " " + std::string(detail);
    logs_.line(host, "# " + what);
    if (step == deploy::Step::Lock)
      l_.hostStarted(host, what);
    else
      l_.hostProgress(host, what);
  }
  void logLine(const std::string& host, deploy::Step, std::string_view line) override {
    logs_.line(host, line);
  }
  void hostFinished(const deploy::HostOutcome& o) override {
    logs_.line(o.host, "# deploy " + deploy::resultLabel(o.result) +
                           (o.reason.empty() ? "" : ": " + o.reason));
  }

 private:
  StageListener& l_;
  LogFiles& logs_;
};

HostState hostStateOf(deploy::HostResult r) {
  switch (r) {
    case deploy::HostResult::Succeeded:
    case deploy::HostResult::DryRun:
      return HostState::Succeeded;
    case deploy::HostResult::Failed:
      return HostState::Failed;
    case deploy::HostResult::RolledBack:
      return HostState::RolledBack;
    case deploy::HostResult::Unreachable:
      return HostState::Unreachable;
    case deploy::HostResult::Refused:
      return HostState::Refused;
    case deploy::HostResult::Skipped:
      return HostState::Skipped;
  }
  return HostState::Failed;
}

}  // namespace

std::optional<DeployHostOutcome> SshDeployStage::alreadyRunning(const DeployInput& in,
                                                                const DeployHost& h,
                                                                const Target& target) {
  auto conn = ports_.ssh.connect(ssh::endpointFor(target, ssh_));
  auto* session = std::get_if<ssh::SessionPtr>(&conn);
  if (!session || !*session) return std::nullopt;  // the deploy reports why
  // An activation the dead runner started may still be in flight on the target (its
  // watchdog confirms nothing and rolls back after confirm_timeout): wait until every deploy
  // agent there has settled, then look at what the host runs. Phases: remote_agent.h.
  const std::string remoteDir = deploy::DeploySettings{}.remoteDir;
  const std::string probe =
      "busy=0; for d in " + remoteDir +
      "/deploy-*/; do [ -f \"$d/phase\" ] || continue; case \"$(cat \"$d/phase\")\" in "
      "confirmed|rolled-back|rollback-failed|failed) ;; *) busy=1 ;; esac; done; "
      "echo \"busy=$busy\"; "
      "echo \"profile=$(readlink -f /nix/var/nix/profiles/system 2>/dev/null)\"; "
      "echo \"current=$(readlink -f /run/current-system 2>/dev/null)\"";
  const auto deadline = ports_.clock.steadyNow() + in.repo->activation.switchTimeout +
                        in.repo->activation.confirmTimeout + std::chrono::seconds(30);
  std::string profile, current;
  for (;;) {
    auto r = (*session)->exec({.command = probe, .timeout = std::chrono::seconds(30)});
    if (!r.ok()) return std::nullopt;
    bool busy = false;
    for (const auto& line : split(r.out, '\n')) {
      if (line == "busy=1") busy = true;
      if (startsWith(line, "profile=")) profile = line.substr(8);
      if (startsWith(line, "current=")) current = line.substr(8);
    }
    if (!busy) break;
    if (ports_.clock.steadyNow() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (profile != h.outPath || (!current.empty() && current != h.outPath)) return std::nullopt;
  store::DeploymentRecord rec;
  rec.host = h.host;
  rec.repo = in.repo->name;
  rec.sha = in.sha;
  rec.storePath = h.outPath;
  rec.result = "succeeded";
  rec.detail = "found running after a runner restart";
  rec.runId = in.runId;
  rec.startedAt = rec.finishedAt = ports_.clock.nowMillis();
  ports_.deployments.record(rec);
  return DeployHostOutcome{h.host, HostState::Succeeded,
                           "already running " + h.outPath + " (checked after a restart)"};
}

std::vector<DeployHostOutcome> SshDeployStage::deploy(const DeployInput& in,
                                                      StageListener& listener) {
  std::vector<DeployHostOutcome> out;
  if (in.hosts.empty()) return out;
  std::vector<std::string> names;
  for (const auto& h : in.hosts) names.push_back(h.host);
  std::map<std::string, std::string> problems;
  auto targets = resolveTargets(ports_.nix, *in.repo, in.gitDir, in.sha, names, problems);

  std::vector<deploy::HostJob> jobs;
  for (const auto& h : in.hosts) {
    if (auto p = problems.find(h.host); p != problems.end()) {
      out.push_back({h.host, HostState::Refused, truncateUtf8(p->second, 500)});
      continue;
    }
    const Target& t = targets.at(h.host);
    if (h.checkCurrentFirst) {
      listener.hostStarted(h.host, "deploy: checking what the host runs after a restart");
      if (auto done = alreadyRunning(in, h, t)) {
        out.push_back(*done);
        continue;
      }
    }
    jobs.push_back({h.host, t, h.outPath});
  }
  if (jobs.empty()) return out;

  deploy::DeploySettings settings;
  settings.activation = in.repo->activation;
  settings.ssh = ssh_;
  settings.lockWait = lockWait_;
  deploy::GitAncestry ancestry(in.gitDir);
  deploy::DeployServices services{ports_.ssh,         ports_.processes, ports_.http,  ports_.locks,
                                  ports_.deployments, ancestry,         ports_.clock, ports_.log};
  deploy::SshDeployer deployer(services, settings);  // throws ConfigError without known_hosts
  LimitedDeployer limited(deployer, deploys_);
  LogFiles logs(in.logDir, ports_.redactor);
  DeployRelay relay(listener, logs);
  deploy::DeployRequest request;
  request.repo = in.repo->name;
  request.sha = in.sha;
  request.force = in.force;
  request.runId = in.runId;
  for (const auto& o : deploy::runRollout(jobs, request, in.repo->rollout, limited, relay)) {
    std::string summary = deploy::resultLabel(o.result);
    if (o.result == deploy::HostResult::Succeeded && o.newGeneration)
      summary = "deployed (generation " + std::to_string(*o.newGeneration) + ") in " +
                formatDuration(o.total);
    else if (!o.reason.empty())
      summary += ": " + o.reason;
    out.push_back({o.host, hostStateOf(o.result), truncateUtf8(summary, 500)});
  }
  return out;
}

}  // namespace runner::scheduler
