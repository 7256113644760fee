#include "integrations/github/client.h"

#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "integrations/github/app_auth.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/os/files.h"

namespace integrations::github {

using nlohmann::json;
using runner::CallResult;
using runner::CommentRef;
using runner::ForgeResult;

namespace {

constexpr size_t kMaxDescription = 140;    // characters, commit status description
constexpr size_t kMaxOutputBytes = 65535;  // check run output summary / text
constexpr size_t kMaxActions = 3;
constexpr size_t kMaxActionLabel = 20, kMaxActionDescription = 40, kMaxActionIdentifier = 20;
constexpr int kMaxCommentPages = 20;

CallResult withContext(CallResult r, const std::string& doing) {
  r.message = doing + ": " + r.message;
  return r;
}

CallResult unexpected(CallResult r, const std::string& what) {
  r.status = runner::CallStatus::Permanent;
  r.message = "unexpected answer: " + what;
  return r;
}

// The JSON body of a check run create/update; an error message when it must be refused.
std::optional<std::string> checkRunBody(const runner::CheckRunSpec& run, bool create, json& out) {
  if (create && run.name.empty()) return "a check run needs a name";
  if (create && !runner::looksLikeSha(run.headSha))
    return "a check run needs a head sha (got '" + run.headSha + "')";
  if (run.status == runner::CheckStatus::Completed && !run.conclusion)
    return "a completed check run needs a conclusion";
  if (run.actions.size() > kMaxActions) return "a check run has at most 3 actions";
  for (const auto& a : run.actions)
    if (a.identifier.empty() ||
        runner::truncateChars(a.identifier, kMaxActionIdentifier) != a.identifier)
      return "action identifier '" + a.identifier + "' must be 1 to 20 characters";

  out = json::object();
  if (!run.name.empty()) out["name"] = run.name;
  if (create) out["head_sha"] = run.headSha;
  // GitHub forces status completed when a conclusion is given; say so explicitly
  out["status"] = run.conclusion ? "completed" : runner::toString(run.status);
  if (run.conclusion) out["conclusion"] = runner::toString(*run.conclusion);
  if (!run.detailsUrl.empty()) out["details_url"] = run.detailsUrl;
  if (!run.externalId.empty()) out["external_id"] = run.externalId;
  if (run.startedAt) out["started_at"] = runner::formatUtc(*run.startedAt);
  if (run.completedAt) out["completed_at"] = runner::formatUtc(*run.completedAt);
  if (!run.title.empty()) {
    json output = {{"title", run.title},
                   {"summary", runner::truncateUtf8(run.summary.empty() ? run.title : run.summary,
                                                    kMaxOutputBytes)}};
    if (!run.text.empty()) output["text"] = runner::truncateUtf8(run.text, kMaxOutputBytes);
    out["output"] = std::move(output);
  }
  if (!run.actions.empty()) {
    json actions = json::array();
    for (const auto& a : run.actions)
      actions.push_back(
          {{"label", runner::truncateChars(a.label, kMaxActionLabel)},
           {"description", runner::truncateChars(a.description, kMaxActionDescription)},
           {"identifier", a.identifier}});
    out["actions"] = std::move(actions);
  }
  return std::nullopt;
}

class GitHubForge final : public runner::Forge {
 public:
  GitHubForge(ClientSettings s, runner::HttpClient& http, runner::Clock& clock, runner::Logger& log)
      : s_(std::move(s)), http_(http), clock_(clock), log_(log) {
    while (!s_.apiUrl.empty() && s_.apiUrl.back() == '/') s_.apiUrl.pop_back();
    if (s_.appId || !s_.privateKeyPem.empty()) {
      if (!s_.appId || s_.privateKeyPem.empty())
        throw runner::ConfigError("a GitHub App needs both app_id and private_key_file");
      key_.emplace(runner::crypto::RsaSigningKey::fromPem(s_.privateKeyPem));
      s_.privateKeyPem.clear();  // the parsed key is all we keep
    } else if (s_.token.empty()) {
      throw runner::ConfigError("forge '" + s_.forgeName +
                                "' (github) needs token_file or app_id + private_key_file");
    }
  }

