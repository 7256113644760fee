// The GitHub API client against FakeGitHub over real HTTP (libcurl, loopback): headers and
// bodies of every call, the 140-character description limit, comment pagination through
// Link headers, check runs, and GitHub App authentication — JWT -> installation token,
// cached, refreshed before expiry (manual clock), re-minted after a 401, minted once under
// concurrency — plus the retry classification the outbox relies on.
#include <atomic>
#include <thread>

#include <catch2/catch.hpp>

#include "integrations/github/client.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "tests/integrations/test_helpers.h"
#include "tests/support/fake_forge.h"

using namespace std::chrono_literals;
using runner::CallStatus;
using runner::CheckConclusion;
using runner::CheckStatus;
using runner::CommentRef;
using runner::StatusState;

namespace {

const std::string kSha = "ec26c3e57ca3a959ca5aad62de7213c562f8c821";
const std::string kRepo = "alice/infra";
constexpr int64_t kAppId = 4242;
constexpr int64_t kInstallation = 77;

std::string appKey() {
  return tests::webhookJson(
      "github/app-jwt/universal-github-app-jwt-vector.json")["private_key_pkcs8_pem"];
}

nlohmann::json jwtClaims(const std::string& authorization) {
  auto parts = runner::split(authorization.substr(std::string("Bearer ").size()), '.');
  REQUIRE(parts.size() == 3);
  auto claims = runner::crypto::base64UrlDecode(parts[1]);
  REQUIRE(claims.has_value());
  return nlohmann::json::parse(*claims);
}

// GitHub with a personal token.
struct TokenFixture {
  tests::FakeGitHub github;
  runner::http::CurlHttpClient http;
  tests::ManualClock clock;
  tests::RecordingLogger log;
  std::unique_ptr<runner::Forge> forge = integrations::github::makeForge(
      {.forgeName = "gh", .apiUrl = github.apiUrl(), .token = github.token(), .timeout = 2s}, http,
      clock, log);
};

// GitHub as an App installed on alice/infra.
struct AppFixture {
  AppFixture() {
    github.enableApp(kAppId, {{kRepo, kInstallation}, {"alice/other", 78}});
    github.setClock([this] { return clock.now(); });
  }
  tests::FakeGitHub github;
  runner::http::CurlHttpClient http;
  tests::ManualClock clock;
  tests::RecordingLogger log;
  runner::Redactor redactor;
  std::unique_ptr<runner::Forge> forge = integrations::github::makeForge({.forgeName = "gh",
                                                                          .apiUrl = github.apiUrl(),
                                                                          .appId = kAppId,
                                                                          .privateKeyPem = appKey(),
                                                                          .timeout = 2s,
                                                                          .redactor = &redactor},
                                                                         http, clock, log);
  const runner::CommitStatus status{StatusState::Pending, "switchyard/plan", "planning", ""};
  const std::string statusTarget = "POST /repos/alice/infra/statuses/" + kSha;
};

}  // namespace

TEST_CASE("github client: a commit status with GitHub's headers, description cut to 140",
          "[integration][github]") {
  TokenFixture f;
  std::string description;
  for (int i = 0; i < 30; ++i) description += "r\xc3\xa9sum\xc3\xa9 ";  // 7 characters, 9 bytes
  auto r = f.forge->setStatus(kRepo, kSha,
                              {StatusState::Failure, "switchyard/deploy/octavia", description,
                               "https://ci.example.org/runs/9#octavia"});
  INFO(r.message);
  CHECK(r.ok());
  CHECK(r.httpStatus == 201);
  auto req = f.github.requests().at(0);
  CHECK(req.target() == "POST /repos/alice/infra/statuses/" + kSha);
  CHECK(req.header("Authorization") == "Bearer " + f.github.token());
  CHECK(req.header("Accept") == "application/vnd.github+json");
  CHECK(req.header("X-GitHub-Api-Version") == "2022-11-28");
  CHECK(req.header("User-Agent") == "switchyard/0.1");
  auto body = req.json();
  CHECK(body["state"] == "failure");
  CHECK(body["context"] == "switchyard/deploy/octavia");
  CHECK(body["target_url"] == "https://ci.example.org/runs/9#octavia");
  const std::string sent = body["description"];
  CHECK(sent == runner::truncateChars(description, 140));
  CHECK(runner::endsWith(sent, "\xe2\x80\xa6"));
  CHECK(f.github.statuses(kRepo, kSha).size() == 1);
  CHECK(f.forge->capabilities().maxStatusDescription == 140);
  CHECK_FALSE(f.forge->capabilities().checkRuns);
}

