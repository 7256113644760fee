// The daemon with a forge: a signed Gitea push webhook (a recorded payload pointed at a
// repository in a temp dir) makes a deploy run whose statuses reach a fake Gitea through
// runner/report's outbox, with the run page as target_url; a "/switchyard rerun web2" comment
// by a writer goes through the re-run gateway (permission and pull request asked of the fake
// forge) and re-runs that host; the same comment by a reader is refused. Repository identity
// (issue 17): alice/infra on a fake GitHub and on a fake Gitea are two repositories (own
// mirror, own statuses, own supersede), and mirrors of the layout before that are moved at
// start. Stages are fakes here (the real ones are in daemon_e2e_test.cc): this is about the
// wiring.
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/log.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/scheduler/mirrors.h"
#include "runner/store/database.h"
#include "runner/store/runs.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/fake_forge.h"
#include "tests/support/fake_stages.h"
#include "tests/support/run.h"
#include "tests/support/temp_git_repo.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner;

namespace {

// The forge tests' daemon parts: instant stages (web1 of web1 and web2 is affected, every
// build and deploy succeeds) and a silent log.
struct InstantParts {
  tests::FixedPlanStage plan{std::vector<std::string>{"web1", "web2"},
                             std::set<std::string>{"web1"}};
  tests::FakeBuildStage build;
  tests::OkDeployStage deploy;
  NullLogger log;
  app::DaemonOptions options() {
    app::DaemonOptions o;
    o.log = &log;
    o.planner = &plan;
    o.builder = &build;
    o.deployer = &deploy;
    o.poll = std::chrono::milliseconds(50);
    return o;
  }
};

// alice/infra on `forge`, deploying main.
RepoConfig infraRepo(const std::string& forge) {
  RepoConfig repo;
  repo.forge = forge;
  repo.name = "alice/infra";
  repo.deployBranches = {"main"};
  return repo;
}

}  // namespace

