// The static planner on repositories that mirror real layouts (the seed homelab: genAttrs
// over host names with flake-parts, a Clan-managed host and self.nixosModules; a readDir
// host set; hostname-interpolated secrets; follows in the lock). Each scenario asserts the
// exact affected set and the reasons.
#include "runner/plan/static_planner.h"

#include <algorithm>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "runner/core/error.h"
#include "runner/plan/evaluator.h"
#include "runner/plan/plan_format.h"
#include "tests/support/temp_git_repo.h"

using namespace runner;
using nlohmann::json;

namespace Catch {
template <>
struct StringMaker<runner::Reason> {
  static std::string convert(const runner::Reason& r) {
    return std::string(runner::toString(r.kind)) + "(" + r.path + r.name +
           (r.detail.empty() ? "" : ": " + r.detail) + ")";
  }
};
}  // namespace Catch
using tests::TempGitRepo;

namespace {

json ghNode(const std::string& repo, const std::string& rev, json inputs = nullptr) {
  json n = {{"locked",
             {{"lastModified", 1700000000},
              {"narHash", "sha256-" + rev},
              {"owner", "o"},
              {"repo", repo},
              {"rev", rev},
              {"type", "github"}}},
            {"original", {{"owner", "o"}, {"repo", repo}, {"type", "github"}}}};
  if (!inputs.is_null()) n["inputs"] = inputs;
  return n;
}

// nixpkgs, flake-parts, home-manager and clan-core following nixpkgs, agenix, and disko with
// its own nixpkgs (not following).
std::string homelabLock(const std::string& nixpkgsRev = "n1", const std::string& hmRev = "h1",
                        const std::string& diskoNixpkgsRev = "d1") {
  json lock = {{"version", 7}, {"root", "root"}};
  lock["nodes"]["root"]["inputs"] = {
      {"nixpkgs", "nixpkgs"},     {"flake-parts", "flake-parts"}, {"home-manager", "home-manager"},
      {"clan-core", "clan-core"}, {"agenix", "agenix"},           {"disko", "disko"}};
  lock["nodes"]["nixpkgs"] = ghNode("nixpkgs", nixpkgsRev);
  lock["nodes"]["flake-parts"] = ghNode("flake-parts", "fp1");
  lock["nodes"]["home-manager"] =
      ghNode("home-manager", hmRev, {{"nixpkgs", json::array({"nixpkgs"})}});
  lock["nodes"]["clan-core"] = ghNode("clan-core", "c1", {{"nixpkgs", json::array({"nixpkgs"})}});
  lock["nodes"]["agenix"] = ghNode("agenix", "a1");
  lock["nodes"]["disko"] = ghNode("disko", "k1", {{"nixpkgs", "nixpkgs_2"}});
  lock["nodes"]["nixpkgs_2"] = ghNode("nixpkgs", diskoNixpkgsRev);
  return lock.dump(2);
}

const char* kSeedFlake = R"nix({
  description = "homelab: five hosts, Clan for one";
  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    flake-parts.url = "github:hercules-ci/flake-parts";
    home-manager = { url = "github:nix-community/home-manager"; inputs.nixpkgs.follows = "nixpkgs"; };
    clan-core = { url = "https://git.clan.lol/clan/clan-core/archive/main.tar.gz"; inputs.nixpkgs.follows = "nixpkgs"; };
    agenix.url = "github:ryantm/agenix";
    disko.url = "github:nix-community/disko";
  };
  outputs = { self, nixpkgs, flake-parts, clan-core, agenix, ... }@inputs:
    flake-parts.lib.mkFlake { inherit inputs; } {
      systems = [ "x86_64-linux" "aarch64-linux" ];
      imports = [ ./modules/flake ];
      flake = let
        forAllSystems = f: self.inputs.nixpkgs.lib.genAttrs [ "x86_64-linux" ]
          (system: f { pkgs = import self.inputs.nixpkgs { inherit system; }; });
        forAllLinuxHosts = self.inputs.nixpkgs.lib.genAttrs [
          "nixos" "demo" "vps-het-1" "wellsjaha" "octavia"
        ];
        clan = clan-core.lib.clan {
          self = self;
          specialArgs = { inherit self inputs; };
          meta.name = "octavia-clan-test";
          machines = {
            octavia = {
              nixpkgs.hostPlatform = "x86_64-linux";
              imports = [ ./hosts/octavia { clan.core.networking.targetHost = "10.20.0.2"; } ];
            };
          };
        };
      in {
        nixosConfigurations = (forAllLinuxHosts (host: self.inputs.nixpkgs.lib.nixosSystem {
          specialArgs = { inherit self inputs; };
          modules = [
            ./hosts/${host}
            self.inputs.home-manager.nixosModules.home-manager
            agenix.nixosModules.default
            self.nixosModules.users
            self.nixosModules.core
            { networking.hostName = host; }
          ];
        })) // {
          octavia = clan.config.nixosConfigurations.octavia;
        };
        inherit (clan.config) clanInternals;
        devShells = forAllSystems ({ pkgs }: {
          default = pkgs.mkShell { packages = [ pkgs.git ]; };
        });
        nixosModules = {
          users = ./modules/nixos/users;
          core = ./modules/core;
          hardware = ./modules/hardware;
        };
      };
    };
}
)nix";

std::map<std::string, std::optional<std::string>> seedFiles() {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = kSeedFlake;
  f["flake.lock"] = homelabLock();
  f["README.md"] = "# homelab\n";
  f["modules/flake/default.nix"] =
      "{ ... }: { perSystem = { pkgs, ... }: { formatter = pkgs.nixfmt; }; }\n";
  f["modules/core/default.nix"] =
      "{ pkgs, ... }: {\n  imports = [ ./nix.nix ];\n  environment.systemPackages = [ pkgs.git "
      "];\n}\n";
  f["modules/core/nix.nix"] = "{ ... }: { nix.settings.experimental-features = [ \"flakes\" ]; }\n";
  f["modules/nixos/users/default.nix"] =
      "{ ... }: {\n  users.users.alice = { isNormalUser = true; "
      "openssh.authorizedKeys.keyFiles = [ ./alice.pub ]; };\n}\n";
  f["modules/nixos/users/alice.pub"] = "ssh-ed25519 AAAA alice\n";
  f["modules/hardware/default.nix"] =
      "{ ... }: { hardware.enableRedistributableFirmware = true; }\n";
  for (const char* h : {"nixos", "demo", "vps-het-1", "wellsjaha"}) {
    f[std::string("hosts/") + h + "/default.nix"] =
        "{ ... }: {\n  imports = [ ./hardware.nix ];\n  system.stateVersion = \"24.05\";\n}\n";
    f[std::string("hosts/") + h + "/hardware.nix"] =
        "{ ... }: { boot.loader.grub.enable = true; }\n";
  }
  f["hosts/octavia/default.nix"] =
      "{ inputs, ... }: {\n  imports = [ ../../modules/core inputs.disko.nixosModules.disko "
      "./disko.nix ];\n  networking.defaultGateway = { address = \"10.20.0.254\"; interface = "
      "\"enp1s0\"; };\n}\n";
  f["hosts/octavia/disko.nix"] = "{ ... }: { disko.devices = { }; }\n";
  return f;
}

struct Scenario {
  TempGitRepo repo;
  std::string base;
  explicit Scenario(const std::map<std::string, std::optional<std::string>>& files) {
    base = repo.commit(files, "initial");
  }
  // Each change is a commit on top of the initial one (not of the previous change).
  Plan planChange(const std::map<std::string, std::optional<std::string>>& change) {
    repo.git({"checkout", "-q", "--detach", base});
    std::string to = repo.commit(change, "change");
    auto r = git::Repository::open(repo.path());
    return plan::planStatic(*r, base, to);
  }
};

std::vector<std::string> affected(const Plan& p) { return p.affectedHosts(); }

std::vector<Reason> reasonsOf(const Plan& p, const std::string& host) {
  const HostPlan* h = p.host(host);
  REQUIRE(h);
  return h->reasons;
}

Reason file(const std::string& path) { return {ReasonKind::File, path, "", ""}; }
Reason input(const std::string& name) { return {ReasonKind::Input, "", name, ""}; }

std::string replaced(std::string s, const std::string& from, const std::string& to) {
  auto pos = s.find(from);
  REQUIRE(pos != std::string::npos);
  return s.replace(pos, from.size(), to);
}

}  // namespace

TEST_CASE("seed: the five hosts are discovered, Clan's octavia included", "[unit][plan]") {
  Scenario s(seedFiles());
  auto r = git::Repository::open(s.repo.path());
  CHECK(plan::discoverHosts(*r, s.base) ==
        std::vector<std::string>{"demo", "nixos", "octavia", "vps-het-1", "wellsjaha"});
}

TEST_CASE("seed: a module every host reaches is global", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange({{"modules/core/nix.nix", "{ ... }: { nix.settings.cores = 2; }\n"}});
  CHECK(affected(p) ==
        std::vector<std::string>{"demo", "nixos", "octavia", "vps-het-1", "wellsjaha"});
  CHECK(reasonsOf(p, "octavia") == std::vector<Reason>{{ReasonKind::Global, "modules/core/nix.nix",
                                                        "", "every host reaches it"}});
}

TEST_CASE("seed: self.nixosModules.users reaches only the genAttrs hosts", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange({{"modules/nixos/users/alice.pub", "ssh-ed25519 BBBB alice\n"}});
  CHECK(affected(p) == std::vector<std::string>{"demo", "nixos", "vps-het-1", "wellsjaha"});
  CHECK(reasonsOf(p, "demo") == std::vector<Reason>{file("modules/nixos/users/alice.pub")});
  CHECK(reasonsOf(p, "octavia").empty());
}

TEST_CASE("seed: a host's own file affects only that host", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange(
      {{"hosts/demo/hardware.nix", "{ ... }: { boot.loader.grub.enable = false; }\n"}});
  CHECK(affected(p) == std::vector<std::string>{"demo"});
  CHECK(reasonsOf(p, "demo") == std::vector<Reason>{file("hosts/demo/hardware.nix")});
  Plan q = s.planChange({{"hosts/octavia/disko.nix", "{ ... }: { disko.devices.disk = { }; }\n"}});
  CHECK(affected(q) == std::vector<std::string>{"octavia"});
}