TEST_CASE("github client: the PR comment is found across pages and edited in place",
          "[integration][github]") {
  TokenFixture f;
  const std::string marker = "<!-- switchyard:plan -->";
  for (int i = 0; i < 120; ++i)
    f.github.addComment(kRepo, 2, "bob", "comment " + std::to_string(i));
  int64_t ours = f.github.addComment(kRepo, 2, "switchyard-bot", marker + "\nold plan");
  for (int i = 0; i < 10; ++i) f.github.addComment(kRepo, 2, "carol", "later " + std::to_string(i));

  auto r = f.forge->upsertComment(kRepo, 2, marker, "new plan");
  REQUIRE(r.ok());
  CHECK(r.value.change == CommentRef::Change::Updated);
  CHECK(r.value.id == ours);
  CHECK(
      f.github.targets() ==
      std::vector<std::string>{"GET /user", "GET /repos/alice/infra/issues/2/comments?per_page=100",
                               "GET /repos/alice/infra/issues/2/comments?per_page=100&page=2",
                               "PATCH /repos/alice/infra/issues/comments/" + std::to_string(ours)});
  CHECK(f.github.requests()[3].json() == nlohmann::json{{"body", marker + "\nnew plan"}});
  CHECK(f.github.comments(kRepo, 2).size() == 131);

  f.github.clearRequests();
  auto fresh = f.forge->upsertComment(kRepo, 3, marker, "first plan");
  REQUIRE(fresh.ok());
  CHECK(fresh.value.change == CommentRef::Change::Created);
  CHECK(f.github.targets() ==
        std::vector<std::string>{"GET /repos/alice/infra/issues/3/comments?per_page=100",
                                 "POST /repos/alice/infra/issues/3/comments"});
}

TEST_CASE(
    "github client: the comment whose id is known is edited without listing, and found "
    "again when it was deleted",
    "[integration][github]") {
  TokenFixture f;
  const std::string marker = "<!-- switchyard:plan -->";
  for (int i = 0; i < 150; ++i)
    f.github.addComment(kRepo, 4, "bob", "chatter " + std::to_string(i));
  auto first = f.forge->upsertComment(kRepo, 4, marker, "plan 1");
  REQUIRE(first.ok());
  CHECK(first.value.change == CommentRef::Change::Created);

  f.github.clearRequests();
  auto second = f.forge->updateComment(kRepo, 4, first.value.id, marker, "plan 2");
  REQUIRE(second.ok());
  CHECK(second.value.change == CommentRef::Change::Updated);
  CHECK(second.value.id == first.value.id);
  CHECK(runner::endsWith(second.value.url, "#issuecomment-" + std::to_string(first.value.id)));
  const std::string patch = "PATCH /repos/alice/infra/issues/comments/";
  CHECK(f.github.targets() ==
        std::vector<std::string>{patch + std::to_string(first.value.id)});  // no GET pages
  CHECK(f.github.comments(kRepo, 4).back().body == marker + "\nplan 2");

  // someone deleted it: the edit answers 404, then the list is read and a new one posted
  REQUIRE(f.github.deleteComment(first.value.id));
  f.github.clearRequests();
  auto third = f.forge->updateComment(kRepo, 4, first.value.id, marker, "plan 3");
  REQUIRE(third.ok());
  CHECK(third.value.change == CommentRef::Change::Created);
  CHECK(third.value.id != first.value.id);
  CHECK(f.github.targets() ==
        std::vector<std::string>{patch + std::to_string(first.value.id),
                                 "GET /repos/alice/infra/issues/4/comments?per_page=100",
                                 "GET /repos/alice/infra/issues/4/comments?per_page=100&page=2",
                                 "POST /repos/alice/infra/issues/4/comments"});
  CHECK(f.github.comments(kRepo, 4).back().body == marker + "\nplan 3");
}

