#include "runner/deploy/ancestry.h"

#include "runner/git/repository.h"

namespace runner::deploy {

GitAncestry::GitAncestry(const std::filesystem::path& repo) : repo_(git::Repository::open(repo)) {}

GitAncestry::~GitAncestry() = default;

bool GitAncestry::isAncestor(const std::string& ancestor, const std::string& descendant) {
  MutexLock lk(mu_);
  return repo_->isAncestor(ancestor, descendant);
}

}  // namespace runner::deploy