TEST_CASE("seed: a module no host imports affects nothing, neither does the README",
          "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p =
      s.planChange({{"modules/hardware/default.nix", "{ ... }: { }\n"}, {"README.md", "# x\n"}});
  CHECK(affected(p).empty());
  CHECK(p.filesChanged.size() == 2);
}

TEST_CASE("seed: editing only devShells in flake.nix affects no host", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange({{"flake.nix", replaced(kSeedFlake, "packages = [ pkgs.git ];",
                                                "packages = [ pkgs.git pkgs.ripgrep ];")}});
  CHECK(affected(p).empty());
}

TEST_CASE("seed: editing octavia's Clan definition in flake.nix affects only octavia",
          "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange({{"flake.nix", replaced(kSeedFlake, "10.20.0.2", "10.20.0.3")}});
  CHECK(affected(p) == std::vector<std::string>{"octavia"});
  CHECK(reasonsOf(p, "octavia").at(0).kind == ReasonKind::Global);
  CHECK(reasonsOf(p, "octavia").at(0).path == "flake.nix");
}

TEST_CASE("seed: editing the shared nixosSystem modules list affects the genAttrs hosts",
          "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange(
      {{"flake.nix", replaced(kSeedFlake, "{ networking.hostName = host; }",
                              "{ networking.hostName = host; time.timeZone = \"UTC\"; }")}});
  CHECK(affected(p) == std::vector<std::string>{"demo", "nixos", "vps-het-1", "wellsjaha"});
}

TEST_CASE("seed: adding a host to the list is a new host, the others stay", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange({{"flake.nix", replaced(kSeedFlake, "\"wellsjaha\" \"octavia\"",
                                                "\"wellsjaha\" \"octavia\" \"newbox\"")},
                         {"hosts/newbox/default.nix", "{ ... }: { }\n"}});
  CHECK(affected(p) == std::vector<std::string>{"newbox"});
  CHECK(p.host("newbox")->hasReason(ReasonKind::NewHost));
  Plan q = s.planChange({{"flake.nix", replaced(kSeedFlake, "\"demo\" ", "")}});
  REQUIRE(q.host("demo"));
  CHECK_FALSE(q.host("demo")->affected);
  CHECK(q.host("demo")->hasReason(ReasonKind::RemovedHost));
  CHECK(affected(q).empty());
}

TEST_CASE("seed: lock bumps affect the hosts that reach the input", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan hm = s.planChange({{"flake.lock", homelabLock("n1", "h2")}});
  CHECK(affected(hm) == std::vector<std::string>{"demo", "nixos", "vps-het-1", "wellsjaha"});
  CHECK(reasonsOf(hm, "nixos") == std::vector<Reason>{input("home-manager")});
  Plan np = s.planChange({{"flake.lock", homelabLock("n2", "h1")}});
  CHECK(affected(np) ==
        std::vector<std::string>{"demo", "nixos", "octavia", "vps-het-1", "wellsjaha"});
  // octavia is built by clan-core, whose nixpkgs follows the root one
  CHECK(reasonsOf(np, "octavia") == std::vector<Reason>{input("clan-core")});
  // disko's own nixpkgs (not following) changes disko transitively: only octavia imports disko
  Plan dk = s.planChange({{"flake.lock", homelabLock("n1", "h1", "d2")}});
  REQUIRE(dk.inputsChanged.size() == 1);
  CHECK(dk.inputsChanged[0].transitive);
  CHECK(affected(dk) == std::vector<std::string>{"octavia"});
  CHECK(reasonsOf(dk, "octavia") == std::vector<Reason>{input("disko")});
}

TEST_CASE("seed: a comment-only change of a host's module changes nothing", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange({{"hosts/wellsjaha/default.nix",
                          "# the big one\n{ ... }: {\n  imports = [ ./hardware.nix ];\n  "
                          "system.stateVersion = \"24.05\";\n}\n"}});
  CHECK(affected(p).empty());
  Plan q = s.planChange({{"hosts/wellsjaha/default.nix",
                          "{ ... }: {\n  imports = [ ./hardware.nix ];\n  "
                          "system.stateVersion = \"24.11\";\n}\n"}});
  CHECK(affected(q) == std::vector<std::string>{"wellsjaha"});
}

TEST_CASE("readDir host sets: one host changes, one is added", "[unit][plan]") {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = inputs:
    { nixosConfigurations = import ./nixos-configurations inputs; };
})nix";
  f["flake.lock"] = homelabLock();
  f["nixos-configurations/default.nix"] = R"nix(inputs:
let
  inherit (inputs.nixpkgs.lib) genAttrs filterAttrs;
  hosts = builtins.attrNames (filterAttrs (_: type: type == "directory") (builtins.readDir ./.));
in
genAttrs hosts (host: inputs.nixpkgs.lib.nixosSystem {
  modules = [ ./network.nix ./${host} { networking.hostName = host; } ];
}))nix";
  f["nixos-configurations/network.nix"] = "{ ... }: { networking.useNetworkd = true; }\n";
  f["nixos-configurations/artichoke/default.nix"] = "{ ... }: { imports = [ ./disk.nix ]; }\n";
  f["nixos-configurations/artichoke/disk.nix"] = "{ ... }: { }\n";
  f["nixos-configurations/beetroot/default.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  auto r = git::Repository::open(s.repo.path());
  CHECK(plan::discoverHosts(*r, s.base) == std::vector<std::string>{"artichoke", "beetroot"});
  Plan p = s.planChange({{"nixos-configurations/artichoke/disk.nix", "{ ... }: { a = 1; }\n"}});
  CHECK(affected(p) == std::vector<std::string>{"artichoke"});
  Plan q = s.planChange({{"nixos-configurations/carrot/default.nix", "{ ... }: { }\n"}});
  CHECK(affected(q) == std::vector<std::string>{"carrot"});
  CHECK(q.host("carrot")->hasReason(ReasonKind::NewHost));
  Plan n = s.planChange({{"nixos-configurations/network.nix", "{ ... }: { }\n"}});
  CHECK(affected(n) == std::vector<std::string>{"artichoke", "beetroot"});
}

