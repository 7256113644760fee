// The libssh implementation of the ssh ports (ssh.h).
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string>
#include <sys/socket.h>
#include <vector>

#include <libssh/callbacks.h>
#include <libssh/libssh.h>

#include "runner/core/error.h"
#include "runner/core/line_splitter.h"
#include "runner/ssh/known_hosts.h"
#include "runner/ssh/libssh_support.h"
#include "runner/ssh/ssh.h"

namespace runner::ssh {
namespace detail {

void closeSession(ssh_session s) noexcept {
  if (!s) return;
  if (ssh_is_connected(s)) ssh_disconnect(s);
  ssh_free(s);
}

void checkSsh(ssh_session session, int rc, std::string_view doing) {
  if (rc == SSH_OK) return;
  const char* msg = session ? ssh_get_error(session) : nullptr;
  throw SshError(std::string(doing) + ": " + (msg && *msg ? msg : "unknown error") + " (libssh " +
                 std::to_string(rc) + ")");
}

std::string fingerprintOf(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != SSH_OK) return "";
  char* fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  if (!fp) return "";
  std::string out(fp);
  ssh_string_free_char(fp);
  return out;
}

std::string keyTypeOf(ssh_key key) {
  const char* t = ssh_key_type_to_char(ssh_key_type(key));
  return t ? t : "unknown";
}

void ensureLibsshInitialised() {
  static std::once_flag once;
  std::call_once(once, [] {
    ssh_init();
    ssh_set_log_level(SSH_LOG_NOLOG);
  });
}

}  // namespace detail

namespace {

using detail::ChannelHandle;
using detail::checkSsh;
using detail::KeyHandle;
using detail::SessionHandle;

// Splits a byte stream into lines for a callback; keeps a bounded copy of the bytes.
class StreamSink {
 public:
  StreamSink(const std::function<void(std::string_view)>& onLine, std::string& keep, size_t limit,
             bool keepTail)
      : onLine_(onLine), keep_(keep), limit_(limit), keepTail_(keepTail) {}

  void feed(std::string_view data) {
    if (keepTail_) {
      keep_.append(data);
      if (keep_.size() > limit_) keep_.erase(0, keep_.size() - limit_);
    } else if (keep_.size() < limit_) {
      keep_.append(data.substr(0, limit_ - keep_.size()));
    }
    if (onLine_) lines_.feed(data, onLine_);
  }
  void finish() {
    if (onLine_) lines_.finish(onLine_);
  }

 private:
  const std::function<void(std::string_view)>& onLine_;
  std::string& keep_;
  size_t limit_;
  bool keepTail_;
  LineSplitter lines_;
};

// Servers send small replies without TCP_NODELAY (OpenSSH sets it only for ptys); with our
// delayed ACKs that costs ~40 ms on the first exchange of a connection. Quick ACKs are not
// sticky in Linux, so this is re-armed before each command.
void quickAck(ssh_session s) noexcept {
#ifdef TCP_QUICKACK
  int fd = ssh_get_fd(s);
  int one = 1;
  if (fd >= 0) ::setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
#endif
}

void onExitSignal(ssh_session, ssh_channel, const char* signal, int, const char*, const char*,
                  void* userdata) {
  if (signal) static_cast<ExecResult*>(userdata)->exitSignal = signal;
}

class LibsshSession final : public Session {
 public:
  LibsshSession(SessionHandle s, std::string hostKey)
      : s_(std::move(s)), hostKey_(std::move(hostKey)) {}

  bool connected() const override { return !broken_ && ssh_is_connected(s_.get()); }
  std::string hostKey() const override { return hostKey_; }

