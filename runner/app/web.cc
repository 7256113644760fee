#include "runner/app/web.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <kainjow/mustache.hpp>
#include <thread>
#include <variant>

#include "runner/app/metrics.h"
#include "runner/core/error.h"
#include "runner/core/plan.h"
#include "runner/core/text.h"
#include "runner/crypto/crypto.h"
#include "runner/git/repository.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"
#include "runner/plan/plan_format.h"
#include "runner/plan/static_planner.h"
#include "runner/scheduler/mirrors.h"
#include "runner/store/deliveries.h"
#include "runner/store/deployments.h"

namespace fs = std::filesystem;
namespace mstch = kainjow::mustache;

namespace runner::app {
namespace {

const SystemClock kClock;  // the store classes keep a reference to it

http::Response jsonReply(const scheduler::IntakeReply& r) {
  return http::Response::json(r.status, r.body);
}

WebhookDelivery deliveryOf(const http::Request& req) {
  WebhookDelivery d;
  d.headers = req.headers;
  d.body = req.body;
  return d;
}

std::string isoTime(int64_t ms) { return ms ? formatUtcMillis(ms) : ""; }

// "3 min ago", "2 h ago", "5 d ago" (the page shows the exact time on hover and in <time>).
std::string ago(int64_t ms, int64_t now) {
  const int64_t s = std::max<int64_t>(0, (now - ms) / 1000);
  if (s < 60) return std::to_string(s) + " s ago";
  if (s < 3600) return std::to_string(s / 60) + " min ago";
  if (s < 86400) return std::to_string(s / 3600) + " h ago";
  return std::to_string(s / 86400) + " d ago";
}

// Sets <p>started_at / _ago, <p>finished_at / _ago (ISO, and "3 min ago") and <p>took on
// `d`. Host rows use a prefix of their own: mustache would find the run's keys otherwise.
void setTimes(kainjow::mustache::data& d, const std::string& p, std::optional<int64_t> started,
              std::optional<int64_t> finished, int64_t now) {
  if (started) {
    d.set(p + "started_at", isoTime(*started));
    d.set(p + "started_ago", ago(*started, now));
  }
  if (finished) {
    d.set(p + "finished_at", isoTime(*finished));
    d.set(p + "finished_ago", ago(*finished, now));
  }
  if (started && finished)
    d.set(p + "took", formatDuration(std::chrono::milliseconds(*finished - *started)));
  else if (started)
    d.set(p + "took", formatDuration(std::chrono::milliseconds(now - *started)) + " so far");
}

int64_t parseId(const std::string& s) {
  if (s.empty() || s.size() > 18) throw InputError("bad run id '" + s + "'");
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') throw InputError("bad run id '" + s + "'");
    v = v * 10 + (c - '0');
  }
  return v;
}

std::string render(const std::string& name, const mstch::data& data) {
  mstch::mustache t(uiTemplate(name));
  return t.render(data);
}

http::Response page(int status, const std::string& title, const std::string& content,
                    int refreshSeconds = 0) {
  mstch::data d;
  d.set("title", title);
  d.set("content", content);
  // > 0: reload every n seconds; < 0: only without scripts (the page updates itself)
  if (refreshSeconds > 0) d.set("refresh", std::to_string(refreshSeconds));
  if (refreshSeconds < 0) d.set("noscript_refresh", std::to_string(-refreshSeconds));
  return http::Response::html(status, render("layout", d));
}

// Only local paths are followed after a login (no open redirect): a path of printable ASCII
// without backslashes whose second character is not '/' (browsers drop tabs and newlines,
// so "/\t/evil.example" would be "//evil.example").
std::string safeNext(const std::string& next) {
  if (next.size() < 2 || next[0] != '/' || next[1] == '/') return next == "/" ? next : "/";
  for (unsigned char c : next)
    if (c <= 0x20 || c >= 0x7f || c == '\\') return "/";
  return next;
}

constexpr auto kSessionIdle = std::chrono::hours(12);
constexpr auto kSessionMax = std::chrono::hours(24 * 7);
constexpr auto kFailureWindow = std::chrono::minutes(1);
constexpr size_t kFailuresPerClient = 5;
constexpr size_t kFailuresInAll = 50;

// "host[:port]" of a URL ("https://ci.example.org/x" -> "ci.example.org"), lowercased.
std::string authorityOf(const std::string& url) {
  auto p = url.find("://");
  std::string rest = p == std::string::npos ? url : url.substr(p + 3);
  return toLower(rest.substr(0, rest.find('/')));
}

std::string withoutPort(const std::string& hostPort) {
  if (!hostPort.empty() && hostPort[0] == '[') return hostPort.substr(0, hostPort.find(']') + 1);
  return hostPort.substr(0, hostPort.find(':'));
}

bool isIpLiteral(const std::string& host) {
  if (!host.empty() && host[0] == '[') return true;  // IPv6
  if (host.empty()) return false;
  for (char c : host)
    if (!(std::isdigit(static_cast<unsigned char>(c)) || c == '.')) return false;
  return true;
}

// Failures first, then what is in flight, then the rest (the run page's order).
int stateRank(HostState s) {
  switch (s) {
    case HostState::Failed:
    case HostState::RolledBack:
    case HostState::Unreachable:
    case HostState::Refused:
    case HostState::Interrupted:
      return 0;
    case HostState::Running:
    case HostState::Waiting:
      return 1;
    case HostState::Pending:
      return 2;
    default:
      return 3;
  }
}

std::vector<RunHostView> orderedHosts(std::vector<RunHostView> hosts) {
  std::stable_sort(hosts.begin(), hosts.end(), [](const auto& a, const auto& b) {
    return stateRank(a.state) < stateRank(b.state);
  });
  return hosts;
}

// The counts per host state, most urgent first: [{"state": "failed", "count": 2}, …].
std::vector<std::pair<std::string, int>> stateCounts(const std::vector<RunHostView>& hosts) {
  std::map<std::string, int> n;
  std::map<std::string, int> rank;
  for (const auto& h : hosts) {
    ++n[toString(h.state)];
    rank[toString(h.state)] = stateRank(h.state);
  }
  std::vector<std::pair<std::string, int>> out(n.begin(), n.end());
  std::stable_sort(out.begin(), out.end(),
                   [&](const auto& a, const auto& b) { return rank[a.first] < rank[b.first]; });
  return out;
}

// What the run page's script applies: the run's state and every host's row.
nlohmann::json runSnapshot(const store::RunRecord& r, const std::vector<RunHostView>& hosts) {
  nlohmann::json hs = nlohmann::json::array();
  for (const auto& h : orderedHosts(hosts))
    hs.push_back({{"name", h.host},
                  {"stage", toString(h.stage)},
                  {"state", toString(h.state)},
                  {"summary", h.summary},
                  {"out_path", h.outPath.value_or("")}});
  nlohmann::json counts = nlohmann::json::array();
  for (const auto& [state, n] : stateCounts(hosts))
    counts.push_back({{"state", state}, {"count", n}});
  return {{"id", r.view.id},
          {"state", toString(r.view.state)},
          {"final", isFinal(r.view.state)},
          {"error", r.view.error},
          {"took", r.view.startedAt
                       ? formatDuration(std::chrono::milliseconds(
                             r.view.finishedAt.value_or(kClock.nowMillis()) - *r.view.startedAt)) +
                             (r.view.finishedAt ? "" : " so far")
                       : ""},
          {"counts", counts},
          {"hosts", hs}};
}

}  // namespace