TEST_CASE("self.nixosModules.X used from a module file, and hostname-interpolated secrets",
          "[unit][plan]") {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs, ... }@inputs: {
    nixosModules = {
      monitoring = ./modules/monitoring.nix;
      sops = import ./modules/sops.nix;
    };
    nixosConfigurations = nixpkgs.lib.mapAttrs (name: mods: nixpkgs.lib.nixosSystem {
      specialArgs = { inherit inputs; };
      modules = mods ++ [ { networking.hostName = name; } self.nixosModules.sops ];
    }) {
      web = [ ./hosts/web.nix ];
      db = [ ./hosts/db.nix ];
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["hosts/web.nix"] = "{ inputs, ... }: { imports = [ inputs.self.nixosModules.monitoring ]; }\n";
  f["hosts/db.nix"] = "{ ... }: { }\n";
  f["modules/monitoring.nix"] = "{ ... }: { services.prometheus.enable = true; }\n";
  f["modules/sops.nix"] =
      "{ config, ... }: { sops.defaultSopsFile = ../secrets + "
      "\"/${config.networking.hostName}.yaml\"; }\n";
  f["secrets/web.yaml"] = "a: 1\n";
  f["secrets/db.yaml"] = "a: 1\n";
  Scenario s(f);
  Plan m = s.planChange({{"modules/monitoring.nix", "{ ... }: { }\n"}});
  CHECK(affected(m) == std::vector<std::string>{"web"});
  Plan w = s.planChange({{"secrets/web.yaml", "a: 2\n"}});
  CHECK(affected(w) == std::vector<std::string>{"web"});
  CHECK(reasonsOf(w, "web") == std::vector<Reason>{file("secrets/web.yaml")});
  Plan d = s.planChange({{"secrets/db.yaml", "a: 3\n"}});
  CHECK(affected(d) == std::vector<std::string>{"db"});
}

TEST_CASE("a path the analyser cannot follow marks the host dynamic", "[unit][plan]") {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { modules = [ ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["a.nix"] = "{ lib, ... }: { imports = [ (builtins.toPath \"/etc/${lib.foo}\") ]; }\n";
  f["b.nix"] = "{ ... }: { }\n";
  f["unrelated.txt"] = "x\n";
  Scenario s(f);
  Plan p = s.planChange({{"unrelated.txt", "y\n"}});
  CHECK(affected(p) == std::vector<std::string>{"a"});
  REQUIRE(reasonsOf(p, "a").size() == 1);
  CHECK(reasonsOf(p, "a")[0].kind == ReasonKind::Dynamic);
  CHECK(reasonsOf(p, "a")[0].detail.find("a.nix:1: builtins.toPath") != std::string::npos);
}

TEST_CASE("hosts whose names are paths are refused in the plan, never dropped", "[unit][plan]") {
  // A fork's flake naming hosts like paths: their names would become log and GC-root paths.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.web = nixpkgs.lib.nixosSystem { modules = [ ./common.nix ]; };
    nixosConfigurations."../../../../root/.ssh/authorized_keys2" =
      nixpkgs.lib.nixosSystem { modules = [ ./common.nix ]; };
    nixosConfigurations."/tmp/x" = nixpkgs.lib.nixosSystem { modules = [ ./common.nix ]; };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["common.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  Plan p = s.planChange({{"common.nix", "{ ... }: { x = 1; }\n"}});
  CHECK(affected(p) == std::vector<std::string>{"web"});
  REQUIRE(p.hosts.size() == 3);
  for (const char* bad : {"../../../../root/.ssh/authorized_keys2", "/tmp/x"}) {
    const HostPlan* h = p.host(bad);
    REQUIRE(h);
    REQUIRE(h->refused);
    CHECK_FALSE(h->affected);
  }
  CHECK(std::find(p.warnings.begin(), p.warnings.end(),
                  "2 hosts are refused: the name breaks the host-name rule") != p.warnings.end());
}

TEST_CASE("colmena hives without nixosConfigurations", "[unit][plan]") {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    colmena = {
      meta.nixpkgs = import nixpkgs { system = "x86_64-linux"; };
      defaults = { imports = [ ./common.nix ]; };
      alpha = { name, ... }: { imports = [ ./nodes/${name}.nix ]; deployment.targetHost = "10.0.0.1"; };
      beta = { name, ... }: { imports = [ ./nodes/${name}.nix ]; };
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["common.nix"] = "{ ... }: { }\n";
  f["nodes/alpha.nix"] = "{ ... }: { }\n";
  f["nodes/beta.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  Plan p = s.planChange({{"nodes/beta.nix", "{ ... }: { x = 1; }\n"}});
  CHECK(affected(p) == std::vector<std::string>{"beta"});
  Plan c = s.planChange({{"common.nix", "{ ... }: { y = 1; }\n"}});
  CHECK(affected(c) == std::vector<std::string>{"alpha", "beta"});
}

namespace {

// The seed's shape (issues 12, 18): a hive in hive.nix, turned into nixosConfigurations by
// Colmena's makeHive (src/nix/hive/eval.nix: nodes, meta.specialArgs/nodeSpecialArgs/
// nodeNixpkgs, `defaults`, a node's value a module or a list of modules).
const char* kHiveFlake = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.colmena.url = "github:zhaofengli/colmena";
  outputs = { self, nixpkgs, colmena, ... }@inputs: {
    colmena = import ./hive.nix { inherit self inputs nixpkgs; };
    colmenaHive = colmena.lib.makeHive self.colmena;
    nixosConfigurations = self.colmenaHive.nodes;
  };
})nix";

const char* kHive = R"nix({ self, inputs, nixpkgs }:
{
  meta = {
    nixpkgs = import nixpkgs { system = "x86_64-linux"; };
    specialArgs = { inherit self inputs; shared = ./shared; };
    nodeSpecialArgs.beta = { extra = ./extra-beta.nix; };
  };
  defaults = { ... }: { imports = [ ./modules/common.nix ]; };
  alpha = { name, ... }: { imports = [ ./hosts/${name} ]; deployment.targetHost = "10.0.0.1"; };
  beta = { extra, ... }: { imports = [ ./hosts/beta extra ]; };
  gamma = [ ./hosts/gamma { deployment.tags = [ "web" ]; } ];
}
)nix";

std::map<std::string, std::optional<std::string>> hiveFiles() {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = kHiveFlake;
  json lock = json::parse(homelabLock());
  lock["nodes"]["root"]["inputs"]["colmena"] = "colmena";
  lock["nodes"]["colmena"] = ghNode("colmena", "col1");
  f["flake.lock"] = lock.dump(2);
  f["hive.nix"] = kHive;
  f["modules/common.nix"] = "{ shared, ... }: { imports = [ shared ]; }\n";
  f["shared/default.nix"] = "{ ... }: { }\n";
  f["extra-beta.nix"] = "{ ... }: { }\n";
  for (const char* h : {"alpha", "beta", "gamma"})
    f[std::string("hosts/") + h + "/default.nix"] = "{ ... }: { }\n";
  return f;
}

}  // namespace

TEST_CASE("a Colmena hive turned into nixosConfigurations by makeHive", "[unit][plan]") {
  Scenario s(hiveFiles());
  // each node is a host of its own, reached by its own files only
  Plan own = s.planChange({{"hosts/alpha/default.nix", "{ ... }: { x = 1; }\n"}});
  CHECK(own.discoveryError.empty());
  CHECK(affected(own) == std::vector<std::string>{"alpha"});
  CHECK(reasonsOf(own, "alpha") == std::vector<Reason>{file("hosts/alpha/default.nix")});
  CHECK(affected(s.planChange({{"hosts/gamma/default.nix", "{ ... }: { y = 1; }\n"}})) ==
        std::vector<std::string>{"gamma"});
  // meta.nodeSpecialArgs.beta reaches beta only
  CHECK(affected(s.planChange({{"extra-beta.nix", "{ ... }: { z = 1; }\n"}})) ==
        std::vector<std::string>{"beta"});
  // `defaults` and what meta.specialArgs brings in reach every node
  std::vector<std::string> all{"alpha", "beta", "gamma"};
  CHECK(affected(s.planChange({{"modules/common.nix",
                                "{ shared, ... }: { imports = [ shared "
                                "]; a = 1; }\n"}})) == all);
  CHECK(affected(s.planChange({{"shared/default.nix", "{ ... }: { b = 1; }\n"}})) == all);
  // a file no node imports reaches none
  CHECK(affected(s.planChange({{"hosts/delta/default.nix", "{ ... }: { }\n"}})).empty());
  // a bump of Colmena (its modules are in every node) reaches every node
  json lock = json::parse(*hiveFiles()["flake.lock"]);
  lock["nodes"]["colmena"] = ghNode("colmena", "col2");
  CHECK(affected(s.planChange({{"flake.lock", lock.dump(2)}})) == all);
  // editing one node's definition in hive.nix changes that node only
  CHECK(affected(s.planChange({{"hive.nix", replaced(kHive, "\"10.0.0.1\"", "\"10.0.0.9\"")}})) ==
        std::vector<std::string>{"alpha"});
  // meta.nodeNixpkgs.gamma moves gamma to another nixpkgs: gamma (and only it) changes
  Plan np = s.planChange(
      {{"hive.nix",
        replaced(kHive, "    specialArgs =",
                 "    nodeNixpkgs.gamma = import inputs.nixpkgs { };\n    specialArgs =")}});
  CHECK(std::find(affected(np).begin(), affected(np).end(), "gamma") != affected(np).end());
}

TEST_CASE("a Colmena hive the planner does not understand stays dynamic", "[unit][plan]") {
  Scenario s(hiveFiles());
  // the hive comes from somewhere the planner cannot read: its nodes cannot be named
  Plan p = s.planChange(
      {{"flake.nix", replaced(kHiveFlake, "import ./hive.nix { inherit self inputs nixpkgs; }",
                              "builtins.fromJSON (builtins.readFile /etc/hive.json)")}});
  CHECK(p.discoveryError.find("cannot name") != std::string::npos);
  for (const char* h : {"alpha", "beta", "gamma"}) {
    const HostPlan* hp = p.host(h);
    REQUIRE(hp);
    CHECK(hp->affected);
    CHECK_FALSE(hp->hasReason(ReasonKind::RemovedHost));
  }
  // meta the planner cannot evaluate: every node is found, and dynamic
  Plan u = s.planChange(
      {{"hive.nix", replaced(kHive, "  meta = {", "  meta = import /etc/meta.nix {")}});
  CHECK(u.discoveryError.empty());
  for (const char* h : {"alpha", "beta", "gamma"}) {
    const HostPlan* hp = u.host(h);
    REQUIRE(hp);
    REQUIRE(hp->hasReason(ReasonKind::Dynamic));
    bool said = false;  // where: the import the planner cannot follow
    for (const auto& r : hp->reasons)
      said = said || (r.kind == ReasonKind::Dynamic && r.detail.find("hive.nix:3") == 0);
    CAPTURE(hp->reasons);
    CHECK(said);
    CHECK(hp->affected);
  }
}

TEST_CASE("bad input: no flake.nix, a broken flake.lock", "[unit][plan]") {
  TempGitRepo t;
  auto a = t.commit({{"README.md", "x"}});
  auto b = t.commit({{"README.md", "y"}});
  auto r = git::Repository::open(t.path());
  CHECK_THROWS_WITH(plan::planStatic(*r, a, b), Catch::Contains("no flake.nix at"));
  // A broken flake at the new commit is a failed plan (exit 1), not bad usage.
  auto c = t.commit({{"flake.nix", "{ outputs = { self }: { }; }"}, {"flake.lock", "{ nope"}});
  CHECK_THROWS_AS(plan::planStatic(*r, b, c), PlanError);
  CHECK_THROWS_WITH(plan::planStatic(*r, b, c), Catch::Contains("flake.lock at"));
}

TEST_CASE("the plan renders as a table", "[unit][plan]") {
  Scenario s(seedFiles());
  Plan p = s.planChange(
      {{"hosts/demo/hardware.nix", "{ ... }: { }\n"}, {"flake.lock", homelabLock("n1", "h2")}});
  std::string t = plan::formatPlanTable(p);
  CHECK(t.find("4 of 5 hosts affected") != std::string::npos);
  CHECK(t.find("demo       yes       file hosts/demo/hardware.nix; input home-manager") !=
        std::string::npos);
  CHECK(t.find("input home-manager: h1 -> h2") != std::string::npos);
}

// Regressions found by running the planner on real infra repositories (see the closing note of
// issue 3). Each one was a miss: a host the change affects, planned as unaffected.

namespace {
std::map<std::string, std::optional<std::string>> twoHosts(const std::string& flake) {
  return {{"flake.nix", flake},
          {"flake.lock", homelabLock()},
          {"a.nix", "{ ... }: { }\n"},
          {"b.nix", "{ ... }: { }\n"}};
}
}  // namespace

TEST_CASE("a module file imported at flake level is tracked, comments aside", "[unit][plan]") {
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { modules = [ (import ./common.nix) ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["common.nix"] = "{ ... }: { networking.domain = \"one\"; }\n";
  Scenario s(f);
  Plan p = s.planChange({{"common.nix", "{ ... }: { networking.domain = \"two\"; }\n"}});
  CHECK(affected(p) == std::vector<std::string>{"a"});
  CHECK(reasonsOf(p, "a").at(0) ==
        Reason{ReasonKind::Global, "common.nix", "", "the host's definition in the flake changed"});
  Plan c = s.planChange(
      {{"common.nix", "# just a comment\n{ ... }: { networking.domain = \"one\"; }\n"}});
  CHECK(affected(c).empty());
}

TEST_CASE("names reached through `with inputs` in a module file", "[unit][plan]") {
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }@inputs: {
    nixosModules.x = ./x.nix;
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { specialArgs = { inherit inputs; }; modules = [ ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["a.nix"] = "{ inputs, ... }: { imports = with inputs; [ self.nixosModules.x ]; }\n";
  f["x.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  Plan p = s.planChange({{"x.nix", "{ ... }: { y = 1; }\n"}});
  CHECK(affected(p) == std::vector<std::string>{"a"});
}

TEST_CASE("module names computed with removeSuffix over readDir", "[unit][plan]") {
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }@inputs: {
    nixosModules = import ./modules nixpkgs.lib;
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { specialArgs = { inherit inputs; }; modules = [ ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["modules/default.nix"] =
      "lib: lib.mapAttrs' (name: _: lib.nameValuePair (lib.removeSuffix \".nix\" name) "
      "(./nixos + \"/${name}\")) (builtins.readDir ./nixos)\n";
  f["modules/nixos/x.nix"] = "{ ... }: { }\n";
  f["modules/nixos/y.nix"] = "{ ... }: { }\n";
  f["a.nix"] = "{ inputs, ... }: { imports = [ inputs.self.nixosModules.x ]; }\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"modules/nixos/x.nix", "{ ... }: { z = 1; }\n"}})) ==
        std::vector<std::string>{"a"});
  CHECK(affected(s.planChange({{"modules/nixos/y.nix", "{ ... }: { z = 1; }\n"}})).empty());
}

TEST_CASE("an attribute whose name the planner cannot compute depends on every candidate",
          "[unit][plan]") {
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }@inputs: {
    nixosModules = { ${nixpkgs.lib.someUnknownFunction "x"} = ./x.nix; };
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { specialArgs = { inherit inputs; }; modules = [ ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["a.nix"] = "{ inputs, ... }: { imports = [ inputs.self.nixosModules.x ]; }\n";
  f["x.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"x.nix", "{ ... }: { z = 1; }\n"}})) ==
        std::vector<std::string>{"a"});
}

TEST_CASE("packages from a directory and fileset sources", "[unit][plan]") {
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    overlays.default = final: prev: prev.lib.packagesFromDirectoryRecursive {
      inherit (final) callPackage; directory = ./by-name; };
    nixosConfigurations.a = nixpkgs.lib.nixosSystem {
      modules = [ ./a.nix { nixpkgs.overlays = [ self.overlays.default ]; } ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["a.nix"] = "{ pkgs, ... }: { environment.systemPackages = [ pkgs.u ]; }\n";
  f["by-name/u/package.nix"] =
      "{ lib, stdenv }: stdenv.mkDerivation { name = \"u\"; src = lib.fileset.toSource {\n"
      "  root = ../..; fileset = lib.fileset.unions [ ../../build.zig ../../src ]; }; }\n";
  f["build.zig"] = "// zig\n";
  f["src/main.zig"] = "// main\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"src/main.zig", "// changed\n"}})) ==
        std::vector<std::string>{"a"});
  CHECK(affected(s.planChange({{"build.zig", "// changed\n"}})) == std::vector<std::string>{"a"});
  CHECK(affected(s.planChange({{"README.md", "x\n"}})).empty());  // not the fileset's root
}

TEST_CASE("lite-config hosts, Clan darwin machines and makeOverridable", "[unit][plan]") {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.flake-parts.url = "github:hercules-ci/flake-parts";
  inputs.clan-core.url = "github:clan/clan-core";
  outputs = inputs@{ flake-parts, clan-core, nixpkgs, ... }: flake-parts.lib.mkFlake { inherit inputs; } {
    systems = [ "x86_64-linux" ];
    imports = [ inputs.lite-config.flakeModule clan-core.flakeModules.default ];
    lite-config = { lib, ... }: {
      hostModuleDir = ./hosts;
      hosts = { build01.system = "x86_64-linux"; mac01.system = "aarch64-darwin"; };
      systemModules = [ ./modules/common.nix ];
    };
    clan.inventory.machines.evo.machineClass = "darwin";
    flake.nixosConfigurations.web = nixpkgs.lib.makeOverridable nixpkgs.lib.nixosSystem {
      modules = [ ./web.nix ];
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["hosts/build01/default.nix"] = "{ ... }: { }\n";
  f["hosts/mac01/default.nix"] = "{ ... }: { }\n";
  f["modules/common.nix"] = "{ ... }: { }\n";
  f["machines/evo/configuration.nix"] = "{ ... }: { }\n";
  f["machines/box/configuration.nix"] = "{ ... }: { }\n";
  f["web.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  auto r = git::Repository::open(s.repo.path());
  CHECK(plan::discoverHosts(*r, s.base) == std::vector<std::string>{"box", "build01", "web"});
  CHECK(affected(s.planChange({{"modules/common.nix", "{ ... }: { a = 1; }\n"}})) ==
        std::vector<std::string>{"build01"});
  CHECK(affected(s.planChange({{"hosts/build01/default.nix", "{ ... }: { a = 1; }\n"}})) ==
        std::vector<std::string>{"build01"});
  CHECK(affected(s.planChange({{"web.nix", "{ ... }: { a = 1; }\n"}})) ==
        std::vector<std::string>{"web"});
  CHECK(affected(s.planChange({{"README.md", "x\n"}})).empty());
}

// ---------------------------------------------------------------------------------------------
// A plan never silently shrinks (issue 12; issue 11 item 5): discovery that fails at the new
// commit reports the hosts known from the old commit as dynamic, and fails the plan when no
// host is known at all.

namespace {

const char* kTwoHostFlake = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations = nixpkgs.lib.genAttrs [ "web" "db" ] (host: nixpkgs.lib.nixosSystem {
      modules = [ ./hosts/${host}.nix ];
    });
  };
})nix";

std::map<std::string, std::optional<std::string>> twoHostFiles() {
  return {{"flake.nix", kTwoHostFlake},
          {"flake.lock", homelabLock()},
          {"hosts/web.nix", "{ ... }: { }\n"},
          {"hosts/db.nix", "{ ... }: { }\n"}};
}

}  // namespace

TEST_CASE("a missing library function at the new commit: the old hosts are dynamic, not removed",
          "[unit][plan]") {
  Scenario s(twoHostFiles());
  // nixpkgs.lib.take does not exist: Nix fails; the planner cannot know, so it must not
  // answer "every host removed".
  Plan p = s.planChange(
      {{"flake.nix", replaced(kTwoHostFlake, "nixpkgs.lib.genAttrs [ \"web\" \"db\" ]",
                              "nixpkgs.lib.genAttrs (nixpkgs.lib.take 2 [ \"web\" \"db\" ])")}});
  CHECK(affected(p) == std::vector<std::string>{"db", "web"});
  CHECK_FALSE(p.discoveryError.empty());
  for (const auto& h : p.hosts) {
    CHECK_FALSE(h.hasReason(ReasonKind::RemovedHost));
    REQUIRE(h.reasons.size() == 1);
    CHECK(h.reasons[0].kind == ReasonKind::Dynamic);
    CHECK(h.reasons[0].detail.find("host discovery at the new commit failed") == 0);
    CHECK(h.reasons[0].detail.find("nixosConfigurations could not be evaluated") !=
          std::string::npos);
  }
  CHECK(nlohmann::json(p)["discovery_error"] == p.discoveryError);
}

TEST_CASE("outputs that cannot be evaluated and no host known anywhere: the plan fails",
          "[unit][plan]") {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: nixpkgs.lib.someFramework { src = ./.; };
})nix";
  f["flake.lock"] = homelabLock();
  f["hosts/a.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  CHECK_THROWS_AS(s.planChange({{"hosts/a.nix", "{ ... }: { a = 1; }\n"}}), PlanError);
  CHECK_THROWS_WITH(s.planChange({{"hosts/a.nix", "{ ... }: { a = 1; }\n"}}),
                    Catch::Contains("static planning cannot tell which hosts") &&
                        Catch::Contains("the flake's outputs could not be evaluated"));
  // Hosts listed in the config are planned (dynamic: not found in the outputs).
  s.repo.git({"checkout", "-q", "--detach", s.base});
  std::string to = s.repo.commit({{"hosts/a.nix", "{ ... }: { a = 2; }\n"}}, "change");
  auto r = git::Repository::open(s.repo.path());
  Plan p = plan::planStatic(*r, s.base, to, {.hosts = {{"a", std::nullopt}}});
  CHECK(affected(p) == std::vector<std::string>{"a"});
  CHECK(p.host("a")->reasons[0].kind == ReasonKind::Dynamic);
}

TEST_CASE("a flake.nix that does not parse at the new commit fails the plan", "[unit][plan]") {
  Scenario s(twoHostFiles());
  CHECK_THROWS_AS(s.planChange({{"flake.nix", std::string(kTwoHostFlake) + " }"}}), PlanError);
  CHECK_THROWS_WITH(s.planChange({{"flake.nix", std::string(kTwoHostFlake) + " }"}}),
                    Catch::Contains("cannot be planned"));
  CHECK_THROWS_AS(s.planChange({{"flake.lock", "not json"}}), PlanError);
  // the old commit broken is not a failure: every host is affected
  s.repo.git({"checkout", "-q", "--detach", s.base});
  std::string broken = s.repo.commit({{"flake.nix", std::string(kTwoHostFlake) + " }"}}, "b");
  std::string fixed = s.repo.commit({{"flake.nix", kTwoHostFlake}}, "f");
  auto r = git::Repository::open(s.repo.path());
  CHECK(affected(plan::planStatic(*r, broken, fixed)) == std::vector<std::string>{"db", "web"});
}

TEST_CASE("hosts only the old commit names, while the new set is partly unknown, are dynamic",
          "[unit][plan]") {
  Scenario s(twoHostFiles());
  // db's name now comes from a file the planner cannot read: it is not "removed".
  Plan p = s.planChange({{"flake.nix", replaced(kTwoHostFlake, "nixosConfigurations = ",
                                                "nixosConfigurations = { ${builtins.readFile "
                                                "/etc/db-name} = self.x; } // ")}});
  const HostPlan* db = p.host("db");
  REQUIRE(db);
  CHECK(db->affected);
  CHECK_FALSE(db->hasReason(ReasonKind::RemovedHost));
  CHECK(p.discoveryError.find("nixosConfigurations has entries the planner cannot name") == 0);
  // a host really removed from a fully known set stays removed
  Plan q =
      s.planChange({{"flake.nix", replaced(kTwoHostFlake, "[ \"web\" \"db\" ]", "[ \"web\" ]")}});
  CHECK(q.discoveryError.empty());
  CHECK(q.host("db")->hasReason(ReasonKind::RemovedHost));
  CHECK_FALSE(q.host("db")->affected);
}

TEST_CASE("a flake without hosts at either commit plans nothing, without an error",
          "[unit][plan]") {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: { lib.double = x: x * 2; };
})nix";
  f["flake.lock"] = homelabLock();
  Scenario s(f);
  Plan p = s.planChange({{"README.md", "x\n"}});
  CHECK(p.hosts.empty());
  CHECK(p.discoveryError.empty());
}

TEST_CASE("adios-flake: hosts from `flake` and system-independent modules, not flake-parts",
          "[unit][plan]") {
  // Mic92/adios-flake: one attribute-set argument; flake-scoped outputs come from `flake` (a
  // set or `{ withSystem }: …`) and from modules that take no pkgs/system/inputs'/self'.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.adios-flake.url = "github:Mic92/adios-flake";
  outputs = inputs@{ self, adios-flake, nixpkgs, ... }:
    adios-flake.lib.mkFlake {
      inherit inputs self;
      systems = [ "x86_64-linux" ];
      modules = [ ./nix/packages.nix ./nix/machines.nix ];
      perSystem = { pkgs, ... }: { devShells.default = pkgs.mkShell { }; };
      flake = { withSystem }: {
        nixosConfigurations.alpha = withSystem "x86_64-linux" ({ pkgs, lib, ... }:
          nixpkgs.lib.nixosSystem { modules = [ ./hosts/alpha.nix ]; });
      };
    };
})nix";
  json lock = json::parse(homelabLock());
  lock["nodes"]["root"]["inputs"]["adios-flake"] = "adios-flake";
  lock["nodes"]["root"]["inputs"]["af"] = "adios-flake";
  lock["nodes"]["adios-flake"] = ghNode("adios-flake", "ad1");
  f["flake.lock"] = lock.dump();
  f["nix/packages.nix"] = "{ pkgs, ... }: { packages.tool = pkgs.callPackage ../pkgs/tool { }; }\n";
  f["nix/machines.nix"] = R"nix({ self, lib, ... }: {
  nixosConfigurations.beta = lib.nixosSystem { modules = [ ../hosts/beta.nix ]; };
})nix";
  f["pkgs/tool/default.nix"] = "{ stdenv }: stdenv.mkDerivation { }\n";
  f["hosts/alpha.nix"] = "{ ... }: { }\n";
  f["hosts/beta.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  auto r = git::Repository::open(s.repo.path());
  CHECK(plan::discoverHosts(*r, s.base) == std::vector<std::string>{"alpha", "beta"});
  Plan a = s.planChange({{"hosts/alpha.nix", "{ ... }: { a = 1; }\n"}});
  CHECK(affected(a) == std::vector<std::string>{"alpha"});
  CHECK(a.discoveryError.empty());
  CHECK(affected(s.planChange({{"hosts/beta.nix", "{ ... }: { b = 1; }\n"}})) ==
        std::vector<std::string>{"beta"});
  // a per-system package no host uses
  CHECK(affected(s.planChange({{"pkgs/tool/default.nix",
                                "{ stdenv }: stdenv.mkDerivation "
                                "{ name = \"t\"; }\n"}}))
            .empty());
  // the call is recognised by its shape too (an input named otherwise)
  std::string renamed =
      replaced(replaced(replaced(*f["flake.nix"], "inputs.adios-flake.url", "inputs.af.url"),
                        "self, adios-flake, nixpkgs", "self, af, nixpkgs"),
               "adios-flake.lib.mkFlake", "af.lib.mkFlake");
  Plan b = s.planChange({{"flake.nix", renamed}});
  CHECK(b.discoveryError.empty());
  REQUIRE(b.hosts.size() == 2);
  for (const auto& h : b.hosts) CHECK_FALSE(h.hasReason(ReasonKind::NewHost));
}

TEST_CASE("adios-flake per-system packages reached through self.packages", "[unit][plan]") {
  // Found by the real-repository corpus (Mic92/dotfiles): a host module using
  // `self.packages.${pkgs.stdenv.hostPlatform.system}.live-text`, the package defined in an
  // adios module `{ pkgs, ... }: { packages = { … } // lib.optionalAttrs isLinux { live-text =
  // …callPackage ./live-text { }; }; }`. adios puts a system-dependent module's outputs under
  // the system (packages.<system>.live-text); the planner left them out, so the package's
  // files reached no host and the plan was silently empty.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.adios-flake.url = "github:Mic92/adios-flake";
  outputs = inputs@{ self, adios-flake, nixpkgs, ... }:
    adios-flake.lib.mkFlake {
      inherit inputs self;
      systems = [ "x86_64-linux" "aarch64-darwin" ];
      modules = [ ./pkgs/flake-module.nix ];
      perSystem = { pkgs, ... }: { packages.cli = pkgs.callPackage ./cli.nix { }; };
      flake = {
        nixosConfigurations = {
          a = nixpkgs.lib.nixosSystem { specialArgs = { inherit self; }; modules = [ ./a.nix ]; };
          b = nixpkgs.lib.nixosSystem { specialArgs = { inherit self; }; modules = [ ./b.nix ]; };
          c = nixpkgs.lib.nixosSystem { specialArgs = { inherit self; }; modules = [ ./c.nix ]; };
        };
      };
    };
})nix";
  json lock = json::parse(homelabLock());
  lock["nodes"]["root"]["inputs"]["adios-flake"] = "adios-flake";
  lock["nodes"]["adios-flake"] = ghNode("adios-flake", "ad1");
  f["flake.lock"] = lock.dump();
  f["pkgs/flake-module.nix"] = R"nix({ pkgs, lib, self, ... }: {
  packages = {
    other = pkgs.callPackage ./other { };
  } // lib.optionalAttrs pkgs.stdenv.hostPlatform.isLinux {
    live-text = pkgs.python3.pkgs.callPackage ./live-text { };
  };
})nix";
  f["pkgs/live-text/default.nix"] =
      "{ buildPythonApplication }: buildPythonApplication { src = ./.; }\n";
  f["pkgs/live-text/overlay.py"] = "print(1)\n";
  f["pkgs/other/default.nix"] = "{ stdenv }: stdenv.mkDerivation { name = \"o\"; }\n";
  f["cli.nix"] = "{ stdenv }: stdenv.mkDerivation { name = \"cli\"; }\n";
  f["a.nix"] =
      "{ self, pkgs, ... }: { environment.systemPackages = [ "
      "self.packages.${pkgs.stdenv.hostPlatform.system}.live-text ]; }\n";
  f["b.nix"] =
      "{ self, ... }: { environment.systemPackages = [ self.packages.x86_64-linux.cli ]; }\n";
  f["c.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  // a: the system is unknown, so any per-system package may be meant
  CHECK(affected(s.planChange({{"pkgs/live-text/overlay.py", "print(2)\n"}})) ==
        std::vector<std::string>{"a"});
  CHECK(affected(
            s.planChange({{"cli.nix", "{ stdenv }: stdenv.mkDerivation { name = \"c2\"; }\n"}})) ==
        std::vector<std::string>{"a", "b"});
  CHECK(affected(s.planChange({{"pkgs/other/default.nix",
                                "{ stdenv }: stdenv.mkDerivation { name = \"o2\"; }\n"}})) ==
        std::vector<std::string>{"a"});
}

TEST_CASE("nixosSystem of a merge of two inputs' libs is not dynamic", "[unit][plan]") {
  // Found by the real-repository corpus (Misterio77/nix-config, a common template):
  // `lib = nixpkgs.lib // home-manager.lib; … lib.nixosSystem { … }` made every host dynamic
  // ("'//' of values we cannot evaluate") on every commit, README edits included.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.home-manager.url = "github:nix-community/home-manager";
  outputs = { self, nixpkgs, home-manager, ... }@inputs: let
    lib = nixpkgs.lib // home-manager.lib;
  in {
    nixosConfigurations = {
      a = lib.nixosSystem { modules = [ ./hosts/a.nix ]; };
      b = lib.nixosSystem { modules = [ ./hosts/b.nix ]; };
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["hosts/a.nix"] = "{ ... }: { }\n";
  f["hosts/b.nix"] = "{ ... }: { }\n";
  f["README.md"] = "x\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"README.md", "y\n"}})).empty());
  CHECK(affected(s.planChange({{"hosts/a.nix", "{ ... }: { x = 1; }\n"}})) ==
        std::vector<std::string>{"a"});
  // both inputs are the hosts' libraries: bumping the right one alone reaches every host
  CHECK(affected(s.planChange({{"flake.lock", homelabLock("n1", "h2")}})) ==
        std::vector<std::string>{"a", "b"});
  CHECK(affected(s.planChange({{"flake.lock", homelabLock("n2", "h1")}})) ==
        std::vector<std::string>{"a", "b"});
  // an input neither side names does not
  CHECK(affected(s.planChange({{"flake.lock", homelabLock("n1", "h1", "d2")}})).empty());
}

TEST_CASE("a module reading every flake input (nix.registry from mapAttrs over inputs)",
          "[unit][plan]") {
  // Found by the real-repository corpus (Misterio77/nix-config): `nix.registry = lib.mapAttrs
  // (_: flake: { inherit flake; }) (lib.filterAttrs (_: lib.isType "flake") inputs);` puts
  // every input into every host, but the inputs set used whole counted for none of them: a
  // bump of any input planned no host.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.home-manager.url = "github:nix-community/home-manager";
  outputs = { self, nixpkgs, ... }@inputs: {
    nixosConfigurations = {
      a = nixpkgs.lib.nixosSystem { specialArgs = { inherit inputs; }; modules = [ ./a.nix ]; };
      b = nixpkgs.lib.nixosSystem { specialArgs = { inherit inputs; }; modules = [ ./b.nix ]; };
      c = nixpkgs.lib.nixosSystem { specialArgs = { inherit inputs; }; modules = [ ./c.nix ]; };
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["a.nix"] = R"nix({ inputs, lib, ... }:
let flakeInputs = lib.filterAttrs (_: lib.isType "flake") inputs;
in { nix.registry = lib.mapAttrs (_: flake: { inherit flake; }) flakeInputs; })nix";
  f["b.nix"] =
      "{ inputs, ... }: { environment.etc.x.text = builtins.toJSON (builtins.attrNames inputs); "
      "}\n";
  // passing the set on is not reading it: what c's own modules read counts
  f["c.nix"] = "{ inputs, ... }: { home-manager.extraSpecialArgs = { inherit inputs; }; }\n";
  Scenario s(f);
  std::vector<std::string> got = affected(s.planChange({{"flake.lock", homelabLock("n1", "h2")}}));
  CHECK(std::find(got.begin(), got.end(), "a") != got.end());
  // b reads only the names (Nix would not rebuild it; counting it is sound)
  CHECK(std::find(got.begin(), got.end(), "c") == got.end());
  CHECK(affected(s.planChange({{"c.nix", "{ ... }: { }\n"}})) == std::vector<std::string>{"c"});
}

TEST_CASE("self.outputs is the flake's outputs (another host's configuration read through it)",
          "[unit][plan]") {
  // Found by the real-repository corpus (Misterio77/nix-config, a common template):
  // `let inherit (self) outputs; in` with a host module mapping over
  // `outputs.nixosConfigurations` (every host's nginx virtual hosts). `self.outputs` was not
  // modelled, so an edit of another host reached nothing but that host.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs, ... }: let inherit (self) outputs; in {
    nixosConfigurations = {
      a = nixpkgs.lib.nixosSystem { specialArgs = { inherit outputs; }; modules = [ ./a.nix ]; };
      b = nixpkgs.lib.nixosSystem { specialArgs = { inherit outputs; }; modules = [ ./b.nix ]; };
      c = nixpkgs.lib.nixosSystem { specialArgs = { inherit outputs; }; modules = [ ./c.nix ]; };
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["a.nix"] = R"nix({ outputs, lib, ... }: {
  environment.etc.vhosts.text = builtins.toJSON
    (lib.mapAttrs (_: h: h.config.services.nginx.virtualHosts) outputs.nixosConfigurations);
})nix";
  f["b.nix"] = "{ ... }: { services.nginx.virtualHosts.x = { }; }\n";
  f["c.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  CHECK(
      affected(s.planChange({{"b.nix", "{ ... }: { services.nginx.virtualHosts.y = { }; }\n"}})) ==
      std::vector<std::string>{"a", "b"});
}

TEST_CASE("an evaluation's thunks and environments are freed with its evaluator", "[unit][plan]") {
  // Env and Thunk own each other (a rec set, a let, a lambda's frame); without the evaluator
  // cutting those cycles, every plan leaked its whole evaluation (issue 12).
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: let
    mk = host: nixpkgs.lib.nixosSystem { modules = [ ./hosts/${host}.nix ]; };
  in rec {
    nixosConfigurations = nixpkgs.lib.genAttrs [ "web" ] mk;
    names = builtins.attrNames nixosConfigurations;
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["hosts/web.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  auto repo = git::Repository::open(s.repo.path());
  plan::ParseCache cache;
  plan::SourceTree tree(*repo, s.base, cache);
  std::weak_ptr<plan::Thunk> host;
  std::weak_ptr<plan::Env> env;
  {
    plan::Evaluator ev(tree, {"nixpkgs"});
    ev.loadFlake();
    auto hosts = ev.hosts();
    REQUIRE(hosts.size() == 1);
    host = hosts[0].value;
    plan::ValuePtr sys = ev.force(hosts[0].value);
    REQUIRE(sys->kind == plan::VKind::NixosSystem);
    plan::ValuePtr mods = ev.force(sys->modules);
    REQUIRE(mods->kind == plan::VKind::List);
    env = mods->originEnv;  // the frame of `mk host`
    REQUIRE_FALSE(env.expired());
  }
  CHECK(host.expired());
  CHECK(env.expired());
}

TEST_CASE("a locked builtins.getFlake is a file dependency, an unlocked one dynamic",
          "[unit][plan]") {
  // Issue 12 cause 5: a pinned getFlake made its host dynamic on every commit.
  const std::string rev(40, 'a');
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations = nixpkgs.lib.genAttrs [ "pinned" "hashed" "floating" ] (host:
      nixpkgs.lib.nixosSystem { modules = [ ./hosts/${host}.nix ]; });
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["hosts/pinned.nix"] = "{ ... }: { imports = [ (builtins.getFlake \"github:o/r/" + rev +
                          "\").nixosModules.default ]; }\n";
  f["hosts/hashed.nix"] =
      "{ ... }: { imports = [ (builtins.getFlake "
      "\"git+https://example.org/r?ref=main&narHash=sha256-AAAA\").nixosModules.default ]; }\n";
  f["hosts/floating.nix"] =
      "{ ... }: { imports = [ (builtins.getFlake \"github:o/r\").nixosModules.default ]; }\n";
  Scenario s(f);
  Plan p = s.planChange({{"README.md", "x\n"}});
  CHECK(affected(p) == std::vector<std::string>{"floating"});
  CHECK(reasonsOf(p, "floating")[0].kind == ReasonKind::Dynamic);
  Plan q = s.planChange({{"hosts/pinned.nix", "{ ... }: { }\n"}});
  CHECK(affected(q) == std::vector<std::string>{"floating", "pinned"});
}

TEST_CASE("lite-config sets the host name: a hostname-interpolated file is one host's",
          "[unit][plan]") {
  // Issue 12 cause 7: only Clan was known to set networking.hostName to the attribute name,
  // so `hosts/${config.networking.hostName}/secrets.yaml` reached every lite-config host.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.flake-parts.url = "github:hercules-ci/flake-parts";
  outputs = inputs@{ self, flake-parts, nixpkgs, ... }: flake-parts.lib.mkFlake { inherit inputs; } {
    systems = [ "x86_64-linux" ];
    imports = [ inputs.lite-config.flakeModule ];
    lite-config = { lib, ... }: {
      hostModuleDir = ./hosts;
      hosts = { one.system = "x86_64-linux"; two.system = "x86_64-linux"; };
      systemModules = [ ./modules/secrets.nix ];
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["modules/secrets.nix"] =
      "{ config, self, ... }: { sops.defaultSopsFile = "
      "\"${self}/hosts/${config.networking.hostName}/secrets.yaml\"; }\n";
  f["hosts/one/default.nix"] = "{ ... }: { }\n";
  f["hosts/one/secrets.yaml"] = "a: 1\n";
  f["hosts/two/default.nix"] = "{ ... }: { }\n";
  f["hosts/two/secrets.yaml"] = "a: 1\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"hosts/one/secrets.yaml", "a: 2\n"}})) ==
        std::vector<std::string>{"one"});
  // an explicit definition that differs from the name is still checked
  CHECK(affected(s.planChange({{"hosts/two/default.nix",
                                "{ lib, ... }: { networking.hostName = lib.mkForce \"other\"; }\n"},
                               {"hosts/one/secrets.yaml", "a: 3\n"}})) ==
        std::vector<std::string>{"one", "two"});
}

TEST_CASE("nixosModules from readDir through optionalAttrs and builtins.match", "[unit][plan]") {
  // Issue 12 cause 4: unmodelled helpers made every module reach every host.
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }@inputs: let
    lib = nixpkgs.lib;
    dir = ./modules;
    name = file: builtins.head (builtins.match "(.*)\\.nix" file);
    parts = builtins.split "-" "web-db";
  in {
    nixosModules = lib.optionalAttrs (builtins.pathExists dir) (lib.mapAttrs'
      (file: _: lib.nameValuePair (name file) (dir + "/${file}")) (builtins.readDir dir))
      // lib.optionalAttrs false { y = ./b.nix; };
    nixosConfigurations.a = lib.nixosSystem { specialArgs = { inherit inputs; }; modules = [ ./a.nix ]; };
    nixosConfigurations.b = lib.nixosSystem {
      modules = [ ./b.nix ./extra/${builtins.elemAt parts 2}.nix ];
    };
  };
})nix");
  f["modules/x.nix"] = "{ ... }: { }\n";
  f["modules/y.nix"] = "{ ... }: { }\n";
  f["extra/db.nix"] = "{ ... }: { }\n";
  f["extra/web.nix"] = "{ ... }: { }\n";
  f["a.nix"] = "{ inputs, ... }: { imports = [ inputs.self.nixosModules.x ]; }\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"modules/x.nix", "{ ... }: { z = 1; }\n"}})) ==
        std::vector<std::string>{"a"});
  CHECK(affected(s.planChange({{"modules/y.nix", "{ ... }: { z = 1; }\n"}})).empty());
  CHECK(affected(s.planChange({{"extra/db.nix", "{ ... }: { z = 1; }\n"}})) ==
        std::vector<std::string>{"b"});
  CHECK(affected(s.planChange({{"extra/web.nix", "{ ... }: { z = 1; }\n"}})).empty());
}

TEST_CASE("a fileset root bound by a let: the fileset's files, not the whole root",
          "[unit][plan]") {
  // Issue 12 cause 1: `let root = ../..;` made every file of the repository reach the host,
  // and `root + /src` was taken for a pattern matching everything.
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { modules = [ ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["a.nix"] =
      "{ pkgs, ... }: { environment.systemPackages = [ (pkgs.callPackage ./pkgs/tool { }) ]; }\n";
  f["b.nix"] =
      "{ pkgs, ... }: { environment.systemPackages = [ (pkgs.callPackage ./pkgs/whole { }) ]; }\n";
  f["pkgs/tool/default.nix"] = R"nix({ lib, stdenv }:
let
  root = ../..;
  fs = lib.fileset;
in stdenv.mkDerivation {
  name = "tool";
  src = fs.toSource {
    inherit root;
    fileset = fs.unions [ (root + /tool-src) (fs.maybeMissing (root + "/extra.txt")) ];
  };
})nix";
  f["pkgs/whole/default.nix"] = R"nix({ stdenv }:
let root = ../..; in stdenv.mkDerivation { name = "whole"; src = root; })nix";
  f["tool-src/main.c"] = "int main() { return 0; }\n";
  f["extra.txt"] = "x\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"README.md", "x\n"}})) == std::vector<std::string>{"b"});
  CHECK(affected(s.planChange({{"tool-src/main.c", "int main() { return 1; }\n"}})) ==
        std::vector<std::string>{"a", "b"});
  CHECK(affected(s.planChange({{"extra.txt", "y\n"}})) == std::vector<std::string>{"a", "b"});
}

TEST_CASE("flake-parts perSystem packages reached through self.packages", "[unit][plan]") {
  // Found by the differential test: `self.packages.<system>.x` where x comes from perSystem
  // was a missing attribute, so the package's file reached no host.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.flake-parts.url = "github:hercules-ci/flake-parts";
  outputs = inputs@{ self, flake-parts, nixpkgs, ... }: flake-parts.lib.mkFlake { inherit inputs; } {
    systems = [ "x86_64-linux" ];
    imports = [ ./parts/tools.nix ];
    perSystem = { system, ... }: {
      packages.cli = inputs.nixpkgs.legacyPackages.${system}.callPackage ./pkgs/cli.nix { };
    };
    flake.nixosConfigurations = {
      a = nixpkgs.lib.nixosSystem { specialArgs = { inherit self; }; modules = [ ./a.nix ]; };
      b = nixpkgs.lib.nixosSystem { specialArgs = { inherit self; }; modules = [ ./b.nix ]; };
      c = nixpkgs.lib.nixosSystem { specialArgs = { inherit self; }; modules = [ ./c.nix ]; };
    };
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["parts/tools.nix"] = R"nix({ ... }: {
  perSystem = { pkgs, ... }: { packages.tool = pkgs.callPackage ../pkgs/tool.nix { }; };
})nix";
  f["a.nix"] =
      "{ self, ... }: { environment.systemPackages = [ self.packages.x86_64-linux.cli ]; }\n";
  f["b.nix"] =
      "{ self, pkgs, ... }: { environment.systemPackages = [ "
      "self.packages.${pkgs.system}.tool ]; }\n";
  f["c.nix"] = "{ ... }: { }\n";
  f["pkgs/cli.nix"] = "{ stdenv }: stdenv.mkDerivation { name = \"cli\"; }\n";
  f["pkgs/tool.nix"] = "{ stdenv }: stdenv.mkDerivation { name = \"tool\"; }\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"pkgs/cli.nix",
                                "{ stdenv }: stdenv.mkDerivation { name = "
                                "\"cli-2\"; }\n"}})) ==
        std::vector<std::string>{"a", "b"});  // b: self.packages.${unknown} may be any
  CHECK(affected(s.planChange({{"pkgs/tool.nix",
                                "{ stdenv }: stdenv.mkDerivation { name = "
                                "\"tool-2\"; }\n"}})) == std::vector<std::string>{"b"});
}

