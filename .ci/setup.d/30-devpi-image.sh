#!/usr/bin/env bash
# The local devpi test image (stand-in for jonasal/devpi-server:6.20.3; no registry is reachable).
# Starts a Docker engine when none answers (tests/images/start-dockerd.sh: own data root and bridge,
# no iptables changes) and leaves it running for the tests, then builds the image unless present.
# Idempotent; a fresh Debian 12 machine takes about a minute and a half (debootstrap + pip install).
set -euo pipefail
cd "$(dirname "$0")/../.."
state=$(bash tests/images/start-dockerd.sh)
echo "docker engine: $state"
bash tests/images/devpi/build.sh
echo "devpi test image ready: ${DEVPI_TEST_IMAGE:-devpi-registry-test/devpi-server:6.20.3}"
