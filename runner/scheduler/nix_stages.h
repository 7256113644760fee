// The real stages behind the scheduler's ports (stages.h): the planner (static / exact /
// auto, DESIGN.md §5) over the mirror, the builder (one nix build for the run's hosts, logs
// and GC roots in the state directory), and the SSH deployer with the configured rollout.
// Concurrency limits (Config::concurrency) are enforced here with slots shared by every run
// (slots.h): evaluation slots for planning and drvPath evaluation (plan and build stage share
// them), build slots for nix builds, both with deploys first and bounded shares for pull
// requests and forks; and a semaphore for hosts being deployed at once.
//
// All three are thread-safe: several runs call them at once.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <semaphore>

#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/drv_cache.h"
#include "runner/core/http_client.h"
#include "runner/core/log.h"
#include "runner/core/process.h"
#include "runner/deploy/host_lock.h"
#include "runner/nix/nix_cli.h"
#include "runner/scheduler/slots.h"
#include "runner/scheduler/stages.h"
#include "runner/scheduler/untrusted_source.h"
#include "runner/ssh/ssh.h"
#include "runner/store/deployments.h"

namespace runner::scheduler {

// A counting semaphore with a runtime count, released by RAII.
class Slots {
 public:
  explicit Slots(int count) : sem_(count < 1 ? 1 : count) {}
  class Held {
   public:
    explicit Held(Slots& s) : s_(s) { s_.sem_.acquire(); }
    ~Held() { s_.sem_.release(); }
    Held(const Held&) = delete;
    Held& operator=(const Held&) = delete;

   private:
    Slots& s_;
  };

 private:
  std::counting_semaphore<4096> sem_;
};

// How the plan and build stages evaluate and build a fork's code (README "Untrusted
// evaluation"): through `jail` (a NixCli with nix::untrustedNixOptions) on sources that
// `sources` prepared. When the runner cannot run the jail, `jail` is null and every fork's
// run fails with `unavailable` — it is never evaluated as the runner instead.
struct UntrustedNix {
  nix::NixCli* jail = nullptr;
  UntrustedSources* sources = nullptr;
  std::string unavailable;
  std::chrono::seconds buildTimeout{1800};  // at most; RepoConfig::buildTimeout when shorter
  std::chrono::seconds maxSilentTime{600};
};

class NixPlanStage final : public PlanStage {
 public:
  // `nix`, the parts of `untrusted`, `evals` (shared with the build stage), `log` and `cache`
  // (may be null) must outlive this object. `evalWorkers`: nix processes one plan may run.
  NixPlanStage(nix::NixCli& nix, UntrustedNix untrusted, PrioritySlots& evals, DrvPathCache* cache,
               int evalWorkers, Logger& log)
      : nix_(nix),
        untrusted_(std::move(untrusted)),
        cache_(cache),
        evals_(evals),
        evalWorkers_(evalWorkers),
        log_(log) {}
  Plan plan(const PlanInput& input) override;

 private:
  nix::NixCli& nix_;
  UntrustedNix untrusted_;
  DrvPathCache* cache_;
  PrioritySlots& evals_;
  int evalWorkers_;
  Logger& log_;
};

class NixBuildStage final : public BuildStage {
 public:
  // `nix`, the parts of `untrusted`, `evals`, `builds`, `clock` and `log` must outlive it.
  // `redactor` (may be null) scrubs the build logs.
  NixBuildStage(nix::NixCli& nix, UntrustedNix untrusted, const Clock& clock, PrioritySlots& builds,
                PrioritySlots& evals, Logger& log, const Redactor* redactor = nullptr)
      : nix_(nix),
        untrusted_(std::move(untrusted)),
        clock_(clock),
        builds_(builds),
        evals_(evals),
        log_(log),
        redactor_(redactor) {}
  std::vector<BuildHostOutcome> build(const BuildInput& input, StageListener& listener) override;

 private:
  nix::NixCli& nix_;
  UntrustedNix untrusted_;
  const Clock& clock_;
  PrioritySlots& builds_;
  PrioritySlots& evals_;
  Logger& log_;
  const Redactor* redactor_;
};

// What the SSH deploy stage needs; each must outlive the stage and be thread-safe.
struct DeployPorts {
  ssh::Connector& ssh;
  ProcessRunner& processes;
  HttpClient& http;
  deploy::HostLockGuard& locks;
  store::Deployments& deployments;
  nix::NixCli& nix;  // target discovery (clan / colmena options)
  const Clock& clock;
  Logger& log;
  const Redactor* redactor = nullptr;  // scrubs the deploy logs; may be null
};

class SshDeployStage final : public DeployStage {
 public:
  // `ssh` is Config::ssh; `deploys` is Config::concurrency.deploys. `lockWait` is how long a
  // host held by another deploy is waited for before it is refused.
  SshDeployStage(DeployPorts ports, SshConfig ssh, int deploys,
                 std::chrono::milliseconds lockWait = std::chrono::minutes(30))
      : ports_(ports), ssh_(std::move(ssh)), deploys_(deploys), lockWait_(lockWait) {}
  std::vector<DeployHostOutcome> deploy(const DeployInput& input, StageListener& listener) override;

 private:
  class LimitedDeployer;
  std::optional<DeployHostOutcome> alreadyRunning(const DeployInput& input, const DeployHost& h,
                                                  const Target& target);
  DeployPorts ports_;
  SshConfig ssh_;
  Slots deploys_;
  std::chrono::milliseconds lockWait_;
};

// Deploy targets for `hosts` at `sha` of the flake in `gitDir`: the config's `hosts:` entry,
// else clan.core.networking.targetHost / deployment.targetHost from the flake, else the
// host's name. Never throws for a host whose options do not evaluate (it gets its name). A
// target text from the flake that is not [user@]host[:port] leaves the host out of the result
// and puts the reason in `problems`.
std::map<std::string, Target> resolveTargets(nix::NixCli& nix, const RepoConfig& repo,
                                             const std::filesystem::path& gitDir,
                                             const std::string& sha,
                                             const std::vector<std::string>& hosts,
                                             std::map<std::string, std::string>& problems);

}  // namespace runner::scheduler
