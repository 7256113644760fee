#!/usr/bin/env bash
# Runs every ```sh block of the guides in docs/ (CTest, label integration): each guide's blocks
# in order, in one shell, in an empty directory, with the built switchyard first on PATH. A
# guide that says a command works must be right.
# Usage: guides_test.sh SOURCE_DIR SWITCHYARD_BINARY
set -euo pipefail
src=$(cd "$1" && pwd)
bin=$(readlink -f "$2")
pass=0
fail=0
for guide in "$src"/docs/*.md; do
  work=$(mktemp -d /tmp/switchyard-guide.XXXXXX)
  mkdir -p "$work/bin"
  ln -s "$bin" "$work/bin/switchyard"
  # the fenced blocks opened with exactly ```sh, in order
  awk '/^```sh$/ {on=1; print "# --- block " ++n; next} /^```/ {on=0} on' "$guide" >"$work/guide.sh"
  blocks=$(grep -c '^# --- block' "$work/guide.sh" || true)
  if [ "$blocks" = 0 ]; then
    rm -rf "$work"
    continue
  fi
  if (cd "$work" && PATH="$work/bin:$PATH" HOME="$work" bash -euxo pipefail guide.sh) \
    >"$work/log" 2>&1; then
    echo "ok: ${guide#"$src"/} ($blocks blocks)"
    pass=$((pass + 1))
  else
    echo "FAILED: ${guide#"$src"/}"
    tail -30 "$work/log"
    fail=$((fail + 1))
  fi
  rm -rf "$work"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
