// Static planning speed on generated infra repositories (issue 3's benchmark). Never a timed
// test: it prints medians, recorded in bench/RESULTS.md with the command.
//
//   static_plan_bench [--hosts N] [--modules M] [--runs R]
//
// Fleets of hundreds (issue 16): --hosts 500 and --hosts 1000; the last column is the
// evaluation's units of work, against the 20M budget per commit (EvalLimits::maxWork).
//
// The repository: N hosts built by genAttrs over their names in flake.nix, in 10 roles; M
// module files (a shared "common" tree plus one tree per role, modules importing modules two
// levels deep), each host importing its role's tree, the common tree, a host file and a
// hostname-interpolated secret; a flake.lock with nixpkgs and home-manager. Three changes are
// planned R times each: one module of one role, a nixpkgs bump in flake.lock, one host's file.
// The baseline in the same run is the cost every other tool pays before it can say anything:
// reading and parsing every .nix file of the commit once (our planner does that work and more).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>
#include <vector>

#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/nix/parser.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/static_planner.h"

#include "bench/bench_git.h"

using namespace runner;
using Clock = std::chrono::steady_clock;

namespace {

std::string lock(const std::string& nixpkgsRev) {
  return R"({"nodes":{"root":{"inputs":{"nixpkgs":"nixpkgs","home-manager":"home-manager"}},)"
         R"("nixpkgs":{"locked":{"lastModified":1,"narHash":"sha256-)" +
         nixpkgsRev + R"(","owner":"NixOS","repo":"nixpkgs","rev":")" + nixpkgsRev +
         R"(","type":"github"},"original":{"owner":"NixOS","repo":"nixpkgs","type":"github"}},)"
         R"("home-manager":{"inputs":{"nixpkgs":["nixpkgs"]},"locked":{"lastModified":1,)"
         R"("narHash":"sha256-hm","owner":"nix-community","repo":"home-manager","rev":"hm1",)"
         R"("type":"github"},"original":{"owner":"nix-community","repo":"home-manager","type":)"
         R"("github"}}},"root":"root","version":7})";
}

// A module of realistic size: options, a let, interpolation, lists, an import list.
std::string module(const std::string& name, const std::vector<std::string>& imports) {
  std::string s = "{ config, lib, pkgs, ... }:\nlet\n  cfg = config.services." + name +
                  ";\n  port = 8000;\nin {\n  imports = [";
  for (const auto& i : imports) s += " " + i;
  s += " ];\n  options.services." + name + ".enable = lib.mkEnableOption \"" + name +
       "\";\n  config = lib.mkIf cfg.enable {\n" + "    systemd.services." + name +
       " = {\n      description = \"" + name +
       " on ${config.networking.hostName}\";\n      wantedBy = [ \"multi-user.target\" ];\n" +
       "      serviceConfig.ExecStart = \"${pkgs.hello}/bin/hello --port ${toString port}\";\n" +
       "      environment = { NAME = \"" + name + "\"; LEVEL = \"info\"; };\n    };\n" +
       "    networking.firewall.allowedTCPPorts = [ port (port + 1) ];\n" +
       "    environment.etc.\"" + name + ".conf\".text = ''\n      listen ${toString port}\n" +
       "      name ${config.networking.hostName}\n    '';\n  };\n}\n";
  return s;
}

struct Repo {
  os::TempDir dir{"sy-plan-bench"};
  std::string base;
  int hosts = 0;
};

void write(const std::filesystem::path& root, const std::string& rel, const std::string& text) {
  os::writeFileAtomic(root / rel, text);
}

void generate(Repo& repo, int hosts, int modules) {
  auto root = repo.dir.path();
  repo.hosts = hosts;
  bench::git(root, {"init", "-q", "-b", "main"});
  bench::git(root, {"config", "user.name", "bench"});
  bench::git(root, {"config", "user.email", "bench@example.invalid"});
  const int roles = 10;
  // modules: common tree + one tree per role; each tree: default.nix -> K groups -> leaves
  int perTree = modules / (roles + 1);
  auto tree = [&](const std::string& dirName) {
    int groups = std::max(1, static_cast<int>(std::sqrt(perTree)));
    int leavesPerGroup = std::max(1, perTree / groups - 1);
    std::vector<std::string> groupImports;
    for (int g = 0; g < groups; ++g) {
      std::vector<std::string> leaves;
      for (int l = 0; l < leavesPerGroup; ++l) {
        std::string leaf = "m" + std::to_string(g) + "_" + std::to_string(l);
        write(root, dirName + "/" + leaf + ".nix", module(leaf, {}));
        leaves.push_back("./" + leaf + ".nix");
      }
      std::string group = "g" + std::to_string(g);
      write(root, dirName + "/" + group + ".nix", module(group, leaves));
      groupImports.push_back("./" + group + ".nix");
    }
    write(root, dirName + "/default.nix", module("tree", groupImports));
  };
  tree("modules/common");
  for (int r = 0; r < roles; ++r) tree("modules/role" + std::to_string(r));
  std::string names;
  for (int h = 0; h < hosts; ++h) {
    char name[16];
    std::snprintf(name, sizeof name, "h%03d", h);
    names += std::string(" \"") + name + "\"";
    write(root, std::string("hosts/") + name + "/default.nix",
          module(name, {"../../modules/role" + std::to_string(h % roles)}));
    write(root, std::string("secrets/") + name + ".yaml", "token: x\n");
  }
  write(root, "flake.nix",
        "{\n  inputs.nixpkgs.url = \"github:NixOS/nixpkgs\";\n"
        "  inputs.home-manager.url = \"github:nix-community/home-manager\";\n"
        "  outputs = { self, nixpkgs, home-manager, ... }@inputs: {\n"
        "    nixosConfigurations = nixpkgs.lib.genAttrs [" +
            names +
            " ] (host: nixpkgs.lib.nixosSystem {\n"
            "      specialArgs = { inherit inputs; };\n"
            "      modules = [ ./hosts/${host} ./modules/common home-manager.nixosModules.default\n"
            "        { networking.hostName = host; sops.defaultSopsFile = ./secrets/${host}.yaml; "
            "} ];\n"
            "    });\n    devShells.x86_64-linux.default = "
            "nixpkgs.legacyPackages.x86_64-linux.hello;\n"
            "  };\n}\n");
  write(root, "flake.lock", lock("n1"));
  bench::git(root, {"add", "-A"});
  bench::git(root, {"commit", "-q", "-m", "initial"});
  auto r = git::Repository::open(root);
  repo.base = r->resolveCommit("HEAD");
}

