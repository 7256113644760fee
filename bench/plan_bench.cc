// Benchmarks for planning and building on generated lab flakes (never timed assertions; the
// numbers go to bench/RESULTS.md with the command that made them). Subcommands:
//
//   plan_bench eval  [--hosts N] [--weight W] [--runs R]
//       drvPath evaluation of every host: one `nix eval` process vs the hosts split across
//       2 and 4 processes, each run on a fresh commit (nothing cached by Nix)
//   plan_bench build [--hosts N] [--runs R]
//       one `nix build` for all toplevels vs one `nix build` per host (fresh derivations)
//   plan_bench plan  [--hosts N] [--weight W] [--runs R]
//       `auto` (static, then Nix for the hosts static marks affected) vs `exact` over every
//       host, for four kinds of change: one shared module, one host, a nixpkgs lock bump that
//       changes hello (the hosts importing "web"), a README edit. No drvPath cache (every run
//       evaluates), a fresh commit pair per run.
//
// Runs real nix in temp dirs; medians over R runs.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "runner/core/text.h"
#include "runner/git/repository.h"
#include "runner/lab/lab.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/plan/exact_planner.h"
#include "runner/plan/static_planner.h"

using namespace runner;
using lab::InfraFlake;
using lab::Lab;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::string mode;
  int hosts = 20;
  long weight = 1000000;
  int runs = 5;
};

Args parseArgs(int argc, char** argv) {
  Args a;
  if (argc > 1) a.mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--hosts")
      a.hosts = std::stoi(v);
    else if (k == "--weight")
      a.weight = std::stol(v);
    else if (k == "--runs")
      a.runs = std::stoi(v);
    else
      throw std::runtime_error("unknown option " + k);
  }
  return a;
}

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  if (v.empty()) return 0;
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

int benchEval(const Args& a) {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-bench");
  auto lab = Lab::create(procs, tmp.path(), {.hosts = lab::numberedHosts(a.hosts, a.weight)});
  nix::NixCli nix(procs);
  std::map<int, std::vector<double>> times;
  std::cout << "eval: " << a.hosts << " hosts, evalWeight " << a.weight << ", " << a.runs
            << " runs (fresh commit each)\n";
  for (int run = 0; run < a.runs; ++run) {
    for (int p : {1, 2, 4}) {
      std::string rev = lab.infra.commentOnly("README.md");
      auto t0 = Clock::now();
      auto e = nix.evalDrvPaths(nix::gitFlakeRef(lab.infra.path(), rev), std::nullopt,
                                {.processes = p, .fallbackWorkers = 2});
      times[p].push_back(ms(Clock::now() - t0));
      if (e.hosts.size() != static_cast<size_t>(a.hosts) || e.flakeError)
        throw std::runtime_error("evaluation failed");
    }
  }
  std::cout << "| processes | median ms | min | max |\n|---|---|---|---|\n";
  for (auto& [p, v] : times)
    std::cout << "| " << p << " | " << fmt(median(v)) << " | "
              << fmt(*std::min_element(v.begin(), v.end())) << " | "
              << fmt(*std::max_element(v.begin(), v.end())) << " |\n";
  return 0;
}

int benchBuild(const Args& a) {
  os::PosixProcessRunner procs;
  os::TempDir tmp("sy-bench");
  auto lab = Lab::create(procs, tmp.path(), {.hosts = lab::numberedHosts(a.hosts)});
  nix::NixCli nix(procs);
  std::vector<double> together, perHost;
  std::cout << "build: " << a.hosts << " hosts, " << a.runs
            << " runs (every toplevel new each time: modules/base.nix changed)\n";
  for (int run = 0; run < a.runs; ++run) {
    for (bool one : {true, false}) {
      std::string rev = lab.infra.changeModule("base");
      auto e = nix.evalDrvPaths(nix::gitFlakeRef(lab.infra.path(), rev), std::nullopt);
      std::vector<std::string> drvs;
      for (auto& [h, v] : e.hosts) drvs.push_back(v.value->get<std::string>());
      auto t0 = Clock::now();
      if (one) {
        if (!nix.build({.drvPaths = drvs}).process.ok()) throw std::runtime_error("build failed");
        together.push_back(ms(Clock::now() - t0));
      } else {
        for (const auto& d : drvs)
          if (!nix.build({.drvPaths = {d}}).process.ok()) throw std::runtime_error("build failed");
        perHost.push_back(ms(Clock::now() - t0));
      }
    }
  }
  std::cout << "| shape | median ms | min | max |\n|---|---|---|---|\n";
  for (auto& [name, v] : std::map<std::string, std::vector<double>>{
           {"one nix build, all toplevels", together}, {"one nix build per host", perHost}})
    std::cout << "| " << name << " | " << fmt(median(v)) << " | "
              << fmt(*std::min_element(v.begin(), v.end())) << " | "
              << fmt(*std::max_element(v.begin(), v.end())) << " |\n";
  return 0;
}

