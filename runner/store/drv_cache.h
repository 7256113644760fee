// The drvPath cache (runner::DrvPathCache) in SQLite: (commit tree hash, host) -> drvPath.
#pragma once

#include "runner/core/drv_cache.h"
#include "runner/store/database.h"

namespace runner::store {

class SqliteDrvCache final : public DrvPathCache {
 public:
  explicit SqliteDrvCache(Database& db) : db_(db) {}
  std::optional<std::string> get(const std::string& treeHash, const std::string& host) override;
  void put(const std::string& treeHash, const std::string& host,
           const std::string& drvPath) override;

 private:
  Database& db_;
};

}  // namespace runner::store
