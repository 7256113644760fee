// The seed's infra flake (issue 18) rebuilt on real framework code, for tests that read deploy
// settings from a flake the way Colmena and Clan users write them and then deploy it to sshd
// test hosts. Like the user's repository (../shared/seed/): flake-parts' mkFlake (the real
// flake-parts), hosts defined by a Colmena hive whose evaluated nodes are the
// nixosConfigurations (`colmenaHive = colmena.lib.makeHive self.colmena`,
// `nixosConfigurations = self.colmenaHive.nodes // …`), and octavia moved to Clan through
// `clan-core.lib.clan { machines.octavia = …; }` merged over them.
//
// Under the directory given:
//   fakepkgs/   the lab's fake nixpkgs (runner/lab/fake_nixpkgs.h): busybox, runCommand and its
//               switch-to-configuration template, so toplevels build and activate on test hosts;
//   labpkgs/    the "nixpkgs" input: the real nixpkgs lib ($SWITCHYARD_NIX_LIBS) and
//               lib.nixosSystem on the real lib.evalModules with the few NixOS options the lab
//               sets; the toplevel is fake_nixpkgs.h's (switch-to-configuration switch|boot|test);
//   colmena/    a Colmena stand-in: lib.makeHive and nixosModules.deploymentOptions declaring
//               deployment.* as Colmena's src/nix/hive/options.nix does (types and defaults:
//               targetHost = the node's name, targetUser "root", privilegeEscalationCommand
//               [ "sudo" "-H" "--" ], keys as submodules with Colmena's defaults), plus
//               sshOptions;
//   clan-core/  a clan-core stand-in: lib.clan { self, specialArgs, meta, machines } and the
//               clan.core options Switchyard reads (networking.targetHost/buildHost,
//               deployment.requireExplicitUpdate, vars.settings.secretStore, vars.generators.
//               <g>.files.<f>.{secret,deploy,neededFor}) and sops.age.keyFile;
//   infra/      the infra flake (a git repository, flake.lock committed).
//
// Not thread-safe; one object per directory.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runner/core/process.h"
#include "runner/lab/fake_nixpkgs.h"
#include "runner/lab/git_cli.h"

namespace tests::seedlab {

struct SeedHost {
  std::string name;
  bool clan = false;  // a Clan machine (clan-core's `machines`), else a node of the Colmena hive
  // Nix attribute definitions written into the node's (or machine's) own module, where Colmena
  // and Clan users write them: `deployment.keys.x = { … };`, `clan.core.networking.targetHost
  // = "…";`. The module's arguments are { config, lib, name, ... }.
  std::string deployment;
  std::string extraActivation;  // testing.extraActivation: shell run (busybox sh -e) on switch
  int revision = 1;             // in hosts/<name>/default.nix; changeHost() bumps it
};

// The seed's five hosts: nixos, demo, vps-het-1, wellsjaha (Colmena) and octavia (Clan), with
// no deployment settings yet.
std::vector<SeedHost> seedFleet();

class SeedFlake {
 public:
  // Writes everything under `dir` (created; should be empty), locks the infra flake and
  // commits. `procs` must outlive the object. Throws InputError for a bad spec (duplicate host,
  // no static busybox), GitError/NixError when git or nix fail.
  // REQUIRES: `nixLibs` holds nixpkgs-lib/ and flake-parts/ (labgen::nixLibsFromEnv()).
  SeedFlake(runner::ProcessRunner& procs, const std::filesystem::path& dir,
            const std::filesystem::path& nixLibs, std::vector<SeedHost> hosts);

  const std::filesystem::path& repoPath() const { return git_.workTree(); }
  std::string head() const { return git_.head(); }
  const std::vector<SeedHost>& hosts() const { return hosts_; }
  std::vector<std::string> hostNames() const;
  const runner::lab::GitCli& git() const { return git_; }

  // Each change is one commit; returns its sha.
  // - modules/common.nix: every host's toplevel changes
  std::string changeCommon();
  // - hosts/<name>/default.nix: only that host's toplevel changes
  std::string changeHost(const std::string& name);
  // - edits the host's spec and rewrites the flake (throws InputError for an unknown host)
  std::string updateHost(const std::string& name, const std::function<void(SeedHost&)>& edit);

 private:
  void writeAll();
  SeedHost& host(const std::string& name);

  std::filesystem::path dir_;
  std::filesystem::path nixLibs_;
  std::unique_ptr<runner::lab::FakeNixpkgs> fakepkgs_;
  runner::lab::GitCli git_;
  std::vector<SeedHost> hosts_;
  std::string nonce_;
  int commonRevision_ = 1;
};

}  // namespace tests::seedlab
