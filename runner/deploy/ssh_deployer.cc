#include "runner/deploy/ssh_deployer.h"

#include <algorithm>
#include <cctype>
#include <deque>
#include <functional>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/core/line_splitter.h"
#include "runner/core/text.h"
#include "runner/deploy/remote_agent.h"
#include "runner/os/files.h"

namespace runner::deploy {

using namespace std::chrono_literals;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using SteadyTime = std::chrono::steady_clock::time_point;

namespace {

constexpr const char* kProfile = "/nix/var/nix/profiles/system";
constexpr size_t kLogLinesKept = 40;

std::string lastLine(std::string_view text) {
  auto lines = split(std::string(trim(text)), '\n');
  for (auto it = lines.rbegin(); it != lines.rend(); ++it)
    if (!trim(*it).empty()) return std::string(trim(*it));
  return "";
}

// "exited with status 1: error: cannot connect to …" — the status and Nix's last words.
std::string describeFailure(const std::string& status, std::string_view errText) {
  std::string last = lastLine(errText);
  return last.empty() ? status : status + ": " + last;
}

std::string randomHex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kHex[rng() % 16];
  return s;
}

bool hasWhitespace(std::string_view s) {
  return s.find_first_of(" \t\n\r") != std::string_view::npos;
}

struct Inspection {
  std::string link;  // "system-4-link", or "" without a profile
  std::optional<int64_t> generation;
  std::optional<std::string> path;
  bool present = false;  // the new closure is already valid on the target
  bool systemd = false;
};

Inspection parseInspection(const std::string& out) {
  Inspection in;
  for (const auto& line : split(out, '\n')) {
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = line.substr(0, eq), value = std::string(trim(line.substr(eq + 1)));
    if (key == "gen") in.link = value;
    if (key == "path" && !value.empty()) in.path = value;
    if (key == "present") in.present = value == "1";
    if (key == "systemd") in.systemd = value == "1";
  }
  if (!in.link.empty()) in.generation = parseGenerationLink(in.link);
  return in;
}

std::string inspectCommand(const std::string& storePath) {
  const std::string p = kProfile, out = shellQuote(storePath);
  return "p=" + p +
         "; if [ -L \"$p\" ]; then echo \"gen=$(readlink \"$p\")\"; "
         "echo \"path=$(readlink -f \"$p\")\"; else echo gen=; fi; "
         "if [ -e " +
         out + " ] && nix-store --check-validity " + out +
         " 2>/dev/null; then echo present=1; else echo present=0; fi; "
         "if [ -d /run/systemd/system ]; then echo systemd=1; else echo systemd=0; fi";
}

}  // namespace

std::string keyUploadCommand(const KeySpec& key) {
  const std::string dir = shellQuote(key.destDir);
  // The temporary file is made (0600, root) in the destination directory, gets its owner and
  // mode while still empty, and only then receives the content from stdin; the rename makes
  // it appear whole. A failure removes it.
  return "set -e; umask 077; d=" + dir +
         "; if [ ! -d \"$d\" ]; then mkdir -p \"$d\"; chmod 0751 \"$d\"; fi; "
         "t=$(mktemp \"$d/.switchyard-key.XXXXXXXX\"); trap 'rm -f \"$t\"' EXIT; "
         "chown " +
         shellQuote(key.user + ":" + key.group) + " \"$t\"; chmod " + shellQuote(key.permissions) +
         " \"$t\"; cat > \"$t\"; mv -f \"$t\" " + shellQuote(key.destination()) + "; trap - EXIT";
}

// ---- pure helpers ------------------------------------------------------------------------

SshConfig sshConfigFor(const HostJob& job, const SshConfig& ssh) {
  SshConfig c = ssh;
  if (job.identityFile) c.identityFile = *job.identityFile;
  if (job.connectTimeout) c.connectTimeout = *job.connectTimeout;
  return c;
}

namespace {

class EscalatedSession final : public ssh::Session {
 public:
  EscalatedSession(ssh::SessionPtr inner, std::string prefix)
      : inner_(std::move(inner)), prefix_(std::move(prefix)) {}
  ssh::ExecResult exec(const ssh::ExecRequest& request) override {
    ssh::ExecRequest r = request;
    r.command = prefix_ + " sh -c " + shellQuote(request.command);
    return inner_->exec(r);
  }
  bool connected() const override { return inner_->connected(); }
  std::string hostKey() const override { return inner_->hostKey(); }

