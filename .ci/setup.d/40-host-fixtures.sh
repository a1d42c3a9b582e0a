#!/usr/bin/env bash
# Extra system packages for the host-script tests (tests/fixtures/sshd.py, tests/fixtures/firewalld.py):
# sudo, for the "SSH user with sudo -n" variants; the rest is in 10-system.sh. Idempotent.
set -euo pipefail
packages=(sudo)
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
# The fixtures read the stock configurations these packages ship; fail here, clearly, if one is gone.
for f in /usr/share/dbus-1/system.conf /usr/lib/firewalld/zones/public.xml /usr/sbin/sshd /usr/bin/sudo; do
  if [ ! -e "$f" ]; then
    echo "host fixtures: $f is missing (reinstall dbus, firewalld, openssh-server or sudo)" >&2
    exit 1
  fi
done
echo "host fixtures ready"
