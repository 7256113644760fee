#include "runner/build/builder.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>

#include "runner/core/error.h"
#include "runner/core/plan.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"

namespace fs = std::filesystem;

namespace runner::build {

bool BuildResult::ok() const {
  return !hosts.empty() &&
         std::all_of(hosts.begin(), hosts.end(), [](const HostBuildResult& h) { return h.ok(); });
}

BuildResult Builder::build(const std::vector<HostTarget>& requested, const BuildOptions& options,
                           BuildObserver* observer) {
  BuildResult result;
  // Host names become file names below (logs, GC roots): a name that breaks the host-name
  // rule is refused here too, whatever the caller checked.
  std::vector<HostBuildResult> refused;
  std::vector<HostTarget> targets;
  for (const auto& t : requested) {
    if (auto why = hostNameProblem(t.host)) {
      HostBuildResult r;
      r.host = t.host;
      r.drvPath = t.drvPath;
      r.state = HostState::Failed;
      r.message = "refused: " + *why;
      refused.push_back(std::move(r));
    } else {
      targets.push_back(t);
    }
  }
  if (targets.empty()) {
    result.hosts = std::move(refused);
    return result;
  }
  const auto start = clock_.steadyNow();
  auto elapsed = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(clock_.steadyNow() - start);
  };
  std::vector<std::string> drvs;
  drvs.reserve(targets.size());
  for (const auto& t : targets) drvs.push_back(t.drvPath);
  nix::DerivationSet closure = nix_.showDerivations(drvs, true);
  nix::DryRun dry = nix_.dryRun(drvs);

  std::vector<HostTarget> allowed;
  if (options.refuseFixedOutput) {
    for (const auto& t : targets) {
      std::vector<std::string> fetchers;
      for (const auto& d : nix::drvClosure(closure, {t.drvPath})) {
        auto it = closure.find(d);
        if (dry.willBuild.count(d) && it != closure.end() && it->second.env.count("outputHash"))
          fetchers.push_back(nix::storePathName(d));
      }
      if (fetchers.empty()) {
        allowed.push_back(t);
        continue;
      }
      HostBuildResult r;
      r.host = t.host;
      r.drvPath = t.drvPath;
      r.state = HostState::NeedsApproval;
      std::sort(fetchers.begin(), fetchers.end());
      r.message =
          "needs approval: it would run " + std::to_string(fetchers.size()) +
          " fixed-output derivation" + (fetchers.size() == 1 ? "" : "s") +
          ", which have network access (" +
          join(std::vector<std::string>(
                   fetchers.begin(), fetchers.begin() + static_cast<std::ptrdiff_t>(
                                                            std::min<size_t>(fetchers.size(), 5))),
               ", ") +
          (fetchers.size() > 5 ? ", …" : "") + ")";
      refused.push_back(std::move(r));
    }
  }
  const std::vector<HostTarget>& toBuild = options.refuseFixedOutput ? allowed : targets;
  if (options.refuseFixedOutput) {
    drvs.clear();
    for (const auto& t : toBuild) drvs.push_back(t.drvPath);
  }

  std::map<std::string, std::unique_ptr<os::LogFile>> logs;
  if (!options.logDir.empty()) {
    for (const auto& t : toBuild) {
      auto out = std::make_unique<os::LogFile>(os::pathUnder(options.logDir, t.host, ".log"),
                                               os::LogFile::Mode::Truncate, options.redactor);
      out->line("# switchyard build of " + t.host + ": " + t.drvPath);
      for (const auto& n : options.notes) out->line("# " + n);
      logs[t.host] = std::move(out);
    }
  }
  if (options.refusal) {
    for (const auto& t : toBuild) {
      HostBuildResult r;
      r.host = t.host;
      r.drvPath = t.drvPath;
      r.state = HostState::Failed;
      r.message = "not built: " + *options.refusal;
      if (auto it = logs.find(t.host); it != logs.end()) it->second->line("# " + r.message);
      refused.push_back(std::move(r));
    }
    result.duration = elapsed();
    result.hosts = std::move(refused);
    std::sort(result.hosts.begin(), result.hosts.end(),
              [](const HostBuildResult& a, const HostBuildResult& b) { return a.host < b.host; });
    if (observer) observer->onFinished(result);
    return result;
  }

  BuildMonitor monitor(
      toBuild, closure, dry.willBuild,
      [](const std::string& p) { return fs::exists(fs::symlink_status(p)); }, options.tailLines);
  monitor.onHostLine = [&](const std::string& host, const std::string& drvName,
                           std::string_view line) {
    if (auto it = logs.find(host); it != logs.end())
      it->second->line(drvName + "> " + std::string(line));
    if (observer) observer->onLogLine(host, drvName, line);
  };
  auto notify = [&] {
    if (!observer) return;
    BuildProgress snap = monitor.snapshot();
    observer->onProgress(snap, elapsed());
    for (const auto& h : monitor.takeFinishedHosts())
      for (const auto& hp : snap.hosts)
        if (hp.host == h) observer->onHostFinished(hp, elapsed());
  };
  notify();

  nix::BuildRun run;
  bool anythingToBuild = !drvs.empty() && (!dry.willBuild.empty() || !dry.willFetch.empty());
  if (anythingToBuild) {
    run = nix_.build({.drvPaths = drvs,
                      .timeout = options.timeout,
                      .drvTimeout = options.drvTimeout,
                      .maxJobs = options.maxJobs,
                      .maxSilentTime = options.maxSilentTime,
                      .extraArgs = options.nixArgs,
                      .env = options.nixEnv},
                     [&](const nix::LogEvent& ev) {
                       if (monitor.handle(ev, elapsed())) notify();
                     });
  } else {
    run.process.exitStatus = 0;
  }
  result.duration = elapsed();
  result.timedOut = run.process.timedOut;
  result.nixExitStatus = run.process.exitStatus;
  result.errors = run.errors;
  result.hosts = monitor.finish(run, result.duration);
  for (auto& r : refused) result.hosts.push_back(std::move(r));
  std::sort(result.hosts.begin(), result.hosts.end(),
            [](const HostBuildResult& a, const HostBuildResult& b) { return a.host < b.host; });
  for (auto& h : result.hosts) {
    if (h.ok() && !options.gcRootDir.empty() && h.outPath) {
      std::string err;
      if (!nix_.addGcRoot(os::pathUnder(options.gcRootDir, h.host), *h.outPath, &err)) {
        h.state = HostState::Failed;
        h.message = "built, but the GC root could not be added: " + err;
      }
    }
    if (auto it = logs.find(h.host); it != logs.end()) {
      it->second->line("# result: " + std::string(toString(h.state)) + " after " +
                       formatDuration(h.duration) +
                       (h.outPath && h.ok() ? " -> " + *h.outPath : std::string()));
      if (!h.ok()) it->second->line("# " + h.message);
    }
  }
  notify();
  if (observer) observer->onFinished(result);
  return result;
}

}  // namespace runner::build
