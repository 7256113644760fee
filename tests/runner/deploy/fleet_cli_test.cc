// A mixed fleet like the seed's (issue 18), end to end through `switchyard deploy`: five sshd
// test hosts, octavia's target from Clan's clan.core.networking.targetHost and its
// requireExplicitUpdate, the others' from Colmena's deployment.targetHost with tags and keys,
// a workstation that is `deploy: manual` in the config, a `boot` host, and `demo` stopped.
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/lab/lab.h"
#include "runner/lab/test_hosts.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using namespace runner::lab;

namespace {

const std::string kTextSecret = "text-secret-7f3a9c";
const std::string kFileSecret = "file-secret-51be02";
const std::string kCommandSecret = "command-secret-c4d8e1";

std::map<std::string, nlohmann::json> byHost(const nlohmann::json& j) {
  std::map<std::string, nlohmann::json> out;
  for (const auto& h : j.at("hosts")) out[h.at("host").get<std::string>()] = h;
  return out;
}

struct FileInfo {
  std::string owner, group, content;
  unsigned mode = 0;
};
FileInfo inspect(const fs::path& p) {
  struct stat st {};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  FileInfo f;
  if (auto* pw = ::getpwuid(st.st_uid)) f.owner = pw->pw_name;
  if (auto* gr = ::getgrgid(st.st_gid)) f.group = gr->gr_name;
  f.mode = st.st_mode & 07777;
  f.content = runner::os::readFile(p);
  return f;
}

// Every file under `dir` (logs, the database) and `text`: none may hold a secret.
void checkNoSecrets(const fs::path& dir, const std::string& text) {
  for (const auto& s : {kTextSecret, kFileSecret, kCommandSecret}) {
    INFO(s);
    CHECK(text.find(s) == std::string::npos);
    for (const auto& e : fs::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      INFO(e.path());
      CHECK(runner::os::readFile(e.path()).find(s) == std::string::npos);
    }
  }
}

}  // namespace

