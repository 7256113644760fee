// Stage 2 (DESIGN.md §1): builds the toplevels of the requested hosts with ONE `nix build`
// (bench/RESULTS.md: faster than one per host, and shared derivations are built once), turns
// its internal-json log into per-host progress for an observer, writes each host's log file
// (every line of every derivation in the host's closure, so a shared derivation's log appears
// in each host's file), roots the outputs for the garbage collector, and returns a result per
// host: out path, duration, success or the failing derivation with its log tail.
//
// A failed or timed-out build is a value (HostBuildResult), never an exception. The timeout
// (RepoConfig::buildTimeout) kills nix's process group, and the results say so.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/build/build_monitor.h"
#include "runner/core/clock.h"
#include "runner/nix/nix_cli.h"

namespace runner {
class Redactor;
}

namespace runner::build {

struct BuildOptions {
  std::chrono::milliseconds timeout{0};   // whole build; 0: none (kills nix's process group)
  std::chrono::seconds drvTimeout{0};     // each derivation (nix --timeout); 0: nix.conf's
  std::optional<int> maxJobs;             // nix --max-jobs
  std::chrono::seconds maxSilentTime{0};  // nix --max-silent-time; 0: nix.conf's
  // Untrusted code nobody approved: a host whose closure would build a fixed-output
  // derivation (those run with network access: a fetcher could send anything anywhere) is
  // not built — HostState::NeedsApproval, naming them — and the other hosts build.
  bool refuseFixedOutput = false;
  // Per-host log files <logDir>/<host>.log (created, replaced). Empty: no files.
  std::filesystem::path logDir;
  // GC roots <gcRootDir>/<host> -> out path for every host that built. Empty: none (the
  // outputs may then be garbage collected at any time).
  std::filesystem::path gcRootDir;
  size_t tailLines = 25;  // lines of the failing derivation's log in HostBuildResult::logTail
  // Remote builders (remote_builders.h): extra nix arguments and environment of the build.
  std::vector<std::string> nixArgs;
  std::map<std::string, std::string> nixEnv;
  // Lines written at the top of each host's log (which builders answered).
  std::vector<std::string> notes;
  // Set: nothing is built; every host fails with this message (no builder answered).
  std::optional<std::string> refusal;
  // Log lines pass through it (os::LogFile): secrets redacted, control characters made
  // visible. Not owned; may be null.
  const Redactor* redactor = nullptr;
};

struct BuildResult {
  std::vector<HostBuildResult> hosts;  // sorted by host name
  std::chrono::milliseconds duration{0};
  bool timedOut = false;
  int nixExitStatus = 0;
  std::vector<std::string> errors;  // Nix's error messages
  bool ok() const;                  // every host built
};

// Receives progress on the thread that called Builder::build, as the build goes.
class BuildObserver {
 public:
  virtual ~BuildObserver() = default;
  // After each event that changed what snapshot() shows (often: throttle if you draw).
  virtual void onProgress(const BuildProgress& progress, std::chrono::milliseconds elapsed) {}
  // A host's toplevel is built, or something in its closure failed.
  virtual void onHostFinished(const HostProgress& host, std::chrono::milliseconds elapsed) {}
  // One line of a derivation's build log, for a host whose closure contains it.
  virtual void onLogLine(const std::string& host, const std::string& drvName,
                         std::string_view line) {}
  // The final results (after GC roots were added).
  virtual void onFinished(const BuildResult& result) {}
};

class Builder {
 public:
  // `nix` and `clock` must outlive the builder.
  Builder(nix::NixCli& nix, const Clock& clock) : nix_(nix), clock_(clock) {}

  // Builds `targets` (unique hosts; empty: an empty result). Runs show-derivation and a dry
  // run first (closures and what will be built), then one nix build, then GC roots.
  // Throws NixError when the derivations cannot be read (e.g. not in the store), SysError when
  // nix cannot start or a log file cannot be written.
  BuildResult build(const std::vector<HostTarget>& targets, const BuildOptions& options,
                    BuildObserver* observer = nullptr);

 private:
  nix::NixCli& nix_;
  const Clock& clock_;
};

}  // namespace runner::build
