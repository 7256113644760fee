#include "runner/lab/test_hosts.h"

#include <arpa/inet.h>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <iostream>
#include <netinet/in.h>
#include <poll.h>
#include <set>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

#include "runner/core/error.h"
#include "runner/core/text.h"

namespace fs = std::filesystem;

namespace runner::lab {
namespace {

using namespace std::chrono_literals;

constexpr const char* kLabPrefix = "fd6e:6978:6c61";  // "nixla": never fd00::/64 (the VM's net)
constexpr const char* kNetnsPrefix = "sylab";

std::optional<std::string> readLinkIfAny(const fs::path& p) {
  std::error_code ec;
  auto t = fs::read_symlink(p, ec);
  if (ec) return std::nullopt;
  return t.string();
}

std::optional<std::string> readTrimmed(const fs::path& p) {
  auto text = os::readFileIfExists(p);
  if (!text) return std::nullopt;
  return std::string(trim(*text));
}

// A sockaddr for an IPv4 or IPv6 literal.
bool makeAddr(const std::string& address, int port, sockaddr_storage& ss, socklen_t& len) {
  std::memset(&ss, 0, sizeof ss);
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v4;
    return true;
  }
  if (inet_pton(AF_INET6, address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof *v6;
    return true;
  }
  return false;
}

// A port the kernel considers free on `address` right now.
int freePort(const std::string& address) {
  sockaddr_storage ss{};
  socklen_t len;
  if (!makeAddr(address, 0, ss, len)) throw InputError("not an IP address: " + address);
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw SysError(errno, "socket");
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    int e = errno;
    ::close(fd);
    throw SysError(e, "binding " + address + ":0 to find a free port");
  }
  socklen_t l = sizeof ss;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &l);
  int port = ss.ss_family == AF_INET ? ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port)
                                     : ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  ::close(fd);
  return port;
}

bool tcpAccepts(const std::string& address, int port, std::chrono::milliseconds timeout) {
  sockaddr_storage ss{};
  socklen_t len;
  if (!makeAddr(address, port, ss, len)) return false;
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return false;
  bool ok = false;
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc == 0) {
    ok = true;
  } else if (errno == EINPROGRESS) {
    pollfd p{fd, POLLOUT, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) == 1) {
      int err = 0;
      socklen_t el = sizeof err;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
      ok = err == 0;
    }
  }
  ::close(fd);
  return ok;
}

