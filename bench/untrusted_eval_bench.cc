// The cost of the fork jail (issue 19): drvPath evaluation of every host of a lab flake as
// the runner evaluates a trusted commit (its own nix, git+file flake reference) vs as a fork's
// commit (the tree and inputs put into the store by the runner first, then `nix eval` as
// untrusted.user through the nix-daemon, no network). Each run is a fresh commit, so neither
// side reuses Nix's evaluation cache.
//
//   untrusted_eval_bench [--hosts N] [--runs R]
//
// Needs root, the switchyard-untrusted account (scripts/install-deps.sh) and a nix-daemon
// (tests/support/nix_daemon_fixture.sh start). Prints medians over R runs.
#include <algorithm>
#include <chrono>
#include <iomanip>
#include <iostream>
#include <string>
#include <vector>

#include "runner/app/untrusted_jail.h"
#include "runner/core/config.h"
#include "runner/lab/lab.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/scheduler/untrusted_source.h"

using namespace runner;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int hosts = 10, runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--hosts") hosts = std::stoi(argv[i + 1]);
    if (k == "--runs") runs = std::stoi(argv[i + 1]);
  }
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-untrusted-bench");
  auto lab =
      lab::Lab::create(procs, tmp.path() / "lab", {.hosts = lab::numberedHosts(hosts, 200000)});
  Config config;
  config.stateDir = tmp.path() / "state";
  std::filesystem::create_directories(config.stateDir);
  std::filesystem::permissions(config.stateDir, std::filesystem::perms::owner_all,
                               std::filesystem::perm_options::replace);
  auto setup = app::setUpUntrustedJail(config, procs, app::runnerPrivateFiles(config));
  if (!setup.jail) {
    std::cerr << "the jail does not hold here: " << setup.problem << "\n";
    return 1;
  }
  setup.jail->restrictEval = false;  // the lab locks its nixpkgs as git+file (README)
  nix::NixCli trusted(procs);
  nix::NixCli credentialless(procs, nix::credentiallessNixOptions({}, tmp.path() / "fetch-home"));
  nix::NixCli jail(procs, nix::untrustedNixOptions({}, *setup.jail));
  scheduler::UntrustedSources sources(trusted, credentialless);
  RepoConfig repo;
  repo.name = "lab/infra";
  repo.path = lab.infra.path();

  std::vector<double> trustedMs, prepareMs, jailMs;
  for (int r = 0; r < runs; ++r) {
    std::string a = lab.infra.changeModule("base");  // a fresh commit for the trusted side
    auto t0 = Clock::now();
    auto te = trusted.evalDrvPaths(nix::gitFlakeRef(lab.infra.path(), a), std::nullopt);
    trustedMs.push_back(ms(Clock::now() - t0));
    std::string b = lab.infra.changeModule("base");  // and another for the jail
    auto t1 = Clock::now();
    std::string ref = sources.flakeRef(repo, lab.infra.path(), b, a);
    auto t2 = Clock::now();
    auto je = jail.evalDrvPaths(ref, std::nullopt);
    auto t3 = Clock::now();
    prepareMs.push_back(ms(t2 - t1));
    jailMs.push_back(ms(t3 - t2));
    if (te.hosts.size() != static_cast<size_t>(hosts) || je.hosts.size() != te.hosts.size()) {
      std::cerr << "evaluation failed: trusted " << te.hosts.size() << " hosts, jail "
                << je.hosts.size() << (je.flakeError ? ": " + *je.flakeError : "") << "\n";
      return 1;
    }
  }
  std::cout << std::fixed << std::setprecision(0) << "untrusted_eval_bench: " << hosts
            << " hosts, median of " << runs << " runs (fresh commit each)\n"
            << "  trusted   nix eval (runner, git+file)          " << median(trustedMs) << " ms\n"
            << "  fork      prepare (tree + inputs into store)   " << median(prepareMs) << " ms\n"
            << "  fork      nix eval (jail, daemon, no network)  " << median(jailMs) << " ms\n"
            << "  fork      total                                "
            << median(prepareMs) + median(jailMs) << " ms\n";
  return 0;
}
