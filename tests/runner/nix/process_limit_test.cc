// One budget for Nix processes (runner/nix/process_limit.h, issue 13): a fake `nix` counts how
// many of its processes run at once (a counter file under flock), so the bound is checked on
// real processes, across several NixCli objects and threads.
#include "runner/nix/process_limit.h"

#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"

using namespace runner;
namespace fs = std::filesystem;

namespace {

// A `nix` that records, per kind (build or eval), the most of its processes alive at once,
// stays alive half a second, and prints what NixCli expects.
struct CountingNix {
  os::TempDir dir{"sy-nix-count"};
  fs::path program = dir.path() / "nix";

  CountingNix() {
    const std::string d = dir.path().string();
    os::writeFileAtomic(program, R"SH(#!/bin/sh
d=')SH" + d + R"SH('
kind=eval
for a in "$@"; do [ "$a" = build ] && kind=build; done
( flock 9
  n=$(( $(cat "$d/$kind.now" 2>/dev/null || echo 0) + 1 ))
  echo $n > "$d/$kind.now"
  m=$(cat "$d/$kind.max" 2>/dev/null || echo 0)
  [ $n -gt $m ] && echo $n > "$d/$kind.max"
) 9> "$d/lock"
sleep 0.5
( flock 9
  echo $(( $(cat "$d/$kind.now") - 1 )) > "$d/$kind.now"
) 9> "$d/lock"
if [ $kind = build ]; then echo '[]'; else echo '["web1"]'; fi
)SH",
                        fs::perms::owner_all);
  }
  int most(const std::string& kind) const {
    auto text = os::readFileIfExists(dir.path() / (kind + ".max"));
    return text ? std::stoi(std::string(trim(*text))) : 0;
  }
};

// `evals` threads asking for host names and `builds` threads building, at once, half of each
// through `a` and half through `b`.
void runAtOnce(nix::NixCli& a, nix::NixCli& b, int evals, int builds) {
  std::vector<std::thread> threads;
  for (int i = 0; i < evals; ++i)
    threads.emplace_back([&, i] { (i % 2 ? a : b).hostNames("git+file:///nowhere"); });
  for (int i = 0; i < builds; ++i)
    threads.emplace_back([&, i] {
      nix::BuildRequest rq;
      rq.drvPaths = {"/nix/store/" + std::string(32, 'a') + "-x.drv"};
      (i % 2 ? a : b).build(rq);
    });
  for (auto& t : threads) t.join();
}

}  // namespace

TEST_CASE("one process limit bounds nix processes across NixCli objects and threads",
          "[unit][nix]") {
  CountingNix fake;
  os::PosixProcessRunner procs;
  nix::NixCliOptions o;
  o.nix = fake.program.string();

  SECTION("without a limit, six callers run six evaluations at once (the counter sees them)") {
    nix::NixCli a(procs, o), b(procs, o);
    runAtOnce(a, b, 6, 0);
    CHECK(fake.most("eval") > 2);
  }
  SECTION("with evals 2 and builds 1, never more than that, whoever starts them") {
    nix::ProcessLimit limit(2, 1);
    o.limit = &limit;
    nix::NixCli a(procs, o);
    // the fetcher's options are derived from the same base and keep its limit
    nix::NixCli b(procs, nix::credentiallessNixOptions(o, fake.dir.path() / "home"));
    runAtOnce(a, b, 6, 3);
    CHECK(fake.most("eval") <= 2);
    CHECK(fake.most("build") == 1);
    CHECK(limit.peak(nix::ProcessLimit::Kind::Eval) == 2);
    CHECK(limit.running(nix::ProcessLimit::Kind::Eval) == 0);
    CHECK(limit.running(nix::ProcessLimit::Kind::Build) == 0);
  }
}
