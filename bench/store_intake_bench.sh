#!/usr/bin/env bash
# Intake on PostgreSQL vs SQLite in the same run (issue 16): bench/intake_bench.sh against
# `switchyard serve` storing into SQLite (the baseline: WAL, synchronous=FULL) and into a
# local PostgreSQL (Debian's server, initdb'd in a temporary directory as the user
# switchyard-pg, fsync and synchronous_commit on, loopback TCP), alternating, ROUNDS times;
# prints each round's RESULT and the medians of deliveries/s and p99 per engine.
#
# usage: bench/store_intake_bench.sh [ROUNDS=3] [SECONDS=10] [CONNECTIONS=64]
# As root (creates the user switchyard-pg once). Loopback only; stops its server by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-10}
conns=${3:-64}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "no PostgreSQL server binaries (Debian package postgresql)" >&2; exit 2; }
id switchyard-pg >/dev/null 2>&1 ||
  useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin switchyard-pg
dir=$(mktemp -d /tmp/sy-pg-bench.XXXXXX)
chown switchyard-pg "$dir"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
as_pg() { runuser -u switchyard-pg -- "$@"; }
cleanup() {
  as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
  -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=100" start >/dev/null
echo "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (fsync on)"

results=$(mktemp)
for round in $(seq "$rounds"); do
  for engine in sqlite postgresql; do
    url=""
    if [ "$engine" = postgresql ]; then
      "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "bench$round"
      url="postgresql://postgres@127.0.0.1:$port/bench$round"
    fi
    line=$(SWITCHYARD_BENCH_DATABASE=$url bench/intake_bench.sh "$secs" "$conns" 2 | tee /dev/stderr |
      grep '^RESULT')
    echo "$engine $line" | tee -a "$results"
  done
done
echo
python3 - "$results" <<'PY'
import re, statistics, sys
by = {}
for line in open(sys.argv[1]):
    engine = line.split()[0]
    kv = dict(re.findall(r'(\w+)=([\d.]+)', line))
    by.setdefault(engine, []).append((float(kv['rate']), float(kv['p99_ms']), int(kv['other'])))
print("| engine | rounds | deliveries/s (median) | p99 ms (median) | non-202 |")
print("|---|---|---|---|---|")
for engine in ("sqlite", "postgresql"):
    rows = by.get(engine, [])
    if rows:
        print(f"| {engine} | {len(rows)} | {statistics.median(r[0] for r in rows):,.0f} | "
              f"{statistics.median(r[1] for r in rows):.1f} | {sum(r[2] for r in rows)} |")
PY
rm -f "$results"