  runner::ForgeCapabilities capabilities() const override {
    return {key_.has_value(), kMaxDescription};
  }

  CallResult setStatus(const std::string& repo, const std::string& sha,
                       const runner::CommitStatus& status) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (!runner::looksLikeSha(sha)) return CallResult::refused("invalid commit sha '" + sha + "'");
    json body = {{"state", runner::toString(status.state)},
                 {"context", status.context},
                 {"description", runner::truncateChars(status.description, kMaxDescription)}};
    if (!status.targetUrl.empty()) body["target_url"] = status.targetUrl;
    return call(repo, "POST", *base + "/statuses/" + sha, &body);
  }

  ForgeResult<CommentRef> upsertComment(const std::string& repo, int64_t prNumber,
                                        const std::string& marker,
                                        const std::string& body) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (marker.empty()) return CallResult::refused("empty comment marker");
    const std::string full = marker + "\n" + body;

    std::string url =
        s_.apiUrl + *base + "/issues/" + std::to_string(prNumber) + "/comments?per_page=100";
    for (int page = 0; page < kMaxCommentPages && !url.empty(); ++page) {
      runner::HttpResponse resp;
      auto r = callUrl(repo, "GET", url, nullptr, &resp);
      if (!r.ok()) return r;
      json list = json::parse(resp.body, nullptr, false);
      if (!list.is_array()) return unexpected(r, "comment list is not an array");
      if (auto found = runner::findMarkedComment(list, marker)) {
        auto& [ref, text] = *found;
        if (text == full) return ForgeResult<CommentRef>(r, ref);
        json patch = {{"body", full}};
        auto e = call(repo, "PATCH", *base + "/issues/comments/" + std::to_string(ref.id), &patch);
        if (!e.ok()) return e;
        ref.change = CommentRef::Change::Updated;
        return ForgeResult<CommentRef>(e, ref);
      }
      url = nextPage(resp);
    }
    return postComment(repo, prNumber, full);
  }

