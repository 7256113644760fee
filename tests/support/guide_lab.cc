// guide_lab: the lab the guides in docs/ run against (tests/packaging/guides_test.sh).
//
//   guide_lab --dir DIR [--forge none|gitea|github]
//
// Starts, from the parts `switchyard demo` and the integration tests use:
//   * the sample infra flake of the seed's five hosts (runner/lab: a local fake nixpkgs, real
//     nix), a work tree at DIR/lab/infra — "your clone of the infrastructure repository";
//   * one SSH test host per machine (runner/lab/test_hosts.h: real sshd, own /nix), whose
//     deployer key is authorized on each;
//   * with --forge: a fake Gitea or GitHub API (tests/support/fake_forge.h) and the forge's
//     git side: a bare repository DIR/forge/alice/infra.git (the clone's `origin`, main already
//     pushed) whose post-receive hook delivers push webhooks the way that forge does, once the
//     guide's web-UI step (fake_forge_ui.sh) has configured a webhook.
// Then writes DIR/env (shell variables the guides read, see below) and DIR/ready, and serves
// until SIGTERM or SIGINT, when it stops everything (the directory stays).
//
// Variables in DIR/env: LAB_INFRA (the clone), MACHINES ("name=root@addr:port ..."),
// DEPLOY_KEY (the private key every machine accepts), LAB_FORGE_DIR, PORT (free for the
// guide's daemon), RUNNER_URL (http://127.0.0.1:PORT), HOOKS (this checkout's hooks/, which
// packages install as /usr/share/switchyard/hooks); with a forge also FORGE_URL (its web/API
// base), FORGE_API (what switchyard's api_url would be), FORGE_TOKEN, REPO (alice/infra) and
// CLONE_URL (the bare repository).

// The fake forges check what they receive with Catch2 assertions (REQUIRE): this program
// carries Catch's implementation, without its main.
#define CATCH_CONFIG_RUNNER

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <netinet/in.h>
#include <signal.h>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/lab/git_cli.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/process.h"
#include "tests/support/fake_forge.h"

namespace fs = std::filesystem;

namespace {

// POSIX shell single quoting.
std::string shellQuoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

void writeFile(const fs::path& p, const std::string& text) {
  std::ofstream out(p);
  out << text;
  if (!out.flush()) throw runner::Error("cannot write " + p.string());
}

// A TCP port free on 127.0.0.1 right now (for the guide's daemon).
int freePort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw runner::Error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw runner::Error("cannot find a free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

int usage(const std::string& why) {
  std::cerr << "guide_lab: " << why << "\nusage: guide_lab --dir DIR [--forge none|gitea|github]\n";
  return 2;
}

}  // namespace

namespace {

fs::path gDir;
std::string gForge = "none";
int gStatus = 1;

int runLab(fs::path dir, const std::string& forge);

}  // namespace

// The fake forges report protocol errors with Catch2 assertions, which need a running test
// case: the lab runs as the one test case of this program.
TEST_CASE("guide lab", "[guide_lab]") { gStatus = runLab(gDir, gForge); }

int main(int argc, char** argv) {
  fs::path dir;
  std::string forge = "none";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--dir" && i + 1 < argc) {
      dir = argv[++i];
    } else if (a == "--forge" && i + 1 < argc) {
      forge = argv[++i];
    } else {
      return usage("unknown argument " + a);
    }
  }
  if (dir.empty()) return usage("--dir is required");
  if (forge != "none" && forge != "gitea" && forge != "github")
    return usage("--forge must be none, gitea or github, not " + forge);
  if (::geteuid() != 0) return usage("needs root (the SSH test hosts use namespaces)");
  gDir = dir;
  gForge = forge;
  const char* args[] = {argv[0], "[guide_lab]"};
  int failed = Catch::Session().run(2, args);
  return failed != 0 ? 1 : gStatus;
}

namespace {

int runLab(fs::path dir, const std::string& forge) {
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);  // before any thread starts; waited for below

  try {
    dir = fs::absolute(dir);
    fs::create_directories(dir);
    runner::os::PosixProcessRunner procs;
    auto lab = runner::lab::Lab::create(procs, dir / "lab");
    std::vector<std::string> names = lab.infra.hostNames();
    runner::lab::TestHosts hosts({.names = names, .dir = dir / "hosts"});
    // "your clone" has your identity; the guides commit in it
    runner::lab::GitCli clone(procs, lab.infra.path());
    clone.run({"config", "user.name", "Alice"});
    clone.run({"config", "user.email", "alice@example.org"});

    std::string env = "# written by guide_lab\n";
    auto var = [&env](const std::string& name, const std::string& value) {
      env += "export " + name + "=" + shellQuoted(value) + "\n";
    };
    var("LAB_INFRA", lab.infra.path().string());
    std::string machines;
    for (const auto& h : hosts.hosts())
      machines += (machines.empty() ? "" : " ") + h.name + "=" + h.target().toString();
    var("MACHINES", machines);
    var("DEPLOY_KEY", hosts.identityFile().string());
    const fs::path forgeDir = dir / "forge";
    var("LAB_FORGE_DIR", forgeDir.string());
    const int port = freePort();
    var("PORT", std::to_string(port));
    var("RUNNER_URL", "http://127.0.0.1:" + std::to_string(port));
    var("HOOKS", std::string(SWITCHYARD_SOURCE_DIR) + "/hooks");

    std::unique_ptr<tests::FakeForgeServer> server;
    if (forge != "none") {
      std::string token;
      if (forge == "gitea") {
        auto g = std::make_unique<tests::FakeGitea>();
        token = g->token();
        server = std::move(g);
      } else {
        auto g = std::make_unique<tests::FakeGitHub>();
        token = g->token();
        server = std::move(g);
      }
      // The token's account (the guides name it switchyard-bot, like the fake) and the
      // repository's owner, with the access the guides tell people to give.
      server->setPermission("alice/infra", "switchyard-bot", forge == "gitea" ? "admin" : "write");
      server->setPermission("alice/infra", "alice", "admin");
      const fs::path bare = forgeDir / "alice" / "infra.git";
      fs::create_directories(bare.parent_path());
      runner::lab::GitCli& git = clone;
      git.run({"init", "-q", "--bare", "-b", "main", bare.string()});
      git.run({"remote", "add", "origin", bare.string()});
      git.run({"push", "-q", "origin", "HEAD:refs/heads/main"});
      // The forge's side of a push: deliveries as configured in its "web UI" (none yet).
      writeFile(bare / "hooks" / "post-receive",
                "#!/bin/sh\nexec " +
                    shellQuoted(std::string(SWITCHYARD_SOURCE_DIR) +
                                "/tests/support/fake_forge_push_hook.sh") +
                    " " + shellQuoted(forge) + " " + shellQuoted(forgeDir.string()) +
                    " alice/infra " + shellQuoted(bare.string()) + "\n");
      fs::permissions(bare / "hooks" / "post-receive",
                      fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec);
      var("FORGE_URL", server->baseUrl());
      var("FORGE_API", server->apiUrl());
      var("FORGE_TOKEN", token);
      var("REPO", "alice/infra");
      var("CLONE_URL", bare.string());
    }
    writeFile(dir / "env", env);
    writeFile(dir / "ready", "");
    std::cout << "guide_lab: ready (" << names.size() << " machines"
              << (server ? ", fake " + forge : std::string()) << ")\n"
              << std::flush;
    int sig = 0;
    sigwait(&stop, &sig);
    if (server) server->stop();
    return 0;  // the test hosts stop in their destructor
  } catch (const std::exception& e) {
    std::cerr << "guide_lab: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace
