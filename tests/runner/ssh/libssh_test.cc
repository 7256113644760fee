// The libssh connector against real sshd test hosts (runner/lab/test_hosts.h): strict host
// keys, authentication, commands with streamed output, timeouts, uploads and lost connections.
#include <thread>

#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/ssh/ssh.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::ssh;
using runner::lab::TestHosts;
using namespace std::chrono_literals;

namespace {

Endpoint endpoint(const TestHosts& hosts, const std::string& name) {
  return endpointFor(hosts.host(name).target(), hosts.sshConfig());
}

SessionPtr connectOk(Connector& c, const Endpoint& ep) {
  auto r = c.connect(ep);
  if (auto* f = std::get_if<ConnectFailure>(&r)) FAIL(f->message);
  return std::move(std::get<SessionPtr>(r));
}

ConnectFailure connectFails(Connector& c, const Endpoint& ep) {
  auto r = c.connect(ep);
  REQUIRE(std::holds_alternative<ConnectFailure>(r));
  return std::get<ConnectFailure>(r);
}

}  // namespace

TEST_CASE("test hosts are separate machines: own hostname, empty /nix, private /tmp and /run",
          "[integration][ssh]") {
  TestHosts hosts({.names = {"alpha", "beta"}});
  auto connector = makeLibsshConnector();
  auto s = connectOk(*connector, endpoint(hosts, "beta"));
  auto r = s->exec({.command = "hostname; ls -A /nix | wc -l; ls -A /tmp | wc -l; "
                               "test -d /run/sshd && echo run-ok; echo $SWITCHYARD_TEST_HOST"});
  REQUIRE(r.ok());
  CHECK(r.out == "beta\n0\n0\nrun-ok\nbeta\n");
  CHECK(runner::startsWith(s->hostKey(), "ssh-ed25519 SHA256:"));
  // Something written inside shows up in the host's directories on this machine.
  REQUIRE(s->exec({.command = "echo marker > /var/lib/fake-nixos/probe"}).ok());
  CHECK(runner::os::readFile(hosts.host("beta").stateDir() / "probe") == "marker\n");
  CHECK_FALSE(fs::exists(hosts.host("alpha").stateDir() / "probe"));
}

TEST_CASE("stopping test hosts leaves nothing running", "[integration][ssh]") {
  std::string address;
  int port = 0;
  {
    TestHosts hosts({.names = {"gamma"}});
    address = hosts.host("gamma").address;
    port = hosts.host("gamma").port;
    auto connector = makeLibsshConnector();
    auto s = connectOk(*connector, endpoint(hosts, "gamma"));
    // A detached process inside the host: it must die with the host.
    auto started =
        s->exec({.command = "setsid nohup sleep 300 >/dev/null 2>&1 < /dev/null & echo $!"});
    REQUIRE(started.ok());
    const std::string pid = std::string(runner::trim(started.out));
    REQUIRE(fs::exists("/proc/" + pid));
    hosts.stop("gamma");
    CHECK_FALSE(fs::exists("/proc/" + pid + "/ns/mnt"));
    CHECK_FALSE(hosts.accepting("gamma"));
    hosts.start("gamma");
    CHECK(hosts.accepting("gamma"));
    auto again = connectOk(*connector, endpoint(hosts, "gamma"));
    CHECK(again->exec({.command = "hostname"}).out == "gamma\n");
  }
  // The destructor stopped it.
  auto r = tests::run("ss", {"-ltn", "src", address + ":" + std::to_string(port)});
  CHECK(r.out.find(":" + std::to_string(port)) == std::string::npos);
}

