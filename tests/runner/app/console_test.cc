// The ops console (issue 14) from the user's side, against a real daemon over HTTP and the
// built binary: the fleet page, /api/fleet and `switchyard fleet [--json]` agree on what
// each host runs and its drift; hosts the config leaves out are listed; hostile names are
// escaped; the host page shows the deploy history; /metrics parses as Prometheus text
// (HELP/TYPE before samples, escaped label values, cumulative histograms).
#include <cmath>
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/config_loader.h"
#include "runner/app/daemon.h"
#include "runner/app/metrics.h"
#include "runner/app/web.h"
#include "runner/core/log.h"
#include "runner/core/plan.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/store/deployments.h"
#include "runner/store/host_probes.h"
#include "runner/store/runs.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner;

namespace {

const std::string kOld = "/nix/store/0000000000000000000000000000000a-nixos-system-web1";
const std::string kNew = "/nix/store/0000000000000000000000000000000b-nixos-system-web1";
const std::string kHand = "/nix/store/0000000000000000000000000000000c-nixos-system-web1";
const std::string kDb = "/nix/store/0000000000000000000000000000000d-nixos-system-db1";
const std::string kHostile = "<b>&\"'";

// A daemon (no scheduler) over a store holding: a deploy run of main that built web1 and
// db1; web1 deployed twice (generations 3, 4) and then found running a system nobody
// deployed; db1 deployed and in sync; a host the config leaves out; a hostile name the
// planner refused.
struct ConsoleFixture {
  ConsoleFixture() {
    config = tests::daemonConfig(tmp.path());
    RepoConfig r;
    r.name = "lab/infra";
    r.hosts = {HostConfig{"web1", "root@127.0.0.1:1"}, HostConfig{"db1", std::nullopt}};
    config.repos = {r};
    auto db = store::Database::open(app::databasePath(config));
    store::Runs runs(*db, clock);
    store::NewRun n;
    n.repo = "lab/infra";
    n.kind = RunKind::Deploy;
    n.sha = std::string(40, 'a');
    n.ref = "refs/heads/main";
    int64_t id = runs.create(n);
    for (auto [host, path] : {std::pair{"web1", kNew}, std::pair{"db1", kDb}}) {
      RunHostView h;
      h.host = host;
      h.stage = Stage::Deploy;
      h.state = HostState::Succeeded;
      h.outPath = path;
      runs.putHost(id, h);
    }
    Plan plan;
    plan.repo = "lab/infra";
    plan.hosts = {HostPlan{.name = "db1"}, HostPlan{.name = "laptop"}, HostPlan{.name = "web1"},
                  HostPlan{.name = kHostile, .refused = "bad name"}};
    runs.setPlan(id, "", nlohmann::json(plan).dump());
    runs.setState(id, RunState::Succeeded);
    store::Deployments deployments(*db);
    auto record = [&](const std::string& host, const std::string& path, int64_t gen, int64_t at) {
      store::DeploymentRecord d;
      d.host = host;
      d.repo = "lab/infra";
      d.sha = std::string(40, 'a');
      d.storePath = path;
      d.generation = gen;
      d.result = "succeeded";
      d.runId = id;
      d.startedAt = at - 2500;
      d.finishedAt = at;
      d.durationsJson = R"({"copy": 1200, "activate": 800})";
      deployments.record(d);
    };
    record("web1", kOld, 3, 1'000'000);
    record("web1", kNew, 4, 2'000'000);
    record("db1", kDb, 7, 2'000'000);
    store::ProbeRecord p;
    p.repo = "lab/infra";
    p.host = "web1";
    p.target = "root@127.0.0.1:1";
    p.reached = true;
    p.currentPath = p.profilePath = kHand;
    p.generation = 5;
    p.probedAt = 3'000'000;
    p.lastSeen = 3'000'000;
    store::HostProbes(*db).record(p);

    app::DaemonOptions o;
    o.log = &log;
    o.runScheduler = false;
    daemon = std::make_unique<app::Daemon>(config, o);
    daemon->start();
    url = daemon->baseUrl();
  }
  HttpResponse get(const std::string& path) {
    HttpRequest r;
    r.url = url + path;
    return http.send(r);
  }
  os::TempDir tmp{"sy-console"};
  SystemClock clock;
  NullLogger log;
  Config config;
  std::unique_ptr<app::Daemon> daemon;
  std::string url;
  http::CurlHttpClient http;
};

// Prometheus text format 0.0.4, strictly: every sample belongs to a family declared by
// # HELP and # TYPE lines before it; names and label names are valid; label values are
// quoted with only \\, \" and \n escaped; values are numbers. Returns samples by name.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};
std::vector<Sample> parsePrometheus(const std::string& text,
                                    std::map<std::string, std::string>& types) {
  static const std::regex kName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  static const std::regex kLabel("[a-zA-Z_][a-zA-Z0-9_]*");
  std::vector<Sample> out;
  std::set<std::string> helped;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    REQUIRE_FALSE(line.empty());
    if (line.rfind("# HELP ", 0) == 0) {
      std::string name = line.substr(7, line.find(' ', 7) - 7);
      REQUIRE(std::regex_match(name, kName));
      REQUIRE(helped.insert(name).second);  // once per family
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      std::string rest = line.substr(7);
      std::string name = rest.substr(0, rest.find(' ')), type = rest.substr(rest.find(' ') + 1);
      REQUIRE(helped.count(name));
      REQUIRE(std::set<std::string>{"counter", "gauge", "histogram"}.count(type));
      REQUIRE_FALSE(types.count(name));
      types[name] = type;
      continue;
    }
    REQUIRE(line[0] != '#');
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    s.name = line.substr(0, i);
    INFO(line);
    REQUIRE(std::regex_match(s.name, kName));
    if (line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        size_t eq = line.find('=', i);
        std::string key = line.substr(i, eq - i);
        REQUIRE(std::regex_match(key, kLabel));
        REQUIRE(line[eq + 1] == '"');
        std::string value;
        size_t j = eq + 2;
        for (; line[j] != '"'; ++j) {
          REQUIRE(j < line.size());
          if (line[j] == '\\') {
            ++j;
            REQUIRE((line[j] == '\\' || line[j] == '"' || line[j] == 'n'));
            value += line[j] == 'n' ? '\n' : line[j];
          } else {
            value += line[j];
          }
        }
        s.labels[key] = value;
        i = j + 1;
        if (line[i] == ',') ++i;
      }
      ++i;
    }
    REQUIRE(line[i] == ' ');
    std::string v = line.substr(i + 1);
    s.value = v == "+Inf" ? INFINITY : std::stod(v);
    // the family: the name itself, or a histogram's _bucket/_sum/_count
    std::string family = s.name;
    for (const char* suffix : {"_bucket", "_sum", "_count"})
      if (!types.count(family) && family.size() > strlen(suffix) &&
          family.compare(family.size() - strlen(suffix), strlen(suffix), suffix) == 0)
        family = family.substr(0, family.size() - strlen(suffix));
    REQUIRE(types.count(family));
    out.push_back(s);
  }
  return out;
}

}  // namespace

