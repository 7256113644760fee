#include "tests/support/fake_forge.h"

#include <regex>

#include <catch2/catch.hpp>
#include <httplib.h>

#include "runner/core/forge.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "tests/support/wait.h"

namespace tests {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// RecordedRequest, Fault

std::string RecordedRequest::header(std::string_view name) const {
  auto it = headers.find(runner::toLower(name));
  return it == headers.end() ? std::string() : it->second;
}

json RecordedRequest::json() const {
  auto j = nlohmann::json::parse(body, nullptr, false);
  INFO(target() << " body: " << body);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

std::string RecordedRequest::target() const {
  return method + " " + path + (query.empty() ? "" : "?" + query);
}

Fault Fault::serverError(int status) {
  Fault f;
  f.status = status;
  f.body = R"({"message":"Server Error"})";
  return f;
}

Fault Fault::tooManyRequests(int retryAfterSeconds) {
  Fault f;
  f.status = 429;
  f.headers = {{"Retry-After", std::to_string(retryAfterSeconds)}};
  f.body = R"({"message":"You have exceeded a secondary rate limit."})";
  return f;
}

Fault Fault::rateLimited(int64_t resetEpochSeconds) {
  Fault f;
  f.status = 403;
  f.headers = {{"X-RateLimit-Limit", "5000"},
               {"X-RateLimit-Remaining", "0"},
               {"X-RateLimit-Used", "5000"},
               {"X-RateLimit-Reset", std::to_string(resetEpochSeconds)},
               {"X-RateLimit-Resource", "core"}};
  f.body = R"({"message":"API rate limit exceeded for installation ID 1."})";
  return f;
}

Fault Fault::slow(std::chrono::milliseconds delay) {
  Fault f;
  f.status = 0;
  f.delay = delay;
  return f;
}

// ---------------------------------------------------------------------------------------------
// FakeForgeServer

namespace {

std::string timestamp() { return "2026-01-01T00:00:00Z"; }

bool bearerOrToken(const std::string& header, std::string& credential) {
  auto space = header.find(' ');
  if (space == std::string::npos) return false;
  std::string scheme = runner::toLower(header.substr(0, space));
  if (scheme != "token" && scheme != "bearer") return false;
  credential = header.substr(space + 1);
  return !credential.empty();
}

size_t charCount(const std::string& s) {
  size_t n = 0;
  for (char c : s) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

const std::set<std::string> kReactions = {"+1",    "-1",     "laugh",  "confused",
                                          "heart", "hooray", "rocket", "eyes"};

}  // namespace

FakeForgeServer::FakeForgeServer() : server_(std::make_unique<httplib::Server>()) {}

FakeForgeServer::~FakeForgeServer() { stop(); }

void FakeForgeServer::start() {
  auto handler = [this](const httplib::Request& req, httplib::Response& res) {
    handle(&req, &res);
  };
  server_->Get(".*", handler);
  server_->Post(".*", handler);
  server_->Put(".*", handler);
  server_->Patch(".*", handler);
  server_->Delete(".*", handler);
  port_ = server_->bind_to_any_port("127.0.0.1");
  REQUIRE(port_ > 0);
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() is only effective once the server runs: wait for it
  REQUIRE(tests::waitUntil([&] { return server_->is_running(); }, std::chrono::seconds(30),
                           std::chrono::milliseconds(1)));
}

void FakeForgeServer::stop() {
  {
    std::scoped_lock lk(mu_);
    stopping_ = true;
  }
  stopCv_.notify_all();
  if (server_) server_->stop();
  if (thread_.joinable()) thread_.join();
}

std::string FakeForgeServer::baseUrl() const { return "http://127.0.0.1:" + std::to_string(port_); }

bool FakeForgeServer::waitOrStop(std::chrono::milliseconds d) {
  std::unique_lock lk(mu_);
  return !stopCv_.wait_for(lk, d, [this] { return stopping_; });
}

void FakeForgeServer::handle(const void* request, void* response) {
  const auto& req = *static_cast<const httplib::Request*>(request);
  auto& res = *static_cast<httplib::Response*>(response);

  RecordedRequest rec;
  rec.method = req.method;
  rec.path = req.path;
  auto q = req.target.find('?');
  if (q != std::string::npos) rec.query = req.target.substr(q + 1);
  for (const auto& [name, value] : req.headers) rec.headers.emplace(runner::toLower(name), value);
  rec.body = req.body;

  std::optional<Fault> fault;
  size_t index = 0;
  {
    std::scoped_lock lk(mu_);
    index = requests_.size();
    requests_.push_back(rec);
    for (auto it = faults_.begin(); it != faults_.end(); ++it) {
      if (!runner::startsWith(rec.target(), it->match)) continue;
      fault = it->fault;
      if (--it->remaining <= 0) faults_.erase(it);
      break;
    }
  }
  if (fault && fault->delay.count() > 0 && !waitOrStop(fault->delay)) {
    res.status = 503;
    return;
  }

  std::scoped_lock lk(mu_);
  if (fault && fault->status != 0) {
    res.status = fault->status;
    for (const auto& [k, v] : fault->headers) res.set_header(k, v);
    res.set_content(fault->body, "application/json");
  } else {
    Reply reply = route(rec);
    if (reply.upstreamStatus) lastUpstream_.emplace(reply.upstreamStatus, reply.upstreamBody);
    res.status = reply.status;
    for (const auto& [k, v] : reply.headers) res.set_header(k, v);
    if (!reply.body.is_null()) res.set_content(reply.body.dump(), "application/json");
  }
  requests_[index].answeredStatus = res.status;
  requests_[index].answeredBody = res.body;
  if (lastUpstream_) {
    requests_[index].upstreamStatus = lastUpstream_->first;
    requests_[index].upstreamBody = std::move(lastUpstream_->second);
    lastUpstream_.reset();
  }
}

std::vector<RecordedRequest> FakeForgeServer::requests() const {
  std::scoped_lock lk(mu_);
  return requests_;
}

std::vector<std::string> FakeForgeServer::targets() const {
  std::vector<std::string> out;
  for (const auto& r : requests()) out.push_back(r.target());
  return out;
}

void FakeForgeServer::clearRequests() {
  std::scoped_lock lk(mu_);
  requests_.clear();
}

void FakeForgeServer::failNext(Fault fault, int times, std::string match) {
  std::scoped_lock lk(mu_);
  faults_.push_back({std::move(fault), times, std::move(match)});
}

void FakeForgeServer::clearFaults() {
  std::scoped_lock lk(mu_);
  faults_.clear();
}

void FakeForgeServer::addPullRequest(FakePullRequest pr) {
  std::scoped_lock lk(mu_);
  pulls_.push_back(std::move(pr));
}

void FakeForgeServer::setPermission(const std::string& repo, const std::string& user,
                                    std::string permission, std::string roleName) {
  std::scoped_lock lk(mu_);
  permissions_[{repo, user}] = {std::move(permission), std::move(roleName)};
}

int64_t FakeForgeServer::addComment(const std::string& repo, int64_t issue, const std::string& user,
                                    const std::string& body) {
  std::scoped_lock lk(mu_);
  comments_.push_back({++nextId_, repo, issue, user, body});
  return nextId_;
}

std::vector<FakeStatus> FakeForgeServer::statuses(const std::string& repo,
                                                  const std::string& sha) const {
  std::scoped_lock lk(mu_);
  std::vector<FakeStatus> out;
  for (const auto& s : statuses_)
    if (s.repo == repo && s.sha == sha) out.push_back(s);
  return out;
}

std::vector<FakeComment> FakeForgeServer::comments(const std::string& repo, int64_t issue) const {
  std::scoped_lock lk(mu_);
  std::vector<FakeComment> out;
  for (const auto& c : comments_)
    if (c.repo == repo && c.issue == issue) out.push_back(c);
  return out;
}

std::vector<FakeReaction> FakeForgeServer::reactions() const {
  std::scoped_lock lk(mu_);
  return reactions_;
}

bool FakeForgeServer::deleteComment(int64_t id) {
  std::scoped_lock lk(mu_);
  return std::erase_if(comments_, [&](const FakeComment& c) { return c.id == id; }) > 0;
}

FakeForgeServer::Reply FakeForgeServer::error(int status, std::string message) {
  return {status, json{{"message", std::move(message)}}, {}};
}

json FakeForgeServer::repoJson(const std::string& fullName) const {
  auto slash = fullName.find('/');
  return {{"full_name", fullName},
          {"name", fullName.substr(slash + 1)},
          {"owner", {{"login", fullName.substr(0, slash)}}},
          {"clone_url", baseUrl() + "/" + fullName + ".git"},
          {"html_url", baseUrl() + "/" + fullName}};
}

json FakeForgeServer::commentJson(const FakeComment& c) const {
  return {{"id", c.id},
          {"html_url", baseUrl() + "/" + c.repo + "/issues/" + std::to_string(c.issue) +
                           "#issuecomment-" + std::to_string(c.id)},
          {"body", c.body},
          {"user", {{"login", c.user}}},
          {"created_at", timestamp()},
          {"updated_at", timestamp()}};
}

json FakeForgeServer::pullJson(const FakePullRequest& pr) const {
  json head = {{"ref", pr.headRef}, {"sha", pr.headSha}, {"label", pr.headRef}};
  if (!pr.headRepo)
    head["repo"] = repoJson(pr.repo);
  else if (pr.headRepo->empty())
    head["repo"] = nullptr;  // the fork was deleted
  else
    head["repo"] = repoJson(*pr.headRepo);
  return {{"number", pr.number},
          {"state", pr.state},
          {"merged", pr.merged},
          {"html_url", baseUrl() + "/" + pr.repo + "/pull/" + std::to_string(pr.number)},
          {"head", head},
          {"base",
           {{"ref", pr.baseRef},
            {"sha", pr.baseSha},
            {"label", pr.baseRef},
            {"repo", repoJson(pr.repo)}}}};
}

FakeForgeServer::Reply FakeForgeServer::createStatus(const std::string& repo,
                                                     const std::string& sha, const json& body,
                                                     bool githubLimits, const std::string& user) {
  static const std::set<std::string> kGitea = {"pending", "success", "error",
                                               "failure", "warning", "skipped"};
  static const std::set<std::string> kGitHub = {"pending", "success", "error", "failure"};
  std::string state = runner::jsonString(body, {"state"});
  if (!(githubLimits ? kGitHub : kGitea).count(state))
    return {422,
            {{"message", "Validation Failed"},
             {"errors", {{{"resource", "Status"}, {"field", "state"}, {"code", "invalid"}}}}},
            {}};
  FakeStatus s{++nextId_,
               repo,
               sha,
               state,
               body.contains("context") ? runner::jsonString(body, {"context"}) : "default",
               runner::jsonString(body, {"description"}),
               runner::jsonString(body, {"target_url"})};
  if (githubLimits && charCount(s.description) > 140)
    return {422,
            {{"message", "Validation Failed"},
             {"errors",
              {{{"resource", "Status"},
                {"code", "custom"},
                {"field", "description"},
                {"message", "description is too long (maximum is 140 characters)"}}}}},
            {}};
  statuses_.push_back(s);
  json out = {{"id", s.id},
              {"url", baseUrl() + "/repos/" + repo + "/statuses/" + sha},
              {"context", s.context},
              {"description", s.description},
              {"target_url", s.targetUrl},
              {"creator", {{"login", user}}},
              {"created_at", timestamp()},
              {"updated_at", timestamp()}};
  out[githubLimits ? "state" : "status"] = s.state;  // Gitea answers with "status"
  return {201, out, {}};
}

FakeForgeServer::Reply FakeForgeServer::createComment(const std::string& repo, int64_t issue,
                                                      const json& body, const std::string& user) {
  if (!body.contains("body") || !body["body"].is_string())
    return error(422, "Validation Failed: body is required");
  comments_.push_back({++nextId_, repo, issue, user, body["body"].get<std::string>()});
  return {201, commentJson(comments_.back()), {}};
}

FakeForgeServer::Reply FakeForgeServer::editComment(const std::string& repo, int64_t id,
                                                    const json& body) {
  if (!body.contains("body") || !body["body"].is_string())
    return error(422, "Validation Failed: body is required");
  for (auto& c : comments_)
    if (c.repo == repo && c.id == id) {
      c.body = body["body"].get<std::string>();
      return {200, commentJson(c), {}};
    }
  return error(404, "Not Found");
}

FakeForgeServer::Reply FakeForgeServer::react(const std::string& repo, int64_t commentId,
                                              const json& body, const std::string& user) {
  std::string content = runner::jsonString(body, {"content"});
  if (!kReactions.count(content)) return error(422, "Validation Failed: content is invalid");
  bool exists = false;
  for (const auto& c : comments_) exists = exists || (c.repo == repo && c.id == commentId);
  if (!exists) return error(404, "Not Found");
  json out = {{"id", ++nextId_}, {"content", content}, {"user", {{"login", user}}}};
  for (const auto& r : reactions_)
    if (r.repo == repo && r.commentId == commentId && r.content == content && r.user == user)
      return {200, out, {}};
  reactions_.push_back({repo, commentId, content, user});
  return {201, out, {}};
}

// ---------------------------------------------------------------------------------------------
// FakeGitea

FakeGitea::FakeGitea(std::string token) : token_(std::move(token)) { start(); }
FakeGitea::~FakeGitea() { stop(); }

std::string FakeGitea::apiUrl() const { return baseUrl() + "/api/v1"; }

FakeForgeServer::Reply FakeGitea::route(const RecordedRequest& req) {
  static const std::string kPrefix = "/api/v1";
  if (!runner::startsWith(req.path, kPrefix)) return error(404, "not found");
  std::string credential;
  if (!bearerOrToken(req.header("authorization"), credential) || credential != token_)
    return error(401, "token is required");
  const std::string path = req.path.substr(kPrefix.size());
  json body;
  if (!req.body.empty()) {
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) return error(400, "invalid JSON");
  }
  static const std::regex kStatuses(R"(/repos/([^/]+)/([^/]+)/statuses/([^/]+))");
  static const std::regex kIssueComments(R"(/repos/([^/]+)/([^/]+)/issues/(\d+)/comments)");
  static const std::regex kComment(R"(/repos/([^/]+)/([^/]+)/issues/comments/(\d+))");
  static const std::regex kReactions(R"(/repos/([^/]+)/([^/]+)/issues/comments/(\d+)/reactions)");
  static const std::regex kPermission(R"(/repos/([^/]+)/([^/]+)/collaborators/([^/]+)/permission)");
  static const std::regex kPull(R"(/repos/([^/]+)/([^/]+)/pulls/(\d+))");
  std::smatch m;
  auto repoOf = [&] { return m[1].str() + "/" + m[2].str(); };

  if (path == "/user" && req.method == "GET")
    return {200, {{"id", 1}, {"login", bot_}, {"is_admin", false}}, {}};
  if (std::regex_match(path, m, kStatuses)) {
    if (req.method == "POST") return createStatus(repoOf(), m[3], body, false, bot_);
    if (req.method == "GET") {
      json list = json::array();
      for (const auto& s : statuses_)
        if (s.repo == repoOf() && s.sha == m[3])
          list.push_back({{"id", s.id},
                          {"status", s.state},
                          {"context", s.context},
                          {"description", s.description},
                          {"target_url", s.targetUrl}});
      return {200, list, {}};
    }
  } else if (std::regex_match(path, m, kIssueComments)) {
    int64_t issue = std::stoll(m[3]);
    if (req.method == "POST") return createComment(repoOf(), issue, body, bot_);
    if (req.method == "GET") {
      json list = json::array();
      for (const auto& c : comments_)
        if (c.repo == repoOf() && c.issue == issue) list.push_back(commentJson(c));
      return {200, list, {}};
    }
  } else if (std::regex_match(path, m, kComment)) {
    if (req.method == "PATCH") return editComment(repoOf(), std::stoll(m[3]), body);
  } else if (std::regex_match(path, m, kReactions)) {
    if (req.method == "POST") return react(repoOf(), std::stoll(m[3]), body, bot_);
  } else if (std::regex_match(path, m, kPermission)) {
    if (req.method == "GET") {
      // Gitea: only admins (or the user asking about itself) may read permissions.
      if (!botRepoAdmin_ && m[3] != bot_)
        return error(403,
                     "Only admins can query all permissions, repo admins can query all repo "
                     "permissions, collaborators can query only their own");
      auto it = permissions_.find({repoOf(), m[3]});
      if (it == permissions_.end())
        return error(404, "user does not exist [name: " + m[3].str() + "]");
      return {200,
              {{"permission", it->second.first},
               {"role_name", it->second.second.empty() ? it->second.first : it->second.second},
               {"user", {{"login", m[3].str()}}}},
              {}};
    }
  } else if (std::regex_match(path, m, kPull)) {
    if (req.method == "GET") {
      for (const auto& pr : pulls_)
        if (pr.repo == repoOf() && pr.number == std::stoll(m[3])) return {200, pullJson(pr), {}};
      return error(404, "pull request does not exist");
    }
  }
  return error(404, "not found");
}

// ---------------------------------------------------------------------------------------------
// FakeGitHub

FakeGitHub::FakeGitHub(std::string token)
    : token_(std::move(token)), now_([] { return std::chrono::system_clock::now(); }) {
  start();
}
FakeGitHub::~FakeGitHub() { stop(); }

std::string FakeGitHub::apiUrl() const { return baseUrl(); }

void FakeGitHub::enableApp(int64_t appId, std::map<std::string, int64_t> installations) {
  std::scoped_lock lk(mu_);
  appId_ = appId;
  installations_ = std::move(installations);
}

void FakeGitHub::setClock(std::function<std::chrono::system_clock::time_point()> now) {
  std::scoped_lock lk(mu_);
  now_ = std::move(now);
}

void FakeGitHub::setTokenLifetime(std::chrono::seconds lifetime) {
  std::scoped_lock lk(mu_);
  tokenLifetime_ = lifetime;
}

void FakeGitHub::revokeInstallationTokens() {
  std::scoped_lock lk(mu_);
  for (auto& m : minted_) m.revoked = true;
}

std::vector<std::string> FakeGitHub::mintedTokens() const {
  std::scoped_lock lk(mu_);
  std::vector<std::string> out;
  for (const auto& m : minted_) out.push_back(m.token);
  return out;
}

std::map<int64_t, json> FakeGitHub::checkRuns() const {
  std::scoped_lock lk(mu_);
  return checkRuns_;
}

std::vector<json> FakeGitHub::annotations(int64_t checkRunId) const {
  std::scoped_lock lk(mu_);
  auto it = annotations_.find(checkRunId);
  return it == annotations_.end() ? std::vector<json>{} : it->second;
}

void FakeGitHub::renameRepo(const std::string& from, const std::string& to, int64_t repositoryId) {
  std::scoped_lock lk(mu_);
  renames_[from] = {to, repositoryId};
}

FakeForgeServer::Reply FakeGitHub::checkApp(const RecordedRequest& req) const {
  const Reply bad = error(401, "A JSON web token could not be decoded");
  std::string jwt;
  if (!appId_ || !bearerOrToken(req.header("authorization"), jwt)) return bad;
  auto parts = runner::split(jwt, '.');
  if (parts.size() != 3) return bad;
  auto header = runner::crypto::base64UrlDecode(parts[0]);
  auto claims = runner::crypto::base64UrlDecode(parts[1]);
  auto sig = runner::crypto::base64UrlDecode(parts[2]);
  if (!header || !claims || !sig || sig->size() < 128) return bad;
  json h = json::parse(*header, nullptr, false), c = json::parse(*claims, nullptr, false);
  if (runner::jsonString(h, {"alg"}) != "RS256") return bad;
  if (runner::jsonInt(c, {"iss"}) != *appId_) return bad;
  int64_t iat = runner::jsonInt(c, {"iat"}), exp = runner::jsonInt(c, {"exp"});
  int64_t now = std::chrono::duration_cast<std::chrono::seconds>(now_().time_since_epoch()).count();
  if (exp - iat > 600 || exp <= now || iat > now + 60)
    return error(401, "'Expiration time' claim ('exp') is too far in the future");
  return {0, {}, {}};
}

FakeForgeServer::Reply FakeGitHub::route(const RecordedRequest& req) {
  json body;
  if (!req.body.empty()) {
    body = json::parse(req.body, nullptr, false);
    if (body.is_discarded()) return error(400, "Problems parsing JSON");
  }
  if (req.header("user-agent").empty())
    return error(403,
                 "Request forbidden by administrative rules. Please make sure your request "
                 "has a User-Agent header");
  // a renamed repository: GitHub redirects to the repository's id (301 for GET, else 307)
  static const std::regex kAnyRepo(R"(/repos/([^/]+)/([^/]+)(/.*)?)");
  static const std::regex kById(R"(/repositories/(\d+)(/.*)?)");
  std::smatch r;
  if (std::regex_match(req.path, r, kAnyRepo)) {
    auto moved = renames_.find(r[1].str() + "/" + r[2].str());
    if (moved != renames_.end()) {
      std::string location = baseUrl() + "/repositories/" + std::to_string(moved->second.id) +
                             r[3].str() + (req.query.empty() ? "" : "?" + req.query);
      bool get = req.method == "GET" || req.method == "HEAD";
      return {get ? 301 : 307,
              {{"message", get ? "Moved Permanently" : "Temporary Redirect"},
               {"url", location},
               {"documentation_url",
                "https://docs.github.com/rest/guides/best-practices-for-using-the-rest-api"
                "#follow-redirects"}},
              {{"Location", location}}};
    }
  }
  if (std::regex_match(req.path, r, kById)) {
    for (const auto& [from, to] : renames_) {
      if (std::to_string(to.id) != r[1].str()) continue;
      if (r[2].str().empty()) {
        if (req.method != "GET") return error(404, "Not Found");
        json repo = repoJson(to.to);
        repo["id"] = to.id;
        return {200, repo, {}};
      }
      RecordedRequest inner = req;
      inner.path = "/repos/" + to.to + r[2].str();
      return route(inner);
    }
    return error(404, "Not Found");
  }
  static const std::regex kMint(R"(/app/installations/(\d+)/access_tokens)");
  static const std::regex kInstallation(R"(/repos/([^/]+)/([^/]+)/installation)");
  static const std::regex kRepo(R"(/repos/([^/]+)/([^/]+)(/.*))");
  std::smatch m;

  if (std::regex_match(req.path, m, kMint)) {
    if (req.method != "POST") return error(404, "Not Found");
    if (auto r = checkApp(req); r.status) return r;
    int64_t id = std::stoll(m[1]);
    bool known = false;
    for (const auto& [repo, inst] : installations_) known = known || inst == id;
    if (!known) return error(404, "Not Found");
    Minted t{"ghs_fake" + std::to_string(minted_.size() + 1) + "_" + std::to_string(id), id,
             now_() + tokenLifetime_};
    minted_.push_back(t);
    return {201,
            {{"token", t.token},
             {"expires_at", runner::formatUtc(t.expiresAt)},
             {"permissions",
              {{"checks", "write"},
               {"statuses", "write"},
               {"issues", "write"},
               {"pull_requests", "write"}}},
             {"repository_selection", "all"}},
            {}};
  }
  if (std::regex_match(req.path, m, kInstallation)) {
    if (req.method != "GET") return error(404, "Not Found");
    if (auto r = checkApp(req); r.status) return r;
    auto it = installations_.find(m[1].str() + "/" + m[2].str());
    if (it == installations_.end()) return error(404, "Not Found");
    return {200,
            {{"id", it->second},
             {"app_id", *appId_},
             {"account", {{"login", m[1].str()}}},
             {"repository_selection", "all"}},
            {}};
  }
  if (req.path == "/app" && req.method == "GET") {
    if (auto r = checkApp(req); r.status) return r;
    return {200, {{"id", *appId_}, {"slug", "switchyard"}, {"name", "Switchyard"}}, {}};
  }
  if (req.path == "/user" && req.method == "GET") {
    std::string credential;
    if (!bearerOrToken(req.header("authorization"), credential))
      return error(401, "Requires authentication");
    if (credential != token_) return error(403, "Resource not accessible by integration");
    return {200, {{"id", 1}, {"login", bot_}, {"type", "User"}}, {}};
  }
  if (!std::regex_match(req.path, m, kRepo)) return error(404, "Not Found");
  const std::string repo = m[1].str() + "/" + m[2].str();
  const std::string rest = m[3];

  // credentials: the personal token, or an installation token for this repository
  std::string credential;
  if (!bearerOrToken(req.header("authorization"), credential))
    return error(401, "Requires authentication");
  bool app = false;
  if (credential != token_) {
    const Minted* t = nullptr;
    for (const auto& x : minted_)
      if (x.token == credential) t = &x;
    auto inst = installations_.find(repo);
    if (!t || t->revoked || now_() >= t->expiresAt || inst == installations_.end() ||
        inst->second != t->installation)
      return error(401, "Bad credentials");
    app = true;
  }
  const std::string user = app ? "switchyard[bot]" : bot_;

  static const std::regex kStatuses(R"(/statuses/([^/]+))");
  static const std::regex kIssueComments(R"(/issues/(\d+)/comments)");
  static const std::regex kComment(R"(/issues/comments/(\d+))");
  static const std::regex kReactions(R"(/issues/comments/(\d+)/reactions)");
  static const std::regex kPermission(R"(/collaborators/([^/]+)/permission)");
  static const std::regex kPull(R"(/pulls/(\d+))");
  static const std::regex kCheckRuns(R"(/check-runs)");
  static const std::regex kCheckRun(R"(/check-runs/(\d+))");

  if (std::regex_match(rest, m, kStatuses) && req.method == "POST")
    return createStatus(repo, m[1], body, true, user);
  if (std::regex_match(rest, m, kIssueComments)) {
    int64_t issue = std::stoll(m[1]);
    if (req.method == "POST") return createComment(repo, issue, body, user);
    if (req.method == "GET") {
      httplib::Params params;
      httplib::detail::parse_query_text(req.query, params);
      auto param = [&](const char* k, int def) {
        auto it = params.find(k);
        return it == params.end() ? def : std::max(1, std::atoi(it->second.c_str()));
      };
      int perPage = std::min(param("per_page", 30), 100), page = param("page", 1);
      std::vector<FakeComment> all;
      for (const auto& c : comments_)
        if (c.repo == repo && c.issue == issue) all.push_back(c);
      json list = json::array();
      for (size_t i = size_t(page - 1) * perPage; i < all.size() && i < size_t(page) * perPage; ++i)
        list.push_back(commentJson(all[i]));
      int last = std::max<int>(1, int((all.size() + perPage - 1) / perPage));
      std::map<std::string, std::string> headers;
      auto pageUrl = [&](int p) {
        return "<" + baseUrl() + "/repos/" + repo + "/issues/" + std::to_string(issue) +
               "/comments?per_page=" + std::to_string(perPage) + "&page=" + std::to_string(p) + ">";
      };
      if (page < last)
        headers["Link"] = pageUrl(page + 1) + "; rel=\"next\", " + pageUrl(last) + "; rel=\"last\"";
      return {200, list, headers};
    }
  }
  if (std::regex_match(rest, m, kComment) && req.method == "PATCH")
    return editComment(repo, std::stoll(m[1]), body);
  if (std::regex_match(rest, m, kReactions) && req.method == "POST")
    return react(repo, std::stoll(m[1]), body, user);
  // GET /repos/{owner}/{repo}/commits/{ref}/status (repos/get-combined-status-for-ref): the
  // latest status per context (contexts are case-insensitive), and the combined state
  // (FORGE-FACTS 2.3: failure if any is error/failure, pending if none or any pending).
  static const std::regex kCombined(R"(/commits/([^/]+)/status)");
  if (std::regex_match(rest, m, kCombined) && req.method == "GET") {
    std::map<std::string, const FakeStatus*> latest;
    for (const auto& st : statuses_) {
      if (st.repo != repo || st.sha != m[1].str()) continue;
      std::string key = st.context;
      for (char& ch : key) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
      latest[key] = &st;  // statuses_ is oldest first
    }
    json list = json::array();
    bool failure = false, pending = latest.empty();
    for (const auto& [key, st] : latest) {
      failure |= st->state == "error" || st->state == "failure";
      pending |= st->state == "pending";
      list.push_back({{"id", st->id},
                      {"state", st->state},
                      {"context", st->context},
                      {"description", st->description},
                      {"target_url", st->targetUrl}});
    }
    return {200,
            {{"state", failure   ? "failure"
                       : pending ? "pending"
                                 : "success"},
             {"sha", m[1].str()},
             {"total_count", list.size()},
             {"statuses", list},
             {"repository", repoJson(repo)}}};
  }
  if (std::regex_match(rest, m, kPermission) && req.method == "GET") {
    auto it = permissions_.find({repo, m[1]});
    if (it == permissions_.end()) return error(404, "Not Found");
    return {200,
            {{"permission", it->second.first},
             {"role_name", it->second.second.empty() ? it->second.first : it->second.second},
             {"user", {{"login", m[1].str()}}}},
            {}};
  }
  if (std::regex_match(rest, m, kPull) && req.method == "GET") {
    for (const auto& pr : pulls_)
      if (pr.repo == repo && pr.number == std::stoll(m[1])) return {200, pullJson(pr), {}};
    return error(404, "Not Found");
  }

  const bool create = std::regex_match(rest, m, kCheckRuns) && req.method == "POST";
  const bool update = !create && std::regex_match(rest, m, kCheckRun) && req.method == "PATCH";
  if (create || update) {
    if (!app) return error(403, "You must authenticate via a GitHub App.");
    json run;
    if (update) {
      auto it = checkRuns_.find(std::stoll(m[1]));
      if (it == checkRuns_.end()) return error(404, "Not Found");
      run = it->second;
    } else {
      for (const char* k : {"name", "head_sha"})
        if (!body.contains(k) || !body[k].is_string())
          return error(422, std::string("Invalid request.\n\n\"") + k + "\" wasn't supplied.");
      run = {{"id", ++nextId_},
             {"head_sha", body["head_sha"]},
             {"status", "queued"},
             {"conclusion", nullptr},
             {"check_suite", {{"id", 5}}},
             {"app", {{"id", *appId_}}},
             {"html_url", baseUrl() + "/" + repo + "/runs/" + std::to_string(nextId_)}};
    }
    // annotations: at most 50 per request, each complete; GitHub adds them up on the run
    int64_t annotations = run.contains("output") && run["output"].contains("annotations_count")
                              ? run["output"]["annotations_count"].get<int64_t>()
                              : 0;
    std::vector<json> kept = annotations_[run["id"].get<int64_t>()];
    if (body.contains("output") && body["output"].contains("annotations")) {
      const auto& list = body["output"]["annotations"];
      if (!list.is_array() || list.size() > 50)
        return error(422, "Invalid request.\n\nOnly 50 annotations are allowed per request.");
      for (const auto& a : list) {
        for (const char* k : {"path", "start_line", "end_line", "annotation_level", "message"})
          if (!a.contains(k))
            return error(422, std::string("Invalid request.\n\n\"") + k + "\" wasn't supplied.");
        kept.push_back(a);
      }
      annotations += static_cast<int64_t>(list.size());
    }
    for (const char* k : {"name", "status", "conclusion", "details_url", "external_id",
                          "started_at", "completed_at", "output", "actions"})
      if (body.contains(k)) run[k] = body[k];
    if (run.contains("output")) {
      run["output"].erase("annotations");
      run["output"]["annotations_count"] = annotations;
    }
    if (body.contains("conclusion")) run["status"] = "completed";
    if (run["status"] == "completed" && run["conclusion"].is_null())
      return error(422, "Invalid request.\n\nNo conclusion given for a completed check run.");
    if (run.contains("actions") && run["actions"].size() > 3)
      return error(422, "Invalid request.\n\nOnly 3 actions are allowed.");
    if (run.contains("output")) {
      const auto& o = run["output"];
      if (!o.contains("title") || !o.contains("summary"))
        return error(422, "Invalid request.\n\n\"title\" and \"summary\" are required.");
      if (o["summary"].get<std::string>().size() > 65535 ||
          (o.contains("text") && o["text"].get<std::string>().size() > 65535))
        return error(422, "Invalid request.\n\nOutput is too long.");
    }
    checkRuns_[run["id"].get<int64_t>()] = run;
    annotations_[run["id"].get<int64_t>()] = std::move(kept);
    return {create ? 201 : 200, run, {}};
  }
  return error(404, "Not Found");
}

// ---------------------------------------------------------------------------------------------
// ForwardingForge

bool responseOnlyViolation(int status, const std::string& body) {
  if (status != 500) return false;
  auto j = json::parse(body, nullptr, false);
  if (runner::jsonString(j, {"title"}) != "Request/Response not valid") return false;
  const auto* v = runner::jsonFind(j, {"validation"});
  if (!v || !v->is_array() || v->empty()) return false;
  for (const auto& item : *v) {
    const auto* loc = runner::jsonFind(item, {"location"});
    if (!loc || !loc->is_array() || loc->empty() || (*loc)[0] != "response") return false;
  }
  return true;
}

ForwardingForge::ForwardingForge(std::string upstream, std::string apiPath,
                                 std::function<void(std::map<std::string, std::string>&)> rewrite)
    : upstream_(std::move(upstream)), apiPath_(std::move(apiPath)), rewrite_(std::move(rewrite)) {
  start();
}
ForwardingForge::~ForwardingForge() { stop(); }

void ForwardingForge::answerWith(
    std::function<std::optional<json>(const RecordedRequest&, int upstreamStatus)> answer) {
  std::scoped_lock lk(mu_);
  answer_ = std::move(answer);
}

FakeForgeServer::Reply ForwardingForge::route(const RecordedRequest& rec) {
  static const std::set<std::string> kHopByHop = {
      "host",        "content-length", "connection", "accept-encoding", "keep-alive",
      "remote_addr", "remote_port",    "local_addr", "local_port"};
  std::map<std::string, std::string> headers;
  for (const auto& [k, v] : rec.headers)
    if (!kHopByHop.count(k)) headers[k] = v;
  if (rewrite_) rewrite_(headers);
  httplib::Request out;
  out.method = rec.method;
  std::string path = rec.path;
  if (!apiPath_.empty() && runner::startsWith(path, apiPath_)) path.erase(0, apiPath_.size());
  out.path = path + (rec.query.empty() ? "" : "?" + rec.query);
  for (const auto& [k, v] : headers) out.headers.emplace(k, v);
  out.body = rec.body;
  httplib::Client client(upstream_);
  client.set_connection_timeout(10);
  client.set_read_timeout(60);
  auto res = client.send(out);
  if (!res) return error(502, "forwarding to " + upstream_ + " failed");
  if (responseOnlyViolation(res->status, res->body)) {
    // Prism's example for this answer fails its own schema: the request was fine, so ask for
    // an answer made from the schema instead (the record keeps the first verdict)
    Reply reply;
    reply.upstreamStatus = res->status;
    reply.upstreamBody = res->body;
    out.headers.emplace("Prefer", "dynamic=true");
    auto dynamic = client.send(out);
    if (!dynamic) return error(502, "forwarding to " + upstream_ + " failed");
    reply.status = dynamic->status;
    reply.body = dynamic->body.empty() ? json() : json::parse(dynamic->body, nullptr, false);
    if (reply.body.is_discarded()) reply.body = json{{"message", dynamic->body}};
    if (answer_)
      if (auto own = answer_(rec, dynamic->status)) {
        reply.status = 200;
        reply.body = std::move(*own);
      }
    return reply;
  }
  Reply reply;
  reply.status = res->status;
  reply.upstreamStatus = res->status;
  reply.upstreamBody = res->body;
  reply.body = res->body.empty() ? json() : json::parse(res->body, nullptr, false);
  if (reply.body.is_discarded()) reply.body = json{{"message", res->body}};
  if (answer_) {
    if (auto own = answer_(rec, res->status)) {
      reply.status = 200;
      reply.body = std::move(*own);
      return reply;
    }
  }
  for (const auto& [k, v] : res->headers) {
    std::string name = runner::toLower(k);
    if (name == "link" || name == "location" || name == "retry-after" ||
        runner::startsWith(name, "x-ratelimit-") || runner::startsWith(name, "sl-"))
      reply.headers[k] = v;
  }
  return reply;
}

}  // namespace tests
