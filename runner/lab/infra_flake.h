// Generated NixOS-style infra flakes for the demo, the tests and the benchmarks: N hosts under
// hosts/<name>/default.nix importing shared modules from modules/<name>.nix, the fake nixpkgs
// as a local `git+file://` input, flake.lock committed. The wiring of nixosConfigurations
// follows one of the patterns real repositories use (see Wiring), optionally with
// `system.configurationRevision = self.rev or "dirty"` (every toplevel changes on every
// commit) and Clan- or Colmena-style target options per host.
//
// The object remembers the spec it generated from; every change method rewrites the files
// from the spec, commits, and returns the new commit's sha. The flake is small: evaluating a
// host takes tens of milliseconds unless testing.evalWeight says otherwise.
//
// Not thread-safe; one object per repository.
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runner/core/process.h"
#include "runner/lab/git_cli.h"

namespace runner::lab {

class FakeNixpkgs;

enum class Wiring {
  GenAttrs,  // lib.genAttrs over a host name list in flake.nix (the seed's shape)
  PerHost,   // one explicit lib.nixosSystem call per host in flake.nix
  ReadDir,   // host names = directories of ./hosts (builtins.readDir)
};

// Shared modules the generator knows: "base" (motd, users, the lab nonce), "ssh" (sshd
// settings in etc), "web" (adds pkgs.hello and an nginx.conf), "monitoring" (an etc file).
// Any other name gets a small module with one etc file of its own.
struct LabHost {
  std::string name;
  std::vector<std::string> modules = {"base", "ssh"};
  std::string system = "x86_64-linux";       // nixpkgs.hostPlatform
  std::optional<std::string> clanTarget;     // clan.core.networking.targetHost
  std::optional<std::string> colmenaTarget;  // deployment.targetHost
  bool openssh = true;                       // services.openssh.enable
  bool failActivation = false;               // testing.failActivation
  int buildSeconds = 0;                      // testing.buildSeconds
  int activationSeconds = 0;                 // testing.activationSeconds
  long evalWeight = 0;                       // testing.evalWeight
  std::string extraActivation;               // testing.extraActivation
  // Nix attribute definitions appended verbatim to the host module, whose arguments are
  // { config, pkgs, lib, self, inputs, ... } (self and inputs come from specialArgs).
  std::string extraConfig;
  int revision = 1;  // in etc/host-id; changeHost() bumps it
};

struct InfraOptions {
  Wiring wiring = Wiring::GenAttrs;
  std::vector<LabHost> hosts;  // empty: seedHosts()
  bool selfRevision = false;   // system.configurationRevision = self.rev or "dirty"
  // etc/flake-source = "${self}": the whole source in the closure, like
  // `nix.registry.self.flake = self` (the toplevel changes whenever any file changes).
  bool selfSource = false;
  long evalWeight = 0;  // added to every host that does not set its own
  // Written into modules/base.nix so this flake's derivations are new (not cached from an
  // earlier run). Empty: random. Set a fixed value for stable store paths.
  std::string nonce;
};

// The seed's fleet (DESIGN.md): nixos, demo, vps-het-1, wellsjaha, octavia; octavia is
// Clan-managed (clan target "root@10.20.0.2"), the others Colmena-style
// (deployment.targetHost "<name>.lab.invalid"); vps-het-1 and wellsjaha import "web".
std::vector<LabHost> seedHosts();
// host01..hostNN (two digits), modules {"base","ssh"} plus "web" for every third host and
// "monitoring" for every fourth.
std::vector<LabHost> numberedHosts(int count, long evalWeight = 0);

class InfraFlake {
 public:
  // Writes the flake into `dir` (created; should be empty), `nix flake lock`s it against
  // `nixpkgs` and commits everything. `procs` must outlive the object. Runs git and nix.
  // Throws GitError/NixError when they fail, InputError for a bad spec (duplicate host).
  static InfraFlake create(ProcessRunner& procs, const std::filesystem::path& dir,
                           const FakeNixpkgs& nixpkgs, InfraOptions options = {});

  const std::filesystem::path& path() const { return git_.workTree(); }
  std::string url() const;                        // git+file:///abs/dir
  std::string url(const std::string& rev) const;  // git+file:///abs/dir?rev=REV
  std::string head() const { return git_.head(); }
  const std::vector<LabHost>& hosts() const { return options_.hosts; }
  std::vector<std::string> hostNames() const;
  const LabHost& host(const std::string& name) const;  // throws InputError when unknown
  const InfraOptions& options() const { return options_; }
  // "nixosConfigurations.<host>.config.system.build.toplevel"
  static std::string toplevelAttr(const std::string& host);

  // Changes, each one commit (returns its sha):
  // - every host importing `module` gets a different toplevel
  std::string changeModule(const std::string& module);
  // - only `host` changes (its etc/host-id)
  std::string changeHost(const std::string& host);
  // - edits the host's spec (e.g. h.failActivation = true) and regenerates its module
  std::string updateHost(const std::string& host, const std::function<void(LabHost&)>& edit,
                         const std::string& message = "");
  std::string addHost(const LabHost& host);
  std::string removeHost(const std::string& host);
  // - a comment line appended to a .nix file: no derivation changes
  std::string commentOnly(const std::string& relPath);
  // - blank lines and trailing spaces appended to a .nix file: no derivation changes
  std::string whitespaceOnly(const std::string& relPath);
  // - README.md only
  std::string readmeOnly();
  // - `nix flake lock --update-input nixpkgs` (after committing a change to the fake nixpkgs)
  std::string updateNixpkgs();
  // - free-form: writes (or, for nullopt, deletes) files relative to the root and commits
  std::string commitFiles(const std::map<std::string, std::optional<std::string>>& files,
                          const std::string& message);
  // - adds host `alias` (a copy of host `of`) under a name only evaluation can compute
  //   (`${(builtins.fromTOML …).n}`, which static planning does not model): static
  //   discovery then cannot list it.
  //   GenAttrs wiring only.
  std::string addComputedHost(const std::string& alias, const std::string& of);
  // - replaces a shared module's text (the module then no longer follows changeModule())
  std::string setModuleText(const std::string& module, const std::string& nixText);

  const GitCli& git() const { return git_; }

 private:
  InfraFlake(GitCli git, InfraOptions options, std::string nixpkgsUrl);
  void writeAll();
  void writeFlakeNix();
  void writeHost(const LabHost& h);
  void writeModule(const std::string& module);
  void lock(const std::vector<std::string>& extraArgs);
  std::set<std::string> moduleNames() const;
  LabHost& mutableHost(const std::string& name);

  GitCli git_;
  InfraOptions options_;
  std::string nixpkgsUrl_;
  std::map<std::string, int> moduleRevisions_;
  std::map<std::string, std::string> moduleTexts_;  // overrides from setModuleText()
  int readmeRevision_ = 0;
};

}  // namespace runner::lab
