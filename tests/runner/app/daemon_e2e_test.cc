// End to end, as a user without a forge would run it: a lab infra flake (real Nix), a bare
// repository with hooks/post-receive installed, two sshd test hosts, and the daemon with its
// real stages. A plain `git push` to the bare repository reaches the daemon through the hook;
// the run plans (auto: static + Nix), builds the affected host and deploys it over SSH; the
// CLI (`runs --json`, `logs`) and the web pages show it. Needs root (test hosts), Nix, curl,
// openssl.
#include <filesystem>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/log.h"
#include "runner/http/curl_client.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/store/runs.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner;

TEST_CASE("e2e: a git push through hooks/post-receive plans, builds and deploys the affected host",
          "[integration][daemon][e2e]") {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-e2e");
  lab::LabHost web1, web2;
  web1.name = "web1";
  web1.modules = {"base", "ssh", "web"};
  web2.name = "web2";
  auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = {web1, web2}});
  lab::TestHosts hosts({.names = {"web1", "web2"}});

  // The bare repository people push to, with the hook.
  fs::path bare = tmp.path() / "infra.git";
  tests::runOk("git", {"clone", "-q", "--bare", lab.infra.path().string(), bare.string()});
  os::writeFileAtomic(tmp.path() / "hook.secret", tests::kHookSecret);

  Config config;
  config.listen = "127.0.0.1:0";
  config.stateDir = tmp.path() / "state";
  config.hookSecretFile = tmp.path() / "hook.secret";
  config.ssh = hosts.sshConfig();
  RepoConfig repo;
  repo.name = "lab/infra";
  repo.path = bare;
  repo.deployBranches = {"main"};
  repo.detection = PlanMode::Auto;
  repo.activation.confirmTimeout = std::chrono::seconds(5);
  for (const auto& h : hosts.hosts()) repo.hosts.push_back({h.name, h.target().toString()});
  config.repos = {repo};

  tests::RecordingLogger log;
  app::DaemonOptions options;
  options.log = &log;
  options.poll = std::chrono::milliseconds(100);
  app::Daemon daemon(config, options);
  daemon.start();
  // The hook as `switchyard demo` installs it: from the binary, pointed at the daemon.
  app::installPostReceiveHook(bare, daemon.baseUrl(), tmp.path() / "hook.secret", "lab/infra");

  // A change to the "web" module: only web1 imports it.
  std::string before = lab.infra.head();
  std::string after = lab.infra.changeModule("web");
  // The pushing clone has hooks/pre-push: it prints the plan of what is pushed.
  fs::path prePush = lab.infra.path() / ".git" / "hooks" / "pre-push";
  fs::create_directories(prePush.parent_path());
  fs::copy_file(tests::sourceDir() / "hooks" / "pre-push", prePush);
  auto push = tests::run(
      "git", {"-C", lab.infra.path().string(), "push", bare.string(), "HEAD:refs/heads/main"}, {},
      {{"SWITCHYARD", tests::switchyardBinary().string()}});
  INFO(push.errTail);
  REQUIRE(push.exitStatus == 0);
  CHECK(push.errTail.find("switchyard: refs/heads/main: machines this push touches (static plan " +
                          before.substr(0, 8) + ".." + after.substr(0, 8) + "):") !=
        std::string::npos);
  CHECK(push.errTail.find("switchyard: refs/heads/main " + before.substr(0, 8) + ".." +
                          after.substr(0, 8) + ": queued at") != std::string::npos);

  auto run = daemon.waitForRunState(1, std::chrono::minutes(5));
  INFO(log.all());
  REQUIRE(run);
  CHECK(run->view.state == RunState::Succeeded);
  CHECK(run->view.kind == RunKind::Deploy);
  CHECK(run->view.trigger == RunTrigger::Hook);
  CHECK(run->view.sha == after);
  CHECK(run->view.baseSha == before);

  auto db = store::Database::open(app::databasePath(daemon.config()), store::Durability::Normal);
  SystemClock clock;
  store::Runs runs(*db, clock, daemon.config().effectivePublicUrl());
  auto web1Row = runs.host(1, "web1");
  auto web2Row = runs.host(1, "web2");
  REQUIRE(web1Row);
  REQUIRE(web2Row);
  CHECK(toString(web1Row->stage) == std::string("deploy"));
  CHECK(toString(web1Row->state) == std::string("succeeded"));
  CHECK(toString(web2Row->state) == std::string("not-affected"));
  REQUIRE(web1Row->outPath);
  CHECK(hosts.host("web1").profilePath() == *web1Row->outPath);
  CHECK(hosts.host("web1").activated() == *web1Row->outPath);
  CHECK_FALSE(hosts.host("web2").profilePath());  // untouched

  // The CLI against the daemon's state, and the web pages.
  fs::path cfgFile = tmp.path() / "switchyard.yaml";
  os::writeFileAtomic(cfgFile, "state_dir: " + config.stateDir.string() + "\n");
  auto list = tests::switchyard({"runs", "--json", "--config", cfgFile.string()});
  REQUIRE(list.exitStatus == 0);
  auto j = nlohmann::json::parse(list.out);
  REQUIRE(j.size() == 1);
  CHECK(j[0]["id"] == 1);
  CHECK(j[0]["kind"] == "deploy");
  CHECK(j[0]["trigger"] == "hook");
  CHECK(j[0]["state"] == "succeeded");
  CHECK(j[0]["hosts"].size() == 2);
  auto logs = tests::switchyard({"logs", "1", "web1", "--config", cfgFile.string()});
  CHECK(logs.exitStatus == 0);
  CHECK(logs.out.find("# deploy succeeded") != std::string::npos);
  http::CurlHttpClient http;
  HttpRequest get;
  get.url = daemon.baseUrl() + "/runs/1";
  auto page = http.send(get);
  CHECK(page.status == 200);
  CHECK(page.body.find("web1") != std::string::npos);
  CHECK(page.body.find("succeeded") != std::string::npos);
  get.url = daemon.baseUrl() + "/runs/1/logs/@plan";
  CHECK(http.send(get).body.find("web1") != std::string::npos);
  daemon.stop();
}
