// Issue 18's per-host deploy facts from the flake: Colmena's deployment.sshOptions policy,
// targetUser/targetPort and the privilege escalation for a login user that is not root,
// replaceUnknownProfiles, and the Clan vars backends that need an upload at deploy time.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/deploy/deploy_stage.h"
#include "runner/deploy/ssh_deployer.h"
#include "runner/deploy/ssh_options.h"

using namespace runner;
using namespace runner::deploy;

namespace {

std::string refusal(const std::vector<std::string>& args) {
  try {
    parseSshOptions(args);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

HostFacts factsOf(const nlohmann::json& info) {
  nix::HostValue v;
  v.value = info;
  return hostFactsFrom(&v);
}

}  // namespace

TEST_CASE("sshOptions: options that keep the pinned host key are applied", "[unit][deploy]") {
  auto o = parseSshOptions(
      {"-p", "2222", "-l", "deploy", "-i", "/etc/switchyard/id_deploy", "-o", "ConnectTimeout=7"});
  CHECK(o.port == 2222);
  CHECK(o.user == "deploy");
  CHECK(o.identityFile == std::filesystem::path("/etc/switchyard/id_deploy"));
  CHECK(o.connectTimeout == std::chrono::seconds(7));
  auto joined = parseSshOptions({"-oPort=2200", "-o", "user alice", "-p2201"});
  CHECK(joined.port == 2201);  // the last one, as given
  CHECK(joined.user == "alice");
  CHECK(parseSshOptions({}).port == std::nullopt);
}

TEST_CASE("sshOptions: every option that loosens or bypasses the pinned key is refused by name",
          "[unit][deploy]") {
  const std::string why =
      refusal({"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-J",
               "bastion", "-o", "ProxyCommand=nc %h %p", "-A", "-p", "22"});
  INFO(why);
  CHECK(why.rfind("deployment.sshOptions refused: ", 0) == 0);
  CHECK(why.find("StrictHostKeyChecking=no (would loosen, move or bypass the pinned host key "
                 "check)") != std::string::npos);
  CHECK(why.find("UserKnownHostsFile=/dev/null (would loosen") != std::string::npos);
  CHECK(why.find("-J bastion (runs a command on the runner or reaches the host through") !=
        std::string::npos);
  CHECK(why.find("ProxyCommand=nc %h %p (runs a command") != std::string::npos);
  CHECK(why.find("-A (forwards the runner's agent") != std::string::npos);
  CHECK(why.find("-p 22") == std::string::npos);  // accepted ones are not listed as refused
  CHECK(why.find("Accepted: -p/Port, -l/User, -i/IdentityFile (absolute), ConnectTimeout") !=
        std::string::npos);
  for (const std::vector<std::string>& bad :
       {std::vector<std::string>{"-o", "GlobalKnownHostsFile=/tmp/k"},
        {"-oKnownHostsCommand=/bin/true"},
        {"-o", "HostKeyAlias=other"},
        {"-o", "LocalCommand=id"},
        {"-o", "ControlPath=/tmp/s"},
        {"-F", "/tmp/ssh_config"},
        {"-o", "Compression=yes"},
        {"-p", "99999"},
        {"-l", "-oProxyCommand=x"},
        {"-i", "relative/key"},
        {"bastion"},
        {"-o"}}) {
    INFO(bad.front());
    CHECK_FALSE(refusal(bad).empty());
  }
  CHECK(refusal({"-o", "Compression=yes"}).find("(not applied by Switchyard's connections)") !=
        std::string::npos);
}

TEST_CASE("host facts: Colmena's targetUser, targetPort, sshOptions and escalation",
          "[unit][deploy]") {
  RepoConfig repo;
  repo.name = "r";
  auto f = factsOf({{"colmena", "10.0.0.5"},
                    {"user", "deploy"},
                    {"port", 2222},
                    {"sshOptions", {"-i", "/keys/id", "-o", "ConnectTimeout=3"}},
                    {"replaceUnknownProfiles", false}});
  HostJob job{"web", parseTarget("10.0.0.5"), "/nix/store/x"};
  applyHostFacts(job, repo, f, "colmena");
  CHECK(job.target.user == "deploy");
  CHECK(job.target.port == 2222);
  CHECK(job.identityFile == std::filesystem::path("/keys/id"));
  CHECK(job.connectTimeout == std::chrono::seconds(3));
  CHECK(job.escalation == std::vector<std::string>{"sudo", "-n", "-H", "--"});
  CHECK_FALSE(job.replaceUnknownProfiles);

  // privilegeEscalationCommand replaces sudo; root needs none.
  f.escalation = std::vector<std::string>{"doas", "--"};
  HostJob doas{"web", parseTarget("10.0.0.5"), "/nix/store/x"};
  applyHostFacts(doas, repo, f, "colmena");
  CHECK(doas.escalation == std::vector<std::string>{"doas", "--"});
  // sudo without -n (Colmena's default `sudo -H --`) gets it: a deploy cannot answer a prompt.
  f.escalation = std::vector<std::string>{"/run/wrappers/bin/sudo", "-H", "--"};
  HostJob colmenaDefault{"web", parseTarget("10.0.0.5"), "/nix/store/x"};
  applyHostFacts(colmenaDefault, repo, f, "colmena");
  CHECK(colmenaDefault.escalation ==
        std::vector<std::string>{"/run/wrappers/bin/sudo", "-n", "-H", "--"});
  f.escalation = std::vector<std::string>{"sudo", "--non-interactive", "-u", "root", "--"};
  HostJob already{"web", parseTarget("10.0.0.5"), "/nix/store/x"};
  applyHostFacts(already, repo, f, "colmena");
  CHECK(already.escalation == *f.escalation);
  f.user = "root";
  HostJob root{"web", parseTarget("10.0.0.5"), "/nix/store/x"};
  applyHostFacts(root, repo, f, "colmena");
  CHECK(root.escalation.empty());

  // The config's target and `user:` win over the flake.
  repo.hosts.push_back({"web", "admin@10.0.0.9:2022"});
  HostJob configured{"web", parseTarget("admin@10.0.0.9:2022"), "/nix/store/x"};
  applyHostFacts(configured, repo, factsOf({{"user", "deploy"}, {"port", 2}}), "config");
  CHECK(configured.target.user == "admin");
  CHECK(configured.target.port == 2022);
  repo.hosts.back().user = "ops";
  applyHostFacts(configured, repo, HostFacts{}, "config");
  CHECK(configured.target.user == "ops");
  CHECK(configured.escalation == std::vector<std::string>{"sudo", "-n", "-H", "--"});

  // A refused sshOptions refuses the host (the deploy stage reports it per host).
  HostJob refused{"web", parseTarget("10.0.0.5"), "/nix/store/x"};
  CHECK_THROWS_AS(
      applyHostFacts(refused, repo, factsOf({{"sshOptions", {"-o", "StrictHostKeyChecking=no"}}}),
                     "colmena"),
      InputError);
}

TEST_CASE("nix copy to a login user that is not root goes through the escalation",
          "[unit][deploy]") {
  DeploySettings s;
  s.ssh.knownHosts = "/k";
  HostJob job{"web", parseTarget("deploy@10.0.0.5"), "/nix/store/abc-system"};
  job.escalation = {"sudo", "-n", "-H", "--"};
  job.identityFile = "/keys/id";
  auto o = nixCopyOptions(job, s);
  CHECK(std::find(o.args.begin(), o.args.end(),
                  "ssh://deploy@10.0.0.5?remote-program=sudo%20-n%20-H%20--%20nix-store") !=
        o.args.end());
  CHECK(o.env.at("NIX_SSHOPTS")->find("-i /keys/id") != std::string::npos);
  job.escalation.clear();
  o = nixCopyOptions(job, s);
  CHECK(std::find(o.args.begin(), o.args.end(), "ssh://deploy@10.0.0.5") != o.args.end());
}

TEST_CASE("Clan vars: backends that need an upload at deploy time are refused with why",
          "[unit][deploy]") {
  auto f = factsOf({{"clanVars",
                     {{"store", "sops"},
                      {"secrets", 3},
                      {"activation", 0},
                      {"ageKeyFile", "/var/lib/sops-nix/key.txt"}}}});
  REQUIRE(f.clanVars);
  CHECK_FALSE(clanVarsProblem(*f.clanVars));  // encrypted in the closure
  RepoConfig repo;
  HostJob job{"octavia", parseTarget("10.0.0.2"), "/nix/store/x"};
  applyHostFacts(job, repo, f, "clan");
  REQUIRE(job.requiredFiles.size() == 1);  // but the host must hold its age key
  CHECK(job.requiredFiles[0].first == "/var/lib/sops-nix/key.txt");

  HostFacts::ClanVars activation{"sops", 2, 1, std::nullopt};
  CHECK(clanVarsProblem(activation).value_or("").find("neededFor = \"activation\"") !=
        std::string::npos);
  HostFacts::ClanVars pass{"password-store", 2, 0, std::nullopt};
  auto why = clanVarsProblem(pass).value_or("");
  CHECK(why.find("password-store backend (2 secret var files)") != std::string::npos);
  CHECK(why.find("clan machines update") != std::string::npos);
  CHECK(clanVarsProblem({"custom", 1, 0, std::nullopt}).value_or("").find("'custom'") !=
        std::string::npos);
  CHECK_FALSE(clanVarsProblem({"password-store", 0, 0, std::nullopt}));  // nothing to upload
}
