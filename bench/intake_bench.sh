#!/usr/bin/env bash
# Intake benchmark (issue 6): signed post-receive deliveries/s and latency at 64 concurrent
# connections against `switchyard serve`, each delivery committed to SQLite (WAL,
# synchronous=FULL, group commit) before its 202. Also counts the rows afterwards: every 202
# must be a stored delivery.
#
# usage: bench/intake_bench.sh [SECONDS=20] [CONNECTIONS=64] [WRK_THREADS=2] [SERVE_FLAGS...]
# (e.g. --intake-only: no scheduler dispatching the deliveries alongside)
# SWITCHYARD_BENCH_DATABASE=postgresql://… stores into that PostgreSQL database instead of
# SQLite (`database:` in the config; bench/store_intake_bench.sh starts a server for it).
# Needs wrk and a built build/runner/app/switchyard. Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
conns=${2:-64}
wthreads=${3:-2}
shift 3 2>/dev/null || shift $#
serve_flags=("$@")
bin=build/runner/app/switchyard
tmp=$(mktemp -d /tmp/sy-intake-bench.XXXXXX)
server=""
cleanup() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

secret=bench-hook-secret
printf '%s\n' "$secret" > "$tmp/hook.secret"
cat > "$tmp/switchyard.yaml" <<YAML
listen: 127.0.0.1:0
state_dir: $tmp/state
hook_secret_file: $tmp/hook.secret
${SWITCHYARD_BENCH_DATABASE:+database: $SWITCHYARD_BENCH_DATABASE}
repos:
  - name: bench/infra
    path: $tmp/none.git
    deploy_branches: [main]
YAML
"$bin" serve --config "$tmp/switchyard.yaml" "${serve_flags[@]}" > "$tmp/out" 2> "$tmp/err" &
server=$!
for _ in $(seq 50); do grep -q 'listening' "$tmp/out" 2>/dev/null && break; sleep 0.1; done
port=$(sed -n 's/.* port \([0-9]*\)$/\1/p' "$tmp/out")
# A push to a branch that is not a deploy branch: stored, then dispatched as "ignored" by the
# scheduler running alongside (so the dispatcher's writes compete with intake, as in life).
body='{"repo":"bench/infra","ref":"refs/heads/feature","before":"1111111111111111111111111111111111111111","after":"2222222222222222222222222222222222222222","pusher":"bench"}'
sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$secret" | sed 's/^.*= *//')
# Deliveries are told apart by their body (migration 7): one body per request, numbered in
# "after", each with its signature, read by the wrk script (300,000: more than a run sends).
python3 - "$secret" "$tmp/bodies" <<'PY'
import hashlib, hmac, sys
secret, out = sys.argv[1].encode(), open(sys.argv[2], "w")
for i in range(300000):
    b = ('{"repo":"bench/infra","ref":"refs/heads/feature","before":"1111111111111111111111111111111111111111",'
         '"after":"%040x","pusher":"bench"}' % (i + 1))
    out.write(hmac.new(secret, b.encode(), hashlib.sha256).hexdigest() + " " + b + "\n")
PY
tag="b$(date +%s)"
echo "machine: $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1), $(uname -r)"
echo "command: wrk -t$wthreads -c$conns -d${secs}s --latency -s bench/intake_wrk.lua http://127.0.0.1:$port/hooks/git -- BODY SIG $tag"
wrk -t"$wthreads" -c"$conns" -d"${secs}s" --latency -s bench/intake_wrk.lua \
  "http://127.0.0.1:$port/hooks/git" -- "@$tmp/bodies" "$sig" "$tag" | tee "$tmp/wrk.txt" | grep -E 'RESULT|Latency|Req/Sec|requests in'
sleep 1
count() {
  if [ -n "${SWITCHYARD_BENCH_DATABASE:-}" ]; then
    psql -qtA "$SWITCHYARD_BENCH_DATABASE" -c "$1"
  else
    python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])" \
      "$tmp/state/switchyard.db" "$1"
  fi
}
echo "rows stored: $(count "SELECT COUNT(*) FROM deliveries")"
echo "still queued for the scheduler right after the load: $(count "SELECT COUNT(*) FROM deliveries WHERE state='queued'")"