TEST_CASE("github client: contexts that differ only in case are refused, not overwritten",
          "[integration][github]") {
  TokenFixture f;
  CHECK(f.forge->capabilities().statusContextsIgnoreCase);
  const runner::CommitStatus lower{StatusState::Success, "switchyard/build/web", "built", ""};
  const runner::CommitStatus upper{StatusState::Failure, "switchyard/build/Web", "failed", ""};
  REQUIRE(f.forge->setStatus(kRepo, kSha, lower).ok());
  auto clash = f.forge->setStatus(kRepo, kSha, upper);
  CHECK(clash.status == CallStatus::Permanent);
  CHECK(clash.httpStatus == 0);
  CHECK(clash.message ==
        "forge 'gh' compares status contexts without case: 'switchyard/build/Web' would "
        "replace 'switchyard/build/web' on ec26c3e57ca3 — rename one of the two hosts whose "
        "names differ only in case, or report through a GitHub App (check runs keep them "
        "apart)");
  CHECK(f.github.requests().size() == 1);  // nothing sent: web's status stands
  // the same context again, and the other case on another commit, are fine
  CHECK(f.forge->setStatus(kRepo, kSha, lower).ok());
  CHECK(f.forge->setStatus(kRepo, std::string(40, 'a'), upper).ok());
  CHECK(f.forge->setStatus("alice/other", kSha, upper).ok());
  CHECK(f.github.requests().size() == 4);
}

TEST_CASE(
    "github client: a renamed repository is followed on the same host, and its new name "
    "logged",
    "[integration][github]") {
  TokenFixture f;
  f.github.renameRepo(kRepo, "alice/fleet", 1296269);
  auto r = f.forge->setStatus(kRepo, kSha, {StatusState::Success, "switchyard/plan", "ok", ""});
  INFO(r.message);
  CHECK(r.ok());
  CHECK(r.httpStatus == 201);
  CHECK(f.github.statuses("alice/fleet", kSha).size() == 1);
  f.github.addPullRequest({"alice/fleet", 9, "open", false, kSha, "feature", kSha, "main"});
  auto pr = f.forge->pullRequest(kRepo, 9);
  REQUIRE(pr.ok());
  CHECK(pr.value.baseRepo == "alice/fleet");
  auto reqs = f.github.requests();
  CHECK(f.github.targets() ==
        std::vector<std::string>{"POST /repos/alice/infra/statuses/" + kSha,
                                 "GET /repositories/1296269",  // its new name, asked once
                                 "POST /repositories/1296269/statuses/" + kSha,
                                 "GET /repos/alice/infra/pulls/9",
                                 "GET /repositories/1296269/pulls/9"});
  CHECK(reqs[0].answeredStatus == 307);
  CHECK(reqs[3].answeredStatus == 301);
  CHECK(reqs[2].json()["context"] == "switchyard/plan");  // the same body again
  CHECK(reqs[2].header("Authorization") == "Bearer " + f.github.token());
  const std::string log = f.log.all();
  CHECK(log.find("repository alice/infra has moved to alice/fleet") != std::string::npos);
  CHECK(log.find("update repos[].name in the configuration to alice/fleet") != std::string::npos);

  // a redirect to another host is never followed: the token stays with the API
  f.github.failNext(
      {.status = 301,
       .headers = {{"Location", "http://127.0.0.2:9/repos/alice/infra/statuses/" + kSha}},
       .body = R"({"message":"Moved Permanently"})"});
  f.github.clearRequests();
  auto away = f.forge->setStatus(kRepo, kSha, {StatusState::Success, "switchyard/plan", "ok", ""});
  CHECK(away.status == CallStatus::Permanent);
  CHECK(away.httpStatus == 301);
  CHECK(away.message.find("(moved to http://127.0.0.2:9/") != std::string::npos);
  CHECK(f.github.requests().size() == 1);
}

