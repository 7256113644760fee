// The exact and auto planners (DESIGN.md §5): Nix is the ground truth. Exact evaluates every
// host's `config.system.build.toplevel.drvPath` at both commits, straight from the repository
// (`git+file://…?rev=`, bare repositories included), and marks affected exactly the hosts
// whose drvPath differs (reason `drv`, with both paths). Auto takes a static plan and
// evaluates only the hosts it marks affected: hosts static calls unaffected are never
// evaluated.
//
// Caching: drvPaths go into the DrvPathCache under (commit tree hash, host), so a re-plan of
// the same trees runs no nix process at all. A host whose derivation closure mentions the
// commit's own identity (rev, shortRev, lastModified[Date]: `system.configurationRevision =
// self.rev` and friends) is cached under (tree@commit, host) instead, because the same tree at
// another commit gives a different drvPath. The host list is cached under (tree, "#hosts"), a
// host the tree does not have as (tree, host) = "#missing", and self-revision verdicts under
// ("self-revision:" + oldDrv, newDrv). Hosts that fail to evaluate are not cached.
//
// Self-revision-only: when the two derivation closures are equal after substituting the old
// commit's rev/shortRev/lastModified/lastModifiedDate/narHash/source path by the new one's
// (and the output paths of inputs found equivalent this way, matched by name, recursively),
// the host gets reason `self-revision-only` instead of `drv`. It stays affected; a caller that
// honours RepoConfig::skipSelfRevisionOnly drops it with dropSelfRevisionOnly(). One
// exception keeps `drv`: a derivation that reads a path *inside* the source
// ("${self}/files/x") whose files changed.
//
// A host that fails to evaluate is reported with Nix's error (HostPlan::evalError) and stays
// affected (the safe answer); it never fails the plan. A flake that does not evaluate at the new
// commit at all (flake.nix or flake.lock broken: not even the host list) throws PlanError: a
// failed plan, never an empty one. Failures of git or of Nix as a whole (nix missing) throw.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/drv_cache.h"
#include "runner/core/log.h"
#include "runner/core/plan.h"
#include "runner/git/repository.h"
#include "runner/nix/nix_cli.h"
#include "runner/plan/static_planner.h"

namespace runner::plan {

struct ExactOptions {
  std::string repoLabel;          // Plan::repo ("alice/infra" or a path)
  std::vector<HostConfig> hosts;  // config override: exactly these hosts (empty: every host)
  // At most this many `nix eval` processes at once (Concurrency::evals). The two commits are
  // evaluated concurrently, each getting half; within a commit, up to 3 hosts share one
  // process and more are split across min(its half, hosts / 2) processes. (Measured on the
  // reference machine, 2 cores: bench/RESULTS.md, "Evaluation parallelism".)
  int evalWorkers = 2;
  bool detectSelfRevision = true;
  DrvPathCache* cache = nullptr;  // not owned; nullptr: nothing is cached
  Logger* log = nullptr;          // not owned; debug lines about cache hits and evaluations
  // The flake reference Nix evaluates for a commit; unset: nix::gitFlakeRef of the
  // repository. A fork's commits are evaluated through sources fetched beforehand
  // (nix::sourceFlakeRef), since the jail cannot read the repository.
  std::function<std::string(const std::string& sha)> flakeRefFor;
};

// Exact plan of fromSha..toSha (full commit shas). Hosts sorted by name; a host only at
// `to` is new-host (affected), one only at `from` removed-host (not affected).
// Throws GitError/InputError for bad commits, SysError when nix cannot be started.
// Not thread-safe with respect to `repo` (used on the calling thread only).
Plan planExact(git::Repository& repo, nix::NixCli& nix, const std::string& fromSha,
               const std::string& toSha, const ExactOptions& options = {});

// Refines `staticPlan` (from planStatic over the same repository and commits): the hosts it
// marks affected are evaluated at both commits and keep their static reasons plus `drv` /
// `self-revision-only` when Nix confirms a change, or become unaffected when their drvPath is
// the same. Other hosts are copied as they are. Plan::mode becomes Auto. When the static plan
// has no hosts at all (discovery failed) but something changed, every host is evaluated.
Plan planAuto(git::Repository& repo, nix::NixCli& nix, const Plan& staticPlan,
              const ExactOptions& options = {});

// Auto planning from scratch: planStatic, then planAuto above. When static planning fails
// (PlanError: its parser or model falls short, or the flake is broken) every host is evaluated,
// so only Nix's own verdict fails the plan.
Plan planAuto(git::Repository& repo, nix::NixCli& nix, const std::string& fromSha,
              const std::string& toSha, const StaticOptions& staticOptions,
              const ExactOptions& options = {});

// RepoConfig::skipSelfRevisionOnly: hosts whose only reason is self-revision-only become
// unaffected (the reason stays, for the record). Returns how many hosts it changed.
int dropSelfRevisionOnly(Plan& plan);

}  // namespace runner::plan
