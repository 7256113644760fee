#include "runner/build/target_builds.h"

#include <deque>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/nix/internal_json.h"

namespace runner::build {
namespace {

using std::chrono::duration_cast;
using std::chrono::milliseconds;

// Only what decides the placement (cheaper than evalHostInfo: no nixpkgs system).
constexpr const char* kPlacementFn =
    "n: c: let\n"
    "    cfg = c.config;\n"
    "    try = x: let r = builtins.tryEval x; in if r.success then r.value else null;\n"
    "  in {\n"
    "    clan = try (cfg.clan.core.networking.targetHost or null);\n"
    "    colmena = try (cfg.deployment.targetHost or null);\n"
    "    buildOnTarget = try (cfg.deployment.buildOnTarget or null);\n"
    "    buildHost = try (cfg.clan.core.networking.buildHost or null);\n"
    "  }";

// NIX_SSHOPTS for `nix copy` to `t`, pinned like the deployer's: no other client config, the
// runner's known_hosts only, strict checking, batch mode, the runner's key.
std::string pinnedSshOpts(const Target& t, const SshConfig& ssh) {
  auto checked = [](const std::filesystem::path& p, const char* what) {
    if (p.string().find_first_of(" \t\n") != std::string::npos)
      throw InputError(std::string(what) + " '" + p.string() +
                       "' contains whitespace, which NIX_SSHOPTS cannot carry");
    return p.string();
  };
  std::string o = "-F /dev/null -p " + std::to_string(t.port) +
                  " -o UserKnownHostsFile=" + checked(*ssh.knownHosts, "known_hosts file") +
                  " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
                  " -o BatchMode=yes -o ConnectTimeout=" +
                  std::to_string(std::max<int64_t>(1, ssh.connectTimeout.count()));
  if (ssh.identityFile)
    o += " -i " + checked(*ssh.identityFile, "identity file") + " -o IdentitiesOnly=yes";
  if (!ssh.useAgent) o += " -o IdentityAgent=none";
  return o;
}

std::string lastLines(std::string_view text, size_t n) {
  std::vector<std::string> keep;
  for (const auto& raw : split(nix::stripAnsi(text), '\n')) {
    std::string l(trim(raw));
    if (l.empty() || startsWith(l, "warning:")) continue;
    keep.push_back(l);
  }
  if (keep.size() > n) keep.erase(keep.begin(), keep.end() - static_cast<std::ptrdiff_t>(n));
  return join(keep, "\n");
}

std::string firstErrorLine(std::string_view text) {
  for (const auto& raw : split(nix::stripAnsi(text), '\n')) {
    std::string l(trim(raw));
    if (startsWith(l, "error:")) return l;
  }
  return lastLines(text, 1);
}

}  // namespace

std::map<std::string, BuildPlacement> placeBuilds(nix::NixCli& nix, const RepoConfig& repo,
                                                  const std::string& flakeRef,
                                                  const std::vector<std::string>& hosts) {
  std::map<std::string, BuildPlacement> out;
  std::map<std::string, std::string> given;
  std::map<std::string, const HostConfig*> configured;
  for (const auto& c : repo.hosts) {
    configured[c.name] = &c;
    if (c.target) given[c.name] = *c.target;
  }
  std::vector<std::string> ask;
  for (const auto& h : hosts) {
    auto it = configured.find(h);
    const bool placedByConfig = it != configured.end() && it->second->buildOn.has_value();
    // A host the config builds on the runner needs no evaluation; one it builds on the
    // target still needs the flake's target when the config gives none.
    if (placedByConfig && *it->second->buildOn == BuildPlace::Runner) {
      out[h] = BuildPlacement{false, {}, "hosts." + h + ".build_on: runner", std::nullopt};
      continue;
    }
    if (placedByConfig && given.count(h)) {
      BuildPlacement p{true, {}, "hosts." + h + ".build_on: target", std::nullopt};
      p.target = parseTarget(given[h]);  // checked by the config loader
      out[h] = p;
      continue;
    }
    ask.push_back(h);
  }
  if (ask.empty()) return out;
  nix::HostEvals info =
      nix.evalPerHost(flakeRef, kPlacementFn, ask, {.processes = 1, .fallbackWorkers = 2});
  for (const auto& h : ask) {
    auto it = info.hosts.find(h);
    const nix::HostValue* v = it == info.hosts.end() ? nullptr : &it->second;
    const nlohmann::json* j = v && v->value && v->value->is_object() ? &*v->value : nullptr;
    auto cfg = configured.find(h);
    const bool forced = cfg != configured.end() && cfg->second->buildOn == BuildPlace::Target;
    BuildPlacement p;
    std::optional<std::string> buildHost;
    if (j) {
      if (auto b = j->find("buildOnTarget"); b != j->end() && b->is_boolean() && b->get<bool>()) {
        p.onTarget = true;
        p.reason = "deployment.buildOnTarget";
      }
      if (auto b = j->find("buildHost"); b != j->end() && b->is_string() && !b->empty())
        buildHost = b->get<std::string>();
    }
    if (forced) {
      p.onTarget = true;
      p.reason = "hosts." + h + ".build_on: target";
    }
    if (!p.onTarget && !buildHost) {
      p.reason = "built on the runner";
      out[h] = p;
      continue;
    }
    auto choice = nix::chooseTarget(h, given, v);
    try {
      p.target = parseTarget(choice.text);
    } catch (const InputError& e) {
      p.problem = "the deploy target from " + choice.from + " (" + choice.text +
                  ") cannot be used to build on: " + describe(e);
      out[h] = p;
      continue;
    }
    if (!p.onTarget && buildHost) {
      // Clan's buildHost: build there. Switchyard builds on the target itself or here.
      std::optional<Target> bh;
      try {
        bh = parseTarget(*buildHost);
      } catch (const InputError&) {
      }
      if (bh && bh->toString() == p.target.toString()) {
        p.onTarget = true;
        p.reason = "clan.core.networking.buildHost";
      } else {
        p.problem = "clan.core.networking.buildHost is '" + *buildHost +
                    "', not the host's deploy target " + p.target.toString() +
                    ": Switchyard builds on the runner (and its build.builders) or on the target "
                    "itself; set hosts." +
                    h + ".build_on to runner or target";
      }
    }
    out[h] = p;
  }
  return out;
}

std::string TargetBuilds::remoteGcRoot(const Target& target, const std::string& host) {
  return "/nix/var/nix/gcroots/per-user/" + target.user + "/switchyard-" + host;
}

HostBuildResult TargetBuilds::build(const TargetBuildJob& job, std::chrono::milliseconds timeout,
                                    const std::function<void(std::string_view)>& line) const {
  const auto start = clock_.steadyNow();
  auto elapsed = [&] { return duration_cast<milliseconds>(clock_.steadyNow() - start); };
  HostBuildResult r;
  r.host = job.host;
  r.drvPath = job.drvPath;
  r.outPath = job.outPath;
  const Target& t = job.placement.target;
  const std::string where = t.toString();
  auto fail = [&](std::string message, std::string tail = {}) {
    r.state = HostState::Failed;
    r.message = truncateUtf8(message, 600);
    r.logTail = tail.empty() ? message : tail;
    r.duration = elapsed();
    line("# " + r.message);
    return r;
  };
  line("# building on the target " + where + " (" + job.placement.reason +
       "): the derivations are copied there and realised there; the runner's store gets "
       "nothing");
  if (!settings_.knownHosts)
    return fail("failed on the target " + where +
                ": ssh.known_hosts is not set (target host keys are pinned)");
  auto remaining = [&]() -> milliseconds {
    if (timeout.count() <= 0) return std::chrono::hours(24);
    return std::max<milliseconds>(milliseconds(1000), timeout - elapsed());
  };

  // Reach it first (pinned host key, bounded by the connect timeout), so an unreachable target
  // fails at once with libssh's words instead of in the middle of a copy.
  ssh::ConnectFailure failure;
  ssh::SessionPtr session = ssh::takeSession(ssh_.connect(ssh::endpointFor(t, settings_)), failure);
  if (!session)
    return fail("failed on the target " + where + " (" + std::string(ssh::kindName(failure.kind)) +
                "): " + failure.message);
  line("# connected to " + where + " (" + session->hostKey() + ")");

  RunOptions copy;
  copy.program = "nix";
  copy.args = {"--extra-experimental-features",  "nix-command", "copy", "--derivation", "--to",
               "ssh://" + t.user + "@" + t.host, job.drvPath};
  copy.env["NIX_SSHOPTS"] = pinnedSshOpts(t, settings_);
  copy.timeout = remaining();
  copy.onStderrLine = [&](std::string_view l) { line(l); };
  line("# nix copy --derivation --to ssh://" + t.user + "@" + t.host + " " + job.drvPath);
  RunResult c = procs_.run(copy);
  if (!c.ok())
    return fail("failed on the target " + where + ": copying the derivations there: nix copy " +
                    c.describeStatus() + ": " + firstErrorLine(c.errTail),
                lastLines(c.errTail, 25));

  const std::string root = remoteGcRoot(t, job.host);
  const std::string cmd = "mkdir -p " + shellQuote(root.substr(0, root.rfind('/'))) +
                          " && nix-store --realise " + shellQuote(job.drvPath) + " --add-root " +
                          shellQuote(root);
  line("# on " + where + ": nix-store --realise " + job.drvPath + " --add-root " + root);
  std::deque<std::string> tail;
  auto keep = [&](std::string_view l) {
    line(l);
    tail.emplace_back(l);
    if (tail.size() > 25) tail.pop_front();
  };
  ssh::ExecResult e = session->exec(
      {.command = cmd, .timeout = remaining(), .onStdoutLine = keep, .onStderrLine = keep});
  const std::string tailText = join(std::vector<std::string>(tail.begin(), tail.end()), "\n");
  if (e.timedOut)
    return fail("failed on the target " + where + ": the build did not finish within " +
                    formatDuration(timeout) + " (it may still be running there)",
                tailText);
  if (e.connectionLost)
    return fail("failed on the target " + where +
                    ": the connection was lost during the build: " + e.lostReason,
                tailText);
  if (!e.ok())
    return fail("failed on the target " + where + ": nix-store --realise " + e.describeStatus() +
                    ": " + firstErrorLine(tailText),
                tailText);
  r.state = HostState::Built;
  r.duration = elapsed();
  r.message = "built on the target " + where;
  line("# built on the target " + where + " in " + formatDuration(r.duration) + " -> " +
       job.outPath);
  return r;
}

}  // namespace runner::build
