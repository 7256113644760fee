// `switchyard serve [--config FILE]`: the daemon (daemon.h) in the foreground until SIGINT or
// SIGTERM; then it stops accepting, lets requests in progress finish and waits for the runs
// in progress (after SIGKILL, restart recovery resumes them).
#include <csignal>
#include <iostream>

#include <CLI/CLI.hpp>

#include "runner/app/commands.h"
#include "runner/app/config_loader.h"
#include "runner/app/daemon.h"
#include "runner/core/error.h"

namespace runner::app {

Config configOrDefaults(const std::string& file) {
  if (file.empty()) return defaultConfig();
  Config c = loadConfig(file);
  c.stateDir = std::filesystem::absolute(c.stateDir);
  return c;
}

void registerServeCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand("serve", "Run the daemon: webhooks, web UI, scheduler");
  struct Opts {
    std::string config, listen;
    bool intakeOnly = false;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--config", o->config, "switchyard.yaml (default: built-in defaults)");
  cmd->add_option("--listen", o->listen, "override the config's listen address (host:port)");
  cmd->add_flag("--intake-only", o->intakeOnly,
                "accept and store deliveries but start no runs (benchmarks, maintenance)");
  cmd->callback([&ctx, o] {
    ctx.action = [o] {
      Config config = configOrDefaults(o->config);
      if (!o->listen.empty()) config.listen = o->listen;
      // Block the stop signals before any thread starts, so only sigwait below sees them.
      sigset_t stopSignals;
      sigemptyset(&stopSignals);
      sigaddset(&stopSignals, SIGINT);
      sigaddset(&stopSignals, SIGTERM);
      pthread_sigmask(SIG_BLOCK, &stopSignals, nullptr);
      std::signal(SIGPIPE, SIG_IGN);
      DaemonOptions options;
      options.runScheduler = !o->intakeOnly;
      Daemon daemon(config, options);
      int port = daemon.start();
      // One line for scripts and tests that start the daemon on port 0.
      std::cout << "switchyard: listening on " << daemon.baseUrl() << " port " << port << std::endl;
      int sig = 0;
      sigwait(&stopSignals, &sig);
      std::cerr << "switchyard: " << (sig == SIGINT ? "SIGINT" : "SIGTERM")
                << ": stopping (runs in progress finish first)" << std::endl;
      daemon.stop();
      return 0;
    };
  });
}

}  // namespace runner::app
