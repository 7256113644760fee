// The web UI and the CLI against a daemon's state: run pages, the login token and the CSRF
// token guarding the Re-run button (no session, wrong token, missing/wrong CSRF, open
// redirect), the JSON API, log streaming while a run grows its log, `switchyard rerun`
// (a "cli" delivery the daemon turns into a run) and `switchyard logs --follow`.
#include <arpa/inet.h>
#include <filesystem>
#include <fstream>
#include <functional>
#include <netinet/in.h>
#include <poll.h>
#include <regex>
#include <sys/socket.h>
#include <thread>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/log.h"
#include "runner/git/repository.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"
#include "runner/store/runs.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/run.h"
#include "tests/support/temp_git_repo.h"

namespace fs = std::filesystem;
using namespace runner;

namespace {

constexpr const char* kUiToken = "let-me-in-0123456789-abcdefghijkl";  // 33 bytes

struct WebFixture {
  explicit WebFixture(bool withToken = true, bool scheduler = false,
                      const std::function<void(Config&)>& edit = {}) {
    config = tests::daemonConfig(tmp.path());
    if (withToken) {
      os::writeFileAtomic(tmp.path() / "ui.token", std::string(kUiToken) + "\n");
      config.uiTokenFile = tmp.path() / "ui.token";
    }
    if (edit) edit(config);
    RepoConfig r;
    r.name = "alice/infra";
    r.path = upstream.path();
    config.repos = {r};
    // A finished deploy run with two hosts, as the scheduler leaves it.
    {
      auto db = store::Database::open(app::databasePath(config));
      store::Runs runs(*db, clock);
      store::NewRun n;
      n.repo = "alice/infra";
      n.kind = RunKind::Deploy;
      n.sha = std::string(40, 'a');
      n.ref = "refs/heads/main";
      runs.create(n);
      RunHostView h;
      h.host = "web1";
      h.stage = Stage::Deploy;
      h.state = HostState::Succeeded;
      h.summary = "deployed <generation 3>";
      runs.putHost(1, h);
      h.host = "db1";
      h.stage = Stage::Plan;
      h.state = HostState::NotAffected;
      h.summary = "not affected";
      runs.putHost(1, h);
      runs.setState(1, RunState::Succeeded);
    }
    app::DaemonOptions o;
    o.log = &log;
    o.runScheduler = scheduler;
    o.poll = std::chrono::milliseconds(50);
    daemon = std::make_unique<app::Daemon>(config, o);
    daemon->start();
    url = daemon->baseUrl();
  }
  HttpResponse get(const std::string& path, const std::string& cookie = "") {
    HttpRequest r;
    r.url = url + path;
    if (!cookie.empty()) r.headers.emplace_back("Cookie", cookie);
    return http.send(r);
  }
  HttpResponse form(const std::string& path, const std::string& body,
                    const std::string& cookie = "") {
    HttpRequest r;
    r.method = "POST";
    r.url = url + path;
    r.body = body;
    r.headers.emplace_back("Content-Type", "application/x-www-form-urlencoded");
    if (!cookie.empty()) r.headers.emplace_back("Cookie", cookie);
    return http.send(r);
  }

