// The deploy agent that runs ON THE TARGET (DESIGN.md §6 steps 4–5): a small POSIX sh script
// the deployer uploads for every deploy, plus the command lines that drive it and the parser
// for what it reports. Keeping the protocol here, apart from the SSH plumbing, lets unit tests
// run the very same script on this machine against a fake profile and switch script.
//
// Files, all in one directory per deploy, D = <remote dir>/deploy-<id> (default
// /run/switchyard/deploy-<id>; /run is root-only and emptied at boot):
//   agent.sh        this script
//   params          the deploy's parameters (written by `start`)
//   phase           armed | setting-profile | switching | awaiting-confirmation | confirmed |
//                   rolling-back | rolled-back | rollback-failed | failed
//   activation.log  output of nix-env and switch-to-configuration (and of the rollback)
//   switch.rc       switch-to-configuration's exit status
//   new-gen         the generation link `nix-env --set` made (system-N-link)
//   decided/        created (mkdir is atomic) by whoever decides first: the runner confirming
//                   or rejecting, or the watchdog timing out
//   decision        "confirmed", "rejected: <why>" or "timeout: <why>"
//   reason          why a rollback happened
//   pid, agent.log  the detached watchdog's pid and its own stdout/stderr
//
// Protocol:
//  1. `start`: writes params, arms the watchdog — a process detached from the SSH session
//     (systemd-run --collect when the target runs systemd, otherwise setsid nohup) — and
//     returns at once. The watchdog sets the profile (nix-env --set), runs
//     switch-to-configuration switch (killed after switch_timeout), and then waits
//     confirm_timeout for a decision.
//  2. `watch OFFSET PHASE WAIT`: long poll; returns as soon as the phase differs from PHASE or
//     the log grew past OFFSET (or after WAIT seconds) with the status and the new log bytes.
//  3. `confirm` / `reject REASON`: the runner's decision, over a NEW ssh connection after the
//     health checks. Only the first decision counts (mkdir decided).
//  4. No decision within confirm_timeout, a rejection, a failed or timed-out activation: the
//     watchdog restores the recorded generation with `nix-env --switch-generation N` (never
//     --rollback, which goes to N-1 rather than to the generation that was active) and runs
//     that generation's switch-to-configuration switch. Without a previous generation (first
//     deploy) nothing can be restored: phase `failed`.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "runner/core/config.h"

namespace runner::deploy {

// The agent script (POSIX sh; uses only coreutils/busybox: cat, mkdir, mv, readlink, sleep,
// date, wc, tail, head, kill, setsid, nohup).
const std::string& agentScript();

struct AgentParams {
  std::string dir;        // D, absolute, no whitespace
  std::string storePath;  // the new system's toplevel
  std::string profile = "/nix/var/nix/profiles/system";
  std::optional<int64_t> previousGeneration;  // nullopt: first deploy, nothing to restore
  std::chrono::seconds confirmTimeout{30};
  std::chrono::seconds switchTimeout{600};
  // "auto" (systemd-run when /run/systemd/system exists, else setsid), "systemd" or "setsid".
  std::string detach = "auto";
  // What switch-to-configuration does: `switch`; `boot` (the profile is set, the running
  // system stays; a rollback restores the profile and the boot default); `test` (the
  // profile is not touched, nothing for new-gen; a rollback runs the recorded generation's
  // `test`).
  SwitchAction action = SwitchAction::Switch;
};

// Command lines the runner sends over ssh (each one shell-quoted command line).
std::string agentStartCommand(const AgentParams& p);
// Writes the script from stdin into p.dir (created, 0700) and starts it: one round trip.
std::string agentInstallAndStartCommand(const AgentParams& p);
std::string agentWatchCommand(const std::string& dir, size_t logOffset, const std::string& phase,
                              int waitSeconds);
std::string agentConfirmCommand(const std::string& dir);
std::string agentRejectCommand(const std::string& dir, const std::string& reason);

// What `watch` (and `status`) print, parsed.
struct AgentStatus {
  std::string phase;                // "" when the agent has not written one yet
  std::optional<int> switchStatus;  // switch-to-configuration's exit status, once known
  std::string newGeneration;        // "system-5-link", once set
  std::string decision;             // "confirmed", "rejected: …", "timeout: …", or ""
  std::string reason;               // why it rolled back, or ""
  std::string detach;               // "systemd" | "setsid" once started
  size_t logSize = 0;               // bytes in activation.log when the status was taken
  std::string logBytes;             // activation.log from the requested offset to logSize

  bool finished() const;  // confirmed, rolled-back, rollback-failed or failed
};
// Parses the agent's status output. Returns nullopt when it is not a status (e.g. the
// command failed before printing one).
std::optional<AgentStatus> parseAgentStatus(const std::string& text);

// "system-12-link" -> 12; nullopt for anything else.
std::optional<int64_t> parseGenerationLink(const std::string& link);

}  // namespace runner::deploy
