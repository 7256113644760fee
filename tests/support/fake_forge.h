// Fake Gitea and GitHub API servers for tests (STYLE.md P9): real HTTP servers on
// 127.0.0.1 (a free port chosen by the OS), each in its own thread, that answer the calls
// Switchyard makes the way the real APIs do — same paths, auth headers, status codes and
// JSON shapes (fixtures/*/openapi-status-excerpt.json, FORGE-FACTS.md) — keep the state
// those calls create (statuses, comments, reactions, check runs), RECORD every request in
// order, and can be told to fail: a 5xx, a 429 with retry-after, a 403 rate limit with
// x-ratelimit-reset, or a slow answer that trips a client timeout.
//
// Typical use (the daemon and report tests reuse these):
//
//   tests::FakeGitea gitea;                                  // listening now
//   auto forge = integrations::gitea::makeForge(
//       {.forgeName = "home", .apiUrl = gitea.apiUrl(), .token = gitea.token()}, http, clock, log);
//   gitea.failNext(tests::Fault::serverError(), 1, "POST /api/v1/repos/alice/infra/statuses");
//   forge->setStatus("alice/infra", sha, {...});              // -> Retryable, HTTP 500
//   forge->setStatus("alice/infra", sha, {...});              // -> Ok
//   CHECK(gitea.targets() == std::vector<std::string>{"POST /api/v1/repos/alice/infra/statuses/…",
//   …}); CHECK(gitea.requests()[1].json()["state"] == "success");
//
// Thread-safe: tests may inspect and change a fake while clients call it from other threads.
// The destructor stops the server (interrupting any injected delay) and joins its thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace httplib {
class Server;
}

namespace tests {

// One request as the fake received it.
struct RecordedRequest {
  std::string method;                          // "POST"
  std::string path;                            // "/api/v1/repos/alice/infra/statuses/<sha>"
  std::string query;                           // raw, without '?': "per_page=100&page=2"
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
  int answeredStatus = 0;    // what the fake answered (after faults)
  std::string answeredBody;  // and the body it answered with
  // ForwardingForge: what the upstream answered (the client may have been answered otherwise)
  int upstreamStatus = 0;
  std::string upstreamBody;

  // The header's value, or "" (name in any case).
  std::string header(std::string_view name) const;
  // The body as JSON; fails the running test (REQUIRE) when it is not JSON.
  nlohmann::json json() const;
  // "POST /api/v1/repos/alice/infra/statuses/<sha>" (+ "?query" when there is one).
  std::string target() const;
};

// An answer to inject instead of the normal one.
struct Fault {
  int status = 500;  // 0: answer normally after `delay` (a slow forge, not a failing one)
  std::map<std::string, std::string> headers;
  std::string body = R"({"message":"injected failure"})";
  std::chrono::milliseconds delay{0};

  static Fault serverError(int status = 500);
  // 429 with `retry-after: <seconds>`.
  static Fault tooManyRequests(int retryAfterSeconds);
  // 403 with x-ratelimit-remaining: 0 and x-ratelimit-reset: <resetEpochSeconds>, GitHub's
  // primary rate limit answer.
  static Fault rateLimited(int64_t resetEpochSeconds);
  // The normal answer, `delay` late (longer than the client's timeout: a timeout).
  static Fault slow(std::chrono::milliseconds delay);
};

// State shared by both fakes, as the real forges keep it.
struct FakeStatus {
  int64_t id = 0;
  std::string repo, sha, state, context, description, targetUrl;
};
struct FakeComment {
  int64_t id = 0;
  std::string repo;
  int64_t issue = 0;
  std::string user, body;
};
struct FakeReaction {
  std::string repo;
  int64_t commentId = 0;
  std::string content, user;
};
struct FakePullRequest {
  std::string repo;  // base repository "owner/name"
  int64_t number = 0;
  std::string state = "open";
  bool merged = false;
  std::string headSha, headRef = "feature", baseSha, baseRef = "main";
  std::optional<std::string> headRepo;  // nullopt: same as repo; "": deleted fork (null)
};

// The common part: the HTTP server, recording, faults and repository state. Use FakeGitea
// or FakeGitHub.
class FakeForgeServer {
 public:
  virtual ~FakeForgeServer();
  FakeForgeServer(const FakeForgeServer&) = delete;
  FakeForgeServer& operator=(const FakeForgeServer&) = delete;

  int port() const { return port_; }
  std::string baseUrl() const;             // "http://127.0.0.1:<port>"
  virtual std::string apiUrl() const = 0;  // what a client is configured with

  // Every request so far, oldest first; and the same as target() strings, for order checks.
  std::vector<RecordedRequest> requests() const;
  std::vector<std::string> targets() const;
  void clearRequests();

  // The next `times` requests whose target() starts with `match` ("" matches all, e.g.
  // "POST /api/v1/repos/alice/infra/statuses") get `fault`. Queued faults apply in order.
  void failNext(Fault fault, int times = 1, std::string match = "");
  // Drops faults not yet used.
  void clearFaults();

