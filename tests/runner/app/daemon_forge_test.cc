// The daemon with a forge: a signed Gitea push webhook (a recorded payload pointed at a
// repository in a temp dir) makes a deploy run whose statuses reach a fake Gitea through
// runner/report's outbox, with the run page as target_url; a "/switchyard rerun web2" comment
// by a writer goes through the re-run gateway (permission and pull request asked of the fake
// forge) and re-runs that host; the same comment by a reader is refused. Stages are fakes
// here (the real ones are in daemon_e2e_test.cc): this is about the wiring.
#include <filesystem>
#include <thread>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/app/daemon.h"
#include "runner/core/log.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "runner/store/runs.h"
#include "tests/integrations/test_helpers.h"
#include "tests/runner/app/daemon_helpers.h"
#include "tests/support/fake_forge.h"
#include "tests/support/fake_stages.h"
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

namespace {}  // namespace

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
