// Stage 3 (DESIGN.md §6): deploying built system closures to machines over SSH. This header
// holds the values the stage takes and returns, the observer through which it reports live
// progress, and the HostDeployer port the rollout drives (so rollout policy is tested with a
// fake deployer, and the real protocol — ssh_deployer.h — with real sshd test hosts).
//
// Expected outcomes are values (HostOutcome::result): a host that fails to activate, rolls
// back, cannot be reached, or is refused (locked, older commit, changed host key) is reported,
// never thrown. Exceptions mean the runner itself is broken (database unreadable, …).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "runner/core/config.h"

namespace runner::deploy {

// A secret uploaded to the host at deploy time, outside the Nix store: Colmena's
// deployment.keys.<attr> (src/nix/hive/options.nix there). Exactly one source is set. The
// content is read on the runner only while the host is deployed (HostRun), and never goes
// into a log, a record or an outcome.
struct KeySpec {
  enum class Source { Text, File, Command };
  enum class UploadAt { PreActivation, PostActivation };
  std::string name;  // the file's name in destDir (no '/')
  Source source = Source::Text;
  std::string text;                     // Source::Text: the content itself
  std::string keyFile;                  // Source::File: a path on the runner
  std::vector<std::string> keyCommand;  // Source::Command: argv run on the runner, no shell
  std::string destDir = "/run/keys";    // absolute
  std::string user = "root";
  std::string group = "root";
  std::string permissions = "0600";  // octal, 3 or 4 digits
  UploadAt uploadAt = UploadAt::PreActivation;

  std::string destination() const { return destDir + "/" + name; }
  // "db-password -> /run/keys/db-password (postgres:postgres 0640, post-activation)"
  std::string describe() const;
};
// Reads one key's declaration as `evalKeysFn` prints it. Throws InputError naming the key for
// anything that is not a valid declaration (no or several sources, a name with '/', a
// relative destDir, permissions that are not octal, an unknown uploadAt, unsafe characters in
// user or group).
KeySpec parseKeySpec(const std::string& attr, const nlohmann::json& j);

// One host to deploy: where it is and what goes there.
struct HostJob {
  std::string host;       // the nixosConfigurations name
  Target target;          // [user@]host[:port]
  std::string storePath;  // the built toplevel (config.system.build.toplevel), on this machine
  SwitchAction action = SwitchAction::Switch;
  std::vector<KeySpec> keys;  // uploaded before (or right after) activation
  // From Colmena's deployment.sshOptions (ssh_options.h): instead of the runner's ssh settings.
  std::optional<std::filesystem::path> identityFile;
  std::optional<std::chrono::seconds> connectTimeout;
  // When the login user is not root: the argv every command on the host runs under (Colmena's
  // privilegeEscalationCommand; default `sudo -n -H --`), nix copy's remote nix-store too.
  std::vector<std::string> escalation;
  // Colmena's deployment.replaceUnknownProfiles = false: refuse a host whose system profile
  // is not one Switchyard deployed there.
  bool replaceUnknownProfiles = true;
  // Files that must exist on the host before anything is copied, and why (Clan's sops age key).
  std::vector<std::pair<std::string, std::string>> requiredFiles;
};

// What this deploy is, for every host of a run.
struct DeployRequest {
  std::string repo;     // the repository's name in records ("alice/infra" or a path)
  std::string sha;      // the commit the closures were built from (40 hex)
  bool force = false;   // allow a commit that is not a descendant of the deployed one
  bool dryRun = false;  // inspect and print; change nothing
  std::optional<int64_t> runId;
  // Asked before each host starts (runRollout): a reason skips the host. Unset: never.
  std::function<std::optional<std::string>()> stopRequested;
  std::string forge;  // the repository's forge in records ("" for hook/CLI-only ones)
};

enum class HostResult {
  Succeeded,    // activated, health checks passed, confirmed
  Failed,       // something went wrong and the host may be in an unknown state (see reason)
  RolledBack,   // activation failed or was not confirmed; the previous generation is back
  Unreachable,  // no SSH connection (before anything was changed)
  Refused,      // not attempted: locked, older commit, host key mismatch
  Skipped,      // not attempted because the rollout stopped (stop_on_failure)
  DryRun,       // --dry-run: inspected only
};
// "succeeded", "failed", "rolled-back", "unreachable", "refused", "skipped", "dry-run"
// (the first five are the values of store::DeploymentRecord::result).
std::string_view resultName(HostResult r);
// The words for tables: "rolled back" instead of "rolled-back".
std::string resultLabel(HostResult r);
// True for results that stop a rollout with stop_on_failure.
bool isFailure(HostResult r);

enum class Step {
  Lock,      // take the host's deploy lock
  Ancestry,  // the commit must descend from the deployed one
  Connect,   // SSH with pinned host keys (reachability)
  Inspect,   // current generation and store path on the target
  Copy,      // nix copy --to ssh://
  Keys,      // deployment.keys read on the runner, the pre-activation ones uploaded
  Activate,  // set the profile and switch, detached, watched by the target's watchdog
  Health,    // new connection (proof the new system lets us in), keys, health and HTTP checks
  Confirm,   // the confirmation the watchdog waits for
  Verify,    // after a rollback: the previous generation is active again
  Record,    // the result in the database
};
std::string_view stepName(Step s);  // "lock", "ancestry", …

struct HostOutcome {
  std::string host;
  HostResult result = HostResult::Failed;
  std::string reason;  // one line; "" on success
  std::optional<Step> failedStep;
  std::string storePath;                    // what was (to be) deployed
  std::optional<std::string> previousPath;  // what ran before
  std::optional<int64_t> previousGeneration;
  std::optional<int64_t> newGeneration;  // the generation the deploy created
  std::vector<std::pair<Step, std::chrono::milliseconds>> durations;  // in the order run
  std::chrono::milliseconds total{0};
  std::string activationLog;        // the last lines of switch-to-configuration's output
  std::string plan;                 // dry run: what would be done, one step per line
  std::string dryActivate;          // dry run: `switch-to-configuration dry-activate` output
  std::optional<int64_t> recordId;  // the Deployments row, when recorded

