#!/usr/bin/env bash
# The README's test command: installs the dependencies (Debian 12, as root), builds, checks
# the formatting and runs every test (unit and integration, with real git, nix and sshd).
# Arguments go to ctest, e.g. `scripts/test.sh -L unit` for the fast run.
set -euo pipefail
cd "$(dirname "$0")/.."
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
scripts/build.sh
scripts/check-format.sh
cd build
set +e
ctest -j2 --output-on-failure --no-label-summary "$@" 2>&1 | tee ctest.log
rc=${PIPESTATUS[0]}
set -e
cd ..
# A short run of every fuzz target (parsers of outside input) on the whole-suite run only.
if [ $# -eq 0 ] && command -v clang++ >/dev/null; then
  if ! scripts/fuzz-smoke.sh "${SWITCHYARD_FUZZ_SECONDS:-10}"; then
    echo "fuzz smoke run failed" >&2
    rc=1
  fi
fi
cd build
# the summary line last, so a reader (and CI) sees the verdict at the end
grep -E '^[0-9]+% tests passed' ctest.log | tail -1 || echo "no tests ran"
exit "$rc"
