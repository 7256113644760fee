#!/usr/bin/env bash
# The Debian package end to end (CTest, label integration, as root): CPack packages this build
# tree (no second compile), dpkg -i installs it on this machine, the unit passes
# `systemd-analyze verify`, the installed config passes check-config once its secrets are in
# place, and dpkg -r / --purge leave the state alone. Everything the test adds to the machine
# (the package, the accounts, /etc/switchyard, /var/lib/switchyard) is removed at the end,
# unless it was there before.
# Usage: deb_test.sh BUILD_DIR
set -euo pipefail
build=$(cd "$1" && pwd)
pass=0
fail=0
ok() { echo "ok: $*"; pass=$((pass + 1)); }
bad() { echo "FAILED: $*"; fail=$((fail + 1)); }
check() { # check DESCRIPTION COMMAND...
  local what=$1
  shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}

if [ "$(id -u)" != 0 ]; then
  echo "SKIPPED: the Debian package test installs a package: it needs root"
  exit 0
fi
if dpkg-query -W -f='${Status}' switchyard 2>/dev/null | grep -q "ok installed"; then
  echo "SKIPPED: a switchyard package is already installed on this machine; not touching it"
  exit 0
fi
had_state=$([ -e /var/lib/switchyard ] && echo 1 || echo 0)
had_etc=$([ -e /etc/switchyard ] && echo 1 || echo 0)
had_user=$(getent passwd switchyard >/dev/null && echo 1 || echo 0)
had_untrusted=$(getent passwd switchyard-untrusted >/dev/null && echo 1 || echo 0)
work=$(mktemp -d /tmp/switchyard-deb.XXXXXX)
cleanup() {
  dpkg --purge switchyard >/dev/null 2>&1 || true
  [ "$had_state" = 1 ] || rm -rf /var/lib/switchyard /var/cache/switchyard
  [ "$had_etc" = 1 ] || rm -rf /etc/switchyard
  [ "$had_user" = 1 ] || userdel switchyard >/dev/null 2>&1 || true
  [ "$had_untrusted" = 1 ] || userdel switchyard-untrusted >/dev/null 2>&1 || true
  getent group switchyard >/dev/null && [ "$had_user" = 0 ] && groupdel switchyard 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# 1. the package, from what is built
if ! cpack -G DEB -B "$work" --config "$build/CPackConfig.cmake" >"$work/cpack.log" 2>&1; then
  cat "$work/cpack.log"
  echo "FAILED: cpack"
  exit 1
fi
deb=$(ls "$work"/switchyard_*.deb)
dpkg-deb -c "$deb" | awk '{print $6}' | sed 's|^\./|/|' >"$work/files"
for f in /usr/bin/switchyard /usr/lib/systemd/system/switchyard.service \
  /usr/lib/sysusers.d/switchyard.conf /usr/lib/tmpfiles.d/switchyard.conf \
  /etc/switchyard/switchyard.yaml /usr/share/switchyard/hooks/post-receive \
  /usr/share/switchyard/hooks/pre-push /usr/share/man/man1/switchyard.1.gz; do
  check "package has $f" grep -qx "$f" "$work/files"
done
check "conffile is declared" sh -c "dpkg-deb -e '$deb' '$work/ctl' && grep -qx /etc/switchyard/switchyard.yaml '$work/ctl/conffiles'"
check "depends on nix, git and ssh" sh -c "dpkg-deb -f '$deb' Depends | grep -q 'nix-bin | nix, git, openssh-client'"

# 2. installed
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log"; bad "dpkg -i"; exit 1; }
ok "dpkg -i"
check "switchyard --version" sh -c "/usr/bin/switchyard --version | grep -q 'switchyard 0.1.0'"
check "system user switchyard" getent passwd switchyard
check "account for forks" getent passwd switchyard-untrusted
check "state dir 0700 switchyard" sh -c '[ "$(stat -c "%a %U" /var/lib/switchyard)" = "700 switchyard" ]'
check "secrets dir 0700 switchyard" sh -c '[ "$(stat -c "%a %U" /etc/switchyard/secrets)" = "700 switchyard" ]'
check "hooks are executable" test -x /usr/share/switchyard/hooks/post-receive
check "man page names the commands" sh -c "zcat /usr/share/man/man1/switchyard.1.gz | grep -q '^.SS check\\\\-config'"
if command -v man >/dev/null 2>&1; then
  check "man renders it" sh -c "MANWIDTH=100 man -l /usr/share/man/man1/switchyard.1.gz 2>&1 | grep -q 'github-app-manifest'"
fi

# 3. the unit
if command -v systemd-analyze >/dev/null 2>&1; then
  if systemd-analyze verify /usr/lib/systemd/system/switchyard.service >"$work/verify.log" 2>&1; then
    ok "systemd-analyze verify"
  else
    cat "$work/verify.log"
    bad "systemd-analyze verify"
  fi
else
  echo "SKIPPED: systemd-analyze verify (systemd-analyze is not installed)"
fi

# 4. the config: valid but missing its secrets (exit 1), then usable (exit 0)
set +e
/usr/bin/switchyard check-config /etc/switchyard/switchyard.yaml >"$work/cc1.log" 2>&1
rc=$?
set -e
check "check-config before the secrets: exit 1 (got $rc)" [ "$rc" = 1 ]
check "it names the missing secret" grep -q "/etc/switchyard/secrets/gitea-token" "$work/cc1.log"
for s in gitea-token gitea-hook deploy_ed25519; do
  printf 'not-a-real-secret-%s\n' "$s" >"/etc/switchyard/secrets/$s"
  chown switchyard: "/etc/switchyard/secrets/$s"
  chmod 600 "/etc/switchyard/secrets/$s"
done
echo "10.20.0.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIExampleExampleExampleExampleExampleEx" \
  >/etc/switchyard/known_hosts
if /usr/bin/switchyard check-config /etc/switchyard/switchyard.yaml >"$work/cc2.log" 2>&1; then
  ok "check-config with the secrets in place"
else
  cat "$work/cc2.log"
  bad "check-config with the secrets in place"
fi

# 5. removal keeps the state (and the edited conffile); purge keeps the state too
echo "run 1" >/var/lib/switchyard/marker
dpkg -r switchyard >"$work/rm.log" 2>&1 || { cat "$work/rm.log"; bad "dpkg -r"; }
check "dpkg -r removed the binary" test ! -e /usr/bin/switchyard
check "dpkg -r left the state" grep -qx "run 1" /var/lib/switchyard/marker
check "dpkg -r left the config" test -f /etc/switchyard/switchyard.yaml
dpkg --purge switchyard >"$work/purge.log" 2>&1 || { cat "$work/purge.log"; bad "dpkg --purge"; }
check "purge removed the conffile" test ! -e /etc/switchyard/switchyard.yaml
check "purge left the state" grep -qx "run 1" /var/lib/switchyard/marker

echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
