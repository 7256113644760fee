#!/usr/bin/env bash
# The browser test of the ops console (issue 14): installs what it needs (Debian's chromium
# and sqlite3 with apt-get when root; puppeteer-core from npm into the build directory), runs
# `switchyard demo --serve` (five SSH test hosts, two pushes), then console_test.mjs against
# its daemon. Screenshots: <build dir>/browser-screenshots/; it prints how long the demo and
# the checks took. When chromium or npm cannot be had, prints "SKIPPED: <why>" (CTest reports
# the test as skipped) and exits 0.
#   tests/browser/run.sh <switchyard binary> <build dir>
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$(realpath "${1:?switchyard binary}") build=$(realpath "${2:?build dir}")
work="$build/browser-test"
mkdir -p "$work"
skip() { echo "SKIPPED: $*"; exit 0; }

if ! command -v chromium >/dev/null || ! command -v sqlite3 >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium sqlite3 >"$work/apt.log" 2>&1 ||
      { apt-get update -qq >>"$work/apt.log" 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium sqlite3 >>"$work/apt.log" 2>&1; }
  fi
fi
command -v chromium >/dev/null || skip "no chromium (apt-get install chromium failed: $work/apt.log)"
command -v sqlite3 >/dev/null || skip "no sqlite3"
command -v node >/dev/null && command -v npm >/dev/null || skip "no node/npm"
cp "$here/package.json" "$work/package.json"
if [ ! -d "$work/node_modules/puppeteer-core" ]; then
  (cd "$work" && PUPPETEER_SKIP_DOWNLOAD=1 timeout 180 npm install --no-audit --no-fund --silent \
    >"$work/npm.log" 2>&1) || skip "npm install puppeteer-core failed ($work/npm.log)"
fi
cp "$here/console_test.mjs" "$work/console_test.mjs"

demo="$work/demo"
rm -rf "$demo"
started=$SECONDS
"$bin" demo --dir "$demo" --port 0 --serve >"$work/demo.out" 2>&1 &
demo_pid=$!
stop_demo() { kill -INT "$demo_pid" 2>/dev/null; wait "$demo_pid" 2>/dev/null; }
trap stop_demo EXIT
for _ in $(seq 1 600); do
  grep -q "The daemon keeps running" "$work/demo.out" && break
  kill -0 "$demo_pid" 2>/dev/null || { cat "$work/demo.out"; echo "the demo exited"; exit 1; }
  sleep 0.5
done
grep -q "The daemon keeps running" "$work/demo.out" || { cat "$work/demo.out"; echo "the demo did not finish"; exit 1; }
base=$(grep -o 'daemon at http://[0-9.:]*' "$work/demo.out" | head -1 | sed 's/daemon at //')
echo "demo daemon at $base (ready after $((SECONDS - started)) s)"
# no wait for a probe round: the fleet shows the last deploys until one has run, and the
# drift check waits for the probe itself (fleet.probe_interval: 5s in the demo's config)
checks=$SECONDS
node "$work/console_test.mjs" "$base" "$demo" "$build/browser-screenshots"
status=$?
echo "browser checks took $((SECONDS - checks)) s"
exit $status
