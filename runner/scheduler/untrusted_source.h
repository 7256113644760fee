// What a jailed evaluation of a fork's commit needs before it starts (README "Untrusted
// evaluation"): the commit's tree copied into the store by the runner without evaluating
// anything in it, the inputs its flake.lock names checked against the repository's policy
// (nix/untrusted_inputs.h) and fetched — those locked exactly as on the base branch with the
// runner's credentials, the others without any — and the `path:` flake reference the jail
// then evaluates (it can read no repository and reach no network).
//
// Thread-safe; results are cached per (repository, commit, base).
#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "runner/core/config.h"
#include "runner/core/thread_annotations.h"
#include "runner/nix/nix_cli.h"
#include "runner/nix/untrusted_nix.h"

namespace runner::scheduler {

class UntrustedSources final : public nix::UntrustedFlakes {
 public:
  // `trusted` reads repositories and fetches the base branch's inputs (the runner's own
  // nix, credentials and all); `credentialless` fetches the inputs only a fork locks
  // (nix::credentiallessNixOptions). Both must outlive this object.
  UntrustedSources(nix::NixCli& trusted, nix::NixCli& credentialless)
      : trusted_(trusted), credentialless_(credentialless) {}

  // The flake reference of commit `sha` of the repository at `gitDir` for the jail.
  // `base`: the commit whose lock is trusted (a pull request's base) — `sha`'s lock is then
  // checked against it; nullopt: `sha` itself is trusted (it is the base). Throws InputError
  // listing every refused input ("input 'x' (path:/etc): local paths are refused …") or
  // naming a flake.lock that cannot be read, NixError when a fetch fails.
  std::string flakeRef(const RepoConfig& repo, const std::filesystem::path& gitDir,
                       const std::string& sha, const std::optional<std::string>& base) override;

 private:
  nix::NixCli& trusted_;
  nix::NixCli& credentialless_;
  Mutex mu_;
  std::map<std::string, std::string> done_ GUARDED_BY(mu_);
};

}  // namespace runner::scheduler
