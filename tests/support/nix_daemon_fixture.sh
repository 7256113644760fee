#!/bin/sh
# CTest fixture (tests/cmake/untrusted.cmake): the nix-daemon the jailed evaluations of
# forks' code talk to. `start` starts one unless one answers already (then it is left
# alone); `stop` stops only the daemon `start` started. Needs root (the daemon builds as
# the nixbld users).
set -eu
pidfile=${TMPDIR:-/tmp}/switchyard-test-nix-daemon.pid
log=${TMPDIR:-/tmp}/switchyard-test-nix-daemon.log
answers() { nix --extra-experimental-features nix-command store ping --store daemon >/dev/null 2>&1; }
case "${1:-}" in
  start)
    if answers; then echo "nix-daemon already answers"; exit 0; fi
    setsid nix-daemon >"$log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    i=0
    while ! answers; do
      i=$((i + 1))
      if [ "$i" -gt 100 ]; then echo "nix-daemon did not start:"; cat "$log"; exit 1; fi
      sleep 0.1
    done
    echo "nix-daemon started (pid $(cat "$pidfile"))"
    ;;
  stop)
    if [ -f "$pidfile" ]; then
      kill "$(cat "$pidfile")" 2>/dev/null || true
      rm -f "$pidfile"
    fi
    ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
