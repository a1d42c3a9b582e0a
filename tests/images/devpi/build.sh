#!/usr/bin/env bash
# Build the local stand-in for jonasal/devpi-server:6.20.3 (no container registry is reachable here):
#   1. base: debootstrap a minimal Debian bookworm with python3 + python3-venv from the mirror apt uses
#      on this machine, `docker import` it (cached as its own tag);
#   2. a throw-away container from the base (host network: the engine's bridge has no way out)
#      pip-installs devpi-server==6.20.3 devpi-web==5.1.1 (dependencies pinned by constraints.txt)
#      into /opt/devpi with the host's CA bundle
#      mounted read-only (PyPI is reached through a TLS-inspecting proxy), adds entrypoint.sh;
#   3. `docker commit` with the image contract: ENV DEVPISERVER_SERVERDIR=/devpi/server, the venv
#      first on PATH (so `python` runs the healthcheck as in the python:slim based image), EXPOSE 3141,
#      ENTRYPOINT /entrypoint.sh, no CMD, no curl, no HEALTHCHECK, runs as root.
# Cached: does nothing when the image exists (pass --force to rebuild). Needs a running engine
# (tests/images/start-dockerd.sh) and, for the base, root and debootstrap.
#
# Environment: DEVPI_TEST_IMAGE (tag to build), DEVPI_TEST_BASE_IMAGE, DEVPI_TEST_DEBIAN_MIRROR,
# PIP_CERT (CA bundle for pip, default /etc/ssl/certs/ca-certificates.crt), PIP_INDEX_URL (passed on).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE=${DEVPI_TEST_IMAGE:-devpi-registry-test/devpi-server:6.20.3}
BASE=${DEVPI_TEST_BASE_IMAGE:-devpi-registry-test/debian-base:bookworm}
CA_BUNDLE=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}
PACKAGES=(devpi-server==6.20.3 devpi-web==5.1.1)

log() { echo "build-devpi-image: $*" >&2; }

if [ "${1:-}" != --force ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already present (pass --force to rebuild)"
  exit 0
fi

debian_mirror() {
  if [ -n "${DEVPI_TEST_DEBIAN_MIRROR:-}" ]; then echo "$DEVPI_TEST_DEBIAN_MIRROR"; return; fi
  local m=""
  # deb822 sources first (Debian 12 default), then one-line sources; skip the security archive.
  m=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | grep -v -- '-security' | grep -m1 debian || true)
  if [ -z "$m" ]; then
    m=$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '$1 == "deb" && $2 !~ /security/ && $3 ~ /^bookworm$/ {print $2; exit}' || true)
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

start=$SECONDS
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }
  mirror=$(debian_mirror)
  rootfs=$(mktemp -d /var/tmp/devpi-registry-rootfs.XXXXXX)
  trap 'rm -rf "$rootfs"' EXIT
  log "debootstrap bookworm from $mirror into $rootfs"
  if ! debootstrap --variant=minbase --include=python3,python3-venv bookworm "$rootfs" "$mirror" \
       >"$rootfs.log" 2>&1; then
    tail -n 20 "$rootfs.log" >&2
    log "debootstrap failed (full log: $rootfs.log)"
    exit 1
  fi
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  log "importing the base as $BASE"
  tar -C "$rootfs" --numeric-owner -c . | docker import - "$BASE" >/dev/null
  rm -rf "$rootfs"
  trap - EXIT
fi

builder="devpi-registry-test-build-$$"
cleanup() { docker rm -f "$builder" >/dev/null 2>&1 || true; }
trap cleanup EXIT
pip_env=(-e PIP_CERT=/tmp/host-ca.crt -e PIP_DISABLE_PIP_VERSION_CHECK=1 -e PIP_DEFAULT_TIMEOUT=120)
case "${PIP_INDEX_URL:-}" in http://*|https://*) pip_env+=(-e "PIP_INDEX_URL=$PIP_INDEX_URL") ;; esac

log "installing ${PACKAGES[*]} into $builder"
docker run --name "$builder" --network host \
  -v "$CA_BUNDLE:/tmp/host-ca.crt:ro" -v "$HERE:/build:ro" "${pip_env[@]}" \
  "$BASE" sh -euc '
    python3 -m venv /opt/devpi
    /opt/devpi/bin/pip install --no-cache-dir --quiet -c /build/constraints.txt "$@"
    install -m 0755 /build/entrypoint.sh /entrypoint.sh
    mkdir -p /devpi/server /entrypoint.d
    rm -rf /root/.cache
    /opt/devpi/bin/devpi-server --version
  ' sh "${PACKAGES[@]}" >&2

log "committing $IMAGE"
docker commit \
  --change 'ENV PATH=/opt/devpi/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV DEVPISERVER_SERVERDIR=/devpi/server' \
  --change 'EXPOSE 3141' \
  --change 'WORKDIR /' \
  --change 'ENTRYPOINT ["/entrypoint.sh"]' \
  --change 'CMD []' \
  --change 'LABEL org.opencontainers.image.title="devpi-registry test stand-in for jonasal/devpi-server:6.20.3"' \
  "$builder" "$IMAGE" >/dev/null
log "built $IMAGE in $((SECONDS - start)) s"
