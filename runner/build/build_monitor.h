// Turns the internal-json log of one `nix build` of several hosts' toplevels into per-host
// progress and results. A derivation belongs to every host whose closure contains it, so a
// shared derivation's log lines and progress count for each of those hosts.
//
// Pure: events in, state out (no processes, no files). Builder feeds it from NixCli::build;
// tests feed it recorded logs. Not thread-safe (one build, one thread).
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "runner/nix/derivation.h"
#include "runner/nix/internal_json.h"
#include "runner/nix/nix_cli.h"

namespace runner::build {

// What to build for one host: its toplevel derivation.
struct HostTarget {
  std::string host;
  std::string drvPath;
  friend bool operator==(const HostTarget&, const HostTarget&) = default;
};

// NeedsApproval: not built, because its closure would run a fixed-output derivation (which
// has network access) for untrusted code that nobody approved (BuildOptions).
enum class HostState { Queued, Building, Built, Failed, TimedOut, NeedsApproval };
const char* toString(HostState s);

struct HostProgress {
  std::string host;
  HostState state = HostState::Queued;
  int toBuild = 0;            // derivations of its closure this build runs
  int built = 0;              // of those, finished successfully
  int running = 0;            // of those, building now
  int failed = 0;             // of those, failed
  uint64_t bytesFetched = 0;  // substituted paths of its closure (download progress)
  uint64_t bytesExpected = 0;
  std::string currentDrv;  // name of a derivation of its closure being built now, or ""
  std::string phase;       // that build's current phase (setPhase), or ""
};

struct BuildProgress {
  std::vector<HostProgress> hosts;  // sorted by host name
  // Nix's own counters for the whole build (the "builds" activity).
  int64_t drvsDone = 0, drvsExpected = 0, drvsRunning = 0, drvsFailed = 0;
  uint64_t bytesDone = 0, bytesExpected = 0;  // downloads of the whole build
};

struct HostBuildResult {
  std::string host;
  HostState state = HostState::Queued;  // Built, Failed or TimedOut at the end
  std::string drvPath;
  std::optional<std::string> outPath;     // the toplevel's out path (also when it failed)
  std::chrono::milliseconds duration{0};  // from the start of the build until its toplevel
                                          // was done (0 when nothing had to be built)
  std::optional<std::string> failedDrv;   // the derivation whose builder failed
  std::string logTail;                    // last lines of that derivation's log + Nix's error
  std::string message;                    // one line for people: "built", "failed: …"
  bool ok() const { return state == HostState::Built; }
};

class BuildMonitor {
 public:
  // `closure`: show-derivation -r of all targets; `willBuild`: the dry run's derivations.
  // `outputValid(path)` answers whether a store path exists now (to tell a finished build
  // from a failed one when its activity stops). `tailLines`: lines kept per derivation.
  BuildMonitor(std::vector<HostTarget> targets, const nix::DerivationSet& closure,
               const std::set<std::string>& willBuild,
               std::function<bool(const std::string&)> outputValid, size_t tailLines = 25);

  // Called for each log line of a derivation, once per host whose closure contains it.
  std::function<void(const std::string& host, const std::string& drvName, std::string_view line)>
      onHostLine;

  // Feeds one event; `elapsed` is the time since the build started. Returns true when the
  // progress visible in snapshot() changed.
  bool handle(const nix::LogEvent& event, std::chrono::milliseconds elapsed);

  BuildProgress snapshot() const;
  // Hosts whose state changed to Built/Failed since the last call (for observers).
  std::vector<std::string> takeFinishedHosts();

  // The per-host results once the nix process has ended. Sorted by host name.
  std::vector<HostBuildResult> finish(const nix::BuildRun& run, std::chrono::milliseconds elapsed);

 private:
  struct DrvState {
    std::vector<std::string> hosts;  // hosts whose closure contains it
    bool willBuild = false;
    bool running = false, done = false, failed = false;
    // Build activities open for it: over ssh-ng the remote daemon's own activity arrives
    // inside the local one, and only the outer one's end means the output is here.
    int openActivities = 0;
    std::string phase;
    std::deque<std::string> tail;
  };
  struct HostInfo {
    HostTarget target;
    std::set<std::string> closure;
    std::optional<std::chrono::milliseconds> finishedAt;
    HostState reported = HostState::Queued;
  };
  HostProgress progressOf(const HostInfo& h) const;
  HostState stateOf(const HostInfo& h) const;
  void markFailed(const std::string& drv);

  std::map<std::string, HostInfo> hosts_;
  std::map<std::string, DrvState> drvs_;
  std::map<std::string, std::string> outputToDrv_;
  std::map<std::string, std::vector<std::string>> outputsOf_;
  std::map<uint64_t, std::string> buildActivities_;  // activity id -> drv
  std::map<uint64_t, std::string> copyActivities_;   // activity id -> drv (of the path fetched)
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> copyBytes_;  // id -> done, expected
  std::set<uint64_t> buildsCounter_;                             // "builds" activity ids
  std::function<bool(const std::string&)> outputValid_;
  size_t tailLines_;
  BuildProgress totals_;
  std::vector<std::string> errors_;
  std::vector<std::string> finishedQueue_;
};

// The drv named in one of Nix's build error messages ("builder for '/nix/store/…drv' failed
// with exit code 1", "building of '/nix/store/…drv!out' … timed out …", "cannot build
// derivation '…drv': …"); nullopt when it names none.
std::optional<std::string> drvInError(std::string_view message);

}  // namespace runner::build
