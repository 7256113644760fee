// Lab flakes built on real framework code, for differential testing of the planners
// (issue 12, "Prove it"). A generator writes an infra flake in one of the shapes real
// repositories use (../shared/REAL-REPOS.md), whose hosts are evaluated by nixpkgs' own
// `lib.evalModules` and whose flake-parts variant runs the real flake-parts: both come from a
// directory of unmodified snapshots (SWITCHYARD_NIX_LIBS, see nixLibsFromEnv), referenced as
// `path:` inputs locked in flake.lock. Then it applies seeded random edits, one commit each,
// and says for every edit which hosts it expects Nix to see changed.
//
// Three flakes live under the generator's directory:
//   labpkgs/  a small "nixpkgs" (a `path:` input of the infra flake): the real nixpkgs lib
//             plus `lib.nixosSystem`, a NixOS stand-in on `lib.evalModules` with the few
//             options the lab sets; `config.system.build.toplevel` is a derivation (builder
//             /bin/sh, never built) whose inputs are the module values, so its drvPath changes
//             exactly when the configuration does. Packages: hello, mkPackage, callPackage,
//             overlays (a fixed point, as nixpkgs).
//   site-data/  a second `path:` input with one NixOS module.
//   infra/    the infra flake (a git repository): hosts (a directory each, a local data file,
//             an optional hardware-configuration.nix imported when it exists), shared modules
//             in modules/ (reading data files, a hostname-interpolated path and a
//             "${self}/…/${hostName}/…" one, readDir of users/ and of profiles/ as imports, a
//             directory put in the store, another input's module, self.packages), an overlay
//             with a versioned package, one built from a filtered source (`lib.sourceByRegex`:
//             `lib.fileset` needs builtins.readFileType, Nix >= 2.14) and a by-name directory
//             (`lib.packagesFromDirectoryRecursive`), specialArgs, a README.
//
// Everything is a function of (shape, seed): the same pair writes the same files and makes the
// same edits, so a failure is reproduced from the two numbers the test prints.
//
// Not thread-safe; one object per directory.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runner/core/process.h"
#include "runner/lab/git_cli.h"

namespace tests::labgen {

enum class Shape {
  GenAttrs,      // lib.genAttrs over a host list in flake.nix (jmbaur/homelab, the seed)
  ReadDirHosts,  // host names = directories of ./hosts (NixOS/infra non-critical-infra)
  FlakeParts,    // flake-parts mkFlake, hosts in a flake module's flake.nixosConfigurations
  SelfModules,   // flake.nixosModules from readDir ./modules; hosts import self.nixosModules.X
  ClanMachines,  // machines/<name>/configuration.nix discovered by readDir, facter.json
  ColmenaHive,   // a Colmena hive (meta, defaults, nodes); nixosConfigurations built from it
  Inventory,     // hosts and a per-host role from inventory.json (fromJSON of readFile)
  Roles,         // hosts.nix maps host -> role; a helper file lib/mk-host.nix; listToAttrs;
                 // nixosModules by readDir + builtins.match under optionalAttrs pathExists;
                 // hosts import (../../roles + "/${role}.nix") with role a specialArg
};
inline constexpr Shape kAllShapes[] = {Shape::GenAttrs,    Shape::ReadDirHosts, Shape::FlakeParts,
                                       Shape::SelfModules, Shape::ClanMachines, Shape::ColmenaHive,
                                       Shape::Inventory,   Shape::Roles};
std::string shapeName(Shape shape);
// The shape named `name` (as shapeName prints it); nullopt when there is none.
std::optional<Shape> shapeFromName(const std::string& name);

// The directory of the real Nix libraries: $SWITCHYARD_NIX_LIBS when it is set and holds
// nixpkgs-lib/ and flake-parts/; nullopt otherwise (the caller reports itself skipped).
std::optional<std::filesystem::path> nixLibsFromEnv();

// splitmix64: small, and the same numbers on every platform and standard library.
class Prng {
 public:
  explicit Prng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  // Uniform enough in [0, n). REQUIRES n > 0.
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
  bool chance(int percent) { return below(100) < static_cast<size_t>(percent); }