// Counts nix processes (pass-through).
class Counting final : public ProcessRunner {
 public:
  explicit Counting(ProcessRunner& inner) : inner_(inner) {}
  RunResult run(const RunOptions& o) override {
    if (o.program == "nix") ++nix;
    return inner_.run(o);
  }
  std::atomic<int> nix{0};

 private:
  ProcessRunner& inner_;
};

int benchPlan(const Args& a) {
  os::PosixProcessRunner real;
  Counting procs(real);
  os::TempDir tmp("sy-bench");
  auto lab = Lab::create(real, tmp.path(), {.hosts = lab::numberedHosts(a.hosts, a.weight)});
  auto repo = git::Repository::open(lab.infra.path());
  struct Cell {
    std::vector<double> ms, evals, procs, affected;
  };
  std::map<std::string, std::map<std::string, Cell>> cells;  // change -> mode -> numbers
  const std::vector<std::string> kinds = {"one module (web)", "one host", "nixpkgs bump (hello)",
                                          "README only"};
  int helloMinor = 12;
  std::cout << "plan: " << a.hosts << " hosts, evalWeight " << a.weight << ", " << a.runs
            << " runs per change\n";
  for (int run = 0; run < a.runs; ++run) {
    for (const auto& kind : kinds) {
      std::string from = lab.infra.head(), to;
      if (kind == "one module (web)") {
        to = lab.infra.changeModule("web");
      } else if (kind == "one host") {
        to = lab.infra.changeHost("host05");
      } else if (kind == "nixpkgs bump (hello)") {
        lab.nixpkgs.setHelloVersion("2." + std::to_string(++helloMinor));
        to = lab.infra.updateNixpkgs();
      } else {
        to = lab.infra.readmeOnly();
      }
      for (const char* mode : {"auto", "exact"}) {
        nix::NixCli nix(procs);  // fresh: no metadata cached between runs
        procs.nix = 0;
        auto t0 = Clock::now();
        Plan p = std::string(mode) == "auto"
                     ? plan::planAuto(*repo, nix, plan::planStatic(*repo, from, to), {})
                     : plan::planExact(*repo, nix, from, to, {});
        double elapsed = ms(Clock::now() - t0);
        int evals = 0;
        for (const auto& h : p.hosts) evals += (h.oldDrv ? 1 : 0) + (h.newDrv ? 1 : 0);
        Cell& c = cells[kind][mode];
        c.ms.push_back(elapsed);
        c.evals.push_back(evals);
        c.procs.push_back(procs.nix);
        c.affected.push_back(static_cast<double>(p.affectedHosts().size()));
      }
    }
  }
  std::cout << "| change | mode | hosts affected | host evaluations | nix processes | median ms "
               "| min | max |\n|---|---|---|---|---|---|---|---|\n";
  for (const auto& kind : kinds)
    for (const char* mode : {"auto", "exact"}) {
      const Cell& c = cells[kind][mode];
      std::cout << "| " << kind << " | " << mode << " | " << fmt(median(c.affected)) << " | "
                << fmt(median(c.evals)) << " | " << fmt(median(c.procs)) << " | "
                << fmt(median(c.ms)) << " | " << fmt(*std::min_element(c.ms.begin(), c.ms.end()))
                << " | " << fmt(*std::max_element(c.ms.begin(), c.ms.end())) << " |\n";
    }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parseArgs(argc, argv);
    if (a.mode == "eval") return benchEval(a);
    if (a.mode == "build") return benchBuild(a);
    if (a.mode == "plan") return benchPlan(a);
    std::cerr << "usage: plan_bench eval|build|plan [--hosts N] [--weight W] [--runs R]\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "plan_bench: " << e.what() << "\n";
    return 1;
  }
}
