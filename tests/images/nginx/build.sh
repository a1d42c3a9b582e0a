#!/usr/bin/env bash
# Build the local stand-in for the official nginx:1.28.0 image (no container registry is reachable):
#   1. base: the Debian bookworm image tests/images/devpi/build.sh imports (debootstrap); when it is
#      missing that script runs first (it builds the devpi test image too, which the same tests need);
#   2. a throw-away container from the base (host network: the engine's bridge has no way out)
#      apt-installs Debian's nginx and curl from the mirror apt uses on this machine (an https mirror
#      gets the host CA bundle, $PIP_CERT or /etc/ssl/certs/ca-certificates.crt: TLS-inspecting proxy),
#      with a policy-rc.d that keeps the package from starting nginx on the host's network, then lays
#      it out like the official image: user nginx (uid 101), /etc/nginx/nginx.conf including
#      /etc/nginx/conf.d/*.conf, the image's default.conf there, logs linked to stdout/stderr;
#   3. `docker commit` with the image contract: CMD nginx -g 'daemon off;', EXPOSE 80, no
#      HEALTHCHECK, curl present (the stack's healthcheck uses it), runs as root. (`docker commit`
#      cannot set STOPSIGNAL; the official image's SIGQUIT is declared by the container spec too.)
# Cached: does nothing when the image exists (pass --force to rebuild). Needs a running engine
# (tests/images/start-dockerd.sh). Environment: NGINX_TEST_IMAGE (tag to build),
# DEVPI_TEST_BASE_IMAGE, DEVPI_TEST_DEBIAN_MIRROR, PIP_CERT.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
IMAGE=${NGINX_TEST_IMAGE:-devpi-registry-test/nginx:local}
BASE=${DEVPI_TEST_BASE_IMAGE:-devpi-registry-test/debian-base:bookworm}
CA_BUNDLE=${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}

log() { echo "build-nginx-image: $*" >&2; }

if [ "${1:-}" != --force ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already present (pass --force to rebuild)"
  exit 0
fi

start=$SECONDS
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  log "base $BASE missing: building it with tests/images/devpi/build.sh"
  bash "$HERE/../devpi/build.sh"
fi

# The machine's Debian mirror and security archive (deb822 sources first, then one-line sources).
mirror=${DEVPI_TEST_DEBIAN_MIRROR:-}
security=""
if [ -z "$mirror" ]; then
  mirror=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null \
             | grep -v -- '-security' | grep -m1 debian || true)
  [ -n "$mirror" ] || mirror=$(sed -E 's/\[[^]]*\]//' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
             | awk '$1 == "deb" && $2 !~ /security/ && $3 ~ /^bookworm$/ {print $2; exit}' || true)
  mirror=${mirror:-http://deb.debian.org/debian}
fi
security=$(awk '/^URIs:/ {print $2}' /etc/apt/sources.list.d/*.sources 2>/dev/null | grep -m1 -- '-security' || true)
security=${security:-${mirror%/debian}/debian-security}

builder="devpi-registry-test-nginx-build-$$"
cleanup() { docker rm -f "$builder" >/dev/null 2>&1 || true; }
trap cleanup EXIT

log "installing Debian's nginx into $builder from $mirror"
docker run --name "$builder" --network host \
  -v "$CA_BUNDLE:/tmp/host-ca.crt:ro" -v "$HERE:/build:ro" \
  "$BASE" sh -euc '
    mirror=$1 security=$2
    export DEBIAN_FRONTEND=noninteractive DEBCONF_NOWARNINGS=yes
    printf "deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n" \
      "$mirror" "$mirror" "$security" >/etc/apt/sources.list
    # never start a service inside the build (host network: it would bind the host port 80)
    printf "#!/bin/sh\nexit 101\n" >/usr/sbin/policy-rc.d
    chmod 0755 /usr/sbin/policy-rc.d
    apt_opts="-o Acquire::https::CaInfo=/tmp/host-ca.crt -o Acquire::Retries=3 -qq"
    apt-get $apt_opts update
    apt-get $apt_opts install -y --no-install-recommends --no-install-suggests nginx curl ca-certificates >/dev/null
    groupadd --system --gid 101 nginx
    useradd --system --gid nginx --no-create-home --home /nonexistent --comment "nginx user" \
      --shell /bin/false --uid 101 nginx
    rm -f /etc/nginx/sites-enabled/* /usr/sbin/policy-rc.d
    install -m 0644 /build/nginx.conf /etc/nginx/nginx.conf
    install -d -m 0755 /etc/nginx/conf.d
    install -m 0644 /build/default.conf /etc/nginx/conf.d/default.conf
    ln -sf /dev/stdout /var/log/nginx/access.log
    ln -sf /dev/stderr /var/log/nginx/error.log
    apt-get clean
    rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin
    nginx -t
    nginx -v
  ' sh "$mirror" "$security" >&2

log "committing $IMAGE"
docker commit \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'EXPOSE 80' \
  --change 'WORKDIR /' \
  --change 'CMD ["nginx", "-g", "daemon off;"]' \
  --change 'LABEL org.opencontainers.image.title="devpi-registry test stand-in for nginx:1.28.0"' \
  "$builder" "$IMAGE" >/dev/null
log "built $IMAGE in $((SECONDS - start)) s"
