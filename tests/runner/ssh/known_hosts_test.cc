// known_hosts lookups (plain, hashed, [host]:port) and the refusal messages, without a network.
#include "runner/ssh/known_hosts.h"

#include <catch2/catch.hpp>

#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/os/files.h"
#include "runner/ssh/ssh.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::ssh;

namespace {

struct Key {
  std::string type, base64, fingerprint;
};

// A fresh ed25519 key made by ssh-keygen, with the fingerprint ssh-keygen -l prints.
Key makeKey(const fs::path& dir, const std::string& name) {
  fs::path f = dir / name;
  tests::runOk("ssh-keygen", {"-q", "-t", "ed25519", "-N", "", "-f", f.string()});
  auto pub =
      runner::split(std::string(runner::trim(runner::os::readFile(f.string() + ".pub"))), ' ');
  auto listing = runner::split(tests::runOk("ssh-keygen", {"-l", "-f", f.string() + ".pub"}), ' ');
  return {pub.at(0), pub.at(1), listing.at(1)};
}

}  // namespace

TEST_CASE("knownHostsName uses [host]:port except for port 22", "[unit][ssh]") {
  CHECK(knownHostsName("127.0.0.11", 2201) == "[127.0.0.11]:2201");
  CHECK(knownHostsName("web1.example.org", 22) == "web1.example.org");
  CHECK(knownHostsName("fd6e:6978:6c61:1::2", 22) == "fd6e:6978:6c61:1::2");
  CHECK(knownHostsName("fd6e:6978:6c61:1::2", 2222) == "[fd6e:6978:6c61:1::2]:2222");
}

TEST_CASE("knownHostEntries finds plain and hashed entries with their line numbers",
          "[unit][ssh]") {
  runner::os::TempDir dir("sy-kh");
  Key a = makeKey(dir.path(), "a"), b = makeKey(dir.path(), "b"), c = makeKey(dir.path(), "c");
  REQUIRE(runner::startsWith(a.fingerprint, "SHA256:"));
  fs::path kh = dir.path() / "known_hosts";
  runner::os::writeFileAtomic(kh,
                              "# comment line\n"
                              "\n"
                              "[127.0.0.11]:2201 " +
                                  a.type + " " + a.base64 +
                                  "\n"
                                  "127.0.0.11 " +
                                  b.type + " " + b.base64 +
                                  "\n"
                                  "other,[127.0.0.11]:2201 " +
                                  c.type + " " + c.base64 +
                                  "\n"
                                  "garbage that does not parse\n");
  auto entries = knownHostEntries(kh, "[127.0.0.11]:2201");
  REQUIRE(entries.size() == 2);
  CHECK(entries[0].line == 3);
  CHECK(entries[0].keyType == "ssh-ed25519");
  CHECK(entries[0].fingerprint == a.fingerprint);
  CHECK(entries[1].line == 5);
  CHECK(entries[1].fingerprint == c.fingerprint);

  auto port22 = knownHostEntries(kh, "127.0.0.11");
  REQUIRE(port22.size() == 1);
  CHECK(port22[0].line == 4);
  CHECK(port22[0].fingerprint == b.fingerprint);

  // ssh-keygen -H hashes the host names (it refuses files with bad lines).
  runner::os::writeFileAtomic(kh, "[127.0.0.11]:2201 " + a.type + " " + a.base64 + "\n");
  tests::runOk("ssh-keygen", {"-q", "-H", "-f", kh.string()});
  auto hashed = knownHostEntries(kh, "[127.0.0.11]:2201");
  REQUIRE(hashed.size() == 1);
  CHECK(runner::startsWith(runner::os::readFile(kh), "|1|"));
  CHECK(hashed[0].line == 1);
  CHECK(hashed[0].fingerprint == a.fingerprint);

  CHECK(knownHostEntries(kh, "[127.0.0.12]:2201").empty());
  CHECK(knownHostEntries(dir.path() / "missing", "[127.0.0.11]:2201").empty());
}

TEST_CASE("judgeHostKey tells match, changed, other type and unknown apart", "[unit][ssh]") {
  std::vector<KnownHostEntry> recorded = {{3, "ssh-ed25519", "SHA256:old"},
                                          {7, "ecdsa-sha2-nistp256", "SHA256:ec"}};
  CHECK(judgeHostKey(recorded, "ssh-ed25519", "SHA256:old") == HostKeyVerdict::Match);
  CHECK(judgeHostKey(recorded, "ssh-ed25519", "SHA256:new") == HostKeyVerdict::Changed);
  CHECK(judgeHostKey({recorded[1]}, "ssh-ed25519", "SHA256:new") == HostKeyVerdict::Other);
  CHECK(judgeHostKey({}, "ssh-ed25519", "SHA256:new") == HostKeyVerdict::Unknown);
}

TEST_CASE("a refused host key says which key changed and which line to fix", "[unit][ssh]") {
  std::vector<KnownHostEntry> recorded = {{3, "ssh-ed25519", "SHA256:old"}};
  std::string changed = hostKeyRefusal(HostKeyVerdict::Changed, "[127.0.0.11]:2201", "ssh-ed25519",
                                       "SHA256:new", recorded, "/etc/switchyard/known_hosts");
  CHECK(changed ==
        "host key of [127.0.0.11]:2201 has CHANGED: the server offered ssh-ed25519 SHA256:new, "
        "/etc/switchyard/known_hosts:3 records ssh-ed25519 SHA256:old. If the host was "
        "reinstalled or its key rotated, check the new key out of band, then replace line 3 of "
        "/etc/switchyard/known_hosts (ssh-keygen -R '[127.0.0.11]:2201' -f "
        "'/etc/switchyard/known_hosts', then add the new key). Refusing to connect.");

  std::string unknown =
      hostKeyRefusal(HostKeyVerdict::Unknown, "web1", "ssh-ed25519", "SHA256:new", {}, "/kh");
  CHECK(unknown ==
        "host web1 is not in /kh (the server offered ssh-ed25519 SHA256:new). Strict host key "
        "checking refuses unknown hosts: check the key out of band, then add a line 'web1 "
        "ssh-ed25519 <base64 key>' to /kh. Refusing to connect.");

  std::string other = hostKeyRefusal(HostKeyVerdict::Other, "web1", "ssh-ed25519", "SHA256:new",
                                     {{9, "ecdsa-sha2-nistp256", "SHA256:ec"}}, "/kh");
  CHECK(other ==
        "host key of web1 is of another type than recorded: the server offered ssh-ed25519 "
        "SHA256:new, but /kh:9 records ecdsa-sha2-nistp256 SHA256:ec. If the host's keys "
        "changed, check the new key out of band and add it to /kh. Refusing to connect.");
}

TEST_CASE("endpointFor needs a known_hosts file", "[unit][ssh]") {
  runner::SshConfig cfg;
  cfg.identityFile = "/keys/id";
  CHECK_THROWS_AS(endpointFor(runner::parseTarget("root@web1"), cfg), runner::ConfigError);
  cfg.knownHosts = "/etc/switchyard/known_hosts";
  cfg.connectTimeout = std::chrono::seconds(7);
  auto ep = endpointFor(runner::parseTarget("deploy@[fd6e::2]:2222"), cfg);
  CHECK(ep.target.user == "deploy");
  CHECK(ep.target.host == "fd6e::2");
  CHECK(ep.target.port == 2222);
  CHECK(ep.knownHosts == "/etc/switchyard/known_hosts");
  CHECK(ep.identityFile == fs::path("/keys/id"));
  CHECK(ep.connectTimeout == std::chrono::milliseconds(7000));
}
