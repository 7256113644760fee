// Re-runs from the forge (runner/report/gateway.h), from recorded webhook payloads parsed by
// the integrations, against FakeGitea/FakeGitHub: a comment command by a writer (permission
// asked, head sha read from the PR, +1 reaction), by a reader and by an unknown user (refused
// with a reply), on a closed PR, while the forge is down (retry, nothing posted), on a fork
// PR (accepted as a build); GitHub check_run rerequested and requested_action mapped back to
// the host and stage through the external_id our check run carries; check_suite
// rerequested; UI re-runs; and the App installation noted from the event.
#include <catch2/catch.hpp>

#include "integrations/gitea/webhook.h"
#include "integrations/github/webhook.h"
#include "tests/runner/report/report_fixture.h"

using namespace tests::report;
using nlohmann::json;
using runner::EventKind;
using runner::RunTrigger;
using runner::Stage;
using Decision = runner::report::GatewayDecision;

namespace {

runner::Event githubEvent(const std::string& name, const json& payload) {
  auto d = tests::delivery(payload.dump(),
                           {{"X-GitHub-Event", name}, {"X-GitHub-Delivery", "d-" + name}});
  auto parsed = integrations::github::parseDelivery(d, {"home"});
  REQUIRE(parsed.ok());
  return parsed.event;
}

runner::Event giteaEvent(const std::string& name, const json& payload) {
  auto d =
      tests::delivery(payload.dump(), {{"X-Gitea-Event", name}, {"X-Gitea-Delivery", "d-" + name}});
  auto parsed = integrations::gitea::parseDelivery(d, {"home", "gitea"});
  REQUIRE(parsed.ok());
  return parsed.event;
}

// GitHub's issue_comment on PR #7 of alice/infra by `user` saying `body` (the comment is
// made on the fake too, so it can be reacted to).
runner::Event githubComment(tests::FakeGitHub& github, const std::string& user,
                            const std::string& body) {
  json p = tests::webhookJson("github/issue_comment/go-scm-created-on-pr.json");
  p["repository"]["full_name"] = kRepo;
  p["issue"]["number"] = 7;
  p["comment"]["id"] = github.addComment(kRepo, 7, user, body);
  p["comment"]["body"] = body;
  p["comment"]["user"]["login"] = user;
  p["sender"]["login"] = user;
  auto e = githubEvent("issue_comment", p);
  REQUIRE(e.kind == EventKind::CommentCommand);
  return e;
}

tests::FakePullRequest openPr() {
  tests::FakePullRequest pr;
  pr.repo = kRepo;
  pr.number = 7;
  pr.headSha = kSha;
  pr.baseSha = kBase;
  return pr;
}

}  // namespace

TEST_CASE(
    "gateway: a writer's /switchyard rerun on GitHub — permission asked, head read from "
    "the pull request, +1 on the comment",
    "[integration][report]") {
  GitHubFixture f;
  f.github.setPermission(kRepo, "alice", "write");
  f.github.addPullRequest(openPr());
  auto e = githubComment(f.github, "alice", "please\n/switchyard rerun web1 db\nthanks");
  CHECK(e.headSha.empty());  // GitHub does not say

  Decision d = f.gateway->handle(e);
  REQUIRE(d.kind == Decision::Kind::Accepted);
  CHECK(d.request.forge == "home");
  CHECK(d.request.repo == kRepo);
  CHECK(d.request.sha == kSha);
  CHECK(d.request.prNumber == 7);
  CHECK(d.request.hosts == std::vector<std::string>{"web1", "db"});
  CHECK_FALSE(d.request.stage);
  CHECK_FALSE(d.request.runId);
  CHECK_FALSE(d.request.fromFork);
  CHECK(d.request.trigger == RunTrigger::Comment);
  CHECK(d.request.requestedBy == "alice");
  CHECK(f.github.targets() == std::vector<std::string>{
                                  "GET /repos/alice/infra/collaborators/alice/permission",
                                  "GET /repos/alice/infra/pulls/7",
                              });
  f.github.clearRequests();
  f.drain();
  const std::string reactions =
      "POST /repos/alice/infra/issues/comments/" + std::to_string(e.commentId) + "/reactions";
  CHECK(f.github.targets() == std::vector<std::string>{reactions});
  CHECK(f.github.requests()[0].json() == json{{"content", "+1"}});
  CHECK(f.github.requests()[0].header("Authorization") == "Bearer " + f.github.token());

  // the same delivery again (a redelivery): accepted again, but no second reaction
  f.github.clearRequests();
  CHECK(f.gateway->handle(e).accepted());
  f.drain();
  CHECK(targetsOf(f.github, "POST").empty());
  for (const auto& r : f.rows()) CHECK(r.state == runner::store::OutboxState::Sent);
  CHECK(f.github.reactions().size() == 1);
}

