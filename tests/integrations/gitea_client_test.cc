// The Gitea/Forgejo API client against FakeGitea over real HTTP (libcurl, loopback): the
// exact requests it sends (method, path, auth header, JSON body, order), what it makes of
// the answers, and how failures are classified for the outbox.
#include <catch2/catch.hpp>

#include "integrations/gitea/client.h"
#include "runner/core/error.h"
#include "runner/http/curl_client.h"
#include "runner/os/files.h"
#include "tests/integrations/test_helpers.h"
#include "tests/support/fake_forge.h"

using namespace std::chrono_literals;
using runner::CallStatus;
using runner::CommentRef;
using runner::StatusState;

namespace {

const std::string kSha = "4522cbcefc20728a5b72b3a86af35e608622c514";
const std::string kRepo = "alice/infra";

struct Fixture {
  tests::FakeGitea gitea;
  runner::http::CurlHttpClient http;
  tests::ManualClock clock;
  tests::RecordingLogger log;
  std::unique_ptr<runner::Forge> forge = integrations::gitea::makeForge(
      {.forgeName = "home", .apiUrl = gitea.apiUrl() + "/", .token = gitea.token(), .timeout = 2s},
      http, clock, log);
};

}  // namespace

TEST_CASE("gitea client: a commit status is one POST with the token and the state",
          "[integration][gitea]") {
  Fixture f;
  auto r = f.forge->setStatus(kRepo, kSha,
                              {StatusState::Success, "switchyard/build/octavia", "built in 2m14s",
                               "https://ci.example.org/runs/7"});
  CHECK(r.ok());
  CHECK(r.httpStatus == 201);

  auto reqs = f.gitea.requests();
  REQUIRE(reqs.size() == 1);
  CHECK(reqs[0].target() == "POST /api/v1/repos/alice/infra/statuses/" + kSha);
  CHECK(reqs[0].header("Authorization") == "token " + f.gitea.token());
  CHECK(reqs[0].header("Accept") == "application/json");
  CHECK(reqs[0].header("Content-Type") == "application/json");
  CHECK(reqs[0].header("User-Agent") == "switchyard/0.1");
  CHECK(reqs[0].json() == nlohmann::json{{"state", "success"},
                                         {"context", "switchyard/build/octavia"},
                                         {"description", "built in 2m14s"},
                                         {"target_url", "https://ci.example.org/runs/7"}});
  auto stored = f.gitea.statuses(kRepo, kSha);
  REQUIRE(stored.size() == 1);
  CHECK(stored[0].state == "success");
  CHECK(stored[0].context == "switchyard/build/octavia");

  // no target_url when there is none; Gitea keeps long descriptions whole
  const std::string longText(300, 'x');
  CHECK(f.forge->setStatus(kRepo, kSha, {StatusState::Pending, "switchyard/plan", longText, ""})
            .ok());
  auto body = f.gitea.requests().back().json();
  CHECK_FALSE(body.contains("target_url"));
  CHECK(body["description"] == longText);
  CHECK(f.forge->capabilities().maxStatusDescription == 0);
  CHECK_FALSE(f.forge->capabilities().checkRuns);
}