  os::TempDir tmp{"sy-web"};
  tests::TempGitRepo upstream;
  SystemClock clock;
  NullLogger log;
  Config config;
  std::unique_ptr<app::Daemon> daemon;
  std::string url;
  http::CurlHttpClient http;
};

// A GET whose answer is read as it arrives (the HTTP client returns whole answers only), so a
// test can tell a streamed log from one sent at the end.
class StreamingGet {
 public:
  StreamingGet(const std::string& baseUrl, const std::string& path) {
    const std::string host = baseUrl.substr(baseUrl.find("//") + 2);  // 127.0.0.1:port
    const int port = std::stoi(host.substr(host.rfind(':') + 1));
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd_ >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    REQUIRE(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    const std::string req =
        "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n";
    REQUIRE(::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  }
  ~StreamingGet() { ::close(fd_); }
  StreamingGet(const StreamingGet&) = delete;
  StreamingGet& operator=(const StreamingGet&) = delete;

  // Reads until what arrived contains `text` (true), or the server closes or `limit` passes.
  bool until(std::string_view text, std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (got_.find(text) == std::string::npos) {
      if (!readSome(end)) return false;
    }
    return true;
  }
  // Reads until the server closes the connection (true) or `limit` passes.
  bool untilClosed(std::chrono::milliseconds limit = std::chrono::seconds(30)) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!closed_)
      if (!readSome(end)) return closed_;
    return true;
  }
  const std::string& got() const { return got_; }

