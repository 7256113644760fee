#include "runner/store/forge_objects.h"

namespace runner::store {

std::optional<std::string> ForgeObjects::find(const std::string& forge, const std::string& repo,
                                              const std::string& key) {
  auto rows =
      db_.query("SELECT object_id FROM forge_objects WHERE forge = ? AND repo = ? AND key = ?",
                {forge, repo, key});
  if (rows.empty()) return std::nullopt;
  return rows[0].text(0);
}

void ForgeObjects::remember(const std::string& forge, const std::string& repo,
                            const std::string& key, const std::string& objectId) {
  db_.exec(
      "INSERT INTO forge_objects(forge, repo, key, object_id) VALUES (?, ?, ?, ?) "
      "ON CONFLICT(forge, repo, key) DO UPDATE SET object_id = excluded.object_id",
      {forge, repo, key, objectId});
}

void ForgeObjects::forget(const std::string& forge, const std::string& repo,
                          const std::string& key) {
  db_.exec("DELETE FROM forge_objects WHERE forge = ? AND repo = ? AND key = ?",
           {forge, repo, key});
}

}  // namespace runner::store
