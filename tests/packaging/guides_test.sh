#!/usr/bin/env bash
# Runs the guides in docs/ (CTest, label integration): each guide's ```sh blocks, and its
# hidden ```sh-lab blocks (inside <!-- --> comments: what a person does in a forge's web UI,
# done here by the fake forge), in order, in one shell, in an empty directory, with the built
# switchyard first on PATH. A guide that says a command works must be right.
#
# A guide with a line `<!-- guide-lab: hosts|gitea|github -->` runs against a lab
# (tests/support/guide_lab.cc): the seed's five machines as SSH test hosts with real nix, the
# sample flake's clone, and for gitea/github a fake forge (API + a git repository whose push
# delivers webhooks). Its variables (MACHINES, DEPLOY_KEY, LAB_INFRA, FORGE_URL, FORGE_TOKEN,
# CLONE_URL, ...) are in the guide's environment, which is how the guides' "your values" step
# picks them up; `fake-forge-ui` is on PATH for the sh-lab blocks.
# Usage: guides_test.sh SOURCE_DIR SWITCHYARD_BINARY [GUIDE_LAB_BINARY] [GUIDE.md...]
set -euo pipefail
src=$(cd "$1" && pwd)
bin=$(readlink -f "$2")
lab_bin=${3:+$(readlink -f "$3")}
shift $(($# < 3 ? $# : 3))
guides=("$@")
[ ${#guides[@]} -gt 0 ] || guides=("$src"/docs/*.md)
pass=0
fail=0
for guide in "${guides[@]}"; do
  guide=$(readlink -f "$guide")
  name=${guide#"$src"/}
  start=$(date +%s)
  work=$(mktemp -d /tmp/switchyard-guide.XXXXXX)
  mkdir -p "$work/bin" "$work/home"
  ln -s "$bin" "$work/bin/switchyard"
  ln -s "$src/tests/support/fake_forge_ui.sh" "$work/bin/fake-forge-ui"
  # the fenced blocks opened with exactly ```sh or ```sh-lab, in order
  {
    echo 'trap '\''jobs -p | xargs -r kill 2>/dev/null || true'\'' EXIT'
    awk '/^```sh(-lab)?$/ {on=1; print "# --- block " ++n; next} /^```/ {on=0} on' "$guide"
  } >"$work/guide.sh"
  blocks=$(grep -c '^# --- block' "$work/guide.sh" || true)
  if [ "$blocks" = 0 ]; then
    rm -rf "$work"
    continue
  fi
  lab=$(sed -n 's/^<!-- guide-lab: \([a-z]*\) -->$/\1/p' "$guide" | head -n 1)
  lab_pid=""
  ok=1
  if [ -n "$lab" ]; then
    if [ -z "$lab_bin" ]; then
      echo "FAILED: $name needs the lab: pass guide_lab's path"
      fail=$((fail + 1))
      continue
    fi
    forge=$lab
    [ "$lab" = hosts ] && forge=none
    "$lab_bin" --dir "$work/lab" --forge "$forge" >"$work/lab.log" 2>&1 &
    lab_pid=$!
    for _ in $(seq 600); do
      [ -e "$work/lab/ready" ] && break
      kill -0 "$lab_pid" 2>/dev/null || break
      sleep 0.1
    done
    if [ ! -e "$work/lab/ready" ]; then
      echo "FAILED: $name: the lab did not come up"
      tail -20 "$work/lab.log"
      ok=0
    fi
  fi
  if [ "$ok" = 1 ] && (cd "$work" && {
    [ -z "$lab" ] || . "$work/lab/env"
    PATH="$work/bin:$PATH" HOME="$work/home" bash -euxo pipefail guide.sh
  }) >"$work/log" 2>&1; then
    echo "ok: $name ($blocks blocks, $(($(date +%s) - start)) s${lab:+, lab: $lab})"
    pass=$((pass + 1))
  else
    [ "$ok" = 0 ] || { echo "FAILED: $name"; tail -40 "$work/log"; }
    [ ! -e "$work/lab/forge/deliveries.log" ] || { echo "--- fake forge deliveries:"; cat "$work/lab/forge/deliveries.log"; }
    fail=$((fail + 1))
  fi
  if [ -n "$lab_pid" ]; then
    kill "$lab_pid" 2>/dev/null || true
    wait "$lab_pid" 2>/dev/null || true
  fi
  [ -n "${GUIDES_KEEP:-}" ] && echo "kept: $work" || rm -rf "$work"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