 private:
  ssh::SessionPtr inner_;
  std::string prefix_;
};

// Words of plain characters as they are (readable in logs and URLs), others shell-quoted.
std::string quoteArgv(const std::vector<std::string>& argv) {
  std::vector<std::string> q;
  for (const auto& a : argv) {
    const bool plain = !a.empty() && std::all_of(a.begin(), a.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '/' || c == '=';
    });
    q.push_back(plain ? a : shellQuote(a));
  }
  return join(q, " ");
}

}  // namespace

ssh::SessionPtr escalate(ssh::SessionPtr session, const std::vector<std::string>& escalation) {
  if (!session || escalation.empty()) return session;
  return std::make_unique<EscalatedSession>(std::move(session), quoteArgv(escalation));
}

std::string nixSshOpts(const Target& target, const SshConfig& ssh,
                       std::chrono::milliseconds connectTimeout, const std::string& kexAlgorithms) {
  if (!ssh.knownHosts) throw ConfigError("ssh.known_hosts is not set");
  auto checkPath = [](const std::filesystem::path& p, const char* what) {
    if (hasWhitespace(p.string()))
      throw InputError(std::string(what) + " path '" + p.string() +
                       "' contains whitespace, which NIX_SSHOPTS cannot carry");
  };
  checkPath(*ssh.knownHosts, "known_hosts");
  long secs = std::max<long>(1, static_cast<long>((connectTimeout.count() + 999) / 1000));
  std::string o = "-F /dev/null -p " + std::to_string(target.port) +
                  " -o UserKnownHostsFile=" + ssh.knownHosts->string() +
                  " -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes"
                  " -o BatchMode=yes -o ConnectTimeout=" +
                  std::to_string(secs);
  if (ssh.identityFile) {
    checkPath(*ssh.identityFile, "identity file");
    o += " -i " + ssh.identityFile->string() + " -o IdentitiesOnly=yes";
  }
  if (!ssh.useAgent) o += " -o IdentityAgent=none";
  if (!kexAlgorithms.empty()) {
    if (hasWhitespace(kexAlgorithms)) throw InputError("KexAlgorithms must not contain spaces");
    o += " -o KexAlgorithms=" + kexAlgorithms;
  }
  return o;
}

RunOptions nixCopyOptions(const HostJob& job, const DeploySettings& settings) {
  RunOptions o;
  o.program = settings.nixCopyProgram;
  // Nix 2.8 takes no port in the store URL (it would hand "host:port" to ssh as the host).
  std::string to = "ssh://" + job.target.user + "@" + job.target.host;
  // A login user that is not root writes to the store through the escalation (Nix runs
  // `<remote-program> --serve --write` through the remote shell).
  if (!job.escalation.empty())
    to += "?remote-program=" + percentEncode(quoteArgv(job.escalation) + " nix-store", "/");
  o.args = {"--extra-experimental-features", "nix-command", "copy", "--to", to};
  if (settings.activation.substituteOnTarget) o.args.push_back("--substitute-on-destination");
  o.args.push_back(job.storePath);
  const SshConfig ssh = sshConfigFor(job, settings.ssh);
  o.env["NIX_SSHOPTS"] = nixSshOpts(
      job.target, ssh, duration_cast<milliseconds>(ssh.connectTimeout), settings.copyKexAlgorithms);
  o.timeout = settings.copyTimeout;
  return o;
}

std::string expandCheckUrl(const std::string& url, const HostJob& job) {
  std::string host = job.target.host.find(':') != std::string::npos ? "[" + job.target.host + "]"
                                                                    : job.target.host;
  std::string out;
  for (size_t i = 0; i < url.size();) {
    if (url.compare(i, 6, "{host}") == 0) {
      out += host;
      i += 6;
    } else if (url.compare(i, 6, "{name}") == 0) {
      out += job.host;
      i += 6;
    } else {
      out += url[i++];
    }
  }
  return out;
}

// ---- one host's deploy ---------------------------------------------------------------------

class HostRun {
 public:
  HostRun(SshDeployer& d, const HostJob& job, const DeployRequest& req, DeployObserver& obs)
      : svc_(d.services_), cfg_(d.settings_), job_(job), req_(req), obs_(obs) {
    endpoint_ = ssh::endpointFor(job.target, sshConfigFor(job, cfg_.ssh));
  }

