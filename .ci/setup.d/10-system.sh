#!/usr/bin/env bash
# System packages the real-server tests need (Debian names). Idempotent: skips what is installed.
set -euo pipefail
packages=(
  openssh-server openssh-client    # a real sshd for the host scripts
  firewalld dbus iproute2 nftables iptables  # a real firewalld inside a test network namespace
  docker.io                        # a real Docker engine (dockerd started by the tests)
  debootstrap                      # builds the local devpi test image (no registry to pull from)
  nginx                            # the real HTTPS proxy the TLS tests run (its service stays off)
  sudo                             # the "SSH user with sudo -n" host-script variants
  ca-certificates
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing system packages (need root to install): ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Installing these must not leave services running on the machine's own network.
for svc in firewalld ssh docker.socket docker nginx; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
# The nginx package enables its service (port 80 on every address): the tests run their own nginx.
if command -v systemctl >/dev/null 2>&1; then
  systemctl disable --quiet nginx 2>/dev/null || true
fi
# Without a running systemd, the package's postinst starts nginx through its init script: stop that
# master by its pid file (only if it really is an nginx master), never by a process-name match.
if [ -s /run/nginx.pid ]; then
  pid=$(cat /run/nginx.pid)
  if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q '^nginx: master'; then
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -TERM "$pid" 2>/dev/null || true
  fi
fi
echo "system packages ready"
