// The ops console's actions (issue 14) against real parts: a lab flake (real Nix), a bare
// repository, two sshd test hosts and the daemon with its real stages. Two pushes deploy web1
// twice; the host page's Roll back, with a login and the CSRF token (and refused without
// them), starts a run that deploys the first system again through the locked, confirmed deploy
// path; the run records who pressed it. A Re-run leads to the new run, and a host that is not
// in the run is refused with a message instead of a failed run. Needs root (test hosts), Nix.
#include <filesystem>
#include <regex>

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

namespace {

constexpr const char* kUiToken = "roll-back-token-0123456789-abcdefgh";

struct Browser {
  std::string base;
  std::string cookie;
  http::CurlHttpClient http;
  HttpResponse get(const std::string& path) {
    HttpRequest r;
    r.url = base + path;
    if (!cookie.empty()) r.headers.emplace_back("Cookie", cookie);
    return http.send(r);
  }
  HttpResponse form(const std::string& path, const std::string& body) {
    HttpRequest r;
    r.method = "POST";
    r.url = base + path;
    r.body = body;
    r.timeout = std::chrono::seconds(30);
    r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    if (!cookie.empty()) r.headers.emplace_back("Cookie", cookie);
    return http.send(r);
  }
  void login() {
    auto ok = form("/login", std::string("token=") + kUiToken);
    std::smatch m;
    std::string set = ok.header("set-cookie");
    REQUIRE(std::regex_search(set, m, std::regex("sy_session=([A-Za-z0-9_-]+)")));
    cookie = "sy_session=" + m[1].str();
  }
  std::string csrfOn(const std::string& path) {
    auto page = get(path);
    std::smatch m;
    REQUIRE(std::regex_search(page.body, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
    return m[1];
  }
};

}  // namespace

TEST_CASE("console: roll back a host from its page, re-run to the new run, unknown hosts refused",
          "[integration][console][e2e]") {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-rollback");
  lab::LabHost web1, web2;
  web1.name = "web1";
  web1.modules = {"base", "ssh", "web"};
  web2.name = "web2";
  auto lab = lab::Lab::create(procs, tmp.path() / "lab", {.hosts = {web1, web2}});
  lab::TestHosts hosts({.names = {"web1", "web2"}});

  fs::path bare = tmp.path() / "infra.git";
  tests::runOk("git", {"clone", "-q", "--bare", lab.infra.path().string(), bare.string()});
  Config config = tests::daemonConfig(tmp.path());
  os::writeFileAtomic(tmp.path() / "ui.token", std::string(kUiToken) + "\n");
  config.uiTokenFile = tmp.path() / "ui.token";
  config.ssh = hosts.sshConfig();
  RepoConfig repo;
  repo.name = "lab/infra";
  repo.path = bare;
  repo.deployBranches = {"main"};
  repo.detection = PlanMode::Static;
  repo.activation.confirmTimeout = std::chrono::seconds(5);
  for (const auto& h : hosts.hosts()) repo.hosts.push_back({h.name, h.target().toString()});
  config.repos = {repo};

  tests::RecordingLogger log;
  app::DaemonOptions options;
  options.log = &log;
  options.poll = std::chrono::milliseconds(100);
  app::Daemon daemon(config, options);
  daemon.start();
  http::CurlHttpClient http;
  // Two pushes that change web1 (the "web" module): generations 1 and 2.
  auto push = [&](const std::string& id, int64_t run) {
    std::string before = lab.infra.head();
    std::string after = lab.infra.changeModule("web");
    tests::runOk("git", {"-C", lab.infra.path().string(), "push", "-q", bare.string(),
                         "HEAD:refs/heads/main"});
    REQUIRE(
        tests::postHook(http, daemon.baseUrl(), id, "lab/infra", "refs/heads/main", before, after)
            .status == 202);
    auto r = daemon.waitForRunState(run, std::chrono::minutes(5));
    INFO(log.all());
    REQUIRE(r);
    REQUIRE(r->view.state == RunState::Succeeded);
  };
  push("push-1", 1);
  push("push-2", 2);
  auto db = store::Database::open(app::databasePath(daemon.config()), store::Durability::Normal);
  SystemClock clock;
  store::Runs runs(*db, clock);
  const std::string first = runs.host(1, "web1")->outPath.value_or("?");
  const std::string second = runs.host(2, "web1")->outPath.value_or("?");
  REQUIRE(first != second);
  REQUIRE(hosts.host("web1").activated() == second);

  Browser b{daemon.baseUrl()};
  // Without a login: the host page says how to get the button; the form goes to the login.
  auto anon = b.get("/hosts/web1");
  CHECK(anon.body.find("Before its last deploy web1 ran <code>" + first) != std::string::npos);
  CHECK(anon.body.find("/login?next=/hosts/web1") != std::string::npos);
  CHECK(anon.body.find("action=\"/hosts/web1/rollback\"") == std::string::npos);
  auto noLogin = b.form("/hosts/web1/rollback", "repo=lab%2Finfra&confirm=yes");
  CHECK(noLogin.status == 303);
  CHECK(noLogin.header("location") == "/login?next=/hosts/web1");

  b.login();
  CHECK(b.form("/hosts/web1/rollback", "repo=lab%2Finfra&confirm=yes").status == 403);  // no CSRF
  CHECK(b.form("/hosts/web1/rollback", "repo=lab%2Finfra&confirm=yes&csrf=forged").status == 403);
  CHECK(tests::countRows(config, "SELECT COUNT(*) FROM deliveries WHERE source = 'ui'") == 0);

  const std::string csrf = b.csrfOn("/hosts/web1");
  // First it asks, saying what will run where.
  auto ask = b.form("/hosts/web1/rollback", "repo=lab%2Finfra&csrf=" + csrf);
  CHECK(ask.status == 200);
  CHECK(ask.body.find("Roll back web1 now") != std::string::npos);
  CHECK(ask.body.find(first) != std::string::npos);
  CHECK(ask.body.find("run #1") != std::string::npos);
  CHECK(tests::countRows(config, "SELECT COUNT(*) FROM deliveries WHERE source = 'ui'") == 0);

  auto go = b.form("/hosts/web1/rollback", "repo=lab%2Finfra&confirm=yes&csrf=" + csrf);
  REQUIRE(go.status == 303);
  CHECK(go.header("location") == "/runs/3");  // straight to the new run
  auto rolled = daemon.waitForRunState(3, std::chrono::minutes(5));
  INFO(log.all());
  REQUIRE(rolled);
  CHECK(rolled->view.state == RunState::Succeeded);
  CHECK(rolled->view.parentRunId == 1);
  CHECK(rolled->view.hostsFilter == std::vector<std::string>{"web1"});
  CHECK(rolled->forced);
  CHECK(hosts.host("web1").activated() == first);  // the machine runs the first system again
  CHECK(hosts.host("web1").profilePath() == first);
  CHECK(hosts.host("web1").profileGeneration() == 3);  // a new generation, as every deploy
  CHECK(runs.host(3, "web1")->state == HostState::Succeeded);
  CHECK(runs.host(3, "web2")->state != HostState::Succeeded);  // not touched
  // Recorded as a deploy like any other, and the run says what it was and who asked.
  CHECK(tests::countRows(config,
                         "SELECT COUNT(*) FROM deployments WHERE host = 'web1' AND run_id = 3 "
                         "AND result = 'succeeded' AND store_path = ?",
                         {first}) == 1);
  auto page = b.get("/runs/3");
  CHECK(page.body.find("Roll back of web1") != std::string::npos);
  CHECK(page.body.find("web login from 127.0.0.1") != std::string::npos);

  // Re-run: a host the run does not have is refused with a message (no delivery, no run)…
  const std::string runCsrf = b.csrfOn("/runs/2");
  auto unknown = b.form("/runs/2/rerun", "host=db9&csrf=" + runCsrf);
  CHECK(unknown.status == 400);
  CHECK(unknown.body.find("db9 is not a host of") != std::string::npos);
  CHECK(tests::countRows(config, "SELECT COUNT(*) FROM runs") == 3);
  // …and a re-run of one that is leads to the new run.
  auto rerun = b.form("/runs/2/rerun", "host=web2&csrf=" + runCsrf);
  REQUIRE(rerun.status == 303);
  CHECK(rerun.header("location") == "/runs/4");
  auto again = daemon.waitForRunState(4, std::chrono::minutes(5));
  REQUIRE(again);
  CHECK(again->view.hostsFilter == std::vector<std::string>{"web2"});
  CHECK_FALSE(again->forced);
  daemon.stop();
}
