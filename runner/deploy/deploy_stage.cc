#include "runner/deploy/deploy_stage.h"

#include <algorithm>
#include <set>
#include <thread>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/core/thread_annotations.h"
#include "runner/deploy/ancestry.h"
#include "runner/deploy/rollout.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/deploy/ssh_options.h"
#include "runner/os/files.h"
#include "runner/os/log_file.h"

namespace fs = std::filesystem;

namespace runner::deploy {
namespace {

// Appends lines to per-host log files (os::LogFile: scrubbed); thread-safe.
class LogFiles {
 public:
  LogFiles(fs::path dir, const Redactor* redactor) : dir_(std::move(dir)), redactor_(redactor) {}
  void line(const std::string& host, std::string_view text) {
    MutexLock lk(mu_);
    auto& f = files_[host];
    if (!f)
      f = std::make_unique<os::LogFile>(os::pathUnder(dir_, host, ".log"),
                                        os::LogFile::Mode::Append, redactor_);
    f->line(text);
  }

 private:
  fs::path dir_;
  const Redactor* redactor_;
  Mutex mu_;
  std::map<std::string, std::unique_ptr<os::LogFile>> files_ GUARDED_BY(mu_);
};

}  // namespace

HostFacts hostFactsFrom(const nix::HostValue* info) {
  HostFacts f;
  if (!info || !info->value || !info->value->is_object()) return f;
  const auto& v = *info->value;
  if (auto it = v.find("explicitUpdate"); it != v.end() && it->is_boolean())
    f.requireExplicitUpdate = it->get<bool>();
  if (auto it = v.find("tags"); it != v.end() && it->is_array())
    for (const auto& t : *it)
      if (t.is_string()) f.tags.push_back(t.get<std::string>());
  if (auto it = v.find("user"); it != v.end() && it->is_string()) f.user = it->get<std::string>();
  if (auto it = v.find("port"); it != v.end() && it->is_number_integer()) f.port = it->get<int>();
  if (auto it = v.find("sshOptions"); it != v.end() && it->is_array())
    for (const auto& o : *it)
      if (o.is_string()) f.sshOptions.push_back(o.get<std::string>());
  if (auto it = v.find("escalation"); it != v.end() && it->is_array()) {
    f.escalation.emplace();
    for (const auto& a : *it)
      if (a.is_string()) f.escalation->push_back(a.get<std::string>());
  }
  if (auto it = v.find("replaceUnknownProfiles"); it != v.end() && it->is_boolean())
    f.replaceUnknownProfiles = it->get<bool>();
  if (auto it = v.find("clanVars"); it != v.end() && it->is_object()) {
    HostFacts::ClanVars c;
    c.store = it->value("store", std::string("sops"));
    c.secrets = it->value("secrets", 0);
    c.activation = it->value("activation", 0);
    if (auto k = it->find("ageKeyFile"); k != it->end() && k->is_string())
      c.ageKeyFile = k->get<std::string>();
    f.clanVars = c;
  }
  return f;
}

std::optional<std::string> clanVarsProblem(const HostFacts::ClanVars& vars) {
  if (vars.secrets == 0) return std::nullopt;
  const std::string n =
      std::to_string(vars.secrets) + " secret var file" + (vars.secrets == 1 ? "" : "s");
  const std::string use =
      "; deploy it with `clan machines update` (or set deploy: manual/never for it here)";
  if (vars.store == "sops") {
    if (vars.activation == 0) return std::nullopt;  // encrypted in the closure (sops-nix)
    return "its Clan vars use sops with " + std::to_string(vars.activation) +
           " secret(s) neededFor = \"activation\", which `clan machines update` decrypts on the "
           "deploying machine and uploads to /var/lib/sops-nix/activation before switching; "
           "Switchyard holds no sops admin key" +
           use;
  }
  if (vars.store == "password-store")
    return "its Clan vars use the password-store backend (" + n +
           "), which `clan machines update` decrypts with pass/passage on the deploying machine "
           "and uploads as a tarball to clan.core.vars.password-store.secretLocation before "
           "switching; Switchyard cannot read that store" +
           use;
  return "its Clan vars use the '" + vars.store + "' secret store (" + n +
         "), whose upload Switchyard does not know how to make" + use;
}

std::optional<std::string> heldBackReason(const std::string& host, const RepoConfig& repo,
                                          const HostFacts& facts, bool named) {
  std::optional<DeployPolicy> configured;
  for (const auto& h : repo.hosts)
    if (h.name == host) configured = h.deploy;
  const std::string onlyNamed = " - deployed only when a person names it (a re-run naming " + host +
                                ", or switchyard deploy " + host + ")";
  if (configured == DeployPolicy::Never)
    return "not deployed: deploy: never in the config (built and checked only)";
  if (named) return std::nullopt;
  if (configured == DeployPolicy::Manual)
    return "not deployed: deploy: manual in the config" + onlyNamed;
  if (!configured && facts.requireExplicitUpdate)
    return "not deployed: the flake sets clan.core.deployment.requireExplicitUpdate" + onlyNamed;
  return std::nullopt;
}

SwitchAction actionFor(const std::string& host, const RepoConfig& repo) {
  for (const auto& h : repo.hosts)
    if (h.name == host) return h.action;
  return SwitchAction::Switch;
}

// A deploy has no terminal to answer a password prompt: sudo (Colmena's default escalation is
// `sudo -H --`) gets -n, so a sudoers entry that wants a password fails at once with sudo's own
// "a password is required". Other commands (doas, run0, …) are taken as written.
static std::vector<std::string> nonInteractive(std::vector<std::string> argv) {
  if (argv.empty() || fs::path(argv[0]).filename() != "sudo") return argv;
  for (size_t i = 1; i < argv.size() && argv[i] != "--"; ++i)
    if (argv[i] == "-n" || argv[i] == "--non-interactive") return argv;
  argv.insert(argv.begin() + 1, "-n");
  return argv;
}

void applyHostFacts(HostJob& job, const RepoConfig& repo, const HostFacts& facts,
                    const std::string& targetFrom) {
  SshOverrides o = parseSshOptions(facts.sshOptions);
  const HostConfig* conf = nullptr;
  for (const auto& h : repo.hosts)
    if (h.name == job.host) conf = &h;
  const bool fromConfig = targetFrom == "config";
  const bool userInTarget =
      fromConfig && conf && conf->target && conf->target->find('@') != std::string::npos;
  if (conf && conf->user)
    job.target.user = *conf->user;
  else if (!userInTarget && targetFrom == "colmena" && facts.user)
    job.target.user = *facts.user;
  else if (!userInTarget && targetFrom == "colmena" && o.user)
    job.target.user = *o.user;
  if (targetFrom == "colmena" && job.target.port == 22) {
    if (facts.port)
      job.target.port = *facts.port;
    else if (o.port)
      job.target.port = *o.port;
  }
  job.identityFile = o.identityFile;
  job.connectTimeout = o.connectTimeout;
  if (job.target.user != "root") {
    job.escalation = facts.escalation && !facts.escalation->empty()
                         ? nonInteractive(*facts.escalation)
                         : std::vector<std::string>{"sudo", "-n", "-H", "--"};
  }
  job.replaceUnknownProfiles = facts.replaceUnknownProfiles;
  if (facts.clanVars && facts.clanVars->store == "sops" && facts.clanVars->secrets > 0 &&
      facts.clanVars->ageKeyFile)
    job.requiredFiles.emplace_back(
        *facts.clanVars->ageKeyFile,
        "the machine's sops age key, which sops-nix needs to decrypt its Clan vars during "
        "activation; `clan machines update` uploads it (Switchyard holds no sops admin key)");
}

std::vector<std::string> selectHosts(const std::string& selector,
                                     const std::vector<std::string>& hosts,
                                     const std::map<std::string, HostFacts>& facts) {
  if (!startsWith(selector, "@")) return {selector};
  const std::string tag = selector.substr(1);
  std::vector<std::string> out;
  for (const auto& h : hosts) {
    auto it = facts.find(h);
    if (it != facts.end() &&
        std::find(it->second.tags.begin(), it->second.tags.end(), tag) != it->second.tags.end())
      out.push_back(h);
  }
  return out;
}

namespace {

// Per host: its deployment.keys with every field Colmena declares (defaults as Colmena's),
// keyFile as a string so that a path is never copied into the store.
constexpr const char* kKeysFn =
    "n: c: let\n"
    "    keys = c.config.deployment.keys or { };\n"
    "    str = v: if v == null then null else toString v;\n"
    "  in builtins.mapAttrs (k: v: {\n"
    "    name = v.name or k;\n"
    "    text = v.text or null;\n"
    "    keyFile = str (v.keyFile or null);\n"
    "    keyCommand = v.keyCommand or null;\n"
    "    destDir = v.destDir or \"/run/keys\";\n"
    "    user = v.user or \"root\";\n"
    "    group = v.group or \"root\";\n"
    "    permissions = v.permissions or \"0600\";\n"
    "    uploadAt = v.uploadAt or \"pre-activation\";\n"
    "  }) keys";

// A host's keys from the value kKeysFn evaluated to.
HostKeys keysFromValue(const std::optional<nlohmann::json>& v) {
  if (!v || v->is_null()) return std::vector<KeySpec>{};
  if (!v->is_object()) return std::string("deployment.keys is not an attribute set");
  try {
    std::vector<KeySpec> keys;
    std::set<std::string> destinations;
    for (const auto& [attr, decl] : v->items()) {
      keys.push_back(parseKeySpec(attr, decl));
      if (!destinations.insert(keys.back().destination()).second)
        throw InputError("two keys are uploaded to " + keys.back().destination());
    }
    return keys;
  } catch (const InputError& e) {
    return describe(e);
  }
}

// evalHostInfo's fields and `keys`: kKeysFn's value, or false when it does not evaluate.
std::string fleetFunction() {
  return std::string("n: c: (") + nix::hostInfoFunction() +
         ") n c // { keys = let r = builtins.tryEval (let v = (" + kKeysFn +
         ") n c; in builtins.deepSeq v v); in if r.success then r.value else false; }";
}

}  // namespace

FleetInfo discoverFleet(nix::NixCli& nix, const RepoConfig& repo, const fs::path& gitDir,
                        const std::string& sha, const std::vector<std::string>& hosts,
                        bool withKeys) {
  std::map<std::string, std::string> given;
  for (const auto& c : repo.hosts)
    if (c.target) given[c.name] = *c.target;
  FleetInfo out;
  if (hosts.empty()) return out;
  const std::string flakeRef = nix::gitFlakeRef(gitDir, sha);
  nix::HostEvals info;
  if (withKeys) {
    info =
        nix.evalPerHost(flakeRef, fleetFunction(), hosts, {.processes = 1, .fallbackWorkers = 2});
    // Keys that do not evaluate (or fail the whole host: an error tryEval cannot catch) are
    // evaluated again on their own, for Nix's message; such hosts' facts too, without keys.
    std::vector<std::string> again, keysAgain;
    for (const auto& h : hosts) {
      auto it = info.hosts.find(h);
      if (info.flakeError || it == info.hosts.end() || it->second.missing) continue;
      if (it->second.error) {
        again.push_back(h);
        keysAgain.push_back(h);
        continue;
      }
      const auto& v = it->second.value;
      const nlohmann::json* k = nullptr;
      if (v && v->is_object())
        if (auto f = v->find("keys"); f != v->end()) k = &*f;
      if (k && k->is_boolean())
        keysAgain.push_back(h);
      else
        out.keys[h] = keysFromValue(k ? std::optional<nlohmann::json>(*k) : std::nullopt);
    }
    if (!again.empty()) {
      nix::HostEvals plain = nix.evalHostInfo(flakeRef, again);
      for (const auto& h : again) info.hosts[h] = plain.hosts[h];
    }
    if (info.flakeError)
      for (const auto& h : hosts)
        out.keys[h] = "deployment.keys do not evaluate: " + *info.flakeError;
    else
      for (auto& [h, k] : evalKeys(nix, flakeRef, keysAgain)) out.keys[h] = std::move(k);
  } else {
    info = nix.evalHostInfo(flakeRef, hosts);
  }
  for (const auto& h : hosts) {
    auto it = info.hosts.find(h);
    const nix::HostValue* v = it == info.hosts.end() ? nullptr : &it->second;
    out.facts[h] = hostFactsFrom(v);
    auto choice = nix::chooseTarget(h, given, v);
    out.targetFrom[h] = choice.from;
    try {
      out.targets[h] = parseTarget(choice.text);  // the flake's text is checked like the config's
    } catch (const InputError& e) {
      out.problems[h] = "the deploy target from " + choice.from + ": " + describe(e);
    }
  }
  return out;
}

std::map<std::string, Target> resolveTargets(nix::NixCli& nix, const RepoConfig& repo,
                                             const fs::path& gitDir, const std::string& sha,
                                             const std::vector<std::string>& hosts,
                                             std::map<std::string, std::string>& problems) {
  FleetInfo f = discoverFleet(nix, repo, gitDir, sha, hosts);
  for (auto& [h, why] : f.problems) problems[h] = std::move(why);
  return std::move(f.targets);
}

std::map<std::string, HostKeys> evalKeys(nix::NixCli& nix, const std::string& flakeRef,
                                         const std::vector<std::string>& hosts) {
  std::map<std::string, HostKeys> out;
  if (hosts.empty()) return out;
  nix::HostEvals ev = nix.evalPerHost(flakeRef, kKeysFn, hosts);
  for (const auto& h : hosts) {
    if (ev.flakeError) {
      out[h] = "deployment.keys do not evaluate: " + *ev.flakeError;
      continue;
    }
    auto it = ev.hosts.find(h);
    if (it == ev.hosts.end() || it->second.missing) {
      out[h] = std::vector<KeySpec>{};
      continue;
    }
    if (it->second.error) {
      out[h] = "deployment.keys do not evaluate: " + truncateUtf8(*it->second.error, 400);
      continue;
    }
    out[h] = keysFromValue(it->second.value);
  }
  return out;
}

// Caps the hosts deployed at once across every run (Concurrency::deploys).
class SshDeployStage::LimitedDeployer final : public HostDeployer {
 public:
  LimitedDeployer(HostDeployer& inner, Slots& slots) : inner_(inner), slots_(slots) {}
  HostOutcome deploy(const HostJob& job, const DeployRequest& request,
                     DeployObserver& observer) override {
    Slots::Held slot(slots_);
    return inner_.deploy(job, request, observer);
  }

