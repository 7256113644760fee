// Reading `nix store diff-closures` output (runner/report/closure_diff.h): version changes,
// added and removed packages, size-only lines, several versions, ε, and lines it does not
// know. The recorded output is what Nix 2.8 printed for two real toplevels (the colour codes
// removed by NixCli::diffClosures).
#include "runner/report/closure_diff.h"

#include <catch2/catch.hpp>

using namespace runner::report;

namespace {

// Nix 2.8 between the lab's toplevels before and after a hello bump, plus lines of the
// shapes the Nix manual shows (several versions, ε, size only, added/removed with size).
const char* kRecorded =
    "data: +47.9 KiB\n"
    "hello: 2.12 \xe2\x86\x92 2.13\n"
    "kdeconnect: 20.08.2 \xe2\x86\x92 \xe2\x88\x85, -6597.8 KiB\n"
    "kdeconnect-kde: \xe2\x88\x85 \xe2\x86\x92 20.08.2, +6599.7 KiB\n"
    "openssl: 1.1.1w, 3.0.13 \xe2\x86\x92 3.0.14, +12.5 KiB\n"
    "etc: \xce\xb5 \xe2\x86\x92 24.05\n"
    "this is not a diff line\n"
    "\n";

}  // namespace

TEST_CASE("closure diff: every line shape of diff-closures is read", "[unit][report]") {
  ClosureDiff d = parseDiffClosures(kRecorded);
  REQUIRE(d.changes.size() == 6);
  CHECK(d.changes[0] == PackageChange{"data", {}, {}, false, false, 47.9});
  CHECK(d.changes[1] == PackageChange{"hello", {"2.12"}, {"2.13"}, false, false, std::nullopt});
  CHECK(d.changes[2] == PackageChange{"kdeconnect", {"20.08.2"}, {}, false, true, -6597.8});
  CHECK(d.changes[3] == PackageChange{"kdeconnect-kde", {}, {"20.08.2"}, true, false, 6599.7});
  CHECK(d.changes[4] ==
        PackageChange{"openssl", {"1.1.1w", "3.0.13"}, {"3.0.14"}, false, false, 12.5});
  CHECK(d.changes[5] == PackageChange{"etc", {""}, {"24.05"}, false, false, std::nullopt});
  CHECK(d.versionChanges() == 3);
  CHECK(d.added() == 1);
  CHECK(d.removed() == 1);
  CHECK(d.sizeDeltaKiB == Approx(47.9 - 6597.8 + 6599.7 + 12.5));
}

TEST_CASE("closure diff: no output means no changes", "[unit][report]") {
  ClosureDiff d = parseDiffClosures("");
  CHECK(d.changes.empty());
  CHECK(d.sizeDeltaKiB == 0);
}

TEST_CASE("closure diff: sizes in binary units with a sign", "[unit][report]") {
  CHECK(formatKiB(47.9) == "+47.9 KiB");
  CHECK(formatKiB(-6597.8) == "-6.4 MiB");
  CHECK(formatKiB(3.5 * 1024 * 1024) == "+3.5 GiB");
  CHECK(formatKiB(0) == "+0.0 KiB");
}
