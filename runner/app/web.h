// The daemon's HTTP routes (DESIGN.md §1, §7, §8):
//
//   POST /hooks/<forge>            signed forge webhooks (intake, scheduler/intake.h)
//   POST /hooks/git                signed hooks/post-receive deliveries
//   GET  /healthz                  "ok" while the database answers
//   GET  /metrics                  Prometheus text: deliveries and runs by state, queue depth
//   GET  /api/runs[?limit=N]       the `switchyard runs --json` list, newest first
//   GET  /api/runs/<id>            one run with its hosts (summary, paths) and plan
//   GET  /                         run list (server-rendered, templates/ui_runs.mustache);
//                                  ?repo= &branch= &state= &host= filter it, ?page=N (50 each)
//   GET  /runs/<id>                run page: hosts, plan table, log links, Re-run buttons
//   GET  /fleet                    every host: what it runs, its last deploy, drift (fleet.h)
//   GET  /api/fleet                the same as `switchyard fleet --json`
//   GET  /hosts/<host>[?repo=R]    a host: what it runs, its deploy history
//   GET  /runs/<id>/events         server-sent events: the run page updates itself with them
//   GET  /runs/<id>/logs/<host>    the host's log ("plan" = the plan), streamed (chunked) while
//                                  the run is running; ?download=1 as an attachment
//   GET  /runs/<id>/hosts/<host>/log  the same as a page: failed tail first, sections per stage
//   GET  /login, POST /login       exchange the UI token (Config::uiTokenFile) for a session
//                                  cookie; POST /logout
//   POST /runs/<id>/rerun          re-run (form: host, csrf); needs the session cookie AND the
//                                  session's CSRF token; queues a "ui" re-run delivery
//   POST /runs/<id>/approve        approve a fork's commit so it builds (same protection)
//   POST /runs/<id>/cancel         cancel a queued or running run (same protection): hosts
//                                  being deployed finish (or roll back), the rest are skipped
//   POST /hosts/<host>/rollback    roll the host back to the system it ran before its last
//                                  deploy (same protection; asks to confirm first): a forced
//                                  re-run, for that host, of the run that deployed that system
//   GET  /deliveries/<id>          where a queued re-run / roll back went: its run, or why none
//
// Protection: the token is compared in constant time, and wrong tokens are rate-limited (5
// per client and 50 in all per minute, then 429); sessions live in memory (a restart logs
// everyone out) and expire (12 h idle, 7 days at most); cookies are HttpOnly,
// SameSite=Strict, and Secure when public_url is https; every state-changing form carries
// the per-session CSRF token; redirects after login stay on this site. Requests whose Host
// is a name other than public_url's (DNS rebinding) get 421, webhooks and /healthz aside.
// Config::privateUi puts reading behind the login too. Without a UI token file, re-runs from
// the web are off (403) and the pages say so.
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "runner/app/metrics.h"
#include "runner/core/config.h"
#include "runner/core/log.h"
#include "runner/core/thread_annotations.h"
#include "runner/fleet/fleet.h"
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
  const LiveCounters* counters = nullptr;  // /metrics: what the daemon counted (may be null)
};

class Web {
 public:
  explicit Web(WebContext ctx) : ctx_(std::move(ctx)) {}
  // Adds every route above to `server`. `this` must outlive the server's use of them.
  void install(http::Server& server);

