// Subcommand registration. Each command adds its options to the CLI11 app and, when chosen,
// stores the action to run in the context; `runCli` runs it inside the error boundary.
#pragma once

#include <filesystem>
#include <functional>

namespace CLI {
class App;
}

namespace runner::app {

struct CommandContext {
  std::function<int()> action;
  int run() { return action ? action() : 2; }
};

void registerCommands(CLI::App& app, CommandContext& ctx);

// Where CLI commands without a config keep their cache (drvPaths): $XDG_CACHE_HOME/switchyard
// or ~/.cache/switchyard.
std::filesystem::path cacheDir();

// One function per command family (commands_*.cc).
void registerLockCommands(CLI::App& app, CommandContext& ctx);
void registerConfigCommands(CLI::App& app, CommandContext& ctx);
void registerParseCommands(CLI::App& app, CommandContext& ctx);
void registerPlanCommands(CLI::App& app, CommandContext& ctx);
void registerDemoCommands(CLI::App& app, CommandContext& ctx);
void registerServeCommands(CLI::App& app, CommandContext& ctx);  // serve
void registerRunsCommands(CLI::App& app, CommandContext& ctx);   // runs, rerun, logs
void registerDeployCommands(CLI::App& app, CommandContext& ctx);
void registerBuildCommands(CLI::App& app, CommandContext& ctx);    // hosts, build
void registerInstallCommands(CLI::App& app, CommandContext& ctx);  // github-app-manifest, manpage

}  // namespace runner::app
