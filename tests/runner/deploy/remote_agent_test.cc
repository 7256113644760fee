// The deploy agent (remote_agent.h) run on this machine: the real script, with a fake
// `nix-env` on PATH (profile generations as symlinks, like Nix's) and fake system closures
// whose switch-to-configuration writes markers, fails, or hangs as told. Covers the watchdog
// logic without ssh: confirm, reject, timeout, failed and hung activations, first deploys,
// late confirmations, and the refusal to run two watchdogs at once.
#include "runner/deploy/remote_agent.h"

#include <thread>

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/support/wait.h"

namespace fs = std::filesystem;
using namespace runner::deploy;
using namespace std::chrono_literals;

namespace {

// nix-env -p P --set X | --switch-generation N, as Nix does it: P-N-link -> X, P -> P-N-link.
const char* kFakeNixEnv = R"SH(#!/bin/sh
set -e
[ "$1" = -p ] || { echo "fake nix-env: want -p" >&2; exit 2; }
p=$2
case "$3" in
  --set)
    n=0
    for l in "$p"-*-link; do
      [ -L "$l" ] || continue
      k=${l#"$p"-}; k=${k%-link}
      [ "$k" -gt "$n" ] && n=$k
    done
    n=$((n + 1))
    ln -s "$4" "$p-$n-link"
    ln -sfn "$(basename "$p")-$n-link" "$p"
    echo "fake nix-env: generation $n" ;;
  --switch-generation)
    [ -L "$p-$4-link" ] || { echo "error: generation $4 does not exist" >&2; exit 1; }
    ln -sfn "$(basename "$p")-$4-link" "$p"
    echo "switching profile to version $4" ;;
  *) echo "fake nix-env: $3?" >&2; exit 2 ;;
esac
)SH";

class AgentBench {
 public:
  AgentBench() {
    fs::create_directories(bin());
    fs::create_directories(tmp_.path() / "profiles");
    fs::create_directories(state());
    runner::os::writeFileAtomic(bin() / "nix-env", kFakeNixEnv, fs::perms(0755));
  }

  // A fake closure: switch-to-configuration appends "<name> <action>" to state/switch.log and
  // writes state/activated; `body` runs before that (e.g. "exit 3", "sleep 30").
  std::string closure(const std::string& name, const std::string& body = "") {
    fs::path dir = tmp_.path() / "store" / name;
    fs::create_directories(dir / "bin");
    std::string script = "#!/bin/sh\n" + body + "\necho \"" + name + " $1\" >> '" +
                         state().string() + "/switch.log'\necho '" + dir.string() + "' > '" +
                         state().string() + "/activated'\necho switched " + name + "\n";
    runner::os::writeFileAtomic(dir / "bin/switch-to-configuration", script, fs::perms(0755));
    return dir.string();
  }

  std::string profile() const { return (tmp_.path() / "profiles/system").string(); }
  fs::path state() const { return tmp_.path() / "state"; }
  fs::path bin() const { return tmp_.path() / "bin"; }
  std::string base() const { return (tmp_.path() / "run").string(); }

  // Puts the script in a fresh deploy directory and returns the directory.
  std::string newDeployDir() {
    std::string dir = base() + "/deploy-" + std::to_string(1000000000000 + ++counter_);
    fs::create_directories(dir);
    runner::os::writeFileAtomic(dir + "/agent.sh", agentScript(), fs::perms(0700));
    return dir;
  }

  runner::RunResult sh(const std::string& command) {
    runner::os::PosixProcessRunner p;
    return p.run({.program = "/bin/sh",
                  .args = {"-c", command},
                  .env = {{"PATH", bin().string() + ":/usr/bin:/bin"}},
                  .timeout = 60s});
  }

  AgentParams params(const std::string& dir, const std::string& storePath,
                     std::optional<int64_t> prev, int confirmSecs = 30, int switchSecs = 30) {
    AgentParams p;
    p.dir = dir;
    p.storePath = storePath;
    p.profile = profile();
    p.previousGeneration = prev;
    p.confirmTimeout = std::chrono::seconds(confirmSecs);
    p.switchTimeout = std::chrono::seconds(switchSecs);
    p.detach = "setsid";
    return p;
  }

