// Colmena's deployment.sshOptions (extra arguments Colmena hands to ssh) under Switchyard's
// rule that every connection to a host checks its key against the pinned known_hosts: only
// options that keep that check and that Switchyard applies to all its connections (libssh
// for commands, OpenSSH for nix copy) are accepted; everything else refuses the host, naming
// each refused option and why (README Decisions, "deployment.sshOptions").
//
// Accepted: -p PORT / Port, -l USER / User, -i FILE / IdentityFile, ConnectTimeout (as
// `-o Key=Value`, `-oKey=Value` or `-o "Key Value"`). Refused because they would loosen,
// move or bypass the pinned check: StrictHostKeyChecking, UserKnownHostsFile,
// GlobalKnownHostsFile, KnownHostsCommand, HostKeyAlias, CheckHostIP, UpdateHostKeys,
// VerifyHostKeyDNS, NoHostAuthenticationForLocalhost, HostKeyAlgorithms; because they run a
// command on the runner or reach the host through something unchecked: ProxyCommand,
// ProxyJump (-J), LocalCommand, PermitLocalCommand, RemoteCommand, ControlMaster/ControlPath/
// ControlPersist (-S), Hostname, Include, Match, -F, -W; ForwardAgent (-A) and other
// forwardings (-L -R -D -X -Y); anything else because Switchyard would not apply it.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace runner::deploy {

struct SshOverrides {
  std::optional<std::string> user;
  std::optional<int> port;
  std::optional<std::filesystem::path> identityFile;
  std::optional<std::chrono::seconds> connectTimeout;
};

// Reads deployment.sshOptions. Throws InputError listing every refused argument with the
// reason ("deployment.sshOptions refused: StrictHostKeyChecking=no (would loosen the pinned
// host key check); -J bastion (…). Accepted: …").
SshOverrides parseSshOptions(const std::vector<std::string>& args);

}  // namespace runner::deploy