 private:
  uint64_t state_;
};

struct Edit {
  int index = 0;            // 1 for the first edit after create()
  std::string kind;         // "module", "host-note", "lock-hello", ... (see LabFlake::edit)
  std::string description;  // what changed, in words and file names
  std::string fromSha, toSha;
  // The hosts whose toplevel derivation should differ between the two commits (hosts new at
  // toSha included), computed from the generator's model; Nix's answer should equal it.
  std::set<std::string> expected;
};

class LabFlake {
 public:
  // Writes labpkgs/ and infra/ under `dir` (created; should be empty), locks the flake and
  // commits. `procs` must outlive the object. Throws GitError/NixError when git or nix fail.
  // REQUIRES: `nixLibs` holds nixpkgs-lib/ and flake-parts/ (nixLibsFromEnv()).
  LabFlake(runner::ProcessRunner& procs, const std::filesystem::path& dir,
           const std::filesystem::path& nixLibs, Shape shape, uint64_t seed);

  const std::filesystem::path& repoPath() const { return git_.workTree(); }
  std::string head() const { return git_.head(); }
  Shape shape() const { return shape_; }
  uint64_t seed() const { return seed_; }
  std::vector<std::string> hostNames() const;
  // "shape flake-parts, seed 7: 5 hosts (artichoke: base ssh web, ...)"
  std::string describe() const;

  // Applies one random edit (chosen by the seed) and commits it.
  Edit randomEdit();
  // Applies the edit of this kind (a random target, chosen by the seed) and commits it. The
  // kinds are the names kEditKinds lists. Throws InputError for an unknown kind.
  Edit edit(const std::string& kind);

 private:
  struct Host {
    std::set<std::string> modules;  // optional shared modules (base is always imported)
    int rev = 1, localRev = 1, noteRev = 1, junkRev = 0, secretRev = 1;
    int hardwareRev = 0;  // 0: no hardware-configuration.nix
    int role = 0;         // Inventory: inventory.json's role of the host
  };

  std::map<std::string, std::string> renderInfra() const;
  std::map<std::string, std::string> renderLabpkgs() const;
  std::string renderFlakeNix() const;
  std::string renderHost(const std::string& name, const Host& h) const;
  std::string renderModule(const std::string& name) const;
  std::string hostDir(const std::string& name) const;  // "hosts/<n>" or "machines/<n>"
  std::string hostFile(const std::string& name) const;
  std::string domainFile() const;  // the file holding `domain` and the host list
  std::map<std::string, std::string> fingerprints() const;
  void writeAll();
  void lock(const std::vector<std::string>& extraArgs);
  std::string pickHost();
  std::string newHostName();

  runner::ProcessRunner& procs_;
  std::filesystem::path dir_;
  std::filesystem::path nixLibs_;
  Shape shape_;
  uint64_t seed_;
  Prng rng_;
  runner::lab::GitCli git_;
  std::map<std::string, Host> hosts_;
  std::map<std::string, int> moduleRev_, moduleComments_, dataRev_;
  int overlayRev_ = 1, toolSrcRev_ = 1, toolNotesRev_ = 1, helloMinor_ = 12;
  int labpkgsReadmeRev_ = 1, flakeComments_ = 0, domainRev_ = 1, readmeRev_ = 1;
  int profileCount_ = 1, keysRev_ = 1, cliRev_ = 1, cliSrcRev_ = 1;
  std::map<int, int> profileRev_;
  std::map<int, int> roleRev_;  // Roles: roles/role-<k>.nix
  int userCount_ = 1, siteRev_ = 1, hardwareRevs_ = 0;
  std::map<std::string, int> byNameRev_;
  int edits_ = 0;
  std::map<std::string, std::string> written_;  // infra files as last written
};

// Every edit kind, in the order randomEdit() weighs them.
extern const std::vector<std::string> kEditKinds;

}  // namespace tests::labgen
