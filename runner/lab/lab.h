// A whole lab in one directory: `<root>/nixpkgs` (the fake nixpkgs) and `<root>/infra` (an
// infra flake whose nixpkgs input points at it). What `switchyard demo`, the integration tests
// and the benchmarks start from; see fake_nixpkgs.h and infra_flake.h for the parts.
//
//   PosixProcessRunner procs;
//   auto lab = Lab::create(procs, tmp.path(), {.hosts = numberedHosts(5)});
//   lab.nixpkgs.setHelloVersion("2.13");
//   std::string sha = lab.infra.updateNixpkgs();   // only hosts importing "web" change
#pragma once

#include <filesystem>

#include "runner/lab/fake_nixpkgs.h"
#include "runner/lab/infra_flake.h"

namespace runner::lab {

struct Lab {
  FakeNixpkgs nixpkgs;
  InfraFlake infra;

  // Creates both repositories under `root` (created when missing). Runs git and nix.
  // Throws like FakeNixpkgs::create and InfraFlake::create.
  static Lab create(ProcessRunner& procs, const std::filesystem::path& root,
                    InfraOptions infra = {}, const FakeNixpkgsOptions& nixpkgs = {});
};

}  // namespace runner::lab
