#include "runner/store/schema.h"

namespace runner::store {

const std::vector<std::string_view>& migrations() {
  static const std::vector<std::string_view> kMigrations = {
      // 1: host locks, deployment records, the drvPath cache
      R"sql(
CREATE TABLE host_locks (
  host        TEXT PRIMARY KEY,
  owner       TEXT NOT NULL,       -- "<hostname>:<pid>" of the process holding it
  purpose     TEXT NOT NULL,       -- "run 12 deploy abc123" (shown to whoever has to wait)
  acquired_at INTEGER NOT NULL     -- unix ms
);
CREATE TABLE deployments (
  id                  INTEGER PRIMARY KEY,
  host                TEXT NOT NULL,
  repo                TEXT NOT NULL,
  sha                 TEXT NOT NULL,
  store_path          TEXT NOT NULL,
  generation          INTEGER,
  previous_path       TEXT,
  previous_generation INTEGER,
  result              TEXT NOT NULL,   -- succeeded | failed | rolled-back | unreachable | refused
  detail              TEXT NOT NULL DEFAULT '',
  run_id              INTEGER,
  started_at          INTEGER NOT NULL,
  finished_at         INTEGER NOT NULL,
  durations           TEXT NOT NULL DEFAULT '{}'   -- JSON: step -> ms
);
CREATE INDEX deployments_by_host ON deployments(host, id);
CREATE TABLE drv_cache (
  tree_hash TEXT NOT NULL,
  host      TEXT NOT NULL,
  drv_path  TEXT NOT NULL,
  PRIMARY KEY (tree_hash, host)
) WITHOUT ROWID;
)sql",
  };
  return kMigrations;
}

}  // namespace runner::store
