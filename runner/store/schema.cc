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
      // 2: the durable queue (deliveries), runs and their hosts, the forge outbox
      R"sql(
CREATE TABLE deliveries (
  id             INTEGER PRIMARY KEY,
  source         TEXT NOT NULL,     -- forge name, or "hook" / "cli" / "ui"
  delivery_id    TEXT NOT NULL,     -- the forge's delivery id (dedupe key with source)
  event_name     TEXT NOT NULL,
  received_at    INTEGER NOT NULL,  -- unix ms
  event          TEXT NOT NULL,     -- the normalised runner::Event as JSON
  state          TEXT NOT NULL,     -- queued | processed | ignored | failed
  detail         TEXT NOT NULL DEFAULT '',
  processed_at   INTEGER,
  UNIQUE (source, delivery_id)
);
CREATE INDEX deliveries_by_state ON deliveries(state, id);
CREATE TABLE runs (
  id             INTEGER PRIMARY KEY,
  delivery       INTEGER REFERENCES deliveries(id),
  repo           TEXT NOT NULL,
  forge          TEXT NOT NULL DEFAULT '',
  kind           TEXT NOT NULL,     -- check | deploy | rerun
  trigger        TEXT NOT NULL,     -- push | pull_request | comment | rerequest | manual | hook
  sha            TEXT NOT NULL,
  ref            TEXT NOT NULL DEFAULT '',
  base_sha       TEXT NOT NULL DEFAULT '',
  pr_number      INTEGER NOT NULL DEFAULT 0,
  from_fork      INTEGER NOT NULL DEFAULT 0,
  hosts_filter   TEXT NOT NULL DEFAULT '[]',  -- JSON list
  stage_filter   TEXT NOT NULL DEFAULT '',
  parent_run     INTEGER,
  superseded_by  INTEGER,
  forced         INTEGER NOT NULL DEFAULT 0,
  state          TEXT NOT NULL,     -- queued | running | succeeded | failed | superseded | interrupted
  plan           TEXT,              -- the Plan as JSON, once planned
  error          TEXT NOT NULL DEFAULT '',
  created_at     INTEGER NOT NULL,
  started_at     INTEGER,
  finished_at    INTEGER
);
CREATE INDEX runs_by_state ON runs(state, id);
CREATE INDEX runs_by_repo_ref ON runs(repo, ref, id);
CREATE TABLE run_hosts (
  run            INTEGER NOT NULL REFERENCES runs(id),
  host           TEXT NOT NULL,
  stage          TEXT NOT NULL,     -- plan | build | deploy
  state          TEXT NOT NULL,     -- runner::HostState as text
  summary        TEXT NOT NULL DEFAULT '',
  drv_path       TEXT,
  out_path       TEXT,
  base_out_path  TEXT,
  log_path       TEXT,
  started_at     INTEGER,
  finished_at    INTEGER,
  PRIMARY KEY (run, host)
);
CREATE TABLE outbox (
  id              INTEGER PRIMARY KEY,
  forge           TEXT NOT NULL,
  repo            TEXT NOT NULL,
  kind            TEXT NOT NULL,    -- status | check_run | comment | reaction | reply
  order_key       TEXT NOT NULL,    -- e.g. "<sha>/<context>": a newer row makes older pending ones superseded
  payload         TEXT NOT NULL,    -- JSON
  state           TEXT NOT NULL,    -- pending | sent | failed | superseded
  attempts        INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL, -- unix ms
  last_error      TEXT NOT NULL DEFAULT '',
  result          TEXT,             -- JSON from the forge (ids of created comments/check runs)
  created_at      INTEGER NOT NULL,
  sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox(state, next_attempt_at);
CREATE INDEX outbox_by_key ON outbox(order_key, id);
CREATE TABLE forge_objects (      -- what we created on a forge, to edit it later
  forge     TEXT NOT NULL,
  repo      TEXT NOT NULL,
  key       TEXT NOT NULL,        -- "comment:pr:7", "check_run:<sha>:build/web1"
  object_id TEXT NOT NULL,
  PRIMARY KEY (forge, repo, key)
);
)sql",
      // 3: the scheduler's bookkeeping: how often a run was resumed after a restart (a run
      // that keeps crashing the runner ends as interrupted), and each host's log tail
      R"sql(
ALTER TABLE runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE run_hosts ADD COLUMN log_tail TEXT NOT NULL DEFAULT '';
CREATE INDEX runs_by_pr ON runs(repo, pr_number, id);
CREATE INDEX runs_by_delivery ON runs(delivery);
)sql",
      // 4: the last state of a run the reporter was told about (queued, or a final state):
      // a runner killed between committing a state and telling the forge tells it after its
      // restart. Existing runs count as told.
      R"sql(
ALTER TABLE runs ADD COLUMN announced_state TEXT NOT NULL DEFAULT '';
UPDATE runs SET announced_state = state;
)sql",
      // 5: approvals of forks' commits: a writer let this head commit of a pull request from
      // a fork build (untrusted.build: approve) and run its fixed-output derivations
      R"sql(
CREATE TABLE approvals (
  forge        TEXT NOT NULL,
  repo         TEXT NOT NULL,
  sha          TEXT NOT NULL,
  pr_number    INTEGER NOT NULL,
  approved_by  TEXT NOT NULL,
  approved_at  INTEGER NOT NULL,   -- unix ms
  PRIMARY KEY (forge, repo, sha)
);
)sql",
      // 6: one row /healthz rewrites: proof that deliveries could be stored right now (a
      // read-only or full database fails this write)
      R"sql(
