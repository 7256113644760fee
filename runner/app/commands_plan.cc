// `switchyard plan`: which hosts a change affects and why (DESIGN.md §3, §5).
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/commands.h"
#include "runner/app/config_loader.h"
#include "runner/app/github_actions.h"
#include "runner/app/repo_choice.h"
#include "runner/core/error.h"
#include "runner/git/repository.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/process.h"
#include "runner/plan/exact_planner.h"
#include "runner/plan/plan_format.h"
#include "runner/plan/static_planner.h"
#include "runner/report/comment.h"
#include "runner/report/templates.h"
#include "runner/store/database.h"
#include "runner/store/drv_cache.h"

namespace runner::app {

std::filesystem::path cacheDir() {
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  if (xdg && *xdg) return std::filesystem::path(xdg) / "switchyard";
  const char* home = std::getenv("HOME");
  return std::filesystem::path(home && *home ? home : "/tmp") / ".cache" / "switchyard";
}

// What the pull request comment shows for this plan (before anything is built): the same
// templates and model as runner/report uses on the forge.
std::string planComment(const Plan& p) {
  RunView run;
  run.repo = p.repo;
  run.sha = p.to;
  run.baseSha = p.from;
  run.kind = RunKind::Check;
  auto templates = report::Templates::builtIn();
  report::CommentRenderer renderer(templates, nullptr);
  return renderer.render(report::commentModel(run, &p, {}));
}

void registerPlanCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("plan", "Which hosts a change affects, and why");
  struct Opts {
    std::string repo = ".";
    std::string from, to, mode = "auto", config, format, forge;
    bool json = false, markdown = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--repo", o->repo, "repository (work tree or bare, or a configured name)")
      ->capture_default_str();
  cmd->add_option("--from", o->from, "old revision")->required();
  cmd->add_option("--to", o->to, "new revision")->required();
  cmd->add_option("--mode", o->mode, "static | exact | auto")
      ->check(CLI::IsMember({"static", "exact", "auto"}))
      ->capture_default_str();
  cmd->add_option("--config", o->config, "switchyard.yaml (hosts: overrides discovery)");
  cmd->add_option("--forge", o->forge, "the config's forge whose repository is meant");
  auto* j = cmd->add_flag("--json", o->json, "print the plan as JSON");
  auto* md = cmd->add_flag("--markdown", o->markdown, "print the plan as a pull request comment")
                 ->excludes(j);
  cmd->add_option("--format", o->format,
                  "table | json | markdown | github-actions (hosts to $GITHUB_OUTPUT, the plan "
                  "to $GITHUB_STEP_SUMMARY, warnings as workflow commands)")
      ->check(CLI::IsMember({"table", "json", "markdown", "github-actions"}))
      ->excludes(j)
      ->excludes(md);
  cmd->callback([&ctx, o] {
    ctx.action = [o] {
      if (o->format == "json") o->json = true;
      if (o->format == "markdown") o->markdown = true;
      // checked before planning: a step without GITHUB_OUTPUT should not wait for Nix first
      std::optional<GithubActionsTargets> actions;
      if (o->format == "github-actions") actions = githubActionsTargetsFromEnv();
      std::optional<Config> config;
      if (!o->config.empty()) config = loadConfig(o->config);
      const RepoChoice choice = chooseRepo(config ? &*config : nullptr, o->repo, o->forge);
      auto repo = git::Repository::open(choice.gitDir);
      plan::StaticOptions opts;
      opts.repoLabel = std::filesystem::absolute(choice.gitDir).lexically_normal().string();
      if (const RepoConfig* rc = choice.repo) {
        opts.hosts = rc->hosts;
        opts.repoLabel = rc->name;
      }
      std::string from = repo->resolveCommit(o->from);
      std::string to = repo->resolveCommit(o->to);
      Plan p;
      if (o->mode == "static") {
        p = plan::planStatic(*repo, from, to, opts);
      } else {
        // Nix's answers are cached in the state directory (or the user's cache directory),
        // so planning the same trees again evaluates nothing.
        std::filesystem::path stateDir = config ? config->stateDir : cacheDir();
        auto db = store::Database::open(stateDir / "switchyard.db", store::Durability::Normal);
        store::SqliteDrvCache cache(*db);
        os::PosixProcessRunner procs;
        nix::NixCli nix(procs);
        plan::ExactOptions eo;
        eo.repoLabel = opts.repoLabel;
        eo.hosts = opts.hosts;
        eo.cache = &cache;
        if (config) eo.evalWorkers = config->concurrency.evals;
        if (o->mode == "exact") {
          p = plan::planExact(*repo, nix, from, to, eo);
        } else {
          p = plan::planAuto(*repo, nix, from, to, opts, eo);
        }
        if (choice.repo && choice.repo->skipSelfRevisionOnly) plan::dropSelfRevisionOnly(p);
      }
      if (actions) {
        std::cout << plan::formatPlanTable(p);  // the step's log
        writeGithubActions(p, planComment(p), *actions, std::cout);
      } else if (o->json)
        std::cout << nlohmann::json(p).dump(2) << "\n";
      else if (o->markdown)
        std::cout << planComment(p);
      else
        std::cout << plan::formatPlanTable(p);
      return 0;
    };
  });
}

}  // namespace runner::app
