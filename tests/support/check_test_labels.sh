#!/usr/bin/env bash
# Fails when a test binary holds a test case that no CTest label selects. CTest registers the
# cases of each switchyard_test binary by tag, one label per tag (tests/CMakeLists.txt), so a
# case tagged only [ssh][lab] would never run, silently. Hidden cases ([.]) are left out.
#
# usage: check_test_labels.sh "LABEL;LABEL" BINARY...
set -euo pipefail
IFS=';' read -r -a labels <<<"$1"
shift
spec=$(printf '[%s],' "${labels[@]}")
spec=${spec%,}
status=0
for bin in "$@"; do
  # Catch2 2 returns the number of cases listed as the exit status
  all=$("$bin" --list-test-names-only | sed '/^$/d' | sort || true)
  selected=$("$bin" --list-test-names-only "$spec" | sed '/^$/d' | sort || true)
  missing=$(comm -23 <(printf '%s\n' "$all") <(printf '%s\n' "$selected"))
  if [ -n "$missing" ]; then
    echo "$(basename "$bin"): test cases without any of the tags $spec (CTest never runs them):"
    printf '%s\n' "$missing" | sed 's/^/  /'
    status=1
  else
    echo "$(basename "$bin"): $(printf '%s\n' "$all" | grep -c . || true) test cases, all labelled"
  fi
done
exit $status