TEST_CASE("hosts from builtins.fromJSON of an inventory file", "[unit][plan]") {
  // Found by the differential test: static discovery found no host in
  // `lib.mapAttrs (…) (builtins.fromJSON (builtins.readFile ./inventory.json))`.
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: let lib = nixpkgs.lib; in {
    nixosConfigurations =
      let inventory = builtins.fromJSON (builtins.readFile ./inventory.json);
      in lib.mapAttrs (h: info: lib.nixosSystem {
        modules = [ ./hosts/${h}.nix { environment.etc."role".text = info.role; } ];
      }) inventory;
  };
})nix";
  f["flake.lock"] = homelabLock();
  f["inventory.json"] = R"({ "a": { "role": "web" }, "b": { "role": "db" } })";
  f["hosts/a.nix"] = "{ ... }: { }\n";
  f["hosts/b.nix"] = "{ ... }: { }\n";
  f["hosts/c.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  {
    Plan p = s.planChange({{"hosts/a.nix", "{ ... }: { x = 1; }\n"}});
    CHECK(p.discoveryError.empty());
    CHECK(affected(p) == std::vector<std::string>{"a"});
  }
  // a host's entry changes: that host at least (every host reads the file)
  {
    Plan p = s.planChange(
        {{"inventory.json", R"({ "a": { "role": "web" }, "b": { "role": "cache" } })"}});
    auto a = affected(p);
    CHECK(std::find(a.begin(), a.end(), "b") != a.end());
  }
  // a host is added
  {
    Plan p = s.planChange({{"inventory.json",
                            R"({ "a": { "role": "web" }, "b": { "role": "db" },
                                 "c": { "role": "db" } })"}});
    auto a = affected(p);
    CHECK(std::find(a.begin(), a.end(), "c") != a.end());
    REQUIRE(p.host("c"));
    CHECK(p.host("c")->reasons.front().kind == ReasonKind::NewHost);
  }
  // JSON that does not parse: the old hosts are dynamic, not removed
  {
    Plan p = s.planChange({{"inventory.json", "{ \"a\": "}});
    CHECK(affected(p) == std::vector<std::string>{"a", "b"});
  }
}

