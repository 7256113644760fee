// Where the scheduler reads a repository from (DESIGN.md §1 "git mirror (libgit2)"): the
// configured local repository (RepoConfig::path, read in place — the git-hook setup), or a
// bare mirror under <state_dir>/mirrors/<forge>/<owner>/<name>.git fetched with libgit2 from
// RepoConfig::url (else the clone URL the forge sent). Fetches are incremental and only
// happen when a commit a run needs is missing: branches and pull request heads
// (refs/pull/*/head, which Gitea and GitHub both publish) in one fetch; a fork's head branch
// from its own clone URL when the base repository does not have it.
//
// Thread-safe: one fetch per mirror at a time; callers open their own git::Repository on the
// returned path.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/log.h"
#include "runner/core/thread_annotations.h"

namespace runner::scheduler {

struct FetchHint {
  std::string cloneUrl;  // the forge's clone URL of the repository (used without RepoConfig::url)
  std::string headCloneUrl;  // a fork's clone URL
  std::string headRef;       // the fork's branch ("feature")
  int64_t prNumber = 0;
};

class Mirrors {
 public:
  Mirrors(std::filesystem::path stateDir, Logger& log)
      : stateDir_(std::move(stateDir)), log_(log) {}

  // The repository to read for `repo`, with every commit in `shas` present (empty strings
  // are skipped). Throws InputError when a commit cannot be found even after fetching, or
  // no source is configured; GitError when a fetch fails.
  std::filesystem::path prepare(const RepoConfig& repo, const std::vector<std::string>& shas,
                                const FetchHint& hint = {});

  // <state_dir>/mirrors/<forge>/<owner>/<name>.git (mirrorPath below).
  std::filesystem::path mirrorPath(const RepoConfig& repo) const;

 private:
  std::mutex& lockFor(const std::string& key);
  std::filesystem::path stateDir_;
  Logger& log_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<std::mutex>> locks_ GUARDED_BY(mu_);
};

// Where the mirror of `repo` lives: <state_dir>/mirrors/<forge>/<owner>/<name>.git, a
// repository being (forge, name) (issue 17); "@url" stands for the forge of repos without one
// ('@' is outside the forge-name alphabet). Made only through os::pathUnder, so a name never
// leads outside the state directory. Throws InputError for a name pathUnder refuses.
std::filesystem::path mirrorPath(const std::filesystem::path& stateDir, const RepoConfig& repo);

// Moves mirrors of the layout before issue 17 (<state_dir>/mirrors/<owner>/<name>.git) to
// mirrorPath(). Names were unique then, so an old mirror is moved when exactly one configured
// repository (without a path) has its name; when several forges now have that name, it is
// left in place with a warning (each repository fetches a mirror of its own), and so is one
// whose new place is taken. Called by the daemon at start; idempotent. Returns how many were
// moved. Throws SysError when a rename fails.
int migrateMirrorLayout(const std::filesystem::path& stateDir, const std::vector<RepoConfig>& repos,
                        Logger& log);

// True when `sha` names a commit in the repository at `gitDir`.
bool hasCommit(const std::filesystem::path& gitDir, const std::string& sha);

}  // namespace runner::scheduler