TEST_CASE("gitea client: the PR comment is created once, then edited in place",
          "[integration][gitea]") {
  Fixture f;
  const std::string marker = "<!-- switchyard:plan -->";
  f.gitea.addComment(kRepo, 5, "bob", "Nice! The bot says " + marker + " somewhere");
  // Anyone can post the marker; the bot must not adopt (and later rewrite) their comment.
  f.gitea.addComment(kRepo, 5, "mallory", marker + "\nall machines unaffected, merge away");
  const std::string commentsPath = "/api/v1/repos/alice/infra/issues/5/comments";

  auto first = f.forge->upsertComment(kRepo, 5, marker, "3 of 5 machines affected");
  REQUIRE(first.ok());
  CHECK(first.value.change == CommentRef::Change::Created);
  CHECK(first.value.id > 0);
  CHECK(first.value.url.find("/alice/infra/issues/5#issuecomment-") != std::string::npos);
  // Who the bot is, asked once, then the comments.
  CHECK(f.gitea.targets() == std::vector<std::string>{"GET /api/v1/user", "GET " + commentsPath,
                                                      "POST " + commentsPath});
  CHECK(f.gitea.requests()[2].json() ==
        nlohmann::json{{"body", marker + "\n3 of 5 machines affected"}});

  f.gitea.clearRequests();
  auto same = f.forge->upsertComment(kRepo, 5, marker, "3 of 5 machines affected");
  REQUIRE(same.ok());
  CHECK(same.value.change == CommentRef::Change::Unchanged);
  CHECK(same.value.id == first.value.id);
  CHECK(f.gitea.targets() == std::vector<std::string>{"GET " + commentsPath});

  f.gitea.clearRequests();
  auto changed = f.forge->upsertComment(kRepo, 5, marker, "2 of 5 machines affected");
  REQUIRE(changed.ok());
  CHECK(changed.value.change == CommentRef::Change::Updated);
  CHECK(changed.value.id == first.value.id);
  CHECK(f.gitea.targets() ==
        std::vector<std::string>{
            "GET " + commentsPath,
            "PATCH /api/v1/repos/alice/infra/issues/comments/" + std::to_string(first.value.id)});
  CHECK(f.gitea.requests()[1].json()["body"] == marker + "\n2 of 5 machines affected");

  auto all = f.gitea.comments(kRepo, 5);
  REQUIRE(all.size() == 3);  // bob's, mallory's and ours, never a second one of ours
  CHECK(all[0].body == "Nice! The bot says " + marker + " somewhere");
  CHECK(all[1].body == marker + "\nall machines unaffected, merge away");
  CHECK(all[2].body == marker + "\n2 of 5 machines affected");
  CHECK(all[2].user == f.gitea.botUser());

  CHECK(f.forge->upsertComment(kRepo, 5, "", "x").status == CallStatus::Permanent);
}

TEST_CASE("gitea client: replies and reactions", "[integration][gitea]") {
  Fixture f;
  int64_t command = f.gitea.addComment(kRepo, 5, "bob", "/switchyard rerun octavia");
  auto reply = f.forge->postComment(kRepo, 5, "Re-running octavia.");
  REQUIRE(reply.ok());
  CHECK(reply.value.change == CommentRef::Change::Created);
  CHECK(f.forge->addReaction(kRepo, command, runner::Reaction::Rocket).ok());
  CHECK(f.forge->addReaction(kRepo, command, runner::Reaction::Rocket).ok());  // again: 200
  CHECK(f.gitea.targets() ==
        std::vector<std::string>{"POST /api/v1/repos/alice/infra/issues/5/comments",
                                 "POST /api/v1/repos/alice/infra/issues/comments/" +
                                     std::to_string(command) + "/reactions",
                                 "POST /api/v1/repos/alice/infra/issues/comments/" +
                                     std::to_string(command) + "/reactions"});
  CHECK(f.gitea.requests()[1].json() == nlohmann::json{{"content", "rocket"}});
  CHECK(f.gitea.requests()[1].answeredStatus == 201);
  CHECK(f.gitea.requests()[2].answeredStatus == 200);
  REQUIRE(f.gitea.reactions().size() == 1);
  CHECK(f.gitea.reactions()[0].content == "rocket");

  auto missing = f.forge->addReaction(kRepo, 999999, runner::Reaction::ThumbsUp);
  CHECK(missing.status == CallStatus::Permanent);
  CHECK(missing.httpStatus == 404);
}