  // Long-polls until `until` holds (or 20 s pass); returns the last status.
  AgentStatus waitFor(const std::string& dir,
                      const std::function<bool(const AgentStatus&)>& until) {
    size_t offset = 0;
    std::string phase;
    AgentStatus last;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto r = sh(agentWatchCommand(dir, offset, phase, 2));
      auto st = parseAgentStatus(r.out);
      REQUIRE(st);
      log_ += st->logBytes;
      offset = st->logSize;
      phase = st->phase;
      last = *st;
      if (until(last)) break;
    }
    return last;
  }
  std::string deployAndWait(const std::string& dir, const AgentParams& p) {
    auto r = sh(agentStartCommand(p));
    INFO(r.errTail);
    REQUIRE(r.exitStatus == 0);
    return std::string(runner::trim(r.out));
  }
  std::string profileLink() const {
    std::error_code ec;
    return fs::read_symlink(profile(), ec).string();
  }
  std::string activated() const {
    return std::string(
        runner::trim(runner::os::readFileIfExists(state() / "activated").value_or("")));
  }
  std::string switchLog() const {
    return runner::os::readFileIfExists(state() / "switch.log").value_or("");
  }
  const std::string& log() const { return log_; }

 private:
  runner::os::TempDir tmp_{"sy-agent"};
  int counter_ = 0;
  std::string log_;
};

bool awaiting(const AgentStatus& s) {
  return s.phase == "awaiting-confirmation" || s.finished() || s.phase == "rolling-back";
}
bool finished(const AgentStatus& s) { return s.finished(); }

}  // namespace

TEST_CASE("agent: a confirmed activation stays", "[unit][deploy][agent]") {
  AgentBench b;
  std::string v1 = b.closure("v1"), v2 = b.closure("v2");
  auto d1 = b.newDeployDir();
  CHECK(b.deployAndWait(d1, b.params(d1, v1, std::nullopt)) == "started (setsid)");
  auto st = b.waitFor(d1, awaiting);
  REQUIRE(st.phase == "awaiting-confirmation");
  CHECK(st.switchStatus == 0);
  CHECK(st.newGeneration == "system-1-link");
  CHECK(st.detach == "setsid");
  CHECK(b.sh(agentConfirmCommand(d1)).out == "confirmed\n");
  st = b.waitFor(d1, finished);
  CHECK(st.phase == "confirmed");
  CHECK(st.decision == "confirmed");
  CHECK(b.profileLink() == "system-1-link");
  CHECK(b.activated() == v1);
  CHECK(b.log().find("switched v1") != std::string::npos);
  // A second confirmation is too late: the first decision stands.
  CHECK(b.sh(agentConfirmCommand(d1)).out == "not-ready: confirmed\n");

  auto d2 = b.newDeployDir();
  b.deployAndWait(d2, b.params(d2, v2, 1));
  REQUIRE(b.waitFor(d2, awaiting).phase == "awaiting-confirmation");
  CHECK(b.sh(agentConfirmCommand(d2)).out == "confirmed\n");
  CHECK(b.waitFor(d2, finished).phase == "confirmed");
  CHECK(b.profileLink() == "system-2-link");
  CHECK(b.switchLog() == "v1 switch\nv2 switch\n");
}