 private:
  struct Session {
    std::string csrf;
    std::chrono::steady_clock::time_point created, lastSeen;
  };
  std::optional<Session> session(const http::Request& req);
  // Whether the request may read (always, unless Config::privateUi: a session, or the UI
  // token as a bearer token).
  bool mayRead(const http::Request& req);
  // A wrong token from `client` now; true when it (or everyone) tried too often lately.
  bool tooManyFailures(const std::string& client);
  void recordFailure(const std::string& client);
  bool hostAllowed(const http::Request& req) const;
  // Fills the layout's login slot of an HTML page: "logged in" and Log out (with the
  // session's CSRF token), or a Log in link, or nothing when logging in is off.
  void showLogin(const http::Request& req, std::string& body);
  http::Response approve(const http::Request& req);
  // The session and CSRF checks of a state-changing form; nullopt when they pass, else the
  // answer to give (without a session: the login page, coming back to `back`).
  std::optional<http::Response> sessionRefusal(const http::Request& req, const std::string& back);
  // The same for a form of run `id`, which must exist.
  std::optional<http::Response> formRefusal(const http::Request& req, int64_t id);
  // Where a form that queued delivery `id` leads: the run the scheduler made of it (it
  // usually has within a moment), the reason when it made none, else /deliveries/<id>,
  // which goes on waiting.
  // Queues a "ui" re-run delivery (command "rerun", "approve", "cancel" or "rollback") of
  // run `runId` for `hosts`, sent by this login; returns the delivery's id.
  int64_t submitUi(const http::Request& req, const std::string& command, int64_t runId,
                   std::vector<std::string> hosts = {});
  http::Response afterSubmit(int64_t deliveryId);
  // Waits (up to 3 s) until the scheduler has handled delivery `id`.
  void waitHandled(int64_t deliveryId);
  // POST /runs/<id>/cancel: a queued run ends; a running one skips what it has not started.
  http::Response cancel(const http::Request& req);
  http::Response deliveryPage(const http::Request& req);
  // POST /hosts/<host>/rollback (form: repo, csrf, confirm): without confirm=yes a page that
  // says what will happen; with it a re-run, forced, of the run that deployed the host's
  // previous system, for that host only.
  http::Response rollback(const http::Request& req);
  http::Response runsPage(const http::Request& req);
  http::Response runPage(const http::Request& req);
  http::Response logStream(const http::Request& req);
  // The host's log as a page: the failed tail first, then a section per "# …" heading the
  // stages write (build, deploy: lock, copy, activate, confirm, …); links to the raw log.
  http::Response logPage(const http::Request& req);
  // Server-sent events: the run's state, counts per host state and each host's row as JSON
  // (event "run"), sent when it changes, until the run is final (bounded: an hour).
  http::Response runEvents(const http::Request& req);
  http::Response loginForm(const http::Request& req, const std::string& problem = "");
  http::Response login(const http::Request& req);
  http::Response logout(const http::Request& req);
  http::Response rerun(const http::Request& req);
  http::Response metrics();
  http::Response fleetPage(const http::Request& req);
  http::Response hostPage(const http::Request& req);
  // The fleet table, with the flake's hosts at each deploy branch's newest planned commit
  // (static discovery, cached per commit) so hosts the config leaves out are listed.
  std::vector<fleet::FleetRow> fleetRows();
  std::vector<std::string> flakeHosts(const RepoConfig& repo);
  Mutex flakeMu_;
  std::map<std::string, std::vector<std::string>> flakeHostsCache_ GUARDED_BY(flakeMu_);
  // /healthz: 200 "ok" only when a delivery could be stored now — a real database write
  // and a real file write in the state directory (free space included) — else 503 with why.
  // Checked at most once a second; answers in between reuse the last verdict.
  http::Response health();

  WebContext ctx_;
  Mutex healthMu_;
  std::chrono::steady_clock::time_point healthAt_ GUARDED_BY(healthMu_);
  std::vector<std::string> healthProblems_ GUARDED_BY(healthMu_);
  Mutex mu_;
  std::map<std::string, Session> sessions_ GUARDED_BY(mu_);  // cookie -> session
  // Wrong login tokens: per client address, and all of them.
  std::map<std::string, std::vector<std::chrono::steady_clock::time_point>> failures_
      GUARDED_BY(mu_);
  std::vector<std::chrono::steady_clock::time_point> allFailures_ GUARDED_BY(mu_);
  // Log streams following a growing file: each holds an HTTP worker thread, so they are
  // capped (kMaxFollowers) to keep threads for webhooks; beyond it a stream is a snapshot.
  static constexpr int kMaxFollowers = 16;
  std::shared_ptr<std::atomic<int>> followers_ = std::make_shared<std::atomic<int>>(0);
};

// How pages and the CLI name a run's repository: "<forge>:<owner>/<name>", or just the name
// for a repository without a forge (hook and CLI repos). A repository is (forge, name).
std::string repoLabel(const RunView& run);

// The `runs --json` shape of DESIGN.md §3 for one run.
nlohmann::json runJson(const store::RunRecord& run, const std::vector<RunHostView>& hosts);
// The fuller shape of /api/runs/<id>: + base_sha, pr_number, error, parent/superseded_by,
// per-host summary/paths/times, and the plan.
nlohmann::json runDetailJson(const store::RunRecord& run, const std::vector<RunHostView>& hosts);

// A mustache template from templates/ui_<name>.mustache (embedded at build time).
const std::string& uiTemplate(const std::string& name);

// The commit of the newest run on one of `repo`'s deploy branches ("" when none).
std::string deployHead(store::Database& db, const RepoConfig& repo);
// The hosts the flake defines at `sha` (static discovery from git: repo.path or its mirror).
// Throws GitError / Error when the commit cannot be read or discovery fails.
std::vector<std::string> flakeHostsAt(const Config& config, const RepoConfig& repo,
                                      const std::string& sha);

// True for names a log file may have: host attribute names and "plan".
bool validLogName(std::string_view name);

// Per-host re-runs (web and `switchyard rerun HOST…`) name hosts of the run: the names in
// `named` run `hosts` does not have, in the order given (empty when all are there, or when
// the run has no hosts yet: it ended before its plan, and a re-run plans again).
std::vector<std::string> hostsNotInRun(const std::vector<RunHostView>& hosts,
                                       const std::vector<std::string>& named);

}  // namespace runner::app
