// The static planner (DESIGN.md §5, "static"): which hosts a change between two commits may
// affect, from git objects alone, in milliseconds — without evaluating Nix. It combines the
// flake.lock diff, the changed files, and per host the files and inputs its configuration
// reaches. Soundness rule: it may over-report, it must never miss; what it cannot follow
// marks the host affected with reason `dynamic`.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/plan.h"
#include "runner/git/repository.h"
#include "runner/plan/evaluator.h"
#include "runner/plan/source_tree.h"

namespace runner::plan {

// What a plan cost (benchmarks: how close a fleet comes to EvalLimits::maxWork).
struct StaticStats {
  uint64_t fromWork = 0;  // units of work of the old commit's evaluation (0: none)
  uint64_t toWork = 0;    // of the new commit's
};

struct StaticOptions {
  std::string repoLabel;          // Plan::repo ("alice/infra" or a path)
  std::vector<HostConfig> hosts;  // config override: exactly these hosts
  EvalLimits limits;              // per commit's evaluation
  StaticStats* stats = nullptr;   // filled in when set and the plan was made
};

// Plans `fromSha`..`toSha` (full shas). Throws InputError when `to` has no flake.nix or a sha
// is not a commit; PlanError when the flake at `to` cannot be planned: its flake.nix or
// flake.lock does not parse, or host discovery failed and no host is known from the old
// commit or the config (a plan never silently shrinks). When discovery fails or is
// incomplete but hosts are known, they are reported dynamic and Plan::discoveryError says why.
Plan planStatic(git::Repository& repo, const std::string& fromSha, const std::string& toSha,
                const StaticOptions& opts = {});
// The same over two commits' files given directly (tests, the fuzz target): `filesChanged` is
// their diff; the shas only name the commits in messages.
Plan planStatic(CommitFiles& fromFiles, const std::string& fromSha, CommitFiles& toFiles,
                const std::string& toSha, std::vector<FileChange> filesChanged,
                const StaticOptions& opts = {});

// The host names the flake at `sha` defines (static discovery), sorted.
std::vector<std::string> discoverHosts(git::Repository& repo, const std::string& sha);

}  // namespace runner::plan