TEST_CASE("github client: permissions read role_name, so maintain can write and triage cannot",
          "[integration][github]") {
  TokenFixture f;
  f.github.setPermission(kRepo, "mia", "write", "maintain");
  f.github.setPermission(kRepo, "tom", "read", "triage");
  f.github.setPermission(kRepo, "ada", "admin");
  f.github.setPermission(kRepo, "wes", "write");
  auto mia = f.forge->userPermission(kRepo, "mia");
  REQUIRE(mia.ok());
  CHECK(mia.value.level == "maintain");
  CHECK(mia.value.canWrite);
  auto tom = f.forge->userPermission(kRepo, "tom");
  CHECK(tom.value.level == "triage");
  CHECK_FALSE(tom.value.canWrite);
  CHECK(f.forge->userPermission(kRepo, "ada").value.canWrite);
  CHECK(f.forge->userPermission(kRepo, "wes").value.canWrite);
  CHECK(f.github.requests()[0].target() == "GET /repos/alice/infra/collaborators/mia/permission");
  auto nobody = f.forge->userPermission(kRepo, "nobody");
  CHECK(nobody.httpStatus == 404);
  CHECK(nobody.ok());
  CHECK(nobody.value.level == "none");
  CHECK_FALSE(nobody.value.canWrite);
}

TEST_CASE("github client: pull requests, replies and reactions", "[integration][github]") {
  TokenFixture f;
  f.github.addPullRequest({.repo = kRepo,
                           .number = 8,
                           .headSha = kSha,
                           .headRef = "patch",
                           .baseSha = "f95f852bd8fca8fcc58a9a2d6c842781e32a215e",
                           .headRepo = ""});  // the fork was deleted
  auto pr = f.forge->pullRequest(kRepo, 8);
  REQUIRE(pr.ok());
  CHECK(pr.value.headSha == kSha);
  CHECK(pr.value.headRef == "patch");
  CHECK(pr.value.baseSha == "f95f852bd8fca8fcc58a9a2d6c842781e32a215e");
  CHECK(pr.value.headRepo.empty());
  CHECK(pr.value.fromFork);

  int64_t command = f.github.addComment(kRepo, 8, "mallory", "/switchyard rerun");
  auto reply = f.forge->postComment(kRepo, 8, "@mallory needs write access to re-run.");
  REQUIRE(reply.ok());
  CHECK(f.forge->addReaction(kRepo, command, runner::Reaction::Confused).ok());
  CHECK(f.github.targets() ==
        std::vector<std::string>{
            "GET /repos/alice/infra/pulls/8", "POST /repos/alice/infra/issues/8/comments",
            "POST /repos/alice/infra/issues/comments/" + std::to_string(command) + "/reactions"});
  CHECK(f.github.requests()[1].json() ==
        nlohmann::json{{"body", "@mallory needs write access to re-run."}});
  CHECK(f.github.requests()[2].json() == nlohmann::json{{"content", "confused"}});
}

TEST_CASE("github client: check runs need an App", "[integration][github]") {
  TokenFixture f;
  auto r = f.forge->createCheckRun(kRepo, {.name = "switchyard/build/octavia", .headSha = kSha});
  CHECK(r.status == CallStatus::Permanent);
  CHECK(r.httpStatus == 0);
  CHECK(r.message == "check runs need a GitHub App (app_id and private key)");
  CHECK(f.github.requests().empty());
}

