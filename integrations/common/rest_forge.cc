#include "integrations/common/rest_forge.h"

#include <nlohmann/json.hpp>

#include "runner/core/text.h"

namespace runner {

using nlohmann::json;

namespace {
constexpr int kMaxCommentPages = 20;
}  // namespace

RestForge::RestForge(RestApiSettings settings, HttpClient& http, Clock& clock, Logger& log)
    : api_(std::move(settings)), http_(http), clock_(clock), log_(log) {
  while (!api_.apiUrl.empty() && api_.apiUrl.back() == '/') api_.apiUrl.pop_back();
}

CallResult RestForge::setStatus(const std::string& repo, const std::string& sha,
                                const CommitStatus& status) {
  auto base = repoPath(repo);
  if (!base) return CallResult::refused("invalid repository '" + repo + "'");
  if (!looksLikeSha(sha)) return CallResult::refused("invalid commit sha '" + sha + "'");
  const size_t limit = capabilities().maxStatusDescription;
  json body = {
      {"state", toString(status.state)},
      {"context", status.context},
      {"description", limit ? truncateChars(status.description, limit) : status.description}};
  if (!status.targetUrl.empty()) body["target_url"] = status.targetUrl;
  return call(repo, "POST", *base + "/statuses/" + sha, &body);
}

ForgeResult<CommentRef> RestForge::upsertComment(const std::string& repo, int64_t prNumber,
                                                 const std::string& marker,
                                                 const std::string& body) {
  auto base = repoPath(repo);
  if (!base) return CallResult::refused("invalid repository '" + repo + "'");
  if (marker.empty()) return CallResult::refused("empty comment marker");
  const std::string full = marker + "\n" + body;
  auto me = selfLogin(repo);
  if (!me.ok()) return static_cast<CallResult>(me);

  std::string url = api_.apiUrl + *base + "/issues/" + std::to_string(prNumber) + "/comments" +
                    api_.commentListQuery;
  for (int page = 0; page < kMaxCommentPages && !url.empty(); ++page) {
    HttpResponse resp;
    auto r = callUrl(repo, "GET", url, nullptr, &resp);
    if (!r.ok()) return r;
    json list = json::parse(resp.body, nullptr, false);
    if (!list.is_array()) return unexpected(r, "comment list is not an array");
    if (auto found = findMarkedComment(list, marker, me.value)) {
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

ForgeResult<CommentRef> RestForge::postComment(const std::string& repo, int64_t number,
                                               const std::string& body) {
  auto base = repoPath(repo);
  if (!base) return CallResult::refused("invalid repository '" + repo + "'");
  json req = {{"body", body}};
  HttpResponse resp;
  auto r =
      call(repo, "POST", *base + "/issues/" + std::to_string(number) + "/comments", &req, &resp);
  if (!r.ok()) return r;
  json c = json::parse(resp.body, nullptr, false);
  return ForgeResult<CommentRef>(
      r, {jsonInt(c, {"id"}), jsonString(c, {"html_url"}), CommentRef::Change::Created});
}

CallResult RestForge::addReaction(const std::string& repo, int64_t commentId, Reaction reaction) {
  auto base = repoPath(repo);
  if (!base) return CallResult::refused("invalid repository '" + repo + "'");
  json req = {{"content", toString(reaction)}};
  return call(repo, "POST", *base + "/issues/comments/" + std::to_string(commentId) + "/reactions",
              &req);
}

ForgeResult<UserPermission> RestForge::userPermission(const std::string& repo,
                                                      const std::string& user) {
  auto base = repoPath(repo);
  if (!base) return CallResult::refused("invalid repository '" + repo + "'");
  if (user.empty()) return CallResult::refused("empty user name");
  HttpResponse resp;
  auto r = call(repo, "GET", *base + "/collaborators/" + urlEncode(user) + "/permission", nullptr,
                &resp);
  if (r.httpStatus == 404)  // the forge knows no such user on the repository: no access
    return ForgeResult<UserPermission>(CallResult::success(404), UserPermission{"none", false});
  if (r.httpStatus == 403 && !api_.permissionForbiddenHint.empty())
    r.message += " (" + api_.permissionForbiddenHint + ")";
  if (!r.ok()) return r;
  json j = json::parse(resp.body, nullptr, false);
  std::string permission = jsonString(j, {"permission"});
  if (permission.empty()) return unexpected(r, "permission answer has no 'permission'");
  return ForgeResult<UserPermission>(r, readPermission(j, permission));
}

ForgeResult<std::string> RestForge::fetchSelfLogin(const std::string& repo) {
  HttpResponse resp;
  auto r = call(repo, "GET", "/user", nullptr, &resp);
  if (!r.ok()) return r;
  std::string login = jsonString(json::parse(resp.body, nullptr, false), {"login"});
  if (login.empty()) return unexpected(r, "user answer has no login");
  return ForgeResult<std::string>(r, login);
}

ForgeResult<std::string> RestForge::selfLogin(const std::string& repo) {
  MutexLock lk(selfMu_);
  if (self_) return ForgeResult<std::string>(CallResult::success(0), *self_);
  auto r = fetchSelfLogin(repo);
  if (!r.ok()) {
    r.message = "finding the account Switchyard posts as: " + r.message;
    return r;
  }
  self_ = r.value;
  return r;
}

ForgeResult<PullRequestInfo> RestForge::pullRequest(const std::string& repo, int64_t number) {
  auto base = repoPath(repo);
  if (!base) return CallResult::refused("invalid repository '" + repo + "'");
  HttpResponse resp;
  auto r = call(repo, "GET", *base + "/pulls/" + std::to_string(number), nullptr, &resp);
  if (!r.ok()) return r;
  auto info = pullRequestFromJson(json::parse(resp.body, nullptr, false), repo);
  if (info.headSha.empty()) return unexpected(r, "pull request answer has no head sha");
  return ForgeResult<PullRequestInfo>(r, info);
}

CallResult RestForge::call(const std::string& repo, const std::string& method,
                           const std::string& path, const json* body, HttpResponse* out) {
  return callUrl(repo, method, api_.apiUrl + path, body, out);
}

HttpResponse RestForge::send(const std::string& method, const std::string& url, const json* body,
                             std::vector<std::pair<std::string, std::string>> headers) {
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.timeout = api_.timeout;
  req.headers = std::move(headers);
  if (body) {
    req.headers.emplace_back("Content-Type", "application/json");
    req.body = body->dump();
  }
  return http_.send(req);
}

CallResult RestForge::classifyAndLog(const std::string& method, const std::string& url,
                                     const HttpResponse& resp) {
  CallResult r = classifyResponse(resp, clock_.now());
  std::string where = method + " " + url.substr(api_.apiUrl.size());
  if (r.ok())
    log_.debug("forge '" + api_.forgeName + "': " + where + " -> " + std::to_string(resp.status));
  else
    log_.warn("forge '" + api_.forgeName + "': " + where + " failed (" + toString(r.status) +
              "): " + r.message);
  return r;
}

std::optional<std::string> RestForge::repoPath(const std::string& repo) {
  auto parts = splitRepo(repo);
  if (!parts) return std::nullopt;
  return "/repos/" + urlEncode(parts->first) + "/" + urlEncode(parts->second);
}

CallResult RestForge::unexpected(CallResult r, const std::string& what) {
  r.status = CallStatus::Permanent;
  r.message = "unexpected answer: " + what;
  return r;
}

std::string RestForge::nextPage(const HttpResponse& resp) const {
  auto next = nextPageUrl(resp.header("link"));
  if (!next || !startsWith(*next, api_.apiUrl + "/")) return {};  // never leave the API
  return *next;
}

}  // namespace runner
