// The port for caching evaluated derivation paths by (commit tree hash, host): the same
// tree evaluates to the same drvPath, so re-plans and re-runs evaluate nothing
// (DESIGN.md §5, exact mode). runner/store implements it in SQLite.
#pragma once

#include <optional>
#include <string>

namespace runner {

class DrvPathCache {
 public:
  virtual ~DrvPathCache() = default;
  // The cached drvPath, or nullopt. Thread-safe.
  virtual std::optional<std::string> get(const std::string& treeHash, const std::string& host) = 0;
  virtual void put(const std::string& treeHash, const std::string& host,
                   const std::string& drvPath) = 0;
};

}  // namespace runner