  // Skipped by the host's deploy policy (deploy: manual | never, Clan's
  // requireExplicitUpdate): not an error, `reason` says why.
  bool heldBack = false;

  bool ok() const {
    return result == HostResult::Succeeded || result == HostResult::DryRun || heldBack;
  }
  std::chrono::milliseconds duration(Step s) const;  // 0 when the step did not run
};

// Live progress. Called from the hosts' worker threads, several at once: implementations
// must be thread-safe and quick (they run on the deploy's critical path).
class DeployObserver {
 public:
  virtual ~DeployObserver() = default;
  virtual void stepStarted(const std::string& host, Step step, std::string_view detail) {}
  virtual void stepFinished(const std::string& host, Step step, std::chrono::milliseconds took,
                            std::string_view detail) {}
  // A line of output from the host's activation or from nix copy.
  virtual void logLine(const std::string& host, Step step, std::string_view line) {}
  virtual void hostFinished(const HostOutcome& outcome) {}
};

// Discards everything.
class NullDeployObserver final : public DeployObserver {};

// The per-host protocol behind a port, so the rollout can be driven with a fake.
class HostDeployer {
 public:
  virtual ~HostDeployer() = default;
  // Deploys one host and returns the outcome (never throws for expected failures; see the
  // header comment). Reports steps and log lines to `observer`; hostFinished is the caller's
  // (the rollout's) to call. Thread-safe: the rollout calls it for several hosts at once.
  virtual HostOutcome deploy(const HostJob& job, const DeployRequest& request,
                             DeployObserver& observer) = 0;
};

}  // namespace runner::deploy
