// The daemon behind `switchyard serve` (DESIGN.md §1): the one place that wires the HTTP
// server, intake, the scheduler and the real stages together. Tests, the benchmark and
// `switchyard demo` start it in-process:
//
//   Config c;                    // c.listen = "127.0.0.1:0", c.stateDir = tmp, repos, …
//   Daemon d(c);
//   int port = d.start();        // listening; the scheduler runs
//   … POST http://127.0.0.1:<port>/hooks/git …
//   auto run = d.waitForRun(deliveryId, 60s);   // the run a delivery made, once finished
//   d.stop();
//
// Endpoints: POST /hooks/<forge> and /hooks/git, GET /healthz, /metrics, /api/runs,
// /api/runs/<id>, and the web UI (/, /runs/<id>, /runs/<id>/logs/<host>, /login, POST
// /runs/<id>/rerun) — see web.h.
//
// State: <state_dir>/switchyard.db (SQLite, WAL), logs/, gcroots/, mirrors/. Three database
// connections: one that every writer shares — intake's group-commit writer, the scheduler's
// dispatcher and workers, the stages' host locks, deployments and drvPath cache, and the
// reporter's outbox (their transactions queue on its mutex, not on SQLite's file lock; README
// "Decisions") — one for the web handlers' reads, and the WAL checkpointer's own.
#pragma once

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/log.h"
#include "runner/core/run.h"
#include "runner/core/stages.h"
#include "runner/store/host_probes.h"
#include "runner/store/runs.h"

namespace runner::scheduler {
class Intake;
class Scheduler;
}  // namespace runner::scheduler

namespace runner::app {

struct DaemonOptions {
  Logger* log = nullptr;            // default: a StderrLogger over the daemon's redactor
  RunReporter* reporter = nullptr;  // default: the log and the forges (runner/report)
  bool runScheduler = true;         // false: intake only (the intake benchmark, tests)
  // Stage overrides for tests (default: the real planner, builder and SSH deployer).
  PlanStage* planner = nullptr;
  BuildStage* builder = nullptr;
  DeployStage* deployer = nullptr;
  size_t httpThreads = 16;  // handler threads (connections are the event loop's, not these)
  int runWorkers = 3;
  std::chrono::milliseconds poll{500};
  // Intake's group-commit writer on a connection of its own instead of the one the scheduler,
  // the stages and the reporter share (README "Decisions": shared; this is the alternative,
  // kept for first_status_bench to weigh the two).
  bool ownIntakeConnection = false;
};

class Daemon {
 public:
  // Reads the secrets (hook secret, UI token, forge webhook secrets) and opens the state
  // database. Throws InputError/ConfigError for unreadable secrets, StoreError for the
  // database.
  explicit Daemon(Config config, DaemonOptions options = {});
  ~Daemon();  // stop()
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Binds (Config::listen; port 0 = any), recovers interrupted runs, starts the scheduler.
  // Returns the bound port. When Config::publicUrl is empty it becomes http://<host>:<port>.
  int start();
  // Stops the server (requests in progress finish), then the scheduler (runs in progress
  // finish). Idempotent; noexcept.
  void stop() noexcept;

  int port() const { return port_; }
  std::string baseUrl() const;  // http://<host>:<port>
  const Config& config() const { return config_; }
  scheduler::Intake& intake();
  Redactor& redactor() { return redactor_; }

  // The run made from delivery `deliveryRow` once it reached a final state, or nullopt when
  // there is none (ignored delivery) or it did not finish within `timeout`. Polls the
  // database (other processes may write it too).
  std::optional<store::RunRecord> waitForRun(int64_t deliveryRow,
                                             std::chrono::milliseconds timeout);
  // Waits until run `id` is final; nullopt on timeout.
  std::optional<store::RunRecord> waitForRunState(int64_t id, std::chrono::milliseconds timeout);

 private:
  struct Parts;
  // After a fleet probe round: queues the retries due (fleet/retry.h) and wakes the scheduler.
  void retryReached(const std::vector<store::ProbeRecord>& results);
  Config config_;
  DaemonOptions options_;
  Redactor redactor_;
  std::unique_ptr<Logger> ownLog_;
  Logger* log_ = nullptr;
  std::unique_ptr<Parts> parts_;
  int port_ = 0;
  std::atomic<bool> started_{false};
};

// <state_dir>/switchyard.db
std::filesystem::path databasePath(const Config& config);
// A new connection to the runner's state: the PostgreSQL server of `database:` when set, else
// the SQLite file databasePath(config). Throws StoreError when it cannot be opened.
std::unique_ptr<store::Database> openDatabase(const Config& config, store::Durability durability);

// The text of hooks/post-receive (embedded at build time).
const std::string& postReceiveHook();

// Installs hooks/post-receive into the bare repository `gitDir` (hooks/post-receive, mode
// 0755) and points it at the daemon: git config switchyard.url, switchyard.secretFile and
// switchyard.repo (the RepoConfig name the daemon knows it by). Throws SysError/GitError.
void installPostReceiveHook(const std::filesystem::path& gitDir, const std::string& daemonUrl,
                            const std::filesystem::path& secretFile, const std::string& repoName);

// Embedded defaults for `switchyard serve` without --config (DESIGN.md/issue 6): listen on
// 127.0.0.1:8470, state in ./.switchyard/, no forges (only /hooks/git and the API work).
Config defaultConfig();

}  // namespace runner::app
