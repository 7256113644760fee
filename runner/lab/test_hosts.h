// SSH test hosts on this machine: real sshd processes that look like separate NixOS machines
// to the deployer, for integration tests, benchmarks and `switchyard demo`.
//
// Each host is one sshd started inside its own mount + UTS namespace, where
//   /nix                 is the host's own (initially empty) Nix store, db and profiles,
//   /var/lib/fake-nixos  its own state dir (switch-to-configuration markers, sshd.pid/log),
//   /etc/ssh             its own sshd_config, host key and authorized_keys.d/root,
//   /root                its own empty home (hides this machine's slow ~/.bashrc),
//   /run                 its own (with /run/sshd; the deployer's watchdog files live here),
//   /tmp                 a private empty tmpfs,
//   hostname             the host's name.
// Every one of those is a directory under the host's `root` on this machine, so tests can
// check a deploy's effect "from outside" (profile links, markers, store contents).
//
// Network: Loopback (default) — each host listens on its own 127.x.y.z address and a free port;
// Netns — each host lives in a network namespace behind a veth pair and listens on
// [fd6e:6978:6c61:<n>::2]:22 (a private ULA prefix, blackholed in the root namespace; never
// fd00::/64, which is this VM's real network); cutNetwork() then takes its link down.
//
// The deployer side: one ed25519 key (authorized on every host) and a known_hosts file with
// every host's key, plus an OpenSSH client config with one Host alias per host (for people and
// for `NIX_SSHOPTS=-F`). Stopping is RAII: the destructor kills every process in each host's
// mount namespace (sshd, and anything a deploy left running there) and removes the netns.
// Hosts of a test process that died without stopping them (crash, SIGKILL) are registered in
// /run/switchyard-testhosts and stopped by the next TestHosts created on this machine.
//
// Requires root (namespaces, mounts). Not thread-safe: one thread drives a TestHosts.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runner/core/config.h"
#include "runner/core/process.h"
#include "runner/os/files.h"
#include "runner/os/process.h"

namespace runner::lab {

enum class TestNetwork { Loopback, Netns };

struct TestHostsOptions {
  std::vector<std::string> names{"web1"};
  // Where the hosts' directories, keys and configs go; empty: a fresh temporary directory
  // that is removed when the TestHosts is destroyed.
  std::filesystem::path dir;
  TestNetwork network = TestNetwork::Loopback;
  // A login user besides root (issue 18: deploys as a user that is not root): each host gets
  // its own /etc/passwd, group and shadow with this user added, the deployer's key authorized
  // for it, and its own /etc/sudoers.d letting it run anything as root without a password.
  // Empty: root only.
  std::string loginUser;
};

struct TestHost {
  std::string name;
  std::string address;         // 127.x.y.z, or fd6e:6978:6c61:<n>::2
  int port = 0;                // a free port (Loopback) or 22 (Netns)
  std::filesystem::path root;  // this host's directories on this machine

  Target target() const { return Target{"root", address, port}; }
  std::filesystem::path nixDir() const { return root / "nix"; }      // its /nix
  std::filesystem::path stateDir() const { return root / "state"; }  // its /var/lib/fake-nixos
  std::filesystem::path runDir() const { return root / "run"; }      // its /run

  // What a deploy changed, read from outside:
  // the generation the system profile points at (readlink /nix/var/nix/profiles/system ->
  // system-N-link), nullopt when there is no profile yet;
  std::optional<int> profileGeneration() const;
  // the store path of that generation (or of generation `n`), nullopt when absent;
  std::optional<std::string> profilePath() const;
  std::optional<std::string> generationPath(int n) const;
  // the store path switch-to-configuration last activated (state/activated), nullopt if none;
  std::optional<std::string> activated() const;
  // the target of state/current-system, nullopt if none;
  std::optional<std::string> currentSystem() const;
  // whether /nix/store/<basename of storePath> exists in the host's store; how many paths it has.
  bool storeHas(const std::string& storePath) const;
  size_t storePathCount() const;
};

class TestHosts {
 public:
  // Generates keys and configs, starts every host and waits until each accepts TCP connections
  // on its address (bounded: 10 s per host). Throws Error naming the host and sshd's log when
  // one does not come up (hosts already started are stopped again).
  explicit TestHosts(TestHostsOptions options);
  // Stops every host (noexcept; problems are reported on stderr).
  ~TestHosts();
  TestHosts(const TestHosts&) = delete;
  TestHosts& operator=(const TestHosts&) = delete;

  const std::vector<TestHost>& hosts() const { return hosts_; }
  // Throws InputError for an unknown name.
  const TestHost& host(std::string_view name) const;

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path identityFile() const;    // the deployer's private key
  std::filesystem::path knownHostsFile() const;  // every host's key, [addr]:port form
  std::filesystem::path sshConfigFile() const;   // OpenSSH client config, one alias per host
  // The runner's ssh settings for these hosts (identity, known_hosts, 5 s connect timeout,
  // no agent).
  SshConfig sshConfig() const;

  // Stops one host (kills every process in its namespace). Its directories stay.
  void stop(std::string_view name);
  // Starts a stopped host again with the same directories, address and port.
  void start(std::string_view name);
  // True when the host's sshd accepts TCP connections right now.
  bool accepting(std::string_view name) const;
  // Gives the host a new host key and restarts it; known_hosts keeps the old key (so the
  // deployer sees a changed key).
  void replaceHostKey(std::string_view name);
  // Netns mode only (throws InputError otherwise): takes the host's link down / up again.
  void cutNetwork(std::string_view name);
  void restoreNetwork(std::string_view name);

  // The pids of every process in the host's mount namespace right now (sshd and whatever
  // runs under it); empty when the host is stopped. For benchmarks that account the hosts'
  // CPU apart from the deployer's (new processes inherit their parent's cgroup).
  std::vector<int> processIds(std::string_view name) const;

  // Runs argv inside the host's namespaces (mount, UTS and, in Netns mode, network), as root.
  // For tests that need to look at or change something only visible inside.
  // Throws Error when the host is not running.
  RunResult runInside(std::string_view name, const std::vector<std::string>& argv);

 private:
  struct Slot;
  Slot& slot(std::string_view name);
  const Slot& slot(std::string_view name) const;
  void prepare(Slot& s);
  void launch(Slot& s);
  void kill(Slot& s) noexcept;
  void writeClientFiles();

  TestHostsOptions options_;
  os::PosixProcessRunner processes_;
  std::unique_ptr<os::TempDir> temp_;
  std::filesystem::path dir_;
  std::filesystem::path registryEntry_;  // /run/switchyard-testhosts/<pid>.<n>
  std::vector<TestHost> hosts_;
  std::vector<std::unique_ptr<Slot>> slots_;
};

}  // namespace runner::lab
