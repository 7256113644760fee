#include "runner/store/drv_cache.h"

namespace runner::store {

std::optional<std::string> SqliteDrvCache::get(const std::string& treeHash,
                                               const std::string& host) {
  auto rows = db_.query("SELECT drv_path FROM drv_cache WHERE tree_hash = ? AND host = ?",
                        {treeHash, host});
  if (rows.empty()) return std::nullopt;
  return rows[0].text(0);
}

void SqliteDrvCache::put(const std::string& treeHash, const std::string& host,
                         const std::string& drvPath) {
  db_.exec(
      "INSERT INTO drv_cache(tree_hash, host, drv_path) VALUES (?, ?, ?) "
      "ON CONFLICT(tree_hash, host) DO UPDATE SET drv_path = excluded.drv_path",
      {treeHash, host, drvPath});
}

}  // namespace runner::store