// Every pid whose mount namespace is the one `nsFd` refers to.
std::vector<pid_t> pidsInNamespace(int nsFd) {
  std::vector<pid_t> out;
  struct stat want {};
  if (::fstat(nsFd, &want) != 0) return out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator("/proc", ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    struct stat st {};
    if (::stat(("/proc/" + name + "/ns/mnt").c_str(), &st) != 0) continue;
    if (st.st_ino == want.st_ino && st.st_dev == want.st_dev)
      out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

// Field 22 of /proc/<pid>/stat (start time in ticks since boot); "" when the process is gone.
std::string startTimeOf(long pid) {
  auto stat = os::readFileIfExists("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return "";
  auto close = stat->rfind(')');
  if (close == std::string::npos) return "";
  auto fields = split(stat->substr(close + 2), ' ');
  return fields.size() > 19 ? fields[19] : "";
}

// Test hosts of processes that died without cleaning up (a crashed or killed test run) are
// found through a registry on this machine and stopped by the next TestHosts.
constexpr const char* kRegistry = "/run/switchyard-testhosts";

void removeTree(const fs::path& dir) {
  std::error_code ec;
  // Store paths are read-only directories: make them writable first.
  for (auto it =
           fs::recursive_directory_iterator(dir, fs::directory_options::skip_permission_denied, ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (it->is_directory(ec) && !it->is_symlink(ec))
      fs::permissions(it->path(), fs::perms::owner_all, fs::perm_options::add, ec);
  }
  fs::remove_all(dir, ec);
}

void killProcessesMountingFrom(const std::string& hostsDir) {
  const std::string needle = " " + hostsDir + "/";
  for (int round = 0; round < 100; ++round) {
    std::vector<pid_t> victims;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator("/proc", ec)) {
      const std::string name = e.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      std::optional<std::string> info;
      try {  // a process that exits while we look is simply gone (the error varies: ENOENT,
             // ESRCH, EINVAL)
        info = os::readFileIfExists(e.path() / "mountinfo");
      } catch (const InputError&) {
        continue;
      }
      if (info && info->find(needle) != std::string::npos)
        victims.push_back(static_cast<pid_t>(std::stol(name)));
    }
    if (victims.empty()) return;
    for (pid_t p : victims) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void reapAbandoned(ProcessRunner& procs) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(kRegistry, ec)) {
    auto text = os::readFileIfExists(e.path());
    if (!text) continue;
    auto lines = split(*text, '\n');
    if (lines.size() < 3) continue;
    auto owner = split(lines[0], ' ');
    if (owner.size() == 2 && startTimeOf(std::stol(owner[0])) == owner[1]) continue;  // alive
    const std::string dir = lines[1];
    killProcessesMountingFrom(dir + "/hosts");
    if (lines.size() > 3) {
      for (const auto& ns : split(lines[3], ' ')) {
        if (ns.empty()) continue;
        procs.run({.program = "ip", .args = {"link", "del", ns}, .timeout = 10s});
        procs.run({.program = "ip", .args = {"netns", "del", ns}, .timeout = 10s});
      }
    }
    if (lines[2] == "temp") removeTree(dir);
    fs::remove(e.path(), ec);
  }
}

std::string hexIndex(int n) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "%x", n);
  return buf;
}

}  // namespace

// ---- TestHost: reading a host's state from outside -------------------------------------------

std::optional<int> TestHost::profileGeneration() const {
  auto link = readLinkIfAny(nixDir() / "var/nix/profiles/system");
  if (!link) return std::nullopt;
  // "system-12-link"
  if (!startsWith(*link, "system-") || !endsWith(*link, "-link")) return std::nullopt;
  std::string number = link->substr(7, link->size() - 7 - 5);
  if (number.empty() || number.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoi(number);
}

std::optional<std::string> TestHost::generationPath(int n) const {
  return readLinkIfAny(nixDir() / ("var/nix/profiles/system-" + std::to_string(n) + "-link"));
}

std::optional<std::string> TestHost::profilePath() const {
  auto gen = profileGeneration();
  if (!gen) return std::nullopt;
  return generationPath(*gen);
}

std::optional<std::string> TestHost::activated() const {
  return readTrimmed(stateDir() / "activated");
}

std::optional<std::string> TestHost::currentSystem() const {
  return readLinkIfAny(stateDir() / "current-system");
}

bool TestHost::storeHas(const std::string& storePath) const {
  std::error_code ec;
  return fs::exists(nixDir() / "store" / fs::path(storePath).filename(), ec);
}

size_t TestHost::storePathCount() const {
  size_t n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(nixDir() / "store", ec)) {
    if (e.path().filename() != ".links") ++n;
  }
  return n;
}

// ---- TestHosts ----------------------------------------------------------------------------

struct TestHosts::Slot {
  size_t index = 0;   // into hosts_
  std::string netns;  // Netns mode: namespace name, also the root-side veth name
  int netIndex = 0;   // Netns mode: n in fd6e:6978:6c61:<n>::/64
  int nsFd = -1;      // the host's mount namespace, held open while it runs
  pid_t sshdPid = 0;
};