TEST_CASE("gateway: a reader's and a stranger's commands are refused with a reply",
          "[integration][report]") {
  GitHubFixture f;
  f.github.setPermission(kRepo, "mallory", "read");
  f.github.addPullRequest(openPr());

  Decision d = f.gateway->handle(githubComment(f.github, "mallory", "/switchyard rerun"));
  CHECK(d.kind == Decision::Kind::Refused);
  CHECK(d.reason ==
        "only people with write access to alice/infra can ask for re-runs (your "
        "access: read).");
  CHECK(f.github.targets() ==
        std::vector<std::string>{"GET /repos/alice/infra/collaborators/mallory/permission"});
  f.github.clearRequests();
  f.drain();
  CHECK(f.github.targets() ==
        std::vector<std::string>{"POST /repos/alice/infra/issues/7/comments"});
  CHECK(f.github.requests()[0].json()["body"] ==
        "@mallory Switchyard did not re-run anything: only people with write access to "
        "alice/infra can ask for re-runs (your access: read).");

  // unknown to the forge (404): no
  f.github.clearRequests();
  Decision stranger = f.gateway->handle(githubComment(f.github, "eve", "/switchyard rerun web1"));
  CHECK(stranger.kind == Decision::Kind::Refused);
  CHECK(stranger.reason.find("(your access: none)") != std::string::npos);
  f.drain();
  CHECK(targetsOf(f.github, "POST") ==
        std::vector<std::string>{"POST /repos/alice/infra/issues/7/comments"});
  CHECK(f.github.comments(kRepo, 7).back().body.rfind("@eve Switchyard did not re-run", 0) == 0);
}

TEST_CASE(
    "gateway: commands on a closed pull request are refused, a forge that cannot answer "
    "means try later, with nothing posted",
    "[integration][report]") {
  GitHubFixture f;
  f.github.setPermission(kRepo, "alice", "admin");
  auto closed = openPr();
  closed.state = "closed";
  f.github.addPullRequest(closed);
  Decision d = f.gateway->handle(githubComment(f.github, "alice", "/switchyard rerun"));
  CHECK(d.kind == Decision::Kind::Refused);
  CHECK(d.reason == "pull request #7 is closed.");

  f.github.failNext(tests::Fault::serverError(502), 1);
  f.github.clearRequests();
  Decision later = f.gateway->handle(githubComment(f.github, "alice", "/switchyard rerun"));
  CHECK(later.kind == Decision::Kind::Retry);
  CHECK(later.reason.find("HTTP 502") != std::string::npos);
  f.github.failNext(tests::Fault::tooManyRequests(20), 1);
  Decision limited = f.gateway->handle(githubComment(f.github, "alice", "/switchyard rerun"));
  CHECK(limited.kind == Decision::Kind::Retry);
  CHECK(limited.retryAfter == std::chrono::seconds(20));
  f.drain();
  // only the reply about the closed pull request was ever posted
  CHECK(targetsOf(f.github, "POST") ==
        std::vector<std::string>{"POST /repos/alice/infra/issues/7/comments"});
  CHECK(f.github.comments(kRepo, 7).size() == 4);  // the three commands and one reply
}

