// `switchyard deploy [--repo DIR] --rev REV [HOST…] [--config FILE] [--dry-run] [--force]`
// (DESIGN.md §3, §6): drives the daemon's build stage (one nix build, build/build_stage.h)
// and deploy stage (deploy/deploy_stage.h: targets, rollout over SSH, per-host logs):
// canaries first, then up to max_parallel at once, with live per-host progress on stderr
// and a table of results on stdout. Exit 1 when any host did not succeed.
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
#include "runner/app/console_listener.h"
#include "runner/app/repo_choice.h"
#include "runner/build/build_stage.h"
#include "runner/build/terminal_progress.h"
#include "runner/core/clock.h"
#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/core/slots.h"
#include "runner/core/stages.h"
#include "runner/core/text.h"
#include "runner/deploy/deploy_stage.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/git/repository.h"
#include "runner/http/curl_client.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/process.h"
#include "runner/ssh/ssh.h"
#include "runner/store/database.h"
#include "runner/store/host_probes.h"

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
  std::string config, forge;
  bool dryRun = false, force = false, json = false;
  std::vector<std::string> targets;  // HOST=[user@]host[:port]
  std::string identity, knownHosts, confirmTimeout, lockWait;
  int maxParallel = 0;
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

int runDeploy(const DeployOpts& o) {
  std::optional<Config> config;
  if (!o.config.empty()) config = loadConfig(o.config);
  const RepoChoice choice = chooseRepo(config ? &*config : nullptr, o.repo, o.forge);
  const RepoConfig* rc = choice.repo;
  auto repo = git::Repository::open(choice.gitDir);
  const std::string sha = repo->resolveCommit(o.rev);
  const fs::path flakeDir = repo->workDir().value_or(repo->gitDir());
  const std::string flakeRef = nix::gitFlakeRef(flakeDir, sha);
  const fs::path stateDir = config ? config->stateDir : fs::path(".switchyard");

  // The repository's settings for the stages: the config's entry with the flags on top.
  RepoConfig settings = rc ? *rc : RepoConfig{};
  settings.name = rc ? rc->name : fs::absolute(choice.gitDir).lexically_normal().string();
  SshConfig ssh = config ? config->ssh : SshConfig{};
  if (!o.identity.empty()) ssh.identityFile = o.identity;
  if (!o.knownHosts.empty()) ssh.knownHosts = o.knownHosts;
  if (!ssh.knownHosts)
    throw UsageError(
        "no known_hosts file: set ssh.known_hosts in the config or pass --known-hosts "
        "(host keys are always checked strictly)");
  if (o.maxParallel > 0) settings.rollout.maxParallel = o.maxParallel;
  if (!o.confirmTimeout.empty())
    settings.activation.confirmTimeout =
        std::chrono::duration_cast<std::chrono::seconds>(parseDuration(o.confirmTimeout));
  const auto lockWait =
      o.lockWait.empty() ? deploy::DeploySettings{}.lockWait : parseDuration(o.lockWait);
  for (const auto& t : o.targets) {
    auto eq = t.find('=');
    if (eq == std::string::npos || eq == 0)
      throw UsageError("--target wants HOST=[user@]host[:port], got '" + t + "'");
    const std::string host = t.substr(0, eq), text = t.substr(eq + 1);
    try {
      parseTarget(text);
    } catch (Error& e) {
      e.addContext("the deploy target of " + host);
      throw;
    }
    auto it = std::find_if(settings.hosts.begin(), settings.hosts.end(),
                           [&](const HostConfig& h) { return h.name == host; });
    if (it != settings.hosts.end())
      it->target = text;
    else
      settings.hosts.push_back({host, text});
  }

  os::PosixProcessRunner procs;
  nix::NixCli nix(procs);
  // HOST arguments are names or @tag (Colmena deployment.tags). Only names count as naming a
  // host: a `deploy: manual` host (or Clan's requireExplicitUpdate) selected by a tag alone
  // is left alone, as on a push.
  std::vector<std::string> hosts, named;
  if (std::any_of(o.hosts.begin(), o.hosts.end(),
                  [](const std::string& h) { return startsWith(h, "@"); })) {
    const std::vector<std::string> all = nix.hostNames(flakeRef);
    nix::HostEvals info = nix.evalHostInfo(flakeRef, all);
    std::map<std::string, deploy::HostFacts> facts;
    for (const auto& h : all) {
      auto it = info.hosts.find(h);
      facts[h] = deploy::hostFactsFrom(it == info.hosts.end() ? nullptr : &it->second);
    }
    for (const auto& sel : o.hosts) {
      if (sel == "@") throw UsageError("'@' names no tag (deploy @TAG selects by deployment.tags)");
      auto picked = deploy::selectHosts(sel, all, facts);
      if (picked.empty())
        throw UsageError("no host carries the tag '" + sel.substr(1) + "' (deployment.tags) at " +
                         shortSha(sha));
      for (auto& h : picked)
        if (std::find(hosts.begin(), hosts.end(), h) == hosts.end()) hosts.push_back(h);
    }
  } else {
    hosts = o.hosts;
  }
  for (const auto& h : o.hosts)
    if (!startsWith(h, "@")) named.push_back(h);
  if (hosts.empty() && rc)
    for (const auto& h : rc->hosts) hosts.push_back(h.name);
  if (hosts.empty()) hosts = nix.hostNames(flakeRef);

  // The daemon's build and deploy stages, one run at a time. A dry run builds too: what
  // would be deployed must exist to be inspected.
  std::cerr << "switchyard deploy " << shortSha(sha) << (o.dryRun ? " (dry run)" : "") << ": "
            << join(hosts, ", ") << "\n";
  SystemClock clock;
  StderrLogger log;
  PrioritySlots evals(1), builds(1);
  std::unique_ptr<build::RemoteBuilders> remote;
  if (config && (!config->build.builders.empty() || config->build.maxJobs))
    remote = std::make_unique<build::RemoteBuilders>(procs, config->build, config->ssh, stateDir);
  auto connector = ssh::makeLibsshConnector();
  build::TargetBuilds onTarget(procs, *connector, ssh, clock);
  build::NixBuildStage builder(nix, {}, clock, builds, evals, nullptr, remote.get(), &onTarget);
  BuildInput bi;
  bi.repo = &settings;
  bi.gitDir = flakeDir;
  bi.sha = sha;
  for (const auto& h : hosts) bi.hosts.push_back({h, std::nullopt});
  bi.logDir = stateDir / "logs" / "builds" / sha.substr(0, 12);
  bi.gcRootDir = stateDir / "gcroots";
  bi.priority = SlotClass::Deploy;
  build::TerminalProgress progress(std::cerr, ::isatty(2) == 1);
  ConsoleListener buildConsole(std::cerr, false);
  auto built = builder.buildHosts(bi, buildConsole, &progress);
  if (!built.missing.empty())
    throw UsageError("no host '" + built.missing.front() + "' in the flake at " + shortSha(sha));
  std::vector<deploy::HostOutcome> buildFailures;
  DeployInput di;
  di.repo = &settings;
  di.gitDir = flakeDir;
  di.sha = sha;
  di.force = o.force;
  di.dryRun = o.dryRun;
  di.logDir = stateDir / "logs" / "deploys" / sha.substr(0, 12);
  di.named = named;
  for (const auto& h : hosts) {  // in the order the hosts were named
    auto b = std::find_if(built.build.hosts.begin(), built.build.hosts.end(),
                          [&](const build::HostBuildResult& r) { return r.host == h; });
    if (b == built.build.hosts.end()) continue;
    if (b->ok() && b->outPath) {
      di.hosts.push_back({h, *b->outPath});
      continue;
    }
    deploy::HostOutcome f;
    f.host = h;
    f.result = deploy::HostResult::Failed;
    f.reason = startsWith(b->message, "does not evaluate")
                   ? "does not evaluate: " + lastLineOf(b->logTail)
                   : "build " + b->message;
    buildFailures.push_back(std::move(f));
  }

  // the runner's database (its host locks and deployment records), PostgreSQL when configured
  auto db = store::Database::openConfigured(config ? config->database : std::string(),
                                            stateDir / "switchyard.db");
  store::HostLocks locks(*db, clock);
  store::Deployments deployments(*db);
  store::HostProbes probes(*db);
  deploy::HostLockGuard guard(locks, clock);
  http::CurlHttpClient http;
  const int deploys = std::max(settings.rollout.maxParallel,
                               config ? config->concurrency.deploys : Concurrency{}.deploys);
  deploy::SshDeployStage deployer(deploy::DeployPorts{*connector, procs, http, guard, deployments,
                                                      nix, clock, log, nullptr, &probes},
                                  ssh, deploys,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(lockWait));
  ConsoleListener console(std::cerr, true);
  auto deployed = deployer.deployHosts(di, console);
  std::vector<deploy::HostOutcome>& outcomes = deployed.hosts;
  for (auto& f : buildFailures) outcomes.push_back(std::move(f));

  if (o.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const auto& out : outcomes) arr.push_back(toJson(out));
    std::cout << nlohmann::json{{"repo", settings.name},
                                {"rev", sha},
                                {"dry_run", o.dryRun},
                                {"hosts", arr}}
                     .dump(2)
              << "\n";
  } else {
    if (o.dryRun) {
      for (const auto& out : outcomes) {
        if (out.plan.empty()) continue;
        auto t = deployed.targets.find(out.host);
        std::cout << out.host << " ("
                  << (t == deployed.targets.end() ? std::string("?") : t->second.toString())
                  << ")\n";
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
  cmd->add_option("--repo", o->repo, "repository (work tree or bare, or a configured name)")
      ->capture_default_str();
  cmd->add_option("--rev", o->rev, "revision to deploy")->required();
  cmd->add_option("HOST", o->hosts,
                  "hosts, or @TAG for the hosts with that deployment.tags entry (default: the "
                  "config's hosts, else every host)");
  cmd->add_option("--config", o->config, "switchyard.yaml (ssh, rollout, activation, targets)");
  cmd->add_option("--forge", o->forge, "the config's forge whose repository is meant");
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
