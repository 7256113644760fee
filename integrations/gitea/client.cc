#include "integrations/gitea/client.h"

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"

namespace integrations::gitea {

using nlohmann::json;
using runner::CallResult;
using runner::CommentRef;
using runner::ForgeResult;

namespace {

constexpr int kMaxCommentPages = 20;

class GiteaForge final : public runner::Forge {
 public:
  GiteaForge(ClientSettings s, runner::HttpClient& http, runner::Clock& clock, runner::Logger& log)
      : s_(std::move(s)), http_(http), clock_(clock), log_(log) {
    while (!s_.apiUrl.empty() && s_.apiUrl.back() == '/') s_.apiUrl.pop_back();
  }

  runner::ForgeCapabilities capabilities() const override { return {false, 0}; }

  CallResult setStatus(const std::string& repo, const std::string& sha,
                       const runner::CommitStatus& status) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (!runner::looksLikeSha(sha)) return CallResult::refused("invalid commit sha '" + sha + "'");
    json body = {{"state", runner::toString(status.state)},
                 {"context", status.context},
                 {"description", status.description}};
    if (!status.targetUrl.empty()) body["target_url"] = status.targetUrl;
    return call("POST", *base + "/statuses/" + sha, &body);
  }

  ForgeResult<CommentRef> upsertComment(const std::string& repo, int64_t prNumber,
                                        const std::string& marker,
                                        const std::string& body) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (marker.empty()) return CallResult::refused("empty comment marker");
    const std::string full = marker + "\n" + body;

    std::string url = s_.apiUrl + *base + "/issues/" + std::to_string(prNumber) + "/comments";
    for (int page = 0; page < kMaxCommentPages && !url.empty(); ++page) {
      runner::HttpResponse resp;
      auto r = callUrl("GET", url, nullptr, &resp);
      if (!r.ok()) return r;
      json list = json::parse(resp.body, nullptr, false);
      if (!list.is_array()) return unexpected(r, "comment list is not an array");
      if (auto found = runner::findMarkedComment(list, marker)) {
        auto& [ref, text] = *found;
        if (text == full) return ForgeResult<CommentRef>(r, ref);
        json patch = {{"body", full}};
        auto e = call("PATCH", *base + "/issues/comments/" + std::to_string(ref.id), &patch);
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
    auto r = call("POST", *base + "/issues/" + std::to_string(number) + "/comments", &req, &resp);
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
    return call("POST", *base + "/issues/comments/" + std::to_string(commentId) + "/reactions",
                &req);
  }

  ForgeResult<runner::UserPermission> userPermission(const std::string& repo,
                                                     const std::string& user) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    if (user.empty()) return CallResult::refused("empty user name");
    runner::HttpResponse resp;
    auto r = call("GET", *base + "/collaborators/" + runner::urlEncode(user) + "/permission",
                  nullptr, &resp);
    if (!r.ok()) return r;
    json j = json::parse(resp.body, nullptr, false);
    runner::UserPermission p;
    p.level = runner::jsonString(j, {"permission"});
    if (p.level.empty()) return unexpected(r, "permission answer has no 'permission'");
    p.canWrite = p.level == "write" || p.level == "admin" || p.level == "owner";
    return ForgeResult<runner::UserPermission>(r, p);
  }

  ForgeResult<runner::PullRequestInfo> pullRequest(const std::string& repo,
                                                   int64_t number) override {
    auto base = repoPath(repo);
    if (!base) return CallResult::refused("invalid repository '" + repo + "'");
    runner::HttpResponse resp;
    auto r = call("GET", *base + "/pulls/" + std::to_string(number), nullptr, &resp);
    if (!r.ok()) return r;
    auto info = runner::pullRequestFromJson(json::parse(resp.body, nullptr, false), repo);
    if (info.headSha.empty()) return unexpected(r, "pull request answer has no head sha");
    return ForgeResult<runner::PullRequestInfo>(r, info);
  }

  ForgeResult<int64_t> createCheckRun(const std::string&, const runner::CheckRunSpec&) override {
    return CallResult::refused("Gitea and Forgejo have no check runs; use commit statuses");
  }
  CallResult updateCheckRun(const std::string&, int64_t, const runner::CheckRunSpec&) override {
    return CallResult::refused("Gitea and Forgejo have no check runs; use commit statuses");
  }

 private:
  // "/repos/<owner>/<name>", escaped; nullopt for a malformed repo name.
  static std::optional<std::string> repoPath(const std::string& repo) {
    auto parts = runner::splitRepo(repo);
    if (!parts) return std::nullopt;
    return "/repos/" + runner::urlEncode(parts->first) + "/" + runner::urlEncode(parts->second);
  }

  // The next page of a list, if the forge offers one on the same API.
  std::string nextPage(const runner::HttpResponse& resp) const {
    auto next = runner::nextPageUrl(resp.header("link"));
    if (!next || !runner::startsWith(*next, s_.apiUrl + "/")) return {};
    return *next;
  }

  static CallResult unexpected(CallResult r, const std::string& what) {
    r.status = runner::CallStatus::Permanent;
    r.message = "unexpected answer: " + what;
    return r;
  }

  CallResult call(const std::string& method, const std::string& path, const json* body,
                  runner::HttpResponse* out = nullptr) {
    return callUrl(method, s_.apiUrl + path, body, out);
  }

  CallResult callUrl(const std::string& method, const std::string& url, const json* body,
                     runner::HttpResponse* out) {
    runner::HttpRequest req;
    req.method = method;
    req.url = url;
    req.timeout = s_.timeout;
    req.headers = {{"Authorization", "token " + s_.token},
                   {"Accept", "application/json"},
                   {"User-Agent", s_.userAgent}};
    if (body) {
      req.headers.emplace_back("Content-Type", "application/json");
      req.body = body->dump();
    }
    runner::HttpResponse resp = http_.send(req);
    CallResult r = runner::classifyResponse(resp, clock_.now());
    std::string where = method + " " + url.substr(s_.apiUrl.size());
    if (r.ok()) {
      log_.debug("forge '" + s_.forgeName + "': " + where + " -> " + std::to_string(resp.status));
    } else {
      log_.warn("forge '" + s_.forgeName + "': " + where + " failed (" +
                runner::toString(r.status) + "): " + r.message);
    }
    if (out) *out = std::move(resp);
    return r;
  }

  ClientSettings s_;
  runner::HttpClient& http_;
  runner::Clock& clock_;
  runner::Logger& log_;
};

}  // namespace

std::unique_ptr<runner::Forge> makeForge(ClientSettings settings, runner::HttpClient& http,
                                         runner::Clock& clock, runner::Logger& log) {
  return std::make_unique<GiteaForge>(std::move(settings), http, clock, log);
}

std::unique_ptr<runner::Forge> makeForge(const runner::ForgeConfig& config,
                                         runner::HttpClient& http, runner::Clock& clock,
                                         runner::Logger& log, runner::Redactor* redactor) {
  if (!config.tokenFile)
    throw runner::ConfigError("forge '" + config.name + "' (" + config.type +
                              ") needs token_file to report statuses");
  ClientSettings s;
  s.forgeName = config.name;
  s.apiUrl = config.apiUrl.empty() ? config.url + "/api/v1" : config.apiUrl;
  s.token = runner::os::readSecretFile(*config.tokenFile);
  if (redactor) redactor->add(s.token);
  return makeForge(std::move(s), http, clock, log);
}

}  // namespace integrations::gitea