 private:
  HostDeployer& inner_;
  Slots& slots_;
};

namespace {

class DeployRelay final : public DeployObserver {
 public:
  DeployRelay(StageListener& l, LogFiles& logs) : l_(l), logs_(logs) {}
  void stepStarted(const std::string& host, Step step, std::string_view detail) override {
    std::string what = "deploy: " + std::string(stepName(step));
    if (!detail.empty()) what += " " + std::string(detail);
    logs_.line(host, "# " + what);
    if (step == Step::Lock)
      l_.hostStarted(host, what);
    else
      l_.hostProgress(host, what);
    l_.hostStep(host, stepName(step), false);
  }
  void stepFinished(const std::string& host, Step step, std::chrono::milliseconds,
                    std::string_view) override {
    l_.hostStep(host, stepName(step), true);
  }
  void logLine(const std::string& host, Step, std::string_view line) override {
    logs_.line(host, line);
    l_.hostLine(host, line);
  }
  void hostFinished(const HostOutcome& o) override {
    std::string what = resultLabel(o.result) + (o.reason.empty() ? "" : ": " + o.reason);
    logs_.line(o.host, "# deploy " + what);
    l_.hostFinished(o.host, what);
  }

 private:
  StageListener& l_;
  LogFiles& logs_;
};

HostState hostStateOf(HostResult r) {
  switch (r) {
    case HostResult::Succeeded:
    case HostResult::DryRun:
      return HostState::Succeeded;
    case HostResult::Failed:
      return HostState::Failed;
    case HostResult::RolledBack:
      return HostState::RolledBack;
    case HostResult::Unreachable:
      return HostState::Unreachable;
    case HostResult::Refused:
      return HostState::Refused;
    case HostResult::Skipped:
      return HostState::Skipped;
  }
  return HostState::Failed;
}

}  // namespace

std::optional<DeployHostOutcome> SshDeployStage::alreadyRunning(const DeployInput& in,
                                                                const DeployHost& h,
                                                                const HostJob& job) {
  auto conn = ports_.ssh.connect(ssh::endpointFor(job.target, sshConfigFor(job, ssh_)));
  auto* raw = std::get_if<ssh::SessionPtr>(&conn);
  if (!raw || !*raw) return std::nullopt;  // the deploy reports why
  auto session = escalate(std::move(*raw), job.escalation);
  // An activation the dead runner started may still be in flight on the target (its
  // watchdog confirms nothing and rolls back after confirm_timeout): wait until every deploy
  // agent there has settled, then look at what the host runs. Phases: remote_agent.h.
  const std::string remoteDir = DeploySettings{}.remoteDir;
  const std::string probe =
      "busy=0; for d in " + remoteDir +
      "/deploy-*/; do [ -f \"$d/phase\" ] || continue; case \"$(cat \"$d/phase\")\" in "
      "confirmed|rolled-back|rollback-failed|failed) ;; *) busy=1 ;; esac; done; "
      "echo \"busy=$busy\"; "
      "echo \"profile=$(readlink -f /nix/var/nix/profiles/system 2>/dev/null)\"; "
      "echo \"current=$(readlink -f /run/current-system 2>/dev/null)\"";
  const auto deadline = ports_.clock.steadyNow() + in.repo->activation.switchTimeout +
                        in.repo->activation.confirmTimeout + std::chrono::seconds(30);
  std::string profile, current;
  for (;;) {
    auto r = session->exec({.command = probe, .timeout = std::chrono::seconds(30)});
    if (!r.ok()) return std::nullopt;
    bool busy = false;
    for (const auto& line : split(r.out, '\n')) {
      if (line == "busy=1") busy = true;
      if (startsWith(line, "profile=")) profile = line.substr(8);
      if (startsWith(line, "current=")) current = line.substr(8);
    }
    if (!busy) break;
    if (ports_.clock.steadyNow() > deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::seconds(1));
  }
  if (profile != h.outPath || (!current.empty() && current != h.outPath)) return std::nullopt;
  store::DeploymentRecord rec;
  rec.host = h.host;
  rec.forge = in.repo->forge.value_or("");
  rec.repo = in.repo->name;
  rec.sha = in.sha;
  rec.storePath = h.outPath;
  rec.result = "succeeded";
  rec.detail = "found running after a runner restart";
  rec.runId = in.runId;
  rec.startedAt = rec.finishedAt = ports_.clock.nowMillis();
  ports_.deployments.record(rec);
  return DeployHostOutcome{h.host, HostState::Succeeded,
                           "already running " + h.outPath + " (checked after a restart)"};
}

// What a deploy did: hosts settled before the rollout (a refused target, held back by its
// policy, keys that cannot be used, found running after a restart), then the rollout's
// outcomes.
struct SshDeployStage::Run {
  std::vector<HostOutcome> settled;
  std::vector<HostOutcome> rolled;
  std::map<std::string, Target> targets;
};

namespace {

HostOutcome settledOutcome(const std::string& host, const std::string& storePath, HostResult r,
                           const std::string& reason) {
  HostOutcome o;
  o.host = host;
  o.storePath = storePath;
  o.result = r;
  o.reason = truncateUtf8(reason, 500);
  return o;
}

// What a deploy saw of a host, as a probe would have (store::HostProbes): unreachable with
// ssh's words, or what the host runs after a successful deploy of `job`.
store::ProbeRecord seenByDeploy(const RepoConfig& repo, const HostJob& job, const HostOutcome& o,
                                int64_t now) {
  store::ProbeRecord p;
  p.forge = repo.forge.value_or("");
  p.repo = repo.name;
  p.host = job.host;
  p.target = job.target.toString();
  p.probedAt = now;
  p.reached = o.result == HostResult::Succeeded;
  if (!p.reached) {
    p.error = o.reason;
    return p;
  }
  p.lastSeen = now;
  // boot: the running system stays until the next reboot; test: the profile stays.
  p.currentPath = job.action == SwitchAction::Boot ? o.previousPath : job.storePath;
  p.profilePath = job.action == SwitchAction::Test ? o.previousPath : job.storePath;
  p.generation = job.action == SwitchAction::Test ? o.previousGeneration : o.newGeneration;
  return p;
}

}  // namespace

SshDeployStage::Run SshDeployStage::run(const DeployInput& in, StageListener& listener) {
  Run out;
  if (in.hosts.empty()) return out;
  std::vector<std::string> names;
  for (const auto& h : in.hosts) names.push_back(h.host);
  FleetInfo fleet = discoverFleet(ports_.nix, *in.repo, in.gitDir, in.sha, names, true);
  out.targets = fleet.targets;
  const std::set<std::string> named(in.named.begin(), in.named.end());

  std::vector<const DeployHost*> toDeploy;
  for (const auto& h : in.hosts) {
    if (auto p = fleet.problems.find(h.host); p != fleet.problems.end()) {
      out.settled.push_back(settledOutcome(h.host, h.outPath, HostResult::Refused, p->second));
      continue;
    }
    if (auto why = heldBackReason(h.host, *in.repo, fleet.facts[h.host], named.count(h.host) > 0)) {
      HostOutcome o = settledOutcome(h.host, h.outPath, HostResult::Skipped, *why);
      o.heldBack = true;
      listener.hostFinished(h.host, "skipped: " + *why);
      out.settled.push_back(std::move(o));
      continue;
    }
    if (const auto& vars = fleet.facts[h.host].clanVars)
      if (auto why = clanVarsProblem(*vars)) {
        out.settled.push_back(
            settledOutcome(h.host, h.outPath, HostResult::Refused, "not deployed: " + *why));
        continue;
      }
    toDeploy.push_back(&h);
  }
  const auto& keys = fleet.keys;

  std::vector<HostJob> jobs;
  for (const auto* hp : toDeploy) {
    const DeployHost& h = *hp;
    auto k = keys.find(h.host);
    if (k != keys.end() && std::holds_alternative<std::string>(k->second)) {
      HostOutcome o =
          settledOutcome(h.host, h.outPath, HostResult::Failed, std::get<std::string>(k->second));
      o.failedStep = Step::Keys;
      out.settled.push_back(std::move(o));
      continue;
    }
    HostJob job{h.host, out.targets.at(h.host), h.outPath};
    job.action = actionFor(h.host, *in.repo);
    try {
      applyHostFacts(job, *in.repo, fleet.facts[h.host], fleet.targetFrom[h.host]);
    } catch (const InputError& e) {
      out.settled.push_back(settledOutcome(h.host, h.outPath, HostResult::Refused, describe(e)));
      continue;
    }
    out.targets[h.host] = job.target;
    if (h.checkCurrentFirst) {
      listener.hostStarted(h.host, "deploy: checking what the host runs after a restart");
      if (auto done = alreadyRunning(in, h, job)) {
        out.settled.push_back(
            settledOutcome(h.host, h.outPath, HostResult::Succeeded, done->summary));
        continue;
      }
    }
    if (k != keys.end()) job.keys = std::get<std::vector<KeySpec>>(k->second);
    jobs.push_back(std::move(job));
  }
  if (jobs.empty()) return out;

  // Canaries may name Colmena tags (@tag): each stands for the hosts carrying it.
  RolloutConfig rollout = in.repo->rollout;
  rollout.canary.clear();
  for (const auto& c : in.repo->rollout.canary)
    for (auto& h : selectHosts(c, names, fleet.facts)) rollout.canary.push_back(std::move(h));

  DeploySettings settings;
  settings.activation = in.repo->activation;
  settings.ssh = ssh_;
  settings.lockWait = lockWait_;
  GitAncestry ancestry(in.gitDir);
  DeployServices services{ports_.ssh,         ports_.processes, ports_.http,  ports_.locks,
                          ports_.deployments, ancestry,         ports_.clock, ports_.log};
  SshDeployer deployer(services, settings);  // throws ConfigError without known_hosts
  LimitedDeployer limited(deployer, deploys_);
  LogFiles logs(in.logDir, ports_.redactor);
  DeployRelay relay(listener, logs);
  DeployRequest request;
  request.forge = in.repo->forge.value_or("");
  request.repo = in.repo->name;
  request.sha = in.sha;
  request.force = in.force;
  request.dryRun = in.dryRun;
  if (in.runId != 0) request.runId = in.runId;
  request.stopRequested = in.stopRequested;
  out.rolled = runRollout(jobs, request, rollout, limited, relay);
  if (ports_.probes && !in.dryRun) {
    for (const auto& o : out.rolled) {
      if (o.result != HostResult::Unreachable && o.result != HostResult::Succeeded) continue;
      const auto job = std::find_if(jobs.begin(), jobs.end(),
                                    [&](const HostJob& j) { return j.host == o.host; });
      if (job == jobs.end()) continue;
      try {
        ports_.probes->record(seenByDeploy(*in.repo, *job, o, ports_.clock.nowMillis()));
      } catch (const std::exception& e) {
        ports_.log.warn("noting when " + o.host + " was last seen failed: " + describe(e));
      }
    }
  }
  return out;
}

std::vector<DeployHostOutcome> SshDeployStage::deploy(const DeployInput& in,
                                                      StageListener& listener) {
  Run r = run(in, listener);
  std::vector<DeployHostOutcome> out;
  for (const auto& o : r.settled)
    out.push_back({o.host, hostStateOf(o.result), truncateUtf8(o.reason, 500)});
  for (const auto& o : r.rolled) {
    std::string summary = resultLabel(o.result);
    if (o.result == HostResult::Succeeded && o.newGeneration)
      summary = "deployed (generation " + std::to_string(*o.newGeneration) + ") in " +
                formatDuration(o.total);
    else if (!o.reason.empty())
      summary += ": " + o.reason;
    out.push_back({o.host, hostStateOf(o.result), truncateUtf8(summary, 500)});
  }
  return out;
}

SshDeployStage::Result SshDeployStage::deployHosts(const DeployInput& in, StageListener& listener) {
  Run r = run(in, listener);
  Result out;
  for (auto& o : r.settled) out.hosts.push_back(std::move(o));
  for (auto& o : r.rolled) out.hosts.push_back(std::move(o));
  out.targets = std::move(r.targets);
  return out;
}

}  // namespace runner::deploy