TEST_CASE("agent: no confirmation within confirm_timeout restores the recorded generation",
          "[unit][deploy][agent]") {
  AgentBench b;
  std::string v1 = b.closure("v1"), v2 = b.closure("v2"), v3 = b.closure("v3");
  // Generations 1 (v1) and 2 (v2) exist; 1 is active, so --rollback would pick... 1 anyway;
  // make 3 the active one and 4 the new one: the watchdog must return to 3, not to N-1.
  for (auto [v, prev] : {std::pair{v1, std::optional<int64_t>{}}, {v2, 1}, {v3, 2}}) {
    auto d = b.newDeployDir();
    b.deployAndWait(d, b.params(d, v, prev));
    REQUIRE(b.waitFor(d, awaiting).phase == "awaiting-confirmation");
    b.sh(agentConfirmCommand(d));
    REQUIRE(b.waitFor(d, finished).phase == "confirmed");
  }
  REQUIRE(b.sh("nix-env -p " + b.profile() + " --switch-generation 2").exitStatus == 0);
  std::string v4 = b.closure("v4");
  auto d = b.newDeployDir();
  auto t0 = std::chrono::steady_clock::now();
  b.deployAndWait(d, b.params(d, v4, 2, /*confirmSecs=*/1));
  auto st = b.waitFor(d, finished);
  CHECK(st.phase == "rolled-back");
  CHECK(st.decision == "timeout: no confirmation within 1s");
  CHECK(st.reason == "no confirmation within 1s");
  CHECK(st.newGeneration == "system-4-link");
  CHECK(b.profileLink() == "system-2-link");
  CHECK(b.activated() == v2);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(b.log().find("switchyard: no confirmation within 1s; rolling back to generation 2") !=
        std::string::npos);
  CHECK(b.sh(agentConfirmCommand(d)).out == "not-ready: rolled-back\n");
}

TEST_CASE("agent: a rejection rolls back at once with the runner's reason",
          "[unit][deploy][agent]") {
  AgentBench b;
  std::string v1 = b.closure("v1"), v2 = b.closure("v2");
  auto d1 = b.newDeployDir();
  b.deployAndWait(d1, b.params(d1, v1, std::nullopt));
  b.waitFor(d1, awaiting);
  b.sh(agentConfirmCommand(d1));
  auto d2 = b.newDeployDir();
  b.deployAndWait(d2, b.params(d2, v2, 1, /*confirmSecs=*/60));
  REQUIRE(b.waitFor(d2, awaiting).phase == "awaiting-confirmation");
  auto t0 = std::chrono::steady_clock::now();
  CHECK(
      b.sh(agentRejectCommand(d2, "health check 'curl x' exited with status 7\nsecond line")).out ==
      "rejected\n");
  auto st = b.waitFor(d2, finished);
  CHECK(std::chrono::steady_clock::now() - t0 < 5s);
  CHECK(st.phase == "rolled-back");
  CHECK(st.reason == "health check 'curl x' exited with status 7 second line");
  CHECK(b.profileLink() == "system-1-link");
  CHECK(b.activated() == v1);
  CHECK(b.switchLog() == "v1 switch\nv2 switch\nv1 switch\n");
}

TEST_CASE("agent: a failed or hung activation rolls back without waiting for anyone",
          "[unit][deploy][agent]") {
  AgentBench b;
  std::string good = b.closure("good");
  auto d1 = b.newDeployDir();
  b.deployAndWait(d1, b.params(d1, good, std::nullopt));
  b.waitFor(d1, awaiting);
  b.sh(agentConfirmCommand(d1));
  REQUIRE(b.waitFor(d1, finished).phase == "confirmed");

  SECTION("exit status 3") {
    std::string bad = b.closure("bad", "echo 'activation of bad failed' >&2; exit 3");
    auto d = b.newDeployDir();
    b.deployAndWait(d, b.params(d, bad, 1));
    auto st = b.waitFor(d, finished);
    CHECK(st.phase == "rolled-back");
    CHECK(st.switchStatus == 3);
    CHECK(st.decision == "failed: switch-to-configuration exited with status 3");
    CHECK(st.reason == "activation failed: switch-to-configuration exited with status 3");
    CHECK(b.log().find("activation of bad failed") != std::string::npos);
    CHECK(b.profileLink() == "system-1-link");
    CHECK(b.activated() == good);
    // Nobody can confirm a failed activation.
    CHECK(b.sh(agentConfirmCommand(d)).out == "not-ready: rolled-back\n");
  }
  SECTION("a switch that hangs is killed after switch_timeout, with what it started") {
    std::string hung = b.closure(
        "hung", "sleep 300 & echo $! > '" + b.state().string() + "/child.pid'; sleep 300");
    auto d = b.newDeployDir();
    auto t0 = std::chrono::steady_clock::now();
    b.deployAndWait(d, b.params(d, hung, 1, 30, /*switchSecs=*/1));
    auto st = b.waitFor(d, finished);
    CHECK(std::chrono::steady_clock::now() - t0 < 8s);
    CHECK(st.phase == "rolled-back");
    CHECK(st.switchStatus == 124);
    CHECK(st.reason == "activation failed: switch-to-configuration timed out after 1s");
    CHECK(b.profileLink() == "system-1-link");
    // What the hung switch started went with it (gone, or a zombie waiting to be reaped).
    auto child = std::string(runner::trim(runner::os::readFile(b.state() / "child.pid")));
    auto goneOrZombie = [&] {
      auto stat = runner::os::readFileIfExists("/proc/" + child + "/stat").value_or("");
      return stat.empty() || stat.find(") Z ") != std::string::npos;
    };
    CHECK(tests::waitUntil(goneOrZombie, 10s));
  }
}