TEST_CASE(
    "gateway: on a Gitea pull request from a fork, a writer's command is a build-only "
    "re-run, a reader's is refused",
    "[integration][report]") {
  GiteaFixture f;
  json p = tests::webhookJson("gitea/issue_comment/zulip-pr-comment-from-fork.json");
  const std::string repo = p["repository"]["full_name"];
  p["comment"]["body"] = "/switchyard rerun web1";
  p["comment"]["id"] = f.gitea.addComment(repo, p["issue"]["number"].get<int64_t>(),
                                          p["comment"]["user"]["login"], "/switchyard rerun web1");
  auto e = giteaEvent("issue_comment", p);
  REQUIRE(e.kind == EventKind::CommentCommand);
  REQUIRE(e.fromFork);
  REQUIRE_FALSE(e.headSha.empty());  // newer Gitea sends the pull request along

  f.gitea.setPermission(repo, e.commentAuthor, "write");
  Decision d = f.gateway->handle(e);
  REQUIRE(d.accepted());
  CHECK(d.request.fromFork);
  CHECK(d.request.sha == e.headSha);
  CHECK(d.request.hosts == std::vector<std::string>{"web1"});
  CHECK(f.gitea.targets() ==
        std::vector<std::string>{"GET /api/v1/repos/" + repo + "/collaborators/" + e.commentAuthor +
                                 "/permission"});  // no pull request lookup
  f.drain();
  CHECK(f.gitea.requests().back().target() == "POST /api/v1/repos/" + repo + "/issues/comments/" +
                                                  std::to_string(e.commentId) + "/reactions");
  CHECK(f.gitea.requests().back().header("Authorization") == "token " + f.gitea.token());

  f.gitea.setPermission(repo, e.commentAuthor, "read");
  f.gitea.clearRequests();
  CHECK(f.gateway->handle(e).kind == Decision::Kind::Refused);
  f.drain();
  CHECK(f.gitea.targets().back() ==
        "POST /api/v1/repos/" + repo + "/issues/" + std::to_string(e.prNumber) + "/comments");

  // Gitea shows others' permissions only to repository admins: a writer is then not told
  // they lack access, but what stopped the check and how to fix it.
  f.gitea.setPermission(repo, e.commentAuthor, "write");
  f.gitea.setBotRepoAdmin(false);
  Decision blind = f.gateway->handle(e);
  CHECK(blind.kind == Decision::Kind::Refused);
  CHECK(blind.reason.find("Switchyard could not check " + e.commentAuthor + "'s access to") == 0);
  CHECK(blind.reason.find("HTTP 403") != std::string::npos);
  CHECK(blind.reason.find("give Switchyard's account admin access to the repository") !=
        std::string::npos);
  CHECK(blind.reason.find("your access") == std::string::npos);
}