  HostOutcome run() {
    const auto t0 = svc_.clock.steadyNow();
    startedAt_ = svc_.clock.nowMillis();
    out_.host = job_.host;
    out_.storePath = job_.storePath;
    try {
      body();
    } catch (const std::exception& e) {
      // The per-host boundary: the runner itself failed (database, a bug); report it here.
      std::string why = describe(e);
      svc_.log.error("deploying " + job_.host + ": " + why);
      finish(HostResult::Failed,
             "internal error during " + std::string(stepName(current_)) + ": " + why);
    }
    out_.activationLog = join(std::vector<std::string>(logTail_.begin(), logTail_.end()), "\n");
    if (out_.result != HostResult::DryRun && out_.result != HostResult::Skipped) record();
    machineLease_.reset();
    lease_.reset();
    out_.total = duration_cast<milliseconds>(svc_.clock.steadyNow() - t0);
    return std::move(out_);
  }

 private:
  // ---- bookkeeping ----
  void begin(Step s, std::string_view detail = {}) {
    current_ = s;
    stepOpen_ = true;
    stepStart_ = svc_.clock.steadyNow();
    obs_.stepStarted(job_.host, s, detail);
  }
  void end(std::string_view detail = {}) {
    if (!stepOpen_) return;
    stepOpen_ = false;
    auto took = duration_cast<milliseconds>(svc_.clock.steadyNow() - stepStart_);
    out_.durations.emplace_back(current_, took);
    obs_.stepFinished(job_.host, current_, took, detail);
  }
  // Ends the current step and sets the outcome.
  void finish(HostResult r, std::string reason) {
    if (stepOpen_) end(reason);
    out_.result = r;
    out_.reason = std::move(reason);
    if (r != HostResult::Succeeded && r != HostResult::DryRun) out_.failedStep = current_;
  }
  void emitLog(std::string_view bytes) {
    logLines_.feed(bytes, [this](std::string_view line) { logLine(line); });
  }
  void logLine(std::string_view line) {
    obs_.logLine(job_.host, current_, line);
    logTail_.emplace_back(line);
    if (logTail_.size() > kLogLinesKept) logTail_.pop_front();
  }
  SteadyTime now() const { return svc_.clock.steadyNow(); }