 private:
  bool readSome(std::chrono::steady_clock::time_point end) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        end - std::chrono::steady_clock::now());
    if (closed_ || left.count() <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    got_.append(buf, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string got_;
  bool closed_ = false;
};

std::string sessionCookie(const HttpResponse& r) {
  std::smatch m;
  std::string set = r.header("set-cookie");
  REQUIRE(std::regex_search(set, m, std::regex("sy_session=([A-Za-z0-9_-]+)")));
  return "sy_session=" + m[1].str();
}

}  // namespace

TEST_CASE("web: the Re-run button needs a login and the session's CSRF token",
          "[integration][web]") {
  WebFixture f;
  auto anon = f.get("/runs/1");
  CHECK(anon.status == 200);
  CHECK(anon.body.find("deployed &lt;generation 3&gt;") != std::string::npos);  // escaped
  CHECK(anon.body.find("/login?next=/runs/1") != std::string::npos);
  CHECK(anon.body.find("Re-run all hosts</button>") == std::string::npos);

  auto noSession = f.form("/runs/1/rerun", "host=web1");
  CHECK(noSession.status == 303);
  CHECK(noSession.header("location") == "/login?next=/runs/1");

  auto wrong = f.form("/login", "token=guess&next=%2Fruns%2F1");
  CHECK(wrong.status == 403);
  CHECK(wrong.header("set-cookie").empty());

  auto ok = f.form("/login", std::string("token=") + kUiToken + "&next=%2Fruns%2F1");
  REQUIRE(ok.status == 303);
  CHECK(ok.header("location") == "/runs/1");
  CHECK(ok.header("set-cookie").find("HttpOnly; SameSite=Strict") != std::string::npos);
  std::string cookie = sessionCookie(ok);

  auto page = f.get("/runs/1", cookie);
  std::smatch m;
  REQUIRE(std::regex_search(page.body, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
  std::string csrf = m[1];
  CHECK(page.body.find("Re-run all hosts</button>") != std::string::npos);
  CHECK(page.body.find("Re-run web1</button>") != std::string::npos);
  // the header says who is logged in and offers to log out; without a session, to log in
  CHECK(page.body.find("logged in</span> <button type=\"submit\">Log out</button>") !=
        std::string::npos);
  CHECK(anon.body.find("href=\"/login?next=/runs/1\">Log in</a>") != std::string::npos);
  CHECK(anon.body.find("Log out") == std::string::npos);

  CHECK(f.form("/runs/1/rerun", "host=web1", cookie).status == 403);
  CHECK(f.form("/runs/1/rerun", "host=web1&csrf=nope", cookie).status == 403);
  CHECK(f.form("/runs/1/rerun", "host=web1&csrf=" + csrf, "sy_session=forged").status == 303);
  CHECK(tests::countRows(f.config, "SELECT COUNT(*) FROM deliveries") == 0);

  auto rerun = f.form("/runs/1/rerun", "host=web1&csrf=" + csrf, cookie);
  REQUIRE(rerun.status == 303);
  // no scheduler here: the request waits, and its page says so until a run is made of it
  REQUIRE(std::regex_match(rerun.header("location"), std::regex("/deliveries/[0-9]+")));
  auto waiting = f.get(rerun.header("location"));
  CHECK(waiting.status == 200);
  CHECK(waiting.body.find("Queued") != std::string::npos);
  auto db = store::Database::open(app::databasePath(f.config), store::Durability::Normal);
  auto rows = db->query("SELECT source, event_name, event FROM deliveries");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].text(0) == "ui");
  CHECK(rows[0].text(1) == "rerun");
  auto e = nlohmann::json::parse(rows[0].text(2)).get<Event>();
  CHECK(e.kind == EventKind::Rerun);
  CHECK(e.runId == 1);
  CHECK(e.hosts == std::vector<std::string>{"web1"});

  // No open redirects after a login.
  auto evil = f.form("/login", std::string("token=") + kUiToken + "&next=%2F%2Fevil.example%2F");
  CHECK(evil.header("location") == "/");
  // a tab (or newline) a browser drops would turn "/\t/evil" into "//evil"
  auto tab = f.form("/login", std::string("token=") + kUiToken + "&next=%2F%09%2Fevil.example");
  CHECK(tab.header("location") == "/");
}

TEST_CASE("web: wrong tokens are rate-limited, sessions are Secure under https",
          "[integration][web]") {
  WebFixture f(true, false, [](Config& c) { c.publicUrl = "https://ci.example.org"; });
  for (int i = 0; i < 5; ++i)
    CHECK(f.form("/login", "token=guess" + std::to_string(i)).status == 403);
  // the right token does not help while the client is over its limit
  auto limited = f.form("/login", std::string("token=") + kUiToken);
  CHECK(limited.status == 429);
  CHECK(limited.header("retry-after") == "60");
  CHECK(limited.header("set-cookie").empty());
}

TEST_CASE("web: the session cookie is Secure when public_url is https", "[integration][web]") {
  WebFixture f(true, false, [](Config& c) { c.publicUrl = "https://ci.example.org"; });
  auto ok = f.form("/login", std::string("token=") + kUiToken);
  REQUIRE(ok.status == 303);
  CHECK(ok.header("set-cookie").find("; Secure") != std::string::npos);
  CHECK(ok.header("set-cookie").find("Max-Age=") != std::string::npos);
  WebFixture plain;
  CHECK(
      plain.form("/login", std::string("token=") + kUiToken).header("set-cookie").find("Secure") ==
      std::string::npos);
}

TEST_CASE("web: a short UI token is refused at start", "[integration][web]") {
  os::TempDir tmp("sy-web-short");
  Config config = tests::daemonConfig(tmp.path());
  os::writeFileAtomic(tmp.path() / "ui.token", "let-me-in\n");
  config.uiTokenFile = tmp.path() / "ui.token";
  NullLogger log;
  app::DaemonOptions o;
  o.log = &log;
  o.runScheduler = false;
  try {
    app::Daemon d(config, o);
    FAIL("a 9-byte UI token was accepted");
  } catch (const ConfigError& e) {
    CHECK(std::string(e.what()).find("the UI token is 9 bytes; use at least 32") !=
          std::string::npos);
  }
}

TEST_CASE("web: a Host that is not this runner's name is refused (DNS rebinding)",
          "[integration][web]") {
  WebFixture f(true, false, [](Config& c) { c.publicUrl = "https://ci.example.org"; });
  auto withHost = [&](const std::string& path, const std::string& host) {
    HttpRequest r;
    r.url = f.url + path;
    r.headers.emplace_back("Host", host);
    return f.http.send(r);
  };
  CHECK(withHost("/runs/1", "evil.example").status == 421);
  CHECK(withHost("/api/runs", "rebind.attacker.example:8470").status == 421);
  CHECK(withHost("/runs/1", "ci.example.org").status == 200);
  CHECK(withHost("/runs/1", "127.0.0.1:8470").status == 200);
  CHECK(withHost("/healthz", "evil.example").status == 200);  // load balancers, probes
}

TEST_CASE("web: a private installation shows nothing without a login", "[integration][web]") {
  WebFixture f(true, false, [](Config& c) { c.privateUi = true; });
  CHECK(f.get("/runs/1").status == 303);
  CHECK(f.get("/runs/1").header("location") == "/login?next=/runs/1");
  CHECK(f.get("/").status == 303);
  CHECK(f.get("/runs/1/logs/web1").status == 303);
  CHECK(f.get("/api/runs").status == 401);
  CHECK(f.get("/metrics").status == 401);
  CHECK(f.get("/healthz").status == 200);
  HttpRequest bearer;
  bearer.url = f.url + "/api/runs";
  bearer.headers.emplace_back("Authorization", std::string("Bearer ") + kUiToken);
  CHECK(f.http.send(bearer).status == 200);
  auto ok = f.form("/login", std::string("token=") + kUiToken);
  REQUIRE(ok.status == 303);
  CHECK(f.get("/runs/1", sessionCookie(ok)).status == 200);
}

TEST_CASE("web: without a UI token the web cannot re-run", "[integration][web]") {
  WebFixture f(false);
  CHECK(f.get("/runs/1").body.find("Re-runs from the web are off") != std::string::npos);
  CHECK(f.form("/login", "token=anything").status == 403);
  CHECK(f.form("/runs/1/rerun", "host=web1&csrf=x").status == 403);
}

TEST_CASE("web: run list, JSON API and a log that streams while the run runs",
          "[integration][web]") {
  WebFixture f;
  auto list = f.get("/");
  CHECK(list.status == 200);
  CHECK(list.body.find("href=\"/runs/1\"") != std::string::npos);
  auto api = nlohmann::json::parse(f.get("/api/runs").body);
  REQUIRE(api.size() == 1);
  CHECK(api[0]["kind"] == "deploy");
  CHECK(api[0]["state"] == "succeeded");
  CHECK(api[0]["hosts"][0] ==
        nlohmann::json{{"name", "db1"}, {"stage", "plan"}, {"state", "not-affected"}});
  auto one = nlohmann::json::parse(f.get("/api/runs/1").body);
  CHECK(one["hosts"][1]["summary"] == "deployed <generation 3>");
  CHECK(f.get("/api/runs/99").status == 404);
  CHECK(f.get("/runs/1/logs/..%2Fetc").status == 404);  // decoded: no such route
  CHECK(f.get("/runs/1/logs/.hidden").status == 400);

  // A running run whose log grows: the stream has everything once the run ends.
  auto db = store::Database::open(app::databasePath(f.config), store::Durability::Normal);
  store::Runs runs(*db, f.clock);
  runs.setState(1, RunState::Running);
  fs::path log = f.config.stateDir / "logs" / "1" / "web1.log";
  fs::create_directories(log.parent_path());
  os::writeFileAtomic(log, "first line\n");
  // Each step waits for the stream to show the last one, so a late reader cannot make this pass
  // without streaming anything.
  StreamingGet stream(f.url, "/runs/1/logs/web1");
  REQUIRE(stream.until("first line\n"));
  CHECK(stream.got().find("second line") == std::string::npos);
  CHECK(stream.got().find("HTTP/1.1 200") == 0);
  std::ofstream(log, std::ios::app) << "second line\n";
  CHECK(stream.until("second line\n"));  // while the run is still running
  runs.setState(1, RunState::Succeeded);
  CHECK(stream.untilClosed());  // the stream ends with the run
  // and the whole answer, read by an ordinary client after the end
  HttpResponse whole = f.get("/runs/1/logs/web1");
  CHECK(whole.status == 200);
  CHECK(whole.body == "first line\nsecond line\n");
}

TEST_CASE("cli: rerun queues a delivery the daemon turns into a run — logs --follow ends with it",
          "[integration][web]") {
  WebFixture f(true, true);
  fs::path cfg = f.tmp.path() / "switchyard.yaml";
  os::writeFileAtomic(cfg, "state_dir: " + f.config.stateDir.string() + "\n");
  auto r = tests::switchyard({"rerun", "1", "web1", "--config", cfg.string()});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 0);
  CHECK(r.out.find("run 2 queued: re-run of run 1 (web1)") == 0);
  auto run2 = f.daemon->waitForRunState(2, std::chrono::seconds(30));
  REQUIRE(run2);
  CHECK(run2->view.kind == RunKind::Rerun);
  CHECK(run2->view.trigger == RunTrigger::Manual);
  CHECK(run2->view.parentRunId == 1);