bool validLogName(std::string_view name) { return !hostNameProblem(name).has_value(); }

std::string repoLabel(const RunView& run) {
  return run.forge.empty() ? run.repo : run.forge + ":" + run.repo;
}

nlohmann::json runJson(const store::RunRecord& r, const std::vector<RunHostView>& hosts) {
  const RunView& v = r.view;
  nlohmann::json hs = nlohmann::json::array();
  for (const auto& h : hosts)
    hs.push_back({{"name", h.host}, {"stage", toString(h.stage)}, {"state", toString(h.state)}});
  return {{"id", v.id},
          {"repo", v.repo},
          {"forge", v.forge},
          {"sha", v.sha},
          {"ref", v.ref},
          {"kind", toString(v.kind)},
          {"trigger", toString(v.trigger)},
          {"state", toString(v.state)},
          {"hosts", hs},
          {"created_at", isoTime(v.createdAt)},
          {"url", v.url}};
}

nlohmann::json runDetailJson(const store::RunRecord& r, const std::vector<RunHostView>& hosts) {
  nlohmann::json j = runJson(r, hosts);
  const RunView& v = r.view;
  j["forge"] = v.forge;
  j["base_sha"] = v.baseSha;
  j["pr_number"] = v.prNumber;
  j["from_fork"] = v.fromFork;
  j["hosts_filter"] = v.hostsFilter;
  j["stage_filter"] = v.stageFilter ? toString(*v.stageFilter) : "";
  j["parent_run"] = v.parentRunId ? nlohmann::json(*v.parentRunId) : nlohmann::json(nullptr);
  j["superseded_by"] = v.supersededBy ? nlohmann::json(*v.supersededBy) : nlohmann::json(nullptr);
  j["error"] = v.error;
  j["attempts"] = r.attempts;
  j["started_at"] = isoTime(v.startedAt.value_or(0));
  j["finished_at"] = isoTime(v.finishedAt.value_or(0));
  nlohmann::json hs = nlohmann::json::array();
  for (const auto& h : hosts) {
    nlohmann::json hj = {{"name", h.host},
                         {"stage", toString(h.stage)},
                         {"state", toString(h.state)},
                         {"summary", h.summary}};
    if (h.drvPath) hj["drv_path"] = *h.drvPath;
    if (h.outPath) hj["out_path"] = *h.outPath;
    if (h.logPath) hj["log_url"] = "/runs/" + std::to_string(v.id) + "/logs/" + h.host;
    if (h.startedAt) hj["started_at"] = isoTime(*h.startedAt);
    if (h.finishedAt) hj["finished_at"] = isoTime(*h.finishedAt);
    nlohmann::json steps = nlohmann::json::array();
    for (const auto& st : h.steps)
      steps.push_back({{"name", st.name},
                       {"started_at", isoTime(st.startedAt)},
                       {"finished_at", st.finishedAt ? nlohmann::json(isoTime(*st.finishedAt))
                                                     : nlohmann::json(nullptr)},
                       {"ms", st.finishedAt ? nlohmann::json(*st.finishedAt - st.startedAt)
                                            : nlohmann::json(nullptr)}});
    hj["steps"] = std::move(steps);
    hs.push_back(std::move(hj));
  }
  j["hosts"] = hs;
  j["plan"] = nullptr;
  if (r.planJson) {
    auto p = nlohmann::json::parse(*r.planJson, nullptr, false);
    if (!p.is_discarded()) j["plan"] = p;
  }
  return j;
}

std::optional<Web::Session> Web::session(const http::Request& req) {
  std::string id = req.cookie("sy_session");
  if (id.empty()) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  MutexLock lk(mu_);
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.lastSeen > kSessionIdle || now - it->second.created > kSessionMax) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.lastSeen = now;
  return it->second;
}

bool Web::mayRead(const http::Request& req) {
  if (!ctx_.config.privateUi) return true;
  if (!ctx_.uiToken) return false;
  if (session(req)) return true;
  auto auth = req.headers.get("Authorization");
  return auth && startsWith(*auth, "Bearer ") && constantTimeEquals(auth->substr(7), *ctx_.uiToken);
}

bool Web::tooManyFailures(const std::string& client) {
  const auto now = std::chrono::steady_clock::now();
  MutexLock lk(mu_);
  auto fresh = [&](std::vector<std::chrono::steady_clock::time_point>& v) {
    v.erase(std::remove_if(v.begin(), v.end(), [&](auto t) { return now - t > kFailureWindow; }),
            v.end());
    return v.size();
  };
  if (fresh(allFailures_) >= kFailuresInAll) return true;
  auto it = failures_.find(client);
  return it != failures_.end() && fresh(it->second) >= kFailuresPerClient;
}

void Web::recordFailure(const std::string& client) {
  const auto now = std::chrono::steady_clock::now();
  MutexLock lk(mu_);
  if (failures_.size() > 10000) failures_.clear();  // bounded; the global limit still holds
  failures_[client].push_back(now);
  allFailures_.push_back(now);
}

bool Web::hostAllowed(const http::Request& req) const {
  auto host = req.headers.get("Host");
  if (!host) return true;  // HTTP/1.0 clients: nothing to rebind
  const std::string h = toLower(withoutPort(*host));
  if (h.empty() || isIpLiteral(h) || h == "localhost") return true;
  return h == withoutPort(authorityOf(ctx_.config.effectivePublicUrl()));
}