  // ---- the protocol ----
  void body() {
    if (!req_.dryRun) {
      begin(Step::Lock);
      std::string purpose = "deploying " + shortSha(req_.sha) + " from " + req_.repo;
      if (req_.runId) purpose += " (run " + std::to_string(*req_.runId) + ")";
      auto r = svc_.locks.acquire(job_.host, purpose, cfg_.lockWait);
      if (auto* busy = std::get_if<HostLockGuard::Busy>(&r))
        return finish(HostResult::Refused, "another deploy holds the lock of " + job_.host + " (" +
                                               describeHolder(*busy) + ")");
      lease_.emplace(std::move(std::get<HostLockGuard::Lease>(r)));
      // Two host names (or two repositories) may name one machine: lock the machine too.
      // (Keys with a space cannot collide with host names.)
      const std::string machine = "machine " + job_.target.toString();
      auto m = svc_.locks.acquire(machine, purpose + " as " + job_.host, cfg_.lockWait);
      if (auto* busy = std::get_if<HostLockGuard::Busy>(&m))
        return finish(HostResult::Refused, "another deploy holds the lock of the " + machine +
                                               " (" + describeHolder(*busy) + ")");
      machineLease_.emplace(std::move(std::get<HostLockGuard::Lease>(m)));
      end();
    }

    begin(Step::Ancestry);
    if (auto last = svc_.deployments.lastSucceeded(job_.host, req_.forge, req_.repo);
        last && last->sha != req_.sha) {
      bool descends = false;
      std::string why;
      try {
        descends = svc_.ancestry.isAncestor(last->sha, req_.sha);
      } catch (const Error& e) {
        why = " (" + e.describe() + ")";
      }
      if (!descends) {
        std::string msg = "commit " + shortSha(req_.sha) + " is not a descendant of " +
                          shortSha(last->sha) + ", deployed to " + job_.host + " at " +
                          formatUtcMillis(last->finishedAt) + why;
        if (!req_.force)
          return finish(HostResult::Refused, msg + "; use --force to deploy it anyway");
        logLine("forced: " + msg);
        end("forced");
      }
    }
    end();

    begin(Step::Connect, job_.target.toString());
    {
      ssh::ConnectFailure failure;
      session_ = escalate(ssh::takeSession(svc_.ssh.connect(endpoint_), failure), job_.escalation);
      if (!session_) {
        switch (failure.kind) {
          case ssh::ConnectFailure::Kind::Unreachable:
            return finish(HostResult::Unreachable, failure.message);
          case ssh::ConnectFailure::Kind::HostKeyRejected:
            return finish(HostResult::Refused, failure.message);
          case ssh::ConnectFailure::Kind::AuthFailed:
            return finish(HostResult::Failed, failure.message);
        }
      }
    }
    end(session_->hostKey());

    begin(Step::Inspect);
    auto ir = session_->exec({.command = inspectCommand(job_.storePath), .timeout = 30s});
    if (!ir.ok())
      return finish(HostResult::Failed, "inspecting the host failed: " +
                                            describeFailure(ir.describeStatus(), ir.errTail));
    Inspection insp = parseInspection(ir.out);
    if (!insp.link.empty() && !insp.generation)
      return finish(HostResult::Failed, std::string(kProfile) + " points at '" + insp.link +
                                            "', not at a system-N-link generation");
    out_.previousGeneration = insp.generation;
    out_.previousPath = insp.path;
    if (auto why = unknownProfile(insp)) return finish(HostResult::Refused, *why);
    for (const auto& [path, missing] : job_.requiredFiles) {
      auto r = session_->exec({.command = "test -e " + shellQuote(path), .timeout = 30s});
      if (r.exitStatus == 1) return finish(HostResult::Refused, path + " is missing: " + missing);
      if (!r.ok())
        return finish(HostResult::Failed, "checking for " + path + " failed: " +
                                              describeFailure(r.describeStatus(), r.errTail));
    }
    end(insp.generation ? "generation " + std::to_string(*insp.generation) + " (" +
                              insp.path.value_or("?") + ")"
                        : "no system profile yet");

    if (req_.dryRun) return dryRun(insp);

    begin(Step::Copy);
    if (insp.present) {
      end("already on the host");
    } else {
      RunOptions copy = nixCopyOptions(job_, cfg_);
      copy.onStderrLine = [&](std::string_view l) { logLine(l); };
      auto r = svc_.processes.run(copy);
      if (!r.ok())
        return finish(HostResult::Failed,
                      "nix copy " + describeFailure(r.describeStatus(), r.errTail));
      end();
    }

    if (!job_.keys.empty()) {
      begin(Step::Keys);
      if (auto problem = readKeys()) return finish(HostResult::Failed, *problem);
      if (auto problem = uploadKeys(KeySpec::UploadAt::PreActivation, *session_))
        return finish(HostResult::Failed, *problem);
      end();
    }

    // The last moment to find out that this runner's lease expired and another runner took
    // the host over (issue 16): then it activates nothing.
    if (auto lost = svc_.locks.lost(job_.host)) return finish(HostResult::Failed, *lost);
    activate();
  }

  // deployment.replaceUnknownProfiles = false: why the host's system profile, which no deploy
  // of ours put there, must not be replaced (nullopt: it may be).
  std::optional<std::string> unknownProfile(const Inspection& insp) {
    if (job_.replaceUnknownProfiles || !insp.path || *insp.path == job_.storePath)
      return std::nullopt;
    for (const auto& r : svc_.deployments.history(job_.host, 200))
      if (r.result == "succeeded" && r.storePath == *insp.path) return std::nullopt;
    return "the system profile points at " + *insp.path +
           ", which no deploy of Switchyard's put there, and the flake sets "
           "deployment.replaceUnknownProfiles = false";
  }

  // The keys' contents, read on the runner: text as given, keyFile read, keyCommand run (argv,
  // no shell). Returns why one could not be had. Nothing of a content goes into the reason.
  std::optional<std::string> readKeys() {
    keyContents_.clear();
    for (const auto& k : job_.keys) {
      switch (k.source) {
        case KeySpec::Source::Text:
          keyContents_.push_back(k.text);
          break;
        case KeySpec::Source::File:
          try {
            keyContents_.push_back(os::readFile(k.keyFile));
          } catch (const Error& e) {
            return "key " + k.name + ": cannot read its keyFile on the runner: " + e.describe();
          }
          break;
        case KeySpec::Source::Command: {
          RunOptions o;
          o.program = k.keyCommand.front();
          o.args.assign(k.keyCommand.begin() + 1, k.keyCommand.end());
          o.timeout = 60s;
          o.stderrTailBytes = 0;  // a secret tool's complaints may quote the secret
          RunResult r;
          try {
            r = svc_.processes.run(o);
          } catch (const Error& e) {
            return "key " + k.name + ": its keyCommand could not be started: " + e.describe();
          }
          if (!r.ok())
            return "key " + k.name + ": its keyCommand (" + k.keyCommand.front() + ") " +
                   r.describeStatus();
          keyContents_.push_back(std::move(r.out));
          break;
        }
      }
    }
    return std::nullopt;
  }

