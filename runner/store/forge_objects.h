// What Switchyard created on a forge and edits later (DESIGN.md §7): the id of a pull
// request's plan comment, the id of each check run. The outbox sender records an id when a
// create call answers with one, and looks it up before the next call with the same key, so
// an update PATCHes the object instead of creating another.
//
// Keys are chosen by runner/report: "comment:pr:<number>", "check_run:<run>:<stage>/<host>".
// Thread-safe as far as Database is. Every method throws StoreError when the database cannot
// be read or written.
#pragma once

#include <optional>
#include <string>

#include "runner/store/database.h"

namespace runner::store {

class ForgeObjects {
 public:
  explicit ForgeObjects(Database& db) : db_(db) {}

  // The forge's id of the object under `key`, or nullopt when none was recorded.
  std::optional<std::string> find(const std::string& forge, const std::string& repo,
                                  const std::string& key);
  // Records (or replaces) the id under `key`.
  void remember(const std::string& forge, const std::string& repo, const std::string& key,
                const std::string& objectId);
  // Forgets `key` (the object is gone on the forge); no-op when absent.
  void forget(const std::string& forge, const std::string& repo, const std::string& key);

 private:
  Database& db_;
};

}  // namespace runner::store
