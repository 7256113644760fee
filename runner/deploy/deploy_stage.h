// The deploy stage (core/stages.h) over SSH: deploy targets from the config or the flake, the
// repository's rollout (canaries, max_parallel, stop_on_failure) with deploy/ssh_deployer.h,
// per-host logs, and a cap on the hosts being deployed at once across every run
// (Concurrency::deploys). The daemon's scheduler and `switchyard deploy` drive it.
//
// Thread-safe: several runs call it at once.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <semaphore>
#include <string>
#include <variant>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/http_client.h"
#include "runner/core/log.h"
#include "runner/core/process.h"
#include "runner/core/stages.h"
#include "runner/deploy/deploy.h"
#include "runner/deploy/host_lock.h"
#include "runner/nix/nix_cli.h"
#include "runner/ssh/ssh.h"
#include "runner/store/deployments.h"
#include "runner/store/host_probes.h"

namespace runner::deploy {

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

// What the SSH deploy stage needs; each must outlive the stage and be thread-safe.
struct DeployPorts {
  ssh::Connector& ssh;
  ProcessRunner& processes;
  HttpClient& http;
  HostLockGuard& locks;
  store::Deployments& deployments;
  nix::NixCli& nix;  // target discovery (clan / colmena options)
  const Clock& clock;
  Logger& log;
  const Redactor* redactor = nullptr;  // scrubs the deploy logs; may be null
  // Where a deploy's connection counts as a look at the host (the fleet's last-seen time, and
  // the target a retry_unreachable probe uses for hosts whose target comes from the flake);
  // may be null.
  store::HostProbes* probes = nullptr;
};

class SshDeployStage final : public DeployStage {
 public:
  // `ssh` is Config::ssh; `deploys` is Config::concurrency.deploys. `lockWait` is how long a
  // host held by another deploy is waited for before it is refused.
  SshDeployStage(DeployPorts ports, SshConfig ssh, int deploys,
                 std::chrono::milliseconds lockWait = std::chrono::minutes(30))
      : ports_(ports), ssh_(std::move(ssh)), deploys_(deploys), lockWait_(lockWait) {}
  std::vector<DeployHostOutcome> deploy(const DeployInput& input, StageListener& listener) override;

  // The same deploy with each host's whole outcome, for callers that show more than the
  // port's summary (the CLI: generations, step durations, a dry run's plan). A host whose
  // target is refused is Refused with the reason; `targets` are the hosts' resolved targets.
  struct Result {
    std::vector<HostOutcome> hosts;
    std::map<std::string, Target> targets;
  };
  Result deployHosts(const DeployInput& input, StageListener& listener);

 private:
  class LimitedDeployer;
  struct Run;
  Run run(const DeployInput& input, StageListener& listener);
  std::optional<DeployHostOutcome> alreadyRunning(const DeployInput& input, const DeployHost& h,
                                                  const HostJob& job);
  DeployPorts ports_;
  SshConfig ssh_;
  Slots deploys_;
  std::chrono::milliseconds lockWait_;
};

// What the flake says about deploying a host, besides its target (NixCli::evalHostInfo).
struct HostFacts {
  std::vector<std::string> tags;        // Colmena deployment.tags
  bool requireExplicitUpdate = false;   // Clan clan.core.deployment.requireExplicitUpdate
  std::optional<std::string> user;      // Colmena deployment.targetUser
  std::optional<int> port;              // Colmena deployment.targetPort
  std::vector<std::string> sshOptions;  // Colmena deployment.sshOptions (ssh_options.h)
  // Colmena deployment.privilegeEscalationCommand (argv; Colmena's default is sudo -H --);
  // used when the login user is not root.
  std::optional<std::vector<std::string>> escalation;
  bool replaceUnknownProfiles = true;  // Colmena deployment.replaceUnknownProfiles
  // Clan vars (clan.core.vars): the secret store and how many secret files it deploys.
  struct ClanVars {
    std::string store = "sops";             // clan.core.vars.settings.secretStore
    int secrets = 0;                        // secret files with deploy = true
    int activation = 0;                     // of those, neededFor = "activation"
    std::optional<std::string> ageKeyFile;  // sops.age.keyFile on the host
  };
  std::optional<ClanVars> clanVars;
};
// Reads the facts from one host's evalHostInfo value (missing or odd fields: defaults).
HostFacts hostFactsFrom(const nix::HostValue* info);

// Why a host whose Clan vars need an upload at deploy time that the runner cannot make is
// refused (README Decisions, "Clan vars"), or nullopt when its secrets need none.
std::optional<std::string> clanVarsProblem(const HostFacts::ClanVars& vars);

// Why `host` is not deployed by this deploy under its policy (the config's `deploy:`, else
// `manual` when Clan's requireExplicitUpdate is set), or nullopt when it is deployed.
// `named`: a person named the host for this deploy.
std::optional<std::string> heldBackReason(const std::string& host, const RepoConfig& repo,
                                          const HostFacts& facts, bool named);
// The switch action the config gives `host` (default switch).
SwitchAction actionFor(const std::string& host, const RepoConfig& repo);

// How to reach and deploy `job.host` beyond its target text (issue 18): the login user
// (config `user:` > a user in the config's target > Colmena targetUser > sshOptions -l), the
// port (config target > Colmena targetPort > sshOptions -p), sshOptions' identity file and
// connect timeout, the escalation for a login user that is not root, replaceUnknownProfiles
// and Clan's sops age key. Throws InputError when deployment.sshOptions is refused
// (ssh_options.h).
void applyHostFacts(HostJob& job, const RepoConfig& repo, const HostFacts& facts,
                    const std::string& targetFrom);

// The hosts `selector` stands for: "@tag" every host of `hosts` whose tags hold the tag (in
// the order of `hosts`), any other text itself.
std::vector<std::string> selectHosts(const std::string& selector,
                                     const std::vector<std::string>& hosts,
                                     const std::map<std::string, HostFacts>& facts);

// Per host: its Colmena deployment.keys, or why they cannot be used.
using HostKeys = std::variant<std::vector<KeySpec>, std::string>;

// Deploy targets and facts for `hosts`, from one evaluation of the flake.
struct FleetInfo {
  std::map<std::string, Target> targets;
  std::map<std::string, std::string> targetFrom;  // "config" | "clan" | "colmena" | "name"
  std::map<std::string, std::string> problems;    // hosts whose target text is refused: why
  std::map<std::string, HostFacts> facts;
  // With `withKeys`: every host's keys (the text of `text` keys: keep it out of logs).
  std::map<std::string, HostKeys> keys;
};
// `withKeys`: the keys are evaluated in the same nix process as the targets (a host whose
// evaluation then fails is evaluated again without them, so a broken key declaration never
// hides its target, and again for the keys alone, for Nix's message).
FleetInfo discoverFleet(nix::NixCli& nix, const RepoConfig& repo,
                        const std::filesystem::path& gitDir, const std::string& sha,
                        const std::vector<std::string>& hosts, bool withKeys = false);

// Colmena deployment.keys of `hosts` at the flake reference (one nix process). Per host:
// the keys, or why they cannot be used (the declarations do not evaluate or are invalid).
// The text of `text` keys is in the result: keep it out of logs.
std::map<std::string, HostKeys> evalKeys(nix::NixCli& nix, const std::string& flakeRef,
                                         const std::vector<std::string>& hosts);

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

}  // namespace runner::deploy
