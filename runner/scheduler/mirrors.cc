#include "runner/scheduler/mirrors.h"

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/os/files.h"

namespace fs = std::filesystem;

namespace runner::scheduler {

bool hasCommit(const fs::path& gitDir, const std::string& sha) {
  auto repo = git::Repository::open(gitDir);
  // resolveCommit reports an unknown revision as InputError; for a full sha that is the
  // expected "not fetched yet" answer, so it is a value here.
  try {
    return repo->resolveCommit(sha) == sha;
  } catch (const InputError&) {
    return false;
  }
}

fs::path Mirrors::mirrorPath(const RepoConfig& repo) const {
  return os::pathUnder(stateDir_ / "mirrors", repo.name, ".git");
}

std::mutex& Mirrors::lockFor(const std::string& key) {
  MutexLock lk(mu_);
  auto& m = locks_[key];
  if (!m) m = std::make_unique<std::mutex>();
  return *m;
}

fs::path Mirrors::prepare(const RepoConfig& repo, const std::vector<std::string>& shas,
                          const FetchHint& hint) {
  auto missingIn = [&](const fs::path& dir) {
    std::vector<std::string> missing;
    for (const auto& sha : shas)
      if (!sha.empty() && !hasCommit(dir, sha)) missing.push_back(sha);
    return missing;
  };
  if (repo.path) {  // read the configured repository in place; nothing to fetch
    auto missing = missingIn(*repo.path);
    if (!missing.empty())
      throw InputError("commit " + missing.front() + " is not in " + repo.path->string());
    return *repo.path;
  }
  fs::path dir = mirrorPath(repo);
  std::scoped_lock lk(lockFor(dir.string()));
  fs::create_directories(dir.parent_path());
  git::Repository::openOrInitBare(dir);
  auto missing = missingIn(dir);
  if (missing.empty()) return dir;
  // Re-runs and comment commands carry no clone URL: the mirror usually has their commits
  // already, and only a fetch needs one.
  std::string url = repo.url.value_or(hint.cloneUrl);
  if (url.empty())
    throw InputError("commit " + missing.front() + " is not in the mirror of " + repo.name +
                     ", which has no url to fetch from (set repos[].url)");

  log_.info("fetching " + repo.name + " into " + dir.string());
  git::Repository::openOrInitBare(dir)->fetch(
      url, {"+refs/heads/*:refs/heads/*", "+refs/pull/*/head:refs/pull/*/head"});
  missing = missingIn(dir);
  if (!missing.empty() && !hint.headCloneUrl.empty() && !hint.headRef.empty()) {
    log_.info("fetching the head of pull request " + std::to_string(hint.prNumber) + " from " +
              hint.headCloneUrl);
    git::Repository::openOrInitBare(dir)->fetch(
        hint.headCloneUrl, {"+refs/heads/" + hint.headRef + ":refs/switchyard/pull/" +
                            std::to_string(hint.prNumber) + "/head"});
    missing = missingIn(dir);
  }
  if (!missing.empty())
    throw InputError("commit " + missing.front() + " is not in " + url + " (fetched into " +
                     dir.string() + ")");
  return dir;
}

}  // namespace runner::scheduler
