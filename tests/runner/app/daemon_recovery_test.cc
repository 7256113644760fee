// Restart recovery of an in-flight run with real processes: the built switchyard binary runs
// a deploy run from a git push (through hooks/post-receive); while the host's slow build is
// running the daemon is killed with SIGKILL. The restarted daemon marks the host interrupted,
// resumes the same run (plan and build again, safe), deploys, and the run succeeds — one run,
// two attempts, the interruption visible on it.
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>

#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/database.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/runner/app/daemon_process.h"
#include "tests/support/run.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner;

TEST_CASE("recovery: SIGKILL during a build — the restarted daemon resumes the run and deploys",
          "[integration][daemon][recovery]") {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-recover");
  lab::LabHost web1;
  web1.name = "web1";
  auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = {web1}});
  lab::TestHosts hosts({.names = {"web1"}});
  fs::path bare = tmp.path() / "infra.git";
  tests::runOk("git", {"clone", "-q", "--bare", lab.infra.path().string(), bare.string()});
  fs::copy_file(tests::sourceDir() / "hooks" / "post-receive", bare / "hooks" / "post-receive");
  os::writeFileAtomic(tmp.path() / "hook.secret", tests::kHookSecret);
  auto ssh = hosts.sshConfig();
  fs::path config = tmp.path() / "switchyard.yaml";
  os::writeFileAtomic(config,
                      "listen: 127.0.0.1:0\n"
                      "state_dir: " +
                          (tmp.path() / "state").string() + "\n" +
                          "hook_secret_file: " + (tmp.path() / "hook.secret").string() +
                          "\n"
                          "ssh:\n"
                          "  identity_file: " +
                          ssh.identityFile->string() + "\n" +
                          "  known_hosts: " + ssh.knownHosts->string() + "\n" +
                          "repos:\n"
                          "  - name: lab/infra\n"
                          "    path: " +
                          bare.string() + "\n" +
                          "    deploy_branches: [main]\n"
                          "    detection: static\n"
                          "    activation: {confirm_timeout: 5s}\n"
                          "    hosts:\n"
                          "      web1: {target: \"" +
                          hosts.host("web1").target().toString() + "\"}\n");
  fs::path log = tmp.path() / "daemon.log";
  auto daemon = std::make_unique<tests::DaemonProcess>(config, log);
  tests::runOk("git", {"-C", bare.string(), "config", "switchyard.url", daemon->url()});
  tests::runOk("git", {"-C", bare.string(), "config", "switchyard.secretFile",
                       (tmp.path() / "hook.secret").string()});
  tests::runOk("git", {"-C", bare.string(), "config", "switchyard.repo", "lab/infra"});

  // A change whose build takes a while.
  std::string after = lab.infra.updateHost("web1", [](lab::LabHost& h) { h.buildSeconds = 6; });
  auto push = tests::run(
      "git", {"-C", lab.infra.path().string(), "push", bare.string(), "HEAD:refs/heads/main"});
  REQUIRE(push.exitStatus == 0);

  auto db =
      store::Database::open(tmp.path() / "state" / "switchyard.db", store::Durability::Normal);
  auto hostState = [&] {
    auto rows = db->query(
        "SELECT stage || '/' || state FROM run_hosts WHERE run = 1 AND "
        "host = 'web1'");
    return rows.empty() ? std::string() : rows[0].text(0);
  };
  tests::waitUntil([&] { return hostState() == "build/running"; }, std::chrono::seconds(30));
  REQUIRE(hostState() == "build/running");
  std::this_thread::sleep_for(std::chrono::seconds(1));  // well inside the 6 s build
  daemon->kill(SIGKILL);
  CHECK(hostState() == "build/running");  // what the crash left behind

  daemon = std::make_unique<tests::DaemonProcess>(config, log);
  auto final = [&] {
    return db->query("SELECT state, attempts, error FROM runs WHERE id = 1").at(0);
  };
  tests::waitUntil([&] { return final().text(0) != "queued" && final().text(0) != "running"; },
                   std::chrono::seconds(120), std::chrono::milliseconds(100));
  INFO(os::readFile(log));
  auto run = final();
  CHECK(run.text(0) == "succeeded");
  CHECK(run.integer(1) == 2);
  CHECK(run.text(2) == "resumed after a runner restart");
  CHECK(hostState() == "deploy/succeeded");
  CHECK(db->query("SELECT COUNT(*) FROM runs").at(0).integer(0) == 1);
  auto out = db->query("SELECT out_path FROM run_hosts WHERE run = 1 AND host = 'web1'");
  CHECK(hosts.host("web1").profilePath() == out.at(0).text(0));
  CHECK(os::readFile(log).find("run 1 was in flight; queued again") != std::string::npos);
  CHECK(WEXITSTATUS(daemon->kill(SIGTERM)) == 0);
  (void)after;
}