TEST_CASE("github client: failures are classified for the outbox", "[integration][github]") {
  TokenFixture f;
  const runner::CommitStatus status{StatusState::Success, "switchyard/plan", "ok", ""};
  f.github.failNext(tests::Fault::rateLimited(f.clock.epochSeconds() + 600));
  auto limited = f.forge->setStatus(kRepo, kSha, status);
  CHECK(limited.status == CallStatus::Retryable);
  CHECK(limited.httpStatus == 403);
  CHECK(limited.retryAfter == 600s);
  CHECK(limited.message == "HTTP 403: API rate limit exceeded for installation ID 1.");

  f.github.failNext(tests::Fault::tooManyRequests(45));
  auto secondary = f.forge->setStatus(kRepo, kSha, status);
  CHECK(secondary.retryable());
  CHECK(secondary.retryAfter == 45s);

  f.github.failNext(tests::Fault::serverError(500), 2);
  CHECK(f.forge->setStatus(kRepo, kSha, status).retryable());
  CHECK(f.forge->setStatus(kRepo, kSha, status).retryable());
  CHECK(f.forge->setStatus(kRepo, kSha, status).ok());

  auto invalidState = f.forge->pullRequest(kRepo, 1);
  CHECK(invalidState.status == CallStatus::Permanent);
  CHECK(invalidState.message == "HTTP 404: Not Found");
}

TEST_CASE("github app: JWT -> installation token -> call, then the cached token",
          "[integration][github]") {
  AppFixture f;
  CHECK(f.forge->capabilities().checkRuns);
  REQUIRE(f.forge->setStatus(kRepo, kSha, f.status).ok());
  auto reqs = f.github.requests();
  REQUIRE(reqs.size() == 3);
  CHECK(reqs[0].target() == "GET /repos/alice/infra/installation");
  CHECK(reqs[1].target() == "POST /app/installations/77/access_tokens");
  CHECK(reqs[2].target() == f.statusTarget);
  for (int i : {0, 1}) {
    auto claims = jwtClaims(reqs[i].header("Authorization"));
    CHECK(claims["iss"] == kAppId);
    CHECK(claims["iat"] == f.clock.epochSeconds() - 30);
    CHECK(claims["exp"] == f.clock.epochSeconds() + 570);
    CHECK(reqs[i].header("X-GitHub-Api-Version") == "2022-11-28");
  }
  CHECK(reqs[1].body.empty());
  // a body-less POST names no content type (libcurl would send its form default)
  CHECK(reqs[1].header("Content-Type").empty());
  CHECK(reqs[1].header("Content-Length") == "0");
  CHECK(f.github.mintedTokens() == std::vector<std::string>{"ghs_fake1_77"});
  CHECK(reqs[2].header("Authorization") == "Bearer ghs_fake1_77");

  f.github.clearRequests();
  f.clock.advance(30min);
  REQUIRE(f.forge->setStatus(kRepo, kSha, f.status).ok());
  CHECK(f.github.targets() == std::vector<std::string>{f.statusTarget});

  // the token is redacted from logs; neither it nor the key reaches a log line
  CHECK(f.redactor.apply("token ghs_fake1_77") == "token [redacted]");
  CHECK(f.log.all().find("ghs_fake1_77") == std::string::npos);
  CHECK(f.log.all().find("eyJ") == std::string::npos);
}

TEST_CASE("github app: the token is minted again before it expires", "[integration][github]") {
  AppFixture f;
  REQUIRE(f.forge->setStatus(kRepo, kSha, f.status).ok());
  f.clock.advance(54min);  // 6 minutes left: still good
  REQUIRE(f.forge->setStatus(kRepo, kSha, f.status).ok());
  CHECK(f.github.mintedTokens().size() == 1);
  f.clock.advance(2min);  // 4 minutes left: inside the 5-minute margin
  f.github.clearRequests();
  REQUIRE(f.forge->setStatus(kRepo, kSha, f.status).ok());
  CHECK(f.github.targets() ==
        std::vector<std::string>{"POST /app/installations/77/access_tokens", f.statusTarget});
  CHECK(f.github.mintedTokens() == std::vector<std::string>{"ghs_fake1_77", "ghs_fake2_77"});
  CHECK(f.github.requests()[1].header("Authorization") == "Bearer ghs_fake2_77");
}