namespace {

// A Clan flake with machines/ and sops/ as clan-core lays them out: alpha and beta, a secret
// per machine, one shared through the group `servers` (both), one for users only.
std::map<std::string, std::optional<std::string>> clanFiles() {
  std::map<std::string, std::optional<std::string>> f;
  f["flake.nix"] = R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.clan-core.url = "github:clan/clan-core";
  outputs = { self, clan-core, ... }: let
    clan = clan-core.lib.clan { inherit self; meta.name = "lab"; };
  in { inherit (clan.config) nixosConfigurations; };
})nix";
  f["flake.lock"] = homelabLock();
  for (const char* m : {"alpha", "beta"}) {
    std::string d = std::string("machines/") + m + "/";
    f[d + "configuration.nix"] = "{ ... }: { imports = [ ./extra.nix ]; }\n";
    f[d + "extra.nix"] = "{ ... }: { }\n";
    f[d + "facter.json"] = "{}\n";
    f[d + "reboot.sh"] = "#!/bin/sh\nreboot\n";
    f[d + "notes.md"] = "notes\n";
    f[std::string("sops/machines/") + m + "/key.json"] = "{}\n";
    f[std::string("sops/secrets/") + m + "-age.key/secret"] = "enc\n";
    f[std::string("sops/secrets/") + m + "-age.key/machines/" + m] = "link\n";
    f[std::string("sops/secrets/") + m + "-wifi/secret"] = "enc\n";
    f[std::string("sops/secrets/") + m + "-wifi/machines/" + m] = "link\n";
    f[std::string("sops/groups/servers/machines/") + m] = "link\n";
  }
  f["sops/secrets/shared-token/secret"] = "enc\n";
  f["sops/secrets/shared-token/groups/servers"] = "link\n";
  f["sops/secrets/admin-only/secret"] = "enc\n";
  f["sops/secrets/admin-only/users/alice"] = "link\n";
  f["sops/users/alice/key.json"] = "{}\n";
  return f;
}

}  // namespace

