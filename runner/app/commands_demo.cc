// `switchyard demo`: the whole loop on this machine, no forge and no network needed.
//
// It creates a sample infra flake (the seed's fleet: five hosts, shared modules, a local
// nixpkgs input), five SSH test hosts with their own Nix stores, a bare repository with
// hooks/post-receive, and starts the daemon. Then it pushes twice with plain `git push`: the
// first push deploys every machine, the second changes a module two machines import, and the
// run goes plan → build → deploy for exactly those two. Progress is printed as the daemon's
// state changes; the end is a one-screen summary and the URL of the run page.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <signal.h>
#include <thread>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/commands.h"
#include "runner/app/config_loader.h"
#include "runner/app/daemon.h"
#include "runner/core/error.h"
#include "runner/core/log.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/plan_format.h"
#include "runner/store/database.h"
#include "runner/store/runs.h"

namespace fs = std::filesystem;

namespace runner::app {
namespace {

// The daemon's log goes to a file: the terminal shows the demo's own progress lines.
class FileLogger final : public Logger {
 public:
  FileLogger(const fs::path& path, const Redactor& redactor)
      : out_(path, std::ios::app), redactor_(redactor) {}
  void log(LogLevel level, std::string_view message) override {
    static constexpr const char* kNames[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    std::scoped_lock lk(mu_);
    out_ << formatUtc(std::chrono::system_clock::now()) << " " << kNames[static_cast<int>(level)]
         << " " << redactor_.apply(message) << "\n"
         << std::flush;
  }

 private:
  std::mutex mu_;
  std::ofstream out_;
  const Redactor& redactor_;
};

// Ctrl-C and SIGTERM are blocked and polled, so leaving any phase early still runs the
// destructors that stop the daemon and the test hosts.
struct Interrupted : Error {
  Interrupted() : Error("interrupted") {}
};
sigset_t stopSignals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}
bool signalled(std::chrono::milliseconds wait) {
  sigset_t s = stopSignals();
  timespec ts{static_cast<time_t>(wait.count() / 1000),
              static_cast<long>((wait.count() % 1000) * 1000000)};
  return sigtimedwait(&s, nullptr, &ts) > 0;
}

void step(const std::string& text) { std::cout << "==> " << text << "\n" << std::flush; }

std::string hostLine(const RunHostView& h) {
  std::string line = std::string(toString(h.stage)) + " " + toString(h.state);
  if (!h.summary.empty()) line += ": " + h.summary;
  return line;
}

// Follows run `id` until it is final, printing every change of the run and of its hosts.
store::RunRecord follow(store::Runs& runs, int64_t id) {
  std::map<std::string, std::string> shown;
  std::string runShown;
  bool planShown = false;
  for (;;) {
    auto run = runs.get(id);
    if (run && run->planJson && !planShown) {
      planShown = true;
      Plan p = nlohmann::json::parse(*run->planJson).get<Plan>();
      std::cout << "    plan (" << toString(p.mode) << "): " << p.affectedHosts().size() << " of "
                << p.hosts.size() << " machines affected\n";
      for (const auto& h : p.hosts)
        if (h.affected) std::cout << "      " << h.name << ": " << describeReasons(h) << "\n";
    }
    if (run) {
      std::string state = toString(run->view.state);
      if (state != runShown) {
        std::cout << "    run " << id << ": " << state << "\n";
        runShown = state;
      }
      for (const auto& h : runs.hosts(id)) {
        std::string line = hostLine(h);
        if (shown[h.host] != line) {
          std::cout << "    " << h.host
                    << std::string(h.host.size() < 10 ? 10 - h.host.size() : 1, ' ') << line
                    << "\n";
          shown[h.host] = line;
        }
      }
      std::cout << std::flush;
      if (isFinal(run->view.state)) return *run;
    }
    if (signalled(std::chrono::milliseconds(300))) throw Interrupted();
  }
}

// The run created for commit `sha` (the hook delivers asynchronously).
int64_t waitForRunOf(store::Runs& runs, const std::string& repo, const std::string& sha) {
  for (int i = 0; i < 600; ++i) {
    if (auto r = runs.latestForSha("", repo, sha))
      return r->view.id;  // a hook repository: no forge
    if (signalled(std::chrono::milliseconds(100))) throw Interrupted();
  }
  throw Error("no run appeared for " + shortSha(sha) + " within a minute (see the daemon log)");
}

void push(const fs::path& workTree, const fs::path& bare) {
  os::PosixProcessRunner procs;
  RunOptions o{.program = "git",
               .args = {"-C", workTree.string(), "push", bare.string(), "HEAD:refs/heads/main"}};
  o.timeout = std::chrono::minutes(2);
  o.onStderrLine = [](std::string_view l) {
    if (l.find("switchyard:") != std::string_view::npos) std::cout << "    " << l << "\n";
  };
  auto r = procs.run(o);
  if (!r.ok()) throw Error("git push failed: " + r.describeStatus() + ": " + r.errTail);
}

void summary(const store::RunRecord& run, store::Runs& runs, const lab::TestHosts& hosts) {
  const RunView& v = run.view;
  std::cout << "\n  run " << v.id << " (" << toString(v.kind) << ", " << toString(v.trigger) << ") "
            << shortSha(v.baseSha) << ".." << shortSha(v.sha) << ": " << toString(v.state) << "\n";
  std::cout << "  " << std::string(58, '-') << "\n";
  for (const auto& h : runs.hosts(v.id)) {
    std::cout << "  " << h.host << std::string(h.host.size() < 11 ? 11 - h.host.size() : 1, ' ')
              << hostLine(h) << "\n";
    // what the machine itself says it runs (its state, read from outside)
    if (auto active = hosts.host(h.host).activated())
      std::cout << "             now runs " << *active << "\n";
  }
  std::cout << "  " << std::string(58, '-') << "\n";
}

}  // namespace

void registerDemoCommands(CLI::App& app, CommandContext& ctx) {
  auto* cmd = app.add_subcommand(
      "demo", "Run the whole loop on this machine: sample flake, SSH test hosts, daemon, pushes");
  struct Opts {
    std::string dir;
    int port = 8470;
    std::optional<bool> serve;
  };
  auto o = std::make_shared<Opts>();
  cmd->add_option("--dir", o->dir, "where to put everything (default: a new temp dir, kept)");
  cmd->add_option("--port", o->port, "daemon port (0: any free port)")->capture_default_str();
  cmd->add_flag(
      "--serve,!--no-serve", [o](int64_t n) { o->serve = n > 0; },
      "keep the daemon running at the end until Ctrl-C (default: when stdin is a terminal)");
  cmd->callback([&ctx, o] {
    ctx.action = [o] {
      if (::geteuid() != 0)
        throw UsageError("switchyard demo needs root: its SSH test hosts use mount namespaces");
      sigset_t sigs = stopSignals();
      pthread_sigmask(SIG_BLOCK, &sigs, nullptr);  // before any thread starts
      std::unique_ptr<os::TempDir> tmp;
      fs::path root = o->dir;
      if (root.empty()) {
        tmp = std::make_unique<os::TempDir>("switchyard-demo");
        tmp->keep();
        root = tmp->path();
      }
      root = fs::absolute(root);
      fs::create_directories(root);
      os::PosixProcessRunner procs;

      step("creating a sample infra flake (five hosts, shared modules, a local nixpkgs) in " +
           root.string());
      auto lab = lab::Lab::create(procs, root / "lab");
      std::vector<std::string> names = lab.infra.hostNames();
      std::cout << "    hosts: " << join(names, ", ") << "\n";

      step("starting " + std::to_string(names.size()) +
           " SSH test hosts (own /nix, own host keys, pinned in a known_hosts file)");
      lab::TestHosts hosts({.names = names, .dir = root / "hosts"});
      for (const auto& h : hosts.hosts())
        std::cout << "    " << h.name << " at " << h.target().toString() << "\n";

      step("a bare repository to push to, with hooks/post-receive, and the daemon");
      fs::path bare = root / "infra.git";
      os::PosixProcessRunner git;
      // empty: the first push creates main, and the hook sees it
      auto init = git.run(
          {.program = "git", .args = {"init", "-q", "--bare", "-b", "main", bare.string()}});
      if (!init.ok()) throw Error("git init --bare failed: " + init.errTail);
      os::writeFileAtomic(root / "hook.secret", crypto::randomToken() + "\n",
                          fs::perms::owner_read | fs::perms::owner_write);
      os::writeFileAtomic(root / "ui.token", crypto::randomToken() + "\n",
                          fs::perms::owner_read | fs::perms::owner_write);
      // The config is written first and read back: the daemon runs with exactly the file
      // `serve --config` and `runs --config` use later.
      const SshConfig ssh = hosts.sshConfig();
      auto quoted = [](const std::string& s) {
        std::string out = "'";
        for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
        return out + "'";
      };
      std::string yaml = "# written by `switchyard demo`: the config its daemon runs with\n";
      yaml += "listen: " + quoted("127.0.0.1:" + std::to_string(o->port)) + "\n";
      yaml += "state_dir: " + quoted((root / "state").string()) + "\n";
      yaml += "hook_secret_file: " + quoted((root / "hook.secret").string()) + "\n";
      yaml += "ui_token_file: " + quoted((root / "ui.token").string()) + "\n";
      yaml += "ssh:\n";
      if (ssh.identityFile) yaml += "  identity_file: " + quoted(ssh.identityFile->string()) + "\n";
      if (ssh.knownHosts) yaml += "  known_hosts: " + quoted(ssh.knownHosts->string()) + "\n";
      yaml += "  connect_timeout: " + std::to_string(ssh.connectTimeout.count()) + "s\n";
      yaml += std::string("  use_agent: ") + (ssh.useAgent ? "true" : "false") + "\n";
      // the fleet probe reads what the lab's fake NixOS activated (no /run/current-system)
      yaml +=
          "fleet:\n  probe_interval: 5s\n  current_system: /var/lib/fake-nixos/current-system\n";
      yaml += "repos:\n";
      yaml += "  - name: lab/infra\n";
      yaml += "    path: " + quoted(bare.string()) + "\n";
      yaml += "    deploy_branches: [main]\n";
      yaml += "    detection: auto\n";
      yaml += "    rollout: {max_parallel: 5}\n";
      yaml += "    activation:\n";
      yaml += "      confirm_timeout: 10s\n";
      yaml += "      health_checks: [" + quoted("test -e /run/current-system || true") + "]\n";
      yaml += "    hosts:\n";
      for (const auto& h : hosts.hosts())
        yaml += "      " + h.name + ": {target: " + quoted(h.target().toString()) + "}\n";
      const fs::path configFile = root / "switchyard.yaml";
      os::writeFileAtomic(configFile, yaml);
      Config config = loadConfig(configFile);
      const RepoConfig& repo = config.repos.at(0);

      Redactor redactor;
      FileLogger log(root / "daemon.log", redactor);
      DaemonOptions options;
      options.log = &log;
      options.poll = std::chrono::milliseconds(100);
      std::unique_ptr<Daemon> daemon;
      try {
        daemon = std::make_unique<Daemon>(config, options);
        daemon->start();
      } catch (const Error& e) {
        if (o->port == 0) throw;
        std::cout << "    port " << o->port << " is taken (" << describe(e)
                  << "); using any port\n";
        config.listen = "127.0.0.1:0";
        daemon = std::make_unique<Daemon>(config, options);
        daemon->start();
      }
      if (daemon->port() != o->port) {  // keep the file true to what runs: the port taken
        const std::string was = "listen: " + quoted("127.0.0.1:" + std::to_string(o->port));
        yaml.replace(yaml.find(was), was.size(),
                     "listen: " + quoted("127.0.0.1:" + std::to_string(daemon->port())));
        os::writeFileAtomic(configFile, yaml);
      }
      installPostReceiveHook(bare, daemon->baseUrl(), root / "hook.secret", repo.name);
      std::cout << "    daemon at " << daemon->baseUrl()
                << " (log: " << (root / "daemon.log").string() << ")\n";

      auto db = openDatabase(daemon->config(), store::Durability::Normal);
      SystemClock clock;
      store::Runs runs(*db, clock, daemon->config().effectivePublicUrl());

      step("git push: the first deploy of every machine");
      std::string first = lab.infra.head();
      push(lab.infra.path(), bare);
      follow(runs, waitForRunOf(runs, repo.name, first));

      step("a change to modules/web.nix, which only vps-het-1 and wellsjaha import; git push");
      std::string second = lab.infra.changeModule("web");
      push(lab.infra.path(), bare);
      int64_t id = waitForRunOf(runs, repo.name, second);
      store::RunRecord run = follow(runs, id);

      summary(run, runs, hosts);
      std::cout << "  run page: " << run.view.url << "\n";
      std::cout << "  runs:     switchyard runs --config " << (root / "switchyard.yaml").string()
                << "\n";
      std::cout << "  re-run a machine from the run page with the token in "
                << (root / "ui.token").string() << "\n";

      bool serve = o->serve ? *o->serve : ::isatty(0) == 1;
      if (serve) {
        std::cout << "\nThe daemon keeps running; press Ctrl-C to stop it and the test hosts.\n"
                  << std::flush;
        while (!signalled(std::chrono::seconds(1))) {
        }
      }
      daemon->stop();
      std::cout << "stopped; everything is kept in " << root.string() << "\n";
      return run.view.state == RunState::Succeeded ? 0 : 1;
    };
  });
}

}  // namespace runner::app
