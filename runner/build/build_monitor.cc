#include "runner/build/build_monitor.h"

#include <algorithm>

#include "runner/core/text.h"

namespace runner::build {

const char* toString(HostState s) {
  switch (s) {
    case HostState::Queued:
      return "queued";
    case HostState::Building:
      return "building";
    case HostState::Built:
      return "built";
    case HostState::Failed:
      return "failed";
    case HostState::TimedOut:
      return "timed out";
    case HostState::NeedsApproval:
      return "needs approval";
  }
  return "?";
}

std::optional<std::string> drvInError(std::string_view message) {
  size_t pos = message.find("/nix/store/");
  while (pos != std::string_view::npos) {
    size_t end = message.find(".drv", pos);
    if (end == std::string_view::npos) return std::nullopt;
    std::string_view p = message.substr(pos, end + 4 - pos);
    if (p.find_first_of(" '\"\n") == std::string_view::npos) return std::string(p);
    pos = message.find("/nix/store/", pos + 1);
  }
  return std::nullopt;
}

BuildMonitor::BuildMonitor(std::vector<HostTarget> targets, const nix::DerivationSet& closure,
                           const std::set<std::string>& willBuild,
                           std::function<bool(const std::string&)> outputValid, size_t tailLines)
    : outputValid_(std::move(outputValid)), tailLines_(tailLines) {
  for (auto& t : targets) {
    HostInfo info;
    info.closure = nix::drvClosure(closure, {t.drvPath});
    info.closure.insert(t.drvPath);
    for (const auto& d : info.closure) drvs_[d].hosts.push_back(t.host);
    info.target = std::move(t);
    hosts_.emplace(info.target.host, std::move(info));
  }
  for (auto& [path, d] : drvs_) d.willBuild = willBuild.count(path) > 0;
  for (const auto& [path, drv] : closure) {
    for (const auto& [name, out] : drv.outputs) {
      outputToDrv_[out] = path;
      outputsOf_[path].push_back(out);
    }
  }
  // A host with nothing to build is done before anything starts.
  for (auto& [name, h] : hosts_)
    if (!drvs_[h.target.drvPath].willBuild) h.finishedAt = std::chrono::milliseconds(0);
}

HostState BuildMonitor::stateOf(const HostInfo& h) const {
  const DrvState& top = drvs_.at(h.target.drvPath);
  if (!top.willBuild || (top.done && !top.failed)) return HostState::Built;
  bool started = false;
  for (const auto& p : h.closure) {
    const DrvState& d = drvs_.at(p);
    if (d.failed) return HostState::Failed;
    started = started || d.running || d.done;
  }
  return started ? HostState::Building : HostState::Queued;
}

HostProgress BuildMonitor::progressOf(const HostInfo& h) const {
  HostProgress p;
  p.host = h.target.host;
  p.state = stateOf(h);
  for (const auto& path : h.closure) {
    const DrvState& d = drvs_.at(path);
    if (d.willBuild) {
      ++p.toBuild;
      if (d.done && !d.failed) ++p.built;
      if (d.failed) ++p.failed;
    }
    if (d.running) {
      ++p.running;
      if (p.currentDrv.empty()) {
        p.currentDrv = nix::storePathName(path);
        p.phase = d.phase;
      }
    }
  }
  for (const auto& [id, drv] : copyActivities_) {
    if (!h.closure.count(drv)) continue;
    auto it = copyBytes_.find(id);
    if (it == copyBytes_.end()) continue;
    p.bytesFetched += it->second.first;
    p.bytesExpected += it->second.second;
  }
  return p;
}

void BuildMonitor::markFailed(const std::string& drv) {
  auto it = drvs_.find(drv);
  if (it == drvs_.end()) return;
  it->second.failed = true;
  it->second.running = false;
  it->second.done = true;
}

namespace {
// " on ssh://root@host" for a derivation Nix hands to a remote builder (the Build activity's
// second field names the machine; empty when it builds here).
std::string machineSuffix(const nix::ActivityStart& s) {
  if (s.fields.size() < 2) return "";
  const auto* m = std::get_if<std::string>(&s.fields[1]);
  return m && !m->empty() ? " on " + *m : "";
}
}  // namespace

bool BuildMonitor::handle(const nix::LogEvent& event, std::chrono::milliseconds elapsed) {
  bool changed = false;
  if (const auto* s = std::get_if<nix::ActivityStart>(&event)) {
    if (s->type == nix::ActivityType::Builds) {
      buildsCounter_.insert(s->id);
    } else if (s->type == nix::ActivityType::Build && s->path()) {
      const std::string drv = *s->path();
      buildActivities_[s->id] = drv;
      auto it = drvs_.find(drv);
      if (it != drvs_.end() && it->second.openActivities++ == 0) {
        it->second.running = true;
        changed = true;
        if (onHostLine)
          for (const auto& h : it->second.hosts)
            onHostLine(h, nix::storePathName(drv), "building " + drv + machineSuffix(*s));
      }
    } else if (s->type == nix::ActivityType::CopyPath && s->path()) {
      if (auto it = outputToDrv_.find(*s->path()); it != outputToDrv_.end())
        copyActivities_[s->id] = it->second;
    }
  } else if (const auto* st = std::get_if<nix::ActivityStop>(&event)) {
    if (auto it = buildActivities_.find(st->id); it != buildActivities_.end()) {
      auto d = drvs_.find(it->second);
      if (d != drvs_.end() && --d->second.openActivities <= 0 && !d->second.done) {
        d->second.running = false;
        d->second.done = true;
        for (const auto& out : outputsOf_[it->second])
          if (!outputValid_(out)) d->second.failed = true;
        changed = true;
      }
      buildActivities_.erase(it);
    }
  } else if (const auto* r = std::get_if<nix::ActivityResult>(&event)) {
    switch (r->type) {
      case nix::ResultType::BuildLogLine:
      case nix::ResultType::PostBuildLogLine:
        if (auto it = buildActivities_.find(r->id); it != buildActivities_.end()) {
          auto d = drvs_.find(it->second);
          if (d == drvs_.end()) break;
          std::string line = nix::stripAnsi(r->text(0));
          d->second.tail.push_back(line);
          if (d->second.tail.size() > tailLines_) d->second.tail.pop_front();
          if (onHostLine)
            for (const auto& h : d->second.hosts)
              onHostLine(h, nix::storePathName(it->second), line);
        }
        break;
      case nix::ResultType::SetPhase:
        if (auto it = buildActivities_.find(r->id); it != buildActivities_.end()) {
          if (auto d = drvs_.find(it->second); d != drvs_.end()) {
            d->second.phase = r->text(0);
            changed = true;
          }
        }
        break;
      case nix::ResultType::Progress:
        if (buildsCounter_.count(r->id)) {
          totals_.drvsDone = r->number(0);
          totals_.drvsExpected = r->number(1);
          totals_.drvsRunning = r->number(2);
          totals_.drvsFailed = r->number(3);
          changed = true;
        } else if (copyActivities_.count(r->id)) {
          copyBytes_[r->id] = {static_cast<uint64_t>(r->number(0)),
                               static_cast<uint64_t>(r->number(1))};
          changed = true;
        }
        break;
      case nix::ResultType::SetExpected:
        if (r->number(0) == static_cast<int64_t>(nix::ActivityType::CopyPath)) {
          totals_.bytesExpected = static_cast<uint64_t>(r->number(1));
          changed = true;
        }
        break;
      default:
        break;
    }
  } else if (const auto* m = std::get_if<nix::LogMessage>(&event)) {
    if (m->level == 0) {
      errors_.push_back(m->msg);
      if (m->msg.find("builder for") != std::string::npos ||
          m->msg.find("timed out") != std::string::npos)
        if (auto drv = drvInError(m->msg)) {
          markFailed(*drv);
          changed = true;
        }
    }
  }
  if (changed) {
    for (auto& [name, h] : hosts_) {
      HostState s = stateOf(h);
      if ((s == HostState::Built || s == HostState::Failed) && !h.finishedAt)
        h.finishedAt = elapsed;
      if (s != h.reported && (s == HostState::Built || s == HostState::Failed))
        finishedQueue_.push_back(name);
      h.reported = s;
    }
  }
  return changed;
}

BuildProgress BuildMonitor::snapshot() const {
  BuildProgress p = totals_;
  p.bytesDone = 0;
  for (const auto& [id, b] : copyBytes_) p.bytesDone += b.first;
  for (const auto& [name, h] : hosts_) p.hosts.push_back(progressOf(h));
  return p;
}

std::vector<std::string> BuildMonitor::takeFinishedHosts() {
  std::vector<std::string> out;
  out.swap(finishedQueue_);
  return out;
}

std::vector<HostBuildResult> BuildMonitor::finish(const nix::BuildRun& run,
                                                  std::chrono::milliseconds elapsed) {
  std::vector<std::string> errors = errors_;
  for (const auto& e : run.errors)
    if (std::find(errors.begin(), errors.end(), e) == errors.end()) errors.push_back(e);
  for (const auto& e : errors)
    if (e.find("builder for") != std::string::npos || e.find("timed out") != std::string::npos)
      if (auto drv = drvInError(e)) markFailed(*drv);

  std::vector<HostBuildResult> out;
  for (auto& [name, h] : hosts_) {
    HostBuildResult r;
    r.host = name;
    r.drvPath = h.target.drvPath;
    for (const auto& o : outputsOf_[h.target.drvPath])
      if (endsWith(o, nix::storePathName(h.target.drvPath))) r.outPath = o;
    if (!r.outPath && !outputsOf_[h.target.drvPath].empty())
      r.outPath = outputsOf_[h.target.drvPath].front();
    r.duration = h.finishedAt.value_or(elapsed);
    const DrvState& top = drvs_.at(h.target.drvPath);
    bool valid = r.outPath && outputValid_(*r.outPath);
    if (valid && (!top.failed)) {
      r.state = HostState::Built;
      r.message = top.willBuild ? "built" : "already built";
      out.push_back(std::move(r));
      continue;
    }
    // The failing derivation: one whose builder failed (not one that only lacked an input).
    for (const auto& p : h.closure) {
      const DrvState& d = drvs_.at(p);
      if (!d.failed) continue;
      bool named = std::any_of(errors.begin(), errors.end(), [&](const std::string& e) {
        return e.find(p) != std::string::npos && e.find("builder for") != std::string::npos;
      });
      if (!r.failedDrv || named) r.failedDrv = p;
      if (named) break;
    }
    if (run.process.timedOut) {
      for (const auto& p : h.closure)  // what was still building when it was killed
        if (!r.failedDrv && drvs_.at(p).running) r.failedDrv = p;
      r.state = HostState::TimedOut;
      r.message = "build " + run.process.describeStatus();
    } else {
      r.state = HostState::Failed;
      if (r.failedDrv) {
        r.message = "failed: " + nix::storePathName(*r.failedDrv);
        for (const auto& e : errors)
          if (e.find(*r.failedDrv) != std::string::npos) r.message = e;
      } else {
        // Nothing in its closure failed: it was not built (nix stopped, or was stopped). The
        // errors name other hosts' derivations; only one naming its own closure is its.
        r.message = "not built: nix build " + run.process.describeStatus();
        for (const auto& e : errors)
          if (auto drv = drvInError(e); drv && h.closure.count(*drv)) r.message = e;
      }
    }
    if (r.failedDrv) {
      const auto& tail = drvs_.at(*r.failedDrv).tail;
      r.logTail = join(std::vector<std::string>(tail.begin(), tail.end()), "\n");
    }
    for (const auto& e : errors) {
      // Only errors about this host's own derivations: never another host's failure.
      auto drv = drvInError(e);
      bool own =
          r.failedDrv ? e.find(*r.failedDrv) != std::string::npos : (drv && h.closure.count(*drv));
      if (own) r.logTail += (r.logTail.empty() ? "" : "\n") + e;
    }
    if (r.state == HostState::TimedOut) r.logTail += (r.logTail.empty() ? "" : "\n") + r.message;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace runner::build