  // Repository state.
  void addPullRequest(FakePullRequest pr);
  void setPermission(const std::string& repo, const std::string& user, std::string permission,
                     std::string roleName = "");
  int64_t addComment(const std::string& repo, int64_t issue, const std::string& user,
                     const std::string& body);
  std::vector<FakeStatus> statuses(const std::string& repo, const std::string& sha) const;
  std::vector<FakeComment> comments(const std::string& repo, int64_t issue) const;
  std::vector<FakeReaction> reactions() const;
  // Deletes a comment (as its author or an admin would on the forge); false if unknown.
  bool deleteComment(int64_t id);

  // Stops serving (idempotent). Called by the destructor.
  void stop();

 protected:
  struct Reply {
    int status = 200;
    nlohmann::json body;  // sent as JSON unless null
    std::map<std::string, std::string> headers;
    int upstreamStatus = 0;  // copied to the record (ForwardingForge)
    std::string upstreamBody;
  };

  FakeForgeServer();
  // Binds to 127.0.0.1:0 and starts serving. Subclasses call it last in their constructor.
  void start();
  // Answers one request that passed fault injection. Called with mu_ held.
  virtual Reply route(const RecordedRequest& req) = 0;

  static Reply error(int status, std::string message);
  // Handlers for the state above, shared by both fakes (paths relative to /repos/o/r).
  Reply createStatus(const std::string& repo, const std::string& sha, const nlohmann::json& body,
                     bool githubLimits, const std::string& user);
  Reply createComment(const std::string& repo, int64_t issue, const nlohmann::json& body,
                      const std::string& user);
  Reply editComment(const std::string& repo, int64_t id, const nlohmann::json& body);
  Reply react(const std::string& repo, int64_t commentId, const nlohmann::json& body,
              const std::string& user);
  nlohmann::json commentJson(const FakeComment& c) const;
  nlohmann::json pullJson(const FakePullRequest& pr) const;
  nlohmann::json repoJson(const std::string& fullName) const;

  mutable std::mutex mu_;
  int64_t nextId_ = 1000;                // GUARDED_BY(mu_)
  std::vector<FakeStatus> statuses_;     // GUARDED_BY(mu_)
  std::vector<FakeComment> comments_;    // GUARDED_BY(mu_)
  std::vector<FakeReaction> reactions_;  // GUARDED_BY(mu_)
  std::vector<FakePullRequest> pulls_;   // GUARDED_BY(mu_)
  std::map<std::pair<std::string, std::string>, std::pair<std::string, std::string>>
      permissions_;  // (repo, user) -> (permission, role_name); GUARDED_BY(mu_)

 private:
  void handle(const void* request, void* response);  // httplib types, kept out of this header
  bool waitOrStop(std::chrono::milliseconds d);

  struct QueuedFault {
    Fault fault;
    int remaining;
    std::string match;
  };
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
  std::vector<RecordedRequest> requests_;                    // GUARDED_BY(mu_)
  std::vector<QueuedFault> faults_;                          // GUARDED_BY(mu_)
  std::optional<std::pair<int, std::string>> lastUpstream_;  // route() -> handle(); mu_
  std::condition_variable stopCv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
};

// Gitea/Forgejo REST API v1 under /api/v1: commit statuses (POST/GET
// /repos/{o}/{r}/statuses/{sha}; the answer names the state "status"), issue comments (GET
// /repos/{o}/{r}/issues/{n}/comments, unpaginated like Gitea; POST; PATCH
// /repos/{o}/{r}/issues/comments/{id}), comment reactions, collaborator permission, and
// pulls. Auth: `Authorization: token <T>` (or Bearer) with token(); anything else -> 401.
class FakeGitea final : public FakeForgeServer {
 public:
  explicit FakeGitea(std::string token = "gitea-test-token-0123456789");
  ~FakeGitea() override;
  std::string apiUrl() const override;  // baseUrl() + "/api/v1"
  const std::string& token() const { return token_; }
  const std::string& botUser() const { return bot_; }  // author of what the token creates
  // Whether the token's account administers the repositories (default): without it, Gitea
  // refuses to show other users' permissions (403).
  void setBotRepoAdmin(bool admin) { botRepoAdmin_ = admin; }

 protected:
  Reply route(const RecordedRequest& req) override;

 private:
  std::string token_;
  std::string bot_ = "switchyard-bot";
  std::atomic<bool> botRepoAdmin_{true};
};

// GitHub REST API at the root (like api.github.com): commit statuses (with GitHub's 140
// character description limit -> 422), issue comments (paginated with per_page/page and a
// Link header), reactions, collaborator permission (permission + role_name), pulls, check
// runs (App installation tokens only, else 403; name/head_sha required and completed
// needs a conclusion -> 422), and the App endpoints GET /repos/{o}/{r}/installation and
// POST /app/installations/{id}/access_tokens (JWT auth: alg RS256 and iss == app id).
// Auth: `Authorization: Bearer <T>` (or token) with a personal token() or an installation
// token this fake minted and has not expired or revoked.
class FakeGitHub final : public FakeForgeServer {
 public:
  explicit FakeGitHub(std::string token = "ghp_test_token_0123456789");
  ~FakeGitHub() override;
  std::string apiUrl() const override;  // baseUrl()
  const std::string& token() const { return token_; }