TEST_CASE("agent: action test leaves the profile, boot leaves the running system",
          "[unit][deploy][agent]") {
  AgentBench b;
  std::string good = b.closure("good");
  auto d1 = b.newDeployDir();
  b.deployAndWait(d1, b.params(d1, good, std::nullopt));
  b.waitFor(d1, awaiting);
  b.sh(agentConfirmCommand(d1));
  REQUIRE(b.waitFor(d1, finished).phase == "confirmed");

  SECTION("test: activated, no new generation; a failure re-runs the recorded one's test") {
    std::string next = b.closure("next");
    auto d = b.newDeployDir();
    auto p = b.params(d, next, 1);
    p.action = runner::SwitchAction::Test;
    b.deployAndWait(d, p);
    auto st = b.waitFor(d, awaiting);
    CHECK(st.newGeneration.empty());
    CHECK(b.activated() == next);
    CHECK(b.profileLink() == "system-1-link");
    b.sh(agentRejectCommand(d, "health check failed"));
    st = b.waitFor(d, finished);
    CHECK(st.phase == "rolled-back");
    CHECK(b.activated() == good);
    CHECK(b.profileLink() == "system-1-link");
    CHECK(b.switchLog() == "good switch\nnext test\ngood test\n");
  }
  SECTION("boot: a new generation, switch-to-configuration boot; a rollback boots the old one") {
    std::string next = b.closure("next");
    auto d = b.newDeployDir();
    auto p = b.params(d, next, 1);
    p.action = runner::SwitchAction::Boot;
    b.deployAndWait(d, p);
    auto st = b.waitFor(d, awaiting);
    CHECK(st.newGeneration == "system-2-link");
    b.sh(agentRejectCommand(d, "no"));
    st = b.waitFor(d, finished);
    CHECK(st.phase == "rolled-back");
    CHECK(b.profileLink() == "system-1-link");
    CHECK(b.switchLog() == "good switch\nnext boot\ngood boot\n");
  }
}

TEST_CASE("agent: a first deploy that fails has nothing to return to", "[unit][deploy][agent]") {
  AgentBench b;
  std::string bad = b.closure("bad", "exit 3");
  auto d = b.newDeployDir();
  b.deployAndWait(d, b.params(d, bad, std::nullopt));
  auto st = b.waitFor(d, finished);
  CHECK(st.phase == "failed");
  CHECK(st.reason == "activation failed: switch-to-configuration exited with status 3");
  CHECK(b.log().find("there is no previous generation to return to") != std::string::npos);
  CHECK(b.profileLink() == "system-1-link");
}

