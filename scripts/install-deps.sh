#!/usr/bin/env bash
# Installs the Debian packages HarmonyLite needs to build, run and test. Idempotent: when every
# package is already installed it touches nothing (no apt-get update, no network).
set -euo pipefail

PACKAGES=(
  nats-server        # the embedded / test NATS server (2.9.10 on bookworm)
  libnats-dev        # libnats (cnats) 3.4: the broker's NATS client
  libsqlite3-dev     # SQLite C API
  sqlite3            # the reference client the tests write with
  libsystemd-dev     # sd_notify / sd_watchdog_enabled
  libssl-dev         # libnats links OpenSSL
  libzstd-dev        # change-event compression
  zstd               # decompresses upstream HarmonyLite's binary for the interoperability tests
  libcurl4-openssl-dev  # the s3, webdav and sftp snapshot stores (HTTP(S), and SFTP through libssh2)
  pkg-config         # system-library targets resolve flags through it
  systemd            # systemd-analyze verify lints the unit file
  nginx-light        # a real WebDAV server for the webdav snapshot store's tests
  libnginx-mod-http-dav-ext  # its PROPFIND (directory listing)
  openssh-server     # a real sshd for the sftp snapshot store's tests
  curl               # the production guide's `curl ./metrics`, as the tests run it
  openssl            # route TLS: each node makes its route certificate from the cluster secret at start
  libfaketime        # the clock-offset process test runs one node 10 s ahead (LD_PRELOAD); never in production
  prometheus         # promtool checks deploy/monitoring's rules; a test starts a real server on loopback (never as a service)
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# nginx, sshd and prometheus are only test tools: Debian's policy-rc.d hook keeps their packages from starting them as
# services (the tests start their own instances on loopback). An existing hook is left as it is.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" > /dev/null
  $SUDO chmod 755 "$policy"
  trap '$SUDO rm -f "$policy"' EXIT
fi
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
