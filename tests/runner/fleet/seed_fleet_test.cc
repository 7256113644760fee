// Issue 18's lab test: the seed's fleet from its own flake shape (tests/support/seed_flake.h:
// the real flake-parts and nixpkgs lib, four hosts in a Colmena hive, octavia a Clan machine
// with its targetHost and requireExplicitUpdate), five sshd test hosts, the daemon with its
// real stages, and pushes through the post-receive hook. A push deploys the right hosts;
// vps-het-1's keys (text, keyFile, keyCommand; pre- and post-activation; a non-default owner
// and mode) land as declared, at the right moment, and appear in no log and no database row;
// wellsjaha logs in as a user that is not root (Colmena's targetUser) and activates through
// Colmena's default privilegeEscalationCommand;
// octavia waits until a re-run names it; `demo` is off, recorded `unreachable`, and gets the
// push's deploy when its test host starts again; a push changing one host deploys that host
// alone. Skipped without $SWITCHYARD_NIX_LIBS.
#include <chrono>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "runner/app/config_loader.h"
#include "runner/app/daemon.h"
#include "runner/core/text.h"
#include "runner/lab/nix_text.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/static_planner.h"
#include "runner/store/deployments.h"
#include "runner/store/runs.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/lab_flake_gen.h"
#include "tests/support/run.h"
#include "tests/support/seed_flake.h"

namespace fs = std::filesystem;
using namespace runner;
using runner::lab::nixString;

namespace {

const std::string kTextSecret = "seed-text-secret-2b71e0";
const std::string kFileSecret = "seed-file-secret-9c04aa";
const std::string kCommandSecret = "seed-command-secret-5e6d13";

struct FileInfo {
  std::string owner, group, content;
  unsigned mode = 0;
};
FileInfo inspect(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  FileInfo f;
  if (auto* pw = ::getpwuid(st.st_uid)) f.owner = pw->pw_name;
  if (auto* gr = ::getgrgid(st.st_gid)) f.group = gr->gr_name;
  f.mode = st.st_mode & 07777;
  f.content = os::readFile(p);
  return f;
}

// No secret in any file under `dir` (run logs, the SQLite database and its WAL) nor in `text`.
// The repository mirrors are left out: a Colmena `text` key is in the flake by design. grep
// reads the files in another process: closing a descriptor of the database in this one would
// drop the POSIX locks of the daemon's SQLite connections.
void checkNoSecrets(const fs::path& dir, const std::string& text) {
  for (const auto& s : {kTextSecret, kFileSecret, kCommandSecret}) {
    INFO(s);
    CHECK(text.find(s) == std::string::npos);
  }
  auto found =
      tests::run("grep", {"-r", "-l", "-a", "-F", "--exclude-dir=mirrors", "-e", kTextSecret, "-e",
                          kFileSecret, "-e", kCommandSecret, dir.string()});
  INFO("grep: " << found.out << found.errTail);
  CHECK(found.exitStatus == 1);  // 1: no line matched, 0: some file holds a secret, 2: trouble
  CHECK(found.out.empty());
}

std::string state(store::Runs& runs, int64_t run, const std::string& host) {
  auto h = runs.host(run, host);
  return h ? toString(h->state) : "(no such host in the run)";
}

}  // namespace