  ExecResult exec(const ExecRequest& req) override {
    using namespace std::chrono;
    ExecResult res;
    const auto start = steady_clock::now();
    const auto deadline = start + std::max(req.timeout, milliseconds(1));
    auto finish = [&]() -> ExecResult {
      res.duration = duration_cast<milliseconds>(steady_clock::now() - start);
      return std::move(res);
    };
    auto lost = [&](std::string_view doing) -> ExecResult {
      res.connectionLost = true;
      const char* why = ssh_get_error(s_.get());
      res.lostReason = std::string(doing) + ": " + (why && *why ? why : "connection closed");
      broken_ = true;
      brokenReason_ = res.lostReason;
      return finish();
    };
    if (!connected()) {
      res.connectionLost = true;
      res.lostReason = brokenReason_.empty() ? "not connected" : brokenReason_;
      return finish();
    }

    // The callbacks must outlive the channel: declared first, destroyed last.
    ssh_channel_callbacks_struct callbacks{};
    callbacks.userdata = &res;
    callbacks.channel_exit_signal_function = onExitSignal;
    ssh_callbacks_init(&callbacks);

    quickAck(s_.get());
    ChannelHandle ch(ssh_channel_new(s_.get()));
    if (!ch) return lost("opening a channel");
    ssh_set_channel_callbacks(ch.get(), &callbacks);
    if (ssh_channel_open_session(ch.get()) != SSH_OK) return lost("opening a channel");
    if (ssh_channel_request_exec(ch.get(), req.command.c_str()) != SSH_OK)
      return lost("starting the command");
    if (req.stdinData) {
      const std::string& data = *req.stdinData;
      size_t sent = 0;
      while (sent < data.size()) {
        uint32_t chunk = static_cast<uint32_t>(std::min<size_t>(data.size() - sent, 32768));
        int n = ssh_channel_write(ch.get(), data.data() + sent, chunk);
        if (n == SSH_ERROR) return lost("sending stdin");
        sent += static_cast<size_t>(n);
      }
    }
    if (ssh_channel_send_eof(ch.get()) != SSH_OK) return lost("closing stdin");
    quickAck(s_.get());

    StreamSink out(req.onStdoutLine, res.out, req.maxStdout, false);
    StreamSink err(req.onStderrLine, res.errTail, req.stderrTailBytes, true);
    char buf[16384];
    for (;;) {
      auto now = steady_clock::now();
      if (now >= deadline) {
        res.timedOut = true;
        break;
      }
      int wait = static_cast<int>(
          std::clamp<int64_t>(duration_cast<milliseconds>(deadline - now).count(), 1, 100));
      int n = ssh_channel_read_timeout(ch.get(), buf, sizeof buf, 0, wait);
      if (n == SSH_ERROR) {
        out.finish();
        err.finish();
        return lost("reading the command's output");
      }
      if (n > 0) out.feed(std::string_view(buf, static_cast<size_t>(n)));
      int e;
      while ((e = ssh_channel_read_nonblocking(ch.get(), buf, sizeof buf, 1)) > 0)
        err.feed(std::string_view(buf, static_cast<size_t>(e)));
      if (e == SSH_ERROR) {
        out.finish();
        err.finish();
        return lost("reading the command's errors");
      }
      if (n == 0 && ssh_channel_is_eof(ch.get())) break;
    }
    out.finish();
    err.finish();
    if (res.timedOut) {
      ssh_channel_close(ch.get());
      return finish();
    }
    int status = ssh_channel_get_exit_status(ch.get());
    if (status == SSH_ERROR && !ssh_is_connected(s_.get()))
      return lost("waiting for the exit status");
    res.exitStatus = status < 0 ? -1 : status;
    ssh_channel_close(ch.get());
    return finish();
  }

