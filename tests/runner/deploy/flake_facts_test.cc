// Issue 18's deploy settings as the deploy target discovery reads them from a real flake: the
// seed lab's flake (tests/support/seed_flake.h: the real flake-parts and nixpkgs lib, Colmena's
// deployment options with Colmena's types and defaults, clan-core's options) is written from
// the table below, evaluated by Nix, and every value must come back as written: Colmena's
// targetHost/Port/User, sshOptions (refused ones refused by name), privilegeEscalationCommand,
// replaceUnknownProfiles, buildOnTarget, tags and keys; Clan's targetHost,
// requireExplicitUpdate, buildHost and vars backend. Skipped without $SWITCHYARD_NIX_LIBS.
#include <algorithm>
#include <optional>
#include <variant>

#include <catch2/catch.hpp>

#include "runner/build/target_builds.h"
#include "runner/core/error.h"
#include "runner/core/text.h"
#include "runner/deploy/deploy_stage.h"
#include "runner/lab/nix_text.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "tests/support/lab_flake_gen.h"
#include "tests/support/seed_flake.h"

namespace fs = std::filesystem;
using runner::lab::nixString;
using runner::lab::nixStringList;
using namespace runner::deploy;

namespace {

// One deployment.keys entry; empty fields are left to Colmena's defaults.
struct KeyDecl {
  std::string attr;
  std::string source;              // "text" | "keyFile" | "keyCommand"
  std::vector<std::string> value;  // the text or file (one item), or the command's argv
  std::string name, destDir, user, group, permissions, uploadAt;
};

struct ColmenaNode {
  std::string host;
  std::optional<std::string> targetHost;  // nullopt: Colmena's default, the node's name
  std::optional<int> targetPort;
  std::optional<std::string> targetUser;  // nullopt: Colmena's default "root"
  bool userNull = false;                  // targetUser = null
  std::optional<std::vector<std::string>> escalation;
  std::vector<std::string> sshOptions;
  std::optional<bool> replaceUnknownProfiles;
  bool buildOnTarget = false;
  bool allowLocalDeployment = false;
  std::vector<std::string> tags;
  std::vector<KeyDecl> keys;
};

struct VarFile {
  std::string generator, file;
  bool secret = true, deploy = true;
  std::string neededFor = "services";
};

struct ClanMachine {
  std::string host;
  std::string targetHost;
  bool requireExplicitUpdate = false;
  std::optional<std::string> buildHost;
  std::string secretStore = "sops";
  std::vector<VarFile> vars;
};

std::string render(const ColmenaNode& n) {
  std::string s;
  if (n.targetHost) s += "deployment.targetHost = " + nixString(*n.targetHost) + ";\n";
  if (n.targetPort) s += "deployment.targetPort = " + std::to_string(*n.targetPort) + ";\n";
  if (n.targetUser) s += "deployment.targetUser = " + nixString(*n.targetUser) + ";\n";
  if (n.userNull) s += "deployment.targetUser = null;\n";
  if (n.escalation)
    s += "deployment.privilegeEscalationCommand = " + nixStringList(*n.escalation) + ";\n";
  if (!n.sshOptions.empty()) s += "deployment.sshOptions = " + nixStringList(n.sshOptions) + ";\n";
  if (n.replaceUnknownProfiles)
    s += std::string("deployment.replaceUnknownProfiles = ") +
         (*n.replaceUnknownProfiles ? "true" : "false") + ";\n";
  if (n.buildOnTarget) s += "deployment.buildOnTarget = true;\n";
  if (n.allowLocalDeployment) s += "deployment.allowLocalDeployment = true;\n";
  if (!n.tags.empty()) s += "deployment.tags = " + nixStringList(n.tags) + ";\n";
  for (const auto& k : n.keys) {
    s += "deployment.keys." + nixString(k.attr) + " = {\n";
    if (k.source == "keyCommand")
      s += "  keyCommand = " + nixStringList(k.value) + ";\n";
    else
      s += "  " + k.source + " = " + nixString(k.value.at(0)) + ";\n";
    for (const auto& [field, v] :
         std::vector<std::pair<std::string, std::string>>{{"name", k.name},
                                                          {"destDir", k.destDir},
                                                          {"user", k.user},
                                                          {"group", k.group},
                                                          {"permissions", k.permissions},
                                                          {"uploadAt", k.uploadAt}})
      if (!v.empty()) s += "  " + field + " = " + nixString(v) + ";\n";
    s += "};\n";
  }
  return s;
}

std::string render(const ClanMachine& m) {
  std::string s = "clan.core.networking.targetHost = " + nixString(m.targetHost) + ";\n";
  if (m.requireExplicitUpdate) s += "clan.core.deployment.requireExplicitUpdate = true;\n";
  if (m.buildHost) s += "clan.core.networking.buildHost = " + nixString(*m.buildHost) + ";\n";
  s += "clan.core.vars.settings.secretStore = " + nixString(m.secretStore) + ";\n";
  for (const auto& f : m.vars)
    s += "clan.core.vars.generators." + nixString(f.generator) + ".files." + nixString(f.file) +
         " = { secret = " + (f.secret ? "true" : "false") +
         "; deploy = " + (f.deploy ? "true" : "false") + "; neededFor = " + nixString(f.neededFor) +
         "; };\n";
  return s;
}

std::string orDefault(const std::string& v, const std::string& d) { return v.empty() ? d : v; }

// What a refusal says, or "" when the facts are accepted.
std::string refusalOf(const std::string& host, const FleetInfo& f) {
  HostJob job{host, f.targets.at(host), "/nix/store/x"};
  try {
    applyHostFacts(job, runner::RepoConfig{}, f.facts.at(host), f.targetFrom.at(host));
  } catch (const runner::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE(
    "flake facts: Colmena's and Clan's deploy settings come back from a real flake as written",
    "[integration][deploy][nix]") {
  auto libs = tests::labgen::nixLibsFromEnv();
  if (!libs) {
    WARN(
        "SKIPPED: SWITCHYARD_NIX_LIBS does not name a directory with nixpkgs-lib/ and "
        "flake-parts/");
    return;
  }
  const std::vector<ColmenaNode> colmena = {
      {.host = "vps-het-1",
       .targetHost = "vps.lab.invalid",
       .targetPort = 2222,
       .targetUser = "deploy",
       .escalation = std::vector<std::string>{"doas", "-u", "root", "--"},
       .sshOptions = {"-i", "/etc/switchyard/id_vps", "-o", "ConnectTimeout=7"},
       .replaceUnknownProfiles = false,
       .buildOnTarget = true,
       .allowLocalDeployment = true,
       .tags = {"web", "prod"},
       .keys = {{.attr = "db-password",
                 .source = "text",
                 .value = {"s3cret text\nsecond line"},
                 .name = "db.pw",
                 .user = "postgres",
                 .group = "postgres",
                 .permissions = "0640"},
                {.attr = "tls",
                 .source = "keyFile",
                 .value = {"/srv/runner-secrets/tls.pem"},
                 .destDir = "/var/keys/nginx",
                 .group = "nginx",
                 .permissions = "440",
                 .uploadAt = "post-activation"},
                {.attr = "token",
                 .source = "keyCommand",
                 .value = {"pass", "show", "infra/token"}}}},
      // targetUser = null: sshOptions' -l and -p apply; the escalation is Colmena's default
      {.host = "wellsjaha",
       .targetHost = "10.20.0.8",
       .userNull = true,
       .sshOptions = {"-p", "2201", "-l", "ops"},
       .tags = {"web"}},
      {.host = "nixos"},  // every default: the node's name as target, root, no keys
      {.host = "demo",
       .targetHost = "demo.lab.invalid",
       .sshOptions = {"-o", "StrictHostKeyChecking=no", "-J", "bastion", "-o",
                      "ProxyCommand=nc %h %p", "-o", "Compression=yes", "-p", "2200"}},
  };
  const std::vector<ClanMachine> clan = {
      {.host = "octavia",
       .targetHost = "root@10.20.0.2",
       .requireExplicitUpdate = true,
       .buildHost = "root@10.20.0.2",
       .vars = {{"wireguard", "private"},
                {"wireguard", "public", false},
                {"root-password", "password", true, true, "users"},
                {"root-password", "hash-input", true, false}}},
      {.host = "vault",
       .targetHost = "admin@10.20.0.3:2022",
       .buildHost = "root@builder.lab.invalid",
       .secretStore = "password-store",
       .vars = {{"api", "token"}}},
  };
  std::vector<tests::seedlab::SeedHost> spec;
  for (const auto& n : colmena) spec.push_back({.name = n.host, .deployment = render(n)});
  for (const auto& m : clan)
    spec.push_back({.name = m.host, .clan = true, .deployment = render(m)});

  runner::os::PosixProcessRunner procs;
  runner::os::TempDir tmp("sy-flake-facts");
  tests::seedlab::SeedFlake flake(procs, tmp.path() / "seed", *libs, spec);
  runner::nix::NixCli nix(procs);
  runner::RepoConfig repo;
  repo.name = "seed/infra";
  const std::vector<std::string> hosts = flake.hostNames();
  FleetInfo f = discoverFleet(nix, repo, flake.repoPath(), flake.head(), hosts, true);
  auto placement = runner::build::placeBuilds(
      nix, repo, runner::nix::gitFlakeRef(flake.repoPath(), flake.head()), hosts);

  for (const auto& n : colmena) {
    INFO(n.host);
    REQUIRE(f.targets.count(n.host));
    CHECK(f.targetFrom.at(n.host) == "colmena");
    CHECK(f.targets.at(n.host).host == n.targetHost.value_or(n.host));
    const HostFacts& facts = f.facts.at(n.host);
    CHECK(facts.tags == n.tags);
    CHECK(facts.port == n.targetPort);
    CHECK(facts.user ==
          (n.userNull ? std::nullopt : std::optional<std::string>(n.targetUser.value_or("root"))));
    CHECK(facts.sshOptions == n.sshOptions);
    CHECK(facts.escalation ==
          n.escalation.value_or(std::vector<std::string>{"sudo", "-H", "--"}));  // Colmena's
    CHECK(facts.replaceUnknownProfiles == n.replaceUnknownProfiles.value_or(true));
    CHECK_FALSE(facts.requireExplicitUpdate);
    CHECK_FALSE(facts.clanVars);

    // where it builds
    const auto& p = placement.at(n.host);
    CHECK(p.onTarget == n.buildOnTarget);
    CHECK_FALSE(p.problem);
    if (n.buildOnTarget) {
      CHECK(p.reason == "deployment.buildOnTarget");
      CHECK(p.target.host == n.targetHost.value_or(n.host));
    }

    // its keys, every field as written or Colmena's default
    REQUIRE(std::holds_alternative<std::vector<runner::deploy::KeySpec>>(f.keys.at(n.host)));
    auto keys = std::get<std::vector<runner::deploy::KeySpec>>(f.keys.at(n.host));
    REQUIRE(keys.size() == n.keys.size());
    for (const auto& want : n.keys) {
      INFO(want.attr);
      auto got = std::find_if(keys.begin(), keys.end(), [&](const KeySpec& k) {
        return k.name == orDefault(want.name, want.attr);
      });
      REQUIRE(got != keys.end());
      if (want.source == "text") {
        CHECK(got->source == KeySpec::Source::Text);
        CHECK(got->text == want.value.at(0));
      } else if (want.source == "keyFile") {
        CHECK(got->source == KeySpec::Source::File);
        CHECK(got->keyFile == want.value.at(0));
      } else {
        CHECK(got->source == KeySpec::Source::Command);
        CHECK(got->keyCommand == want.value);
      }
      CHECK(got->destDir == orDefault(want.destDir, "/run/keys"));
      CHECK(got->user == orDefault(want.user, "root"));
      CHECK(got->group == orDefault(want.group, "root"));
      CHECK(got->permissions == orDefault(want.permissions, "0600"));
      CHECK(got->uploadAt == (orDefault(want.uploadAt, "pre-activation") == "post-activation"
                                  ? KeySpec::UploadAt::PostActivation
                                  : KeySpec::UploadAt::PreActivation));
    }
  }

  // How each Colmena host is reached: targetUser, targetPort, sshOptions (-i, ConnectTimeout,
  // and -l/-p when the target gives none) and the escalation for a user that is not root.
  auto job = [&](const std::string& host) {
    HostJob j{host, f.targets.at(host), "/nix/store/x"};
    applyHostFacts(j, repo, f.facts.at(host), f.targetFrom.at(host));
    return j;
  };
  const HostJob vps = job("vps-het-1");
  CHECK(vps.target.toString() == "deploy@vps.lab.invalid:2222");
  CHECK(vps.identityFile == fs::path("/etc/switchyard/id_vps"));
  CHECK(vps.connectTimeout == std::chrono::seconds(7));
  CHECK(vps.escalation == *colmena[0].escalation);
  CHECK_FALSE(vps.replaceUnknownProfiles);
  const HostJob wells = job("wellsjaha");
  CHECK(wells.target.toString() == "ops@10.20.0.8:2201");
  // Colmena's default `sudo -H --`, made non-interactive (a deploy cannot answer a prompt)
  CHECK(wells.escalation == std::vector<std::string>{"sudo", "-n", "-H", "--"});
  const HostJob plain = job("nixos");
  CHECK(plain.target.toString() == "root@nixos");
  CHECK(plain.escalation.empty());
  CHECK(plain.replaceUnknownProfiles);
  // allowLocalDeployment changes nothing: deployed over SSH like any other host
  CHECK(f.targets.at("vps-het-1").host == "vps.lab.invalid");

  // Refused sshOptions refuse the host, naming every refused option and why; accepted ones
  // are not named.
  const std::string why = refusalOf("demo", f);
  INFO(why);
  CHECK(runner::startsWith(why, "deployment.sshOptions refused: "));
  for (const std::string refused :
       {"StrictHostKeyChecking=no (would loosen", "-J bastion (runs a command on the runner",
        "ProxyCommand=nc %h %p (runs a command on the runner",
        "Compression=yes (not applied by Switchyard's connections)"})
    CHECK(why.find(refused) != std::string::npos);
  CHECK(why.find("-p 2200") == std::string::npos);
  for (const auto& n : colmena)
    if (n.host != "demo") CHECK(refusalOf(n.host, f).empty());

  // Tags select hosts in the order given.
  CHECK(selectHosts("@web", hosts, f.facts) == std::vector<std::string>{"vps-het-1", "wellsjaha"});
  CHECK(selectHosts("@prod", hosts, f.facts) == std::vector<std::string>{"vps-het-1"});

  for (const auto& m : clan) {
    INFO(m.host);
    REQUIRE(f.targets.count(m.host));
    CHECK(f.targetFrom.at(m.host) == "clan");
    CHECK(f.targets.at(m.host).toString() == runner::parseTarget(m.targetHost).toString());
    const HostFacts& facts = f.facts.at(m.host);
    CHECK(facts.requireExplicitUpdate == m.requireExplicitUpdate);
    CHECK(heldBackReason(m.host, repo, facts, false).has_value() == m.requireExplicitUpdate);
    CHECK_FALSE(heldBackReason(m.host, repo, facts, true));  // named: deployed
    CHECK(facts.tags.empty());
    REQUIRE(facts.clanVars);
    CHECK(facts.clanVars->store == m.secretStore);
    const auto deployed = std::count_if(m.vars.begin(), m.vars.end(),
                                        [](const VarFile& v) { return v.secret && v.deploy; });
    const auto activation = std::count_if(m.vars.begin(), m.vars.end(), [](const VarFile& v) {
      return v.secret && v.deploy && v.neededFor == "activation";
    });
    CHECK(facts.clanVars->secrets == deployed);
    CHECK(facts.clanVars->activation == activation);
    // clan-core's sops backend sets the age key's place; other stores have none
    CHECK(facts.clanVars->ageKeyFile ==
          (m.secretStore == "sops" ? std::optional<std::string>("/var/lib/sops-nix/key.txt")
                                   : std::nullopt));
    // where it builds: a buildHost that is the host itself is the target; another is refused
    const auto& p = placement.at(m.host);
    const bool self = m.buildHost && runner::parseTarget(*m.buildHost).toString() ==
                                         runner::parseTarget(m.targetHost).toString();
    CHECK(p.onTarget == self);
    if (self) CHECK(p.reason == "clan.core.networking.buildHost");
    if (m.buildHost && !self) {
      REQUIRE(p.problem);
      CHECK(p.problem->find("clan.core.networking.buildHost is '" + *m.buildHost + "'") == 0);
    }
  }
  // octavia's sops vars are encrypted in the closure: deployable once its age key is there
  CHECK_FALSE(clanVarsProblem(*f.facts.at("octavia").clanVars));
  HostJob octavia = job("octavia");
  REQUIRE(octavia.requiredFiles.size() == 1);
  CHECK(octavia.requiredFiles[0].first == "/var/lib/sops-nix/key.txt");
  // vault's password-store vars would need an upload Switchyard cannot make: refused with why
  auto vaultWhy = clanVarsProblem(*f.facts.at("vault").clanVars);
  REQUIRE(vaultWhy);
  CHECK(vaultWhy->find("password-store backend (1 secret var file)") != std::string::npos);
  CHECK(job("vault").target.toString() == "admin@10.20.0.3:2022");
  CHECK(job("vault").escalation == std::vector<std::string>{"sudo", "-n", "-H", "--"});
}