TEST_CASE("the seed's fleet from its own flake shape: a push, keys, octavia named, demo back",
          "[integration][daemon][fleet][ssh]") {
  auto libs = tests::labgen::nixLibsFromEnv();
  if (!libs) {
    WARN(
        "SKIPPED: SWITCHYARD_NIX_LIBS does not name a directory with nixpkgs-lib/ and "
        "flake-parts/");
    return;
  }
  const auto started = std::chrono::steady_clock::now();
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-seed-fleet");
  // wellsjaha is deployed as a login user that is not root, through Colmena's default
  // privilegeEscalationCommand (sudo -H --), when sudo is there.
  const bool sudo = fs::exists("/usr/bin/sudo");
  if (!sudo) WARN("sudo is not installed: every host is deployed as root");
  lab::TestHosts hosts({.names = {"nixos", "demo", "vps-het-1", "wellsjaha", "octavia"},
                        .loginUser = sudo ? "deploy" : ""});
  const fs::path keyFile = tmp.path() / "runner-secrets" / "post-key";
  os::writeFileAtomic(keyFile, kFileSecret + "\n");

  std::vector<tests::seedlab::SeedHost> spec = tests::seedlab::seedFleet();
  for (auto& h : spec) {
    const lab::TestHost& t = hosts.host(h.name);
    if (h.clan) {  // octavia: as in the seed's blog post, plus requireExplicitUpdate
      h.deployment = "clan.core.networking.targetHost = " + nixString(t.target().toString()) +
                     ";\nclan.core.deployment.requireExplicitUpdate = true;\n";
      continue;
    }
    h.deployment = "deployment.targetHost = " + nixString(t.address) +
                   ";\ndeployment.targetPort = " + std::to_string(t.port) + ";\n";
    if (h.name == "nixos") h.deployment += "deployment.tags = [ \"workstation\" ];\n";
    if (h.name == "wellsjaha")
      h.deployment += std::string("deployment.tags = [ \"web\" ];\n") +
                      (sudo ? "deployment.targetUser = \"deploy\";\n" : "");
    if (h.name == "vps-het-1") {
      h.deployment +=
          "deployment.tags = [ \"web\" \"prod\" ];\n"
          "deployment.keys.pre-key = { text = " +
          nixString(kTextSecret) +
          "; user = \"nobody\"; group = \"nogroup\"; permissions = \"0640\"; };\n"
          "deployment.keys.post = { name = \"post-key\"; keyFile = " +
          nixString(keyFile.string()) +
          "; uploadAt = \"post-activation\"; };\n"
          "deployment.keys.cmd-key = { keyCommand = [ \"printf\" \"%s\" " +
          nixString(kCommandSecret) + " ]; destDir = \"/run/keys/app\"; };\n";
      // The activation writes down which keys were in place while it ran.
      h.extraActivation =
          "for k in pre-key post-key app/cmd-key; do "
          "if [ -e /run/keys/$k ]; then echo \"$k present\"; else echo \"$k absent\"; fi; "
          "done > /var/lib/fake-nixos/keys-seen";
    }
  }
  tests::seedlab::SeedFlake seed(procs, tmp.path() / "seed", *libs, spec);
  const fs::path bare = tmp.path() / "infra.git";
  tests::runOk("git", {"clone", "-q", "--bare", seed.repoPath().string(), bare.string()});
  os::writeFileAtomic(tmp.path() / "hook.secret", tests::kHookSecret);

  // One config file for the daemon and the CLI (`switchyard rerun`).
  const fs::path cfgFile = tmp.path() / "switchyard.yaml";
  os::writeFileAtomic(cfgFile,
                      "state_dir: " + (tmp.path() / "state").string() +
                          "\nhook_secret_file: " + (tmp.path() / "hook.secret").string() +
                          "\nssh:\n  identity_file: " + hosts.identityFile().string() +
                          "\n  known_hosts: " + hosts.knownHostsFile().string() +
                          "\n  use_agent: false\n  connect_timeout: 3s\n"
                          "fleet: {probe_interval: 1s, current_system: "
                          "/var/lib/fake-nixos/current-system}\n"
                          "repos:\n"
                          "  - name: seed/infra\n"
                          "    path: " +
                          bare.string() +
                          "\n"
                          "    rollout: {canary: ['@web'], max_parallel: 2, stop_on_failure: true, "
                          "retry_unreachable: 1h}\n"
                          "    activation: {confirm_timeout: 5s}\n"
                          // every host managed; targets, tags, keys and octavia's explicit update
                          // come from the flake
                          "    hosts:\n"
                          "      nixos: {deploy: manual}\n"
                          "      demo:\n"
                          "      vps-het-1:\n"
                          "      wellsjaha:\n"
                          "      octavia:\n");
  Config config = app::loadConfig(cfgFile);
  config.listen = "127.0.0.1:0";

  tests::RecordingLogger log;
  app::DaemonOptions options;
  options.log = &log;
  options.poll = std::chrono::milliseconds(100);
  app::Daemon daemon(config, options);
  daemon.start();
  app::installPostReceiveHook(bare, daemon.baseUrl(), tmp.path() / "hook.secret", "seed/infra");
  auto db = store::Database::open(app::databasePath(daemon.config()), store::Durability::Normal);
  SystemClock clock;
  store::Runs runs(*db, clock, daemon.config().effectivePublicUrl());
  store::Deployments deployments(*db);

  hosts.stop("demo");  // off for months (the SSD)

  // The push: modules/common.nix changes every host.
  const std::string sha = seed.changeCommon();
  auto pushed = tests::run(
      "git", {"-C", seed.repoPath().string(), "push", "-q", bare.string(), "HEAD:refs/heads/main"});
  INFO(pushed.errTail);
  REQUIRE(pushed.exitStatus == 0);
  auto run1 = daemon.waitForRunState(1, std::chrono::minutes(8));
  INFO(log.all());
  REQUIRE(run1);
  CHECK(run1->view.sha == sha);
  CHECK(state(runs, 1, "vps-het-1") == "succeeded");
  CHECK(state(runs, 1, "wellsjaha") == "succeeded");
  CHECK(state(runs, 1, "nixos") == "skipped");    // deploy: manual in the config
  CHECK(state(runs, 1, "octavia") == "skipped");  // Clan's requireExplicitUpdate
  CHECK(state(runs, 1, "demo") == "unreachable");
  CHECK(hosts.host("vps-het-1").profileGeneration() == 1);
  CHECK(hosts.host("wellsjaha").profileGeneration() == 1);
  CHECK(hosts.host("wellsjaha").activated() == hosts.host("wellsjaha").profilePath());
  if (sudo)  // sshd saw the login as the user, not as root
    CHECK(os::readFile(hosts.host("wellsjaha").stateDir() / "sshd.log").find("for deploy from") !=
          std::string::npos);
  CHECK_FALSE(hosts.host("nixos").profileGeneration());
  CHECK_FALSE(hosts.host("octavia").profileGeneration());
  CHECK_FALSE(hosts.host("demo").profileGeneration());
  const auto demoPath = runs.host(1, "demo")->outPath;
  REQUIRE(demoPath);
  CHECK(deployments.history("demo", 1).at(0).result == "unreachable");

  // vps-het-1's keys: owner, mode, content; pre-activation ones were in place during the
  // switch, the post-activation one only after it; no temporary file left behind.
  const lab::TestHost& vps = hosts.host("vps-het-1");
  CHECK(vps.activated() == vps.profilePath());
  auto pre = inspect(vps.runDir() / "keys" / "pre-key");
  CHECK(pre.owner == "nobody");
  CHECK(pre.group == "nogroup");
  CHECK(pre.mode == 0640);
  CHECK(pre.content == kTextSecret);
  auto post = inspect(vps.runDir() / "keys" / "post-key");
  CHECK(post.owner == "root");
  CHECK(post.group == "root");
  CHECK(post.mode == 0600);
  CHECK(post.content == kFileSecret + "\n");
  auto cmd = inspect(vps.runDir() / "keys" / "app" / "cmd-key");
  CHECK(cmd.owner == "root");
  CHECK(cmd.mode == 0600);
  CHECK(cmd.content == kCommandSecret);
  CHECK(os::readFile(vps.stateDir() / "keys-seen") ==
        "pre-key present\npost-key absent\napp/cmd-key present\n");
  for (const auto& dir : {vps.runDir() / "keys", vps.runDir() / "keys" / "app"})
    for (const auto& e : fs::directory_iterator(dir))
      CHECK_FALSE(startsWith(e.path().filename().string(), "."));
  // no other host got keys
  for (const char* other : {"wellsjaha", "nixos", "octavia", "demo"})
    CHECK_FALSE(fs::exists(hosts.host(other).runDir() / "keys"));
  checkNoSecrets(tmp.path() / "state", log.all());

  // octavia is left alone until a person names it: a re-run of the push naming octavia.
  auto rerun = tests::switchyard({"rerun", "1", "octavia", "--config", cfgFile.string()});
  INFO(rerun.out << rerun.errTail);
  REQUIRE(rerun.exitStatus == 0);
  auto run2 = daemon.waitForRunState(2, std::chrono::minutes(5));
  REQUIRE(run2);
  CHECK(run2->view.hostsFilter == std::vector<std::string>{"octavia"});
  CHECK(state(runs, 2, "octavia") == "succeeded");
  CHECK(hosts.host("octavia").profileGeneration() == 1);
  CHECK(hosts.host("octavia").profilePath() == runs.host(1, "octavia")->outPath);
  CHECK_FALSE(hosts.host("nixos").profileGeneration());  // still manual, not named

  // demo's test host starts again: the probe reaches it and the push is re-run for demo.
  hosts.start("demo");
  auto run3 = daemon.waitForRunState(3, std::chrono::minutes(5));
  REQUIRE(run3);
  CHECK(run3->view.kind == RunKind::Rerun);
  CHECK(run3->view.sha == sha);
  CHECK(run3->view.parentRunId == 1);
  CHECK(run3->view.hostsFilter == std::vector<std::string>{"demo"});
  CHECK(state(runs, 3, "demo") == "succeeded");
  CHECK(hosts.host("demo").profilePath() == *demoPath);
  CHECK(deployments.history("demo", 1).at(0).result == "succeeded");
  // The keys stayed where they were (a re-run of other hosts uploads none).
  CHECK(inspect(vps.runDir() / "keys" / "pre-key").content == kTextSecret);

  // A push that changes only wellsjaha deploys only wellsjaha: static planning alone sees
  // makeHive's nodes as hosts, each with its own files (issue 12), so Nix has nothing to
  // narrow; no key is sent again.
  const auto keyTime = fs::last_write_time(vps.runDir() / "keys" / "pre-key");
  const std::string one = seed.changeHost("wellsjaha");
  {
    auto repo = git::Repository::open(seed.repoPath().string());
    Plan st = plan::planStatic(*repo, sha, one);
    CHECK(st.discoveryError.empty());
    CHECK(st.affectedHosts() == std::vector<std::string>{"wellsjaha"});
    for (const auto& h : st.hosts) {
      INFO(h.name);
      CHECK_FALSE(h.hasReason(ReasonKind::Dynamic));
    }
  }
  pushed = tests::run(
      "git", {"-C", seed.repoPath().string(), "push", "-q", bare.string(), "HEAD:refs/heads/main"});
  REQUIRE(pushed.exitStatus == 0);
  auto run4 = daemon.waitForRunState(4, std::chrono::minutes(5));
  REQUIRE(run4);
  CHECK(run4->view.sha == one);
  CHECK(run4->view.state == RunState::Succeeded);
  CHECK(state(runs, 4, "wellsjaha") == "succeeded");
  for (const char* other : {"vps-het-1", "demo", "nixos", "octavia"}) {
    INFO(other);
    CHECK(state(runs, 4, other) == "not-affected");
  }
  CHECK(hosts.host("wellsjaha").profileGeneration() == 2);
  CHECK(hosts.host("vps-het-1").profileGeneration() == 1);
  CHECK(hosts.host("demo").profileGeneration() == 1);
  CHECK(fs::last_write_time(vps.runDir() / "keys" / "pre-key") == keyTime);

  daemon.stop();
  checkNoSecrets(tmp.path() / "state", log.all());
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started)
          .count();
  WARN("seed fleet lab: " << seconds << " s from the first host's start to the last check");
}
