// Nix remote builders for trusted builds (issue 16, config `build:`). Turns the configured
// builders into what one `nix build` needs: `--builders` in Nix's own syntax,
// `--builders-use-substitutes`, `--max-jobs` for local builds, and NIX_SSHOPTS naming an
// OpenSSH client config this class writes (per builder host: port, user, identity; for all:
// the pinned known_hosts, StrictHostKeyChecking yes, BatchMode, ConnectTimeout). Nix 2.8
// takes no port in a store URI and one NIX_SSHOPTS for all builders, hence the config file.
//
// Before a build, probe() checks each builder with `nix store ping --store URI` (bounded by a
// timeout): Nix itself postpones a derivation whose only matching builder it cannot reach and
// retries it until the build timeout, which looks like a hang. Unreachable builders are left
// out of that build, with Nix's and ssh's words in each host's log; when none is left and
// local builds are off (`max_jobs: 0`), the hosts fail with those words instead of building.
//
// Never for builds of forks: their builds run in the jail (README "Untrusted evaluation"),
// which cannot read the builders' keys, and a fork's derivations must not run on machines the
// runner trusts with its key.
//
// Thread-safe after construction (probe() runs its own processes; nothing is cached).
#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/process.h"

namespace runner::build {

// What one nix build gets from the builders that answered.
struct RemoteBuildSetup {
  std::vector<std::string> nixArgs;        // --option builders …
  std::map<std::string, std::string> env;  // NIX_SSHOPTS
  std::optional<int> maxJobs;              // build.max_jobs (local jobs; 0: builders only)
  std::vector<std::string> notes;          // lines for each host's log
  // Set when no builder answered and local builds are off: the hosts fail with it.
  std::optional<std::string> failure;
};

class RemoteBuilders {
 public:
  // Writes the client config under `dir` (created; replaced). `ssh` gives the default
  // identity file, known_hosts and connect timeout. `procs` must outlive this object.
  // Throws InputError when a path has whitespace (NIX_SSHOPTS is split on it) or no
  // known_hosts is configured (builders' host keys must be pinned); SysError when the file
  // cannot be written.
  RemoteBuilders(ProcessRunner& procs, BuildConfig config, const SshConfig& ssh,
                 const std::filesystem::path& dir);

  // True when builders are configured or local jobs are limited (otherwise setup() is empty).
  bool active() const { return !config_.builders.empty() || config_.maxJobs.has_value(); }

  // Probes every builder (in parallel, each bounded by connect timeout + 20 s) and returns the
  // arguments for one build with those that answered.
  RemoteBuildSetup setup() const;

  // Nix's `builders` text for `builders` (one entry per line).
  static std::string nixBuildersSpec(const std::vector<RemoteBuilderConfig>& builders,
                                     const std::optional<std::filesystem::path>& defaultKey);

  const std::filesystem::path& sshConfigFile() const { return sshConfigFile_; }

 private:
  // nullopt when `b` answered; else why not (Nix's message, one paragraph).
  std::optional<std::string> probe(const RemoteBuilderConfig& b) const;

  ProcessRunner& procs_;
  BuildConfig config_;
  std::optional<std::filesystem::path> defaultKey_;
  std::chrono::seconds connectTimeout_;
  std::filesystem::path sshConfigFile_;
};

}  // namespace runner::build
