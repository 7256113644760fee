#include "runner/scheduler/mirrors.h"

#include <set>

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

fs::path mirrorPath(const fs::path& stateDir, const RepoConfig& repo) {
  return os::pathUnder(stateDir / "mirrors", repo.forge.value_or("@url") + "/" + repo.name, ".git");
}

fs::path Mirrors::mirrorPath(const RepoConfig& repo) const {
  return scheduler::mirrorPath(stateDir_, repo);
}

int migrateMirrorLayout(const fs::path& stateDir, const std::vector<RepoConfig>& repos,
                        Logger& log) {
  std::error_code ec;
  const fs::path root = stateDir / "mirrors";
  if (!fs::is_directory(root, ec)) return 0;
  std::map<std::string, std::vector<const RepoConfig*>> byName;  // mirrored repos by old path
  std::set<fs::path> current;  // every new-layout mirror: an old path may coincide with one
  for (const auto& r : repos) {
    if (r.path) continue;
    try {
      current.insert(mirrorPath(stateDir, r));
      byName[os::pathUnder(root, r.name, ".git").string()].push_back(&r);
    } catch (const InputError&) {  // config_loader refuses such names already
    }
  }
  int moved = 0;
  for (const auto& [old, owners] : byName) {
    const fs::path from = old;
    if (current.count(from) || !fs::exists(from / "HEAD", ec)) continue;
    if (owners.size() > 1) {
      std::string forges;
      for (const auto* r : owners) forges += (forges.empty() ? "" : ", ") + r->forge.value_or("-");
      log.warn("mirror " + from.string() + " (from before repositories were told apart by forge)" +
               " is left in place: " + owners.front()->name + " is configured on several forges (" +
               forges + "); each fetches a mirror of its own, and this one can be removed");
      continue;
    }
    const fs::path to = mirrorPath(stateDir, *owners.front());
    if (fs::exists(to, ec)) {
      log.warn("mirror " + from.string() + " is left in place: " + to.string() +
               " exists already; this one can be removed");
      continue;
    }
    fs::create_directories(to.parent_path());
    fs::rename(from, to);
    fs::remove(from.parent_path(), ec);  // the old owner directory, when it is empty now
    log.info("moved the mirror of " + owners.front()->name + " to " + to.string());
    ++moved;
  }
  return moved;
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
