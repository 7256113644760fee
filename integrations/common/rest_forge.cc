#include "integrations/common/rest_forge.h"

#include <nlohmann/json.hpp>

#include "runner/core/text.h"

namespace runner {

using nlohmann::json;

namespace {
constexpr int kMaxCommentPages = 20;
constexpr int kMaxRedirects = 3;
constexpr size_t kRememberedCommits = 4096;

// "https://api.github.com" of "https://api.github.com/repos/…", scheme and host lowercased;
// "" when `url` has no scheme.
std::string originOf(std::string_view url) {
  auto scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  return toLower(url.substr(0, url.find('/', scheme + 3)));
}

// "alice/infra" of "/repos/alice/infra/…" (a path below the API URL), else "".
std::string repoOfPath(std::string_view path) {
  if (!startsWith(path, "/repos/")) return {};
  auto parts = split(path.substr(7), '/');
  if (parts.size() < 2) return {};
  return parts[0] + "/" + parts[1];
}

// "42" of "/repositories/42/…", else "".
std::string repositoryIdOfPath(std::string_view path) {
  if (!startsWith(path, "/repositories/")) return {};
  std::string_view rest = path.substr(14);
  std::string id(rest.substr(0, rest.find('/')));
  if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) return {};
  return id;
}
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
  if (capabilities().statusContextsIgnoreCase) {
    if (auto other = claimContext(repo, sha, status.context))
      return CallResult::refused(
          "forge '" + api_.forgeName + "' compares status contexts without case: '" +
          status.context + "' would replace '" + *other + "' on " + sha.substr(0, 12) +
          " — rename one of the two hosts whose names differ only in case, or report "
          "through a GitHub App (check runs keep them apart)");
  }
  return call(repo, "POST", *base + "/statuses/" + sha, &body);
}

std::optional<std::string> RestForge::claimContext(const std::string& repo, const std::string& sha,
                                                   const std::string& context) {
  MutexLock lk(contextsMu_);
  auto key = std::make_pair(repo, toLower(sha));
  auto it = contexts_.find(key);
  if (it == contexts_.end()) {
    if (contextOrder_.size() >= kRememberedCommits) {
      contexts_.erase(contextOrder_.front());
      contextOrder_.pop_front();
    }
    contextOrder_.push_back(key);
    it = contexts_.emplace(key, std::map<std::string, std::string>{}).first;
  }
  auto [seen, added] = it->second.emplace(toLower(context), context);
  if (!added && seen->second != context) return seen->second;
  return std::nullopt;
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

ForgeResult<CommentRef> RestForge::updateComment(const std::string& repo, int64_t prNumber,
                                                 int64_t commentId, const std::string& marker,
                                                 const std::string& body) {
  auto base = repoPath(repo);
  if (!base) return CallResult::refused("invalid repository '" + repo + "'");
  if (marker.empty()) return CallResult::refused("empty comment marker");
  if (commentId <= 0) return upsertComment(repo, prNumber, marker, body);
  json patch = {{"body", marker + "\n" + body}};
  HttpResponse resp;
  auto r =
      call(repo, "PATCH", *base + "/issues/comments/" + std::to_string(commentId), &patch, &resp);
  if (r.httpStatus == 404) return upsertComment(repo, prNumber, marker, body);  // deleted
  if (!r.ok()) return r;
  json c = json::parse(resp.body, nullptr, false);
  return ForgeResult<CommentRef>(
      r, {commentId, jsonString(c, {"html_url"}), CommentRef::Change::Updated});
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
  HttpResponse resp = http_.send(req);
  for (int hop = 0; hop < kMaxRedirects; ++hop) {
    std::string next = redirectTarget(req.url, resp);
    if (next.empty()) break;
    noteMove(req.url, next, req.headers);
    req.url = std::move(next);
    resp = http_.send(req);
  }
  return resp;
}

std::string RestForge::redirectTarget(const std::string& url, const HttpResponse& resp) const {
  if (resp.status != 301 && resp.status != 302 && resp.status != 307 && resp.status != 308)
    return {};
  std::string location(trim(resp.header("location")));
  if (startsWith(location, "/")) location = originOf(url) + location;
  // same host, and still the API: the token must never go anywhere else
  const std::string origin = originOf(api_.apiUrl);
  if (origin.empty() || originOf(location) != origin) return {};
  location = api_.apiUrl.substr(0, origin.size()) + location.substr(origin.size());
  if (!startsWith(location, api_.apiUrl + "/") || location == url) return {};
  return location;
}

void RestForge::noteMove(const std::string& from, const std::string& to,
                         const std::vector<std::pair<std::string, std::string>>& headers) {
  auto below = [&](const std::string& url) {
    return startsWith(url, api_.apiUrl) ? url.substr(api_.apiUrl.size()) : url;
  };
  const std::string fromPath = below(from), toPath = below(to);
  const std::string oldRepo = repoOfPath(fromPath);
  {
    MutexLock lk(movedMu_);
    if (!movedLogged_.insert(oldRepo.empty() ? fromPath : oldRepo).second) return;
  }
  std::string newRepo = repoOfPath(toPath);
  if (newRepo.empty()) {
    if (auto id = repositoryIdOfPath(toPath); !id.empty()) {
      HttpRequest req;
      req.url = api_.apiUrl + "/repositories/" + id;
      req.timeout = api_.timeout;
      req.headers = headers;
      std::erase_if(req.headers, [](const auto& h) { return toLower(h.first) == "content-type"; });
      auto resp = http_.send(req);
      if (resp.ok()) newRepo = jsonString(json::parse(resp.body, nullptr, false), {"full_name"});
    }
  }
  if (oldRepo.empty())
    log_.warn("forge '" + api_.forgeName + "': " + fromPath + " moved to " + toPath);
  else
    log_.warn("forge '" + api_.forgeName + "': repository " + oldRepo + " has moved" +
              (newRepo.empty() ? " (" + toPath + ")" : " to " + newRepo) +
              " — it was renamed or transferred; calls follow the redirect, but update "
              "repos[].name in the configuration" +
              (newRepo.empty() ? "" : " to " + newRepo));
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
