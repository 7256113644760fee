// retry_unreachable (issue 18): a host that was off when a deploy came gets that deploy when
// it answers again. The fleet probe (probe.h) is what notices: after each round, every host it
// reached whose newest deploy record (of its repository) is `unreachable`, younger than the
// host's retry window (RolloutConfig::retryUnreachable, HostConfig::retryUnreachable), gets a
// re-run of that record's run naming only that host, queued as a delivery like `switchyard
// rerun` queues one (source "cli", id "retry-unreachable-<record id>", so each unreachable
// record is retried at most once, across restarts too).
//
// Never older: only the host's NEWEST record counts, so a newer push that reached the host
// (or also found it off: then its commit is the one retried) wins over the older one; and the
// re-run goes through the deploy's ancestry check, which refuses a commit that does not
// descend from the host's last successful deploy.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runner/core/config.h"
#include "runner/fleet/probe.h"
#include "runner/store/database.h"
#include "runner/store/host_probes.h"

namespace runner::fleet {

struct PendingRetry {
  std::string forge;  // the repository is (forge, repo)
  std::string repo;
  std::string host;
  std::string sha;    // the commit the unreachable deploy was of
  int64_t runId = 0;  // the run that recorded it (re-run, naming only `host`)
  int64_t recordId = 0;
};

// The host's retry window in `repo` (0: off).
std::chrono::seconds retryWindow(const RepoConfig& repo, const std::string& host);

// The retries due after a probe round: hosts in `probes` that were reached, with the newest
// deploy record of their repository `unreachable`, made by a run, at most the host's window
// before `nowMs`. Throws StoreError.
std::vector<PendingRetry> dueRetries(store::Database& db, const Config& config,
                                     const std::vector<store::ProbeRecord>& probes, int64_t nowMs);

// Hosts with a retry pending that the probe would not look at otherwise (their target comes
// from the flake, not the config): the target their last deploy attempt used (kept in
// host_probes by the deploy stage). Hosts already in `configured` are left out. Throws
// StoreError.
std::vector<ProbeTarget> retryProbeTargets(store::Database& db, const Config& config,
                                           const std::vector<ProbeTarget>& configured,
                                           int64_t nowMs);

// Queues the re-run of `r` (a delivery the scheduler picks up). Returns false when this
// record's retry was queued before (nothing new). Throws StoreError.
bool queueRetry(store::Database& db, const Clock& clock, const PendingRetry& r);

}  // namespace runner::fleet