 private:
  SessionHandle s_;
  std::string hostKey_;
  bool broken_ = false;
  std::string brokenReason_;
};

template <class T>
void setOption(ssh_session s, ssh_options_e option, const T* value, std::string_view name) {
  checkSsh(s, ssh_options_set(s, option, value), "setting ssh option " + std::string(name));
}

class LibsshConnector final : public Connector {
 public:
  ConnectResult connect(const Endpoint& ep) override {
    detail::ensureLibsshInitialised();
    using Kind = ConnectFailure::Kind;
    const std::string where = ep.target.toString();
    SessionHandle s(ssh_new());
    if (!s) throw SshError("ssh_new failed (out of memory?)");
    ssh_session raw = s.get();

    int verbosity = SSH_LOG_NOLOG;
    setOption(raw, SSH_OPTIONS_LOG_VERBOSITY, &verbosity, "log verbosity");
    // Never read ~/.ssh/config or /etc/ssh/ssh_config: the Endpoint is the whole truth.
    bool processConfig = false;
    setOption(raw, SSH_OPTIONS_PROCESS_CONFIG, &processConfig, "process config");
    setOption(raw, SSH_OPTIONS_HOST, ep.target.host.c_str(), "host");
    unsigned int port = static_cast<unsigned int>(ep.target.port);
    setOption(raw, SSH_OPTIONS_PORT, &port, "port");
    setOption(raw, SSH_OPTIONS_USER, ep.target.user.c_str(), "user");
    long ms = std::max<long>(1, static_cast<long>(ep.connectTimeout.count()));
    long secs = ms / 1000, usecs = (ms % 1000) * 1000;
    setOption(raw, SSH_OPTIONS_TIMEOUT, &secs, "timeout");
    setOption(raw, SSH_OPTIONS_TIMEOUT_USEC, &usecs, "timeout");
    // Strict host key checking against exactly one file. The "global" file is the same file,
    // so no path outside the configuration is consulted, and strict checking is set last:
    // libssh 0.10 reports a CHANGED key as OK when StrictHostKeyChecking is 0.
    // Commands are small request/response exchanges: without TCP_NODELAY, Nagle and delayed
    // ACKs add ~40 ms to each of them.
    int nodelay = 1;
    setOption(raw, SSH_OPTIONS_NODELAY, &nodelay, "nodelay");
    const std::string kh = ep.knownHosts.string();
    setOption(raw, SSH_OPTIONS_KNOWNHOSTS, kh.c_str(), "known hosts");
    setOption(raw, SSH_OPTIONS_GLOBAL_KNOWNHOSTS, kh.c_str(), "global known hosts");
    int strict = 1;
    setOption(raw, SSH_OPTIONS_STRICTHOSTKEYCHECK, &strict, "strict host key checking");

    if (ssh_connect(raw) != SSH_OK)
      return ConnectFailure{Kind::Unreachable,
                            "cannot connect to " + where + ": " + ssh_get_error(raw)};

    // Host key: libssh's verdict and ours (which knows the lines) must both say it matches.
    KeyHandle serverKey;
    // (Out hands the pointer over at the end of the full expression: test it afterwards.)
    int keyRc = ssh_get_server_publickey(raw, Out(serverKey));
    if (keyRc != SSH_OK || !serverKey)
      return ConnectFailure{Kind::Unreachable,
                            "cannot read the host key of " + where + ": " + ssh_get_error(raw)};
    const std::string type = detail::keyTypeOf(serverKey.get());
    const std::string fp = detail::fingerprintOf(serverKey.get());
    const std::string field = knownHostsName(ep.target.host, ep.target.port);
    auto recorded = knownHostEntries(ep.knownHosts, field);
    HostKeyVerdict verdict = judgeHostKey(recorded, type, fp);
    ssh_known_hosts_e state = ssh_session_is_known_server(raw);
    if (state != SSH_KNOWN_HOSTS_OK || verdict != HostKeyVerdict::Match) {
      std::string msg = verdict != HostKeyVerdict::Match
                            ? hostKeyRefusal(verdict, field, type, fp, recorded, ep.knownHosts)
                            : "host key of " + field + " (" + type + " " + fp +
                                  ") was refused by libssh (state " +
                                  std::to_string(static_cast<int>(state)) + ") although " + kh +
                                  " records it; refusing to connect";
      return ConnectFailure{Kind::HostKeyRejected, msg};
    }

    // Authentication: the identity file, then ssh-agent.
    std::vector<std::string> tried;
    bool authed = false;
    if (ep.identityFile) {
      KeyHandle key;
      const std::string path = ep.identityFile->string();
      int importRc = ssh_pki_import_privkey_file(path.c_str(), nullptr, nullptr, nullptr, Out(key));
      if (importRc != SSH_OK || !key) {
        tried.push_back("cannot read identity file " + path +
                        " (missing, unreadable or passphrase-protected)");
      } else {
        int rc = ssh_userauth_publickey(raw, nullptr, key.get());
        if (rc == SSH_AUTH_SUCCESS)
          authed = true;
        else if (rc == SSH_AUTH_ERROR)
          return ConnectFailure{
              Kind::Unreachable,
              "connection to " + where + " failed during authentication: " + ssh_get_error(raw)};
        else
          tried.push_back("key " + path + " was not accepted");
      }
    }
    const char* agent = std::getenv("SSH_AUTH_SOCK");
    if (!authed && ep.useAgent && agent && *agent) {
      int rc = ssh_userauth_agent(raw, nullptr);
      if (rc == SSH_AUTH_SUCCESS)
        authed = true;
      else
        tried.push_back("no key from ssh-agent was accepted");
    }
    if (!authed) {
      if (tried.empty()) tried.push_back("no identity file configured and no ssh-agent");
      std::string msg = "authentication as " + ep.target.user + " on " + where + " failed: ";
      for (size_t i = 0; i < tried.size(); ++i) msg += (i ? "; " : "") + tried[i];
      return ConnectFailure{Kind::AuthFailed, msg};
    }
    // OpenSSH sends a hostkeys-00@openssh.com notice right after authentication; until we
    // ACK it, its Nagle holds back the reply to our first channel open (a 40 ms stall, our
    // ACK being delayed). Wait briefly for it and ACK at once.
    if (int fd = ssh_get_fd(raw); fd >= 0) {
      pollfd p{fd, POLLIN, 0};
      ::poll(&p, 1, 10);
    }
    quickAck(raw);
    return SessionPtr(std::make_unique<LibsshSession>(std::move(s), type + " " + fp));
  }
};

}  // namespace

ConnectorPtr makeLibsshConnector() { return std::make_unique<LibsshConnector>(); }

}  // namespace runner::ssh
