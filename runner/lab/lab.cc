#include "runner/lab/lab.h"

namespace runner::lab {

Lab Lab::create(ProcessRunner& procs, const std::filesystem::path& root, InfraOptions infra,
                const FakeNixpkgsOptions& nixpkgs) {
  std::filesystem::create_directories(root);
  FakeNixpkgs pkgs = FakeNixpkgs::create(procs, root / "nixpkgs", nixpkgs);
  InfraFlake flake = InfraFlake::create(procs, root / "infra", pkgs, std::move(infra));
  return Lab{std::move(pkgs), std::move(flake)};
}

}  // namespace runner::lab
