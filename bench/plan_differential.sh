#!/usr/bin/env bash
# The differential campaign (issue 12): seeded random edits on lab flakes built on the real
# nixpkgs lib and flake-parts, each planned static and exact; prints recall and precision of
# static against Nix's drvPaths (overall, by shape, by edit kind), soundness violations with
# how to reproduce them, and median plan times. Record the numbers in bench/RESULTS.md.
#
#   bench/plan_differential.sh [EDITS [FIRST_SEED]]     (default 288 edits, seed 1000)
#   SWITCHYARD_DIFF_SHAPE=flake-parts  only one shape (genattrs readdir-hosts flake-parts
#                                      self-modules clan-machines colmena-hive)
#   SWITCHYARD_DIFF_VERBOSE=1          every edit, and why static over-reported
# A violation line names shape, seed and edit number: SWITCHYARD_DIFF_SHAPE=<shape>
# bench/plan_differential.sh <edit number> <seed> replays it (24 edits per lab at most).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${SWITCHYARD_NIX_LIBS:-}" ]; then
  for d in ../shared/nix-libs /work/shared/nix-libs; do
    if [ -d "$d/nixpkgs-lib" ]; then SWITCHYARD_NIX_LIBS=$(cd "$d" && pwd); break; fi
  done
fi
: "${SWITCHYARD_NIX_LIBS:?set SWITCHYARD_NIX_LIBS to a directory with nixpkgs-lib/ and flake-parts/}"
export SWITCHYARD_NIX_LIBS
export SWITCHYARD_DIFF_EDITS=${1:-288} SWITCHYARD_DIFF_SEED=${2:-1000}
scripts/build.sh tests_plan_differential >/dev/null
exec build/tests/tests_plan_differential "[.campaign]"
