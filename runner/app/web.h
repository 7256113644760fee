// The daemon's HTTP routes (DESIGN.md §1, §7, §8):
//
//   POST /hooks/<forge>            signed forge webhooks (intake, scheduler/intake.h)
//   POST /hooks/git                signed hooks/post-receive deliveries
//   GET  /healthz                  "ok" while the database answers
//   GET  /metrics                  Prometheus text: deliveries and runs by state, queue depth
//   GET  /api/runs[?limit=N]       the `switchyard runs --json` list, newest first
//   GET  /api/runs/<id>            one run with its hosts (summary, paths) and plan
//   GET  /                         run list (server-rendered, templates/ui_runs.mustache)
//   GET  /runs/<id>                run page: hosts, plan table, log links, Re-run buttons
//   GET  /runs/<id>/logs/<host>    the host's log ("plan" = the plan), streamed (chunked) while
//                                  the run is running
//   GET  /login, POST /login       exchange the UI token (Config::uiTokenFile) for a session
//                                  cookie; POST /logout
//   POST /runs/<id>/rerun          re-run (form: host, csrf); needs the session cookie AND the
//                                  session's CSRF token; queues a "ui" re-run delivery
//
// Re-run protection: the token is compared in constant time; sessions live in memory (a
// restart logs everyone out); cookies are HttpOnly, SameSite=Strict; every state-changing
// form carries the per-session CSRF token. Without a UI token file, re-runs from the web are
// off (403) and the pages say so.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "runner/core/config.h"
#include "runner/core/log.h"
#include "runner/http/server.h"
#include "runner/scheduler/intake.h"
#include "runner/store/database.h"
#include "runner/store/runs.h"

namespace runner::app {

struct WebContext {
  const Config& config;
  store::Database& db;  // the web handlers' connection (guarded by Database's mutex)
  scheduler::Intake& intake;
  std::optional<std::string> uiToken;  // a secret; nullopt: re-runs from the web are off
  Logger& log;
};

class Web {
 public:
  explicit Web(WebContext ctx) : ctx_(ctx) {}
  // Adds every route above to `server`. `this` must outlive the server's use of them.
  void install(http::Server& server);

 private:
  struct Session {
    std::string csrf;
  };
  std::optional<Session> session(const http::Request& req);
  http::Response runsPage(const http::Request& req);
  http::Response runPage(const http::Request& req);
  http::Response logStream(const http::Request& req);
  http::Response loginForm(const http::Request& req, const std::string& problem = "");
  http::Response login(const http::Request& req);
  http::Response logout(const http::Request& req);
  http::Response rerun(const http::Request& req);
  http::Response metrics();

  WebContext ctx_;
  std::mutex mu_;
  std::map<std::string, Session> sessions_;  // GUARDED_BY(mu_) cookie -> session
  // Log streams following a growing file: each holds an HTTP worker thread, so they are
  // capped (kMaxFollowers) to keep threads for webhooks; beyond it a stream is a snapshot.
  static constexpr int kMaxFollowers = 16;
  std::shared_ptr<std::atomic<int>> followers_ = std::make_shared<std::atomic<int>>(0);
};

// The `runs --json` shape of DESIGN.md §3 for one run.
nlohmann::json runJson(const store::RunRecord& run, const std::vector<RunHostView>& hosts);
// The fuller shape of /api/runs/<id>: + base_sha, pr_number, error, parent/superseded_by,
// per-host summary/paths/times, and the plan.
nlohmann::json runDetailJson(const store::RunRecord& run, const std::vector<RunHostView>& hosts);

// A mustache template from templates/ui_<name>.mustache (embedded at build time).
const std::string& uiTemplate(const std::string& name);

// True for names a log file may have: host attribute names and "plan".
bool validLogName(std::string_view name);

}  // namespace runner::app