TestHosts::TestHosts(TestHostsOptions options) : options_(std::move(options)) {
  if (options_.names.empty()) throw InputError("TestHosts needs at least one host name");
  if (::geteuid() != 0) throw InputError("test hosts need root (mount namespaces)");
  reapAbandoned(processes_);
  if (options_.dir.empty()) {
    temp_ = std::make_unique<os::TempDir>("sy-testhosts");
    dir_ = temp_->path();
  } else {
    dir_ = fs::absolute(options_.dir);
    fs::create_directories(dir_);
  }
  fs::create_directories(dir_ / "keys");
  // Mount points on this machine (empty directories; each host binds its own over them).
  fs::create_directories("/var/lib/fake-nixos");
  fs::create_directories("/nix");

  // Loopback: 127.<a>.<b>.<10+i>, unique per process and instance, so concurrent test
  // processes never collide; the port is whatever the kernel finds free on that address.
  static std::atomic<int> instances{0};
  int instance = instances++;
  int a = 100 + static_cast<int>(::getpid() % 150);
  int b = 1 + instance % 250;

  try {
    if (!fs::exists(identityFile())) {
      auto r = processes_.run({.program = "ssh-keygen",
                               .args = {"-q", "-t", "ed25519", "-N", "", "-C",
                                        "switchyard-test-deployer", "-f", identityFile().string()},
                               .timeout = 30s});
      if (!r.ok())
        throw Error("ssh-keygen (deployer key) " + r.describeStatus() + ": " + r.errTail);
    }
    std::set<std::string> seen;
    for (size_t i = 0; i < options_.names.size(); ++i) {
      const std::string& name = options_.names[i];
      if (name.empty() || name.find_first_of("/ \t'\"") != std::string::npos ||
          !seen.insert(name).second)
        throw InputError("bad or duplicate test host name '" + name + "'");
      TestHost h;
      h.name = name;
      h.root = dir_ / "hosts" / name;
      auto s = std::make_unique<Slot>();
      s->index = hosts_.size();
      if (options_.network == TestNetwork::Loopback) {
        h.address =
            "127." + std::to_string(a) + "." + std::to_string(b) + "." + std::to_string(10 + i);
        h.port = freePort(h.address);
      } else {
        // Claim a free namespace name atomically: `ip netns add` fails when it exists.
        int n = 0;
        for (int k = 1; k < 250 && !n; ++k) {
          auto r = processes_.run({.program = "ip",
                                   .args = {"netns", "add", kNetnsPrefix + std::to_string(k)},
                                   .timeout = 10s});
          if (r.ok()) n = k;
        }
        if (!n)
          throw Error("no free network namespace name " + std::string(kNetnsPrefix) + "1..249");
        s->netns = kNetnsPrefix + std::to_string(n);
        s->netIndex = n;
        h.address = std::string(kLabPrefix) + ":" + hexIndex(n) + "::2";
        h.port = 22;
      }
      hosts_.push_back(h);
      slots_.push_back(std::move(s));
      prepare(*slots_.back());
    }
    writeClientFiles();
    // Register before anything runs, so a crashed test's hosts are stopped by the next one.
    std::string netns;
    for (auto& s : slots_) netns += s->netns + " ";
    fs::create_directories(kRegistry);
    registryEntry_ =
        fs::path(kRegistry) / (std::to_string(::getpid()) + "." + std::to_string(instance));
    os::writeFileAtomic(registryEntry_, std::to_string(::getpid()) + " " + startTimeOf(::getpid()) +
                                            "\n" + dir_.string() + "\n" +
                                            (temp_ ? "temp" : "keep") + "\n" + netns + "\n");
    for (auto& s : slots_) launch(*s);
  } catch (...) {
    for (auto& s : slots_) kill(*s);
    for (auto& s : slots_)
      if (!s->netns.empty())
        processes_.run({.program = "ip", .args = {"netns", "del", s->netns}, .timeout = 10s});
    throw;
  }
}