TEST_CASE(
    "gateway: GitHub check_run rerequested and requested_action name the host and stage "
    "of the check run the reporter made, check_suite rerequested the whole commit",
    "[integration][report]") {
  GitHubAppFixture f;
  auto run = prRun();
  f.reporter->runQueued(run);
  f.reporter->planned(run, fleetPlan());
  auto web2 = hostView("web2", Stage::Build, runner::HostState::Failed, "build failed");
  f.reporter->hostChanged(run, web2);
  f.drain();
  json created;
  for (const auto& [id, cr] : f.github.checkRuns())
    if (cr["name"] == "switchyard/build/web2") created = cr;
  REQUIRE(created["external_id"] == "run:12:build:web2");
  REQUIRE(created["actions"][0]["identifier"] == "rerun");

  auto checkRunEvent = [&](const std::string& fixture, const std::string& identifier) {
    json p = tests::webhookJson(fixture);
    p["repository"]["full_name"] = kRepo;
    p["installation"]["id"] = kInstallation;
    p["check_run"]["id"] = created["id"];
    p["check_run"]["head_sha"] = kSha;
    p["check_run"]["external_id"] = created["external_id"];
    if (!identifier.empty()) p["requested_action"]["identifier"] = identifier;
    return githubEvent("check_run", p);
  };
  f.github.clearRequests();

  Decision again =
      f.gateway->handle(checkRunEvent("github/check_run/octokit-rerequested.json", ""));
  REQUIRE(again.accepted());
  CHECK(again.request.sha == kSha);
  CHECK(again.request.runId == std::optional<int64_t>(12));
  CHECK(again.request.stage == std::optional<Stage>(Stage::Build));
  CHECK(again.request.hosts == std::vector<std::string>{"web2"});
  CHECK(again.request.trigger == RunTrigger::Rerequest);

  Decision button =
      f.gateway->handle(checkRunEvent("github/check_run/octokit-requested-action.json", "rerun"));
  REQUIRE(button.accepted());
  CHECK(button.request.runId == std::optional<int64_t>(12));
  CHECK(button.request.stage == std::optional<Stage>(Stage::Build));
  CHECK(button.request.hosts == std::vector<std::string>{"web2"});

  Decision other = f.gateway->handle(
      checkRunEvent("github/check_run/octokit-requested-action.json", "lgtm|26764"));
  CHECK(other.kind == Decision::Kind::Refused);
  CHECK(other.reason == "unknown check run action 'lgtm|26764'");

  json foreign = tests::webhookJson("github/check_run/octokit-rerequested.json");
  foreign["repository"]["full_name"] = kRepo;
  Decision notOurs = f.gateway->handle(githubEvent("check_run", foreign));
  CHECK(notOurs.kind == Decision::Kind::Refused);
  CHECK(notOurs.reason.find("is not one of Switchyard's") != std::string::npos);

  json suite = tests::webhookJson("github/check_suite/octokit-rerequested.json");
  suite["repository"]["full_name"] = kRepo;
  Decision commit = f.gateway->handle(githubEvent("check_suite", suite));
  REQUIRE(commit.accepted());
  CHECK(commit.request.sha == "ec26c3e57ca3a959ca5aad62de7213c562f8c821");
  CHECK(commit.request.hosts.empty());
  CHECK_FALSE(commit.request.stage);
  CHECK_FALSE(commit.request.runId);
  CHECK(commit.request.prNumber == 2);

  // none of this asked the forge anything or posted anything
  f.drain();
  CHECK(f.github.requests().empty());
}

TEST_CASE("gateway: the App installation named by an event is used without looking it up",
          "[integration][report]") {
  GitHubAppFixture f;
  json suite = tests::webhookJson("github/check_suite/octokit-rerequested.json");
  suite["repository"]["full_name"] = kRepo;
  suite["installation"]["id"] = kInstallation;
  f.gateway->observe(githubEvent("check_suite", suite));
  f.reporter->runQueued(prRun());
  f.drain();
  CHECK(f.github.targets() == std::vector<std::string>{"POST /app/installations/77/access_tokens",
                                                       "POST /repos/alice/infra/check-runs"});
}

TEST_CASE("gateway: re-runs from the UI and the CLI pass through", "[unit][report]") {
  GiteaFixture f;
  runner::Event e;
  e.kind = EventKind::Rerun;
  e.forgeType = "ui";
  e.repo = kRepo;
  e.after = kSha;
  e.runId = 12;
  e.stage = "deploy";
  e.hosts = {"web1"};
  e.sender = "admin";
  Decision d = f.gateway->handle(e);
  REQUIRE(d.accepted());
  CHECK(d.request.sha == kSha);
  CHECK(d.request.runId == std::optional<int64_t>(12));
  CHECK(d.request.stage == std::optional<Stage>(Stage::Deploy));
  CHECK(d.request.trigger == RunTrigger::Manual);
  runner::Event push;
  push.kind = EventKind::Push;
  push.forge = "home";
  CHECK(f.gateway->handle(push).kind == Decision::Kind::Refused);
  CHECK(f.gitea.requests().empty());
}
