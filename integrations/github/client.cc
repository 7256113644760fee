#include "integrations/github/client.h"

#include <map>
#include <mutex>

#include <nlohmann/json.hpp>

#include "integrations/common/rest_forge.h"
#include "integrations/github/app_auth.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/core/thread_annotations.h"
#include "runner/crypto/crypto.h"
#include "runner/os/files.h"

namespace integrations::github {

using nlohmann::json;
using runner::CallResult;
using runner::ForgeResult;
using runner::Mutex;
using runner::MutexLock;

namespace {

constexpr size_t kMaxDescription = 140;    // characters, commit status description
constexpr size_t kMaxOutputBytes = 65535;  // check run output summary / text
constexpr size_t kMaxActions = 3;
constexpr size_t kMaxActionLabel = 20, kMaxActionDescription = 40, kMaxActionIdentifier = 20;
constexpr size_t kAnnotationsPerRequest = 50;
constexpr size_t kMaxAnnotationTitle = 255;   // characters
constexpr size_t kMaxAnnotationText = 65535;  // bytes, message and raw_details

// Annotations [from, from + 50) as GitHub takes them.
json annotationsJson(const std::vector<runner::CheckAnnotation>& all, size_t from) {
  json out = json::array();
  for (size_t i = from; i < all.size() && i < from + kAnnotationsPerRequest; ++i) {
    const auto& a = all[i];
    json j = {{"path", a.path},
              {"start_line", a.startLine},
              {"end_line", a.endLine},
              {"annotation_level", runner::toString(a.level)},
              {"message", runner::truncateUtf8(a.message, kMaxAnnotationText)}};
    if (!a.title.empty()) j["title"] = runner::truncateChars(a.title, kMaxAnnotationTitle);
    if (!a.rawDetails.empty())
      j["raw_details"] = runner::truncateUtf8(a.rawDetails, kMaxAnnotationText);
    out.push_back(std::move(j));
  }
  return out;
}

CallResult withContext(CallResult r, const std::string& doing) {
  r.message = doing + ": " + r.message;
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

  for (const auto& a : run.annotations) {
    if (a.path.empty() || a.path.front() == '/' || a.message.empty())
      return "an annotation needs a path in the repository and a message (got '" + a.path + "')";
    if (a.startLine < 1 || a.endLine < a.startLine)
      return "annotation lines " + std::to_string(a.startLine) + "-" + std::to_string(a.endLine) +
             " of " + a.path + " are not a range";
  }
  if (!run.annotations.empty() && run.title.empty())
    return "annotations are sent with the output: the check run needs a title";

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
    if (!run.annotations.empty()) output["annotations"] = annotationsJson(run.annotations, 0);
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

class GitHubForge final : public runner::RestForge {
 public:
  GitHubForge(ClientSettings s, runner::HttpClient& http, runner::Clock& clock, runner::Logger& log)
      : RestForge({s.forgeName, s.apiUrl, s.timeout, /*commentListQuery=*/"?per_page=100"}, http,
                  clock, log),
        s_(std::move(s)) {
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
    return {key_.has_value(), kMaxDescription, /*statusContextsIgnoreCase=*/true};
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
    sendMoreAnnotations(repo, *base, id, body, run);
    return ForgeResult<int64_t>(r, id);
  }

  CallResult updateCheckRun(const std::string& repo, int64_t checkRunId,
                            const runner::CheckRunSpec& run) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (!key_) return CallResult::refused("check runs need a GitHub App (app_id and private key)");
    json body;
    if (auto why = checkRunBody(run, /*create=*/false, body)) return CallResult::refused(*why);
    auto r = call(repo, "PATCH", *base + "/check-runs/" + std::to_string(checkRunId), &body);
    if (r.ok()) sendMoreAnnotations(repo, *base, checkRunId, body, run);
    return r;
  }

  // Annotations past the first 50 (sent with the run): GitHub adds those of each update to
  // the run's, so they go in further updates of its output, 50 at a time. Best effort: the
  // run itself was made, and sending it again would make another (a failure is logged).
  void sendMoreAnnotations(const std::string& repo, const std::string& base, int64_t id,
                           const json& sent, const runner::CheckRunSpec& run) {
    for (size_t from = kAnnotationsPerRequest; from < run.annotations.size();
         from += kAnnotationsPerRequest) {
      json output = sent.at("output");
      output["annotations"] = annotationsJson(run.annotations, from);
      json body = {{"output", std::move(output)}};
      if (!call(repo, "PATCH", base + "/check-runs/" + std::to_string(id), &body).ok()) return;
    }
  }

  // A GitHub App posts as "<slug>[bot]" (GET /app, with the App's JWT); a token as its user.
  ForgeResult<std::string> fetchSelfLogin(const std::string& repo) override {
    if (!key_) return RestForge::fetchSelfLogin(repo);
    const std::string url = apiUrl() + "/app";
    auto resp =
        sendAs("GET", url, nullptr, "Bearer " + makeAppJwt(*key_, *s_.appId, clock().now()));
    auto r = classifyAndLog("GET", url, resp);
    if (!r.ok()) return r;
    std::string slug = runner::jsonString(json::parse(resp.body, nullptr, false), {"slug"});
    if (slug.empty()) return unexpected(r, "app answer has no slug");
    return ForgeResult<std::string>(r, slug + "[bot]");
  }

  void noteInstallation(const std::string& repo, int64_t installationId) override {
    if (!key_ || installationId <= 0 || !runner::splitRepo(repo)) return;
    MutexLock lk(authMu_);
    installations_[repo] = installationId;
  }

 private:
  struct CachedToken {
    std::string token;
    std::chrono::system_clock::time_point expiresAt;
  };

  // One request with GitHub's headers (it rejects requests without a User-Agent).
  runner::HttpResponse sendAs(const std::string& method, const std::string& url, const json* body,
                              const std::string& authorization) {
    return send(method, url, body,
                {{"Authorization", authorization},
                 {"Accept", "application/vnd.github+json"},
                 {"X-GitHub-Api-Version", "2022-11-28"},
                 {"User-Agent", s_.userAgent}});
  }

  runner::UserPermission readPermission(const json& answer,
                                        const std::string& permission) const override {
    std::string role = runner::jsonString(answer, {"role_name"});
    // `permission` folds maintain into write and triage into read; role_name keeps them
    bool canWrite = permission == "admin" || permission == "write" || role == "admin" ||
                    role == "maintain" || role == "write";
    return {role.empty() ? permission : role, canWrite};
  }

  // The Authorization header for calls on `repo`; with an App, an installation token
  // (cached, or minted now). `stale` is a token the API just refused (401): never reuse it.
  ForgeResult<std::string> authorization(const std::string& repo, const std::string& stale = {}) {
    if (!key_) return ForgeResult<std::string>(CallResult::success(0), "Bearer " + s_.token);
    MutexLock lk(authMu_);
    const auto now = clock().now();

    auto inst = installations_.find(repo);
    if (inst == installations_.end()) {
      auto base = repoPath(repo);  // valid: callers checked
      std::string url = apiUrl() + *base + "/installation";
      auto resp = sendAs("GET", url, nullptr, "Bearer " + makeAppJwt(*key_, *s_.appId, now));
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

    std::string url = apiUrl() + "/app/installations/" + std::to_string(id) + "/access_tokens";
    auto resp = sendAs("POST", url, nullptr, "Bearer " + makeAppJwt(*key_, *s_.appId, now));
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

  // One API call; with an App, a 401 (token revoked or expired early) mints a fresh token
  // and sends once more.
  CallResult callUrl(const std::string& repo, const std::string& method, const std::string& url,
                     const json* body, runner::HttpResponse* out) override {
    auto auth = authorization(repo);
    if (!auth.ok()) return auth;
    runner::HttpResponse resp = sendAs(method, url, body, auth.value);
    if (resp.status == 401 && key_) {
      const std::string stale = auth.value.substr(std::string("Bearer ").size());
      auth = authorization(repo, stale);
      if (!auth.ok()) return auth;
      resp = sendAs(method, url, body, auth.value);
    }
    CallResult r = classifyAndLog(method, url, resp);
    if (out) *out = std::move(resp);
    return r;
  }

  ClientSettings s_;  // apiUrl: use apiUrl() (normalised)
  std::optional<runner::crypto::RsaSigningKey> key_;
  Mutex authMu_;
  std::map<std::string, int64_t> installations_ GUARDED_BY(authMu_);
  std::map<int64_t, CachedToken> tokens_ GUARDED_BY(authMu_);
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
    s.token = runner::os::readSecretFile(*config.tokenFile, redactor);
  }
  if (config.appId && config.privateKeyFile) {
    s.appId = config.appId;
    s.privateKeyPem = runner::os::readSecretFile(*config.privateKeyFile, redactor);
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
