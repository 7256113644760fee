#include "runner/store/approvals.h"

namespace runner::store {

void Approvals::approve(const std::string& forge, const std::string& repo, const std::string& sha,
                        int64_t prNumber, const std::string& by) {
  db_.exec(
      "INSERT INTO approvals(forge, repo, sha, pr_number, approved_by, approved_at) "
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
      {forge, repo, sha, prNumber, by, clock_.nowMillis()});
}

std::optional<Approval> Approvals::find(const std::string& forge, const std::string& repo,
                                        const std::string& sha) {
  auto rows = db_.query(
      "SELECT forge, repo, sha, pr_number, approved_by, approved_at FROM approvals "
      "WHERE forge = ?1 AND repo = ?2 AND sha = ?3",
      {forge, repo, sha});
  if (rows.empty()) return std::nullopt;
  const auto& r = rows[0];
  return Approval{r.text(0), r.text(1), r.text(2), r.integer(3), r.text(4), r.integer(5)};
}

}  // namespace runner::store