  CHECK(tests::switchyard({"rerun", "99", "--config", cfg.string()}).exitStatus == 2);
  CHECK(tests::switchyard({"rerun", "x", "--config", cfg.string()}).exitStatus == 2);

  // A host run 1 does not have: refused with the run's hosts, exit 2, nothing queued.
  {
    auto state = store::Database::open(app::databasePath(f.config), store::Durability::Normal);
    const int64_t before = state->query("SELECT COUNT(*) FROM deliveries").at(0).integer(0);
    auto refused = tests::switchyard({"rerun", "1", "web1", "nosuch", "--config", cfg.string()});
    CHECK(refused.exitStatus == 2);
    CHECK(refused.errTail.find("nosuch is not a host of run 1; nothing was re-run. Its hosts: "
                               "db1, web1") != std::string::npos);
    CHECK(state->query("SELECT COUNT(*) FROM deliveries").at(0).integer(0) == before);
  }

  // logs --follow of a running run: prints as the log grows, returns when the run ends.
  auto db = store::Database::open(app::databasePath(f.config), store::Durability::Normal);
  store::Runs runs(*db, f.clock);
  runs.setState(1, RunState::Running);
  fs::path log = f.config.stateDir / "logs" / "1" / "web1.log";
  fs::create_directories(log.parent_path());
  os::writeFileAtomic(log, "building\n");
  RunResult follow;
  std::thread t([&] {
    follow = tests::switchyard({"logs", "1", "web1", "--follow", "--config", cfg.string()});
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  std::ofstream(log, std::ios::app) << "built\n";
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  runs.setState(1, RunState::Succeeded);
  t.join();
  CHECK(follow.exitStatus == 0);
  CHECK(follow.out == "building\nbuilt\n");
  auto list = tests::switchyard({"runs", "--config", cfg.string()});
  CHECK(list.out.find("#2") == 0);  // newest first
}

TEST_CASE("web: a fork's waiting run can be approved with a login and the CSRF token",
          "[integration][web]") {
  WebFixture f;
  {
    auto db = store::Database::open(app::databasePath(f.config));
    store::Runs runs(*db, f.clock);
    store::NewRun n;
    n.repo = "alice/infra";
    n.kind = RunKind::Check;
    n.sha = std::string(40, 'f');
    n.ref = "refs/pull/4/head";
    n.prNumber = 4;
    n.fromFork = true;
    int64_t id = runs.create(n);
    REQUIRE(id == 2);
    RunHostView h;
    h.host = "web1";
    h.stage = Stage::Build;
    h.state = HostState::Waiting;
    h.summary = "waiting for approval";
    runs.putHost(id, h);
    runs.setState(id, RunState::Succeeded);
  }
  CHECK(f.get("/runs/2").body.find("/runs/2/approve") == std::string::npos);  // not logged in
  CHECK(f.form("/runs/2/approve", "csrf=x").status == 303);                   // to the login
  auto ok = f.form("/login", std::string("token=") + kUiToken);
  std::string cookie = sessionCookie(ok);
  auto page = f.get("/runs/2", cookie);
  REQUIRE(page.body.find("action=\"/runs/2/approve\"") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(page.body, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
  CHECK(f.form("/runs/2/approve", "csrf=wrong", cookie).status == 403);
  CHECK(f.form("/runs/1/approve", "csrf=" + m[1].str(), cookie).status == 400);  // not a fork
  auto approved = f.form("/runs/2/approve", "csrf=" + m[1].str(), cookie);
  CHECK(approved.status == 303);
  auto db = store::Database::open(app::databasePath(f.config), store::Durability::Normal);
  auto rows = db->query("SELECT event FROM deliveries");
  REQUIRE(rows.size() == 1);
  auto e = nlohmann::json::parse(rows[0].text(0)).get<Event>();
  CHECK(e.command == "approve");
  CHECK(e.runId == 2);
  // the API shows where the log is on this site, not where it is on the runner's disk
  CHECK(f.get("/api/runs/2").body.find(f.config.stateDir.string()) == std::string::npos);
}

TEST_CASE(
    "web: /healthz says whether a delivery could be stored, a read-only state disk stops serve",
    "[integration][web][mount]") {
  // The state directory on a small tmpfs of its own (needs root and mount(2); skipped where
  // they are missing), filled up and then remounted read-only, as a real disk would be.
  fs::path mountPoint;
  auto run = [](const std::string& cmd) { return std::system(cmd.c_str()) == 0; };
  std::unique_ptr<WebFixture> f;
  f = std::make_unique<WebFixture>(true, false, [&](Config& c) {
    mountPoint = c.stateDir;
    fs::create_directories(mountPoint);
    if (!run("mount -t tmpfs -o size=40m switchyard-test '" + mountPoint.string() + "'"))
      mountPoint.clear();
  });
  if (mountPoint.empty()) {
    WARN("SKIPPED: cannot mount a tmpfs here (needs root)");
    return;
  }
  struct Unmount {
    fs::path p;
    std::unique_ptr<WebFixture>& f;
    ~Unmount() {
      f.reset();  // the daemon lets go of the database first
      std::system(("umount -l '" + p.string() + "'").c_str());
    }
  } unmount{mountPoint, f};
  auto healthAfterRecheck = [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // the verdict is cached 1 s
    return f->get("/healthz");
  };
  CHECK(f->get("/healthz").status == 200);

  // a full disk: fewer than 16 MiB left
  const fs::path filler = mountPoint / "filler";
  REQUIRE(run("dd if=/dev/zero of='" + filler.string() + "' bs=1M count=30 status=none"));
  auto full = healthAfterRecheck();
  CHECK(full.status == 503);
  CHECK(full.body.find("the state directory cannot be written: ") != std::string::npos);
  CHECK(full.body.find("MiB free (at least 16 MiB needed)") != std::string::npos);
  fs::remove(filler);
  CHECK(healthAfterRecheck().status == 200);

  // a read-only state disk (remounted so, as after an I/O error): serve refuses to start,
  // naming the database, instead of answering "ok" while every delivery gets 503
  Config config = f->config;
  f.reset();
  REQUIRE(run("mount -o remount,ro '" + mountPoint.string() + "'"));
  NullLogger log;
  app::DaemonOptions o;
  o.log = &log;
  o.runScheduler = false;
  CHECK_THROWS_WITH(
      [&] {
        app::Daemon daemon(config, o);
        daemon.start();
      }(),
      Catch::Contains("cannot open database " + (mountPoint / "switchyard.db").string()));
  REQUIRE(run("mount -o remount,rw '" + mountPoint.string() + "'"));
}

TEST_CASE("web: Cancel needs a login and the CSRF token, and only a run that has not ended",
          "[integration][web]") {
  WebFixture f;
  {
    auto db = store::Database::open(app::databasePath(f.config));
    store::Runs runs(*db, f.clock);
    store::NewRun n;
    n.repo = "alice/infra";
    n.kind = RunKind::Deploy;
    n.sha = std::string(40, 'b');
    n.ref = "refs/heads/main";
    REQUIRE(runs.create(n) == 2);  // queued
  }
  CHECK(f.get("/runs/2").body.find("/runs/2/cancel") == std::string::npos);  // not logged in
  auto anon = f.form("/runs/2/cancel", "csrf=x");
  CHECK(anon.status == 303);
  CHECK(anon.header("location") == "/login?next=/runs/2");
  std::string cookie = sessionCookie(f.form("/login", std::string("token=") + kUiToken));
  auto page = f.get("/runs/2", cookie);
  REQUIRE(page.body.find("action=\"/runs/2/cancel\"") != std::string::npos);
  CHECK(page.body.find("Cancel run #2</button>") != std::string::npos);
  std::smatch m;
  REQUIRE(std::regex_search(page.body, m, std::regex("name=\"csrf\" value=\"([^\"]+)\"")));
  CHECK(f.form("/runs/2/cancel", "", cookie).status == 403);
  CHECK(f.form("/runs/2/cancel", "csrf=wrong", cookie).status == 403);
  CHECK(f.get("/runs/1", cookie).body.find("/runs/1/cancel") == std::string::npos);  // ended
  CHECK(f.form("/runs/1/cancel", "csrf=" + m[1].str(), cookie).status == 409);
  CHECK(tests::countRows(f.config, "SELECT COUNT(*) FROM deliveries") == 0);
  auto ok = f.form("/runs/2/cancel", "csrf=" + m[1].str(), cookie);
  CHECK(ok.status == 303);
  CHECK(ok.header("location") == "/runs/2");
  auto db = store::Database::open(app::databasePath(f.config), store::Durability::Normal);
  auto rows = db->query("SELECT event_name, event FROM deliveries");
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].text(0) == "cancel");
  auto e = nlohmann::json::parse(rows[0].text(1)).get<Event>();
  CHECK(e.command == "cancel");
  CHECK(e.runId == 2);
  CHECK(e.sender == "web login from 127.0.0.1");
}

TEST_CASE("web: the runs list filters by repository, branch, state and host, a page at a time",
          "[integration][web]") {
  WebFixture f;
  {
    auto db = store::Database::open(app::databasePath(f.config));
    store::Runs runs(*db, f.clock);
    for (int i = 0; i < 60; ++i) {
      store::NewRun n;
      n.repo = i % 2 ? "alice/infra" : "bob/other";
      n.kind = RunKind::Deploy;
      n.sha = std::string(40, 'c');
      n.ref = i % 3 ? "refs/heads/main" : "refs/heads/staging";
      int64_t id = runs.create(n);
      runs.setState(id, i % 5 ? RunState::Succeeded : RunState::Failed);
    }
    RunHostView h;
    h.host = "cache7";
    h.stage = Stage::Deploy;
    h.state = HostState::Failed;
    runs.putHost(40, h);
  }
  auto rowsOf = [](const std::string& body) {
    std::vector<std::string> ids;
    std::regex row("<tr data-run=\"([0-9]+)\">");
    for (auto it = std::sregex_iterator(body.begin(), body.end(), row);
         it != std::sregex_iterator(); ++it)
      ids.push_back((*it)[1]);
    return ids;
  };
  auto all = f.get("/");
  CHECK(rowsOf(all.body).size() == 50);  // 61 runs: a page of 50 …
  CHECK(all.body.find("href=\"/?repo=&amp;branch=&amp;state=&amp;host=&amp;page=2\"") !=
        std::string::npos);
  CHECK(rowsOf(f.get("/?page=2").body).size() == 11);  // … and the rest
  CHECK(rowsOf(f.get("/?host=cache7").body) == std::vector<std::string>{"40"});
  auto failedMain = rowsOf(f.get("/?repo=alice%2Finfra&branch=main&state=failed").body);
  CHECK(failedMain.size() == 4);  // i odd, i % 3 != 0, i % 5 == 0: 5, 25, 35, 55
  CHECK(rowsOf(f.get("/?branch=refs%2Fheads%2Fmain&state=failed&repo=alice%2Finfra").body) ==
        failedMain);
  CHECK(f.get("/?state=exploded").status == 400);
  CHECK(f.get("/?host=%3Cb%3E").status == 400);
  auto none = f.get("/?repo=nobody%2Fnothing");
  CHECK(none.body.find("No runs match these filters.") != std::string::npos);
  // states are told in words and marks, not colour alone
  CHECK(all.body.find("\xE2\x9C\x93</span> succeeded") != std::string::npos);
  CHECK(all.body.find("\xE2\x9C\x97</span> failed") != std::string::npos);
}

TEST_CASE("web: a host's log page puts the failed tail first, then a section per stage",
          "[integration][web]") {
  WebFixture f;
  {
    auto db = store::Database::open(app::databasePath(f.config));
    store::Runs runs(*db, f.clock);
    RunHostView h;
    h.host = "web3";
    h.stage = Stage::Deploy;
    h.state = HostState::RolledBack;
    h.summary = "rolled back: health check failed";
    runs.putHost(1, h);
  }
  fs::create_directories(f.config.stateDir / "logs" / "1");
  std::string log = "# switchyard build of web3: /nix/store/x.drv\nbuilding <b>\n# deploy: copy\n";
  for (int i = 0; i < 60; ++i) log += "copying path " + std::to_string(i) + "\n";
  log += "# deploy: confirm\nhealth check failed: curl exited with 7\n# deploy rolled back\n";
  os::writeFileAtomic(f.config.stateDir / "logs" / "1" / "web3.log", log);
  auto page = f.get("/runs/1/hosts/web3/log");
  REQUIRE(page.status == 200);
  const auto tail = page.body.find("Where it failed");
  const auto sections = page.body.find("By stage");
  REQUIRE(tail != std::string::npos);
  REQUIRE(sections != std::string::npos);
  CHECK(tail < sections);
  CHECK(page.body.find("health check failed: curl exited with 7", tail) < sections);
  CHECK(page.body.find("copying path 5\n", tail) > sections);  // only the last 40 lines first
  CHECK(page.body.find("<summary>deploy: copy <span class=\"note\">(60 lines)") !=
        std::string::npos);
  CHECK(page.body.find("<summary>deploy: confirm") != std::string::npos);
  CHECK(page.body.find("building &lt;b&gt;") != std::string::npos);  // escaped
  CHECK(page.body.find("href=\"/runs/1/logs/web3?download=1\"") != std::string::npos);
  auto raw = f.get("/runs/1/logs/web3?download=1");
  CHECK(raw.body == log);
  CHECK(raw.header("content-disposition") == "attachment; filename=\"run-1-web3.log\"");
  // a succeeded host: no tail first
  CHECK(f.get("/runs/1/hosts/web1/log").body.find("Where it failed") == std::string::npos);
  // lines written through os::LogFile carry the time they were written
  {
    os::LogFile lf(f.config.stateDir / "logs" / "1" / "web1.log", os::LogFile::Mode::Truncate,
                   nullptr);
    lf.line("# deploy: activate");
    lf.line("switched web1");
  }
  auto timed = f.get("/runs/1/hosts/web1/log").body;
  CHECK(std::regex_search(
      timed, std::regex("<span class=\"ts\">[0-9]{2}:[0-9]{2}:[0-9]{2}</span> switched web1")));
  CHECK(std::regex_search(
      timed,
      std::regex(
          "deploy: activate <span class=\"note\">\\([0-9]{2}:[0-9]{2}:[0-9]{2}, 1 lines\\)")));
  CHECK(f.get("/runs/1/hosts/.x/log").status == 400);
  CHECK(f.get("/runs/9/hosts/web1/log").status == 404);
}
