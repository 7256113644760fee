// The NixOS module (nix/module.nix) evaluated with the real nixpkgs lib.evalModules
// (tests/nix/module_eval.nix: stub declarations of the NixOS options it sets), and every .nix
// file we ship parsed by Nix and by our parser. The module cases need SWITCHYARD_NIX_LIBS
// (scripts/test.sh sets it) and print SKIPPED without it.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/text.h"
#include "runner/os/files.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kSkipped =
    "SKIPPED: SWITCHYARD_NIX_LIBS is not set (the directory with nixpkgs-lib/; scripts/test.sh "
    "sets it from ../shared/nix-libs)";

std::optional<fs::path> nixpkgsLib() {
  const char* v = std::getenv("SWITCHYARD_NIX_LIBS");
  if (!v || !*v || !fs::is_directory(fs::path(v) / "nixpkgs-lib" / "lib")) return std::nullopt;
  return fs::path(v) / "nixpkgs-lib";
}

struct Eval {
  int exitStatus;
  json out;
  std::string err;
};

// Evaluates the module with `config` (a Nix expression: a NixOS module).
Eval evalModule(const fs::path& lib, const std::string& config) {
  auto r = tests::run("nix-instantiate",
                      {"--eval", "--strict", "--json", "--read-write-mode",
                       (tests::sourceDir() / "tests/nix/module_eval.nix").string(), "--arg",
                       "nixpkgsLib", lib.string(), "--arg", "config", config});
  Eval e{r.exitStatus, json(), r.errTail};
  if (r.exitStatus == 0) e.out = json::parse(r.out);
  return e;
}

// The seed-like configuration of templates/switchyard.example.yaml, as module settings.
const std::string kFullConfig = R"nix({
  services.switchyard = {
    enable = true;
    openFirewall = true;
    settings = {
      listen = "0.0.0.0:8471";
      public_url = "https://ci.example.org";
      concurrency = { evals = 2; builds = 2; deploys = 8; };
      untrusted = { user = "switchyard-untrusted"; eval_timeout = "5m"; build = "approve"; };
      private_ui = true;
      forges.home = { type = "gitea"; url = "https://git.example.org"; };
      forges.hub = { type = "github"; app_id = 1234; };
      repos = [{
        forge = "home";
        name = "alice/infra";
        deploy_branches = [ "main" ];
        detection = "auto";
        rollout = { canary = [ "octavia" ]; max_parallel = 4; stop_on_failure = true; };
        activation = { confirm_timeout = "30s"; health_checks = [ "systemctl is-system-running --wait" ]; };
        hosts.octavia.target = "root@10.20.0.2";
        hosts.vps-het-1.target = "root@[2a01:4f8::1]:2222";
      }];
    };
    forges.home = { tokenFile = "/run/secrets/gitea-token"; webhookSecretFile = "/run/secrets/gitea-hook"; };
    forges.hub = { privateKeyFile = "/run/secrets/gh-app.pem"; webhookSecretFile = "/run/secrets/gh-hook"; };
    sshIdentityFile = "/run/secrets/deploy_ed25519";
    uiTokenFile = "/run/secrets/ui";
    knownHosts.octavia = { hostNames = [ "10.20.0.2" ]; publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOctavia"; };
    knownHosts."vps-het-1" = { hostNames = [ "[2a01:4f8::1]:2222" ]; publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVps"; };
  };
})nix";

const std::string kCredDir = "/run/credentials/switchyard.service/";

// Runs the module's build step (the runCommand script) with the built switchyard on PATH.
runner::RunResult runCheckScript(const json& configFile, const fs::path& out) {
  runner::os::TempDir dir("switchyard-nixcheck");
  fs::create_directories(dir.path() / "bin");
  fs::create_symlink(tests::switchyardBinary(), dir.path() / "bin/switchyard");
  std::string script = configFile.at("script").get<std::string>();
  return tests::run(
      "/bin/sh", {"-ec", script}, dir.path(),
      {{"PATH", (dir.path() / "bin").string() + ":/usr/bin:/bin"}, {"out", out.string()}});
}

}  // namespace

