#!/usr/bin/env bash
# The README's "run the main job" command: installs the dependencies (Debian 12, as root),
# builds Switchyard, and runs `switchyard demo` on this machine (no forge, no network).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh switchyard
exec build/runner/app/switchyard demo "$@"
