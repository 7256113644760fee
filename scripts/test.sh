#!/usr/bin/env bash
# The README's test command: installs the dependencies (Debian 12, as root), builds, checks
# the formatting and runs every test (unit and integration, with real git, nix and sshd).
# Arguments go to ctest, e.g. `scripts/test.sh -L unit` for the fast run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/check-format.sh
cd build
set +e
ctest -j2 --output-on-failure --no-label-summary "$@" 2>&1 | tee ctest.log
rc=${PIPESTATUS[0]}
set -e
# the summary line last, so a reader (and CI) sees the verdict at the end
grep -E '^[0-9]+% tests passed' ctest.log | tail -1 || echo "no tests ran"
exit "$rc"