  ForgeResult<CommentRef> postComment(const std::string& repo, int64_t number,
                                      const std::string& body) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    json req = {{"body", body}};
    runner::HttpResponse resp;
    auto r =
        call(repo, "POST", *base + "/issues/" + std::to_string(number) + "/comments", &req, &resp);
    if (!r.ok()) return r;
    json c = json::parse(resp.body, nullptr, false);
    return ForgeResult<CommentRef>(r,
                                   {runner::jsonInt(c, {"id"}), runner::jsonString(c, {"html_url"}),
                                    CommentRef::Change::Created});
  }

  CallResult addReaction(const std::string& repo, int64_t commentId,
                         runner::Reaction reaction) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    json req = {{"content", runner::toString(reaction)}};
    return call(repo, "POST",
                *base + "/issues/comments/" + std::to_string(commentId) + "/reactions", &req);
  }

  ForgeResult<runner::UserPermission> userPermission(const std::string& repo,
                                                     const std::string& user) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (user.empty()) return CallResult::refused("empty user name");
    runner::HttpResponse resp;
    auto r = call(repo, "GET", *base + "/collaborators/" + runner::urlEncode(user) + "/permission",
                  nullptr, &resp);
    if (!r.ok()) return r;
    json j = json::parse(resp.body, nullptr, false);
    std::string permission = runner::jsonString(j, {"permission"});
    std::string role = runner::jsonString(j, {"role_name"});
    if (permission.empty()) return unexpected(r, "permission answer has no 'permission'");
    runner::UserPermission p;
    p.level = role.empty() ? permission : role;
    // `permission` folds maintain into write and triage into read; role_name keeps them
    p.canWrite = permission == "admin" || permission == "write" || role == "admin" ||
                 role == "maintain" || role == "write";
    return ForgeResult<runner::UserPermission>(r, p);
  }

  ForgeResult<runner::PullRequestInfo> pullRequest(const std::string& repo,
                                                   int64_t number) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    runner::HttpResponse resp;
    auto r = call(repo, "GET", *base + "/pulls/" + std::to_string(number), nullptr, &resp);
    if (!r.ok()) return r;
    auto info = runner::pullRequestFromJson(json::parse(resp.body, nullptr, false), repo);
    if (info.headSha.empty()) return unexpected(r, "pull request answer has no head sha");
    return ForgeResult<runner::PullRequestInfo>(r, info);
  }

  ForgeResult<int64_t> createCheckRun(const std::string& repo,
                                      const runner::CheckRunSpec& run) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (!key_) return CallResult::refused("check runs need a GitHub App (app_id and private key)");
    json body;
    if (auto why = checkRunBody(run, /*create=*/true, body)) return CallResult::refused(*why);
    runner::HttpResponse resp;
    auto r = call(repo, "POST", *base + "/check-runs", &body, &resp);
    if (!r.ok()) return r;
    int64_t id = runner::jsonInt(json::parse(resp.body, nullptr, false), {"id"});
    if (id == 0) return unexpected(r, "check run answer has no id");
    return ForgeResult<int64_t>(r, id);
  }

  CallResult updateCheckRun(const std::string& repo, int64_t checkRunId,
                            const runner::CheckRunSpec& run) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (!key_) return CallResult::refused("check runs need a GitHub App (app_id and private key)");
    json body;
    if (auto why = checkRunBody(run, /*create=*/false, body)) return CallResult::refused(*why);
    return call(repo, "PATCH", *base + "/check-runs/" + std::to_string(checkRunId), &body);
  }

  void noteInstallation(const std::string& repo, int64_t installationId) override {
    if (!key_ || installationId <= 0 || !runner::splitRepo(repo)) return;
    std::scoped_lock lk(authMu_);
    installations_[repo] = installationId;
  }

 private:
  struct CachedToken {
    std::string token;
    std::chrono::system_clock::time_point expiresAt;
  };

  static std::optional<std::string> repoPath(const std::string& repo) {
    auto parts = runner::splitRepo(repo);
    if (!parts) return std::nullopt;
    return "/repos/" + runner::urlEncode(parts->first) + "/" + runner::urlEncode(parts->second);
  }

  std::string nextPage(const runner::HttpResponse& resp) const {
    auto next = runner::nextPageUrl(resp.header("link"));
    if (!next || !runner::startsWith(*next, s_.apiUrl + "/")) return {};  // never leave the API
    return *next;
  }

  runner::HttpResponse send(const std::string& method, const std::string& url, const json* body,
                            const std::string& authorization) {
    runner::HttpRequest req;
    req.method = method;
    req.url = url;
    req.timeout = s_.timeout;
    req.headers = {{"Authorization", authorization},
                   {"Accept", "application/vnd.github+json"},
                   {"X-GitHub-Api-Version", "2022-11-28"},
                   {"User-Agent", s_.userAgent}};
    if (body) {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body->dump();
    }
    return http_.send(req);
  }

  CallResult classifyAndLog(const std::string& method, const std::string& url,
                            const runner::HttpResponse& resp) {
    CallResult r = runner::classifyResponse(resp, clock_.now());
    std::string where = method + " " + url.substr(s_.apiUrl.size());
    if (r.ok())
      log_.debug("forge '" + s_.forgeName + "': " + where + " -> " + std::to_string(resp.status));
    else
      log_.warn("forge '" + s_.forgeName + "': " + where + " failed (" +
                runner::toString(r.status) + "): " + r.message);
    return r;
  }

  // The Authorization header for calls on `repo`; with an App, an installation token
  // (cached, or minted now). `stale` is a token the API just refused (401): never reuse it.
  ForgeResult<std::string> authorization(const std::string& repo, const std::string& stale = {}) {
    if (!key_) return ForgeResult<std::string>(CallResult::success(0), "Bearer " + s_.token);
    std::scoped_lock lk(authMu_);
    const auto now = clock_.now();

    auto inst = installations_.find(repo);
    if (inst == installations_.end()) {
      auto base = repoPath(repo);  // valid: callers checked
      std::string url = s_.apiUrl + *base + "/installation";
      auto resp = send("GET", url, nullptr, "Bearer " + makeAppJwt(*key_, *s_.appId, now));
      auto r = classifyAndLog("GET", url, resp);
      if (!r.ok()) return withContext(r, "finding the GitHub App installation for " + repo);
      int64_t id = runner::jsonInt(json::parse(resp.body, nullptr, false), {"id"});
      if (id <= 0) return unexpected(r, "installation answer has no id");
      inst = installations_.emplace(repo, id).first;
    }
    const int64_t id = inst->second;

    auto cached = tokens_.find(id);
    if (cached != tokens_.end() && cached->second.token != stale &&
        now + s_.tokenRefreshMargin < cached->second.expiresAt)
      return ForgeResult<std::string>(CallResult::success(0), "Bearer " + cached->second.token);

    std::string url = s_.apiUrl + "/app/installations/" + std::to_string(id) + "/access_tokens";
    auto resp = send("POST", url, nullptr, "Bearer " + makeAppJwt(*key_, *s_.appId, now));
    auto r = classifyAndLog("POST", url, resp);
    if (!r.ok()) {
      if (r.httpStatus == 404) installations_.erase(repo);  // uninstalled: look it up again
      return withContext(r, "minting an installation token for " + repo);
    }
    json j = json::parse(resp.body, nullptr, false);
    std::string token = runner::jsonString(j, {"token"});
    if (token.empty()) return unexpected(r, "installation token answer has no token");
    if (s_.redactor) s_.redactor->add(token);
    auto expires = parseGitHubTime(runner::jsonString(j, {"expires_at"}));
    tokens_[id] = {token, expires ? *expires : now + std::chrono::minutes(50)};
    return ForgeResult<std::string>(CallResult::success(0), "Bearer " + token);
  }

  CallResult call(const std::string& repo, const std::string& method, const std::string& path,
                  const json* body, runner::HttpResponse* out = nullptr) {
    return callUrl(repo, method, s_.apiUrl + path, body, out);
  }

  // One API call; with an App, a 401 (token revoked or expired early) mints a fresh token
  // and sends once more.
  CallResult callUrl(const std::string& repo, const std::string& method, const std::string& url,
                     const json* body, runner::HttpResponse* out) {
    auto auth = authorization(repo);
    if (!auth.ok()) return auth;
    runner::HttpResponse resp = send(method, url, body, auth.value);
    if (resp.status == 401 && key_) {
      const std::string stale = auth.value.substr(std::string("Bearer ").size());
      auth = authorization(repo, stale);
      if (!auth.ok()) return auth;
      resp = send(method, url, body, auth.value);
    }
    CallResult r = classifyAndLog(method, url, resp);
    if (out) *out = std::move(resp);
    return r;
  }

  ClientSettings s_;
  std::optional<runner::crypto::RsaSigningKey> key_;
  runner::HttpClient& http_;
  runner::Clock& clock_;
  runner::Logger& log_;
  std::mutex authMu_;
  std::map<std::string, int64_t> installations_;  // GUARDED_BY(authMu_)
  std::map<int64_t, CachedToken> tokens_;         // GUARDED_BY(authMu_)
};

}  // namespace

