// `switchyard demo`: the whole loop on this machine, no forge and no network needed.
// Creates a sample infra flake (the seed's fleet: five hosts, shared modules, a local nixpkgs
// input), commits a change to a shared module, and shows what Switchyard makes of it.
#include <iostream>

#include <CLI/CLI.hpp>

#include "runner/app/commands.h"
#include "runner/app/lab/lab.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/exact_planner.h"
#include "runner/plan/plan_format.h"
#include "runner/plan/static_planner.h"

namespace runner::app {

void registerDemoCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("demo", "Run the loop on a sample infra repository");
  auto dir = std::make_shared<std::string>();
  cmd->add_option("--dir", *dir, "where to create the sample repositories (default: a temp dir)");
  cmd->callback([&ctx, dir] {
    ctx.action = [dir] {
      std::unique_ptr<os::TempDir> tmp;
      std::filesystem::path root = *dir;
      if (root.empty()) {
        tmp = std::make_unique<os::TempDir>("switchyard-demo");
        tmp->keep();
        root = tmp->path();
      }
      os::PosixProcessRunner procs;
      std::cout << "==> creating a sample infra flake in " << root.string() << "\n";
      auto lab = lab::Lab::create(procs, root);
      std::string before = lab.infra.head();
      std::cout << "    hosts: " << join(lab.infra.hostNames(), ", ") << "\n";
      std::cout
          << "==> committing a change to modules/web.nix (imported by vps-het-1, wellsjaha)\n";
      std::string after = lab.infra.changeModule("web");
      auto repo = git::Repository::open(lab.infra.path());
      plan::StaticOptions so;
      so.repoLabel = lab.infra.path().string();
      Plan staticPlan = plan::planStatic(*repo, before, after, so);
      std::cout << "==> static plan (git objects only, no evaluation):\n"
                << plan::formatPlanTable(staticPlan);
      nix::NixCli nix(procs);
      plan::ExactOptions eo;
      eo.repoLabel = so.repoLabel;
      Plan autoPlan = plan::planAuto(*repo, nix, staticPlan, eo);
      std::cout << "==> auto plan (Nix confirms only the hosts static marked):\n"
                << plan::formatPlanTable(autoPlan);
      std::cout << "==> the same as a pull request comment:\n"
                << plan::formatPlanMarkdown(autoPlan);
      std::cout << "\nrepositories kept in " << root.string() << "\n";
      return 0;
    };
  });
}

}  // namespace runner::app