TEST_CASE("gitea client: write access comes from the collaborator permission",
          "[integration][gitea]") {
  Fixture f;
  f.gitea.setPermission(kRepo, "alice", "owner");
  f.gitea.setPermission(kRepo, "bob", "write");
  f.gitea.setPermission(kRepo, "carol", "read");
  f.gitea.setPermission(kRepo, "dave", "admin");
  for (const auto& [user, level, write] :
       std::vector<std::tuple<std::string, std::string, bool>>{{"alice", "owner", true},
                                                               {"bob", "write", true},
                                                               {"carol", "read", false},
                                                               {"dave", "admin", true}}) {
    INFO(user);
    auto p = f.forge->userPermission(kRepo, user);
    REQUIRE(p.ok());
    CHECK(p.value.level == level);
    CHECK(p.value.canWrite == write);
  }
  CHECK(f.gitea.requests()[0].target() ==
        "GET /api/v1/repos/alice/infra/collaborators/alice/permission");
  auto stranger = f.forge->userPermission(kRepo, "mallory");  // unknown there: no access
  CHECK(stranger.status == CallStatus::Ok);
  CHECK(stranger.httpStatus == 404);
  CHECK(stranger.value.level == "none");
  CHECK_FALSE(stranger.value.canWrite);
}

TEST_CASE("gitea client: a pull request's head, base and fork status", "[integration][gitea]") {
  Fixture f;
  f.gitea.addPullRequest({.repo = kRepo,
                          .number = 3,
                          .headSha = kSha,
                          .headRef = "fix",
                          .baseSha = "39af58f1eff02aa308e16913e887c8d50362b474",
                          .headRepo = "mallory/infra"});
  f.gitea.addPullRequest({.repo = kRepo, .number = 4, .headSha = kSha});
  auto fork = f.forge->pullRequest(kRepo, 3);
  REQUIRE(fork.ok());
  CHECK(fork.value.number == 3);
  CHECK(fork.value.state == "open");
  CHECK(fork.value.headSha == kSha);
  CHECK(fork.value.headRef == "fix");
  CHECK(fork.value.baseRef == "main");
  CHECK(fork.value.baseSha == "39af58f1eff02aa308e16913e887c8d50362b474");
  CHECK(fork.value.headRepo == "mallory/infra");
  CHECK(fork.value.headCloneUrl == f.gitea.baseUrl() + "/mallory/infra.git");
  CHECK(fork.value.baseRepo == kRepo);
  CHECK(fork.value.fromFork);
  auto same = f.forge->pullRequest(kRepo, 4);
  REQUIRE(same.ok());
  CHECK_FALSE(same.value.fromFork);
  CHECK(f.gitea.targets() == std::vector<std::string>{"GET /api/v1/repos/alice/infra/pulls/3",
                                                      "GET /api/v1/repos/alice/infra/pulls/4"});
  CHECK(f.forge->pullRequest(kRepo, 99).httpStatus == 404);
}

TEST_CASE("gitea client: refusals send nothing", "[integration][gitea]") {
  Fixture f;
  auto check = f.forge->createCheckRun(kRepo, {.name = "x", .headSha = kSha});
  CHECK(check.status == CallStatus::Permanent);
  CHECK(check.httpStatus == 0);
  CHECK(check.message == "Gitea and Forgejo have no check runs; use commit statuses");
  CHECK(f.forge->updateCheckRun(kRepo, 1, {}).status == CallStatus::Permanent);
  CHECK(f.forge->setStatus("alice", kSha, {}).message == "invalid repository 'alice'");
  CHECK(f.forge->setStatus("../../admin/x", kSha, {}).status == CallStatus::Permanent);
  CHECK(f.forge->setStatus(kRepo, "main", {}).message == "invalid commit sha 'main'");
  CHECK(f.forge->userPermission(kRepo, "").status == CallStatus::Permanent);
  CHECK(f.gitea.requests().empty());
}