std::string commitChange(Repo& repo, const std::string& path, const std::string& text) {
  bench::git(repo.dir.path(), {"checkout", "-q", "--detach", repo.base});
  write(repo.dir.path(), path, text);
  bench::git(repo.dir.path(), {"commit", "-q", "-am", "change"});
  // mirrors fetched by libgit2 hold packs, not loose objects
  bench::git(repo.dir.path(), {"repack", "-adq"});
  return git::Repository::open(repo.dir.path())->resolveCommit("HEAD");
}

// This thread's CPU time in ms: on a machine shared with compilers the wall time says more
// about the others' load than about the planner (the plan runs on one thread).
double cpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int hosts = 200, modules = 2000, runs = 7;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    int v = std::atoi(argv[i + 1]);
    if (a == "--hosts")
      hosts = v;
    else if (a == "--modules")
      modules = v;
    else if (a == "--runs")
      runs = v;
  }
  Repo repo;
  auto t0 = Clock::now();
  generate(repo, hosts, modules);
  auto files = git::Repository::open(repo.dir.path())->listTree(repo.base, "", true)->size();
  std::printf("repo: %d hosts, %zu files (generated in %.1f s)\n", hosts, files,
              std::chrono::duration<double>(Clock::now() - t0).count());

  struct Case {
    std::string name, path, text;
  };
  std::vector<Case> cases = {
      {"one module of one role", "modules/role3/m1_1.nix", module("changed", {})},
      {"flake.lock nixpkgs bump", "flake.lock", lock("n2")},
      {"one host's file", "hosts/h007/default.nix", module("h007x", {"../../modules/role7"})},
  };
  // Baseline: read and parse every .nix file of the commit once.
  std::vector<double> parseAll, parseCpu;
  for (int r = 0; r < runs; ++r) {
    auto repoObj = git::Repository::open(repo.dir.path());
    auto s = Clock::now();
    double c0 = cpuMs();
    auto all = repoObj->listTree(repo.base, "", true);
    for (const auto& e : *all) {
      if (!endsWith(e.path, ".nix")) continue;
      auto blob = repoObj->readFile(repo.base, e.path);
      auto ast = nix::parseNix(blob->content, e.path);
    }
    parseAll.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
    parseCpu.push_back(cpuMs() - c0);
  }
  std::printf("%-28s %10s %10s %10s %10s %14s\n", "change", "median ms", "min ms", "cpu ms",
              "affected", "work units");
  std::printf("%-28s %10.1f %10.1f %10.1f %10s %14s\n", "baseline: parse every file",
              median(parseAll), *std::min_element(parseAll.begin(), parseAll.end()),
              median(parseCpu), "-", "-");
  for (const auto& c : cases) {
    std::string to = commitChange(repo, c.path, c.text);
    std::vector<double> times, cpu;
    size_t affected = 0;
    plan::StaticStats stats;
    for (int r = 0; r < runs; ++r) {
      auto repoObj = git::Repository::open(repo.dir.path());
      auto s = Clock::now();
      double c0 = cpuMs();
      Plan p = plan::planStatic(*repoObj, repo.base, to, {.stats = &stats});
      times.push_back(std::chrono::duration<double, std::milli>(Clock::now() - s).count());
      cpu.push_back(cpuMs() - c0);
      affected = p.affectedHosts().size();
    }
    // The evaluation budget (EvalLimits::maxWork) holds per commit: the larger of the two.
    std::printf("%-28s %10.1f %10.1f %10.1f %7zu/%d %14llu\n", c.name.c_str(), median(times),
                *std::min_element(times.begin(), times.end()), median(cpu), affected, hosts,
                static_cast<unsigned long long>(std::max(stats.fromWork, stats.toWork)));
  }
  std::printf("work budget per commit (EvalLimits::maxWork): %llu\n",
              static_cast<unsigned long long>(plan::EvalLimits{}.maxWork));
  return 0;
}