TEST_CASE("forge: a signed Gitea push deploys and reports statuses — comment re-runs are gated",
          "[integration][daemon][forge]") {
  tests::FakeGitea gitea;
  tests::TempGitRepo upstream;
  std::string sha0 = upstream.commit({{"flake.nix", "{ }"}}, "zero");
  std::string sha1 = upstream.commit({{"hosts/web1.nix", "{ }"}}, "one");
  os::TempDir tmp("sy-forge");
  Config config = tests::daemonConfig(tmp.path());
  os::writeFileAtomic(tmp.path() / "gitea.token", gitea.token());
  config.forges["home"].url = gitea.baseUrl();
  config.forges["home"].apiUrl = gitea.apiUrl();
  config.forges["home"].tokenFile = tmp.path() / "gitea.token";
  config.forges.erase("hub");
  config.repos = {infraRepo("home")};
  InstantParts parts;
  app::Daemon daemon(config, parts.options());
  daemon.start();
  http::CurlHttpClient http;

  auto push = tests::webhookJson("gitea/push/go-scm-push.json");
  push["ref"] = "refs/heads/main";
  push["before"] = sha0;
  push["after"] = sha1;
  push["repository"]["full_name"] = "alice/infra";
  push["repository"]["clone_url"] = upstream.path().string();  // where the mirror fetches from
  std::string body = push.dump();
  auto r = tests::post(http, daemon.baseUrl() + "/hooks/home", body,
                       {{"X-Gitea-Event", "push"},
                        {"X-Gitea-Delivery", "push-1"},
                        {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, body)}});
  REQUIRE(r.status == 202);
  auto run = daemon.waitForRunState(1, std::chrono::seconds(30));
  REQUIRE(run);
  CHECK(run->view.state == RunState::Succeeded);
  CHECK(run->view.trigger == RunTrigger::Push);

  auto stateOf = [&](const std::string& context) {
    std::string state;
    for (const auto& s : gitea.statuses("alice/infra", sha1))
      if (s.context == context) state = s.state + " " + s.description + " " + s.targetUrl;
    return state;
  };
  std::string runUrl = daemon.baseUrl() + "/runs/1";
  CHECK(
      tests::waitUntil([&] { return stateOf("switchyard/deploy/web1").rfind("success", 0) == 0; }));
  CHECK(stateOf("switchyard/deploy/web1").find(runUrl) != std::string::npos);
  CHECK(tests::waitUntil(
      [&] { return stateOf("switchyard/build/web2").find("success not affected") == 0; }));
  for (const auto& req : gitea.requests())
    if (req.method == "POST")
      CHECK(req.header("authorization").find(gitea.token()) != std::string::npos);

  // Comment commands on pull request 7 (the gateway reads the PR and the permission).
  gitea.addPullRequest({"alice/infra", 7, "open", false, sha1, "feature", sha0, "main"});
  gitea.setPermission("alice/infra", "alice", "write");
  gitea.setPermission("alice/infra", "bob", "read");
  auto comment = [&](const std::string& user, const std::string& id) {
    auto c = tests::webhookJson("gitea/issue_comment/zulip-issue-comment-in-pr.json");
    c["repository"]["full_name"] = "alice/infra";
    c["issue"]["number"] = 7;
    c["is_pull"] = true;
    c["comment"]["body"] = "/switchyard rerun web2";
    c["comment"]["user"]["login"] = user;
    c["sender"]["login"] = user;
    std::string b = c.dump();
    return tests::post(http, daemon.baseUrl() + "/hooks/home", b,
                       {{"X-Gitea-Event", "issue_comment"},
                        {"X-Gitea-Delivery", id},
                        {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, b)}});
  };
  REQUIRE(comment("alice", "c-1").status == 202);
  auto rerun = daemon.waitForRunState(2, std::chrono::seconds(30));
  REQUIRE(rerun);
  CHECK(rerun->view.trigger == RunTrigger::Comment);
  CHECK(rerun->view.sha == sha1);
  CHECK(rerun->view.prNumber == 7);
  CHECK(rerun->view.hostsFilter == std::vector<std::string>{"web2"});
  CHECK(rerun->view.state == RunState::Succeeded);

  REQUIRE(comment("bob", "c-2").status == 202);
  auto db = store::Database::open(app::databasePath(daemon.config()), store::Durability::Normal);
  CHECK(tests::waitUntil([&] {
    return db->query("SELECT state FROM deliveries WHERE delivery_id = 'c-2'").at(0).text(0) ==
           "ignored";
  }));
  CHECK(db->query("SELECT detail FROM deliveries WHERE delivery_id = 'c-2'")
            .at(0)
            .text(0)
            .find("re-run refused") == 0);
  CHECK(db->query("SELECT COUNT(*) FROM runs").at(0).integer(0) == 2);
  daemon.stop();
}

TEST_CASE("forge: a GitHub App takes the installation from a push delivery and never asks for it",
          "[integration][daemon][forge]") {
  tests::FakeGitHub github;
  github.enableApp(4242, {{"alice/infra", 78}});
  tests::TempGitRepo upstream;
  std::string sha0 = upstream.commit({{"flake.nix", "{ }"}}, "zero");
  std::string sha1 = upstream.commit({{"hosts/web1.nix", "{ }"}}, "one");
  os::TempDir tmp("sy-forge-app");
  Config config = tests::daemonConfig(tmp.path());
  os::writeFileAtomic(
      tmp.path() / "app.pem",
      tests::webhookJson(
          "github/app-jwt/universal-github-app-jwt-vector.json")["private_key_pkcs8_pem"]
          .get<std::string>());
  config.forges["hub"].url = github.baseUrl();
  config.forges["hub"].apiUrl = github.apiUrl();
  config.forges["hub"].appId = 4242;
  config.forges["hub"].privateKeyFile = tmp.path() / "app.pem";
  config.forges.erase("home");
  config.repos = {infraRepo("hub")};
  InstantParts parts;
  app::Daemon daemon(config, parts.options());
  daemon.start();
  http::CurlHttpClient http;

  auto push = tests::webhookJson("github/push/octokit-branch-created.json");
  push["ref"] = "refs/heads/main";
  push["before"] = sha0;
  push["after"] = sha1;
  push["created"] = false;
  push["repository"]["full_name"] = "alice/infra";
  push["repository"]["clone_url"] = upstream.path().string();
  push["installation"]["id"] = 78;
  std::string body = push.dump();
  auto r = tests::post(
      http, daemon.baseUrl() + "/hooks/hub", body,
      {{"X-GitHub-Event", "push"},
       {"X-GitHub-Delivery", "push-1"},
       {"X-Hub-Signature-256", "sha256=" + tests::hexHmac(tests::kGithubSecret, body)}});
  REQUIRE(r.status == 202);
  auto run = daemon.waitForRunState(1, std::chrono::seconds(30));
  REQUIRE(run);
  CHECK(run->view.state == RunState::Succeeded);
  CHECK(tests::waitUntil([&] { return github.checkRuns().size() >= 3; }));  // plan, build, deploy
  auto targets = github.targets();
  REQUIRE_FALSE(targets.empty());
  CHECK(targets.front() == "POST /app/installations/78/access_tokens");
  for (const auto& t : targets) CHECK(t != "GET /repos/alice/infra/installation");
  daemon.stop();
}

