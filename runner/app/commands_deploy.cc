// `switchyard deploy [--repo DIR] --rev REV [HOST…] [--config FILE] [--dry-run] [--force]`
// (DESIGN.md §3, §6): builds the hosts' toplevels (one nix build, runner/build), then rolls
// them out over SSH (runner/deploy): canaries first, then up to max_parallel at once, with
// live per-host progress on stderr and a table of results on stdout. Exit 1 when any host
// did not succeed.
//
// Settings come from the config's repo entry (rollout, activation, hosts and their targets)
// and its ssh section; flags override them, so a deploy works without a config file too
// (--known-hosts is then required: host keys are always checked strictly).
#include <algorithm>
#include <array>
#include <filesystem>
#include <iostream>
#include <map>
#include <mutex>
#include <optional>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/commands.h"
#include "runner/app/config_loader.h"
#include "runner/build/builder.h"
#include "runner/build/terminal_progress.h"
#include "runner/core/clock.h"
#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/core/text.h"
#include "runner/deploy/ancestry.h"
#include "runner/deploy/rollout.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/git/repository.h"
#include "runner/http/curl_client.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/process.h"
#include "runner/scheduler/nix_stages.h"
#include "runner/ssh/ssh.h"
#include "runner/store/database.h"

namespace fs = std::filesystem;

namespace runner::app {
namespace {

std::string lastLineOf(const std::string& text) {
  auto lines = split(std::string(trim(text)), '\n');
  return lines.empty() ? "" : std::string(trim(lines.back()));
}

struct DeployOpts {
  std::string repo = ".";
  std::string rev;
  std::vector<std::string> hosts;
  std::string config;
  bool dryRun = false, force = false, json = false;
  std::vector<std::string> targets;  // HOST=[user@]host[:port]
  std::string identity, knownHosts, confirmTimeout, lockWait;
  int maxParallel = 0;
};

// Live progress on stderr, one line per step and per activation log line. Thread-safe.
class ConsoleObserver final : public deploy::DeployObserver {
 public:
  explicit ConsoleObserver(std::ostream& out) : out_(out) {}
  void stepFinished(const std::string& host, deploy::Step step, std::chrono::milliseconds took,
                    std::string_view detail) override {
    std::lock_guard lk(mu_);
    out_ << "[" << host << "] " << deploy::stepName(step) << " " << formatDuration(took);
    if (!detail.empty()) out_ << ": " << detail;
    out_ << "\n";
  }
  void logLine(const std::string& host, deploy::Step, std::string_view line) override {
    std::lock_guard lk(mu_);
    out_ << "[" << host << "]   | " << line << "\n";
  }
  void hostFinished(const deploy::HostOutcome& o) override {
    std::lock_guard lk(mu_);
    out_ << "[" << o.host << "] => " << deploy::resultLabel(o.result);
    if (!o.reason.empty()) out_ << ": " << o.reason;
    out_ << "\n";
  }

