#include "runner/app/daemon.h"

#include <thread>

#include "integrations/gitea/client.h"
#include "integrations/gitea/webhook.h"
#include "integrations/github/client.h"
#include "integrations/github/webhook.h"
#include "runner/app/config_loader.h"
#include "runner/app/untrusted_jail.h"
#include "runner/app/web.h"
#include "runner/build/build_stage.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/core/thread_annotations.h"
#include "runner/deploy/deploy_stage.h"
#include "runner/deploy/host_lock.h"
#include "runner/fleet/probe.h"
#include "runner/fleet/retry.h"
#include "runner/http/curl_client.h"
#include "runner/http/server.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/plan_stage.h"
#include "runner/report/reporting.h"
#include "runner/scheduler/intake.h"
#include "runner/scheduler/mirrors.h"
#include "runner/scheduler/scheduler.h"
#include "runner/scheduler/untrusted_source.h"
#include "runner/ssh/ssh.h"
#include "runner/store/database.h"
#include "runner/store/deliveries.h"
#include "runner/store/deployments.h"
#include "runner/store/drv_cache.h"
#include "runner/store/host_locks.h"
#include "runner/store/runners.h"

namespace fs = std::filesystem;

namespace runner::app {

namespace {

// Tells two reporters everything: the log, and the forges (runner/report).
class TeeReporter final : public RunReporter {
 public:
  TeeReporter(RunReporter& a, RunReporter& b) : a_(a), b_(b) {}
  void runQueued(const RunView& r) override {
    a_.runQueued(r);
    b_.runQueued(r);
  }
  void planned(const RunView& r, const Plan& p) override {
    a_.planned(r, p);
    b_.planned(r, p);
  }
  void hostChanged(const RunView& r, const RunHostView& h) override {
    a_.hostChanged(r, h);
    b_.hostChanged(r, h);
  }
  void runFinished(const RunView& r, const std::vector<RunHostView>& hs) override {
    a_.runFinished(r, hs);
    b_.runFinished(r, hs);
  }

 private:
  RunReporter& a_;
  RunReporter& b_;
};

}  // namespace

fs::path databasePath(const Config& config) { return config.stateDir / "switchyard.db"; }

std::unique_ptr<store::Database> openDatabase(const Config& config, store::Durability durability) {
  return store::Database::openConfigured(config.database, databasePath(config), durability);
}

namespace {

// Gives `path` exactly `mode` (creating it as a directory first when `directory`), with an
// error that names state_dir instead of a raw filesystem one. A path that already has the
// mode is left alone, so a read-only state disk still starts (and /healthz says it is).
void setPrivateMode(const fs::path& path, fs::perms mode, bool directory) {
  std::error_code ec;
  if (directory) {
    fs::create_directories(path, ec);
    if (ec) throw ConfigError("state_dir " + path.string() + " cannot be created: " + ec.message());
    if (!fs::is_directory(path, ec))
      throw ConfigError("state_dir " + path.string() + " is not a directory");
  }
  auto st = fs::status(path, ec);
  if (!ec && (st.permissions() & fs::perms::all) == mode) return;
  fs::permissions(path, mode, fs::perm_options::replace, ec);
  if (ec)
    throw ConfigError("state_dir: cannot make " + path.string() +
                      " private to this account: " + ec.message());
}

}  // namespace

void installPostReceiveHook(const fs::path& gitDir, const std::string& daemonUrl,
                            const fs::path& secretFile, const std::string& repoName) {
  os::writeFileAtomic(gitDir / "hooks" / "post-receive", postReceiveHook(), fs::perms(0755));
  os::PosixProcessRunner procs;
  for (const auto& [key, value] : std::vector<std::pair<std::string, std::string>>{
           {"switchyard.url", daemonUrl},
           {"switchyard.secretFile", secretFile.string()},
           {"switchyard.repo", repoName}}) {
    RunOptions o;
    o.program = "git";
    o.args = {"--git-dir", gitDir.string(), "config", key, value};
    o.timeout = std::chrono::seconds(30);
    auto r = procs.run(o);
    if (!r.ok()) throw GitError("git config " + key + " in " + gitDir.string() + ": " + r.errTail);
  }
}

Config defaultConfig() {
  Config c;
  c.listen = "127.0.0.1:8470";
  c.stateDir = fs::absolute(".switchyard");
  return c;
}

struct Daemon::Parts {
  SystemClock clock;
  // intakeDb: every writer (intake, scheduler, stages, reporter); webDb: the web handlers.
  // ownIntakeDb: intake's writer alone, only with DaemonOptions::ownIntakeConnection.
  std::unique_ptr<store::Database> intakeDb, webDb, ownIntakeDb;
  // Whom the intake writer's thread wakes after a commit. Set and cleared under wakeMu, and
  // woken under it, so stop() returning means no wake() is still running on a scheduler
  // about to be destroyed (TSan found the writer's notify racing the scheduler's destructor).
  Mutex wakeMu;
  scheduler::Scheduler* scheduler GUARDED_BY(wakeMu) = nullptr;
  std::unique_ptr<store::WalCheckpointer> checkpointer;
  std::unique_ptr<store::DeliveryWriter> writer;
  std::unique_ptr<scheduler::Intake> intake;
  std::optional<std::string> uiToken;
  std::unique_ptr<Web> web;
  std::unique_ptr<http::Server> server;

