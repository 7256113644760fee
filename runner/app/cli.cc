#include "runner/app/cli.h"

#include <cstdio>
#include <iostream>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include "runner/app/commands.h"
#include "runner/core/error.h"

namespace runner::app {

int runCli(int argc, char** argv) {
  CLI::App app{"switchyard: CI/CD for NixOS infrastructure flakes", "switchyard"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "switchyard 0.1.0");
  CommandContext ctx;
  registerCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string msg = e.what();
    std::fprintf(stderr, "switchyard: error: %s (see switchyard --help)\n", msg.c_str());
    return 2;
  }
  try {
    return ctx.run();
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "switchyard: error: %s\n", describe(e).c_str());
    return exitCodeFor(e);
  }
}

}  // namespace runner::app