// ---------------------------------------------------------------------------------------------
// Repository identity (issue 17): alice/infra on a GitHub and on a Gitea are two repositories.

namespace {

// Plans like FixedPlanStage, records which repository it was given, and holds every plan
// while closed (so runs stay running and later pushes queue behind them).
class GatedPlanStage final : public PlanStage {
 public:
  struct Call {
    std::string forge;
    fs::path gitDir;
    std::string to;
  };
  Plan plan(const PlanInput& in) override {
    {
      std::unique_lock lk(mu_);
      calls_.push_back({in.repo ? in.repo->forge.value_or("") : "", in.gitDir, in.to});
      cv_.wait(lk, [&] { return open_; });
    }
    return inner_.plan(in);
  }
  void open() {
    std::scoped_lock lk(mu_);
    open_ = true;
    cv_.notify_all();
  }
  std::vector<Call> calls() {
    std::scoped_lock lk(mu_);
    return calls_;
  }

 private:
  tests::FixedPlanStage inner_{std::vector<std::string>{"web1", "web2"},
                               std::set<std::string>{"web1"}};
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::vector<Call> calls_;
};

// Opens the gate when the test leaves early, before the daemon waits for its workers.
struct GateOpener {
  GatedPlanStage& gate;
  ~GateOpener() { gate.open(); }
};

}  // namespace