  // Uploads the keys of one phase over `session`. Returns why one failed.
  std::optional<std::string> uploadKeys(KeySpec::UploadAt phase, ssh::Session& session) {
    for (size_t i = 0; i < job_.keys.size() && i < keyContents_.size(); ++i) {
      const KeySpec& k = job_.keys[i];
      if (k.uploadAt != phase) continue;
      auto r = session.exec({.command = keyUploadCommand(k),
                             .stdinData = keyContents_[i],
                             .timeout = 60s,
                             .maxStdout = 4096});
      if (!r.ok())
        return "uploading key " + k.name + " to " + k.destination() +
               " failed: " + describeFailure(r.describeStatus(), r.errTail);
      logLine("switchyard: key " + k.describe());
    }
    return std::nullopt;
  }

  void activate() {
    begin(Step::Activate);
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%013lld", static_cast<long long>(svc_.clock.nowMillis()));
    dir_ = cfg_.remoteDir + "/deploy-" + stamp + "-" + randomHex(6);
    AgentParams p;
    p.dir = dir_;
    p.storePath = job_.storePath;
    p.profile = kProfile;
    p.previousGeneration = out_.previousGeneration;
    p.confirmTimeout = cfg_.activation.confirmTimeout;
    p.switchTimeout = cfg_.activation.switchTimeout;
    p.detach = cfg_.detach;
    p.action = job_.action;
    // Upload the agent and start it in one round trip.
    auto st = session_->exec(
        {.command = agentInstallAndStartCommand(p), .stdinData = agentScript(), .timeout = 30s});
    if (!st.ok()) {
      std::string why =
          "starting the activation failed: " + describeFailure(st.describeStatus(), st.errTail);
      // Exit 5 (the watchdog was launched but did not report in time), a timeout or a lost
      // connection: a watchdog may be running, so the host may switch after all. Learn what
      // it did rather than report an untouched host. Other statuses are refusals before
      // anything was launched (missing toplevel, another deploy active, profile changed).
      if (st.connectionLost || st.timedOut || st.exitStatus == 5) {
        end("the watchdog may be running");
        return verify(why);
      }
      return finish(HostResult::Failed, why);
    }
    logLine("switchyard: activation " + std::string(trim(st.out)) + " in " + dir_);

    auto deadline = now() + cfg_.activation.switchTimeout + 30s;
    auto status = follow(
        [](const AgentStatus& s) {
          return s.phase != "armed" && s.phase != "setting-profile" && s.phase != "switching";
        },
        deadline);
    if (status && !status->newGeneration.empty())
      out_.newGeneration = parseGenerationLink(status->newGeneration);
    if (!status) {
      end("lost contact");
      return verify("contact with the host was lost during activation");
    }
    if (status->phase == "awaiting-confirmation") {
      end("switch-to-configuration succeeded");
      return confirm();
    }
    if (status->phase == "failed" && status->newGeneration.empty())
      return finish(HostResult::Failed,
                    status->reason.empty() ? "activation failed" : status->reason);
    end(status->reason.empty() ? status->phase : status->reason);
    verify(status->reason.empty() ? "activation did not finish (phase " + status->phase + ")"
                                  : status->reason);
  }