TEST_CASE("fleet page, /api/fleet and `switchyard fleet` show what each host runs and its drift",
          "[integration][console]") {
  ConsoleFixture f;
  auto page = f.get("/fleet");
  REQUIRE(page.status == 200);
  const std::string& html = page.body;
  // web1: the probe saw a system nobody deployed (generation 5)
  std::smatch m;
  REQUIRE(std::regex_search(html, m, std::regex("<tr id=\"web1\"[^>]*data-drift=\"([a-z-]+)\"")));
  CHECK(m[1] == "changed-by-hand");
  CHECK(html.find(kHand) != std::string::npos);
  CHECK(std::regex_search(html,
                          std::regex("data-drift=\"changed-by-hand\">[\\s\\S]*?class=\"gen\">5<")));
  // db1: as deployed, as built
  REQUIRE(std::regex_search(html, m, std::regex("<tr id=\"db1\"[^>]*data-drift=\"([a-z-]+)\"")));
  CHECK(m[1] == "not-probed");
  // left out by the config, and the hostile name, escaped
  CHECK(html.find("id=\"laptop\"") != std::string::npos);
  CHECK(html.find("&lt;b&gt;&amp;&quot;&apos;") != std::string::npos);
  CHECK(html.find("<b>&") == std::string::npos);
  // needing attention first: web1's row before db1's
  CHECK(html.find("id=\"web1\"") < html.find("id=\"db1\""));

  auto api = f.get("/api/fleet");
  REQUIRE(api.status == 200);
  auto j = nlohmann::json::parse(api.body);
  std::map<std::string, nlohmann::json> by;
  for (const auto& row : j) by[row["host"].get<std::string>()] = row;
  REQUIRE(by.size() == 4);
  CHECK(by["web1"]["generation"] == 5);
  CHECK(by["web1"]["drift"] == "changed-by-hand");
  CHECK(by["web1"]["last_succeeded"]["generation"] == 4);
  CHECK(by["db1"]["generation"] == 7);
  CHECK(by["db1"]["current_from"] == "deploy");
  CHECK(by["laptop"]["managed"] == false);
  CHECK(by["laptop"]["drift"] == "not-managed");
  CHECK(by[kHostile]["drift"] == "not-managed");

  // the CLI, reading the same database with the daemon's config file
  const fs::path yaml = f.tmp.path() / "switchyard.yaml";
  os::writeFileAtomic(yaml,
                      "state_dir: '" + f.config.stateDir.string() +
                          "'\nrepos:\n  - name: lab/infra\n    url: https://example.invalid/x\n"
                          "    hosts:\n      web1: {target: 'root@127.0.0.1:1'}\n      db1: {}\n");
  auto cli = tests::switchyard({"fleet", "--json", "--config", yaml.string()});
  INFO(cli.errTail);
  REQUIRE(cli.exitStatus == 0);
  auto cj = nlohmann::json::parse(cli.out);
  std::map<std::string, nlohmann::json> cby;
  for (const auto& row : cj) cby[row["host"].get<std::string>()] = row;
  CHECK(cby["web1"]["generation"] == 5);
  CHECK(cby["web1"]["drift"] == "changed-by-hand");
  CHECK(cby["db1"]["drift"] == "not-probed");
  CHECK(cby.count("laptop"));
  auto table = tests::switchyard({"fleet", "--config", yaml.string()});
  REQUIRE(table.exitStatus == 0);
  CHECK(table.out.find("changed-by-hand") != std::string::npos);
  CHECK(std::regex_search(table.out, std::regex("\\bweb1\\s+5\\s+aaaaaaaa")));
  auto bad = tests::switchyard({"fleet", "--config", (f.tmp.path() / "missing.yaml").string()});
  CHECK(bad.exitStatus == 2);
}

