#include "runner/scheduler/untrusted_source.h"

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/nix/flake_lock.h"
#include "runner/nix/untrusted_inputs.h"

namespace runner::scheduler {
namespace {

std::optional<nix::FlakeLock> lockAt(git::Repository& repo, const std::string& sha) {
  auto blob = repo.readFile(sha, "flake.lock");
  if (!blob) return std::nullopt;
  return nix::parseFlakeLock(blob->content, "flake.lock of " + shortSha(sha));
}

}  // namespace

std::string UntrustedSources::flakeRef(const RepoConfig& repo, const std::filesystem::path& gitDir,
                                       const std::string& sha,
                                       const std::optional<std::string>& base) {
  const std::string key = gitDir.string() + "\n" + sha + "\n" + base.value_or("");
  {
    MutexLock lk(mu_);
    if (auto it = done_.find(key); it != done_.end()) return it->second;
  }
  auto git = git::Repository::open(gitDir);
  const auto lock = lockAt(*git, sha);  // throws InputError for a broken lock
  if (lock && !base) {
    trusted_.fetchInputs(nix::lockedInputs(*lock));
  } else if (lock) {
    std::optional<nix::FlakeLock> baseLock;
    try {
      baseLock = lockAt(*git, *base);
    } catch (const InputError&) {
      // a base whose lock does not parse trusts nothing
    }
    nix::InputPolicy policy;
    if (repo.untrusted.allowedInputs) policy.allowed = *repo.untrusted.allowedInputs;
    auto check = nix::checkUntrustedInputs(*lock, baseLock ? &*baseLock : nullptr, policy);
    if (!check.ok())
      throw InputError(
          "flake.lock of " + shortSha(sha) + " (a pull request from a fork) names " +
          (check.refused.size() == 1 ? std::string("an input")
                                     : std::to_string(check.refused.size()) + " inputs") +
          " the runner will not fetch for untrusted code: " + join(check.refused, "; "));
    std::vector<nix::InputToFetch> fromBase, others;
    for (auto& in : check.fetch) (in.base ? fromBase : others).push_back(std::move(in));
    trusted_.fetchInputs(fromBase);
    credentialless_.fetchInputs(others);
  }
  std::string ref = nix::sourceFlakeRef(trusted_.fetchGitSource(gitDir, sha));
  MutexLock lk(mu_);
  done_[key] = ref;
  return ref;
}

}  // namespace runner::scheduler