  // The real stages and what they use.
  os::PosixProcessRunner procs;
  // One budget for every nix process below (concurrency.evals / builds), whichever NixCli
  // and stage starts it.
  std::unique_ptr<nix::ProcessLimit> nixLimit;
  std::unique_ptr<nix::NixCli> nix;
  // Pull requests from forks: inputs only they lock are fetched without credentials; their
  // code is evaluated and built in the jail (untrusted_jail.h).
  std::unique_ptr<nix::NixCli> fetchNix;
  std::unique_ptr<nix::NixCli> jailNix;
  UntrustedJailSetup jail;
  std::unique_ptr<scheduler::UntrustedSources> untrustedSources;
  std::unique_ptr<PrioritySlots> evalSlots, buildSlots;
  std::unique_ptr<store::SqliteDrvCache> drvCache;
  LiveCounters counters;  // /metrics: evaluations run or cached, forges' answers
  std::unique_ptr<CountingDrvCache> countingCache;
  std::unique_ptr<http::CurlHttpClient> http;
  ssh::ConnectorPtr ssh;
  std::unique_ptr<store::HostLocks> hostLocks;
  std::unique_ptr<deploy::HostLockGuard> lockGuard;
  std::unique_ptr<store::Deployments> deployments;
  std::unique_ptr<store::HostProbes> hostProbes;  // deploys note when hosts were last seen
  std::unique_ptr<plan::NixPlanStage> planner;
  std::unique_ptr<build::RemoteBuilders> remoteBuilders;  // build: (issue 16)
  std::unique_ptr<build::TargetBuilds> targetBuilds;      // build_on: target (issue 16)
  std::unique_ptr<build::NixBuildStage> builder;
  std::unique_ptr<deploy::SshDeployStage> deployer;
  std::unique_ptr<scheduler::LoggingRunReporter> logReporter;
  std::unique_ptr<scheduler::Mirrors> mirrors;
  std::map<std::string, std::unique_ptr<Forge>> forges;  // comment permission checks
  std::unique_ptr<report::Reporting> reporting;
  std::unique_ptr<RunReporter> tee;
  std::unique_ptr<scheduler::Scheduler> sched;
  // The fleet probe (fleet/probe.h): its own database connection and thread.
  std::unique_ptr<store::Database> probeDb;
  std::unique_ptr<fleet::Prober> prober;
  std::unique_ptr<fleet::ProbeLoop> probeLoop;
};

Daemon::Daemon(Config config, DaemonOptions options)
    : config_(std::move(config)), options_(options), parts_(std::make_unique<Parts>()) {
  if (options_.log) {
    log_ = options_.log;
  } else {
    ownLog_ = std::make_unique<StderrLogger>(&redactor_);
    log_ = ownLog_.get();
  }
  auto& P = *parts_;
  config_.stateDir = fs::absolute(config_.stateDir);
  // The state (database, logs, mirrors) is the runner's alone: untrusted code must not read
  // it, and nobody else on the machine needs to.
  setPrivateMode(config_.stateDir, fs::perms::owner_all, true);
  fs::path dbFile = databasePath(config_);
  // Every writer shares one connection (Database serialises it): their transactions then
  // queue on its mutex instead of on SQLite's file lock, whose busy handler sleeps for
  // milliseconds at a time (README "Decisions", bench/RESULTS.md: intake p99 454 ms -> 20 ms).
  P.intakeDb = openDatabase(config_, store::Durability::Full);
  P.webDb = openDatabase(config_, store::Durability::Full);
  if (options_.ownIntakeConnection) {
    P.ownIntakeDb = openDatabase(config_, store::Durability::Full);
    P.ownIntakeDb->setRedactor(&redactor_);
  }
  const bool sqlite = P.intakeDb->backend() == store::Backend::Sqlite;
  // SQLite gives -wal and -shm the same mode
  if (sqlite) setPrivateMode(dbFile, fs::perms::owner_read | fs::perms::owner_write, false);
  P.intakeDb->setRedactor(&redactor_);  // no row the daemon writes holds a secret
  P.webDb->setRedactor(&redactor_);

  if (sqlite) P.checkpointer = std::make_unique<store::WalCheckpointer>(*P.intakeDb, dbFile);
  P.writer = std::make_unique<store::DeliveryWriter>(P.ownIntakeDb ? *P.ownIntakeDb : *P.intakeDb,
                                                     P.clock, [this] {
                                                       MutexLock lk(parts_->wakeMu);
                                                       if (auto* s = parts_->scheduler) s->wake();
                                                     });
  P.intake = std::make_unique<scheduler::Intake>(*P.writer, *log_);
  for (const auto& [name, fc] : config_.forges) {
    if (fc.type == "github")
      P.intake->addForge(name, integrations::github::makeWebhookReceiver(fc, &redactor_));
    else
      P.intake->addForge(name, integrations::gitea::makeWebhookReceiver(fc, &redactor_));
  }
  if (config_.hookSecretFile) {
    P.intake->setHookSecret(os::readSecretFile(*config_.hookSecretFile, &redactor_));
  }
  if (config_.uiTokenFile) {
    P.uiToken = os::readSecretFile(*config_.uiTokenFile, &redactor_);
    if (P.uiToken->size() < 32)
      throw ConfigError(config_.uiTokenFile->string() + ": the UI token is " +
                        std::to_string(P.uiToken->size()) +
                        " bytes; use at least 32 (e.g. `head -c 32 /dev/urandom | base64`)");
  }
  if (config_.ssh.identityFile) {  // never read here otherwise (libssh reads it): redact only
    if (auto key = os::readFileIfExists(*config_.ssh.identityFile)) redactor_.add(*key);
  }
}

Daemon::~Daemon() { stop(); }

scheduler::Intake& Daemon::intake() { return *parts_->intake; }

std::string Daemon::baseUrl() const {
  auto [host, _] = http::splitListen(config_.listen);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  if (host.find(':') != std::string::npos) host = "[" + host + "]";
  return "http://" + host + ":" + std::to_string(port_);
}

int Daemon::start() {
  auto& P = *parts_;
  http::ServerOptions so = serverOptionsFor(config_);
  so.threads = options_.httpThreads;
  P.server = std::make_unique<http::Server>(so, *log_);
  P.web = std::make_unique<Web>(
      WebContext{config_, *P.webDb, *P.intake, P.uiToken, *log_, &P.counters});
  P.web->install(*P.server);
  port_ = P.server->start();
  if (config_.publicUrl.empty()) config_.publicUrl = baseUrl();
  log_->info("listening on " + baseUrl() + " (state in " + config_.stateDir.string() + ")");

  if (options_.runScheduler) {
    const auto& cc = config_.concurrency;
    P.nixLimit = std::make_unique<nix::ProcessLimit>(cc.evals, cc.builds);
    nix::NixCliOptions limited;
    limited.limit = P.nixLimit.get();
    P.nix = std::make_unique<nix::NixCli>(P.procs, limited);
    P.fetchNix = std::make_unique<nix::NixCli>(
        P.procs, nix::credentiallessNixOptions(limited, config_.stateDir / "fetch-home"));
    nix::UntrustedNix untrusted;
    untrusted.buildTimeout = config_.untrusted.buildTimeout;
    untrusted.maxSilentTime = config_.untrusted.maxSilentTime;
    P.jail = setUpUntrustedJail(config_, P.procs, runnerPrivateFiles(config_));
    if (P.jail.jail) {
      P.jailNix =
          std::make_unique<nix::NixCli>(P.procs, nix::untrustedNixOptions(limited, *P.jail.jail));
      P.untrustedSources = std::make_unique<scheduler::UntrustedSources>(*P.nix, *P.fetchNix);
      untrusted.jail = P.jailNix.get();
      untrusted.sources = P.untrustedSources.get();
      log_->info("pull requests from forks run as '" + config_.untrusted.user +
                 "' without network, through the nix-daemon");
    } else {
      untrusted.unavailable = P.jail.problem;
      log_->warn("pull requests from forks cannot be evaluated: " + P.jail.problem);
    }
    P.evalSlots = std::make_unique<PrioritySlots>(cc.evals, cc.checks, cc.forks);
    P.buildSlots = std::make_unique<PrioritySlots>(cc.builds, cc.checks, cc.forks);
    P.drvCache = std::make_unique<store::SqliteDrvCache>(*P.intakeDb);
    P.countingCache = std::make_unique<CountingDrvCache>(*P.drvCache, P.counters.evals);
    P.http = std::make_unique<http::CurlHttpClient>();
    P.ssh = ssh::makeLibsshConnector();
    // This process as a runner (issue 16): its runs, host locks and outbox claims name it,
    // and its scheduler's heartbeat keeps its lease.
    const std::string runnerId = store::Runners::newId();
    P.hostLocks = std::make_unique<store::HostLocks>(*P.intakeDb, P.clock, runnerId);
    P.lockGuard = std::make_unique<deploy::HostLockGuard>(*P.hostLocks, P.clock);
    P.deployments = std::make_unique<store::Deployments>(*P.intakeDb);
    P.hostProbes = std::make_unique<store::HostProbes>(*P.intakeDb);
    P.planner = std::make_unique<plan::NixPlanStage>(*P.nix, untrusted, *P.evalSlots,
                                                     P.countingCache.get(), cc.evals, *log_);
    if (!config_.build.builders.empty() || config_.build.maxJobs)
      P.remoteBuilders = std::make_unique<build::RemoteBuilders>(P.procs, config_.build,
                                                                 config_.ssh, config_.stateDir);
    P.targetBuilds = std::make_unique<build::TargetBuilds>(P.procs, *P.ssh, config_.ssh, P.clock);
    P.builder = std::make_unique<build::NixBuildStage>(
        *P.nix, untrusted, P.clock, *P.buildSlots, *P.evalSlots, &redactor_, P.remoteBuilders.get(),
        P.targetBuilds.get());
    P.deployer = std::make_unique<deploy::SshDeployStage>(
        deploy::DeployPorts{*P.ssh, P.procs, *P.http, *P.lockGuard, *P.deployments, *P.nix, P.clock,
                            *log_, &redactor_, P.hostProbes.get()},
        config_.ssh, config_.concurrency.deploys);
    P.logReporter = std::make_unique<scheduler::LoggingRunReporter>(*log_);
    // Mirrors from before repositories were (forge, name) move to their forge's directory.
    scheduler::migrateMirrorLayout(config_.stateDir, config_.repos, *log_);
    P.mirrors = std::make_unique<scheduler::Mirrors>(config_.stateDir, *log_);
    for (const auto& [name, fc] : config_.forges) {
      if (!fc.tokenFile && !fc.privateKeyFile) continue;
      if (fc.type == "github")
        P.forges[name] = integrations::github::makeForge(fc, *P.http, P.clock, *log_, &redactor_);
      else
        P.forges[name] = integrations::gitea::makeForge(fc, *P.http, P.clock, *log_, &redactor_);
    }

    scheduler::SchedulerOptions opts;
    opts.runnerId = runnerId;
    opts.stateDir = config_.stateDir;
    opts.runWorkers = options_.runWorkers;
    opts.poll = options_.poll;
    // Forge reporting (runner/report): statuses/check runs/PR comments through the outbox,
    // and the re-run gateway for comment commands and check_run/check_suite re-requests.
    report::Forges forges;
    report::ReportingOptions ro;
    for (const auto& [name, forge] : P.forges) {
      forges[name] = forge.get();
      ro.forgeTypes[name] = config_.forges.at(name).type;
      ro.foldStatusesAbove[name] = config_.forges.at(name).foldStatusesAbove;
    }
    ro.runDeploys = [this](const RunView& run) {
      const RepoConfig* r = config_.findRepo(run.forge, run.repo);
      return r && scheduler::runDeploys(run, *r);
    };
    ForgeAnswers* answers = &P.counters.forgeAnswers;
    ro.sender.runnerId = runnerId;
    ro.sender.answered = [answers](const std::string& forge, int status) {
      answers->add(forge, status);
    };
    P.reporting =
        std::make_unique<report::Reporting>(*P.intakeDb, forges, P.nix.get(), P.clock, *log_, ro);
    P.reporting->start();
    opts.gateway = [this](const Event& e) { return parts_->reporting->gateway().handle(e); };
    opts.observe = [this](const Event& e) { parts_->reporting->gateway().observe(e); };
    P.tee = std::make_unique<TeeReporter>(*P.logReporter, P.reporting->reporter());
    RunReporter& reporter = options_.reporter ? *options_.reporter : *P.tee;
    PlanStage& planner = options_.planner ? *options_.planner : *P.planner;
    BuildStage& builder = options_.builder ? *options_.builder : *P.builder;
    DeployStage& deployer = options_.deployer ? *options_.deployer : *P.deployer;
    P.sched = std::make_unique<scheduler::Scheduler>(
        scheduler::SchedulerPorts{config_, *P.intakeDb, P.clock, *log_, reporter, *P.mirrors,
                                  planner, builder, deployer, &redactor_},
        opts);
    P.sched->start();
    {
      MutexLock lk(P.wakeMu);
      P.scheduler = P.sched.get();
    }
    P.sched->wake();
    if (config_.fleet.probeInterval.count() > 0 && config_.ssh.knownHosts) {
      P.probeDb = openDatabase(config_, store::Durability::Normal);
      P.probeDb->setRedactor(&redactor_);
      P.prober = std::make_unique<fleet::Prober>(*P.ssh, config_.ssh, config_.fleet, *P.probeDb,
                                                 P.clock, *log_);
      // Hosts with a configured target (targets that come from the flake are resolved by a
      // deploy's evaluation, which the probe does not repeat), and hosts with a retry pending
      // (fleet/retry.h) at the target their deploy tried.
      P.probeLoop = std::make_unique<fleet::ProbeLoop>(
          *P.prober, config_.fleet.probeInterval,
          [this] {
            std::vector<fleet::ProbeTarget> out;
            for (const auto& repo : config_.repos)
              for (const auto& h : repo.hosts)
                if (h.target) {
                  try {
                    out.push_back(
                        {repo.forge.value_or(""), repo.name, h.name, parseTarget(*h.target)});
                  } catch (const InputError&) {  // config_loader checked it; skip if not
                  }
                }
            auto& parts = *parts_;
            for (auto& t :
                 fleet::retryProbeTargets(*parts.probeDb, config_, out, parts.clock.nowMillis()))
              out.push_back(std::move(t));
            return out;
          },
          *log_, [this](const std::vector<store::ProbeRecord>& results) { retryReached(results); });
      P.probeLoop->start();
    }
  }
  started_ = true;
  return port_;
}

void Daemon::retryReached(const std::vector<store::ProbeRecord>& results) {
  auto& P = *parts_;
  bool queued = false;
  for (const auto& r : fleet::dueRetries(*P.probeDb, config_, results, P.clock.nowMillis())) {
    if (!fleet::queueRetry(*P.probeDb, P.clock, r)) continue;
    log_->info(r.host + " answers again: re-running run " + std::to_string(r.runId) + " for it (" +
               shortSha(r.sha) + ", retry_unreachable)");
    queued = true;
  }
  if (!queued) return;
  MutexLock lk(P.wakeMu);
  if (P.scheduler) P.scheduler->wake();
}

void Daemon::stop() noexcept {
  if (!started_.exchange(false)) return;
  auto& P = *parts_;
  if (P.server) P.server->stop();
  {
    MutexLock lk(P.wakeMu);
    P.scheduler = nullptr;
  }
  if (P.probeLoop) P.probeLoop->stop();
  if (P.sched) P.sched->stop();
  if (P.reporting) P.reporting->stop();
  log_->info("stopped");
}

std::optional<store::RunRecord> Daemon::waitForRun(int64_t deliveryRow,
                                                   std::chrono::milliseconds timeout) {
  auto db = openDatabase(config_, store::Durability::Normal);
  store::Deliveries deliveries(*db, parts_->clock);
  store::Runs runs(*db, parts_->clock, config_.effectivePublicUrl());
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto d = deliveries.get(deliveryRow);
    if (d && d->state != "queued") {
      auto r = runs.byDelivery(deliveryRow);
      if (!r) return std::nullopt;
      return waitForRunState(r->view.id, std::chrono::duration_cast<std::chrono::milliseconds>(
                                             deadline - std::chrono::steady_clock::now()) +
                                             std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return std::nullopt;
}

std::optional<store::RunRecord> Daemon::waitForRunState(int64_t id,
                                                        std::chrono::milliseconds timeout) {
  auto db = openDatabase(config_, store::Durability::Normal);
  store::Runs runs(*db, parts_->clock, config_.effectivePublicUrl());
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto r = runs.get(id);
    if (r && isFinal(r->view.state)) return r;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

}  // namespace runner::app