TestHosts::~TestHosts() {
  for (auto& s : slots_) kill(*s);
  bool anyNetns = false;
  for (auto& s : slots_) {
    if (s->netns.empty()) continue;
    anyNetns = true;
    try {
      processes_.run({.program = "ip", .args = {"link", "del", s->netns}, .timeout = 10s});
      processes_.run({.program = "ip", .args = {"netns", "del", s->netns}, .timeout = 10s});
    } catch (const std::exception& e) {
      std::cerr << "test hosts: removing " << s->netns << ": " << e.what() << "\n";
    }
  }
  if (anyNetns) {
    try {
      // The blackhole is shared by every lab instance: remove it when the last one is gone.
      auto list = processes_.run({.program = "ip", .args = {"netns", "list"}, .timeout = 10s});
      if (list.out.find(kNetnsPrefix) == std::string::npos)
        processes_.run(
            {.program = "ip",
             .args = {"-6", "route", "del", "blackhole", std::string(kLabPrefix) + "::/48"},
             .timeout = 10s});
    } catch (...) {
    }
  }
  std::error_code ec;
  if (!registryEntry_.empty()) fs::remove(registryEntry_, ec);
}

TestHosts::Slot& TestHosts::slot(std::string_view name) {
  for (auto& s : slots_)
    if (hosts_[s->index].name == name) return *s;
  throw InputError("no test host named '" + std::string(name) + "'");
}
const TestHosts::Slot& TestHosts::slot(std::string_view name) const {
  return const_cast<TestHosts*>(this)->slot(name);
}

const TestHost& TestHosts::host(std::string_view name) const { return hosts_[slot(name).index]; }

fs::path TestHosts::identityFile() const { return dir_ / "keys" / "deploy_ed25519"; }
fs::path TestHosts::knownHostsFile() const { return dir_ / "keys" / "known_hosts"; }
fs::path TestHosts::sshConfigFile() const { return dir_ / "ssh_config"; }

SshConfig TestHosts::sshConfig() const {
  SshConfig c;
  c.identityFile = identityFile();
  c.knownHosts = knownHostsFile();
  c.connectTimeout = std::chrono::seconds(5);
  c.useAgent = false;
  return c;
}