TEST_CASE(
    "forge: the same owner/name on GitHub and Gitea — each push runs against its own mirror, "
    "reports to its own forge, and supersedes only its own queued runs",
    "[integration][daemon][forge]") {
  tests::FakeGitHub github;
  tests::FakeGitea gitea;
  // Two different histories under one name: a commit of one is not in the other.
  tests::TempGitRepo ghUp, gtUp;
  const std::string g0 = ghUp.commit({{"flake.nix", "{ } # github"}}, "zero");
  const std::string g1 = ghUp.commit({{"hosts/web1.nix", "{ } # g1"}}, "g1");
  const std::string g2 = ghUp.commit({{"hosts/web1.nix", "{ } # g2"}}, "g2");
  const std::string g3 = ghUp.commit({{"hosts/web1.nix", "{ } # g3"}}, "g3");
  const std::string t0 = gtUp.commit({{"flake.nix", "{ } # gitea"}}, "zero");
  const std::string t1 = gtUp.commit({{"hosts/web1.nix", "{ } # t1"}}, "t1");
  const std::string t2 = gtUp.commit({{"hosts/web1.nix", "{ } # t2"}}, "t2");

  os::TempDir tmp("sy-forge-ident");
  Config config = tests::daemonConfig(tmp.path());
  os::writeFileAtomic(tmp.path() / "github.token", github.token());
  os::writeFileAtomic(tmp.path() / "gitea.token", gitea.token());
  config.forges["hub"].url = github.baseUrl();
  config.forges["hub"].apiUrl = github.apiUrl();
  config.forges["hub"].tokenFile = tmp.path() / "github.token";
  config.forges["home"].url = gitea.baseUrl();
  config.forges["home"].apiUrl = gitea.apiUrl();
  config.forges["home"].tokenFile = tmp.path() / "gitea.token";
  RepoConfig onHub = infraRepo("hub"), onHome = infraRepo("home");
  onHub.url = ghUp.path().string();
  onHome.url = gtUp.path().string();
  config.repos = {onHub, onHome};

  InstantParts parts;
  GatedPlanStage gate;
  app::DaemonOptions o = parts.options();
  o.planner = &gate;
  o.runWorkers = 3;
  app::Daemon daemon(config, o);
  GateOpener opener{gate};
  daemon.start();
  http::CurlHttpClient http;

  auto pushHub = [&](const std::string& id, const std::string& before, const std::string& after) {
    auto j = tests::webhookJson("github/push/octokit-branch-created.json");
    j["ref"] = "refs/heads/main";
    j["before"] = before;
    j["after"] = after;
    j["created"] = false;
    j["repository"]["full_name"] = "alice/infra";
    j.erase("installation");
    std::string body = j.dump();
    return tests::post(
        http, daemon.baseUrl() + "/hooks/hub", body,
        {{"X-GitHub-Event", "push"},
         {"X-GitHub-Delivery", id},
         {"X-Hub-Signature-256", "sha256=" + tests::hexHmac(tests::kGithubSecret, body)}});
  };
  auto pushHome = [&](const std::string& id, const std::string& before, const std::string& after) {
    auto j = tests::webhookJson("gitea/push/go-scm-push.json");
    j["ref"] = "refs/heads/main";
    j["before"] = before;
    j["after"] = after;
    j["repository"]["full_name"] = "alice/infra";
    std::string body = j.dump();
    return tests::post(http, daemon.baseUrl() + "/hooks/home", body,
                       {{"X-Gitea-Event", "push"},
                        {"X-Gitea-Delivery", id},
                        {"X-Gitea-Signature", tests::hexHmac(tests::kGiteaSecret, body)}});
  };
  auto db = store::Database::open(app::databasePath(daemon.config()), store::Durability::Normal);
  auto stateOf = [&](int64_t run) {
    auto rows = db->query("SELECT state FROM runs WHERE id = ?1", {run});
    return rows.empty() ? std::string() : rows[0].text(0);
  };

  // Run 1 (GitHub) and run 2 (Gitea) both start: the same name and ref on another forge is
  // another repository, so one does not wait for the other.
  REQUIRE(pushHub("h1", g0, g1).status == 202);
  REQUIRE(tests::waitUntil([&] { return gate.calls().size() == 1; }));
  REQUIRE(pushHome("t1", t0, t1).status == 202);
  REQUIRE(tests::waitUntil([&] { return gate.calls().size() == 2; }));
  CHECK(stateOf(1) == "running");
  CHECK(stateOf(2) == "running");
  // Run 3 (GitHub g2) and run 4 (Gitea t2) queue behind them.
  REQUIRE(pushHub("h2", g1, g2).status == 202);
  REQUIRE(tests::waitUntil([&] { return stateOf(3) == "queued"; }));
  REQUIRE(pushHome("t2", t1, t2).status == 202);
  REQUIRE(tests::waitUntil([&] { return stateOf(4) == "queued"; }));
  // Run 5 (GitHub g3) supersedes GitHub's queued run 3, not Gitea's run 4.
  REQUIRE(pushHub("h3", g2, g3).status == 202);
  REQUIRE(tests::waitUntil([&] { return stateOf(5) == "queued"; }));
  CHECK(stateOf(3) == "superseded");
  CHECK(stateOf(4) == "queued");

  gate.open();
  for (int64_t id : {1, 2, 4, 5}) {
    auto run = daemon.waitForRunState(id, std::chrono::seconds(30));
    REQUIRE(run);
    INFO("run " << id << ": " << run->view.error);
    CHECK(run->view.state == RunState::Succeeded);
  }
  CHECK(stateOf(3) == "superseded");

  // Each run read its own forge's mirror, under mirrors/<forge>/<owner>/<name>.git.
  const fs::path hubMirror = config.stateDir / "mirrors" / "hub" / "alice" / "infra.git";
  const fs::path homeMirror = config.stateDir / "mirrors" / "home" / "alice" / "infra.git";
  auto calls = gate.calls();
  REQUIRE(calls.size() == 4);
  for (const auto& c : calls) {
    INFO(c.forge << " " << c.gitDir << " " << c.to);
    CHECK(c.gitDir == (c.forge == "hub" ? hubMirror : homeMirror));
    CHECK((c.forge == "hub" ? std::set<std::string>{g1, g3} : std::set<std::string>{t1, t2})
              .count(c.to) == 1);
  }
  CHECK(scheduler::hasCommit(hubMirror, g3));
  CHECK_FALSE(scheduler::hasCommit(hubMirror, t1));
  CHECK(scheduler::hasCommit(homeMirror, t2));
  CHECK_FALSE(scheduler::hasCommit(homeMirror, g1));

  // Statuses went to the forge the push came from, and only there.
  auto deployed = [](const std::vector<tests::FakeStatus>& ss) {
    for (const auto& s : ss)
      if (s.context == "switchyard/deploy/web1" && s.state == "success") return true;
    return false;
  };
  CHECK(tests::waitUntil([&] {
    return deployed(github.statuses("alice/infra", g3)) &&
           deployed(gitea.statuses("alice/infra", t2));
  }));
  CHECK(deployed(github.statuses("alice/infra", g1)));
  CHECK(deployed(gitea.statuses("alice/infra", t1)));
  for (const auto& r : github.requests())
    for (const auto& sha : {t0, t1, t2}) CHECK(r.path.find(sha) == std::string::npos);
  for (const auto& r : gitea.requests())
    for (const auto& sha : {g0, g1, g2, g3}) CHECK(r.path.find(sha) == std::string::npos);
  daemon.stop();

  // The CLI: a name on two forges needs --forge, and the error lists the candidates.
  const fs::path cfg = tmp.path() / "switchyard.yaml";
  os::writeFileAtomic(cfg,
                      "state_dir: " + config.stateDir.string() +
                          "\nforges:\n"
                          "  hub: {type: github, webhook_secret_file: " +
                          (tmp.path() / "github.secret").string() +
                          "}\n"
                          "  home: {type: gitea, url: https://git.example, webhook_secret_file: " +
                          (tmp.path() / "gitea.secret").string() +
                          "}\n"
                          "repos:\n"
                          "  - {forge: hub, name: alice/infra}\n"
                          "  - {forge: home, name: alice/infra}\n");
  auto ambiguous = tests::switchyard({"runs", "--config", cfg.string(), "--repo", "alice/infra"});
  CHECK(ambiguous.exitStatus == 2);
  CHECK(ambiguous.errTail.find("repository 'alice/infra' is ambiguous: hub:alice/infra, "
                               "home:alice/infra") != std::string::npos);
  auto homeRuns = tests::switchyard(
      {"runs", "--config", cfg.string(), "--repo", "alice/infra", "--forge", "home", "--json"});
  REQUIRE(homeRuns.exitStatus == 0);
  std::set<int64_t> ids;
  for (const auto& r : nlohmann::json::parse(homeRuns.out)) {
    CHECK(r["forge"] == "home");
    ids.insert(r["id"].get<int64_t>());
  }
  CHECK(ids == std::set<int64_t>{2, 4});
  auto table = tests::switchyard({"runs", "--config", cfg.string()});
  CHECK(table.out.find("hub:alice/infra") != std::string::npos);
  CHECK(table.out.find("home:alice/infra") != std::string::npos);
  // `--repo NAME` reads that repository's mirror; which one, --forge says.
  auto plan = [&](const std::vector<std::string>& more) {
    std::vector<std::string> args = {"plan",   "--mode",      "static", "--config", cfg.string(),
                                     "--repo", "alice/infra", "--from", t1,         "--to",
                                     t2};
    args.insert(args.end(), more.begin(), more.end());
    return tests::switchyard(args);
  };
  auto noForge = plan({});
  CHECK(noForge.exitStatus == 2);
  CHECK(noForge.errTail.find("is ambiguous: hub:alice/infra, home:alice/infra — pass --forge "
                             "hub or --forge home") != std::string::npos);
  auto wrongForge = plan({"--forge", "hub"});  // t1 is Gitea's commit: not in GitHub's mirror
  CHECK(wrongForge.exitStatus == 2);
  CHECK(wrongForge.errTail.find(t1) != std::string::npos);
  auto rightForge = plan({"--forge", "home"});
  INFO(rightForge.errTail);
  CHECK(rightForge.errTail.find(t1) == std::string::npos);
  CHECK(rightForge.errTail.find("ambiguous") == std::string::npos);
  auto unknown = plan({"--forge", "nope"});
  CHECK(unknown.exitStatus == 2);
  CHECK(unknown.errTail.find("--forge: no forge named 'nope' in the config") != std::string::npos);
}