TEST_CASE("github app: a revoked token is replaced once after a 401", "[integration][github]") {
  AppFixture f;
  REQUIRE(f.forge->setStatus(kRepo, kSha, f.status).ok());
  f.github.revokeInstallationTokens();
  f.github.clearRequests();
  auto r = f.forge->setStatus(kRepo, kSha, f.status);
  CHECK(r.ok());
  CHECK(f.github.targets() == std::vector<std::string>{f.statusTarget,
                                                       "POST /app/installations/77/access_tokens",
                                                       f.statusTarget});
  auto reqs = f.github.requests();
  CHECK(reqs[0].answeredStatus == 401);
  CHECK(reqs[2].header("Authorization") == "Bearer ghs_fake2_77");
  CHECK(reqs[2].answeredStatus == 201);
}

TEST_CASE("github app: installations from deliveries, and repositories without one",
          "[integration][github]") {
  AppFixture f;
  f.forge->noteInstallation("alice/other", 78);
  REQUIRE(f.forge->setStatus("alice/other", kSha, f.status).ok());
  CHECK(f.github.targets() == std::vector<std::string>{"POST /app/installations/78/access_tokens",
                                                       "POST /repos/alice/other/statuses/" + kSha});

  auto none = f.forge->setStatus("bob/elsewhere", kSha, f.status);
  CHECK(none.status == CallStatus::Permanent);
  CHECK(none.httpStatus == 404);
  CHECK(none.message ==
        "finding the GitHub App installation for bob/elsewhere: HTTP 404: Not Found");

  f.github.failNext(tests::Fault::serverError(503), 1, "POST /app/installations/77");
  auto mintDown = f.forge->setStatus(kRepo, kSha, f.status);
  CHECK(mintDown.status == CallStatus::Retryable);
  CHECK(mintDown.message ==
        "minting an installation token for alice/infra: HTTP 503: Server Error");
  CHECK(f.forge->setStatus(kRepo, kSha, f.status).ok());
}

TEST_CASE("github app: check runs are created and completed with output and actions",
          "[integration][github]") {
  AppFixture f;
  const auto started = f.clock.now();
  runner::CheckRunSpec run{.name = "switchyard/build/octavia",
                           .headSha = kSha,
                           .status = CheckStatus::InProgress,
                           .detailsUrl = "https://ci.example.org/runs/7#octavia",
                           .externalId = "run:7:build:octavia",
                           .startedAt = started,
                           .title = "Building octavia",
                           .summary = "3 of 5 machines affected",
                           .actions = {{"Re-run", "Build octavia again", "rerun"}}};
  auto created = f.forge->createCheckRun(kRepo, run);
  INFO(created.message);
  REQUIRE(created.ok());
  CHECK(created.httpStatus == 201);
  CHECK(created.value > 0);
  auto post = f.github.requests().back();
  CHECK(post.target() == "POST /repos/alice/infra/check-runs");
  CHECK(post.header("Authorization") == "Bearer ghs_fake1_77");
  CHECK(post.json() ==
        nlohmann::json{
            {"name", "switchyard/build/octavia"},
            {"head_sha", kSha},
            {"status", "in_progress"},
            {"details_url", "https://ci.example.org/runs/7#octavia"},
            {"external_id", "run:7:build:octavia"},
            {"started_at", "2026-01-01T00:00:00Z"},
            {"output", {{"title", "Building octavia"}, {"summary", "3 of 5 machines affected"}}},
            {"actions",
             {{{"label", "Re-run"},
               {"description", "Build octavia again"},
               {"identifier", "rerun"}}}}});

  f.clock.advance(134s);
  runner::CheckRunSpec done{.status = CheckStatus::Completed,
                            .conclusion = CheckConclusion::Success,
                            .completedAt = f.clock.now(),
                            .title = "octavia built in 2m14s",
                            .summary = "ok",
                            .text = std::string(70000, 'l')};
  auto updated = f.forge->updateCheckRun(kRepo, created.value, done);
  INFO(updated.message);
  REQUIRE(updated.ok());
  auto patch = f.github.requests().back();
  CHECK(patch.target() == "PATCH /repos/alice/infra/check-runs/" + std::to_string(created.value));
  auto body = patch.json();
  CHECK(body["status"] == "completed");
  CHECK(body["conclusion"] == "success");
  CHECK(body["completed_at"] == "2026-01-01T00:02:14Z");
  CHECK_FALSE(body.contains("head_sha"));
  CHECK_FALSE(body.contains("name"));
  CHECK(body["output"]["text"].get<std::string>().size() <= 65535);
  auto stored = f.github.checkRuns().at(created.value);
  CHECK(stored["conclusion"] == "success");
  CHECK(stored["external_id"] == "run:7:build:octavia");
}