void TestHosts::prepare(Slot& s) {
  const TestHost& h = hosts_[s.index];
  for (const char* d : {"nix", "state", "etc-ssh/authorized_keys.d", "home", "run/sshd"})
    fs::create_directories(h.root / d);
  // sshd refuses a privilege separation dir or key dirs that others may write to.
  for (const char* d : {"etc-ssh", "etc-ssh/authorized_keys.d", "run", "run/sshd"})
    fs::permissions(h.root / d, fs::perms(0755));
  fs::permissions(h.root / "home", fs::perms(0700));
  const fs::path key = h.root / "etc-ssh" / "ssh_host_ed25519_key";
  if (!fs::exists(key)) {
    auto r = processes_.run(
        {.program = "ssh-keygen",
         .args = {"-q", "-t", "ed25519", "-N", "", "-C", "hostkey-" + h.name, "-f", key.string()},
         .timeout = 30s});
    if (!r.ok()) throw Error("ssh-keygen (host key of " + h.name + ") " + r.describeStatus());
  }
  os::writeFileAtomic(h.root / "etc-ssh/authorized_keys.d/root",
                      os::readFile(identityFile().string() + ".pub"), fs::perms(0644));
  if (!options_.loginUser.empty()) {
    const std::string& u = options_.loginUser;
    fs::create_directories(h.root / "etc-users");
    fs::create_directories(h.root / "sudoers.d");
    fs::permissions(h.root / "sudoers.d", fs::perms(0755));
    os::writeFileAtomic(h.root / "etc-users/passwd",
                        os::readFile("/etc/passwd") + u + ":x:4242:4242::/tmp:/bin/sh\n",
                        fs::perms(0644));
    os::writeFileAtomic(h.root / "etc-users/group", os::readFile("/etc/group") + u + ":x:4242:\n",
                        fs::perms(0644));
    // "*": no password, but not a locked account (sshd refuses "!" ones)
    os::writeFileAtomic(h.root / "etc-users/shadow",
                        os::readFile("/etc/shadow") + u + ":*:19000:0:99999:7:::\n",
                        fs::perms(0640));
    os::writeFileAtomic(h.root / "sudoers.d/switchyard-test", u + " ALL=(ALL) NOPASSWD: ALL\n",
                        fs::perms(0440));
    os::writeFileAtomic(h.root / "etc-ssh/authorized_keys.d" / u,
                        os::readFile(identityFile().string() + ".pub"), fs::perms(0644));
  }
  const std::string listen = options_.network == TestNetwork::Netns
                                 ? "[" + h.address + "]:" + std::to_string(h.port)
                                 : h.address + ":" + std::to_string(h.port);
  // Paths as seen inside the host's namespace.
  std::string config =
      "# written by switchyard's test hosts (runner/lab/test_hosts.cc)\n"
      "ListenAddress " +
      listen +
      "\n"
      "HostKey /etc/ssh/ssh_host_ed25519_key\n"
      "PidFile /var/lib/fake-nixos/sshd.pid\n"
      "AuthorizedKeysFile /etc/ssh/authorized_keys.d/%u\n"
      "PermitRootLogin prohibit-password\n"
      "PubkeyAuthentication yes\n"
      "PasswordAuthentication no\n"
      "KbdInteractiveAuthentication no\n"
      "# no PAM: there is no systemd-logind here\n"
      "UsePAM no\n"
      "# many short nix/ssh sessions at once\n"
      "MaxStartups 100:30:200\n"
      "MaxSessions 50\n"
      "# Builds here run as root, not as the machine's nixbld users: every host (and the\n"
      "# machine itself) has its own /nix/var/nix/userpool, so two of them could take the same\n"
      "# nixbld uid at once, and Nix kills every process of a build user before it builds -\n"
      "# the other's builder died of signal 9.\n"
      "SetEnv SWITCHYARD_TEST_HOST=" +
      h.name + " \"NIX_CONFIG=build-users-group =\"\n";
  os::writeFileAtomic(h.root / "etc-ssh/sshd_config", config, fs::perms(0644));
}

void TestHosts::writeClientFiles() {
  std::string knownHosts, sshConfig;
  sshConfig =
      "# written by switchyard's test hosts; use with ssh -F / NIX_SSHOPTS=-F\n"
      "Host *\n"
      "  User root\n"
      "  IdentityFile " +
      identityFile().string() +
      "\n"
      "  IdentitiesOnly yes\n"
      "  UserKnownHostsFile " +
      knownHostsFile().string() +
      "\n"
      "  GlobalKnownHostsFile /dev/null\n"
      "  StrictHostKeyChecking yes\n"
      "  BatchMode yes\n"
      "  ConnectTimeout 5\n"
      "  LogLevel ERROR\n";
  for (const auto& h : hosts_) {
    auto pub =
        split(std::string(trim(os::readFile(h.root / "etc-ssh/ssh_host_ed25519_key.pub"))), ' ');
    if (pub.size() < 2) throw Error("unreadable host key of " + h.name);
    std::string field = h.port == 22 ? h.address : "[" + h.address + "]:" + std::to_string(h.port);
    knownHosts += field + " " + pub[0] + " " + pub[1] + "\n";
    sshConfig += "Host " + h.name + "\n  HostName " + h.address + "\n  Port " +
                 std::to_string(h.port) + "\n";
  }
  os::writeFileAtomic(knownHostsFile(), knownHosts, fs::perms(0644));
  os::writeFileAtomic(sshConfigFile(), sshConfig, fs::perms(0644));
}

