#!/usr/bin/env bash
# Installs everything Switchyard needs to build, test and run its demo on Debian 12 (as root):
# the C++ toolchain and libraries, Nix 2.8 (Debian nix-bin) configured for offline single-user
# use, OpenSSH (for the test hosts), and a static busybox (the fake nixpkgs' only "package").
# Idempotent: a second run changes nothing. SKIP_APT=1 skips apt-get (packages already there).
set -euo pipefail
if [ "$(id -u)" != 0 ]; then
  echo "install-deps.sh: must run as root (apt-get, nix build users, /etc/nix)" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  # build
  cmake ninja-build ccache g++ pkg-config clang-format clang clang-tidy libclang-rt-14-dev
  # libraries (each wrapped by exactly one runner/ folder)
  libgit2-dev libcurl4-openssl-dev libyaml-cpp-dev libssh-dev nlohmann-json3-dev catch2
  libsqlite3-dev libpqxx-dev libssl-dev libcli11-dev libcpp-httplib-dev libkainjow-mustache-dev
  # runtime: nix, ssh test hosts, git
  nix-bin busybox-static openssh-server openssh-client git iproute2 procps ca-certificates
  # deploys that log in as a user other than root and escalate (sudo -n, Colmena targetUser)
  sudo
  # PostgreSQL for the store's tests on both engines (tests/support/postgres_server.h)
  postgresql
  # benchmarks
  wrk
  # the browser test of the web UI (tests/browser: puppeteer-core drives Debian's chromium)
  chromium
)
if [ -z "${SKIP_APT:-}" ]; then
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q
    # --no-install-recommends: nix-bin recommends nix-setup-systemd, which needs systemd as PID 1.
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# npm for the contract tests (Prism against the forges' API descriptions) and the browser test
# (puppeteer-core); each installs its own pinned packages. A machine whose node already
# brings npm (e.g. a nodejs from elsewhere) keeps it.
if [ -z "${SKIP_APT:-}" ] && ! command -v npm >/dev/null; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends nodejs npm
fi

# What nix-setup-systemd's postinst would do: the build users. 32 of them: with only a few,
# parallel builds stall on "waiting for UID to build".
groupadd --force --system nixbld
for n in $(seq 1 32); do
  id "nixbld$n" >/dev/null 2>&1 || useradd --system --comment "Nix build user $n" \
    --home-dir /var/empty --gid nixbld --groups nixbld --no-user-group \
    --shell /usr/sbin/nologin "nixbld$n"
done

# The account pull requests from forks run as (untrusted.user; README "Untrusted
# evaluation"): no home, no shell, no groups but its own, not a nix trusted-user.
id switchyard-untrusted >/dev/null 2>&1 || useradd --system --no-create-home \
  --home-dir /nonexistent --shell /usr/sbin/nologin --comment "Switchyard untrusted code" \
  switchyard-untrusted

mkdir -p /etc/nix
if ! grep -q 'switchyard' /etc/nix/nix.conf 2>/dev/null; then
  cat > /etc/nix/nix.conf <<'CONF'
# written by switchyard scripts/install-deps.sh
experimental-features = nix-command flakes
sandbox = true
build-users-group = nixbld
# offline: never ask cache.nixos.org
substituters =
# a build that finds an output locked by another nix process re-polls every N s (default 5)
build-poll-interval = 1
# the default registry is downloaded on first use of an indirect flake ref
flake-registry = /etc/nix/registry-empty.json
keep-derivations = true
keep-outputs = true
CONF
fi
[ -f /etc/nix/registry-empty.json ] || echo '{"flakes":[],"version":2}' > /etc/nix/registry-empty.json
mkdir -p /run/sshd
echo "install-deps: ok ($(nix --version))"
