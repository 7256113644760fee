// How a run's and its hosts' states read on a forge (DESIGN.md §7): the status contexts, the
// commit status state and words for each host state, the check run status/conclusion, and
// which runs deploy. Pure functions, so the whole table is testable without a forge; the
// reporter (forge_reporter.h) applies it.
//
//   host state      commit status   check run                 words (when no summary)
//   Pending         pending         queued                    "waiting to build/deploy"
//   Running         pending         in_progress               "building" / "deploying"
//   Succeeded       success         completed/success         "built in 2m14s" / "deployed in …"
//   NotAffected     success         completed/success         "not affected"
//   Failed          failure         completed/failure         "build failed" / "deploy failed"
//   RolledBack      failure         completed/failure         "rolled back"
//   Unreachable     error           completed/failure         "unreachable"
//   Refused         error           completed/failure         "refused"
//   Skipped         error           completed/skipped         "skipped"
//   Superseded      error           completed/cancelled       "superseded by run #N"
//   Interrupted     error           completed/cancelled       "interrupted: the runner stopped"
// A host's own summary (from the stage: "built in 2m14s", "rolled back: health check
// failed") is preferred over these defaults.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/core/forge.h"
#include "runner/core/plan.h"
#include "runner/core/run.h"

namespace runner::report {

// "switchyard/plan", "switchyard/build/<host>", "switchyard/deploy/<host>". Check runs use
// the same names, so branch protection can require the same checks in either mode.
std::string contextName(Stage stage, std::string_view host);

StatusState statusStateFor(HostState state);
CheckStatus checkStatusFor(HostState state);
// nullopt while the state is not final (Pending, Running).
std::optional<CheckConclusion> conclusionFor(HostState state);

// The words for `host` in `stage`: its summary when it has one (whitespace collapsed to
// single spaces), else the default of the table above. Durations come from the host's
// start and finish times when both are known.
std::string describeHost(const RunView& run, Stage stage, const RunHostView& host);

// "3 of 5 machines affected", "1 of 1 machine affected", "no machine affected (4 machines)",
// with ", 1 does not evaluate" when the plan says so. Removed hosts are not counted.
std::string describePlan(const Plan& plan);

// True when the run has a deploy stage: a deploy run, or a re-run that is not for a pull
// request (nor a fork) and not limited to plan or build. Pull requests never deploy.
bool runDeploys(const RunView& run);

// Check run annotations for a failure of `subject` (a host, or "plan") described by `words`,
// from its log: each place Nix's error trace names in a flake's source
// ("at /nix/store/<hash>-source/hosts/web1.nix:12:5:"), innermost first, without repeats,
// at most 10, with the log's first "error:" line as message; the first also carries the
// last 20 log lines. A log that names no place gives one annotation on flake.nix line 1 with
// those lines. The reporter does not know which store path is the repository's own source,
// so places in nixpkgs' own tree (lib/*.nix, nixos/, pkgs/) are left out. Empty log: none.
std::vector<CheckAnnotation> failureAnnotations(std::string_view subject, std::string_view words,
                                                std::string_view log);

// Collapses runs of whitespace (newlines included) to one space and trims.
std::string oneLine(std::string_view text);

}  // namespace runner::report
