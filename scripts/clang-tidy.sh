#!/usr/bin/env bash
# Runs clang-tidy (the checks in .clang-tidy) on the runner's own sources (runner/,
# integrations/; not tests/) with the compile commands of a clang build directory, and fails
# when it reports anything. A file's result is cached under the hash of its preprocessed text,
# its compile flags, .clang-tidy and the clang-tidy version, so an unchanged file (headers
# included) is not checked again: a CI run after a small change checks only what it touched.
#
# usage: scripts/clang-tidy.sh [BUILD_DIR=build-asan] [FILE...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
shift || true
[ -f "$build/compile_commands.json" ] || {
  echo "clang-tidy.sh: no $build/compile_commands.json (configure a clang build first)" >&2
  exit 2
}
cache=${SWITCHYARD_TIDY_CACHE:-/var/cache/switchyard-clang-tidy}
mkdir -p "$cache"
files=("$@")
if [ ${#files[@]} -eq 0 ]; then
  mapfile -t files < <(git ls-files 'runner/*.cc' 'integrations/*.cc')
fi
salt=$( (clang-tidy --version; cat .clang-tidy) | sha256sum | cut -c1-64)
export build cache salt

check_one() {
  local f=$1 cmd key out
  # the compile command of the file, without the output, to preprocess it
  cmd=$(python3 - "$build" "$PWD/$f" <<'EOF'
import json, shlex, sys
build, path = sys.argv[1], sys.argv[2]
for e in json.load(open(build + "/compile_commands.json")):
    if e["file"] == path:
        args = shlex.split(e["command"])
        if "ccache" in args[0]:
            args = args[1:]
        i = args.index("-o")
        del args[i:i + 2]
        print(shlex.join(args))
        break
EOF
)
  if [ -z "$cmd" ]; then
    echo "clang-tidy.sh: $f is not in $build/compile_commands.json" >&2
    return 1
  fi
  key=$( (echo "$salt $cmd"; cd "$build" && eval "$cmd -E -P" 2>/dev/null) | sha256sum | cut -c1-64)
  if [ -f "$cache/$key.ok" ]; then
    return 0
  fi
  if out=$(clang-tidy -p "$build" --quiet "$f" 2>/dev/null) && ! grep -q 'warning:\|error:' <<<"$out"; then
    touch "$cache/$key.ok"
    return 0
  fi
  printf '%s\n' "$out"
  return 1
}
export -f check_one

# two at a time, niced: CI machines have two cores
if printf '%s\n' "${files[@]}" | xargs -P "${SWITCHYARD_TIDY_JOBS:-2}" -I{} nice -n 10 bash -c 'check_one "$@"' _ {}; then
  echo "clang-tidy: ${#files[@]} files, no findings"
else
  echo "clang-tidy: findings above (fix them, or justify a NOLINT(check) on the line)" >&2
  exit 1
fi
