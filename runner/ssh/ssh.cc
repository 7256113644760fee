#include "runner/ssh/ssh.h"

#include <cstdio>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace runner::ssh {

Endpoint endpointFor(const Target& target, const SshConfig& ssh) {
  if (!ssh.knownHosts)
    throw ConfigError(
        "ssh.known_hosts is not set: deploys check host keys strictly against that file");
  Endpoint ep;
  ep.target = target;
  ep.knownHosts = *ssh.knownHosts;
  ep.identityFile = ssh.identityFile;
  ep.useAgent = ssh.useAgent;
  ep.connectTimeout = std::chrono::duration_cast<std::chrono::milliseconds>(ssh.connectTimeout);
  return ep;
}

std::string_view kindName(ConnectFailure::Kind kind) {
  switch (kind) {
    case ConnectFailure::Kind::Unreachable:
      return "unreachable";
    case ConnectFailure::Kind::HostKeyRejected:
      return "host key rejected";
    case ConnectFailure::Kind::AuthFailed:
      return "authentication failed";
  }
  return "unknown";
}

std::string ExecResult::describeStatus() const {
  if (connectionLost) return "connection lost: " + lostReason;
  if (timedOut) return "timed out after " + formatDuration(duration);
  if (!exitSignal.empty()) return "killed by signal " + exitSignal;
  if (exitStatus < 0) return "ended without an exit status";
  return "exited with status " + std::to_string(exitStatus);
}

ExecResult upload(Session& session, const std::string& remotePath, std::string_view content,
                  int mode, std::chrono::milliseconds timeout) {
  auto slash = remotePath.rfind('/');
  if (slash == std::string::npos || slash == 0)
    throw InputError("upload needs an absolute path below a directory: " + remotePath);
  char modeText[8];
  std::snprintf(modeText, sizeof modeText, "%o", mode & 07777);
  const std::string dir = shellQuote(remotePath.substr(0, slash));
  const std::string tmp = shellQuote(remotePath + ".part");
  const std::string dst = shellQuote(remotePath);
  ExecRequest req;
  req.command = "umask 077 && mkdir -p " + dir + " && cat > " + tmp + " && chmod " + modeText +
                " " + tmp + " && mv -f " + tmp + " " + dst;
  req.stdinData = std::string(content);
  req.timeout = timeout;
  return session.exec(req);
}

}  // namespace runner::ssh