TEST_CASE("a seed-shaped fleet: policies, tags, keys and a host that is off",
          "[integration][ssh][deploy][cli][fleet]") {
  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-fleet");
  TestHosts hosts({.names = {"nixos", "demo", "vps-het-1", "wellsjaha", "octavia"}});
  const fs::path keyFile = tmp.path() / "runner-secrets" / "post-key";
  runner::os::writeFileAtomic(keyFile, kFileSecret + "\n");

  std::vector<LabHost> seed = seedHosts();
  for (auto& h : seed) {
    const std::string target = hosts.host(h.name).target().toString();
    if (h.clanTarget) h.clanTarget = target;
    if (h.colmenaTarget) h.colmenaTarget = target;
    if (h.name == "octavia") h.extraConfig = "clan.core.deployment.requireExplicitUpdate = true;";
    if (h.name == "nixos") h.extraConfig = "deployment.tags = [ \"workstation\" ];";
    if (h.name == "wellsjaha") h.extraConfig = "deployment.tags = [ \"web\" ];";
    if (h.name == "vps-het-1") {
      // The activation writes down which keys it found in place.
      h.extraActivation =
          "for k in pre-key post-key app/cmd-key; do "
          "if [ -e /run/keys/$k ]; then echo \"$k present\"; else echo \"$k absent\"; fi; "
          "done > /var/lib/fake-nixos/keys-seen";
      h.extraConfig =
          "deployment.tags = [ \"web\" \"prod\" ];\n"
          "  deployment.keys.pre-key = { text = \"" +
          kTextSecret +
          "\"; user = \"nobody\"; group = \"nogroup\"; permissions = \"0640\"; };\n"
          "  deployment.keys.post = { name = \"post-key\"; keyFile = \"" +
          keyFile.string() +
          "\"; uploadAt = \"post-activation\"; };\n"
          "  deployment.keys.cmd-key = { keyCommand = [ \"printf\" \"%s\" \"" +
          kCommandSecret + "\" ]; destDir = \"/run/keys/app\"; };";
    }
  }
  auto lab = Lab::create(procs, tmp.path() / "lab", {.hosts = seed});
  const fs::path state = tmp.path() / "state";
  const fs::path cfg = tmp.path() / "switchyard.yaml";
  runner::os::writeFileAtomic(
      cfg, "state_dir: " + state.string() +
               "\n"
               "repos:\n"
               "  - name: lab/infra\n"
               "    path: " +
               lab.infra.path().string() +
               "\n"
               "    rollout: {canary: ['@web'], max_parallel: 2, stop_on_failure: true}\n"
               "    activation: {confirm_timeout: 5s}\n"
               "    hosts:\n"
               "      nixos: {deploy: manual}\n"
               "      demo:\n"
               "      vps-het-1:\n"
               "      wellsjaha: {action: boot}\n"
               "      octavia:\n"
               "ssh:\n  identity_file: " +
               hosts.identityFile().string() +
               "\n  known_hosts: " + hosts.knownHostsFile().string() + "\n  use_agent: false\n");
  const std::string repo = lab.infra.path().string();
  auto deploy = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"deploy", "--repo",   repo,         "--rev",
                                     "HEAD",   "--config", cfg.string(), "--json"};
    args.insert(args.end(), extra.begin(), extra.end());
    return tests::switchyard(args);
  };

  hosts.stop("demo");  // off for months

  // A deploy of every host, as a push would: the manual and explicit-update hosts are held
  // back with the reason, demo is unreachable and stops nothing, the rest are deployed.
  auto r = deploy({});
  INFO(r.out << r.errTail);
  REQUIRE(r.exitStatus == 1);  // demo did not get its deploy
  auto h = byHost(nlohmann::json::parse(r.out));
  REQUIRE(h.size() == 5);
  CHECK(h["nixos"]["result"] == "skipped");
  CHECK(h["nixos"]["reason"] ==
        "not deployed: deploy: manual in the config - deployed only when a person names it (a "
        "re-run naming nixos, or switchyard deploy nixos)");
  CHECK(h["octavia"]["result"] == "skipped");
  CHECK(runner::startsWith(
      h["octavia"]["reason"].get<std::string>(),
      "not deployed: the flake sets clan.core.deployment.requireExplicitUpdate"));
  CHECK(h["demo"]["result"] == "unreachable");
  CHECK(h["demo"]["failed_step"] == "connect");
  CHECK(h["vps-het-1"]["result"] == "succeeded");
  CHECK(h["wellsjaha"]["result"] == "succeeded");
  CHECK_FALSE(hosts.host("nixos").profileGeneration());
  CHECK_FALSE(hosts.host("octavia").profileGeneration());
  CHECK_FALSE(hosts.host("demo").profileGeneration());

  // wellsjaha: action boot — the boot default changed, the running system did not.
  CHECK(hosts.host("wellsjaha").profileGeneration() == 1);
  CHECK_FALSE(hosts.host("wellsjaha").activated());
  CHECK(runner::trim(runner::os::readFile(hosts.host("wellsjaha").stateDir() / "boot-default")) ==
        *hosts.host("wellsjaha").profilePath());

  // vps-het-1's keys: owner, mode and content; pre-activation ones were there during the
  // switch, the post-activation one was not.
  const TestHost& vps = hosts.host("vps-het-1");
  CHECK(vps.activated() == vps.profilePath());
  auto pre = inspect(vps.runDir() / "keys" / "pre-key");
  CHECK(pre.owner == "nobody");
  CHECK(pre.group == "nogroup");
  CHECK(pre.mode == 0640);
  CHECK(pre.content == kTextSecret);
  auto post = inspect(vps.runDir() / "keys" / "post-key");
  CHECK(post.owner == "root");
  CHECK(post.mode == 0600);
  CHECK(post.content == kFileSecret + "\n");
  auto cmd = inspect(vps.runDir() / "keys" / "app" / "cmd-key");
  CHECK(cmd.mode == 0600);
  CHECK(cmd.content == kCommandSecret);
  CHECK(runner::os::readFile(vps.stateDir() / "keys-seen") ==
        "pre-key present\npost-key absent\napp/cmd-key present\n");
  // no temporary files left behind
  for (const auto& e : fs::directory_iterator(vps.runDir() / "keys"))
    CHECK_FALSE(runner::startsWith(e.path().filename().string(), "."));
  checkNoSecrets(state, r.out + r.errTail);

  // @web selects by tag; @workstation selects nixos, which a tag does not name: held back.
  r = deploy({"@workstation"});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 0);
  h = byHost(nlohmann::json::parse(r.out));
  REQUIRE(h.size() == 1);
  CHECK(h["nixos"]["result"] == "skipped");
  r = deploy({"@nothing"});
  CHECK(r.exitStatus == 2);
  CHECK(r.errTail.find("no host carries the tag 'nothing'") != std::string::npos);

  // Named: the manual host and the explicit-update host are deployed.
  r = deploy({"nixos", "octavia"});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 0);
  h = byHost(nlohmann::json::parse(r.out));
  CHECK(h["nixos"]["result"] == "succeeded");
  CHECK(h["octavia"]["result"] == "succeeded");
  CHECK(hosts.host("nixos").profileGeneration() == 1);
  CHECK(hosts.host("octavia").profileGeneration() == 1);

  // demo answers again: deployed.
  hosts.start("demo");
  r = deploy({"demo"});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 0);
  CHECK(hosts.host("demo").profileGeneration() == 1);

  // A key file missing on the runner fails vps-het-1 before activation: nothing switched.
  lab.infra.changeHost("vps-het-1");
  fs::remove(keyFile);
  r = deploy({"@prod"});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 1);
  h = byHost(nlohmann::json::parse(r.out));
  CHECK(h["vps-het-1"]["result"] == "failed");
  CHECK(h["vps-het-1"]["failed_step"] == "keys");
  CHECK(runner::startsWith(h["vps-het-1"]["reason"].get<std::string>(),
                           "key post-key: cannot read its keyFile on the runner"));
  CHECK(vps.profileGeneration() == 1);

  // A failing key command: the same, with the command's status and nothing of its output.
  runner::os::writeFileAtomic(keyFile, kFileSecret + "\n");
  lab.infra.updateHost("vps-het-1", [](LabHost& l) {
    auto at = l.extraConfig.find("\"printf\"");
    l.extraConfig.replace(at, 8, "\"false\"");
  });
  r = deploy({"vps-het-1"});
  INFO(r.out << r.errTail);
  CHECK(r.exitStatus == 1);
  h = byHost(nlohmann::json::parse(r.out));
  CHECK(h["vps-het-1"]["reason"] == "key cmd-key: its keyCommand (false) exited with status 1");
  CHECK(vps.profileGeneration() == 1);
  checkNoSecrets(state, r.out + r.errTail);
}
