// The fork jail's capabilities must not leak into the programs the runner starts. A packaged
// daemon runs as its own user with CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN as *ambient*
// capabilities (systemd's AmbientCapabilities; nix/module.nix jailForks, README.Debian); a
// uid switch between two non-zero uids keeps ambient capabilities, so without clearing them a
// fork's `nix` would run with CAP_SYS_ADMIN. Needs root (to set the scene up).
#include <linux/capability.h>
#include <string>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "runner/os/process.h"

namespace {

// The CapAmb or CapEff line of /proc/self/status as a child sees it.
std::string capLine(const std::string& status, const std::string& key) {
  auto at = status.find(key + ":");
  if (at == std::string::npos) return "missing";
  auto end = status.find('\n', at);
  std::string v = status.substr(at + key.size() + 1, end - at - key.size() - 1);
  return v.substr(v.find_first_not_of(" \t"));
}

// In a forked child: become uid/gid 65534 holding CAP_SETUID/SETGID/SYS_ADMIN as ambient
// capabilities (like a systemd unit would), then run programs as the runner does.
// Exit status: 0 all good, 10+ the step that failed.
int childScenario() {
  if (::prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0) return 10;
  if (::setresgid(65534, 65534, 65534) != 0) return 11;
  if (::setresuid(65534, 65534, 65534) != 0) return 12;
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  const uint32_t caps =
      (1u << CAP_SETUID) | (1u << CAP_SETGID) | (1u << CAP_SYS_ADMIN);  // all below 32
  data[0].permitted = data[0].effective = data[0].inheritable = caps;
  if (::syscall(SYS_capset, &hdr, data) != 0) return 13;
  for (int c : {CAP_SETUID, CAP_SETGID, CAP_SYS_ADMIN})
    if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, c, 0, 0) != 0) return 14;

  runner::os::PosixProcessRunner procs;
  runner::RunOptions plain;
  plain.program = "/bin/cat";
  plain.args = {"/proc/self/status"};
  plain.timeout = std::chrono::seconds(30);
  auto a = procs.run(plain);
  if (a.exitStatus != 0) return 15;
  if (capLine(a.out, "CapAmb") != "0000000000000000") return 16;

  runner::RunOptions jailed = plain;
  jailed.confine = runner::Confinement{65533, 65533, true};  // needs the effective caps
  auto b = procs.run(jailed);
  if (b.exitStatus != 0) return 17;
  if (capLine(b.out, "CapAmb") != "0000000000000000") return 18;
  if (capLine(b.out, "CapEff") != "0000000000000000") return 19;
  return 0;
}

}  // namespace

TEST_CASE("children of a runner with ambient capabilities get none, jailed or not",
          "[integration][os][packaging]") {
  if (::geteuid() != 0) {
    WARN("SKIPPED: needs root to set up a non-root process with ambient capabilities");
    return;
  }
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(childScenario());
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  // 16: a plain child kept CAP_* as ambient; 18/19: the jailed one did
  CHECK(WEXITSTATUS(status) == 0);
}
