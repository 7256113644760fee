#!/usr/bin/env bash
# Configures and builds Switchyard in ./build with Ninja and ccache (2 jobs: the machines this
# runs on have 2 cores). Extra arguments go to the build (e.g. a target name).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/switchyard-ccache}
# room for the gcc build and the clang ones (fuzz, ASan, TSan; scripts/sanitize.sh) together
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-12G}
mkdir -p "$CCACHE_DIR"
# paths below the checkout are hashed relative to it, so other clones and worktrees of the
# repository (CI's fresh clone, a second worktree) hit the same cache entries
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$PWD} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-1}
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# one build at a time on this machine (helpers and CI share the two cores)
exec flock /tmp/switchyard-build.lock cmake --build build -j 2 -- "$@"