TEST_CASE("libssh: commands stream output and return exit status", "[integration][ssh]") {
  TestHosts hosts({.names = {"web1"}});
  auto connector = makeLibsshConnector();
  auto s = connectOk(*connector, endpoint(hosts, "web1"));

  std::vector<std::string> outLines, errLines;
  ExecRequest req;
  req.command = "echo one; echo two >&2; printf 'three'; exit 7";
  req.onStdoutLine = [&](std::string_view l) { outLines.emplace_back(l); };
  req.onStderrLine = [&](std::string_view l) { errLines.emplace_back(l); };
  auto r = s->exec(req);
  CHECK(r.exitStatus == 7);
  CHECK_FALSE(r.ok());
  CHECK(r.out == "one\nthree");
  CHECK(r.errTail == "two\n");
  CHECK(outLines == std::vector<std::string>{"one", "three"});
  CHECK(errLines == std::vector<std::string>{"two"});
  CHECK(r.describeStatus() == "exited with status 7");

  auto in = s->exec({.command = "wc -c", .stdinData = std::string(100000, 'x')});
  CHECK(in.ok());
  CHECK(runner::trim(in.out) == "100000");

  auto killed = s->exec({.command = "kill -TERM $$"});
  CHECK(killed.exitSignal == "TERM");
  CHECK(killed.describeStatus() == "killed by signal TERM");

  auto slow = s->exec({.command = "sleep 5", .timeout = 300ms});
  CHECK(slow.timedOut);
  CHECK(slow.duration < 2s);
  // The session is still good after a timed-out command.
  CHECK(s->exec({.command = "echo still"}).out == "still\n");

  auto up = upload(*s, "/run/switchyard/test/script.sh", "#!/bin/sh\necho uploaded\n", 0755);
  REQUIRE(up.ok());
  CHECK(s->exec({.command = "/run/switchyard/test/script.sh"}).out == "uploaded\n");
  CHECK(runner::os::readFile(hosts.host("web1").runDir() / "switchyard/test/script.sh") ==
        "#!/bin/sh\necho uploaded\n");
  CHECK((fs::status(hosts.host("web1").runDir() / "switchyard/test/script.sh").permissions() &
         fs::perms::all) == fs::perms(0755));
}

TEST_CASE("libssh: a connection that drops mid-command is reported, not thrown",
          "[integration][ssh]") {
  TestHosts hosts({.names = {"web1"}});
  auto connector = makeLibsshConnector();
  auto s = connectOk(*connector, endpoint(hosts, "web1"));
  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    hosts.stop("web1");
  });
  auto r = s->exec({.command = "sleep 10", .timeout = 8s});
  stopper.join();
  CHECK(r.connectionLost);
  CHECK(r.duration < 5s);
  CHECK_FALSE(s->connected());
  auto after = s->exec({.command = "true"});
  CHECK(after.connectionLost);
}

TEST_CASE("libssh: strict host keys — changed, unknown and other-type keys refuse",
          "[integration][ssh]") {
  TestHosts hosts({.names = {"web1", "web2"}});
  auto connector = makeLibsshConnector();
  const auto& h = hosts.host("web1");
  const std::string field = "[" + h.address + "]:" + std::to_string(h.port);

  SECTION("changed key: the message names both fingerprints and the line to fix") {
    std::string recorded = std::string(runner::trim(tests::runOk(
        "ssh-keygen", {"-l", "-f", (h.root / "etc-ssh/ssh_host_ed25519_key.pub").string()})));
    hosts.replaceHostKey("web1");
    std::string offered = std::string(runner::trim(tests::runOk(
        "ssh-keygen", {"-l", "-f", (h.root / "etc-ssh/ssh_host_ed25519_key.pub").string()})));
    auto f = connectFails(*connector, endpoint(hosts, "web1"));
    CHECK(f.kind == ConnectFailure::Kind::HostKeyRejected);
    INFO(f.message);
    CHECK(runner::startsWith(f.message, "host key of " + field +
                                            " has CHANGED: the server offered ssh-ed25519 " +
                                            runner::split(offered, ' ').at(1)));
    CHECK(f.message.find(hosts.knownHostsFile().string() + ":1 records ssh-ed25519 " +
                         runner::split(recorded, ' ').at(1)) != std::string::npos);
    CHECK(f.message.find("replace line 1 of " + hosts.knownHostsFile().string()) !=
          std::string::npos);
    // The other host is unaffected.
    connectOk(*connector, endpoint(hosts, "web2"));
  }
  SECTION("unknown host: an empty known_hosts file refuses") {
    runner::os::TempDir tmp("sy-kh");
    runner::os::writeFileAtomic(tmp.path() / "empty", "");
    auto ep = endpoint(hosts, "web1");
    ep.knownHosts = tmp.path() / "empty";
    auto f = connectFails(*connector, ep);
    CHECK(f.kind == ConnectFailure::Kind::HostKeyRejected);
    CHECK(runner::startsWith(f.message, "host " + field + " is not in " + ep.knownHosts.string()));
    ep.knownHosts = tmp.path() / "missing";
    CHECK(connectFails(*connector, ep).kind == ConnectFailure::Kind::HostKeyRejected);
  }
  SECTION("another host's key recorded under this address refuses as changed") {
    runner::os::TempDir tmp("sy-kh");
    auto pub2 = runner::split(std::string(runner::trim(runner::os::readFile(
                                  hosts.host("web2").root / "etc-ssh/ssh_host_ed25519_key.pub"))),
                              ' ');
    runner::os::writeFileAtomic(tmp.path() / "kh", field + " " + pub2[0] + " " + pub2[1] + "\n");
    auto ep = endpoint(hosts, "web1");
    ep.knownHosts = tmp.path() / "kh";
    auto f = connectFails(*connector, ep);
    CHECK(f.kind == ConnectFailure::Kind::HostKeyRejected);
    CHECK(f.message.find("has CHANGED") != std::string::npos);
  }
  SECTION("only an ecdsa key recorded: another type than recorded") {
    runner::os::TempDir tmp("sy-kh");
    tests::runOk("ssh-keygen", {"-q", "-t", "ecdsa", "-N", "", "-f", (tmp.path() / "ec").string()});
    auto pub =
        runner::split(std::string(runner::trim(runner::os::readFile(tmp.path() / "ec.pub"))), ' ');
    runner::os::writeFileAtomic(tmp.path() / "kh", field + " " + pub[0] + " " + pub[1] + "\n");
    auto ep = endpoint(hosts, "web1");
    ep.knownHosts = tmp.path() / "kh";
    auto f = connectFails(*connector, ep);
    CHECK(f.kind == ConnectFailure::Kind::HostKeyRejected);
    CHECK(f.message.find("is of another type than recorded") != std::string::npos);
  }
}

