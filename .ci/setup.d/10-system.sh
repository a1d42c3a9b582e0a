#!/usr/bin/env bash
# System packages the real-server tests need (Debian names). Idempotent: skips what is installed.
set -euo pipefail
packages=(
  openssh-server openssh-client    # a real sshd for the host scripts
  firewalld dbus iproute2 nftables iptables  # a real firewalld inside a test network namespace
  docker.io                        # a real Docker engine (dockerd started by the tests)
  debootstrap                      # builds the local devpi test image (no registry to pull from)
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
for svc in firewalld ssh docker.socket docker; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
echo "system packages ready"