TEST_CASE("NixOS module: the unit runs switchyard serve as its own user, secrets as credentials",
          "[integration][nix][packaging]") {
  auto lib = nixpkgsLib();
  if (!lib) {
    WARN(kSkipped);
    return;
  }
  auto e = evalModule(*lib, kFullConfig);
  INFO(e.err);
  REQUIRE(e.exitStatus == 0);
  CHECK(e.out["failedAssertions"] == json::array());
  const json& s = e.out["service"];
  const json& sc = s["serviceConfig"];
  const std::string configPath = e.out["configFile"]["path"];
  CHECK(sc["ExecStart"] ==
        "/nix/store/00000000000000000000000000000000-switchyard/bin/switchyard serve --config " +
            configPath);
  CHECK(sc["User"] == "switchyard");
  CHECK(sc["Group"] == "switchyard");
  CHECK(sc["StateDirectory"] == "switchyard");
  CHECK(sc["StateDirectoryMode"] == "0700");
  CHECK(sc["WorkingDirectory"] == "/var/lib/switchyard");
  // every secret arrives as a credential, by the path given (nothing copied into the store)
  CHECK(sc["LoadCredential"] ==
        json({"forge-home-token:/run/secrets/gitea-token",
              "forge-home-webhook-secret:/run/secrets/gitea-hook",
              "forge-hub-private-key:/run/secrets/gh-app.pem",
              "forge-hub-webhook-secret:/run/secrets/gh-hook",
              "ssh-identity:/run/secrets/deploy_ed25519", "ui-token:/run/secrets/ui"}));
  CHECK(s["path"] == json({"nix", "git", "openssh"}));
  CHECK(s["environment"]["NIX_REMOTE"] == "daemon");
  CHECK(s["wantedBy"] == json({"multi-user.target"}));
  // hardening: no capabilities, read-only system, no privilege gain
  CHECK(sc["CapabilityBoundingSet"] == json({""}));
  CHECK(sc["AmbientCapabilities"] == json::array());
  CHECK(sc["NoNewPrivileges"] == true);
  CHECK(sc["ProtectSystem"] == "strict");
  CHECK(sc["PrivateTmp"] == true);
  CHECK(sc["RestrictNamespaces"] == true);
  CHECK(sc["ReadWritePaths"] == json::array());
  CHECK(e.out["users"]["switchyard"]["isSystemUser"] == true);
  CHECK(e.out["users"]["switchyard"]["home"] == "/var/lib/switchyard");
  CHECK(e.out["groups"].contains("switchyard"));
  CHECK_FALSE(e.out["users"].contains("switchyard-untrusted"));  // jailForks is off
  CHECK(e.out["firewallPorts"] == json({8471}));

  // The rendered file: the settings, with the credentials' paths and the known_hosts file.
  const std::string script = e.out["configFile"]["script"];
  auto at = script.find("switchyard check-config ");
  REQUIRE(at != std::string::npos);
  fs::path yamlPath = runner::split(script.substr(at + 24), ' ').front();
  REQUIRE(fs::is_regular_file(yamlPath));
  json rendered = json::parse(runner::os::readFile(yamlPath));
  CHECK(rendered["forges"]["home"]["token_file"] == kCredDir + "forge-home-token");
  CHECK(rendered["forges"]["hub"]["private_key_file"] == kCredDir + "forge-hub-private-key");
  CHECK(rendered["ssh"]["identity_file"] == kCredDir + "ssh-identity");
  CHECK(rendered["ui_token_file"] == kCredDir + "ui-token");
  CHECK(rendered["repos"][0]["rollout"]["max_parallel"] == 4);
  CHECK(rendered["listen"] == "0.0.0.0:8471");
  fs::path knownHosts = rendered["ssh"]["known_hosts"].get<std::string>();
  CHECK(runner::os::readFile(knownHosts) ==
        "10.20.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOctavia\n"
        "[2a01:4f8::1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIVps\n");

  // check-config as the build runs it: the credentials are missing at build time (warnings,
  // exit 1), which the build step accepts.
  auto direct = tests::switchyard({"check-config", yamlPath.string()});
  INFO(direct.errTail);
  CHECK(direct.exitStatus == 1);
  CHECK(direct.errTail.find("/run/credentials/switchyard.service/forge-home-token") !=
        std::string::npos);
  runner::os::TempDir tmp("switchyard-nixmodule");
  auto built = runCheckScript(e.out["configFile"], tmp.path() / "out.yaml");
  INFO(built.errTail);
  CHECK(built.exitStatus == 0);
  CHECK(runner::os::readFile(tmp.path() / "out.yaml") == runner::os::readFile(yamlPath));

  // With the secrets in place (the credentials directory moved to a temporary one), the
  // file is usable as it stands: check-config exits 0.
  std::string text = runner::os::readFile(yamlPath);
  fs::path creds = tmp.path() / "credentials";
  fs::create_directories(creds);
  for (const char* name : {"forge-home-token", "forge-home-webhook-secret", "forge-hub-private-key",
                           "forge-hub-webhook-secret", "ssh-identity", "ui-token"}) {
    std::ofstream(creds / name) << "secret-of-at-least-thirty-two-bytes-for-the-ui-token\n";
  }
  std::string moved;
  for (size_t i = 0, j; i < text.size(); i = j + kCredDir.size()) {
    j = text.find(kCredDir, i);
    if (j == std::string::npos) {
      moved += text.substr(i);
      break;
    }
    moved += text.substr(i, j - i) + creds.string() + "/";
  }
  std::ofstream(tmp.path() / "in-place.yaml") << moved;
  auto ok = tests::switchyard({"check-config", (tmp.path() / "in-place.yaml").string()});
  INFO(ok.errTail);
  CHECK(ok.exitStatus == 0);
}