  void confirm() {
    begin(Step::Health);
    const auto deadline = now() + cfg_.activation.confirmTimeout;
    // A NEW connection: proof that the new configuration still lets us in.
    std::string connectProblem;
    ssh::SessionPtr fresh = connectUntil(deadline, &connectProblem);
    if (!fresh) {
      end("no new connection");
      return verify(
          "no confirmation within " + std::to_string(cfg_.activation.confirmTimeout.count()) + "s",
          "the runner could not open a new SSH connection: " + connectProblem);
    }
    spare_ = std::move(session_);
    session_ = std::move(fresh);
    if (auto problem = uploadKeys(KeySpec::UploadAt::PostActivation, *session_))
      return reject(*problem);
    auto remaining = [&] {
      return std::max<milliseconds>(1000ms, duration_cast<milliseconds>(deadline - now()));
    };
    for (const auto& check : cfg_.activation.healthChecks) {
      obs_.logLine(job_.host, Step::Health, "health check: " + check);
      auto r = session_->exec({.command = check,
                               .timeout = remaining(),
                               .onStdoutLine = [&](std::string_view l) { logLine(l); },
                               .onStderrLine = [&](std::string_view l) { logLine(l); }});
      if (!r.ok())
        return reject("health check '" + check + "' " +
                      describeFailure(r.describeStatus(), r.errTail));
    }
    for (const auto& rawUrl : cfg_.activation.httpChecks) {
      std::string url = expandCheckUrl(rawUrl, job_);
      obs_.logLine(job_.host, Step::Health, "HTTP check: GET " + url);
      HttpRequest req;
      req.url = url;
      req.timeout = remaining();
      HttpResponse resp = svc_.http.send(req);
      if (!resp.ok())
        return reject("HTTP check " + url + " failed: " +
                      (resp.status ? "status " + std::to_string(resp.status) : resp.error));
    }
    end("healthy");
    begin(Step::Confirm);
    auto r = session_->exec({.command = agentConfirmCommand(dir_), .timeout = 15s});
    std::string answer(trim(r.out));
    if (r.ok() && answer == "confirmed") {
      end("confirmed");
      return finish(HostResult::Succeeded, "");
    }
    end(answer.empty() ? r.describeStatus() : answer);
    verify(r.ok() ? "the confirmation came too late (" + answer + ")"
                  : "confirming failed: " + r.describeStatus());
  }

  void reject(const std::string& reason) {
    logLine("switchyard: " + reason + "; asking the host to roll back");
    auto r = session_->exec({.command = agentRejectCommand(dir_, reason), .timeout = 15s});
    end(reason);
    verify(reason);
  }

  // After activation did not end in a confirmation: learn what the watchdog did. The reason
  // reported is the watchdog's (or `ourReason` when it gives none), with `hint` — what the
  // runner saw — in parentheses.
  void verify(const std::string& ourReason, const std::string& hint = "") {
    begin(Step::Verify);
    const auto deadline =
        now() + cfg_.activation.confirmTimeout + cfg_.activation.switchTimeout + cfg_.verifySlack;
    auto status = follow([](const AgentStatus& s) { return s.finished(); }, deadline);
    const std::string prev =
        out_.previousGeneration ? std::to_string(*out_.previousGeneration) : "?";
    if (!status || !status->finished()) {
      return finish(HostResult::Failed,
                    ourReason + (hint.empty() ? "" : " (" + hint + ")") +
                        "; the host could not be reached afterwards, so whether its "
                        "watchdog restored generation " +
                        prev + " is unknown" +
                        (hostKeyProblem_.empty() ? "" : " (" + hostKeyProblem_ + ")"));
    }
    std::string reason = status->reason.empty() ? ourReason : status->reason;
    if (!hint.empty()) reason += " (" + hint + ")";
    if (status->phase == "confirmed") return finish(HostResult::Succeeded, "");
    if (status->phase == "failed" && status->newGeneration.empty())
      return finish(HostResult::Failed, reason + "; the system profile was not changed");
    if (status->phase == "failed")
      return finish(HostResult::Failed, reason + "; there is no previous generation to return to");
    if (status->phase == "rollback-failed")
      return finish(HostResult::Failed, reason + "; rolling back to generation " + prev +
                                            " FAILED: " + lastLine(activationTail()));
    // rolled-back: check it on the host.
    auto r = session_->exec({.command = std::string("readlink ") + kProfile, .timeout = 30s});
    std::string link(trim(r.out));
    if (!r.ok() || parseGenerationLink(link) != out_.previousGeneration)
      return finish(HostResult::Failed, reason + "; the watchdog reports a rollback, but " +
                                            kProfile + " points at '" + link +
                                            "', not generation " + prev);
    finish(HostResult::RolledBack, reason + "; generation " + prev + " is active again");
  }