TEST_CASE(
    "agent: refuses to start while another deploy's watchdog is deciding, and checks the "
    "closure first",
    "[unit][deploy][agent]") {
  AgentBench b;
  std::string v1 = b.closure("v1"), v2 = b.closure("v2");
  auto d1 = b.newDeployDir();
  b.deployAndWait(d1, b.params(d1, v1, std::nullopt, /*confirmSecs=*/60));
  REQUIRE(b.waitFor(d1, awaiting).phase == "awaiting-confirmation");
  auto d2 = b.newDeployDir();
  auto r = b.sh(agentStartCommand(b.params(d2, v2, 1)));
  CHECK(r.exitStatus == 4);
  CHECK(r.errTail == "another deploy's watchdog is still active on this host (" + d1 +
                         ", phase awaiting-confirmation)\n");
  b.sh(agentConfirmCommand(d1));
  REQUIRE(b.waitFor(d1, finished).phase == "confirmed");

  auto missing = b.sh(agentStartCommand(b.params(d2, "/nonexistent/store/x", 1)));
  CHECK(missing.exitStatus == 3);
  CHECK(missing.errTail ==
        "/nonexistent/store/x/bin/switch-to-configuration is missing on this host\n");
}

TEST_CASE("agent: refuses to switch when the profile moved since the runner looked",
          "[unit][deploy][agent]") {
  AgentBench b;
  std::string v1 = b.closure("v1"), v2 = b.closure("v2"), v3 = b.closure("v3");
  auto d1 = b.newDeployDir();
  b.deployAndWait(d1, b.params(d1, v1, std::nullopt));
  b.waitFor(d1, awaiting);
  b.sh(agentConfirmCommand(d1));
  REQUIRE(b.waitFor(d1, finished).phase == "confirmed");
  // The runner recorded generation 1; meanwhile someone ran nixos-rebuild (generation 2).
  REQUIRE(b.sh("nix-env -p " + b.profile() + " --set " + v2).exitStatus == 0);
  auto d = b.newDeployDir();
  auto r = b.sh(agentStartCommand(b.params(d, v3, 1)));
  CHECK(r.exitStatus == 3);
  CHECK(r.errTail == b.profile() +
                         " changed since the runner looked: it is 'system-2-link', not "
                         "'system-1-link'; not switching\n");
  CHECK(b.profileLink() == "system-2-link");
  CHECK(b.switchLog() == "v1 switch\n");
  // A first deploy expects no profile at all.
  auto first = b.sh(agentStartCommand(b.params(d, v3, std::nullopt)));
  CHECK(first.exitStatus == 3);
  CHECK(first.errTail.find("it is 'system-2-link', not 'nothing'") != std::string::npos);
}

TEST_CASE("agent: a watchdog that does not come up in time changes nothing, even later",
          "[unit][deploy][agent]") {
  AgentBench b;
  std::string v1 = b.closure("v1");
  // A setsid that does not start anything: the watchdog never reports in.
  runner::os::writeFileAtomic(b.bin() / "setsid", "#!/bin/sh\nexit 0\n", fs::perms(0755));
  auto d = b.newDeployDir();
  auto r = b.sh(agentStartCommand(b.params(d, v1, std::nullopt)));
  CHECK(r.exitStatus == 5);
  CHECK(r.errTail.find("the watchdog did not start within 4s") == 0);
  auto st = parseAgentStatus(b.sh("/bin/sh " + d + "/agent.sh status " + d).out);
  REQUIRE(st);
  CHECK(st->phase == "failed");
  CHECK(st->newGeneration.empty());
  CHECK(st->decision.find("rejected: the watchdog did not start within 4s") == 0);
  // The watchdog shows up after all: it sees the decision and leaves the system alone.
  fs::remove(b.bin() / "setsid");
  CHECK(b.sh("/bin/sh " + d + "/agent.sh run " + d).exitStatus == 0);
  st = parseAgentStatus(b.sh("/bin/sh " + d + "/agent.sh status " + d).out);
  REQUIRE(st);
  CHECK(st->phase == "failed");
  CHECK(st->reason.find("the watchdog did not start within 4s") == 0);
  CHECK(b.profileLink().empty());
  CHECK(b.switchLog().empty());
}