void TestHosts::launch(Slot& s) {
  const TestHost& h = hosts_[s.index];
  auto q = [](const fs::path& p) { return shellQuote(p.string()); };
  fs::remove(h.stateDir() / "sshd.pid");

  std::vector<std::string> prefix;
  if (!s.netns.empty()) {
    // A veth pair: the root side keeps the namespace's name, the inside is eth0.
    ProcessRunner& p = processes_;
    auto ip = [&](std::vector<std::string> args) {
      auto r = p.run({.program = "ip", .args = std::move(args), .timeout = 10s});
      if (!r.ok()) throw Error("ip: " + r.describeStatus() + ": " + std::string(trim(r.errTail)));
    };
    auto outside = std::string(kLabPrefix) + ":" + hexIndex(s.netIndex) + "::1/64";
    auto inside = h.address + "/64";
    if (!processes_.run({.program = "ip", .args = {"link", "show", s.netns}, .timeout = 10s})
             .ok()) {
      ip({"-6", "route", "replace", "blackhole", std::string(kLabPrefix) + "::/48"});
      ip({"link", "add", s.netns, "type", "veth", "peer", "name", "eth0", "netns", s.netns});
      ip({"addr", "add", outside, "dev", s.netns, "nodad"});
      ip({"link", "set", s.netns, "up"});
      ip({"-n", s.netns, "link", "set", "lo", "up"});
      ip({"-n", s.netns, "addr", "add", inside, "dev", "eth0", "nodad"});
      ip({"-n", s.netns, "link", "set", "eth0", "up"});
    }
    prefix = {"netns", "exec", s.netns, "unshare"};
  }

  const std::string script =
      "set -e\n"
      "mount --bind " +
      q(h.nixDir()) +
      " /nix\n"
      "mount --bind " +
      q(h.stateDir()) +
      " /var/lib/fake-nixos\n"
      "mount --bind " +
      q(h.root / "etc-ssh") +
      " /etc/ssh\n"
      "mount --bind " +
      q(h.root / "home") +
      " /root\n"
      "mount --bind " +
      q(h.runDir()) + " /run\n" +
      // (the host's own users before /tmp is covered: the hosts' files may live there)
      (options_.loginUser.empty()
           ? std::string()
           : "for f in passwd group shadow; do mount --bind " + q(h.root / "etc-users") +
                 "/$f /etc/$f; done\n"
                 "mkdir -p /etc/sudoers.d\n"
                 "mount --bind " +
                 q(h.root / "sudoers.d") + " /etc/sudoers.d\n") +
      "mount -t tmpfs -o mode=1777 tmpfs /tmp\n"
      "hostname " +
      shellQuote(h.name) +
      "\n"
      "/usr/sbin/sshd -t -f /etc/ssh/sshd_config\n"
      "exec /usr/sbin/sshd -f /etc/ssh/sshd_config -E /var/lib/fake-nixos/sshd.log\n";
  std::vector<std::string> args = {"--mount", "--uts", "--propagation", "private", "--",
                                   "/bin/sh", "-c",    script};
  RunOptions run;
  if (prefix.empty()) {
    run.program = "unshare";
    run.args = args;
  } else {
    run.program = "ip";
    run.args = prefix;
    run.args.insert(run.args.end(), args.begin(), args.end());
  }
  run.timeout = 30s;
  auto r = processes_.run(run);
  if (!r.ok())
    throw Error("starting sshd of test host " + h.name + " " + r.describeStatus() + ": " +
                std::string(trim(r.errTail)));

  // sshd writes its pid file once it listens.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  const fs::path pidFile = h.stateDir() / "sshd.pid";
  pid_t pid = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (auto text = readTrimmed(pidFile); text && !text->empty()) {
      pid = static_cast<pid_t>(std::stol(*text));
      break;
    }
    std::this_thread::sleep_for(10ms);
  }
  auto log = [&] { return os::readFileIfExists(h.stateDir() / "sshd.log").value_or(""); };
  if (!pid)
    throw Error("test host " + h.name + ": sshd wrote no pid file within 10 s; log: " + log());
  int fd = ::open(("/proc/" + std::to_string(pid) + "/ns/mnt").c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SysError(errno, "opening the mount namespace of test host " + h.name);
  if (s.nsFd >= 0) ::close(s.nsFd);
  s.nsFd = fd;
  s.sshdPid = pid;
  while (!tcpAccepts(h.address, h.port, 200ms)) {
    if (std::chrono::steady_clock::now() >= deadline)
      throw Error("test host " + h.name + " does not accept connections on " + h.address + ":" +
                  std::to_string(h.port) + "; log: " + log());
    std::this_thread::sleep_for(10ms);
  }
}

