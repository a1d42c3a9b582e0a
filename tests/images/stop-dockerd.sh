#!/usr/bin/env bash
# Stop the dockerd that start-dockerd.sh started (pid given, or read from its state file) and remove
# the bridge if start-dockerd.sh created it. Never touches an engine it did not start.
set -euo pipefail

EXEC_ROOT=${DEVPI_TEST_DOCKER_EXEC_ROOT:-/run/devpi-registry-tests-docker}
STATE="$EXEC_ROOT.state"

pid=""
bridge=""
bridge_created=0
if [ -f "$STATE" ]; then
  # shellcheck disable=SC1090
  . "$STATE"
fi
pid=${1:-$pid}
if [ -z "$pid" ]; then
  echo "stop-dockerd: no pid given and no state file $STATE: nothing to stop" >&2
  exit 0
fi
# Only a dockerd: a stale pid may have been reused by another process.
if [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ]; then
  kill "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "stop-dockerd: dockerd $pid did not stop in 20 s; killing it" >&2
    kill -9 "$pid" || true
  fi
fi
if [ "$bridge_created" = 1 ] && [ -n "$bridge" ]; then
  ip link del "$bridge" 2>/dev/null || true
fi
rm -f "$STATE"
echo "stop-dockerd: stopped $pid"