CREATE TABLE health (
  id          INTEGER PRIMARY KEY CHECK (id = 1),
  checked_at  INTEGER NOT NULL      -- unix ms
);
)sql",
      // 7: signed deliveries are told apart by their body (the signature covers it), not by
      // the unsigned delivery-id header; NULL for re-runs from the CLI and the web UI
      R"sql(
ALTER TABLE deliveries ADD COLUMN body_sha256 TEXT;
CREATE UNIQUE INDEX deliveries_by_body ON deliveries(source, body_sha256);
)sql",
      // 8: what each host was seen running by the fleet probe (issue 14): one row per host,
      // rewritten by each probe; last_seen survives probes that could not reach it
      R"sql(
CREATE TABLE host_probes (
  repo          TEXT NOT NULL,
  host          TEXT NOT NULL,
  target        TEXT NOT NULL DEFAULT '',
  probed_at     INTEGER NOT NULL,    -- unix ms of the last attempt
  reached       INTEGER NOT NULL,    -- 1: the last attempt answered
  current_path  TEXT,                -- readlink -f /run/current-system
  profile_path  TEXT,                -- readlink -f the system profile
  generation    INTEGER,             -- the profile's system-N-link
  error         TEXT NOT NULL DEFAULT '',
  last_seen     INTEGER,             -- unix ms of the last attempt that answered
  PRIMARY KEY (repo, host)
);
CREATE INDEX deployments_by_repo_host ON deployments(repo, host, id);
)sql",
      // 9: a repository is (forge, name) (issue 17): the same owner/name on two forges has
      // runs of its own; the queries by repository (supersede, latest run of a ref, a pull
      // request or a commit, the last deploy) also name the forge. runs_by_repo_ref stays for
      // the fleet's queries, which know a repository by name only.
      R"sql(
DROP INDEX runs_by_pr;
CREATE INDEX runs_by_forge_repo_ref ON runs(forge, repo, ref, id);
CREATE INDEX runs_by_forge_repo_pr ON runs(forge, repo, pr_number, id);
)sql",
      // 10: several runners on one database (issue 16): each runner process has a lease it
      // renews by heartbeat; a running run and an outbox row being sent name the runner that
      // holds them (host_locks.owner does already), so a runner whose lease expired is known
      // dead and what it held is taken over by another
      R"sql(
CREATE TABLE runners (
  id          TEXT PRIMARY KEY,   -- "<machine>:<pid>:<start-time>:<random>", one per process
  started_at  INTEGER NOT NULL,   -- unix ms
  expires_at  INTEGER NOT NULL    -- unix ms: the lease; 0 once the runner stopped
);
ALTER TABLE runs ADD COLUMN runner TEXT;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
)sql",
      // 11: the fleet's tables know the forge too (issue 14 after issue 17): alice/infra on a
      // GitHub and on a Gitea that both manage hosts have fleet rows, deploy records and
      // probes of their own. Existing records take the forge of the run that made them;
      // probe rows that of the host's newest deploy record, else of the repository's runs
      // when they all have one forge, else '' (a stale row the next probe replaces).
      R"sql(
ALTER TABLE deployments ADD COLUMN forge TEXT NOT NULL DEFAULT '';
UPDATE deployments SET forge = COALESCE((SELECT r.forge FROM runs r WHERE r.id = deployments.run_id), '');
DROP INDEX deployments_by_repo_host;
CREATE INDEX deployments_by_forge_repo_host ON deployments(forge, repo, host, id);
CREATE TABLE host_probes_v11 (
  forge         TEXT NOT NULL DEFAULT '',
  repo          TEXT NOT NULL,
  host          TEXT NOT NULL,
  target        TEXT NOT NULL DEFAULT '',
  probed_at     INTEGER NOT NULL,
  reached       INTEGER NOT NULL,
  current_path  TEXT,
  profile_path  TEXT,
  generation    INTEGER,
  error         TEXT NOT NULL DEFAULT '',
  last_seen     INTEGER,
  PRIMARY KEY (forge, repo, host)
);
INSERT INTO host_probes_v11(forge, repo, host, target, probed_at, reached, current_path,
                            profile_path, generation, error, last_seen)
SELECT COALESCE(
         (SELECT d.forge FROM deployments d WHERE d.repo = p.repo AND d.host = p.host
          ORDER BY d.id DESC LIMIT 1),
         (SELECT MIN(r.forge) FROM runs r WHERE r.repo = p.repo AND NOT EXISTS
            (SELECT 1 FROM runs r2 WHERE r2.repo = p.repo AND r2.forge <> r.forge)),
         ''),
       p.repo, p.host, p.target, p.probed_at, p.reached, p.current_path, p.profile_path,
       p.generation, p.error, p.last_seen
FROM host_probes p;
DROP TABLE host_probes;
ALTER TABLE host_probes_v11 RENAME TO host_probes;
)sql",
      // 12: when each stage and deploy step of a host started and finished (issue 14's run
      // page): JSON [{"name": "copy", "started_at": ms, "finished_at": ms}, …]; and a person's
      // request to stop a running run (why), so a restart does not resume it
      R"sql(
ALTER TABLE run_hosts ADD COLUMN steps TEXT NOT NULL DEFAULT '[]';
ALTER TABLE runs ADD COLUMN cancel_requested TEXT;
)sql",
  };
  return kMigrations;
}

}  // namespace runner::store
