#!/usr/bin/env bash
# Make a Docker engine answer on the default socket for the tests, without touching this machine's
# network: if an engine already answers, leave it alone; otherwise start dockerd with
#   - its own data and exec roots (never the machine's /var/lib/docker),
#   - its own bridge (DEVPI_TEST_DOCKER_BRIDGE, a private /24 nobody else uses) instead of docker0,
#   - --iptables=false --ip6tables=false --ip-forward=false: no firewall rules, no NAT, no forwarding.
#     Published ports still work for loopback, because docker-proxy (the userland proxy) accepts on
#     127.0.0.1:PORT and connects to the container over the bridge; containers get no way out, which
#     is what the tests want (image builds use --network host instead).
# Storage drivers are tried in order (overlay2, then fuse-overlayfs if installed, then vfs).
#
# Prints exactly one line on stdout:
#   running       an engine already answered: the caller must not stop it
#   started PID   this script started dockerd PID: stop it with stop-dockerd.sh when done
# Used by tests/fixtures/docker.py and .ci/setup.d/30-devpi-image.sh. Needs root to start dockerd.
set -euo pipefail

ROOT_DIR=${DEVPI_TEST_DOCKER_ROOT:-/var/lib/devpi-registry-tests-docker}
EXEC_ROOT=${DEVPI_TEST_DOCKER_EXEC_ROOT:-/run/devpi-registry-tests-docker}
BRIDGE=${DEVPI_TEST_DOCKER_BRIDGE:-devpireg0}
SUBNET=${DEVPI_TEST_DOCKER_SUBNET:-172.30.213.1/24}
LOG=${DEVPI_TEST_DOCKER_LOG:-/var/log/devpi-registry-tests-dockerd.log}
SOCKET=/var/run/docker.sock
STATE="$EXEC_ROOT.state"
TIMEOUT=${DEVPI_TEST_DOCKER_TIMEOUT:-60}

log() { echo "start-dockerd: $*" >&2; }

if docker info >/dev/null 2>&1; then
  echo running
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  log "no Docker engine answers and starting dockerd needs root"
  exit 2
fi
if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
  log "dockerd or the docker CLI is not installed (Debian: apt-get install docker.io)"
  exit 2
fi
if [ -S "$SOCKET" ] && [ -f "$EXEC_ROOT.pid" ] && kill -0 "$(cat "$EXEC_ROOT.pid")" 2>/dev/null; then
  log "a dockerd started earlier (pid $(cat "$EXEC_ROOT.pid")) does not answer; see $LOG"
  exit 1
fi

# Another interface in the same subnet (a docker0 left by an earlier dockerd, a VPN) would take the
# route and published ports would time out: refuse with a clear message instead.
clash=$(ip -o -4 addr show to "$SUBNET" 2>/dev/null | awk -v br="$BRIDGE" '$2 != br {print $2}' | sort -u)
if [ -n "$clash" ]; then
  log "subnet $SUBNET is already used by: $clash; set DEVPI_TEST_DOCKER_SUBNET to a free /24"
  exit 1
fi

bridge_created=0
if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add name "$BRIDGE" type bridge
  ip addr add "$SUBNET" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  bridge_created=1
fi

drivers=(overlay2)
command -v fuse-overlayfs >/dev/null 2>&1 && drivers+=(fuse-overlayfs)
drivers+=(vfs)
[ -n "${DEVPI_TEST_DOCKER_STORAGE_DRIVER:-}" ] && drivers=("$DEVPI_TEST_DOCKER_STORAGE_DRIVER")

mkdir -p "$ROOT_DIR" "$(dirname "$LOG")"
for driver in "${drivers[@]}"; do
  log "starting dockerd (storage driver $driver, data root $ROOT_DIR, bridge $BRIDGE, log $LOG)"
  echo "---- $(date -u +%FT%TZ) start-dockerd: storage driver $driver" >>"$LOG"
  setsid dockerd \
    -H "unix://$SOCKET" \
    --data-root "$ROOT_DIR" \
    --exec-root "$EXEC_ROOT" \
    --pidfile "$EXEC_ROOT.pid" \
    --storage-driver "$driver" \
    --bridge "$BRIDGE" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    >>"$LOG" 2>&1 </dev/null &
  pid=$!
  deadline=$((SECONDS + TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ] && kill -0 "$pid" 2>/dev/null; do
    if docker -H "unix://$SOCKET" info >/dev/null 2>&1; then
      printf 'pid=%s\nbridge=%s\nbridge_created=%s\n' "$pid" "$BRIDGE" "$bridge_created" >"$STATE"
      log "dockerd $pid answers (storage driver $driver)"
      echo "started $pid"
      exit 0
    fi
    sleep 0.3
  done
  log "dockerd with storage driver $driver did not come up; last log lines:"
  tail -n 5 "$LOG" >&2 || true
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
done

[ "$bridge_created" = 1 ] && ip link del "$BRIDGE" 2>/dev/null || true
log "could not start dockerd with any storage driver (${drivers[*]}); see $LOG"
exit 1