TEST_CASE("NixOS module: a wrong setting fails the system build, naming the key",
          "[integration][nix][packaging]") {
  auto lib = nixpkgsLib();
  if (!lib) {
    WARN(kSkipped);
    return;
  }
  auto e = evalModule(*lib, R"nix({
    services.switchyard = {
      enable = true;
      settings.concurrency.evals = "two";
      settings.forges.home = { type = "gitee"; url = "https://git.example.org"; webhook_secret_file = "/run/x"; };
    };
  })nix");
  INFO(e.err);
  REQUIRE(e.exitStatus == 0);
  runner::os::TempDir tmp("switchyard-nixmodule");
  auto built = runCheckScript(e.out["configFile"], tmp.path() / "out.yaml");
  CHECK(built.exitStatus != 0);
  CHECK(built.errTail.find("concurrency.evals") != std::string::npos);
  CHECK(built.errTail.find("forges.home.type") != std::string::npos);
  CHECK(built.errTail.find("check-config failed (exit 2)") != std::string::npos);
  CHECK_FALSE(fs::exists(tmp.path() / "out.yaml"));
}

TEST_CASE("NixOS module: secrets in the store, unknown forges and bad host keys are refused",
          "[integration][nix][packaging]") {
  auto lib = nixpkgsLib();
  if (!lib) {
    WARN(kSkipped);
    return;
  }
  auto e = evalModule(*lib, R"nix({
    services.switchyard = {
      enable = true;
      settings.forges.home = { type = "gitea"; url = "https://git.example.org";
                               token_file = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-token"; };
      forges.elsewhere.tokenFile = "/run/secrets/t";
      knownHosts.octavia = { };
      settings.state_dir = "/srv/switchyard";
    };
  })nix");
  INFO(e.err);
  REQUIRE(e.exitStatus == 0);
  std::string all = e.out["failedAssertions"].dump();
  CHECK(all.find("forges.home.token_file = /nix/store/") != std::string::npos);
  CHECK(all.find("forges: elsewhere is not a forge under") != std::string::npos);
  CHECK(all.find("exactly one of publicKey and publicKeyFile") != std::string::npos);
  CHECK(all.find("state_dir must be a directory under /var/lib/") != std::string::npos);

  // A secret option given a store path (or a Nix path, which would be copied into the store)
  // is a type error at evaluation.
  auto bad = evalModule(*lib, R"nix({
    services.switchyard = { enable = true; sshIdentityFile = "/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-key"; };
  })nix");
  CHECK(bad.exitStatus != 0);
  CHECK(bad.err.find("sshIdentityFile") != std::string::npos);
}