void Web::install(http::Server& server) {
  auto& intake = ctx_.intake;
  // Signed deliveries and the health check answer whatever the Host: a forge's delivery is
  // authenticated by its signature, not by the name it used.
  server.route("POST", "/hooks/git", [&intake](const http::Request& req) {
    return jsonReply(intake.hookDelivery(deliveryOf(req)));
  });
  server.route("POST", "/hooks/:forge", [&intake](const http::Request& req) {
    return jsonReply(intake.forgeDelivery(req.param("forge"), deliveryOf(req)));
  });
  server.route("GET", "/healthz", [this](const http::Request&) { return health(); });
  // Everything else is for browsers and tools: the Host must be this runner's name (no DNS
  // rebinding), and reading may need a login (privateUi).
  auto site = [this](bool read, auto handler) {
    return [this, read, handler](const http::Request& req) -> http::Response {
      if (!hostAllowed(req))
        return http::Response::text(421, "this runner answers to " +
                                             authorityOf(ctx_.config.effectivePublicUrl()) +
                                             " (public_url), not to that Host\n");
      if (read && !mayRead(req)) {
        if (startsWith(req.path, "/api/") || req.path == "/metrics")
          return http::Response::text(401, "log in, or send Authorization: Bearer <ui token>\n");
        return http::Response::redirect("/login?next=" + safeNext(req.path));
      }
      http::Response res = handler(req);
      if (startsWith(res.contentType, "text/html")) showLogin(req, res.body);
      return res;
    };
  };
  server.route("GET", "/metrics", site(true, [this](const http::Request&) { return metrics(); }));
  server.route("GET", "/api/runs", site(true, [this](const http::Request& req) {
                 int limit = 50;
                 if (auto l = req.param("limit"); !l.empty()) limit = static_cast<int>(parseId(l));
                 store::Runs runs(ctx_.db, kClock, ctx_.config.effectivePublicUrl());
                 nlohmann::json out = nlohmann::json::array();
                 for (const auto& r : runs.list(std::clamp(limit, 1, 1000)))
                   out.push_back(runJson(r, runs.hosts(r.view.id)));
                 return http::Response::json(200, out.dump(2));
               }));
  server.route("GET", "/api/runs/:id", site(true, [this](const http::Request& req) {
                 store::Runs runs(ctx_.db, kClock, ctx_.config.effectivePublicUrl());
                 auto r = runs.get(parseId(req.param("id")));
                 if (!r) return http::Response::json(404, R"({"error":"no such run"})");
                 return http::Response::json(200,
                                             runDetailJson(*r, runs.hosts(r->view.id)).dump(2));
               }));
  server.route("GET", "/fleet",
               site(true, [this](const http::Request& req) { return fleetPage(req); }));
  server.route("GET", "/api/fleet", site(true, [this](const http::Request&) {
                 return http::Response::json(200, fleet::fleetJson(fleetRows()).dump(2));
               }));
  server.route("GET", "/hosts/:host",
               site(true, [this](const http::Request& req) { return hostPage(req); }));
  auto runs = [this](const http::Request& req) { return runsPage(req); };
  server.route("GET", "/", site(true, runs));
  server.route("GET", "/runs", site(true, runs));
  server.route("GET", "/runs/:id",
               site(true, [this](const http::Request& req) { return runPage(req); }));
  server.route("GET", "/runs/:id/events",
               site(true, [this](const http::Request& req) { return runEvents(req); }));
  server.route("GET", "/runs/:id/logs/:host",
               site(true, [this](const http::Request& req) { return logStream(req); }));
  server.route("GET", "/runs/:id/hosts/:host/log",
               site(true, [this](const http::Request& req) { return logPage(req); }));
  server.route("POST", "/runs/:id/rerun",
               site(false, [this](const http::Request& req) { return rerun(req); }));
  server.route("POST", "/runs/:id/approve",
               site(false, [this](const http::Request& req) { return approve(req); }));
  server.route("POST", "/runs/:id/cancel",
               site(false, [this](const http::Request& req) { return cancel(req); }));
  server.route("POST", "/hosts/:host/rollback",
               site(false, [this](const http::Request& req) { return rollback(req); }));
  server.route("GET", "/deliveries/:id",
               site(true, [this](const http::Request& req) { return deliveryPage(req); }));
  server.route("GET", "/login",
               site(false, [this](const http::Request& req) { return loginForm(req); }));
  server.route("POST", "/login",
               site(false, [this](const http::Request& req) { return login(req); }));
  server.route("POST", "/logout",
               site(false, [this](const http::Request& req) { return logout(req); }));
}

