// Resident memory over many static plans in one process (issue 12: the daemon plans in-process
// on every run; Env and Thunk owning each other leaked every plan). Never a timed test: it
// prints numbers, recorded in bench/RESULTS.md with the command.
//
//   plan_memory_bench [--plans N] [--hosts H]
//
// The repository: a small flake (flake.nix, flake.lock, a shared module, H host files; hosts
// by genAttrs, a rec set, a let and a lambda, so evaluation makes Env/Thunk cycles). One change
// (a host file) is planned N times; RSS (/proc/self/statm) is printed after 100 plans and at
// each tenfold step. Baseline: RSS after the first 100 plans (caches and allocator warm).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/static_planner.h"

#include "bench/bench_git.h"

using namespace runner;
using Clock = std::chrono::steady_clock;

namespace {

double rssMiB() {
  std::ifstream f("/proc/self/statm");
  long pages = 0, resident = 0;
  f >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) /
         (1024.0 * 1024.0);
}

}  // namespace

int main(int argc, char** argv) {
  long plans = 10000;
  int hosts = 2;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--plans") plans = std::atol(argv[i + 1]);
    if (a == "--hosts") hosts = std::atoi(argv[i + 1]);
  }
  os::TempDir dir("sy-plan-memory");
  auto root = dir.path();
  bench::git(root, {"init", "-q", "-b", "main"});
  bench::git(root, {"config", "user.name", "bench"});
  bench::git(root, {"config", "user.email", "bench@example.invalid"});
  std::string names;
  for (int h = 0; h < hosts; ++h) {
    std::string n = "h" + std::to_string(h);
    names += " \"" + n + "\"";
    os::writeFileAtomic(root / "hosts" / (n + ".nix"),
                        "{ config, lib, ... }: { imports = [ ../modules/common.nix ]; "
                        "networking.hostName = \"" +
                            n + "\"; }\n");
  }
  os::writeFileAtomic(root / "modules/common.nix",
                      "{ pkgs, ... }: let port = 80; in { services.x = rec { a = port; b = a; }; "
                      "environment.systemPackages = [ pkgs.git ]; }\n");
  os::writeFileAtomic(
      root / "flake.nix",
      "{\n  inputs.nixpkgs.url = \"github:NixOS/nixpkgs\";\n"
      "  outputs = { self, nixpkgs, ... }@inputs: let\n"
      "    lib = nixpkgs.lib;\n"
      "    mk = host: lib.nixosSystem { specialArgs = { inherit inputs; };\n"
      "      modules = [ ./hosts/${host}.nix { networking.domain = \"lab\"; } ]; };\n"
      "  in rec {\n    nixosConfigurations = lib.genAttrs [" +
          names + " ] mk;\n    names = builtins.attrNames nixosConfigurations;\n  };\n}\n");
  os::writeFileAtomic(root / "flake.lock",
                      R"({"nodes":{"root":{"inputs":{"nixpkgs":"nixpkgs"}},"nixpkgs":{"locked":)"
                      R"({"lastModified":1,"narHash":"sha256-x","owner":"NixOS","repo":"nixpkgs",)"
                      R"("rev":"n1","type":"github"},"original":{"owner":"NixOS","repo":)"
                      R"("nixpkgs","type":"github"}}},"root":"root","version":7})");
  bench::git(root, {"add", "-A"});
  bench::git(root, {"commit", "-q", "-m", "initial"});
  os::writeFileAtomic(root / "hosts/h0.nix", "{ ... }: { imports = [ ../modules/common.nix ]; }\n");
  bench::git(root, {"commit", "-q", "-am", "change"});
  auto repo = git::Repository::open(root);
  std::string from = repo->resolveCommit("HEAD~1"), to = repo->resolveCommit("HEAD");

  std::printf("%10s %10s %12s %12s\n", "plans", "RSS MiB", "vs 100 MiB", "ms/plan");
  double base = 0;
  long next = 100;
  auto start = Clock::now();
  long since = 0;
  for (long i = 1; i <= plans; ++i) {
    Plan p = plan::planStatic(*repo, from, to);
    if (p.affectedHosts().size() != 1) {
      std::fprintf(stderr, "unexpected plan: %zu affected\n", p.affectedHosts().size());
      return 1;
    }
    if (i == next || i == plans) {
      double rss = rssMiB();
      if (i == 100) base = rss;
      double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count() /
                  static_cast<double>(i - since);
      std::printf("%10ld %10.1f %12.1f %12.3f\n", i, rss, base ? rss - base : 0.0, ms);
      start = Clock::now();
      since = i;
      next *= 10;
    }
  }
  return 0;
}
