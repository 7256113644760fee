// `switchyard hosts` (every host with its deploy target and system, one `nix eval`) and
// `switchyard build` (one `nix build` for the requested or affected hosts, with live
// progress, per-host logs and GC roots). DESIGN.md §3.
#include <filesystem>
#include <iostream>
#include <map>
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
#include "runner/core/plan.h"
#include "runner/core/slots.h"
#include "runner/core/stages.h"
#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/process.h"
#include "runner/plan/exact_planner.h"
#include "runner/plan/plan_stage.h"
#include "runner/ssh/ssh.h"
#include "runner/store/database.h"
#include "runner/store/drv_cache.h"

namespace fs = std::filesystem;

namespace runner::app {
namespace {

struct Loaded {
  std::unique_ptr<git::Repository> repo;
  std::optional<Config> config;
  const RepoConfig* rc = nullptr;
  std::string label;
  fs::path stateDir;
};

Loaded load(const std::string& repoPath, const std::string& configPath, const std::string& forge) {
  Loaded l;
  l.stateDir = cacheDir();
  if (!configPath.empty()) {
    l.config = loadConfig(configPath);
    l.stateDir = l.config->stateDir;
  }
  RepoChoice choice = chooseRepo(l.config ? &*l.config : nullptr, repoPath, forge);
  l.repo = git::Repository::open(choice.gitDir);
  l.label = fs::absolute(choice.gitDir).lexically_normal().string();
  if ((l.rc = choice.repo)) l.label = l.rc->name;
  return l;
}

fs::path flakePath(git::Repository& repo) { return repo.workDir().value_or(repo.gitDir()); }

std::string canonicalTarget(const std::string& raw) {
  try {
    return parseTarget(raw).toString();
  } catch (const InputError&) {
    return raw;  // shown as it is; deploy will refuse it with a clear message
  }
}

// ---- switchyard hosts ----

struct HostRow {
  std::string name;
  std::string target;
  std::string targetFrom;  // config | clan | colmena | name
  std::optional<std::string> system;
  std::optional<std::string> error;
};

void to_json(nlohmann::json& j, const HostRow& h) {
  j = {{"name", h.name}, {"target", h.target}, {"target_from", h.targetFrom}};
  j["system"] = h.system ? nlohmann::json(*h.system) : nlohmann::json(nullptr);
  if (h.error) j["error"] = *h.error;
}

int runHosts(const std::string& repoPath, const std::string& rev, const std::string& configPath,
             const std::string& forge, bool asJson) {
  Loaded l = load(repoPath, configPath, forge);
  std::string sha = l.repo->resolveCommit(rev);
  os::PosixProcessRunner procs;
  nix::NixCli nix(procs);
  std::optional<std::vector<std::string>> wanted;
  std::map<std::string, std::string> configured;
  if (l.rc) {
    for (const auto& h : l.rc->hosts) {
      if (h.target) configured[h.name] = *h.target;
    }
    if (!l.rc->hosts.empty()) {
      wanted.emplace();
      for (const auto& h : l.rc->hosts) wanted->push_back(h.name);
    }
  }
  nix::HostEvals info = nix.evalHostInfo(nix::gitFlakeRef(flakePath(*l.repo), sha), wanted);
  if (info.flakeError)  // the user's flake is the bad input: exit 2, one line
    throw InputError("the flake at " + shortSha(sha) +
                     " does not evaluate: " + nix::nixErrorSummary(*info.flakeError));
  std::vector<HostRow> rows;
  for (const auto& [name, v] : info.hosts) {
    HostRow row;
    row.name = name;
    nix::TargetChoice choice = nix::chooseTarget(name, configured, &v);
    row.target = canonicalTarget(choice.text);
    row.targetFrom = choice.from;
    if (v.value && v.value->is_object())
      if (auto it = v.value->find("system"); it != v.value->end() && it->is_string())
        row.system = it->get<std::string>();
    if (v.missing) row.error = "not in the flake's nixosConfigurations";
    if (v.error) row.error = nix::nixErrorSummary(*v.error);
    if (auto why = hostNameProblem(name)) row.error = "refused: " + *why;
    if (!row.error && choice.from != "name") {
      try {
        parseTarget(choice.text);
      } catch (const InputError& e) {
        row.error = "invalid target: " + describe(e);
      }
    }
    rows.push_back(std::move(row));
  }
  if (asJson) {
    std::cout << nlohmann::json{{"repo", l.label}, {"rev", sha}, {"hosts", rows}}.dump(2) << "\n";
  } else {
    size_t wName = 4, wTarget = 6;
    for (const auto& r : rows) {
      wName = std::max(wName, neutralizeControls(r.name).size());
      wTarget = std::max(wTarget, r.target.size());
    }
    auto pad = [](const std::string& s, size_t w) {
      return s + std::string(w - s.size() + 2, ' ');
    };
    std::cout << pad("HOST", wName) << pad("TARGET", wTarget) << pad("FROM", 7) << "SYSTEM\n";
    for (const auto& r : rows) {
      std::cout << pad(neutralizeControls(r.name), wName) << pad(r.target, wTarget)
                << pad(r.targetFrom, 7) << r.system.value_or("-");
      if (r.error) std::cout << "  (" << split(*r.error, '\n').front() << ")";
      std::cout << "\n";
    }
  }
  bool anyError = std::any_of(rows.begin(), rows.end(), [](const HostRow& r) { return r.error; });
  return anyError ? 1 : 0;
}

// ---- switchyard build ----

struct BuildOpts {
  std::string repo = ".";
  std::string rev;
  std::vector<std::string> hosts;
  std::string config, forge;
  std::string logDir, gcRoots, timeout;
  int maxJobs = 0;
  bool json = false;
};

struct Selection {
  std::vector<BuildHost> hosts;  // with the plan's drvPath when it knows it
  std::string why;
};

// The repository's settings for the stages: the config's entry, else the defaults (auto
// detection, a build timeout of 1h) under the repository's path.
RepoConfig repoSettings(const Loaded& l) {
  RepoConfig rc = l.rc ? *l.rc : RepoConfig{};
  rc.name = l.label;
  return rc;
}

// No HOST given: the hosts the plan stage marks affected against the first parent (mode
// from the config's `detection`, default auto), or every host for a root commit.
Selection selectHosts(Loaded& l, PlanStage& planner, const RepoConfig& rc, const std::string& sha) {
  Selection s;
  auto info = l.repo->commit(sha);
  PlanInput in{.repo = &rc, .gitDir = flakePath(*l.repo), .to = sha, .priority = SlotClass::Deploy};
  if (!info.parents.empty()) in.from = info.parents.front();
  Plan p = planner.plan(in);
  for (const auto& h : p.hosts)
    if (h.affected) s.hosts.push_back({h.name, h.newDrv});
  if (!in.from) {
    s.why = "the first commit: every host";
    return s;
  }
  int skipped = 0;
  if (rc.skipSelfRevisionOnly)
    for (const auto& h : p.hosts)
      skipped += !h.affected && h.hasReason(ReasonKind::SelfRevisionOnly);
  s.why = std::string(toString(p.mode)) + " plan against " + shortSha(*in.from) + ": " +
          std::to_string(s.hosts.size()) + " of " + std::to_string(p.hosts.size()) +
          " hosts affected";
  if (skipped) s.why += " (" + std::to_string(skipped) + " self-revision-only skipped)";
  return s;
}

nlohmann::json hostJson(const build::HostBuildResult& h) {
  nlohmann::json j = {{"name", h.host},
                      {"state", build::toString(h.state)},
                      {"drv_path", h.drvPath},
                      {"duration_ms", h.duration.count()},
                      {"message", h.message}};
  j["out_path"] = h.outPath && h.ok() ? nlohmann::json(*h.outPath) : nlohmann::json(nullptr);
  j["failed_drv"] = h.failedDrv ? nlohmann::json(*h.failedDrv) : nlohmann::json(nullptr);
  if (!h.logTail.empty()) j["log_tail"] = h.logTail;
  return j;
}

int runBuild(const BuildOpts& o) {
  Loaded l = load(o.repo, o.config, o.forge);
  const std::string sha = l.repo->resolveCommit(o.rev);
  RepoConfig rc = repoSettings(l);
  if (!o.timeout.empty())
    rc.buildTimeout = std::chrono::duration_cast<std::chrono::seconds>(parseDuration(o.timeout));
  os::PosixProcessRunner procs;
  nix::NixCli nix(procs);
  auto db = store::Database::open(l.stateDir / "switchyard.db", store::Durability::Normal);
  store::SqliteDrvCache cache(*db);
  // The daemon's plan and build stages, one run at a time.
  SystemClock clock;
  StderrLogger log;
  PrioritySlots evals(1), builds(1);
  plan::NixPlanStage planner(
      nix, {}, evals, &cache,
      l.config ? l.config->concurrency.evals : plan::ExactOptions{}.evalWorkers, log);
  std::unique_ptr<build::RemoteBuilders> remote;
  if (l.config && (!l.config->build.builders.empty() || l.config->build.maxJobs))
    remote =
        std::make_unique<build::RemoteBuilders>(procs, l.config->build, l.config->ssh, l.stateDir);
  // With a config, hosts placed on their targets (build_on, deployment.buildOnTarget) build
  // there, as in the daemon; without one there are no pinned host keys and everything builds here.
  ssh::ConnectorPtr connector;
  std::unique_ptr<build::TargetBuilds> onTarget;
  if (l.config) {
    connector = ssh::makeLibsshConnector();
    onTarget = std::make_unique<build::TargetBuilds>(procs, *connector, l.config->ssh, clock);
  }
  build::NixBuildStage builder(nix, {}, clock, builds, evals, nullptr, remote.get(),
                               onTarget.get());

  Selection sel;
  if (!o.hosts.empty()) {
    for (const auto& h : o.hosts) sel.hosts.push_back({h, std::nullopt});
    sel.why = "hosts named on the command line";
  } else {
    sel = selectHosts(l, planner, rc, sha);
  }
  std::vector<std::string> names;
  for (const auto& h : sel.hosts) names.push_back(h.host);
  std::cerr << "switchyard build " << shortSha(sha) << ": " << sel.why;
  if (!names.empty()) std::cerr << ": " << join(names, ", ");
  std::cerr << "\n";
  if (sel.hosts.empty()) {
    if (o.json)
      std::cout << nlohmann::json{{"repo", l.label},
                                  {"rev", sha},
                                  {"hosts", nlohmann::json::array()}}
                       .dump(2)
                << "\n";
    return 0;
  }

  BuildInput in;
  in.repo = &rc;
  in.gitDir = flakePath(*l.repo);
  in.sha = sha;
  in.hosts = sel.hosts;
  in.logDir =
      o.logDir.empty() ? l.stateDir / "logs" / "builds" / sha.substr(0, 12) : fs::path(o.logDir);
  in.gcRootDir = o.gcRoots.empty() ? l.stateDir / "gcroots" : fs::path(o.gcRoots);
  in.priority = SlotClass::Deploy;
  in.maxJobs = o.maxJobs;
  ConsoleListener console(std::cerr, false);
  build::TerminalProgress progress(std::cerr, ::isatty(2) == 1);
  auto built = builder.buildHosts(in, console, &progress);
  if (!built.missing.empty())
    throw UsageError("no host '" + built.missing.front() + "' in the flake at " + shortSha(sha));
  build::BuildResult& result = built.build;
  std::sort(result.hosts.begin(), result.hosts.end(),
            [](const auto& a, const auto& b) { return a.host < b.host; });
  bool ok = std::all_of(result.hosts.begin(), result.hosts.end(),
                        [](const build::HostBuildResult& h) { return h.ok(); });

  if (o.json) {
    nlohmann::json hosts = nlohmann::json::array();
    for (const auto& h : result.hosts) hosts.push_back(hostJson(h));
    nlohmann::json j{{"repo", l.label},
                     {"rev", sha},
                     {"hosts", hosts},
                     {"duration_ms", result.duration.count()},
                     {"timed_out", result.timedOut},
                     {"log_dir", in.logDir.string()},
                     {"gc_root_dir", in.gcRootDir.string()}};
    std::cout << j.dump(2) << "\n";
  } else {
    for (const auto& h : result.hosts) {
      std::cout << h.host << "  " << build::toString(h.state) << "  " << formatDuration(h.duration);
      if (h.ok() && h.outPath) std::cout << "  " << *h.outPath;
      if (!h.ok()) std::cout << "  " << h.message;
      std::cout << "\n";
      if (!h.ok() && !h.logTail.empty())
        for (const auto& line : split(h.logTail, '\n')) std::cout << "    " << line << "\n";
    }
    std::cout << "logs: " << in.logDir.string() << "\n";
  }
  return ok ? 0 : 1;
}

}  // namespace

void registerBuildCommands(CLI::App& app, CommandContext& ctx) {
  {
    auto* cmd = app.add_subcommand("hosts", "Every host with its deploy target and system");
    auto repo = std::make_shared<std::string>(".");
    auto rev = std::make_shared<std::string>("HEAD");
    auto config = std::make_shared<std::string>();
    auto forge = std::make_shared<std::string>();
    auto asJson = std::make_shared<bool>(false);
    cmd->add_option("--repo", *repo, "repository (work tree or bare, or a configured name)")
        ->capture_default_str();
    cmd->add_option("--rev", *rev, "revision")->capture_default_str();
    cmd->add_option("--config", *config, "switchyard.yaml (its hosts: targets come first)");
    cmd->add_option("--forge", *forge, "the config's forge whose repository is meant");
    cmd->add_flag("--json", *asJson, "print JSON");
    cmd->callback([&ctx, repo, rev, config, forge, asJson] {
      ctx.action = [=] { return runHosts(*repo, *rev, *config, *forge, *asJson); };
    });
  }
  {
    auto* cmd = app.add_subcommand(
        "build", "Build the hosts' system closures (default: the hosts the commit affects)");
    auto o = std::make_shared<BuildOpts>();
    cmd->add_option("--repo", o->repo, "repository (work tree or bare, or a configured name)")
        ->capture_default_str();
    cmd->add_option("--rev", o->rev, "revision to build")->required();
    cmd->add_option("HOST", o->hosts, "hosts to build (default: those the commit affects)");
    cmd->add_option("--config", o->config, "switchyard.yaml (detection, hosts, build timeout)");
    cmd->add_option("--forge", o->forge, "the config's forge whose repository is meant");
    cmd->add_option("--log-dir", o->logDir,
                    "per-host log files (default: STATE/logs/builds/<sha12>)");
    cmd->add_option("--gc-roots", o->gcRoots, "GC root per host (default: STATE/gcroots)");
    cmd->add_option("--timeout", o->timeout, "e.g. 30m (default: the config's, else 1h)");
    cmd->add_option("--max-jobs", o->maxJobs, "nix --max-jobs (default: nix.conf)");
    cmd->add_flag("--json", o->json, "print the results as JSON");
    cmd->callback([&ctx, o] { ctx.action = [o] { return runBuild(*o); }; });
  }
}

}  // namespace runner::app