 private:
  std::mutex mu_;
  std::ostream& out_;
};

std::string generations(const deploy::HostOutcome& o) {
  auto g = [](const std::optional<int64_t>& n) {
    return n ? std::to_string(*n) : std::string("-");
  };
  if (o.result == deploy::HostResult::RolledBack)
    return g(o.previousGeneration) + " -> " + g(o.newGeneration) + " -> " + g(o.previousGeneration);
  if (!o.newGeneration) return g(o.previousGeneration);
  return g(o.previousGeneration) + " -> " + g(o.newGeneration);
}

nlohmann::json toJson(const deploy::HostOutcome& o) {
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  nlohmann::json durations = nlohmann::json::object();
  for (const auto& [step, ms] : o.durations) {
    std::string k(deploy::stepName(step));
    durations[k] = durations.value(k, int64_t{0}) + ms.count();
  }
  nlohmann::json j{{"host", o.host},
                   {"result", deploy::resultName(o.result)},
                   {"reason", o.reason},
                   {"store_path", o.storePath},
                   {"previous_path", opt(o.previousPath)},
                   {"previous_generation", opt(o.previousGeneration)},
                   {"new_generation", opt(o.newGeneration)},
                   {"durations_ms", durations},
                   {"total_ms", o.total.count()}};
  j["failed_step"] =
      o.failedStep ? nlohmann::json(deploy::stepName(*o.failedStep)) : nlohmann::json(nullptr);
  if (!o.plan.empty()) j["plan"] = o.plan;
  if (!o.dryActivate.empty()) j["dry_activate"] = o.dryActivate;
  return j;
}

void printTable(std::ostream& out, const std::vector<deploy::HostOutcome>& outcomes) {
  std::vector<std::array<std::string, 5>> rows;
  rows.push_back({"HOST", "RESULT", "GENERATION", "TIME", "DETAIL"});
  for (const auto& o : outcomes)
    rows.push_back(
        {o.host, deploy::resultLabel(o.result), generations(o), formatDuration(o.total), o.reason});
  std::array<size_t, 4> w{};
  for (const auto& r : rows)
    for (size_t i = 0; i < 4; ++i) w[i] = std::max(w[i], r[i].size());
  for (const auto& r : rows) {
    std::string line;
    for (size_t i = 0; i < 4; ++i) line += r[i] + std::string(w[i] - r[i].size() + 2, ' ');
    line += r[4];
    out << std::string(trim(line)) << "\n";
  }
}

// The target of each host: --target, the config's hosts, the flake's clan or colmena
// targetHost, else root@<name>.
std::map<std::string, Target> resolveTargets(const std::vector<std::string>& hosts,
                                             const std::map<std::string, std::string>& flags,
                                             const RepoConfig* rc, nix::NixCli& nix,
                                             const std::string& flakeRef) {
  std::map<std::string, std::string> given = flags;
  if (rc)
    for (const auto& h : rc->hosts)
      if (h.target && !given.count(h.name)) given[h.name] = *h.target;
  std::vector<std::string> unknown;
  for (const auto& h : hosts)
    if (!given.count(h)) unknown.push_back(h);
  nix::HostEvals info;
  if (!unknown.empty()) info = nix.evalHostInfo(flakeRef, unknown);
  std::map<std::string, Target> out;
  for (const auto& h : hosts) {
    auto it = info.hosts.find(h);
    try {
      out[h] = parseTarget(
          nix::chooseTarget(h, given, it == info.hosts.end() ? nullptr : &it->second).text);
    } catch (Error& e) {
      e.addContext("the deploy target of " + h);
      throw;
    }
  }
  return out;
}

int runDeploy(const DeployOpts& o) {
  auto repo = git::Repository::open(o.repo);
  const std::string sha = repo->resolveCommit(o.rev);
  const fs::path flakeDir = repo->workDir().value_or(repo->gitDir());
  const std::string flakeRef = nix::gitFlakeRef(flakeDir, sha);

  std::optional<Config> config;
  const RepoConfig* rc = nullptr;
  if (!o.config.empty()) {
    config = loadConfig(o.config);
    rc = config->repoFor(o.repo);
  }
  const std::string label = rc ? rc->name : fs::absolute(o.repo).lexically_normal().string();
  const fs::path stateDir = config ? config->stateDir : fs::path(".switchyard");

  deploy::DeploySettings settings;
  if (config) settings.ssh = config->ssh;
  if (!o.identity.empty()) settings.ssh.identityFile = o.identity;
  if (!o.knownHosts.empty()) settings.ssh.knownHosts = o.knownHosts;
  if (!settings.ssh.knownHosts)
    throw UsageError(
        "no known_hosts file: set ssh.known_hosts in the config or pass --known-hosts "
        "(host keys are always checked strictly)");
  RolloutConfig rollout = rc ? rc->rollout : RolloutConfig{};
  if (o.maxParallel > 0) rollout.maxParallel = o.maxParallel;
  if (rc) settings.activation = rc->activation;
  if (!o.confirmTimeout.empty())
    settings.activation.confirmTimeout =
        std::chrono::duration_cast<std::chrono::seconds>(parseDuration(o.confirmTimeout));
  if (!o.lockWait.empty()) settings.lockWait = parseDuration(o.lockWait);

  std::map<std::string, std::string> targetFlags;
  for (const auto& t : o.targets) {
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--target wants HOST=[user@]host[:port], got '" + t + "'");
    targetFlags[t.substr(0, eq)] = t.substr(eq + 1);
  }

  os::PosixProcessRunner procs;
  nix::NixCli nix(procs);
  std::vector<std::string> hosts = o.hosts;
  if (hosts.empty() && rc)
    for (const auto& h : rc->hosts) hosts.push_back(h.name);
  if (hosts.empty()) hosts = nix.hostNames(flakeRef);
  auto targets = resolveTargets(hosts, targetFlags, rc, nix, flakeRef);

  // Build (a dry run builds too: what would be deployed must exist to be inspected).
  std::cerr << "switchyard deploy " << shortSha(sha) << (o.dryRun ? " (dry run)" : "") << ": "
            << join(hosts, ", ") << "\n";
  std::vector<deploy::HostOutcome> buildFailures;
  std::vector<build::HostTarget> buildTargets;
  {
    auto drvs = nix.evalDrvPaths(flakeRef, hosts);
    for (const auto& h : hosts) {
      const auto& v = drvs.hosts[h];
      if (v.missing) throw UsageError("no host '" + h + "' in the flake at " + shortSha(sha));
      if (v.value && v.value->is_string()) {
        buildTargets.push_back({h, v.value->get<std::string>()});
        continue;
      }
      deploy::HostOutcome f;
      f.host = h;
      f.result = deploy::HostResult::Failed;
      f.reason = "does not evaluate: " +
                 lastLineOf(v.error.value_or(drvs.flakeError.value_or("no drvPath")));
      buildFailures.push_back(std::move(f));
    }
  }
  std::vector<deploy::HostJob> jobs;
  if (!buildTargets.empty()) {
    build::BuildOptions bo;
    bo.timeout = rc ? std::chrono::duration_cast<std::chrono::milliseconds>(rc->buildTimeout)
                    : std::chrono::milliseconds(std::chrono::hours(1));
    bo.gcRootDir = stateDir / "gcroots";
    SystemClock buildClock;
    build::Builder builder(nix, buildClock);
    build::TerminalProgress progress(std::cerr, ::isatty(2) == 1);
    auto built = builder.build(buildTargets, bo, &progress);
    for (const auto& h : built.hosts) {
      if (h.ok() && h.outPath) {
        jobs.push_back({h.host, targets.at(h.host), *h.outPath});
        continue;
      }
      deploy::HostOutcome f;
      f.host = h.host;
      f.result = deploy::HostResult::Failed;
      f.reason = "build " + h.message;
      buildFailures.push_back(std::move(f));
    }
  }
  // Keep the order the hosts were named in.
  std::sort(jobs.begin(), jobs.end(), [&](const auto& a, const auto& b) {
    return std::find(hosts.begin(), hosts.end(), a.host) <
           std::find(hosts.begin(), hosts.end(), b.host);
  });

  auto db = store::Database::open(stateDir / "switchyard.db");
  SystemClock clock;
  store::HostLocks locks(*db, clock);
  store::Deployments deployments(*db);
  deploy::HostLockGuard guard(locks, clock);
  auto connector = ssh::makeLibsshConnector();
  http::CurlHttpClient http;
  StderrLogger log;
  deploy::GitAncestry ancestry(o.repo);
  deploy::SshDeployer deployer(
      deploy::DeployServices{*connector, procs, http, guard, deployments, ancestry, clock, log},
      settings);
  deploy::DeployRequest request;
  request.repo = label;
  request.sha = sha;
  request.force = o.force;
  request.dryRun = o.dryRun;
  ConsoleObserver observer(std::cerr);
  auto outcomes = deploy::runRollout(jobs, request, rollout, deployer, observer);
  for (auto& f : buildFailures) outcomes.push_back(std::move(f));

  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& out : outcomes) arr.push_back(toJson(out));
    std::cout << nlohmann::json{{"repo", label},
                                {"rev", sha},
                                {"dry_run", o.dryRun},
                                {"hosts", arr}}
                     .dump(2)
              << "\n";
  } else {
    if (o.dryRun) {
      for (const auto& out : outcomes) {
        if (out.plan.empty()) continue;
        std::cout << out.host << " (" << targets.at(out.host).toString() << ")\n";
        for (const auto& line : split(out.plan, '\n')) std::cout << "  " << line << "\n";
        if (!out.dryActivate.empty()) {
          std::cout << "  dry-activate:\n";
          for (const auto& line : split(std::string(trim(out.dryActivate)), '\n'))
            std::cout << "    " << line << "\n";
        }
      }
    }
    printTable(std::cout, outcomes);
  }
  bool ok = std::all_of(outcomes.begin(), outcomes.end(),
                        [](const deploy::HostOutcome& h) { return h.ok(); });
  return ok ? 0 : 1;
}

}  // namespace

void registerDeployCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("deploy", "Build hosts and deploy them over SSH");
  auto o = std::make_shared<DeployOpts>();
  cmd->add_option("--repo", o->repo, "repository (work tree or bare)")->capture_default_str();
  cmd->add_option("--rev", o->rev, "revision to deploy")->required();
  cmd->add_option("HOST", o->hosts, "hosts (default: the config's hosts, else every host)");
  cmd->add_option("--config", o->config, "switchyard.yaml (ssh, rollout, activation, targets)");
  cmd->add_flag("--dry-run", o->dryRun, "inspect the hosts and print what would be done");
  cmd->add_flag("--force", o->force, "allow a commit older than the one deployed");
  cmd->add_option("--target", o->targets, "HOST=[user@]host[:port] (overrides the config)");
  cmd->add_option("--identity", o->identity, "SSH private key (overrides ssh.identity_file)");
  cmd->add_option("--known-hosts", o->knownHosts, "known_hosts file (overrides ssh.known_hosts)");
  cmd->add_option("--confirm-timeout", o->confirmTimeout, "e.g. 30s (overrides the config)");
  cmd->add_option("--max-parallel", o->maxParallel, "hosts at once after the canaries");
  cmd->add_option("--lock-wait", o->lockWait, "wait this long for a host another deploy holds");
  cmd->add_flag("--json", o->json, "print the results as JSON");
  cmd->callback([&ctx, o] { ctx.action = [o] { return runDeploy(*o); }; });
}

}  // namespace runner::app