void TestHosts::kill(Slot& s) noexcept {
  if (s.nsFd < 0) return;
  // Everything in the namespace: sshd, its sessions, and whatever a deploy left running.
  for (int round = 0; round < 200; ++round) {
    auto pids = pidsInNamespace(s.nsFd);
    if (pids.empty()) break;
    for (pid_t p : pids) ::kill(p, SIGKILL);
    std::this_thread::sleep_for(10ms);
  }
  ::close(s.nsFd);
  s.nsFd = -1;
  s.sshdPid = 0;
}

void TestHosts::stop(std::string_view name) { kill(slot(name)); }

void TestHosts::start(std::string_view name) {
  Slot& s = slot(name);
  if (s.nsFd >= 0) kill(s);
  launch(s);
}

bool TestHosts::accepting(std::string_view name) const {
  const TestHost& h = host(name);
  return tcpAccepts(h.address, h.port, 500ms);
}

void TestHosts::replaceHostKey(std::string_view name) {
  Slot& s = slot(name);
  const TestHost& h = hosts_[s.index];
  kill(s);
  fs::remove(h.root / "etc-ssh/ssh_host_ed25519_key");
  fs::remove(h.root / "etc-ssh/ssh_host_ed25519_key.pub");
  prepare(s);
  launch(s);
}

void TestHosts::cutNetwork(std::string_view name) {
  Slot& s = slot(name);
  if (s.netns.empty()) throw InputError("cutNetwork needs TestNetwork::Netns");
  auto r =
      processes_.run({.program = "ip", .args = {"link", "set", s.netns, "down"}, .timeout = 10s});
  if (!r.ok()) throw Error("ip link set down: " + r.errTail);
}

void TestHosts::restoreNetwork(std::string_view name) {
  Slot& s = slot(name);
  if (s.netns.empty()) throw InputError("restoreNetwork needs TestNetwork::Netns");
  const TestHost& h = hosts_[s.index];
  // Taking a link down flushes its IPv6 addresses: put them back.
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"link", "set", s.netns, "up"},
        {"addr", "replace", std::string(kLabPrefix) + ":" + hexIndex(s.netIndex) + "::1/64", "dev",
         s.netns, "nodad"},
        {"-n", s.netns, "addr", "replace", h.address + "/64", "dev", "eth0", "nodad"}}) {
    auto r = processes_.run({.program = "ip", .args = args, .timeout = 10s});
    if (!r.ok()) throw Error("ip " + join(args, " ") + ": " + r.errTail);
  }
}

std::vector<int> TestHosts::processIds(std::string_view name) const {
  const Slot& s = slot(name);
  if (s.nsFd < 0) return {};
  auto pids = pidsInNamespace(s.nsFd);
  return std::vector<int>(pids.begin(), pids.end());
}

RunResult TestHosts::runInside(std::string_view name, const std::vector<std::string>& argv) {
  Slot& s = slot(name);
  if (s.nsFd < 0) throw Error("test host " + std::string(name) + " is not running");
  auto pids = pidsInNamespace(s.nsFd);
  if (pids.empty()) throw Error("test host " + std::string(name) + " has no process left");
  std::vector<std::string> args = {"--target", std::to_string(pids.front()), "--mount", "--uts"};
  if (!s.netns.empty()) args.push_back("--net");
  args.push_back("--");
  args.insert(args.end(), argv.begin(), argv.end());
  return processes_.run({.program = "nsenter", .args = args, .timeout = 60s});
}

}  // namespace runner::lab
