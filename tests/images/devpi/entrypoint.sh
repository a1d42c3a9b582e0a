#!/bin/sh
# Entrypoint of the local test image: reproduces the jonasal/devpi-server contract
# (JonasAlfredsson/docker-devpi server/entrypoint.sh as of 44491a9; see docs/devpi-api.md §8), so the
# tests exercise what the production image does:
#   1. DEVPI_PASSWORD must be set on every start, even after init (else exit 1);
#   2. /export present -> devpi-export, exit; 3. /import present -> devpi-import, exit;
#   4. /entrypoint.d/*.sh (executable) run, *.envsh sourced — inside the `find | while` subshell, so
#      exports never reach devpi-init/devpi-server (a quirk of the real image, kept on purpose);
#   5. first start (no .serverversion in the server dir) -> devpi-init with DEVPI_PASSWORD as root's
#      password, honouring DEVPISERVER_NO_ROOT_PYPI from the environment;
#   6. devpi-server in the foreground, not exec'd, with --restrict-modify=root and the CMD arguments.
set -e

log() {
    echo "$(date '+%Y-%m-%d %H:%M:%S,000') $1 [entrypoint] $2"
}

if [ -z "${DEVPI_PASSWORD}" ]; then
    log ERROR "Root password cannot be empty"
    exit 1
fi

if [ -e /export ]; then
    log INFO "Exporting the server state to /export"
    devpi-export "$@" /export
    exit 0
fi

if [ -e /import ]; then
    log INFO "Importing the server state from /import"
    devpi-import --root-passwd "${DEVPI_PASSWORD}" "$@" /import
    exit 0
fi

find /entrypoint.d/ -follow -type f -print 2>/dev/null | sort -V | while read -r f; do
    case "${f}" in
        *.envsh)
            if [ -x "${f}" ]; then
                log INFO "Sourcing ${f}"
                # shellcheck disable=SC1090
                . "${f}"
            else
                log INFO "Ignoring ${f}, not executable"
            fi
            ;;
        *.sh)
            if [ -x "${f}" ]; then
                log INFO "Launching ${f}"
                "${f}"
            else
                log INFO "Ignoring ${f}, not executable"
            fi
            ;;
        *)
            log INFO "Ignoring ${f}"
            ;;
    esac
done

if [ ! -f "${DEVPISERVER_SERVERDIR}/.serverversion" ]; then
    log INFO "No server state in ${DEVPISERVER_SERVERDIR}: running devpi-init"
    devpi-init --root-passwd "${DEVPI_PASSWORD}"
fi

devpi-server \
    --host 0.0.0.0 \
    --port 3141 \
    --restrict-modify=root \
    "$@"
