// "Never go backwards" (DESIGN.md §6 step 1) needs one question answered: does commit B
// descend from commit A? A port, so the deployer's tests can answer it without a repository,
// and the git implementation (libgit2 through runner/git).
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include "runner/core/thread_annotations.h"

namespace runner::git {
class Repository;
}

namespace runner::deploy {

class Ancestry {
 public:
  virtual ~Ancestry() = default;
  // True when `ancestor` is `descendant` or one of its ancestors. Throws GitError or
  // InputError when either commit is unknown. Thread-safe.
  virtual bool isAncestor(const std::string& ancestor, const std::string& descendant) = 0;
};

// Answers from a git repository (work tree or bare). Thread-safe: calls are serialised,
// since a git::Repository is used by one thread at a time.
class GitAncestry final : public Ancestry {
 public:
  // Throws InputError when `repo` is not a git repository.
  explicit GitAncestry(const std::filesystem::path& repo);
  ~GitAncestry() override;
  bool isAncestor(const std::string& ancestor, const std::string& descendant) override;

 private:
  Mutex mu_;
  std::unique_ptr<git::Repository> repo_ GUARDED_BY(mu_);
};

}  // namespace runner::deploy