TEST_CASE("libssh: a key the host does not accept, and a host nobody listens on",
          "[integration][ssh]") {
  TestHosts hosts({.names = {"web1"}});
  auto connector = makeLibsshConnector();
  runner::os::TempDir tmp("sy-key");
  tests::runOk("ssh-keygen", {"-q", "-t", "ed25519", "-N", "", "-f", (tmp.path() / "k").string()});
  auto ep = endpoint(hosts, "web1");
  ep.identityFile = tmp.path() / "k";
  auto f = connectFails(*connector, ep);
  CHECK(f.kind == ConnectFailure::Kind::AuthFailed);
  CHECK(f.message == "authentication as root on " + ep.target.toString() + " failed: key " +
                         (tmp.path() / "k").string() + " was not accepted");

  ep.identityFile = tmp.path() / "missing";
  f = connectFails(*connector, ep);
  CHECK(f.kind == ConnectFailure::Kind::AuthFailed);
  CHECK(f.message.find("cannot read identity file " + (tmp.path() / "missing").string()) !=
        std::string::npos);

  hosts.stop("web1");
  auto down = endpoint(hosts, "web1");
  // A refused connection is an answer: no waiting out the connect timeout (a generous one
  // here, so a slow machine cannot be mistaken for a wait).
  down.connectTimeout = 120s;
  auto t0 = std::chrono::steady_clock::now();
  f = connectFails(*connector, down);
  CHECK(f.kind == ConnectFailure::Kind::Unreachable);
  CHECK(runner::startsWith(f.message, "cannot connect to " + down.target.toString() + ": "));
  CHECK(std::chrono::steady_clock::now() - t0 < 60s);
}

TEST_CASE("netns test hosts: IPv6 on a veth, and a cut network is unreachable",
          "[integration][ssh]") {
  runner::lab::TestHostsOptions opts;
  opts.names = {"n1"};
  opts.network = runner::lab::TestNetwork::Netns;
  TestHosts hosts(opts);
  const auto& h = hosts.host("n1");
  CHECK(runner::startsWith(h.address, "fd6e:6978:6c61:"));
  CHECK(h.port == 22);
  auto connector = makeLibsshConnector();
  auto ep = endpoint(hosts, "n1");
  ep.connectTimeout = 1s;
  {
    auto s = connectOk(*connector, ep);
    // Inside, the only way out is the veth: no route to the outside world.
    auto r = s->exec({.command = "hostname; ip -6 route get 2001:db8::1 2>&1 || true"});
    CHECK(runner::startsWith(r.out, "n1\n"));
    CHECK(r.out.find("unreachable") != std::string::npos);
  }
  hosts.cutNetwork("n1");
  auto f = connectFails(*connector, ep);
  CHECK(f.kind == ConnectFailure::Kind::Unreachable);
  hosts.restoreNetwork("n1");
  connectOk(*connector, ep);
}