  void dryRun(const Inspection& insp) {
    std::vector<std::string> plan;
    plan.push_back("current: " + (insp.generation
                                      ? "generation " + std::to_string(*insp.generation) + " (" +
                                            insp.path.value_or("?") + ")"
                                      : std::string("no system profile yet")));
    plan.push_back("new:     " + job_.storePath);
    if (insp.path && *insp.path == job_.storePath)
      plan.push_back("the host already runs this configuration (the switch would re-activate it)");
    if (insp.present) {
      plan.push_back("copy:    nothing, the closure is already on the host");
    } else {
      plan.push_back("copy:    " + describeMissing() + " with nix copy --to ssh://" +
                     job_.target.user + "@" + job_.target.host);
    }
    for (const auto& k : job_.keys) plan.push_back("key:     " + k.describe());
    const std::string action = toString(job_.action);
    plan.push_back(std::string("switch:  ") +
                   (job_.action == SwitchAction::Test
                        ? std::string("leave ") + kProfile + " and"
                        : std::string("set ") + kProfile + " to it and") +
                   " run switch-to-configuration " + action + " detached from the SSH session (" +
                   (cfg_.detach != "auto" ? cfg_.detach
                    : insp.systemd        ? "systemd-run"
                                          : "setsid") +
                   ")");
    if (insp.generation)
      plan.push_back("confirm: within " + std::to_string(cfg_.activation.confirmTimeout.count()) +
                     "s over a new connection, else the host returns to generation " +
                     std::to_string(*insp.generation));
    else
      plan.push_back("confirm: within " + std::to_string(cfg_.activation.confirmTimeout.count()) +
                     "s; first deploy: there is no generation to roll back to");
    for (const auto& c : cfg_.activation.healthChecks) plan.push_back("check:   " + c);
    for (const auto& u : cfg_.activation.httpChecks)
      plan.push_back("check:   GET " + expandCheckUrl(u, job_));
    if (insp.present) {
      auto r =
          session_->exec({.command = shellQuote(job_.storePath + "/bin/switch-to-configuration") +
                                     " dry-activate 2>&1",
                          .timeout = 120s});
      out_.dryActivate = r.out;
      if (!r.ok()) out_.dryActivate += "(dry-activate " + r.describeStatus() + ")\n";
    }
    out_.plan = join(plan, "\n");
    finish(HostResult::DryRun, "");
  }

  // "3 of 12 paths" missing on the host, or why that could not be found out.
  std::string describeMissing() {
    auto q = svc_.processes.run(
        {.program = "nix-store", .args = {"-qR", job_.storePath}, .timeout = 120s});
    if (!q.ok())
      return "the closure (its size is unknown: nix-store -qR " + q.describeStatus() + ")";
    auto paths = split(std::string(trim(q.out)), '\n');
    auto r = session_->exec({.command = "while read -r p; do [ -e \"$p\" ] || echo \"$p\"; done",
                             .stdinData = q.out,
                             .timeout = 60s});
    if (!r.ok()) return std::to_string(paths.size()) + " paths (or fewer)";
    size_t missing = 0;
    for (const auto& l : split(r.out, '\n'))
      if (!trim(l).empty()) ++missing;
    return std::to_string(missing) + " of " + std::to_string(paths.size()) + " paths";
  }

  std::string activationTail() const {
    return join(std::vector<std::string>(logTail_.begin(), logTail_.end()), "\n");
  }

  // ---- connections ----
  // A live session: the current one, the spare, or a new connection (retried until deadline).
  bool ensureSession(SteadyTime deadline) {
    if (session_ && session_->connected()) return true;
    if (spare_ && spare_->connected()) {
      session_ = std::move(spare_);
      return true;
    }
    session_.reset();
    session_ = connectUntil(deadline, nullptr);
    return session_ != nullptr;
  }

  ssh::SessionPtr connectUntil(SteadyTime deadline, std::string* problem) {
    for (;;) {
      ssh::Endpoint ep = endpoint_;
      auto left = duration_cast<milliseconds>(deadline - now());
      ep.connectTimeout = std::clamp<milliseconds>(
          left, 500ms, std::max<milliseconds>(500ms, endpoint_.connectTimeout));
      ssh::ConnectFailure failure;
      auto s = ssh::takeSession(svc_.ssh.connect(ep), failure);
      if (s) return escalate(std::move(s), job_.escalation);
      if (problem) *problem = failure.message;
      if (failure.kind == ssh::ConnectFailure::Kind::HostKeyRejected) {
        hostKeyProblem_ = failure.message;  // never retry past a changed key
        return nullptr;
      }
      if (now() + cfg_.reconnectInterval >= deadline) return nullptr;
      std::this_thread::sleep_for(cfg_.reconnectInterval);
    }
  }