namespace {

// A URL query value: everything but unreserved characters percent-encoded.
std::string queryEscape(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// A run state's mark: the state is never told by colour alone.
const char* stateIcon(std::string_view state) {
  if (state == "succeeded") return "\u2713";                                               // ✓
  if (state == "failed" || state == "rolled-back" || state == "refused") return "\u2717";  // ✗
  if (state == "unreachable") return "\u26A0";                                             // ⚠
  if (state == "running") return "\u25B6";                                                 // ▶
  if (state == "queued" || state == "pending" || state == "waiting") return "\u23F3";      // ⏳
  return "\u2013";                                                                         // –
}

}  // namespace

http::Response Web::runsPage(const http::Request& req) {
  store::Runs runs(ctx_.db, kClock, ctx_.config.effectivePublicUrl());
  // Filters (repo, branch, state, host) and pages of kPageSize, newest first.
  constexpr int kPageSize = 50;
  const std::string repo = req.param("repo"), branch = req.param("branch"),
                    state = req.param("state"), host = req.param("host");
  int64_t pageNo = 1;
  if (auto p = req.param("page"); !p.empty()) pageNo = std::clamp<int64_t>(parseId(p), 1, 100000);
  if (!state.empty()) runStateFrom(state);  // InputError (400) for a state that does not exist
  if (!host.empty() && !validLogName(host)) throw InputError("bad host name '" + host + "'");
  const std::string ref =
      branch.empty() || startsWith(branch, "refs/") ? branch : "refs/heads/" + branch;
  auto ids = ctx_.db.query(
      "SELECT id FROM runs WHERE (?1 = '' OR repo = ?1) AND (?2 = '' OR ref = ?2) AND "
      "(?3 = '' OR state = ?3) AND (?4 = '' OR EXISTS (SELECT 1 FROM run_hosts "
      "WHERE run_hosts.run = runs.id AND run_hosts.host = ?4)) ORDER BY id DESC LIMIT ?5 OFFSET ?6",
      {repo, ref, state, host, int64_t{kPageSize + 1}, (pageNo - 1) * kPageSize});
  const bool more = ids.size() > static_cast<size_t>(kPageSize);
  std::vector<store::RunRecord> shown;
  for (size_t i = 0; i < ids.size() && i < static_cast<size_t>(kPageSize); ++i)
    if (auto r = runs.get(ids[i].integer(0))) shown.push_back(std::move(*r));
  mstch::data list{mstch::data::type::list};
  bool active = false;
  const int64_t now = kClock.nowMillis();
  for (const auto& r : shown) {
    const RunView& v = r.view;
    active |= !isFinal(v.state);
    mstch::data row;
    row.set("id", std::to_string(v.id));
    row.set("state", toString(v.state));
    row.set("kind", toString(v.kind));
    row.set("trigger", toString(v.trigger));
    row.set("repo", repoLabel(v));
    row.set("ref", v.ref);
    row.set("short_sha", shortSha(v.sha));
    row.set("created_at", isoTime(v.createdAt));
    row.set("created_ago", ago(v.createdAt, now));
    row.set("icon", stateIcon(toString(v.state)));
    mstch::data hosts{mstch::data::type::list};
    for (const auto& h : runs.hosts(v.id)) {
      mstch::data hd;
      hd.set("icon", stateIcon(toString(h.state)));
      hd.set("name", h.host);
      hd.set("stage", toString(h.stage));
      hd.set("state", toString(h.state));
      hosts.push_back(hd);
    }
    row.set("hosts", hosts);
    list.push_back(row);
  }
  mstch::data d;
  d.set("runs", list);
  d.set("repo", repo);
  d.set("branch", branch);
  d.set("host", host);
  mstch::data states{mstch::data::type::list};
  for (auto st : {RunState::Queued, RunState::Running, RunState::Succeeded, RunState::Failed,
                  RunState::Cancelled, RunState::Superseded, RunState::Interrupted}) {
    mstch::data o;
    o.set("value", toString(st));
    o.set("selected", state == toString(st));
    states.push_back(o);
  }
  d.set("states", states);
  d.set("filtered", !repo.empty() || !branch.empty() || !state.empty() || !host.empty());
  const std::string query = "repo=" + queryEscape(repo) + "&branch=" + queryEscape(branch) +
                            "&state=" + queryEscape(state) + "&host=" + queryEscape(host);
  d.set("page", std::to_string(pageNo));
  if (pageNo > 1) d.set("newer", "/?" + query + "&page=" + std::to_string(pageNo - 1));
  if (more) d.set("older", "/?" + query + "&page=" + std::to_string(pageNo + 1));
  return page(200, "runs", render("runs", d), active && pageNo == 1 ? 5 : 0);
}

http::Response Web::runPage(const http::Request& req) {
  store::Runs runs(ctx_.db, kClock, ctx_.config.effectivePublicUrl());
  int64_t id = parseId(req.param("id"));
  auto r = runs.get(id);
  if (!r) return page(404, "no such run", "<p>There is no run " + std::to_string(id) + ".</p>");
  const RunView& v = r->view;
  auto sess = session(req);
  bool canRerun = ctx_.uiToken && sess;
  mstch::data d;
  d.set("id", std::to_string(v.id));
  d.set("state", toString(v.state));
  d.set("final", isFinal(v.state));
  d.set("kind", toString(v.kind));
  d.set("trigger", toString(v.trigger));
  d.set("repo", repoLabel(v));
  d.set("repo_name", v.repo);  // the host links name the repository as (forge, name)
  d.set("forge", v.forge);
  d.set("ref", v.ref);
  d.set("sha", v.sha);
  if (!v.baseSha.empty()) d.set("base_sha", v.baseSha);
  if (v.prNumber) d.set("pr_number", std::to_string(v.prNumber));
  d.set("from_fork", v.fromFork);
  d.set("created_at", isoTime(v.createdAt));
  if (v.parentRunId) d.set("parent_run", std::to_string(*v.parentRunId));
  if (!v.hostsFilter.empty()) d.set("hosts_filter", join(v.hostsFilter, ", "));
  if (v.stageFilter) d.set("stage_filter", toString(*v.stageFilter));
  if (v.supersededBy) d.set("superseded_by", std::to_string(*v.supersededBy));
  if (!v.error.empty()) d.set("error", v.error);
  const int64_t now = kClock.nowMillis();
  d.set("created_ago", ago(v.createdAt, now));
  setTimes(d, "", v.startedAt, v.finishedAt, now);
  // Who or what started it: the delivery's sender (a pusher, a commenter, a web login).
  if (r->delivery) {
    store::Deliveries deliveries(ctx_.db, kClock);
    if (auto dl = deliveries.get(*r->delivery)) {
      auto ej = nlohmann::json::parse(dl->eventJson, nullptr, false);
      if (ej.is_object()) {
        if (auto it = ej.find("sender"); it != ej.end() && it->is_string() && !it->empty())
          d.set("actor", it->get<std::string>());
        if (dl->eventName == "rollback" && !v.hostsFilter.empty())
          d.set("rollback_of", v.hostsFilter.front());
      }
    }
  }
  // The commit as git has it (the configured repository or its mirror).
  if (const RepoConfig* rc = ctx_.config.findRepo(v.forge, v.repo)) {
    try {
      fs::path gitDir = rc->path ? *rc->path : scheduler::mirrorPath(ctx_.config.stateDir, *rc);
      auto c = git::Repository::open(gitDir)->commit(v.sha);
      d.set("commit_summary", c.summary);
      if (!c.author.empty()) d.set("commit_author", c.author);
    } catch (const std::exception& e) {
      ctx_.log.debug("run page " + std::to_string(v.id) + ": commit " + shortSha(v.sha) +
                     " not readable: " + describe(e));
    }
  }
  d.set("can_rerun", canRerun);
  d.set("can_cancel", canRerun && !isFinal(v.state));
  d.set("login_to_rerun", ctx_.uiToken.has_value() && !sess);
  d.set("rerun_disabled", !ctx_.uiToken.has_value());
  if (canRerun) d.set("csrf", sess->csrf);
  fs::path logDir = ctx_.config.stateDir / "logs" / std::to_string(v.id);
  mstch::data hosts{mstch::data::type::list};
  bool waiting = false;
  auto runHosts = runs.hosts(v.id);
  mstch::data counts{mstch::data::type::list};
  for (const auto& [state, n] : stateCounts(runHosts)) {
    mstch::data c;
    c.set("state", state);
    c.set("count", std::to_string(n));
    counts.push_back(c);
  }
  d.set("counts", counts);
  for (const auto& h : orderedHosts(runHosts)) {
    waiting |= h.state == HostState::Waiting;
    mstch::data hd;
    hd.set("run_id", std::to_string(v.id));
    hd.set("name", h.host);
    hd.set("stage", toString(h.stage));
    hd.set("state", toString(h.state));
    hd.set("summary", h.summary);
    if (h.outPath) hd.set("out_path", *h.outPath);
    if (h.state == HostState::RolledBack) {
      // What the machine runs now is what ran before this deploy (its watchdog switched
      // back), not the new system the row's out_path names.
      if (auto rec = store::Deployments(ctx_.db).forRun(v.id, h.host);
          rec && rec->result == "rolled-back" && rec->previousPath) {
        hd.set("runs_now", *rec->previousPath);
        if (rec->previousGeneration)
          hd.set("runs_now_generation", std::to_string(*rec->previousGeneration));
      }
    }
    setTimes(hd, "host_", h.startedAt, h.finishedAt, now);
    mstch::data steps{mstch::data::type::list};
    for (const auto& st : h.steps) {
      mstch::data sd;
      sd.set("step", st.name);
      sd.set("step_started_at", isoTime(st.startedAt));
      if (st.finishedAt) {
        sd.set("step_finished_at", isoTime(*st.finishedAt));
        sd.set("step_took",
               formatDuration(std::chrono::milliseconds(*st.finishedAt - st.startedAt)));
      }
      steps.push_back(sd);
    }
    hd.set("steps", steps);
    hd.set("has_steps", !h.steps.empty());
    std::error_code ec;
    hd.set("has_log",
           validLogName(h.host) && fs::exists(os::pathUnder(logDir, h.host, ".log"), ec));
    hd.set("can_rerun", canRerun);
    if (canRerun) hd.set("csrf", sess->csrf);
    hosts.push_back(hd);
  }
  d.set("hosts", hosts);
  d.set("can_approve", canRerun && v.fromFork && waiting);
  if (r->planJson) {
    auto pj = nlohmann::json::parse(*r->planJson, nullptr, false);
    if (!pj.is_discarded()) d.set("plan", plan::formatPlanTable(pj.get<Plan>()));
  }
  // Live without reloading: the page's script follows /runs/<id>/events; the refresh is for
  // browsers without scripts only (<noscript>), so focus and screen readers are left alone.
  return page(200, "run #" + std::to_string(v.id), render("run", d), isFinal(v.state) ? 0 : -5);
}

http::Response Web::logStream(const http::Request& req) {
  int64_t id = parseId(req.param("id"));
  std::string name = req.param("host");
  if (!validLogName(name) && name != kPlanLogName)
    return http::Response::text(400, "bad host name\n");
  const fs::path dir = ctx_.config.stateDir / "logs" / std::to_string(id);
  fs::path file = os::pathUnder(dir, name, ".log");
  std::error_code ec;
  if (name == kPlanLogName && !fs::exists(file, ec) && fs::exists(dir / "plan.log", ec))
    file = dir / "plan.log";  // a run logged before the planner's log was named @plan
  store::Runs probe(ctx_.db, kClock, "");
  if (!probe.get(id)) return http::Response::text(404, "no such run\n");
  http::Response res;
  res.contentType = "text/plain; charset=utf-8";
  res.headers.emplace_back("X-Content-Type-Options", "nosniff");
  res.headers.emplace_back("Cache-Control", "no-store");
  if (req.param("download") == "1")  // the name is a host name or @plan: safe in the header
    res.headers.emplace_back("Content-Disposition", "attachment; filename=\"run-" +
                                                        std::to_string(id) + "-" + name + ".log\"");
  const Config& config = ctx_.config;
  store::Database& db = ctx_.db;
  auto followers = followers_;
  res.stream = [file, id, &config, &db, followers](http::StreamSink& out) {
    // Sends what the file has, then what it grows by, while the run is not final (bounded:
    // an hour; and only kMaxFollowers streams follow at once). Reads the run state through
    // the web connection.
    bool follow = ++*followers <= kMaxFollowers;
    struct Release {
      std::atomic<int>& n;
      ~Release() { --n; }
    } release{*followers};
    store::Runs runs(db, kClock, config.effectivePublicUrl());
    std::ifstream in;
    std::streamoff sent = 0;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
    bool announced = false;
    while (!out.stopping() && std::chrono::steady_clock::now() < deadline) {
      auto run = runs.get(id);
      bool final = !run || isFinal(run->view.state);
      if (!in.is_open()) in.open(file, std::ios::binary);
      if (in.is_open()) {
        in.clear();
        in.seekg(sent);
        std::string chunk(size_t{64} * 1024, '\0');
        bool any = false;
        while (in.read(chunk.data(), static_cast<std::streamsize>(chunk.size())) ||
               in.gcount() > 0) {
          std::streamsize n = in.gcount();
          if (!out.write(std::string_view(chunk.data(), static_cast<size_t>(n)))) return;
          sent += n;
          any = true;
        }
        if (any) continue;
      } else if (!announced) {
        if (!out.write("(no log yet)\n")) return;
        announced = true;
      }
      if (final) return;
      if (!follow) {
        out.write(
            "\n(the log is still growing; too many people are following logs right "
            "now: reload to see more)\n");
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  };
  return res;
}

http::Response Web::logPage(const http::Request& req) {
  const int64_t id = parseId(req.param("id"));
  const std::string name = req.param("host");
  if (!validLogName(name)) return http::Response::text(400, "bad host name\n");
  store::Runs runs(ctx_.db, kClock, "");
  if (!runs.get(id))
    return page(404, "no such run", "<p>There is no run " + std::to_string(id) + ".</p>");
  auto host = runs.host(id, name);
  const fs::path file =
      os::pathUnder(ctx_.config.stateDir / "logs" / std::to_string(id), name, ".log");
  // What a browser page can hold: the last 2 MiB (the raw log has everything).
  constexpr std::uintmax_t kShown = 2u << 20;
  std::string text;
  std::uintmax_t base = 0;  // where `text` starts in the file
  {
    std::ifstream in(file, std::ios::binary);
    if (in) {
      std::error_code ec;
      const auto size = fs::file_size(file, ec);
      if (!ec && size > kShown) {
        base = size - kShown;
        in.seekg(static_cast<std::streamoff>(base));
      }
      text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (base > 0) {  // from the first whole line
        const size_t skip = std::min(text.size(), text.find('\n') + 1);
        text.erase(0, skip);
        base += skip;
      }
    }
  }
  // When each line was written (os::LogFile's <log>.times: "<offset> <unix ms>" per line).
  std::vector<std::pair<std::uintmax_t, int64_t>> times;
  {
    std::ifstream in(os::LogFile::timesPathOf(file));
    std::uintmax_t off = 0;
    int64_t ms = 0;
    while (in >> off >> ms) times.emplace_back(off, ms);
  }
  struct Line {
    std::string time, text;
  };
  auto timeAt = [&, next = size_t{0}](std::uintmax_t offset) mutable -> std::string {
    while (next < times.size() && times[next].first <= offset) ++next;
    if (next == 0 || times[next - 1].first != offset) return "";
    const std::string iso = formatUtcMillis(times[next - 1].second);  // …THH:MM:SSZ
    return iso.size() >= 19 ? iso.substr(11, 8) : iso;
  };
  // Sections: the stages write "# …" headings (build, deploy: lock, copy, activate, confirm…).
  struct Section {
    std::string title, time;
    std::vector<Line> lines;
  };
  std::vector<Section> sections{{"start", "", {}}};
  std::vector<Line> all;
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    Line l{timeAt(base + at), text.substr(at, end - at)};
    if (startsWith(l.text, "# "))
      sections.push_back({l.text.substr(2), l.time, {}});
    else
      sections.back().lines.push_back(l);
    all.push_back(std::move(l));
    at = end + 1;
  }
  if (sections.front().lines.empty()) sections.erase(sections.begin());
  const bool failed =
      host && (host->state == HostState::Failed || host->state == HostState::RolledBack ||
               host->state == HostState::Unreachable || host->state == HostState::Refused);
  auto lineList = [](auto first, auto last) {
    mstch::data list{mstch::data::type::list};
    for (auto it = first; it != last; ++it) {
      mstch::data l;
      l.set("t", it->time);
      l.set("text", it->text);
      list.push_back(l);
    }
    return list;
  };
  mstch::data d;
  d.set("id", std::to_string(id));
  d.set("host", name);
  d.set("cut", base > 0);
  d.set("empty", all.empty());
  if (host) {
    d.set("state", toString(host->state));
    d.set("stage", toString(host->stage));
    if (!host->summary.empty()) d.set("summary", host->summary);
  }
  if (failed && !all.empty()) {
    // The end of the log first: where it failed.
    const size_t from = all.size() > 40 ? all.size() - 40 : 0;
    d.set("has_tail", true);
    d.set("failed_tail", lineList(all.begin() + static_cast<std::ptrdiff_t>(from), all.end()));
  }
  mstch::data list{mstch::data::type::list};
  for (size_t i = 0; i < sections.size(); ++i) {
    mstch::data sd;
    sd.set("title", sections[i].title);
    if (!sections[i].time.empty()) sd.set("time", sections[i].time);
    sd.set("n", std::to_string(sections[i].lines.size()));
    sd.set("lines", lineList(sections[i].lines.begin(), sections[i].lines.end()));
    sd.set("has_lines", !sections[i].lines.empty());
    sd.set("anchor", "sy:section-" + std::to_string(i + 1));
    // the last section is open (where a failure shows); the rest fold
    sd.set("open", i + 1 == sections.size());
    list.push_back(sd);
  }
  d.set("sections", list);
  return page(200, name + " · run #" + std::to_string(id), render("log", d));
}

http::Response Web::runEvents(const http::Request& req) {
  int64_t id = parseId(req.param("id"));
  store::Runs probe(ctx_.db, kClock, "");
  if (!probe.get(id)) return http::Response::text(404, "no such run\n");
  http::Response res;
  res.contentType = "text/event-stream; charset=utf-8";
  res.headers.emplace_back("Cache-Control", "no-store");
  res.headers.emplace_back("X-Accel-Buffering", "no");
  store::Database& db = ctx_.db;
  auto followers = followers_;
  res.stream = [id, &db, followers](http::StreamSink& out) {
    // Shares the log streams' cap: each holds a thread. Beyond it: one snapshot, and the
    // browser's EventSource reconnects a few seconds later.
    bool follow = ++*followers <= kMaxFollowers;
    struct Release {
      std::atomic<int>& n;
      ~Release() { --n; }
    } release{*followers};
    store::Runs runs(db, kClock, "");
    std::string last;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::hours(1);
    while (!out.stopping() && std::chrono::steady_clock::now() < deadline) {
      auto run = runs.get(id);
      if (!run) return;
      std::string snap = runSnapshot(*run, runs.hosts(id)).dump();
      if (snap != last) {
        if (!out.write("event: run\ndata: " + snap + "\n\n")) return;
        last = snap;
      } else if (!out.write(": keep-alive\n\n")) {
        return;
      }
      if (isFinal(run->view.state) || !follow) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(400));
    }
  };
  return res;
}

http::Response Web::loginForm(const http::Request& req, const std::string& problem) {
  if (!ctx_.uiToken)
    return page(403, "log in", "<p>Logging in is off: no <code>ui_token_file</code> is set.</p>");
  mstch::data d;
  d.set("next", safeNext(req.param("next")));
  if (!problem.empty()) d.set("problem", problem);
  return page(problem.empty() ? 200 : 403, "log in", render("login", d));
}

http::Response Web::login(const http::Request& req) {
  if (!ctx_.uiToken) return loginForm(req);
  if (tooManyFailures(req.remoteAddr)) {
    auto res = loginForm(req, "Too many wrong tokens lately; try again in a minute.");
    res.status = 429;
    res.headers.emplace_back("Retry-After", "60");
    return res;
  }
  if (!constantTimeEquals(req.param("token"), *ctx_.uiToken)) {
    recordFailure(req.remoteAddr);
    ctx_.log.warn("refused a web login from " + req.remoteAddr);
    return loginForm(req, "That token is not right.");
  }
  std::string id = crypto::randomToken(32);
  const auto now = std::chrono::steady_clock::now();
  {
    MutexLock lk(mu_);
    if (sessions_.size() > 10000) sessions_.clear();  // bounded; everyone logs in again
    sessions_[id] = Session{crypto::randomToken(32), now, now};
  }
  auto res = http::Response::redirect(safeNext(req.param("next")));
  const bool https = startsWith(ctx_.config.effectivePublicUrl(), "https://");
  res.headers.emplace_back(
      "Set-Cookie", "sy_session=" + id + "; Path=/; HttpOnly; SameSite=Strict" +
                        (https ? "; Secure" : "") +
                        "; Max-Age=" + std::to_string(std::chrono::seconds(kSessionMax).count()));
  return res;
}

http::Response Web::logout(const http::Request& req) {
  auto sess = session(req);
  if (sess && constantTimeEquals(req.param("csrf"), sess->csrf)) {
    MutexLock lk(mu_);
    sessions_.erase(req.cookie("sy_session"));
  }
  auto res = http::Response::redirect("/");
  res.headers.emplace_back("Set-Cookie", "sy_session=; Path=/; Max-Age=0");
  return res;
}

void Web::showLogin(const http::Request& req, std::string& body) {
  const std::string slot = "<!--sy:login-->";
  const auto at = body.find(slot);
  if (at == std::string::npos) return;
  std::string bar;
  if (!ctx_.uiToken) {
    bar = "";
  } else if (auto sess = session(req)) {
    bar =
        "<form class=\"inline login\" method=\"post\" action=\"/logout\"><input "
        "type=\"hidden\" name=\"csrf\" value=\"" +
        htmlEscape(sess->csrf) +
        "\"><span class=\"note\">logged in</span> <button type=\"submit\">Log "
        "out</button></form>";
  } else if (req.path != "/login") {
    bar =
        "<a class=\"login\" href=\"/login?next=" + htmlEscape(safeNext(req.path)) + "\">Log in</a>";
  }
  body.replace(at, slot.size(), bar);
}

std::optional<http::Response> Web::sessionRefusal(const http::Request& req,
                                                  const std::string& back) {
  if (!ctx_.uiToken) return http::Response::text(403, "re-runs from the web are off\n");
  auto sess = session(req);
  if (!sess) return http::Response::redirect("/login?next=" + safeNext(back));
  if (req.param("csrf").empty() || !constantTimeEquals(req.param("csrf"), sess->csrf))
    return http::Response::text(403, "missing or wrong CSRF token; reload the page\n");
  return std::nullopt;
}

std::optional<http::Response> Web::formRefusal(const http::Request& req, int64_t id) {
  if (auto refused = sessionRefusal(req, "/runs/" + std::to_string(id))) return refused;
  store::Runs runs(ctx_.db, kClock, "");
  if (!runs.get(id)) return http::Response::text(404, "no such run\n");
  return std::nullopt;
}

namespace {

// Who pressed a button: the UI has one shared token, so the login's address says who.
std::string webActor(const http::Request& req) { return "web login from " + req.remoteAddr; }

}  // namespace

int64_t Web::submitUi(const http::Request& req, const std::string& command, int64_t runId,
                      std::vector<std::string> hosts) {
  Event e;
  e.kind = EventKind::Rerun;
  e.forgeType = "ui";
  e.eventName = command;
  if (command != "rerun") e.command = command;
  e.sender = webActor(req);
  e.runId = runId;
  e.hosts = std::move(hosts);
  auto stored = ctx_.intake.submit(e);
  ctx_.log.info("web " + command + " of run " + std::to_string(runId) +
                (e.hosts.empty() ? "" : " (" + join(e.hosts, ", ") + ")") + " from " +
                req.remoteAddr + " queued as delivery " + std::to_string(stored.id));
  return stored.id;
}

void Web::waitHandled(int64_t deliveryId) {
  store::Deliveries deliveries(ctx_.db, kClock);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (;;) {
    auto d = deliveries.get(deliveryId);
    if (d && d->state != "queued") return;
    if (std::chrono::steady_clock::now() >= deadline) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
}

http::Response Web::afterSubmit(int64_t deliveryId) {
  // The intake wakes the dispatcher, which turns a re-run into a run in milliseconds; a busy
  // one leaves the person on /deliveries/<id>, which keeps looking.
  waitHandled(deliveryId);
  store::Runs runs(ctx_.db, kClock, "");
  if (auto r = runs.byDelivery(deliveryId))
    return http::Response::redirect("/runs/" + std::to_string(r->view.id));
  return http::Response::redirect("/deliveries/" + std::to_string(deliveryId));
}

http::Response Web::deliveryPage(const http::Request& req) {
  const int64_t id = parseId(req.param("id"));
  store::Deliveries deliveries(ctx_.db, kClock);
  auto d = deliveries.get(id);
  if (!d || (d->source != "ui" && d->source != "cli"))
    return page(404, "no such request", "<p>No re-run request of that number.</p>");
  store::Runs runs(ctx_.db, kClock, "");
  if (auto r = runs.byDelivery(id))
    return http::Response::redirect("/runs/" + std::to_string(r->view.id));
  mstch::data v;
  v.set("id", std::to_string(id));
  v.set("what", d->eventName);
  v.set("queued", d->state == "queued");
  v.set("detail", d->detail);
  return page(d->state == "queued" ? 200 : 409, "request " + std::to_string(id),
              render("delivery", v), d->state == "queued" ? 2 : 0);
}

http::Response Web::approve(const http::Request& req) {
  int64_t id = parseId(req.param("id"));
  if (auto refused = formRefusal(req, id)) return *refused;
  store::Runs runs(ctx_.db, kClock, "");
  if (!runs.get(id)->view.fromFork)
    return http::Response::text(400, "run " + std::to_string(id) +
                                         " is not of a pull request from a fork: nothing to "
                                         "approve\n");
  return afterSubmit(submitUi(req, "approve", id));
}

http::Response Web::rerun(const http::Request& req) {
  int64_t id = parseId(req.param("id"));
  if (auto refused = formRefusal(req, id)) return *refused;
  std::vector<std::string> named;
  if (auto host = req.param("host"); !host.empty()) {
    if (!validLogName(host)) return http::Response::text(400, "bad host name\n");
    // A host the run does not have would make a run that fails at once: refuse it here.
    store::Runs runs(ctx_.db, kClock, "");
    auto hosts = runs.hosts(id);
    std::vector<std::string> names;
    for (const auto& h : hosts) names.push_back(h.host);
    if (!hostsNotInRun(hosts, {host}).empty())
      return page(400, "not a host of run " + std::to_string(id),
                  "<p>" + htmlEscape(host) + " is not a host of <a href=\"/runs/" +
                      std::to_string(id) + "\">run #" + std::to_string(id) +
                      "</a>; nothing was re-run. Its hosts: " + htmlEscape(join(names, ", ")) +
                      ".</p>");
    named = {host};
  }
  return afterSubmit(submitUi(req, "rerun", id, std::move(named)));
}

std::vector<std::string> hostsNotInRun(const std::vector<RunHostView>& hosts,
                                       const std::vector<std::string>& named) {
  std::vector<std::string> out;
  if (hosts.empty()) return out;
  for (const auto& n : named)
    if (std::none_of(hosts.begin(), hosts.end(), [&](const RunHostView& h) { return h.host == n; }))
      out.push_back(n);
  return out;
}

http::Response Web::cancel(const http::Request& req) {
  const int64_t id = parseId(req.param("id"));
  if (auto refused = formRefusal(req, id)) return *refused;
  store::Runs runs(ctx_.db, kClock, "");
  auto r = runs.get(id);
  if (isFinal(r->view.state))
    return page(409, "run #" + std::to_string(id) + " ended",
                "<p>Run <a href=\"/runs/" + std::to_string(id) + "\">#" + std::to_string(id) +
                    "</a> already ended (" + toString(r->view.state) + "): nothing to cancel.</p>");
  waitHandled(submitUi(req, "cancel", id));
  return http::Response::redirect("/runs/" + std::to_string(id));
}

namespace {

// What a roll back of `host` in (`forge`, `repo`) would deploy (any repository when `repo` is
// ""): the system the host ran before its last successful deploy, and the record of the deploy
// that had put it there.
struct RollbackTarget {
  store::DeploymentRecord current, previous;
};

std::variant<RollbackTarget, std::string> rollbackTarget(store::Database& db,
                                                         const std::string& host,
                                                         const std::string& forge,
                                                         const std::string& repo) {
  store::Deployments deployments(db);
  auto current =
      repo.empty() ? deployments.lastSucceeded(host) : deployments.lastSucceeded(host, forge, repo);
  if (!current) return std::string("no successful deploy of " + host + " is recorded");
  if (!current->previousPath)
    return std::string("the deploy of " + host + " did not see what ran there before it");
  if (*current->previousPath == current->storePath)
    return std::string("the previous system is the one it runs now");
  auto previous = deployments.lastSucceededWithPath(host, current->forge, current->repo,
                                                    *current->previousPath);
  if (!previous)
    return std::string("the system " + host + " ran before (" + *current->previousPath +
                       ") was not deployed by this runner, so no run can deploy it again; "
                       "roll back on the machine");
  return RollbackTarget{*current, *previous};
}

}  // namespace

http::Response Web::rollback(const http::Request& req) {
  const std::string host = req.param("host");
  const std::string back = "/hosts/" + host;
  if (!validLogName(host)) return http::Response::text(400, "bad host name\n");
  if (auto refused = sessionRefusal(req, back)) return *refused;
  const std::string repo = req.param("repo");
  auto target = rollbackTarget(ctx_.db, host, req.param("forge"), repo);
  if (auto* why = std::get_if<std::string>(&target))
    return page(409, "cannot roll back " + host,
                "<p>" + htmlEscape(host) + " cannot be rolled back: " + htmlEscape(*why) +
                    ".</p><p><a href=\"" + htmlEscape(back) + "\">Back to " + htmlEscape(host) +
                    "</a></p>");
  const auto& t = std::get<RollbackTarget>(target);
  if (req.param("confirm") != "yes") {
    mstch::data d;
    d.set("host", host);
    d.set("repo", t.current.repo);
    d.set("forge", t.current.forge);
    d.set("csrf", session(req)->csrf);
    d.set("current_path", t.current.storePath);
    d.set("current_commit", shortSha(t.current.sha));
    if (t.current.generation) d.set("current_generation", std::to_string(*t.current.generation));
    d.set("target_path", t.previous.storePath);
    d.set("target_commit", shortSha(t.previous.sha));
    if (t.previous.generation) d.set("target_generation", std::to_string(*t.previous.generation));
    d.set("target_run", std::to_string(*t.previous.runId));
    return page(200, "roll back " + host, render("rollback", d));
  }
  return afterSubmit(submitUi(req, "rollback", *t.previous.runId, {host}));
}

http::Response Web::health() {
  MutexLock lk(healthMu_);
  const auto now = std::chrono::steady_clock::now();
  if (healthAt_ == std::chrono::steady_clock::time_point{} ||
      now - healthAt_ >= std::chrono::seconds(1)) {
    healthAt_ = now;
    healthProblems_.clear();
    try {
      ctx_.db.exec(
          "INSERT INTO health(id, checked_at) VALUES (1, ?1) "
          "ON CONFLICT(id) DO UPDATE SET checked_at = excluded.checked_at",
          {kClock.nowMillis()});
    } catch (const Error& e) {
      healthProblems_.push_back("the database cannot be written: " + describe(e));
    }
    if (auto why = os::writeProblem(ctx_.config.stateDir))
      healthProblems_.push_back("the state directory cannot be written: " + *why);
  }
  if (healthProblems_.empty()) return http::Response::text(200, "ok\n");
  return http::Response::text(503, join(healthProblems_, "\n") + "\n");
}

http::Response Web::metrics() {
  auto res = http::Response::text(
      200, renderMetrics(ctx_.db, fleetRows(), kClock.nowMillis(), ctx_.counters));
  res.contentType = "text/plain; version=0.0.4; charset=utf-8";
  return res;
}

std::string deployHead(store::Database& db, const RepoConfig& repo) {
  std::string sha;
  int64_t newest = -1;
  store::Runs runs(db, kClock, "");
  for (const auto& r : runs.list(200)) {
    const RunView& v = r.view;
    if (v.forge != repo.forge.value_or("") || v.repo != repo.name || v.fromFork || v.id <= newest)
      continue;
    for (const auto& b : repo.deployBranches)
      if (v.ref == "refs/heads/" + b) {
        newest = v.id;
        sha = v.sha;
      }
  }
  return sha;
}

std::vector<std::string> flakeHostsAt(const Config& config, const RepoConfig& repo,
                                      const std::string& sha) {
  fs::path gitDir = repo.path ? *repo.path : scheduler::mirrorPath(config.stateDir, repo);
  auto git = git::Repository::open(gitDir);
  return plan::discoverHosts(*git, sha);
}

std::vector<std::string> Web::flakeHosts(const RepoConfig& repo) {
  const std::string sha = deployHead(ctx_.db, repo);
  if (sha.empty()) return {};
  const std::string key = repo.forge.value_or("") + ":" + repo.name + "@" + sha;
  {
    MutexLock lk(flakeMu_);
    if (auto it = flakeHostsCache_.find(key); it != flakeHostsCache_.end()) return it->second;
  }
  std::vector<std::string> hosts;
  try {
    hosts = flakeHostsAt(ctx_.config, repo, sha);
  } catch (const std::exception& e) {
    ctx_.log.debug("fleet: the flake's hosts of " + repo.name + " at " + shortSha(sha) +
                   " are not known: " + describe(e));
  }
  MutexLock lk(flakeMu_);
  if (flakeHostsCache_.size() > 64) flakeHostsCache_.clear();
  flakeHostsCache_[key] = hosts;
  return hosts;
}

std::vector<fleet::FleetRow> Web::fleetRows() {
  return fleet::fleetTable(ctx_.db, ctx_.config,
                           [this](const RepoConfig& repo) { return flakeHosts(repo); });
}

namespace {

mstch::data fleetRowData(const fleet::FleetRow& r) {
  mstch::data row;
  row.set("forge", r.forge);
  row.set("repo", r.repo);
  row.set("host", r.host);
  row.set("target", r.target);
  row.set("drift", fleet::toString(r.drift.drift));
  row.set("drift_detail", r.drift.detail);
  row.set("attention", fleet::needsAttention(r.drift.drift));
  if (r.generation) row.set("generation", std::to_string(*r.generation));
  if (r.currentPath) row.set("current_path", *r.currentPath);
  row.set("current_from", r.currentFrom);
  if (r.lastSucceeded) {
    row.set("commit", shortSha(r.lastSucceeded->sha));
    row.set("full_commit", r.lastSucceeded->sha);
    if (r.lastSucceeded->runId) row.set("run", std::to_string(*r.lastSucceeded->runId));
    row.set("deployed_at", isoTime(r.lastSucceeded->finishedAt));
  }
  if (r.lastDeploy) {
    row.set("last_result", r.lastDeploy->result);
    row.set("last_at", isoTime(r.lastDeploy->finishedAt));
  }
  if (r.probe && r.probe->lastSeen) row.set("last_seen", isoTime(*r.probe->lastSeen));
  if (r.expected) {
    row.set("expected_path", r.expected->path);
    row.set("expected_run", std::to_string(r.expected->runId));
  }
  return row;
}

}  // namespace

http::Response Web::fleetPage(const http::Request&) {
  auto rows = fleetRows();
  std::stable_sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) {
    return fleet::needsAttention(a.drift.drift) > fleet::needsAttention(b.drift.drift);
  });
  mstch::data list{mstch::data::type::list};
  std::map<std::string, int> counts;
  for (const auto& r : rows) {
    list.push_back(fleetRowData(r));
    ++counts[fleet::toString(r.drift.drift)];
  }
  mstch::data summary{mstch::data::type::list};
  for (const auto& [drift, n] : counts) {
    mstch::data c;
    c.set("drift", drift);
    c.set("count", std::to_string(n));
    summary.push_back(c);
  }
  mstch::data d;
  d.set("hosts", list);
  d.set("summary", summary);
  d.set("probe_interval", std::to_string(ctx_.config.fleet.probeInterval.count()));
  return page(200, "fleet", render("fleet", d));
}

