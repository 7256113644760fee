// The deploy protocol for one host (DESIGN.md §6, issue 5 steps 1–7), over the ssh port, the
// process port (nix copy) and the HTTP port (HTTP health checks):
//
//   lock     HostLockGuard: wait up to `lockWait`, else refused with the holder's purpose
//   ancestry the commit must descend from the host's last successful deploy (unless forced)
//   connect  libssh with strict, pinned host keys — unreachable hosts stop here, untouched
//   inspect  the current generation (readlink of the system profile) and its store path
//   copy     nix copy --to ssh://user@host, NIX_SSHOPTS with the same key and known_hosts
//   activate upload the agent (remote_agent.h), which arms the watchdog, sets the profile and
//            runs switch-to-configuration detached from the SSH session; follow its log and
//            exit status by long polls, reconnecting when the connection drops
//   confirm  a NEW connection within confirm_timeout, the health checks (commands on the
//            target, HTTP from here), then confirm — or reject, which rolls back at once
//   verify   after any rollback: wait for the watchdog to finish and check that the profile
//            is on the recorded generation again
//   record   store::Deployments (previous/new path and generation, commit, step durations)
//
// A dry run connects and inspects only, and shows `switch-to-configuration dry-activate`
// when the closure is already on the target.
#pragma once

#include <chrono>
#include <string>

#include "runner/core/clock.h"
#include "runner/core/config.h"
#include "runner/core/http_client.h"
#include "runner/core/log.h"
#include "runner/core/process.h"
#include "runner/deploy/ancestry.h"
#include "runner/deploy/deploy.h"
#include "runner/deploy/host_lock.h"
#include "runner/ssh/ssh.h"
#include "runner/store/deployments.h"

namespace runner::deploy {

struct DeploySettings {
  ActivationConfig activation;
  SshConfig ssh;  // knownHosts is required
  // How long a deploy waits for a host another deploy holds before it is refused.
  std::chrono::milliseconds lockWait{0};
  std::chrono::milliseconds copyTimeout = std::chrono::minutes(30);
  // The agent's files on the target go below this directory (root-only; emptied at boot).
  std::string remoteDir = "/run/switchyard";
  std::string detach = "auto";  // "auto" | "systemd" | "setsid" (see remote_agent.h)
  // After the watchdog's own deadlines, how much longer the runner tries to reach a host to
  // learn whether it rolled back, before it reports the host's state as unknown.
  std::chrono::milliseconds verifySlack = std::chrono::seconds(30);
  std::chrono::milliseconds reconnectInterval = std::chrono::milliseconds(250);
  std::string nixCopyProgram = "nix";
  // OpenSSH KexAlgorithms for nix copy's ssh ("" = OpenSSH's default). The default removes
  // sntrup761 (OpenSSH 9's first choice), which costs ~90 ms of CPU per connection — most of
  // a copy's CPU — and which libssh 0.10 cannot negotiate for the other connections anyway.
  std::string copyKexAlgorithms = "-sntrup*";
};

// The ports the deployer uses; each must outlive it. All must be thread-safe.
struct DeployServices {
  ssh::Connector& ssh;
  ProcessRunner& processes;
  HttpClient& http;
  HostLockGuard& locks;
  store::Deployments& deployments;
  Ancestry& ancestry;
  const Clock& clock;
  Logger& log;
};

class SshDeployer final : public HostDeployer {
 public:
  // Throws ConfigError when settings.ssh.knownHosts is not set.
  SshDeployer(DeployServices services, DeploySettings settings);
  HostOutcome deploy(const HostJob& job, const DeployRequest& request,
                     DeployObserver& observer) override;

  const DeploySettings& settings() const { return settings_; }

 private:
  friend class HostRun;
  DeployServices services_;
  DeploySettings settings_;
};

// The runner's ssh settings with a job's own identity file and connect timeout.
SshConfig sshConfigFor(const HostJob& job, const SshConfig& ssh);
// `session` with every command run as `escalation` (argv, e.g. sudo -n -H --) + sh -c CMD;
// `session` itself when `escalation` is empty.
ssh::SessionPtr escalate(ssh::SessionPtr session, const std::vector<std::string>& escalation);

// NIX_SSHOPTS for `nix copy` to `target`: -i key, -p port, the known_hosts file and strict
// checking, no other config (-F /dev/null), batch mode. Throws InputError when a path has
// whitespace (Nix splits NIX_SSHOPTS on whitespace).
std::string nixSshOpts(const Target& target, const SshConfig& ssh,
                       std::chrono::milliseconds connectTimeout,
                       const std::string& kexAlgorithms = "");
// The `nix copy` invocation for a job (Nix 2.8: no port in the store URL; it goes in NIX_SSHOPTS).
RunOptions nixCopyOptions(const HostJob& job, const DeploySettings& settings);
// The command that writes one key on the target from stdin: a temporary file in destDir
// (created 0751 when missing) gets the key's owner and mode while empty, then the content,
// then is renamed over destDir/name.
std::string keyUploadCommand(const KeySpec& key);
// An HTTP check URL with "{host}" replaced by the target's address ([v6] in brackets) and
// "{name}" by the host's name.
std::string expandCheckUrl(const std::string& url, const HostJob& job);

}  // namespace runner::deploy