TEST_CASE("host page: what the host runs and its deploy history, bad names refused",
          "[integration][console]") {
  ConsoleFixture f;
  auto page = f.get("/hosts/web1");
  REQUIRE(page.status == 200);
  CHECK(page.body.find(kHand) != std::string::npos);
  CHECK(page.body.find("generation 5") != std::string::npos);
  // both deploys, newest first, with their generations and durations
  auto first = page.body.find(kNew), second = page.body.find(kOld);
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  CHECK(first < second);
  CHECK(page.body.find("2.5s") != std::string::npos);
  CHECK(f.get("/hosts/nobody").status == 404);
  CHECK(f.get("/hosts/%3Cb%3E").status == 400);
  CHECK(f.get("/hosts/.hidden").status == 400);

  // A repository is (forge, name): lab/infra on a Gitea deployed web1 too. Its record is
  // not this repository's history, and the Gitea one's page shows only its own.
  {
    auto db = store::Database::open(app::databasePath(f.config));
    store::DeploymentRecord d;
    d.host = "web1";
    d.forge = "gitea";
    d.repo = "lab/infra";
    d.sha = std::string(40, 'c');
    d.storePath = kHand;
    d.result = "succeeded";
    d.startedAt = d.finishedAt = 2'500'000;
    store::Deployments(*db).record(d);
  }
  auto ours = f.get("/hosts/web1?repo=lab/infra&forge=");
  REQUIRE(ours.status == 200);
  CHECK(ours.body.find(std::string(40, 'c')) == std::string::npos);
  CHECK(ours.body.find(std::string(40, 'a')) != std::string::npos);
  auto gitea = f.get("/hosts/web1?repo=lab/infra&forge=gitea");
  REQUIRE(gitea.status == 200);
  CHECK(gitea.body.find(std::string(40, 'c')) != std::string::npos);
  CHECK(gitea.body.find(std::string(40, 'a')) == std::string::npos);
}

