// The three stages (DESIGN.md §1): plan, build, deploy. Small ports so the scheduler's rules
// (supersede, forks never deploy, re-runs of named hosts, restart recovery) are tested with
// fakes, while each stage's folder implements its port with the real thing:
// plan/plan_stage.h (the planner), build/build_stage.h (nix build), deploy/deploy_stage.h
// (SSH rollout). The daemon's scheduler and the CLI commands drive the same implementations.
//
// Stages never call each other: their driver (the scheduler, a CLI command) hands the Plan to the
// build stage and the build's out paths to the deploy stage. Expected outcomes (a host fails to
// build, a deploy is refused) are values; exceptions mean the stage as a whole could not run (the
// run fails with the error's description).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/plan.h"
#include "runner/core/run.h"
#include "runner/core/slots.h"

namespace runner {

struct PlanInput {
  const RepoConfig* repo = nullptr;       // never null
  std::filesystem::path gitDir;           // the mirror (or the configured local repository)
  std::optional<std::string> from;        // base commit; nullopt: no base (every host affected)
  std::string to;                         // the run's commit
  std::filesystem::path logFile;          // where the stage may write what it did
  bool untrusted = false;                 // a fork's code: evaluated in the jail only
  SlotClass priority = SlotClass::Check;  // whose evaluation slots it takes (slots.h)
};

class PlanStage {
 public:
  virtual ~PlanStage() = default;
  // The plan of from..to (every host, affected or not). Throws for failures of git/Nix as a
  // whole (bad commit, broken flake.nix); a host that does not evaluate is in the plan.
  virtual Plan plan(const PlanInput& input) = 0;
};

struct BuildHost {
  std::string host;
  std::optional<std::string> drvPath;  // from the plan when it knows it
};

struct BuildInput {
  const RepoConfig* repo = nullptr;
  std::filesystem::path gitDir;
  std::string sha;
  std::vector<BuildHost> hosts;
  std::filesystem::path logDir;     // <logDir>/<host>.log
  std::filesystem::path gcRootDir;  // <gcRootDir>/<host>
  bool untrusted = false;           // a fork's code: evaluated and built in the jail only
  SlotClass priority = SlotClass::Check;
  // Untrusted code: the commit whose flake.lock is trusted (the pull request's base), and
  // whether a writer approved `sha` (its fixed-output derivations may then run).
  std::optional<std::string> baseSha;
  bool approved = false;
  int maxJobs = 0;  // nix --max-jobs; 0: nix.conf's
};

struct BuildHostOutcome {
  std::string host;
  bool ok = false;
  std::optional<std::string> drvPath;
  std::optional<std::string> outPath;
  std::string summary;  // "built in 2m14s", "failed: builder for … exited with 1"
  std::string logTail;
  bool needsApproval = false;  // not built: untrusted code that needs a writer's approval
};

// Live progress from a stage; called on the stage's threads, must be quick and thread-safe.
class StageListener {
 public:
  virtual ~StageListener() = default;
  virtual void hostStarted(const std::string& host, const std::string& what) {}
  virtual void hostProgress(const std::string& host, const std::string& what) {}
  // A line of the host's output (deploy: the activation's log), also in its log file.
  virtual void hostLine(const std::string& host, std::string_view line) {}
  // The stage is done with the host: "succeeded", "rolled back: activation failed …".
  virtual void hostFinished(const std::string& host, const std::string& what) {}
  // A step of the host's stage started or finished ("copy", "activate", "health", …): the
  // run page shows when each ran (RunHostView::steps).
  virtual void hostStep(const std::string& host, std::string_view step, bool finished) {}
};

class BuildStage {
 public:
  virtual ~BuildStage() = default;
  // One outcome per requested host, in any order. Throws when the build could not run.
  virtual std::vector<BuildHostOutcome> build(const BuildInput& input, StageListener& listener) = 0;
};

struct DeployHost {
  std::string host;
  std::string outPath;
  // Restart recovery: first ask the host what it runs; if it already runs `outPath`, count
  // it deployed without deploying again.
  bool checkCurrentFirst = false;
};

struct DeployInput {
  const RepoConfig* repo = nullptr;
  std::filesystem::path gitDir;
  std::string sha;
  int64_t runId = 0;
  bool force = false;
  bool dryRun = false;  // inspect the hosts, change nothing (the CLI's --dry-run)
  std::vector<DeployHost> hosts;
  std::filesystem::path logDir;  // deploy output is appended to <logDir>/<host>.log
  // Hosts a person named for this deploy (a re-run's hosts, `switchyard deploy HOST`; not
  // hosts selected by a tag): only these are deployed when their policy is `manual`
  // (config `deploy: manual`, Clan's requireExplicitUpdate).
  std::vector<std::string> named;
  // Asked before each host's deploy starts: a reason ("cancelled by …") skips the host; a
  // deploy under way is never cut short. Unset: never. Called on the rollout's threads.
  std::function<std::optional<std::string>()> stopRequested;
};

struct DeployHostOutcome {
  std::string host;
  HostState state = HostState::Failed;  // Succeeded, Failed, RolledBack, Unreachable, Refused,
                                        // Skipped
  std::string summary;
};

class DeployStage {
 public:
  virtual ~DeployStage() = default;
  // Rolls the hosts out (canaries, max_parallel, stop_on_failure from the repo's config)
  // and returns one outcome per host. Throws when the deploy could not run at all.
  virtual std::vector<DeployHostOutcome> deploy(const DeployInput& input,
                                                StageListener& listener) = 0;
};

}  // namespace runner