TEST_CASE("Clan machine directories: only what clan-core reads", "[unit][plan]") {
  // Issue 12 cause 8: machines/<m>/ was charged whole, so a script or notes next to the
  // configuration affected the machine.
  Scenario s(clanFiles());
  CHECK(affected(s.planChange({{"machines/alpha/reboot.sh", "#!/bin/sh\n"}})).empty());
  CHECK(affected(s.planChange({{"machines/alpha/notes.md", "more\n"}})).empty());
  CHECK(affected(s.planChange({{"machines/alpha/facter.json", "{ \"x\": 1 }\n"}})) ==
        std::vector<std::string>{"alpha"});
  CHECK(affected(s.planChange({{"machines/alpha/extra.nix", "{ ... }: { x = 1; }\n"}})) ==
        std::vector<std::string>{"alpha"});
  // clan-core imports these when they exist: a new one changes the machine
  CHECK(affected(s.planChange({{"machines/beta/hardware-configuration.nix", "{ ... }: { }\n"}})) ==
        std::vector<std::string>{"beta"});
  CHECK(affected(s.planChange({{"machines/beta/disko.nix", "{ ... }: { }\n"}})) ==
        std::vector<std::string>{"beta"});
  CHECK(affected(s.planChange({{"machines/beta/facts/ssh.pub", "key\n"}})) ==
        std::vector<std::string>{"beta"});
}