  // Makes the fake a GitHub App `appId` installed on repositories (repo -> installation id).
  void enableApp(int64_t appId, std::map<std::string, int64_t> installations);
  // The time the fake measures token expiry against (default: the system clock); tests
  // with a manual clock pass it here.
  void setClock(std::function<std::chrono::system_clock::time_point()> now);
  // Lifetime of minted installation tokens (GitHub: one hour).
  void setTokenLifetime(std::chrono::seconds lifetime);
  // Makes every installation token minted so far invalid (-> 401), as a revocation would.
  void revokeInstallationTokens();
  // Installation tokens minted so far, oldest first.
  std::vector<std::string> mintedTokens() const;
  // Check runs as GitHub keeps them (the JSON it would answer with), by id.
  std::map<int64_t, nlohmann::json> checkRuns() const;
  // The annotations a check run got, in order (GitHub adds each request's to the run's; the
  // run's output shows their number as annotations_count).
  std::vector<nlohmann::json> annotations(int64_t checkRunId) const;
  // Renames (or transfers) repository `from` to `to`, whose id is `repositoryId`: as GitHub
  // does, every API call under /repos/<from>/… answers 301 (GET, HEAD) or 307 (any other
  // method) with Location: <api>/repositories/<id>/…, which serves `to`; GET
  // /repositories/<id> answers the repository (full_name `to`).
  void renameRepo(const std::string& from, const std::string& to, int64_t repositoryId);

 protected:
  Reply route(const RecordedRequest& req) override;

 private:
  Reply checkApp(const RecordedRequest& req) const;  // JWT check; status 0 when fine
  std::string token_;
  std::string bot_ = "switchyard-bot";
  std::optional<int64_t> appId_;                                // GUARDED_BY(mu_)
  std::map<std::string, int64_t> installations_;                // GUARDED_BY(mu_)
  std::function<std::chrono::system_clock::time_point()> now_;  // GUARDED_BY(mu_)
  std::chrono::seconds tokenLifetime_{3600};                    // GUARDED_BY(mu_)
  struct Minted {
    std::string token;
    int64_t installation;
    std::chrono::system_clock::time_point expiresAt;
    bool revoked = false;
  };
  std::vector<Minted> minted_;                                  // GUARDED_BY(mu_)
  std::map<int64_t, nlohmann::json> checkRuns_;                 // GUARDED_BY(mu_)
  std::map<int64_t, std::vector<nlohmann::json>> annotations_;  // GUARDED_BY(mu_)
  struct Rename {
    std::string to;
    int64_t id;
  };
  std::map<std::string, Rename> renames_;  // old name -> new; GUARDED_BY(mu_)
};

// True for Prism's answer (with --errors) that the request was valid but the description's
// own example answer fails the description's schema: a 500 "Request/Response not valid" whose
// every violation is located in the response.
bool responseOnlyViolation(int status, const std::string& body);

// A recording forwarder with no state of its own: every request is recorded as the fakes
// above record them and forwarded to `upstream` ("http://127.0.0.1:4010", e.g. Stoplight
// Prism serving a forge's API description); its answer — status, JSON body and the headers
// a client reads (Link, Location, Retry-After, X-RateLimit-*) — goes back unchanged.
// `rewrite` may change the forwarded request's headers (names lowercased); what the client
// sent is what requests() shows. apiUrl() is baseUrl() + `apiPath` ("/api/v1" or ""); the
// upstream serves the API at its root (Prism ignores Swagger's basePath), so `apiPath` is
// taken off the forwarded path. When the upstream says its example answer fails its own
// schema (responseOnlyViolation), the request is sent again with `Prefer: dynamic=true`
// (Prism then makes the answer from the schema); the record keeps the first verdict.
class ForwardingForge final : public FakeForgeServer {
 public:
  ForwardingForge(std::string upstream, std::string apiPath,
                  std::function<void(std::map<std::string, std::string>&)> rewrite = {});
  // When `answer` returns a body for a request (after the upstream answered it with
  // `upstreamStatus`), the client gets that body with status 200 instead: the upstream still
  // judged the request (upstreamStatus/upstreamBody of the record), the test picks the
  // answer that drives its flow.
  void answerWith(
      std::function<std::optional<nlohmann::json>(const RecordedRequest&, int upstreamStatus)>
          answer);
  ~ForwardingForge() override;
  std::string apiUrl() const override { return baseUrl() + apiPath_; }

 protected:
  Reply route(const RecordedRequest& req) override;

 private:
  std::string upstream_, apiPath_;
  std::function<void(std::map<std::string, std::string>&)> rewrite_;
  std::function<std::optional<nlohmann::json>(const RecordedRequest&, int)> answer_;  // mu_
};

}  // namespace tests
