#include "runner/app/commands.h"

#include <CLI/CLI.hpp>

namespace runner::app {

void registerCommands(CLI::App& app, CommandContext& ctx) {
  registerLockCommands(app, ctx);
  registerConfigCommands(app, ctx);
  registerParseCommands(app, ctx);
  registerPlanCommands(app, ctx);
  registerDemoCommands(app, ctx);
  registerServeCommands(app, ctx);
  registerRunsCommands(app, ctx);
  registerDeployCommands(app, ctx);
  registerBuildCommands(app, ctx);
  registerInstallCommands(app, ctx);
}

}  // namespace runner::app