TEST_CASE("gitea client: failures are classified for the outbox", "[integration][gitea]") {
  Fixture f;
  const runner::CommitStatus status{StatusState::Failure, "switchyard/plan", "planning failed", ""};
  const std::string target = "POST /api/v1/repos/alice/infra/statuses/" + kSha;

  f.gitea.failNext(tests::Fault::serverError(502), 1, target);
  auto down = f.forge->setStatus(kRepo, kSha, status);
  CHECK(down.status == CallStatus::Retryable);
  CHECK(down.httpStatus == 502);
  CHECK(down.message == "HTTP 502: Server Error");
  CHECK_FALSE(down.retryAfter.has_value());
  CHECK(f.forge->setStatus(kRepo, kSha, status).ok());  // the fault was used up

  f.gitea.failNext(tests::Fault::tooManyRequests(30));
  auto busy = f.forge->setStatus(kRepo, kSha, status);
  CHECK(busy.status == CallStatus::Retryable);
  CHECK(busy.retryAfter == 30s);

  f.gitea.failNext(tests::Fault::rateLimited(f.clock.epochSeconds() + 120));
  auto limited = f.forge->setStatus(kRepo, kSha, status);
  CHECK(limited.status == CallStatus::Retryable);
  CHECK(limited.httpStatus == 403);
  CHECK(limited.retryAfter == 120s);

  auto badToken = integrations::gitea::makeForge(
      {.forgeName = "home", .apiUrl = f.gitea.apiUrl(), .token = "wrong-token-1234"}, f.http,
      f.clock, f.log);
  auto denied = badToken->setStatus(kRepo, kSha, status);
  CHECK(denied.status == CallStatus::Permanent);
  CHECK(denied.httpStatus == 401);
  CHECK(denied.message == "HTTP 401: token is required");

  // every attempt reached the fake, in order, with what it answered
  std::vector<int> answered;
  for (const auto& r : f.gitea.requests()) answered.push_back(r.answeredStatus);
  CHECK(answered == std::vector<int>{502, 201, 429, 403, 401});

  // the log says what failed, never with the token
  auto log = f.log.all();
  CHECK(log.find("HTTP 502: Server Error") != std::string::npos);
  CHECK(log.find(f.gitea.token()) == std::string::npos);
  CHECK(log.find("wrong-token-1234") == std::string::npos);

  // a forge slower than the client's timeout
  f.gitea.failNext(tests::Fault::slow(1500ms));
  auto slowForge = integrations::gitea::makeForge(
      {.forgeName = "home", .apiUrl = f.gitea.apiUrl(), .token = f.gitea.token(), .timeout = 300ms},
      f.http, f.clock, f.log);
  auto timedOut = slowForge->setStatus(kRepo, kSha, status);
  CHECK(timedOut.status == CallStatus::Retryable);
  CHECK(timedOut.httpStatus == 0);
  CHECK(timedOut.message == "no response: timed out after 300 ms");
}

TEST_CASE("gitea client: a forge that is gone is a retryable transport failure",
          "[integration][gitea]") {
  Fixture f;
  f.gitea.stop();
  auto r = f.forge->setStatus(kRepo, kSha, {StatusState::Pending, "switchyard/plan", "", ""});
  CHECK(r.status == CallStatus::Retryable);
  CHECK(r.httpStatus == 0);
  CHECK(r.message.rfind("no response: ", 0) == 0);
}

TEST_CASE("gitea client: built from configuration, with the token from its file",
          "[integration][gitea]") {
  tests::FakeGitea gitea;
  runner::http::CurlHttpClient http;
  tests::ManualClock clock;
  runner::NullLogger log;
  runner::os::TempDir dir("sy-gitea-client");
  runner::os::writeFileAtomic(dir.path() / "token", gitea.token() + "\n");

  runner::ForgeConfig config;
  config.name = "home";
  config.type = "gitea";
  config.url = gitea.baseUrl();  // apiUrl defaults to <url>/api/v1
  config.tokenFile = dir.path() / "token";
  runner::Redactor redactor;
  auto forge = integrations::gitea::makeForge(config, http, clock, log, &redactor);
  CHECK(forge->setStatus(kRepo, kSha, {StatusState::Success, "switchyard/plan", "ok", ""}).ok());
  CHECK(gitea.requests().at(0).path == "/api/v1/repos/alice/infra/statuses/" + kSha);
  CHECK(redactor.apply(gitea.token()) == "[redacted]");

  config.tokenFile.reset();
  CHECK_THROWS_AS(integrations::gitea::makeForge(config, http, clock, log), runner::ConfigError);
  config.tokenFile = dir.path() / "missing";
  CHECK_THROWS_AS(integrations::gitea::makeForge(config, http, clock, log), runner::InputError);
}