TEST_CASE("Clan sops secrets belong to the machines clan-core gives them", "[unit][plan]") {
  // Issue 12 cause 6: sops/secrets/ and sops/users/ were charged to every Clan machine.
  Scenario s(clanFiles());
  CHECK(affected(s.planChange({{"sops/secrets/alpha-wifi/secret", "enc2\n"}})) ==
        std::vector<std::string>{"alpha"});
  CHECK(affected(s.planChange({{"sops/secrets/beta-age.key/secret", "enc2\n"}})) ==
        std::vector<std::string>{"beta"});
  CHECK(affected(s.planChange({{"sops/secrets/shared-token/secret", "enc2\n"}})) ==
        std::vector<std::string>{"alpha", "beta"});
  // users only: no machine
  CHECK(affected(s.planChange({{"sops/secrets/admin-only/secret", "enc2\n"}})).empty());
  CHECK(affected(s.planChange({{"sops/users/alice/key.json", "{ \"k\": 2 }\n"}})).empty());
  // a machine given a secret, or taken out of a group, at either commit
  CHECK(affected(s.planChange({{"sops/secrets/admin-only/machines/beta", "link\n"}})) ==
        std::vector<std::string>{"beta"});
  CHECK(affected(s.planChange({{"sops/secrets/beta-wifi/machines/beta", std::nullopt}})) ==
        std::vector<std::string>{"beta"});
  // the group's membership changes: its members at both commits
  CHECK(affected(s.planChange({{"sops/groups/servers/machines/alpha", std::nullopt}})) ==
        std::vector<std::string>{"alpha", "beta"});
  CHECK(affected(s.planChange({{"sops/groups/servers/machines/gamma", "link\n"}})) ==
        std::vector<std::string>{"alpha", "beta"});
}

TEST_CASE("a dev shell's `import <nixpkgs>` in a package's source is not dynamic", "[unit][plan]") {
  // Issue 12 cause 10: `src = ../tool;` where tool/shell.nix does `with import <nixpkgs> { };`
  // made the host dynamic (affected by every change); pure flake evaluation refuses <…>.
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { modules = [ ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["a.nix"] =
      "{ pkgs, ... }: { environment.systemPackages = [ (pkgs.callPackage ./pkgs/tool.nix { }) "
      "]; }\n";
  f["pkgs/tool.nix"] = "{ stdenv }: stdenv.mkDerivation { name = \"tool\"; src = ../tool; }\n";
  f["tool/main.zig"] = "pub fn main() void {}\n";
  f["tool/shell.nix"] = "with import <nixpkgs> { }; mkShell { packages = [ zig ]; }\n";
  f["README.md"] = "x\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"README.md", "y\n"}})).empty());
  CHECK(affected(s.planChange({{"tool/main.zig", "pub fn main() void { }\n"}})) ==
        std::vector<std::string>{"a"});
  // an import the planner cannot follow is still dynamic
  Plan p =
      s.planChange({{"b.nix", "{ pkgs, ... }: { imports = [ (import /etc/nixos/extra.nix) ]; }\n"},
                    {"README.md", "z\n"}});
  CHECK(affected(p) == std::vector<std::string>{"b"});
}

TEST_CASE("a module reading flake.nix as data does not follow the flake's code", "[unit][plan]") {
  // Issue 12 cause 2: `flake = import "${self}/flake.nix"` in a module scanned flake.nix as a
  // module, so every path and input of the flake reached the host.
  auto f = twoHosts(R"nix({
  nixConfig.extra-substituters = [ "https://cache.example.org" ];
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  inputs.home-manager.url = "github:nix-community/home-manager";
  outputs = { self, nixpkgs, home-manager }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem {
      specialArgs = { inherit self; };
      modules = [ ./a.nix ];
    };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem {
      modules = [ ./b.nix home-manager.nixosModules.default ];
    };
  };
})nix");
  f["a.nix"] = R"nix({ self, ... }:
let flake = import "${self}/flake.nix"; in {
  nix.settings.substituters = flake.nixConfig.extra-substituters;
  environment.etc.name.text = (import "${self}/flake.nix").description or "lab";
})nix";
  Scenario s(f);
  CHECK(affected(s.planChange({{"b.nix", "{ ... }: { x = 1; }\n"}})) ==
        std::vector<std::string>{"b"});
  {
    Plan p = s.planChange({{"flake.lock", homelabLock("n1", "h2")}});
    CHECK(affected(p) == std::vector<std::string>{"b"});
  }
  // flake.nix itself stays a dependency of the module that reads it
  CHECK(affected(s.planChange(
            {{"flake.nix", replaced(*f["flake.nix"], "cache.example.org", "c2.example.org")}})) ==
        std::vector<std::string>{"a"});
  // passed on whole, the file is still followed as code
  f["a.nix"] =
      "{ self, ... }: let flake = import \"${self}/flake.nix\"; in { y = flake.x; z = flake; }\n";
  Scenario whole(f);
  CHECK(affected(whole.planChange({{"b.nix", "{ ... }: { x = 2; }\n"}})) ==
        std::vector<std::string>{"a", "b"});
}

