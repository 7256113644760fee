// `switchyard check-config FILE`: every mistake in a config file, with line and key.
#include <iostream>

#include <CLI/CLI.hpp>

#include "runner/app/commands.h"
#include "runner/app/config_loader.h"
#include "runner/os/files.h"

namespace runner::app {

void registerConfigCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("check-config", "Validate a switchyard.yaml");
  auto file = std::make_shared<std::string>();
  cmd->add_option("FILE", *file, "the configuration file")->required();
  cmd->callback([&ctx, file] {
    ctx.action = [file] {
      std::filesystem::path p(*file);
      std::string text = os::readFile(p);
      auto check = checkConfigText(text, *file, std::filesystem::absolute(p).parent_path());
      int errors = 0, warnings = 0;
      for (const auto& i : check.issues) {
        std::cerr << formatIssue(*file, i) << "\n";
        (i.warning ? warnings : errors)++;
      }
      if (errors) {
        std::cerr << *file << ": " << errors << (errors == 1 ? " error" : " errors") << "\n";
        return 2;
      }
      // Exit 1: valid, but not usable as it stands on this machine (a file it names is
      // missing or empty) — a config written for another machine may still be right.
      std::cout << *file << ": ok (" << check.config.forges.size() << " forges, "
                << check.config.repos.size() << " repos)"
                << (warnings ? ", " + std::to_string(warnings) +
                                   (warnings == 1 ? " warning" : " warnings")
                             : std::string())
                << "\n";
      return warnings ? 1 : 0;
    };
  });
}

}  // namespace runner::app