// A deploy whose activation failed on web1: the watchdog switched back to kOld (generation
// 3). The run page says what web1 runs now, not the rolled-back kNew, and each host's
// stages with their start, finish and duration (also in /api/runs/<id>).
TEST_CASE("run page: a rolled-back host shows what it runs now, and every host its stage times",
          "[integration][console]") {
  ConsoleFixture f;
  auto db = store::Database::open(app::databasePath(f.config));
  store::Runs runs(*db, f.clock);
  store::NewRun n;
  n.repo = "lab/infra";
  n.kind = RunKind::Deploy;
  n.sha = std::string(40, 'b');
  n.ref = "refs/heads/main";
  const int64_t id = runs.create(n);
  RunHostView h;
  h.host = "web1";
  h.stage = Stage::Deploy;
  h.state = HostState::RolledBack;
  h.summary = "rolled back: health check failed";
  h.outPath = kNew;
  const int64_t t0 = 1'700'000'000'000;
  h.steps = {{"plan", t0, t0 + 1500},
             {"build", t0 + 1500, t0 + 61'500},
             {"deploy", t0 + 61'500, t0 + 90'000},
             {"copy", t0 + 62'000, t0 + 64'000},
             {"activate", t0 + 64'000, t0 + 70'000},
             {"health", t0 + 70'000, std::nullopt}};
  runs.putHost(id, h);
  h.host = "db1";
  h.state = HostState::Succeeded;
  h.summary = "deployed";
  h.outPath = kDb;
  h.steps = {{"plan", t0, t0 + 1500}};
  runs.putHost(id, h);
  runs.setState(id, RunState::Failed);
  store::DeploymentRecord d;
  d.host = "web1";
  d.repo = "lab/infra";
  d.sha = n.sha;
  d.storePath = kNew;
  d.previousPath = kOld;
  d.previousGeneration = 3;
  d.result = "rolled-back";
  d.runId = id;
  d.startedAt = t0 + 61'500;
  d.finishedAt = t0 + 90'000;
  store::Deployments(*db).record(d);

  auto page = f.get("/runs/" + std::to_string(id));
  REQUIRE(page.status == 200);
  auto row = page.body.substr(page.body.find("<tr id=\"web1\""));
  row = row.substr(0, row.find("</tr>"));
  CHECK(row.find("runs now: <code>" + kOld + "</code> (generation 3)") != std::string::npos);
  CHECK(row.find("rolled back from <code>" + kNew + "</code>") != std::string::npos);
  CHECK(row.find("<li data-step=\"copy\">copy <time datetime=\"2023-11-14T22:14:22Z\"") !=
        std::string::npos);
  CHECK(row.find("2023-11-14T22:14:24Z\" title=\"finished 2023-11-14T22:14:24Z\">"
                 "2023-11-14T22:14:24Z</time>, 2.0s") != std::string::npos);
  CHECK(row.find("data-step=\"build\"") != std::string::npos);
  CHECK(row.find(", 1m0s</li>") != std::string::npos);  // the build's minute
  CHECK(row.find("health <time") != std::string::npos);
  CHECK(row.find("not finished") != std::string::npos);  // health never ended
  auto db1 = page.body.substr(page.body.find("<tr id=\"db1\""));
  db1 = db1.substr(0, db1.find("</tr>"));
  CHECK(db1.find("runs now") == std::string::npos);  // succeeded: its out path is what it runs
  CHECK(db1.find(kDb) != std::string::npos);

  auto api = nlohmann::json::parse(f.get("/api/runs/" + std::to_string(id)).body);
  nlohmann::json steps;
  for (const auto& host : api["hosts"])
    if (host["name"] == "web1") steps = host["steps"];
  REQUIRE(steps.size() == 6);
  CHECK(steps[3] == nlohmann::json{{"name", "copy"},
                                   {"started_at", "2023-11-14T22:14:22Z"},
                                   {"finished_at", "2023-11-14T22:14:24Z"},
                                   {"ms", 2000}});
  CHECK(steps[5]["finished_at"].is_null());
}

TEST_CASE("/metrics is valid Prometheus text with per-host deploy, generation and drift",
          "[integration][console]") {
  ConsoleFixture f;
  auto res = f.get("/metrics");
  REQUIRE(res.status == 200);
  std::map<std::string, std::string> types;
  auto samples = parsePrometheus(res.body, types);
  CHECK(types["switchyard_deliveries_total"] == "counter");
  CHECK(types["switchyard_run_duration_seconds"] == "histogram");
  CHECK(types["switchyard_host_last_deploy_timestamp_seconds"] == "gauge");
  auto find = [&](const std::string& name, const std::map<std::string, std::string>& labels) {
    for (const auto& s : samples)
      if (s.name == name &&
          std::includes(s.labels.begin(), s.labels.end(), labels.begin(), labels.end()))
        return std::optional<double>(s.value);
    return std::optional<double>();
  };
  CHECK(find("switchyard_host_last_deploy_timestamp_seconds", {{"host", "web1"}}) == 2000.0);
  CHECK(find("switchyard_host_last_deploy_result", {{"host", "web1"}, {"result", "succeeded"}}) ==
        1.0);
  CHECK(find("switchyard_host_generation", {{"host", "web1"}}) == 5.0);
  CHECK(find("switchyard_host_drift", {{"host", "web1"}, {"drift", "changed-by-hand"}}) == 1.0);
  CHECK(find("switchyard_host_drift", {{"host", "db1"}, {"drift", "not-probed"}}) == 0.0);
  CHECK(find("switchyard_host_drift", {{"host", kHostile}}) == 0.0);  // escaped and read back
  // deploy steps: three records of copy 1.2 s -> le=1 has 0, le=2.5 has 3, +Inf == _count
  CHECK(find("switchyard_deploy_step_duration_seconds_bucket", {{"step", "copy"}, {"le", "1"}}) ==
        0.0);
  CHECK(find("switchyard_deploy_step_duration_seconds_bucket", {{"step", "copy"}, {"le", "2.5"}}) ==
        3.0);
  CHECK(
      find("switchyard_deploy_step_duration_seconds_bucket", {{"step", "copy"}, {"le", "+Inf"}}) ==
      find("switchyard_deploy_step_duration_seconds_count", {{"step", "copy"}}));
  CHECK(find("switchyard_queue_depth", {}) == 0.0);
}

TEST_CASE("Prometheus label values are escaped", "[unit][console]") {
  CHECK(app::escapeLabelValue("a\"b\\c\nd") == "a\\\"b\\\\c\\nd");
  app::PromWriter w;
  w.family("x_total", "counter", "help with \\ and\nnewline");
  w.sample("x_total", {{"host", "q\""}}, 3);
  std::map<std::string, std::string> types;
  auto s = parsePrometheus(w.text(), types);
  REQUIRE(s.size() == 1);
  CHECK(s[0].labels["host"] == "q\"");
  CHECK(s[0].value == 3);
}

TEST_CASE("run events: the run's state, counts and hosts as server-sent events until it is final",
          "[integration][console]") {
  ConsoleFixture f;
  auto db = store::Database::open(app::databasePath(f.config));
  store::Runs runs(*db, f.clock);
  store::NewRun n;
  n.repo = "lab/infra";
  n.kind = RunKind::Deploy;
  n.sha = std::string(40, 'b');
  n.ref = "refs/heads/main";
  int64_t id = runs.create(n);
  runs.setState(id, RunState::Running);
  RunHostView h;
  h.host = "web1";
  h.stage = Stage::Deploy;
  h.state = HostState::Running;
  runs.putHost(id, h);
  h.host = "db1";
  runs.putHost(id, h);
  // the run page follows the events (no full-page refresh for browsers with scripts)
  auto page = f.get("/runs/" + std::to_string(id));
  CHECK(page.body.find("new EventSource('/runs/" + std::to_string(id) + "/events')") !=
        std::string::npos);
  CHECK(page.body.find("<noscript><meta http-equiv=\"refresh\"") != std::string::npos);
  CHECK(page.body.find("<tr id=\"web1\"") != std::string::npos);
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
    h.host = "db1";
    h.state = HostState::Failed;
    runs.putHost(id, h);
    h.host = "web1";
    h.state = HostState::Succeeded;
    runs.putHost(id, h);
    runs.setState(id, RunState::Failed);
  });
  auto res = f.get("/runs/" + std::to_string(id) + "/events");  // ends when the run is final
  later.join();
  REQUIRE(res.status == 200);
  std::vector<nlohmann::json> events;
  std::regex ev("event: run\ndata: (.*)\n\n");
  for (std::sregex_iterator it(res.body.begin(), res.body.end(), ev), end; it != end; ++it)
    events.push_back(nlohmann::json::parse((*it)[1].str()));
  REQUIRE(events.size() >= 2);
  CHECK(events.front()["state"] == "running");
  CHECK(events.front()["counts"][0]["state"] == "running");
  CHECK(events.front()["counts"][0]["count"] == 2);
  const auto& last = events.back();
  CHECK(last["state"] == "failed");
  CHECK(last["final"] == true);
  CHECK(last["hosts"][0]["name"] == "db1");  // failures first
  CHECK(last["counts"][0] == nlohmann::json({{"state", "failed"}, {"count", 1}}));
  CHECK(f.get("/runs/999/events").status == 404);
}

TEST_CASE("fleet: settings are read and checked", "[unit][console]") {
  auto good = app::checkConfigText(
      "fleet:\n  probe_interval: 30s\n  probe_concurrency: 2\n  probe_timeout: 5s\n"
      "  current_system: /var/lib/fake-nixos/current-system\n",
      "s.yaml", "/");
  REQUIRE(good.ok());
  CHECK(good.config.fleet.probeInterval == std::chrono::seconds(30));
  CHECK(good.config.fleet.probeConcurrency == 2);
  CHECK(good.config.fleet.probeTimeout == std::chrono::seconds(5));
  CHECK(good.config.fleet.currentSystemLink == "/var/lib/fake-nixos/current-system");
  auto off = app::checkConfigText("fleet: {probe_interval: 0s}\n", "s.yaml", "/");
  REQUIRE(off.ok());
  CHECK(off.config.fleet.probeInterval.count() == 0);
  for (const char* bad :
       {"fleet: {current_system: 'relative/path'}\n",
        "fleet: {current_system: '/run/x; rm -rf /'}\n", "fleet: {probe_concurrency: 0}\n",
        "fleet: {probe_timeout: 0s}\n", "fleet: {probe_every: 5s}\n"}) {
    INFO(bad);
    auto c = app::checkConfigText(bad, "s.yaml", "/");
    CHECK_FALSE(c.ok());
    REQUIRE_FALSE(c.issues.empty());
    CHECK(c.issues[0].key.rfind("fleet", 0) == 0);
  }
}

namespace {

// WCAG 2.x relative luminance of "#rrggbb".
double luminance(const std::string& hex) {
  auto channel = [&](size_t at) {
    double c = std::stoi(hex.substr(at, 2), nullptr, 16) / 255.0;
    return c <= 0.04045 ? c / 12.92 : std::pow((c + 0.055) / 1.055, 2.4);
  };
  return 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
}

double contrast(const std::string& a, const std::string& b) {
  double la = luminance(a), lb = luminance(b);
  return (std::max(la, lb) + 0.05) / (std::min(la, lb) + 0.05);
}

}  // namespace

TEST_CASE("every text colour of the web UI has WCAG AA contrast on its backgrounds",
          "[unit][console]") {
  // The layout's stylesheet: each `color:` against the page (white) and the log/plan boxes.
  const std::string& css = app::uiTemplate("layout");
  std::regex colour("(^|[^-])color:\\s*(#[0-9a-fA-F]{6})");
  std::set<std::string> colours;
  for (auto it = std::sregex_iterator(css.begin(), css.end(), colour); it != std::sregex_iterator();
       ++it)
    colours.insert((*it)[2]);
  REQUIRE(colours.size() >= 6);  // the states' colours are all there
  std::smatch pre;
  REQUIRE(std::regex_search(css, pre, std::regex("pre \\{[^}]*background: (#[0-9a-fA-F]{6})")));
  for (const auto& c : colours)
    for (const std::string& bg : {std::string("#ffffff"), pre[1].str()}) {
      INFO(c << " on " << bg);
      CHECK(contrast(c, bg) >= 4.5);  // AA for normal text
    }
  // the test can fail: a light grey on white is far below
  CHECK(contrast("#a0a0a0", "#ffffff") < 4.5);
}

TEST_CASE("the Grafana dashboard parses and every metric it queries is in /metrics",
          "[integration][console]") {
  auto dashboard = nlohmann::json::parse(
      os::readFile(tests::sourceDir() / "templates" / "grafana-dashboard.json"));
  REQUIRE(dashboard["panels"].is_array());
  std::set<std::string> queried;
  std::regex name("switchyard_[a-z_]+");
  for (const auto& p : dashboard["panels"]) {
    CHECK(p.contains("title"));
    CHECK(p.contains("gridPos"));
    for (const auto& t : p["targets"]) {
      const std::string expr = t["expr"].get<std::string>();
      for (auto it = std::sregex_iterator(expr.begin(), expr.end(), name);
           it != std::sregex_iterator(); ++it)
        queried.insert(it->str());
    }
  }
  REQUIRE(queried.size() >= 10);
  ConsoleFixture f;
  std::map<std::string, std::string> types;
  parsePrometheus(f.get("/metrics").body, types);
  std::set<std::string> exposed;
  for (const auto& [family, type] : types) {
    exposed.insert(family);
    if (type == "histogram")
      for (const char* suffix : {"_bucket", "_sum", "_count"}) exposed.insert(family + suffix);
  }
  for (const auto& q : queried) {
    INFO(q);
    CHECK(exposed.count(q) == 1);
  }
  CHECK(exposed.count("switchyard_no_such_metric") == 0);
}

TEST_CASE("Nix evaluations (run or cached) and forge answers by status code are counted",
          "[unit][console]") {
  class MapCache final : public DrvPathCache {
   public:
    std::optional<std::string> get(const std::string& t, const std::string& h) override {
      auto it = m.find(t + "/" + h);
      if (it == m.end()) return std::nullopt;
      return it->second;
    }
    void put(const std::string& t, const std::string& h, const std::string& d) override {
      m[t + "/" + h] = d;
    }
    std::map<std::string, std::string> m;
  } inner;
  app::LiveCounters live;
  app::EvalCounters& counters = live.evals;
  app::CountingDrvCache cache(inner, counters);
  CHECK_FALSE(cache.get("tree1", "web1"));  // a miss: Nix evaluates it
  cache.put("tree1", "web1", "/nix/store/a.drv");
  CHECK(cache.get("tree1", "web1") == "/nix/store/a.drv");
  CHECK(cache.get("tree1", "web1") == "/nix/store/a.drv");
  CHECK(inner.m.size() == 1);
  CHECK(counters.run == 1);
  CHECK(counters.cached == 2);
  os::TempDir tmp("sy-evals");
  auto db = store::Database::open(tmp.path() / "s.db");
  live.forgeAnswers.add("hub", 201);
  live.forgeAnswers.add("hub", 201);
  live.forgeAnswers.add("hub", 502);
  live.forgeAnswers.add("home", 0);
  const std::string text = app::renderMetrics(*db, {}, 0, &live);
  CHECK(text.find("switchyard_forge_responses_total{code=\"201\",forge=\"hub\"} 2\n") !=
        std::string::npos);
  CHECK(text.find("switchyard_forge_responses_total{code=\"502\",forge=\"hub\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("switchyard_forge_responses_total{code=\"none\",forge=\"home\"} 1\n") !=
        std::string::npos);
  CHECK(text.find("switchyard_nix_evaluations_total{result=\"run\"} 1\n") != std::string::npos);
  CHECK(text.find("switchyard_nix_evaluations_total{result=\"cached\"} 2\n") != std::string::npos);
}
