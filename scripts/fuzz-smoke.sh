#!/usr/bin/env bash
# Runs every libFuzzer target (tests/fuzz/*_fuzz.cc) briefly (default 20 s each, at most 60, two
# targets at a time):
# a smoke test for CI and for a change to a parser. Builds the targets with clang in
# ./build-fuzz (-DSWITCHYARD_FUZZ=ON) first. Seeds: tests/fuzz/seeds/<name> (<name>_fuzz) when it exists,
# else the test data the target reads (see seeds_of). Exits non-zero when a target crashes;
# the input is kept under build-fuzz/artifacts/. Longer campaigns: tests/fuzz/README.md.
#
# usage: scripts/fuzz-smoke.sh [SECONDS_PER_TARGET=20] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
shift || true
[ "$secs" -le 60 ] || { echo "fuzz-smoke: at most 60 s per target" >&2; exit 2; }
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in tests/fuzz/*_fuzz.cc; do targets+=("$(basename "$f" .cc)"); done
fi
seeds_of() {
  if [ -d "tests/fuzz/seeds/${1%_fuzz}" ]; then echo "tests/fuzz/seeds/${1%_fuzz}"; return; fi
  case $1 in
    parse_fuzz) echo tests/data/nix ;;
    webhook_fuzz) echo tests/data/webhooks ;;
    config_fuzz) echo templates ;;
    *) echo tests/data ;;
  esac
}
if [ ! -f build-fuzz/build.ninja ]; then
  CXX=clang++ flock /tmp/switchyard-build.lock \
    cmake -S . -B build-fuzz -G Ninja -DSWITCHYARD_FUZZ=ON -DSWITCHYARD_TESTS=OFF >/dev/null
fi
flock /tmp/switchyard-build.lock cmake --build build-fuzz -j 2 --target "${targets[@]}"
mkdir -p build-fuzz/artifacts
# one target: its corpus, then the run; prints its stats, fails when the target crashed
run_one() {
  local t=$1 seeds corpus
  seeds=$(seeds_of "$t")
  corpus=build-fuzz/corpus/$t
  mkdir -p "$corpus" "$corpus.seed"
  find "$seeds" -type f -size -64k -exec cp --backup=numbered {} "$corpus.seed/" \; 2>/dev/null || true
  if ! nice -n 10 "build-fuzz/tests/fuzz/$t" -max_total_time="$secs" -timeout=30 \
      -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
      -artifact_prefix="build-fuzz/artifacts/$t-" "$corpus" "$corpus.seed" 2>"build-fuzz/$t.log"; then
    echo "!! $t failed; see build-fuzz/$t.log and build-fuzz/artifacts/" >&2
    tail -30 "build-fuzz/$t.log" >&2
    return 1
  fi
  echo "== $t: ${secs} s, $(grep -E '^stat::number_of_executed_units' "build-fuzz/$t.log" | tr -s ' ')"
}
# two targets at a time (a fuzzer uses one core; CI machines have two)
status=0
running=0
for t in "${targets[@]}"; do
  if [ "$running" -ge "${SWITCHYARD_FUZZ_JOBS:-2}" ]; then
    wait -n || status=1
    running=$((running - 1))
  fi
  run_one "$t" &
  running=$((running + 1))
done
while [ "$running" -gt 0 ]; do
  wait -n || status=1
  running=$((running - 1))
done
exit $status