TEST_CASE(
    "NixOS module: jailForks creates the untrusted account and grants only what the jail needs",
    "[integration][nix][packaging]") {
  auto lib = nixpkgsLib();
  if (!lib) {
    WARN(kSkipped);
    return;
  }
  auto e = evalModule(*lib, R"nix({
    services.switchyard = {
      enable = true;
      jailForks = true;
      settings.untrusted.user = "sy-forks";
      settings.repos = [ { name = "alice/infra"; path = "/srv/git/infra.git"; } ];
    };
  })nix");
  INFO(e.err);
  REQUIRE(e.exitStatus == 0);
  const json& sc = e.out["service"]["serviceConfig"];
  json caps = {"CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN"};
  CHECK(sc["CapabilityBoundingSet"] == caps);
  CHECK(sc["AmbientCapabilities"] == caps);
  CHECK(sc["RestrictNamespaces"] == "net");
  // a local repository is written to (pinned commits) under ProtectSystem=strict
  CHECK(sc["ReadWritePaths"] == json({"/srv/git/infra.git"}));
  CHECK(e.out["users"]["sy-forks"]["isSystemUser"] == true);
  CHECK(e.out["firewallPorts"] == json::array());
}

TEST_CASE("every .nix file we ship parses with Nix and with our parser", "[integration][nix]") {
  std::vector<fs::path> files;
  const fs::path src = tests::sourceDir();
  for (auto it = fs::recursive_directory_iterator(src); it != fs::recursive_directory_iterator();
       ++it) {
    const fs::path rel = fs::relative(it->path(), src);
    const std::string first = rel.begin()->string();
    if (it->is_directory() &&
        (first == ".git" || runner::startsWith(first, "build") || rel == fs::path("tests/data"))) {
      it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file() && it->path().extension() == ".nix") files.push_back(rel);
  }
  for (const char* shipped : {"flake.nix", "nix/module.nix", "nix/package.nix"})
    CHECK(std::find(files.begin(), files.end(), fs::path(shipped)) != files.end());
  for (const auto& f : files) {
    INFO(f);
    auto theirs = tests::run("nix-instantiate", {"--parse", f.string()}, src);
    INFO(theirs.errTail);
    CHECK(theirs.exitStatus == 0);
    auto ours = tests::switchyard({"parse", "--nix", f.string()}, src);
    INFO(ours.errTail);
    CHECK(ours.exitStatus == 0);
    // the same tree: our parser prints it the way nix-instantiate --parse does
    CHECK(ours.out == theirs.out);
  }
}

TEST_CASE("nix/package.nix takes from nixpkgs only attributes nix/README.md says were checked",
          "[integration][nix][packaging]") {
  auto r = tests::run("nix-instantiate",
                      {"--eval", "--strict", "--json", "-E",
                       "builtins.attrNames (builtins.functionArgs (import ./nix/package.nix))"},
                      tests::sourceDir());
  INFO(r.errTail);
  REQUIRE(r.exitStatus == 0);
  const std::string table = runner::os::readFile(tests::sourceDir() / "nix/README.md");
  for (const auto& name : json::parse(r.out)) {
    const std::string n = name.get<std::string>();
    if (n == "lib" || n == "stdenv") continue;  // nixpkgs' own, not packages
    INFO(n);
    CHECK(table.find("| `" + n + "`") != std::string::npos);
  }
}
