#include "runner/fleet/probe.h"

#include <atomic>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/fleet/fleet.h"

namespace runner::fleet {
namespace {
constexpr const char* kProfile = "/nix/var/nix/profiles/system";
}  // namespace

std::string probeCommand(const std::string& currentSystemLink) {
  const std::string c = shellQuote(currentSystemLink), p = kProfile;
  return "echo \"current=$(readlink -f " + c + " 2>/dev/null)\"; echo \"gen=$(readlink " + p +
         " 2>/dev/null)\"; echo \"profile=$(readlink -f " + p + " 2>/dev/null)\"";
}

void parseProbeOutput(const std::string& text, store::ProbeRecord& out) {
  for (const auto& line : split(text, '\n')) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = std::string(trim(line.substr(eq + 1)));
    // only store paths are taken: anything else is not a system we could compare
    bool storePath = startsWith(value, "/nix/store/") && value.find('\n') == std::string::npos;
    if (key == "current" && storePath) out.currentPath = value;
    if (key == "profile" && storePath) out.profilePath = value;
    if (key == "gen") out.generation = generationOfLink(value);
  }
}

Prober::Prober(ssh::Connector& ssh, const SshConfig& sshConfig, const FleetConfig& fleet,
               store::Database& db, const Clock& clock, Logger& log)
    : ssh_(ssh), sshConfig_(sshConfig), fleet_(fleet), db_(db), clock_(clock), log_(log) {}

ssh::SessionPtr Prober::takeSession(const std::string& key) {
  MutexLock lk(mu_);
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return nullptr;
  auto s = std::move(it->second);
  sessions_.erase(it);
  return s;
}

void Prober::giveBack(const std::string& key, ssh::SessionPtr s) {
  MutexLock lk(mu_);
  sessions_[key] = std::move(s);
}

store::ProbeRecord Prober::probeOne(const ProbeTarget& t) {
  store::ProbeRecord rec;
  rec.forge = t.forge;
  rec.repo = t.repo;
  rec.host = t.host;
  rec.target = t.target.toString();
  const std::string key = t.forge + ":" + t.repo + "/" + t.host + "@" + rec.target;
  const std::string cmd = probeCommand(fleet_.currentSystemLink);
  auto attempt = [&](ssh::Session& s) {
    return s.exec(
        {.command = cmd,
         .timeout = std::chrono::duration_cast<std::chrono::milliseconds>(fleet_.probeTimeout),
         .maxStdout = 64 * 1024});
  };
  ssh::SessionPtr session = takeSession(key);
  std::optional<ssh::ExecResult> res;
  if (session && session->connected()) {
    res = attempt(*session);
    if (res->connectionLost) {  // the kept connection died since: one fresh try
      session.reset();
      res.reset();
    }
  } else {
    session.reset();
  }
  if (!session) {
    try {
      ssh::ConnectFailure failure;
      session = ssh::takeSession(ssh_.connect(ssh::endpointFor(t.target, sshConfig_)), failure);
      if (!session) {
        rec.probedAt = clock_.nowMillis();
        rec.error = std::string(ssh::kindName(failure.kind)) + ": " + failure.message;
        return rec;
      }
    } catch (const Error& e) {
      rec.probedAt = clock_.nowMillis();
      rec.error = describe(e);
      return rec;
    }
    res = attempt(*session);
  }
  rec.probedAt = clock_.nowMillis();
  if (!res->ok()) {
    rec.error = "the probe " + res->describeStatus() +
                (res->errTail.empty() ? "" : ": " + std::string(trim(res->errTail)));
    return rec;
  }
  rec.reached = true;
  rec.lastSeen = rec.probedAt;
  parseProbeOutput(res->out, rec);
  giveBack(key, std::move(session));
  return rec;
}

std::vector<store::ProbeRecord> Prober::probeAll(const std::vector<ProbeTarget>& targets) {
  MutexLock round(roundMu_);
  std::vector<store::ProbeRecord> out(targets.size());
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i; (i = next++) < targets.size();) {
      out[i] = probeOne(targets[i]);
      try {
        store::HostProbes(db_).record(out[i]);
      } catch (const std::exception& e) {
        log_.error("storing the probe of " + targets[i].host + " failed: " + describe(e));
      }
    }
  };
  const size_t n =
      std::min<size_t>(targets.size(), static_cast<size_t>(std::max(1, fleet_.probeConcurrency)));
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  return out;
}

ProbeLoop::ProbeLoop(Prober& prober, std::chrono::milliseconds interval,
                     std::function<std::vector<ProbeTarget>()> targets, Logger& log,
                     RoundFn afterRound)
    : prober_(prober),
      interval_(interval),
      targets_(std::move(targets)),
      log_(log),
      afterRound_(std::move(afterRound)) {}

ProbeLoop::~ProbeLoop() { stop(); }

void ProbeLoop::start() {
  thread_ = std::thread([this] { loop(); });
}

void ProbeLoop::wake() {
  std::lock_guard lk(mu_);
  woken_ = true;
  cv_.notify_all();
}

void ProbeLoop::stop() noexcept {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void ProbeLoop::loop() {
  for (;;) {
    try {
      auto targets = targets_();
      auto results = prober_.probeAll(targets);
      size_t reached = 0;
      for (const auto& r : results) reached += r.reached;
      log_.debug("fleet probe: " + std::to_string(reached) + " of " +
                 std::to_string(results.size()) + " hosts answered");
      if (afterRound_) afterRound_(results);
    } catch (const std::exception& e) {
      log_.error("fleet probe round failed: " + describe(e));
    }
    std::unique_lock lk(mu_);
    cv_.wait_for(lk, interval_, [&] { return stopping_ || woken_; });
    if (stopping_) return;
    woken_ = false;
  }
}

}  // namespace runner::fleet
