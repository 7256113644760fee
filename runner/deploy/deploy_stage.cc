#include "runner/deploy/deploy_stage.h"

#include <thread>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/core/thread_annotations.h"
#include "runner/deploy/ancestry.h"
#include "runner/deploy/rollout.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"

namespace fs = std::filesystem;

namespace runner::deploy {
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
class SshDeployStage::LimitedDeployer final : public HostDeployer {
 public:
  LimitedDeployer(HostDeployer& inner, Slots& slots) : inner_(inner), slots_(slots) {}
  HostOutcome deploy(const HostJob& job, const DeployRequest& request,
                     DeployObserver& observer) override {
    Slots::Held slot(slots_);
    return inner_.deploy(job, request, observer);
  }

 private:
  HostDeployer& inner_;
  Slots& slots_;
};

namespace {

class DeployRelay final : public DeployObserver {
 public:
  DeployRelay(StageListener& l, LogFiles& logs) : l_(l), logs_(logs) {}
  void stepStarted(const std::string& host, Step step, std::string_view detail) override {
    std::string what = "deploy: " + std::string(stepName(step));
    if (!detail.empty()) what += " " + std::string(detail);
    logs_.line(host, "# " + what);
    if (step == Step::Lock)
      l_.hostStarted(host, what);
    else
      l_.hostProgress(host, what);
  }
  void logLine(const std::string& host, Step, std::string_view line) override {
    logs_.line(host, line);
    l_.hostLine(host, line);
  }
  void hostFinished(const HostOutcome& o) override {
    std::string what = resultLabel(o.result) + (o.reason.empty() ? "" : ": " + o.reason);
    logs_.line(o.host, "# deploy " + what);
    l_.hostFinished(o.host, what);
  }

 private:
  StageListener& l_;
  LogFiles& logs_;
};

HostState hostStateOf(HostResult r) {
  switch (r) {
    case HostResult::Succeeded:
    case HostResult::DryRun:
      return HostState::Succeeded;
    case HostResult::Failed:
      return HostState::Failed;
    case HostResult::RolledBack:
      return HostState::RolledBack;
    case HostResult::Unreachable:
      return HostState::Unreachable;
    case HostResult::Refused:
      return HostState::Refused;
    case HostResult::Skipped:
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
  const std::string remoteDir = DeploySettings{}.remoteDir;
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

// What a deploy did: hosts settled before the rollout (a refused target, found running after
// a restart) with their summary, then the rollout's outcomes.
struct SshDeployStage::Run {
  std::vector<DeployHostOutcome> settled;
  std::vector<HostOutcome> rolled;
  std::map<std::string, Target> targets;
};

SshDeployStage::Run SshDeployStage::run(const DeployInput& in, StageListener& listener) {
  Run out;
  if (in.hosts.empty()) return out;
  std::vector<std::string> names;
  for (const auto& h : in.hosts) names.push_back(h.host);
  std::map<std::string, std::string> problems;
  out.targets = resolveTargets(ports_.nix, *in.repo, in.gitDir, in.sha, names, problems);

  std::vector<HostJob> jobs;
  for (const auto& h : in.hosts) {
    if (auto p = problems.find(h.host); p != problems.end()) {
      out.settled.push_back({h.host, HostState::Refused, truncateUtf8(p->second, 500)});
      continue;
    }
    const Target& t = out.targets.at(h.host);
    if (h.checkCurrentFirst) {
      listener.hostStarted(h.host, "deploy: checking what the host runs after a restart");
      if (auto done = alreadyRunning(in, h, t)) {
        out.settled.push_back(*done);
        continue;
      }
    }
    jobs.push_back({h.host, t, h.outPath});
  }
  if (jobs.empty()) return out;

  DeploySettings settings;
  settings.activation = in.repo->activation;
  settings.ssh = ssh_;
  settings.lockWait = lockWait_;
  GitAncestry ancestry(in.gitDir);
  DeployServices services{ports_.ssh,         ports_.processes, ports_.http,  ports_.locks,
                          ports_.deployments, ancestry,         ports_.clock, ports_.log};
  SshDeployer deployer(services, settings);  // throws ConfigError without known_hosts
  LimitedDeployer limited(deployer, deploys_);
  LogFiles logs(in.logDir, ports_.redactor);
  DeployRelay relay(listener, logs);
  DeployRequest request;
  request.repo = in.repo->name;
  request.sha = in.sha;
  request.force = in.force;
  request.dryRun = in.dryRun;
  if (in.runId != 0) request.runId = in.runId;
  out.rolled = runRollout(jobs, request, in.repo->rollout, limited, relay);
  return out;
}

std::vector<DeployHostOutcome> SshDeployStage::deploy(const DeployInput& in,
                                                      StageListener& listener) {
  Run r = run(in, listener);
  std::vector<DeployHostOutcome> out = std::move(r.settled);
  for (const auto& o : r.rolled) {
    std::string summary = resultLabel(o.result);
    if (o.result == HostResult::Succeeded && o.newGeneration)
      summary = "deployed (generation " + std::to_string(*o.newGeneration) + ") in " +
                formatDuration(o.total);
    else if (!o.reason.empty())
      summary += ": " + o.reason;
    out.push_back({o.host, hostStateOf(o.result), truncateUtf8(summary, 500)});
  }
  return out;
}

SshDeployStage::Result SshDeployStage::deployHosts(const DeployInput& in, StageListener& listener) {
  Run r = run(in, listener);
  Result out;
  for (const auto& s : r.settled) {
    HostOutcome o;
    o.host = s.host;
    o.result = s.state == HostState::Succeeded ? HostResult::Succeeded : HostResult::Refused;
    o.reason = s.summary;
    out.hosts.push_back(std::move(o));
  }
  for (auto& o : r.rolled) out.hosts.push_back(std::move(o));
  out.targets = std::move(r.targets);
  return out;
}

}  // namespace runner::deploy
