#!/usr/bin/env bash
# Checks for the host-script tests (tests/fixtures/sshd.py, tests/fixtures/firewalld.py): the packages
# come from 10-system.sh; this fails early and clearly if a stock file the fixtures read is gone.
set -euo pipefail
# The fixtures read the stock configurations these packages ship; fail here, clearly, if one is gone.
for f in /usr/share/dbus-1/system.conf /usr/lib/firewalld/zones/public.xml /usr/sbin/sshd /usr/bin/sudo; do
  if [ ! -e "$f" ]; then
    echo "host fixtures: $f is missing (reinstall dbus, firewalld, openssh-server or sudo)" >&2
    exit 1
  fi
done
echo "host fixtures ready"