TEST_CASE("forge: a state directory with mirrors of the old layout is migrated at start",
          "[integration][daemon][forge]") {
  tests::TempGitRepo upstream;
  const std::string sha0 = upstream.commit({{"flake.nix", "{ }"}}, "zero");
  const std::string sha1 = upstream.commit({{"hosts/web1.nix", "{ }"}}, "one");
  os::TempDir tmp("sy-forge-migrate");
  Config config = tests::daemonConfig(tmp.path());
  config.forges.erase("hub");
  RepoConfig repo = infraRepo("home");
  repo.url = (tmp.path() / "gone").string();  // nothing to fetch from: the mirror must do
  config.repos = {repo};
  // The layout before (forge, name): <state_dir>/mirrors/<owner>/<name>.git
  const fs::path old = config.stateDir / "mirrors" / "alice" / "infra.git";
  fs::create_directories(old.parent_path());
  tests::run("git", {"clone", "--bare", "--quiet", upstream.path().string(), old.string()});
  REQUIRE(scheduler::hasCommit(old, sha1));

  InstantParts parts;
  tests::RecordingLogger log;
  app::DaemonOptions o = parts.options();
  o.log = &log;
  app::Daemon daemon(config, o);
  daemon.start();
  const fs::path moved = config.stateDir / "mirrors" / "home" / "alice" / "infra.git";
  CHECK(scheduler::hasCommit(moved, sha1));
  CHECK_FALSE(fs::exists(old));
  CHECK(log.all().find("moved the mirror of alice/infra to " + moved.string()) !=
        std::string::npos);

  // A push of a commit the old mirror had deploys from the moved mirror (no fetch).
  http::CurlHttpClient http;
  auto r = tests::postHook(http, daemon.baseUrl(), "hook-1", "alice/infra", "refs/heads/main", sha0,
                           sha1);
  REQUIRE(r.status == 202);
  auto run = daemon.waitForRunState(1, std::chrono::seconds(30));
  REQUIRE(run);
  INFO(run->view.error);
  CHECK(run->view.state == RunState::Succeeded);
  daemon.stop();
}