std::unique_ptr<runner::Forge> makeForge(ClientSettings settings, runner::HttpClient& http,
                                         runner::Clock& clock, runner::Logger& log) {
  return std::make_unique<GitHubForge>(std::move(settings), http, clock, log);
}

std::unique_ptr<runner::Forge> makeForge(const runner::ForgeConfig& config,
                                         runner::HttpClient& http, runner::Clock& clock,
                                         runner::Logger& log, runner::Redactor* redactor) {
  ClientSettings s;
  s.forgeName = config.name;
  if (!config.apiUrl.empty())
    s.apiUrl = config.apiUrl;
  else if (!config.url.empty() && config.url != "https://github.com")
    s.apiUrl = config.url + "/api/v3";
  s.redactor = redactor;
  if (config.tokenFile) {
    s.token = runner::os::readSecretFile(*config.tokenFile);
    if (redactor) redactor->add(s.token);
  }
  if (config.appId && config.privateKeyFile) {
    s.appId = config.appId;
    s.privateKeyPem = runner::os::readSecretFile(*config.privateKeyFile);
    if (redactor) redactor->add(s.privateKeyPem);
    try {
      return makeForge(std::move(s), http, clock, log);
    } catch (runner::Error& e) {
      e.addContext("while reading " + config.privateKeyFile->string());
      throw;
    }
  }
  return makeForge(std::move(s), http, clock, log);
}

}  // namespace integrations::github