TEST_CASE("github app: annotations go 50 to a request, the rest in further updates",
          "[integration][github]") {
  AppFixture f;
  runner::CheckRunSpec run{.name = "switchyard/build/octavia",
                           .headSha = kSha,
                           .status = CheckStatus::Completed,
                           .conclusion = CheckConclusion::Failure,
                           .title = "build failed",
                           .summary = "octavia: build failed"};
  for (int i = 1; i <= 120; ++i)
    run.annotations.push_back({"hosts/octavia.nix", i, i, runner::CheckAnnotation::Level::Failure,
                               i == 1 ? "octavia: build failed" : "",
                               "error: line " + std::to_string(i), i == 1 ? "last lines" : ""});
  auto created = f.forge->createCheckRun(kRepo, run);
  INFO(created.message);
  REQUIRE(created.ok());
  const std::string patch = "PATCH /repos/alice/infra/check-runs/" + std::to_string(created.value);
  auto reqs = f.github.requests();
  REQUIRE(reqs.size() == 5);  // token, the run with 50, then 50 and 20 more
  CHECK(reqs[2].target() == "POST /repos/alice/infra/check-runs");
  CHECK(reqs[3].target() == patch);
  CHECK(reqs[4].target() == patch);
  auto first = reqs[2].json()["output"]["annotations"];
  REQUIRE(first.size() == 50);
  CHECK(first[0] == nlohmann::json{{"path", "hosts/octavia.nix"},
                                   {"start_line", 1},
                                   {"end_line", 1},
                                   {"annotation_level", "failure"},
                                   {"title", "octavia: build failed"},
                                   {"message", "error: line 1"},
                                   {"raw_details", "last lines"}});
  CHECK(reqs[3].json()["output"]["annotations"].size() == 50);
  CHECK(reqs[3].json()["output"]["title"] == "build failed");  // GitHub needs the output's
  CHECK(reqs[4].json()["output"]["annotations"].size() == 20);
  CHECK(reqs[4].json().size() == 1);  // only the output: the run itself is not sent again
  auto kept = f.github.annotations(created.value);
  REQUIRE(kept.size() == 120);
  CHECK(kept[119]["message"] == "error: line 120");
  CHECK(f.github.checkRuns().at(created.value)["output"]["annotations_count"] == 120);

  // an annotation without a place in the repository is refused before anything is sent
  f.github.clearRequests();
  runner::CheckRunSpec bad = run;
  bad.annotations = {{"/nix/store/x-source/flake.nix", 1, 1}};
  bad.annotations[0].message = "m";
  auto refused = f.forge->createCheckRun(kRepo, bad);
  CHECK(refused.status == CallStatus::Permanent);
  CHECK(refused.message ==
        "an annotation needs a path in the repository and a message (got "
        "'/nix/store/x-source/flake.nix')");
  bad.annotations = {{"flake.nix", 3, 2, runner::CheckAnnotation::Level::Failure, "", "m", ""}};
  CHECK(f.forge->createCheckRun(kRepo, bad).message ==
        "annotation lines 3-2 of flake.nix are not a range");
  CHECK(f.github.requests().empty());
}

