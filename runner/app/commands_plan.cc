// `switchyard plan`: which hosts a change affects and why (DESIGN.md §3, §5).
#include <filesystem>
#include <iostream>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/commands.h"
#include "runner/app/config_loader.h"
#include "runner/core/error.h"
#include "runner/git/repository.h"
#include "runner/plan/plan_format.h"
#include "runner/plan/static_planner.h"

namespace runner::app {

void registerPlanCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("plan", "Which hosts a change affects, and why");
  struct Opts {
    std::string repo = ".";
    std::string from, to, mode = "static", config;
    bool json = false, markdown = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--repo", o->repo, "repository (work tree or bare)")->capture_default_str();
  cmd->add_option("--from", o->from, "old revision")->required();
  cmd->add_option("--to", o->to, "new revision")->required();
  cmd->add_option("--mode", o->mode, "static | exact | auto")
      ->check(CLI::IsMember({"static", "exact", "auto"}))
      ->capture_default_str();
  cmd->add_option("--config", o->config, "switchyard.yaml (hosts: overrides discovery)");
  auto* j = cmd->add_flag("--json", o->json, "print the plan as JSON");
  cmd->add_flag("--markdown", o->markdown, "print the plan as a pull request comment")->excludes(j);
  cmd->callback([&ctx, o] {
    ctx.action = [o] {
      auto repo = git::Repository::open(o->repo);
      plan::StaticOptions opts;
      opts.repoLabel = std::filesystem::absolute(o->repo).lexically_normal().string();
      if (!o->config.empty()) {
        Config config = loadConfig(o->config);
        if (const RepoConfig* rc = config.repoFor(o->repo)) {
          opts.hosts = rc->hosts;
          opts.repoLabel = rc->name;
        }
      }
      std::string from = repo->resolveCommit(o->from);
      std::string to = repo->resolveCommit(o->to);
      Plan p = plan::planStatic(*repo, from, to, opts);
      if (o->json)
        std::cout << nlohmann::json(p).dump(2) << "\n";
      else if (o->markdown)
        std::cout << plan::formatPlanMarkdown(p);
      else
        std::cout << plan::formatPlanTable(p);
      return 0;
    };
  });
}

}  // namespace runner::app