  // Long-polls the agent until `done` or the deadline, streaming its log; reconnects when the
  // connection drops, and rides out a few garbled answers (a host busy switching may fail to
  // fork). Past the deadline it stops after one more try. Returns the last status seen
  // (nullopt: none at all).
  std::optional<AgentStatus> follow(const std::function<bool(const AgentStatus&)>& done,
                                    SteadyTime deadline) {
    constexpr int kMaxGarbled = 5;
    std::optional<AgentStatus> last;
    int garbled = 0;
    bool tried = false;
    auto pause = [&] {
      if (now() + cfg_.reconnectInterval < deadline)
        std::this_thread::sleep_for(cfg_.reconnectInterval);
    };
    for (;;) {
      if (now() >= deadline && (last || tried)) return last;
      if (!ensureSession(deadline)) return last;
      int wait = static_cast<int>(std::clamp<int64_t>(
          std::chrono::duration_cast<std::chrono::seconds>(deadline - now()).count(), 0, 5));
      auto r = session_->exec({.command = agentWatchCommand(dir_, logOffset_, lastPhase_, wait),
                               .timeout = std::chrono::seconds(wait + 15)});
      tried = true;
      if (r.connectionLost || r.timedOut) {
        session_.reset();
        pause();
        continue;
      }
      auto st = parseAgentStatus(r.out);
      if (!st) {
        svc_.log.warn(job_.host + ": the deploy agent gave no status (" +
                      describeFailure(r.describeStatus(), r.errTail) + ")");
        if (++garbled >= kMaxGarbled) return last;
        pause();
        continue;
      }
      garbled = 0;
      emitLog(st->logBytes);
      logOffset_ = st->logSize;
      lastPhase_ = st->phase;
      last = st;
      if (done(*st)) return last;
      if (now() >= deadline) return last;
      if (wait == 0) std::this_thread::sleep_for(100ms);
    }
  }

  // ---- the record ----
  void record() {
    begin(Step::Record);
    try {
      store::DeploymentRecord rec;
      rec.host = job_.host;
      rec.forge = req_.forge;
      rec.repo = req_.repo;
      rec.sha = req_.sha;
      rec.storePath = job_.storePath;
      rec.generation = out_.newGeneration;
      rec.previousPath = out_.previousPath;
      rec.previousGeneration = out_.previousGeneration;
      rec.result = std::string(resultName(out_.result));
      rec.detail = out_.reason;
      rec.runId = req_.runId;
      rec.startedAt = startedAt_;
      rec.finishedAt = svc_.clock.nowMillis();
      nlohmann::json d = nlohmann::json::object();
      for (const auto& [step, ms] : out_.durations) {
        auto key = std::string(stepName(step));
        d[key] = d.value(key, int64_t{0}) + ms.count();
      }
      rec.durationsJson = d.dump();
      out_.recordId = svc_.deployments.record(rec);
      end();
    } catch (const std::exception& e) {
      // The deploy happened; losing its record must not change its result.
      svc_.log.error("recording the deploy of " + job_.host + " failed: " + describe(e));
      end("not recorded");
    }
  }

  DeployServices& svc_;
  const DeploySettings& cfg_;
  const HostJob& job_;
  const DeployRequest& req_;
  DeployObserver& obs_;
  ssh::Endpoint endpoint_;

  HostOutcome out_;
  int64_t startedAt_ = 0;
  Step current_ = Step::Lock;
  bool stepOpen_ = false;
  SteadyTime stepStart_{};
  std::optional<HostLockGuard::Lease> lease_, machineLease_;
  ssh::SessionPtr session_, spare_;
  std::string dir_;  // the agent's directory on the host
  size_t logOffset_ = 0;
  std::string lastPhase_;
  LineSplitter logLines_;  // the agent log's unfinished last line
  std::deque<std::string> logTail_;
  std::string hostKeyProblem_;
  std::vector<std::string> keyContents_;  // job_.keys' contents, in order (never logged)
};

SshDeployer::SshDeployer(DeployServices services, DeploySettings settings)
    : services_(services), settings_(std::move(settings)) {
  if (!settings_.ssh.knownHosts)
    throw ConfigError("ssh.known_hosts is not set: deploys check host keys strictly against it");
}

HostOutcome SshDeployer::deploy(const HostJob& job, const DeployRequest& request,
                                DeployObserver& observer) {
  HostRun run(*this, job, request, observer);
  return run.run();
}

}  // namespace runner::deploy
