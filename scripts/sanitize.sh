#!/usr/bin/env bash
# Builds the tests with clang under a sanitizer, in a build directory of its own (ccache and
# the machine-wide build lock, as scripts/build.sh), and runs them. Any report fails the test
# that caused it (no recovery, halt on error).
#
#   asan  AddressSanitizer + UndefinedBehaviorSanitizer + LeakSanitizer, with -Werror and
#         -Wthread-safety: every test binary, the whole suite (build-asan) except the tests of
#         packaging (a .deb of a sanitized binary means nothing) and the browser test (Chromium
#         against the web UI, which the C++ web tests already drive under ASan)
#   tsan  ThreadSanitizer: the daemon, scheduler and store tests (build-tsan), the code where
#         threads share state
#
# usage: scripts/sanitize.sh asan|tsan [ctest args...]   (default ctest args: see below)
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:?usage: scripts/sanitize.sh asan|tsan [ctest args...]}
shift
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/switchyard-ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-12G}  # as scripts/build.sh
mkdir -p "$CCACHE_DIR"
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
here=$PWD
case $kind in
  asan)
    dir=build-asan
    flags=(-DSWITCHYARD_SANITIZE=ON)
    targets=(all)
    default_args=(-E '^(packaging:|browser_console$|test_labels$)')
    ;;
  tsan)
    dir=build-tsan
    flags=(-DSWITCHYARD_TSAN=ON)
    targets=(tests_daemon tests_store)
    default_args=(-R '^tests_(daemon|store):')
    ;;
  *)
    echo "sanitize.sh: asan or tsan, not '$kind'" >&2
    exit 2
    ;;
esac
if [ ! -f "$dir/build.ninja" ]; then
  # a sanitizer makes tests several times slower: a longer per-test timeout
  CXX=clang++ flock /tmp/switchyard-build.lock cmake -S . -B "$dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSWITCHYARD_WERROR=ON -DSWITCHYARD_TEST_TIMEOUT=2400 \
    "${flags[@]}" >/dev/null
fi
start=$(date +%s)
flock /tmp/switchyard-build.lock cmake --build "$dir" -j 2 --target "${targets[@]}"
echo "sanitize $kind: build $(($(date +%s) - start)) s"

# Reports fail the process (and so the test); children of the tests that are ours (the
# switchyard binary) read the same options.
supp=$here/tests/sanitizers
export ASAN_OPTIONS="detect_leaks=1:strict_init_order=1:check_initialization_order=1:detect_stack_use_after_return=1:abort_on_error=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp${TSAN_OPTIONS:+:$TSAN_OPTIONS}"
args=("$@")
[ ${#args[@]} -gt 0 ] || args=("${default_args[@]}")
cd "$dir"
start=$(date +%s)
set +e
ctest -j2 --output-on-failure --no-label-summary "${args[@]}" 2>&1 | tee ctest.log
rc=${PIPESTATUS[0]}
set -e
echo "sanitize $kind: tests $(($(date +%s) - start)) s"
grep -E '^[0-9]+% tests passed' ctest.log | tail -1 || echo "no tests ran"
exit "$rc"
