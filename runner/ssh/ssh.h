// SSH to deploy targets (DESIGN.md §6 steps 2–5): the ports the deployer talks through, and a
// factory for the real implementation on libssh (libssh_connector.cc; libssh is linked PRIVATE
// to this folder only, so no other folder ever sees an ssh_session).
//
// The rules every implementation follows:
//  * host keys are checked strictly against the one known_hosts file the configuration names;
//    anything but an exact match refuses the connection, with a message that says which key
//    the server offered, which key is recorded, and which line of which file to fix;
//  * no ssh config file (~/.ssh/config, /etc/ssh/ssh_config) is read: the Endpoint is all;
//  * keys come from the identity file, then from ssh-agent when SSH_AUTH_SOCK is set and the
//    configuration allows it; nothing else (no ~/.ssh/id_* guessing);
//  * every wait is bounded (connect, authentication, each command);
//  * expected outcomes are values: an unreachable host, a refused host key, a failed login
//    (ConnectFailure), a non-zero exit, a timeout or a dropped connection (ExecResult).
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "runner/core/config.h"

namespace runner::ssh {

// Where and how to connect.
struct Endpoint {
  Target target;
  std::filesystem::path knownHosts;  // required; the only source of trusted host keys
  std::optional<std::filesystem::path> identityFile;
  bool useAgent = true;  // also try ssh-agent when SSH_AUTH_SOCK is set
  std::chrono::milliseconds connectTimeout{10000};
};

// The endpoint for `target` under the runner's ssh settings.
// Throws ConfigError when `ssh.knownHosts` is not set (strict checking needs a file).
Endpoint endpointFor(const Target& target, const SshConfig& ssh);

// Why a connection was not made. A value: callers report it per host and carry on.
struct ConnectFailure {
  enum class Kind {
    Unreachable,      // TCP connect, timeout or SSH handshake failed
    HostKeyRejected,  // the host key is unknown, changed, or of another type than recorded
    AuthFailed,       // no key was accepted (or the identity file is unreadable)
  };
  Kind kind = Kind::Unreachable;
  std::string message;  // one or two sentences a person can act on
};
std::string_view kindName(ConnectFailure::Kind kind);  // "unreachable", "host key rejected", …

struct ExecRequest {
  std::string command;                       // one command line, run by the remote user's shell
  std::optional<std::string> stdinData;      // sent, then EOF; nullopt: EOF at once
  std::chrono::milliseconds timeout{60000};  // the whole command; must be > 0
  // Called on the calling thread for every complete line (without '\n') as it arrives; a last
  // line without '\n' is delivered when the command ends.
  std::function<void(std::string_view)> onStdoutLine;
  std::function<void(std::string_view)> onStderrLine;
  size_t maxStdout = 16u << 20;    // bytes of stdout kept in ExecResult::out
  size_t stderrTailBytes = 16384;  // bytes of stderr kept in ExecResult::errTail
};

struct ExecResult {
  int exitStatus = -1;          // the remote exit status; -1 when none arrived
  std::string exitSignal;       // "TERM", "KILL", … when the remote command was killed
  bool timedOut = false;        // the command did not finish within the request's timeout
  bool connectionLost = false;  // the session broke (peer closed it, network error)
  std::string lostReason;       // libssh's words when connectionLost
  std::string out;
  std::string errTail;
  std::chrono::milliseconds duration{0};

  bool ok() const { return exitStatus == 0 && !timedOut && !connectionLost; }
  // "exited with status 3", "killed by signal TERM", "timed out after 5s",
  // "connection lost: Socket error: Connection reset by peer"
  std::string describeStatus() const;
};

// One authenticated connection. Not thread-safe: one thread uses a session at a time (STYLE P12).
// Destroying it closes the connection.
class Session {
 public:
  virtual ~Session() = default;
  // Runs one command on a new channel. Never throws for a non-zero exit, a timeout or a lost
  // connection: those are in the result (after a lost connection, every later exec returns
  // connectionLost at once). The remote command is not killed on timeout; the channel closes.
  virtual ExecResult exec(const ExecRequest& request) = 0;
  // False once the connection is known to be broken.
  virtual bool connected() const = 0;
  // "ssh-ed25519 SHA256:…" of the host key that was verified.
  virtual std::string hostKey() const = 0;
};
using SessionPtr = std::unique_ptr<Session>;

using ConnectResult = std::variant<SessionPtr, ConnectFailure>;

class Connector {
 public:
  virtual ~Connector() = default;
  // Connects, verifies the host key strictly, authenticates. Never throws for the outcomes in
  // ConnectFailure; throws SshError only when the library itself fails (out of memory).
  // Thread-safe: every call makes an independent session.
  virtual ConnectResult connect(const Endpoint& endpoint) = 0;
};
using ConnectorPtr = std::unique_ptr<Connector>;

// The real implementation on libssh. Logging from libssh is off (it would print to stderr).
ConnectorPtr makeLibsshConnector();

// Writes `content` to `remotePath` on the target (via `cat` on stdin into a temporary file,
// then chmod and mv, so readers never see half a file); creates the parent directory (0700).
// Returns the command's result; ok() means the file is in place.
ExecResult upload(Session& session, const std::string& remotePath, std::string_view content,
                  int mode = 0600, std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Convenience: the session, or nullptr with `failure` filled.
inline SessionPtr takeSession(ConnectResult&& r, ConnectFailure& failure) {
  if (auto* f = std::get_if<ConnectFailure>(&r)) {
    failure = std::move(*f);
    return nullptr;
  }
  return std::move(std::get<SessionPtr>(r));
}

}  // namespace runner::ssh
