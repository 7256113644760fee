// Approvals of commits from forks (README "Untrusted evaluation"): with `untrusted.build:
// approve` a pull request from a fork is only evaluated until a person with write access
// approves its head commit (`/switchyard approve` on the pull request, or the run page). An
// approval is for one commit: a new push to the fork needs a new one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "runner/core/clock.h"
#include "runner/store/database.h"

namespace runner::store {

struct Approval {
  std::string forge, repo, sha;
  int64_t prNumber = 0;
  std::string approvedBy;
  int64_t approvedAt = 0;
};

class Approvals {
 public:
  // `db` and `clock` must outlive this object. Thread-safe as Database is.
  Approvals(Database& db, const Clock& clock) : db_(db), clock_(clock) {}
  // Records that `by` approved `sha`; approving again keeps the first approval.
  // Throws StoreError.
  void approve(const std::string& forge, const std::string& repo, const std::string& sha,
               int64_t prNumber, const std::string& by);
  // The approval of `sha`, or nullopt. Throws StoreError.
  std::optional<Approval> find(const std::string& forge, const std::string& repo,
                               const std::string& sha);

 private:
  Database& db_;
  const Clock& clock_;
};

}  // namespace runner::store
