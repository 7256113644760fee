#!/usr/bin/env bash
# Configures and builds Switchyard in ./build with Ninja and ccache (2 jobs: the machines this
# runs on have 2 cores). Extra arguments go to the build (e.g. a target name).
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR=${CCACHE_DIR:-/var/cache/switchyard-ccache}
mkdir -p "$CCACHE_DIR"
[ -f build/build.ninja ] || cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
# one build at a time on this machine (helpers and CI share the two cores)
exec flock /tmp/switchyard-build.lock cmake --build build -j 2 -- "$@"