TEST_CASE("github app: check runs outside GitHub's limits are refused before sending",
          "[integration][github]") {
  AppFixture f;
  auto refused = [&](const runner::CheckRunSpec& spec) {
    auto r = f.forge->createCheckRun(kRepo, spec);
    CHECK(r.status == CallStatus::Permanent);
    CHECK(r.httpStatus == 0);
    return r.message;
  };
  runner::CheckRunSpec base{.name = "switchyard/plan", .headSha = kSha};
  auto four = base;
  four.actions = {{"a", "", "a"}, {"b", "", "b"}, {"c", "", "c"}, {"d", "", "d"}};
  CHECK(refused(four) == "a check run has at most 3 actions");
  auto completed = base;
  completed.status = CheckStatus::Completed;
  CHECK(refused(completed) == "a completed check run needs a conclusion");
  auto longId = base;
  longId.actions = {{"Re-run", "", std::string(21, 'x')}};
  CHECK(refused(longId) ==
        "action identifier '" + std::string(21, 'x') + "' must be 1 to 20 characters");
  auto noName = base;
  noName.name.clear();
  CHECK(refused(noName) == "a check run needs a name");
  CHECK(f.github.requests().empty());

  // long labels and descriptions are cut, not refused
  auto longLabel = base;
  longLabel.actions = {{std::string(25, 'L'), std::string(50, 'D'), "rerun"}};
  REQUIRE(f.forge->createCheckRun(kRepo, longLabel).ok());
  auto action = f.github.requests().back().json()["actions"][0];
  CHECK(action["label"] == std::string(19, 'L') + "\xe2\x80\xa6");
  CHECK(action["description"] == std::string(39, 'D') + "\xe2\x80\xa6");
}

TEST_CASE("github app: concurrent calls mint one token", "[integration][github]") {
  AppFixture f;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 5; ++i)
        if (f.forge->setStatus(kRepo, kSha, f.status).ok()) ++ok;
    });
  for (auto& th : threads) th.join();
  CHECK(ok == 20);
  CHECK(f.github.mintedTokens().size() == 1);
  CHECK(f.github.statuses(kRepo, kSha).size() == 20);
}

TEST_CASE("github client: built from configuration", "[integration][github]") {
  tests::FakeGitHub github;
  github.enableApp(kAppId, {{kRepo, kInstallation}});
  runner::http::CurlHttpClient http;
  runner::SystemClock clock;
  runner::NullLogger log;
  runner::os::TempDir dir("sy-github-client");
  runner::os::writeFileAtomic(dir.path() / "key.pem", appKey());
  runner::os::writeFileAtomic(dir.path() / "bad.pem",
                              "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
  runner::os::writeFileAtomic(dir.path() / "token", github.token() + "\n");

  runner::ForgeConfig config;
  config.name = "gh";
  config.type = "github";
  config.apiUrl = github.apiUrl();
  config.appId = kAppId;
  config.privateKeyFile = dir.path() / "key.pem";
  auto app = integrations::github::makeForge(config, http, clock, log);
  CHECK(app->capabilities().checkRuns);
  CHECK(app->setStatus(kRepo, kSha, {StatusState::Success, "switchyard/plan", "ok", ""}).ok());
  CHECK(github.mintedTokens().size() == 1);

  config.privateKeyFile = dir.path() / "bad.pem";
  try {
    integrations::github::makeForge(config, http, clock, log);
    FAIL("a bad key was accepted");
  } catch (const runner::InputError& e) {
    CHECK(e.describe().find("while reading " + (dir.path() / "bad.pem").string()) !=
          std::string::npos);
  }

  config.appId.reset();
  config.privateKeyFile.reset();
  CHECK_THROWS_AS(integrations::github::makeForge(config, http, clock, log), runner::ConfigError);
  config.tokenFile = dir.path() / "token";
  auto pat = integrations::github::makeForge(config, http, clock, log);
  CHECK_FALSE(pat->capabilities().checkRuns);
  CHECK(pat->setStatus(kRepo, kSha, {StatusState::Success, "switchyard/plan", "ok", ""}).ok());
  CHECK(github.requests().back().header("Authorization") == "Bearer " + github.token());
}