TEST_CASE("agent: of two starts at the same moment exactly one switches", "[unit][deploy][agent]") {
  AgentBench b;
  std::string v1 = b.closure("v1"), v2 = b.closure("v2");
  auto d1 = b.newDeployDir(), d2 = b.newDeployDir();
  runner::RunResult r1, r2;
  std::thread t1([&] { r1 = b.sh(agentStartCommand(b.params(d1, v1, std::nullopt, 60))); });
  std::thread t2([&] { r2 = b.sh(agentStartCommand(b.params(d2, v2, std::nullopt, 60))); });
  t1.join();
  t2.join();
  INFO(r1.errTail << r2.errTail);
  CHECK(r1.exitStatus + r2.exitStatus == 4);  // one 0, one 4
  const std::string& winner = r1.exitStatus == 0 ? d1 : d2;
  REQUIRE(b.waitFor(winner, awaiting).phase == "awaiting-confirmation");
  b.sh(agentConfirmCommand(winner));
  CHECK(b.waitFor(winner, finished).phase == "confirmed");
  CHECK(b.switchLog() == (r1.exitStatus == 0 ? "v1 switch\n" : "v2 switch\n"));
}

TEST_CASE("agent status parsing and generation links", "[unit][deploy]") {
  auto st = parseAgentStatus(
      "phase=rolled-back\nrc=3\nnewgen=system-5-link\ndecision=failed: x\nreason=activation "
      "failed: x\ndetach=setsid\nsize=42\n--log--\nline one\nline two\n");
  REQUIRE(st);
  CHECK(st->phase == "rolled-back");
  CHECK(st->switchStatus == 3);
  CHECK(st->newGeneration == "system-5-link");
  CHECK(st->decision == "failed: x");
  CHECK(st->reason == "activation failed: x");
  CHECK(st->logSize == 42);
  CHECK(st->logBytes == "line one\nline two\n");
  CHECK(st->finished());
  CHECK_FALSE(parseAgentStatus("sh: agent.sh: not found\n"));
  CHECK_FALSE(parseAgentStatus("rc=1\n--log--\n"));
  // The marker is a line of its own; a reason quoting it does not end the header.
  auto quoted =
      parseAgentStatus("phase=failed\nreason=check printed --log--\nsize=3\n--log--\nabc");
  REQUIRE(quoted);
  CHECK(quoted->reason == "check printed --log--");
  CHECK(quoted->logSize == 3);
  CHECK(quoted->logBytes == "abc");
  CHECK(parseAgentStatus("phase=armed\n--log--\n"));

  CHECK(parseGenerationLink("system-12-link") == 12);
  CHECK(parseGenerationLink("/nix/var/nix/profiles/system-3-link\n") == 3);
  CHECK_FALSE(parseGenerationLink("system-link"));
  CHECK_FALSE(parseGenerationLink("/nix/store/abc-nixos-system"));
  CHECK_FALSE(parseGenerationLink("system-x-link"));

  AgentParams p;
  p.dir = "/run/switchyard/deploy-1";
  p.storePath = "/nix/store/abc-nixos-system-web1";
  p.previousGeneration = 4;
  p.confirmTimeout = 30s;
  p.switchTimeout = 600s;
  CHECK(
      agentStartCommand(p) ==
      "/bin/sh '/run/switchyard/deploy-1/agent.sh' start '/run/switchyard/deploy-1' "
      "'/nix/store/abc-nixos-system-web1' '/nix/var/nix/profiles/system' '4' 30 600 'auto' switch");
  p.storePath = "/nix/store/x'; rm -rf /";
  CHECK_THROWS_AS(agentStartCommand(p), runner::InputError);
  CHECK(agentRejectCommand("/d", "it's\nbad") ==
        "/bin/sh '/d/agent.sh' reject '/d' 'it'\\''s bad'");
}
