// The fleet probe (issue 14): a cheap, periodic look at what each host runs, over the same
// strictly pinned SSH connection the deployer uses (ssh::Connector, known_hosts). One command
// per host: the current system (`readlink -f /run/current-system`), the system profile's
// generation link and its target. Results go to the store (store::HostProbes); a host that
// does not answer keeps what was last seen and when.
//
// A connection that answered stays open for the next round (one session per host, used by
// one thread at a time), so a probe costs one channel, not a handshake. Hosts are probed at
// most FleetConfig::probeConcurrency at once; every wait is bounded (connect timeout, then
// FleetConfig::probeTimeout for the command).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/log.h"
#include "runner/core/thread_annotations.h"
#include "runner/ssh/ssh.h"
#include "runner/store/database.h"
#include "runner/store/host_probes.h"

namespace runner::fleet {

struct ProbeTarget {
  std::string forge;  // the repository is (forge, repo)
  std::string repo;
  std::string host;
  Target target;
};

// The command a probe runs (POSIX sh), given the link to the current system.
std::string probeCommand(const std::string& currentSystemLink);
// Reads the command's output ("current=…", "gen=system-N-link", "profile=…") into `out`.
void parseProbeOutput(const std::string& text, store::ProbeRecord& out);

class Prober {
 public:
  // `db` is the prober's own connection (or one shared under Database's mutex).
  Prober(ssh::Connector& ssh, const SshConfig& sshConfig, const FleetConfig& fleet,
         store::Database& db, const Clock& clock, Logger& log);
  // Probes every target, at most probeConcurrency at once, stores each result and returns
  // them in the order given. Never throws for a host that cannot be reached (that is a
  // result); a store failure is logged. Thread-safe, but rounds do not overlap.
  std::vector<store::ProbeRecord> probeAll(const std::vector<ProbeTarget>& targets);
  // One host (no storing).
  store::ProbeRecord probeOne(const ProbeTarget& t);

 private:
  ssh::SessionPtr takeSession(const std::string& key);
  void giveBack(const std::string& key, ssh::SessionPtr s);

  ssh::Connector& ssh_;
  const SshConfig& sshConfig_;
  const FleetConfig& fleet_;
  store::Database& db_;
  const Clock& clock_;
  Logger& log_;
  Mutex roundMu_;
  Mutex mu_;
  std::map<std::string, ssh::SessionPtr> sessions_ GUARDED_BY(mu_);  // "forge:repo/host@target"
};

// Runs Prober::probeAll every FleetConfig::probeInterval on a thread of its own, over the
// targets `targets()` returns at that moment. The first round starts at once. `afterRound`
// (may be empty) gets each round's results on the loop's thread (retry.h queues retries there);
// what it throws is logged.
class ProbeLoop {
 public:
  using RoundFn = std::function<void(const std::vector<store::ProbeRecord>&)>;
  ProbeLoop(Prober& prober, std::chrono::milliseconds interval,
            std::function<std::vector<ProbeTarget>()> targets, Logger& log,
            RoundFn afterRound = {});
  ~ProbeLoop();  // stop()
  void start();
  // Runs a round now (the next one waits a full interval after it).
  void wake();
  // Stops after the round in progress. Idempotent; noexcept.
  void stop() noexcept;

 private:
  void loop();
  Prober& prober_;
  std::chrono::milliseconds interval_;
  std::function<std::vector<ProbeTarget>()> targets_;
  Logger& log_;
  RoundFn afterRound_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool woken_ = false;
  std::thread thread_;
};

}  // namespace runner::fleet
