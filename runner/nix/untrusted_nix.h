// How the plan and build stages evaluate and build a fork's code (README "Untrusted
// evaluation"): through `jail` (a NixCli with untrustedNixOptions) on sources that `sources`
// prepared (scheduler/untrusted_source.h implements UntrustedFlakes). When the runner cannot
// run the jail, `jail` is null and every fork's run fails with `unavailable` — it is never
// evaluated as the runner instead.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

#include "runner/core/config.h"
#include "runner/core/error.h"
#include "runner/nix/nix_cli.h"

namespace runner::nix {

// The flake reference the jail evaluates for a fork's commit. Thread-safe.
class UntrustedFlakes {
 public:
  virtual ~UntrustedFlakes() = default;
  // Commit `sha` of the repository at `gitDir`; `base`: the commit whose lock is trusted (a
  // pull request's base), nullopt: `sha` itself is trusted. Throws InputError for refused
  // inputs, NixError when a fetch fails.
  virtual std::string flakeRef(const RepoConfig& repo, const std::filesystem::path& gitDir,
                               const std::string& sha, const std::optional<std::string>& base) = 0;
};

struct UntrustedNix {
  NixCli* jail = nullptr;
  UntrustedFlakes* sources = nullptr;
  std::string unavailable;
  std::chrono::seconds buildTimeout{1800};  // at most; RepoConfig::buildTimeout when shorter
  std::chrono::seconds maxSilentTime{600};

  // The jail, or InputError saying why there is none.
  NixCli& jailOrThrow() const {
    if (!jail || !sources)
      throw InputError(
          "pull requests from forks cannot be evaluated on this runner: " +
          (unavailable.empty() ? std::string("no untrusted account is set up") : unavailable));
    return *jail;
  }
};

}  // namespace runner::nix