http::Response Web::hostPage(const http::Request& req) {
  const std::string host = req.param("host");
  if (!validLogName(host)) return http::Response::text(400, "bad host name\n");
  // A repository is (forge, name): ?repo=alice/infra&forge=gitea picks one of two same-named.
  const std::string repo = req.param("repo");
  const std::string forge = req.param("forge");
  std::optional<fleet::FleetRow> row;
  for (auto& r : fleetRows())
    if (r.host == host && (repo.empty() || (r.repo == repo && r.forge == forge))) {
      row = r;
      break;
    }
  store::Deployments deployments(ctx_.db);
  auto history = deployments.history(host, 50);
  if (!row && history.empty())
    return page(404, "no such host", "<p>No host of that name is known.</p>");
  mstch::data d = row ? fleetRowData(*row) : mstch::data();
  d.set("host", host);
  mstch::data list{mstch::data::type::list};
  for (const auto& h : history) {
    if (row && (h.repo != row->repo || h.forge != row->forge)) continue;
    if (!row && !repo.empty() && (h.repo != repo || h.forge != forge)) continue;
    mstch::data e;
    e.set("result", h.result);
    e.set("repo", h.repo);
    e.set("commit", shortSha(h.sha));
    e.set("full_commit", h.sha);
    if (h.runId) e.set("run", std::to_string(*h.runId));
    if (h.generation) e.set("generation", std::to_string(*h.generation));
    if (h.previousGeneration) e.set("previous_generation", std::to_string(*h.previousGeneration));
    e.set("store_path", h.storePath);
    e.set("started_at", isoTime(h.startedAt));
    e.set("finished_at", isoTime(h.finishedAt));
    e.set("duration", formatDuration(std::chrono::milliseconds(h.finishedAt - h.startedAt)));
    e.set("detail", h.detail);
    list.push_back(e);
  }
  d.set("history", list);
  auto target = row ? rollbackTarget(ctx_.db, host, row->forge, row->repo)
                    : rollbackTarget(ctx_.db, host, forge, repo);
  if (auto* t = std::get_if<RollbackTarget>(&target)) {
    auto sess = session(req);
    d.set("rollback_repo", t->current.repo);
    d.set("rollback_forge", t->current.forge);
    d.set("rollback_path", t->previous.storePath);
    d.set("rollback_commit", shortSha(t->previous.sha));
    d.set("rollback_run", std::to_string(*t->previous.runId));
    d.set("can_rollback", ctx_.uiToken && sess);
    if (ctx_.uiToken && sess) d.set("csrf", sess->csrf);
    d.set("login_to_rollback", ctx_.uiToken.has_value() && !sess);
  } else {
    d.set("rollback_unavailable", std::get<std::string>(target));
  }
  return page(200, "host " + host, render("host", d));
}

}  // namespace runner::app
