// Closure diffs from real Nix (NixCli::diffClosures through NixClosureDiffer): two tiny
// "toplevels" built in the sandbox with busybox, the second with hello bumped from 2.12 to
// 2.13 and a data file grown by ~48 KiB; Nix's colour codes removed, the lines parsed, the
// answer cached, and a path that is not in the store answered with Nix's message.
#include <catch2/catch.hpp>

#include "runner/core/text.h"
#include "runner/nix/nix_cli.h"
#include "runner/os/files.h"
#include "runner/os/process.h"
#include "runner/report/closure_diff.h"
#include "tests/runner/nix/counting_process_runner.h"
#include "tests/support/run.h"

namespace fs = std::filesystem;

namespace {

// A "system" whose closure holds hello-<version> and data-1.0 (1000 or 50000 bytes).
constexpr const char* kToplevel = R"NIX({ helloVersion, bigData }:
let
  busybox = builtins.path { path = ./tools; name = "busybox-1.35.0"; };
  mk = name: script: derivation {
    inherit name;
    system = builtins.currentSystem;
    builder = "${busybox}/busybox";
    args = [ "sh" "-e" "-c" script ];
  };
  bb = "${busybox}/busybox";
  hello = mk "hello-${helloVersion}" "${bb} mkdir -p $out/bin; echo hello ${helloVersion} > $out/bin/hello";
  data = mk "data-1.0" "${bb} head -c ${if bigData then "50000" else "1000"} /dev/zero > $out";
in mk "nixos-system-web1-24.05" "${bb} mkdir -p $out; echo ${hello} ${data} > $out/refs"
)NIX";

std::string build(const fs::path& dir, const std::string& version, bool big) {
  return tests::runOk("nix-build",
                      {(dir / "toplevel.nix").string(), "--no-out-link", "--argstr", "helloVersion",
                       version, "--arg", "bigData", big ? "true" : "false"});
}

}  // namespace

TEST_CASE("closure diff with real Nix: a version bump and a size change between two toplevels",
          "[integration][report][nix]") {
  runner::os::TempDir dir("sy-closure");
  fs::create_directories(dir.path() / "tools");
  fs::copy_file("/bin/busybox", dir.path() / "tools" / "busybox");
  runner::os::writeFileAtomic(dir.path() / "toplevel.nix", kToplevel);
  const std::string before = build(dir.path(), "2.12", false);
  const std::string after = build(dir.path(), "2.13", true);
  REQUIRE(runner::startsWith(before, "/nix/store/"));
  REQUIRE(before != after);

  runner::os::PosixProcessRunner procs;
  tests::CountingProcessRunner counting(procs);
  runner::nix::NixCli nix(counting);
  std::string text, error;
  REQUIRE(nix.diffClosures(before, after, text, &error));
  CHECK(text.find('\x1b') == std::string::npos);  // Nix colours the sizes even into a pipe
  CHECK(text == "data: +47.9 KiB\nhello: 2.12 \xe2\x86\x92 2.13\n");

  runner::report::NixClosureDiffer differ(nix);
  auto d = differ.diff(before, after, &error);
  REQUIRE(d);
  REQUIRE(d->changes.size() == 2);
  CHECK(d->changes[0] == runner::report::PackageChange{"data", {}, {}, false, false, 47.9});
  CHECK(d->changes[1] ==
        runner::report::PackageChange{"hello", {"2.12"}, {"2.13"}, false, false, std::nullopt});
  const int processes = counting.count("nix");
  CHECK(differ.diff(before, after, &error));  // cached: no second process
  CHECK(counting.count("nix") == processes);

  const std::string missing = "/nix/store/00000000000000000000000000000000-nixos-system-gone";
  CHECK_FALSE(differ.diff(missing, after, &error));
  CHECK(error.find("00000000000000000000000000000000-nixos-system-gone") != std::string::npos);
}
