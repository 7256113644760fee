// Read access to a git repository's object database through libgit2 (DESIGN.md §5):
// resolve revisions, read files and list trees at a commit, diff two commits' trees with
// rename detection, and answer ancestry questions — all without a checkout, so planning
// works on bare mirrors. Also keeps bare mirrors up to date (fetch).
//
// Threading: a Repository (like the git_repository inside it) is used by one thread at a
// time; open one per thread. libgit2 is initialised once per process on first use.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/core/plan.h"

namespace runner::git {

enum class EntryKind { Blob, Executable, Symlink, Tree, Submodule };

struct TreeEntry {
  std::string path;  // relative to the repository root, '/'-separated
  std::string oid;   // hex object id
  EntryKind kind = EntryKind::Blob;
};

struct Blob {
  std::string oid;
  std::string content;
};

struct CommitInfo {
  std::string sha;
  std::string tree;
  std::string summary;  // first line of the message
  std::string author;
  int64_t time = 0;  // committer time, unix seconds
  std::vector<std::string> parents;
};

class Repository {
 public:
  // Opens the repository at `path` (a work tree, its .git, or a bare repository).
  // Throws InputError naming the path when it is not a git repository.
  static std::unique_ptr<Repository> open(const std::filesystem::path& path);
  // Creates (or opens, when it exists) a bare repository for use as a mirror.
  static std::unique_ptr<Repository> openOrInitBare(const std::filesystem::path& path);
  ~Repository();
  Repository(const Repository&) = delete;
  Repository& operator=(const Repository&) = delete;

  // The git directory, and the work tree (nullopt for bare repositories).
  std::filesystem::path gitDir() const;
  std::optional<std::filesystem::path> workDir() const;

  // Resolves any revision git accepts (sha, abbreviated sha, branch, tag, HEAD~3, ...) to the
  // full sha of a commit. Throws InputError "unknown revision 'X'" when it does not resolve.
  std::string resolveCommit(std::string_view rev);
  CommitInfo commit(std::string_view sha);
  // The tree id of a commit (the content identity used for caches).
  std::string treeOf(std::string_view commitSha);

  // The blob at `path` in the commit, or nullopt when there is none (or it is a tree).
  std::optional<Blob> readFile(std::string_view commitSha, std::string_view path);
  // What is at `path` in the commit; nullopt when nothing. Path "" is the root tree.
  std::optional<EntryKind> kindAt(std::string_view commitSha, std::string_view path);
  // Entries below `dir` ("" = root). Recursive lists every blob/link/submodule below it;
  // non-recursive lists the direct children, trees included. nullopt when `dir` is absent.
  std::optional<std::vector<TreeEntry>> listTree(std::string_view commitSha, std::string_view dir,
                                                 bool recursive);

  // Files that differ between the two commits' trees, renames detected (50% similarity).
  std::vector<FileChange> diff(std::string_view fromSha, std::string_view toSha);

  // True when `ancestor` is `descendant` or one of its ancestors.
  bool isAncestor(std::string_view ancestor, std::string_view descendant);

  // The sha a reference points at ("refs/heads/main"), or nullopt.
  std::optional<std::string> refTarget(std::string_view ref);

  // Fetches `refspecs` from `url` into this repository (a mirror); incremental.
  // Throws GitError with libgit2's message when the fetch fails.
  void fetch(const std::string& url, const std::vector<std::string>& refspecs);

  // Sets refs/heads/<branch> (used by tests and the demo; a plain update, no reflog).
  void setRef(std::string_view ref, std::string_view sha);

 private:
  struct Impl;
  explicit Repository(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace runner::git