TEST_CASE("a directory used as a module is its default.nix", "[unit][plan]") {
  // A README next to a host's default.nix made the host affected (`./hosts/${h}` counted as
  // the whole directory); Nix imports only default.nix, which may refer to the rest.
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations = nixpkgs.lib.genAttrs [ "a" "b" ]
      (h: nixpkgs.lib.nixosSystem { modules = [ ./hosts/${h} ]; });
  };
})nix");
  f["hosts/a/default.nix"] = "{ ... }: { environment.etc.x.text = builtins.readFile ./x.txt; }\n";
  f["hosts/a/x.txt"] = "x\n";
  f["hosts/a/README.md"] = "a\n";
  f["hosts/b/default.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"hosts/a/README.md", "b\n"}})).empty());
  CHECK(affected(s.planChange({{"hosts/a/x.txt", "y\n"}})) == std::vector<std::string>{"a"});
  CHECK(affected(s.planChange({{"hosts/b/default.nix", "{ ... }: { y = 1; }\n"}})) ==
        std::vector<std::string>{"b"});
}

TEST_CASE("an overlay's attributes are charged to the hosts that use them", "[unit][plan]") {
  // Issue 12 cause 3: `nixpkgs.overlays = [ … ]` charged every package of the overlay (its
  // by-name directory, every source) to every host that applied it.
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    overlays.default = import ./overlays;
    nixosConfigurations = nixpkgs.lib.genAttrs [ "a" "b" "c" "d" "e" "f" ] (h:
      nixpkgs.lib.nixosSystem {
        modules = [ ./${h}.nix { nixpkgs.overlays = [ self.overlays.default ]; } ];
      });
  };
})nix");
  f["overlays/default.nix"] = R"nix(final: prev:
let common = "x"; in
prev.lib.packagesFromDirectoryRecursive {
  inherit (final) callPackage;
  directory = ../by-name;
} // {
  motd = final.mkPackage "motd-1" { };
  tool = final.mkPackage "tool" {
    src = final.lib.sourceByRegex ../pkgs/tool [ "src" "src/.*" "build\\.zig" ];
  };
  wrapped = final.writeShellScript "w" "${final.motd}/bin/motd";
  openssh = prev.openssh.override { withKerberos = true; };
})nix";
  f["by-name/greeter/package.nix"] = "{ mkPackage, hello, tool }: mkPackage \"greeter\" { }\n";
  f["by-name/banner/package.nix"] = "{ mkPackage }: mkPackage \"banner\" { }\n";
  f["pkgs/tool/src/main.c"] = "int main() { return 0; }\n";
  f["pkgs/tool/build.zig"] = "// zig\n";
  f["pkgs/tool/NOTES.md"] = "notes\n";
  f["a.nix"] = "{ pkgs, ... }: { environment.systemPackages = [ pkgs.motd ]; }\n";
  f["b.nix"] = "{ pkgs, ... }: { environment.systemPackages = with pkgs; [ greeter ]; }\n";
  f["c.nix"] = "{ pkgs, ... }: { environment.systemPackages = builtins.attrValues pkgs; }\n";
  f["d.nix"] = "{ pkgs, ... }: { inherit (pkgs) wrapped; }\n";
  f["e.nix"] = "{ pkgs, ... }: { x = pkgs.\"${\"too\" + \"l\"}\"; }\n";
  f["f.nix"] = "{ ... }: { }\n";
  Scenario s(f);
  // by-name: greeter is b's (with pkgs), and c's and e's (pkgs whole: attrValues, pkgs.${…})
  CHECK(affected(s.planChange({{"by-name/greeter/package.nix", "{ mkPackage }: 1\n"}})) ==
        std::vector<std::string>{"b", "c", "e"});
  CHECK(affected(s.planChange({{"by-name/banner/package.nix", "{ mkPackage }: 2\n"}})) ==
        std::vector<std::string>{"c", "e"});
  // a by-name package new in the directory replaces the attribute of that name
  CHECK(affected(s.planChange({{"by-name/motd/package.nix", "{ mkPackage }: 3\n"}})) ==
        std::vector<std::string>{"a", "c", "d", "e"});
  // tool: an argument of greeter's package.nix (b); only the files its filter keeps
  CHECK(affected(s.planChange({{"pkgs/tool/src/main.c", "int main() { return 1; }\n"}})) ==
        std::vector<std::string>{"b", "c", "e"});
  CHECK(affected(s.planChange({{"pkgs/tool/NOTES.md", "more notes\n"}})).empty());
  // editing one attribute of the overlay reaches its users: motd's through wrapped too
  CHECK(affected(s.planChange({{"overlays/default.nix",
                                replaced(*f["overlays/default.nix"], "motd-1", "motd-2")}})) ==
        std::vector<std::string>{"a", "c", "d", "e"});
  // an override of an existing name (prev.openssh) reaches every host applying the overlay
  CHECK(affected(s.planChange(
            {{"overlays/default.nix", replaced(*f["overlays/default.nix"], "withKerberos = true",
                                               "withKerberos = false")}})) ==
        std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
  // the let's bindings are the overlay's too
  CHECK(affected(s.planChange(
            {{"overlays/default.nix", replaced(*f["overlays/default.nix"], "\"x\"", "\"y\"")}})) ==
        std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
  // an overlay of a shape the planner does not understand is charged whole
  f["overlays/default.nix"] = "final: prev: builtins.mapAttrs (n: v: v) { motd = ../by-name; }\n";
  Scenario unknownShape(f);
  CHECK(affected(unknownShape.planChange({{"by-name/banner/package.nix", "{ mkPackage }: 4\n"}})) ==
        std::vector<std::string>{"a", "b", "c", "d", "e", "f"});
}

TEST_CASE("a module reading flake.nix as data depends on the part it selects", "[unit][plan]") {
  // Every edit of flake.nix (a comment, another host, a specialArg) reached the hosts whose
  // modules read `(import "${self}/flake.nix").description`.
  auto f = twoHosts(R"nix({
  description = "lab";
  nixConfig.extra-substituters = [ "https://cache.example.org" ];
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem {
      specialArgs = { inherit self; };
      modules = [ ./a.nix ];
    };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem {
      specialArgs = { domain = "b.example.org"; };
      modules = [ ./b.nix ];
    };
  };
})nix");
  f["a.nix"] = R"nix({ self, ... }:
let flake = import "${self}/flake.nix"; in {
  nix.settings.substituters = flake.nixConfig.extra-substituters;
  environment.etc.name.text = (import "${self}/flake.nix").description or "none";
})nix";
  f["b.nix"] = "{ domain, ... }: { networking.domain = domain; }\n";
  Scenario s(f);
  const std::string flake = *f["flake.nix"];
  CHECK(affected(s.planChange({{"flake.nix", "# a comment\n" + flake}})).empty());
  CHECK(
      affected(s.planChange({{"flake.nix", replaced(flake, "b.example.org", "c.example.org")}})) ==
      std::vector<std::string>{"b"});
  CHECK(affected(s.planChange({{"flake.nix", replaced(flake, "\"lab\"", "\"lab 2\"")}})) ==
        std::vector<std::string>{"a"});
  CHECK(affected(s.planChange({{"flake.nix", replaced(flake, "example.org\" ]",
                                                      "example.org\" \"https://c2\" ]")}})) ==
        std::vector<std::string>{"a"});
  // the selected value gone (`or` gives the default) or computed: a change for the reader
  CHECK(affected(s.planChange({{"flake.nix", replaced(flake, "description = \"lab\";", "")}})) ==
        std::vector<std::string>{"a"});
  CHECK(affected(s.planChange({{"flake.nix", replaced(flake, "description = \"lab\";",
                                                      "description = builtins.readFile ./d.txt;")},
                               {"d.txt", "lab"}})) == std::vector<std::string>{"a"});
}

TEST_CASE("a comment in a module imported as code changes no host, read as text it does",
          "[unit][plan]") {
  // module-comment in the differential lab: files, not meaning, were compared.
  auto f = twoHosts(R"nix({
  inputs.nixpkgs.url = "github:NixOS/nixpkgs";
  outputs = { self, nixpkgs }: {
    nixosConfigurations.a = nixpkgs.lib.nixosSystem { modules = [ ./a.nix ]; };
    nixosConfigurations.b = nixpkgs.lib.nixosSystem { modules = [ ./b.nix ]; };
  };
})nix");
  f["a.nix"] = "{ ... }: { imports = [ ./m.nix ] ++ (if true then [ ./n.nix ] else [ ]); }\n";
  f["b.nix"] = "{ ... }: { environment.etc.m.text = builtins.readFile ./m.nix; }\n";
  f["n.nix"] = "{ ... }: { }\n";
  f["m.nix"] = "{ ... }: { x = 1; }\n";
  Scenario s(f);
  CHECK(affected(s.planChange({{"m.nix", "# a remark\n{ ... }:\n{\n  x = 1;\n}\n"}})) ==
        std::vector<std::string>{"b"});
  CHECK(affected(s.planChange({{"m.nix", "{ ... }: { x = 2; }\n"}})) ==
        std::vector<std::string>{"a", "b"});
  CHECK(affected(s.planChange({{"n.nix", "# n\n{ ... }: { }\n"}})).empty());
  CHECK(affected(s.planChange({{"a.nix",
                                "{ ... }: { imports = [ ./m.nix ] ++ (if true then "
                                "[ ./n.nix ] else [ ]); } # m\n"}}))
            .empty());
}