TEST_CASE("forge: an old-layout mirror whose name is now on two forges is left in place",
          "[integration][forge]") {
  tests::TempGitRepo upstream;
  upstream.commit({{"flake.nix", "{ }"}}, "zero");
  os::TempDir tmp("sy-forge-migrate2");
  const fs::path state = tmp.path() / "state";
  const fs::path old = state / "mirrors" / "alice" / "infra.git";
  fs::create_directories(old.parent_path());
  tests::run("git", {"clone", "--bare", "--quiet", upstream.path().string(), old.string()});
  RepoConfig onHub = infraRepo("hub"), onHome = infraRepo("home"), other = infraRepo("home");
  other.name = "alice/other";  // no old mirror: nothing to do
  tests::RecordingLogger log;
  CHECK(scheduler::migrateMirrorLayout(state, {onHub, onHome, other}, log) == 0);
  CHECK(fs::exists(old / "HEAD"));
  CHECK_FALSE(fs::exists(state / "mirrors" / "hub" / "alice" / "infra.git"));
  CHECK(log.all().find("alice/infra is configured on several forges (hub, home)") !=
        std::string::npos);
  // With one of them left, it moves; a second start finds nothing to move.
  CHECK(scheduler::migrateMirrorLayout(state, {onHome}, log) == 1);
  CHECK(fs::exists(state / "mirrors" / "home" / "alice" / "infra.git" / "HEAD"));
  CHECK(scheduler::migrateMirrorLayout(state, {onHome}, log) == 0);
}
