#!/usr/bin/env bash
# The README's test command: installs the dependencies (Debian 12, as root), builds, checks
# the formatting and runs every test (unit and integration, with real git, nix and sshd).
# Arguments go to ctest, e.g. `scripts/test.sh -L unit` for the fast run.
#
# The whole run (no arguments; what CI runs) then checks with clang: a short fuzz run of each
# parser of outside input, the whole suite again under ASan+UBSan+LSan (with -Werror and
# -Wthread-safety), the daemon/scheduler/store tests under TSan, and clang-tidy. Each phase
# prints its time ("phase <name>: N s"); bench/RESULTS.md keeps the measured ones.
set -euo pipefail
cd "$(dirname "$0")/.."
phase_start=$(date +%s)
phase() {  # ends the current phase: prints its name and time
  local now
  now=$(date +%s)
  echo "phase $1: $((now - phase_start)) s"
  phase_start=$now
}
# the real Nix libraries the differential tests need (tests/support/lab_flake_gen.h); where
# they are absent those tests report themselves skipped
if [ -z "${SWITCHYARD_NIX_LIBS:-}" ]; then
  for d in ../shared/nix-libs /work/shared/nix-libs; do
    if [ -d "$d/nixpkgs-lib" ] && [ -d "$d/flake-parts" ]; then
      SWITCHYARD_NIX_LIBS=$(cd "$d" && pwd)
      export SWITCHYARD_NIX_LIBS
      break
    fi
  done
fi
scripts/install-deps.sh
phase install
scripts/build.sh
phase build
scripts/check-format.sh
cd build
set +e
ctest -j2 --output-on-failure --no-label-summary "$@" 2>&1 | tee ctest.log
rc=${PIPESTATUS[0]}
set -e
cd ..
phase ctest
# The clang checks, on the whole-suite run only.
if [ $# -eq 0 ] && command -v clang++ >/dev/null; then
  if ! scripts/fuzz-smoke.sh "${SWITCHYARD_FUZZ_SECONDS:-10}"; then
    echo "fuzz smoke run failed" >&2
    rc=1
  fi
  phase fuzz-smoke
fi
# TSan on the daemon, scheduler and store tests runs by default (a few minutes with a warm
# ccache). The suite under ASan+UBSan+LSan and clang-tidy run with SWITCHYARD_SANITIZERS=1: with
# a warm ccache they should fit CI's 30 minutes, which has not been measured on a clean clone
# yet (README "Decisions"; last results in bench/RESULTS.md).
if [ $# -eq 0 ] && [ "${SWITCHYARD_TSAN:-1}" = 1 ] && command -v clang++ >/dev/null; then
  if ! scripts/sanitize.sh tsan; then
    echo "the daemon, scheduler and store tests under TSan failed" >&2
    rc=1
  fi
  phase tsan
fi
if [ $# -eq 0 ] && [ "${SWITCHYARD_SANITIZERS:-0}" = 1 ] && command -v clang++ >/dev/null; then
  if ! scripts/sanitize.sh asan; then
    echo "the suite under ASan+UBSan+LSan failed" >&2
    rc=1
  fi
  phase asan
  if ! scripts/clang-tidy.sh build-asan; then
    rc=1
  fi
  phase clang-tidy
fi
cd build
# the summary line last, so a reader (and CI) sees the verdict at the end
grep -E '^[0-9]+% tests passed' ctest.log | tail -1 || echo "no tests ran"
exit "$rc"
