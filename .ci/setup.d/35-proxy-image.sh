#!/usr/bin/env bash
# The local nginx test image (stand-in for the official nginx:1.28.0 the HTTPS proxy runs; no registry
# is reachable): Debian's nginx on the devpi image's Debian base, laid out like the official image.
# Starts a Docker engine when none answers (tests/images/start-dockerd.sh) and leaves it running for
# the tests, then builds the image unless present (tests/images/nginx/build.sh). Idempotent; cold it
# takes about 15-20 s when the base exists (30-devpi-image.sh, run before, makes it).
set -euo pipefail
cd "$(dirname "$0")/../.."
state=$(bash tests/images/start-dockerd.sh)
echo "docker engine: $state"
bash tests/images/nginx/build.sh
echo "nginx test image ready: ${NGINX_TEST_IMAGE:-devpi-registry-test/nginx:local}"
