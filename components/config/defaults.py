"""The stack's default values, stated once (the loader, the components and the docs use these)."""

from __future__ import annotations

__all__ = [
    "CERT_WARN_DAYS",
    "DEFAULT_BACKUP_DIR",
    "DEFAULT_BACKUP_KEEP",
    "DEFAULT_BACKUP_SCHEDULE",
    "DEFAULT_BACKUP_UNIT",
    "DEFAULT_CLIENT_CA_PATH",
    "DEFAULT_CONTAINER_NAME",
    "DEFAULT_DATA_DIR",
    "DEFAULT_HTTPS_PORT",
    "DEFAULT_HTTP_PORT",
    "DEFAULT_IMAGE",
    "DEFAULT_MAX_UPLOAD_MB",
    "DEFAULT_PORT",
    "DEFAULT_PROXY_CONTAINER_NAME",
    "DEFAULT_PROXY_DIR",
    "DEFAULT_PROXY_IMAGE",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_REPLICA_CONTAINER_NAME",
    "DEFAULT_REPLICA_MAX_LAG",
    "DEFAULT_SECRET_DIR",
    "DEFAULT_SSH_PORT",
    "LOOPBACK",
    "PROJECT",
    "PROXY_NETWORK",
    "PYPI_MIRROR",
]

#: the Pulumi project name: every stack-config key lives in this namespace
PROJECT = "devpi-registry"
DEFAULT_PORT = 3141
DEFAULT_SSH_PORT = 22
DEFAULT_IMAGE = "jonasal/devpi-server:6.20.3"
DEFAULT_DATA_DIR = "/opt/local/devpi/data"
DEFAULT_CONTAINER_NAME = "devpi-server"
DEFAULT_READY_TIMEOUT = 180
DEFAULT_BACKUP_DIR = "/opt/local/devpi/backups"
DEFAULT_BACKUP_SCHEDULE = "daily"
DEFAULT_BACKUP_KEEP = 7
#: the PyPI mirror index devpi-server creates itself (unless started with no root/pypi)
PYPI_MIRROR = "root/pypi"
DEFAULT_BACKUP_UNIT = "devpi-registry-backup"  # systemd unit name of the backup timer and service

# HTTPS (the `tls` key): a reverse proxy in front of devpi
DEFAULT_HTTPS_PORT = 443
DEFAULT_HTTP_PORT = 80  # answers only with a redirect to https (or is off)
#: the official nginx image, pinned (stable branch); see docs/tls.md for why nginx
DEFAULT_PROXY_IMAGE = "nginx:1.28.0"
DEFAULT_PROXY_CONTAINER_NAME = "devpi-proxy"
#: host folder holding the proxy's nginx config, certificate chain and key (key mode 600)
DEFAULT_PROXY_DIR = "/opt/local/devpi/proxy"
#: nginx client_max_body_size in MiB: fits large wheels (devpi's own limit is 1 GiB)
DEFAULT_MAX_UPLOAD_MB = 512
#: where the client files (pip.conf `cert =`, twine --cert) expect the private CA bundle
DEFAULT_CLIENT_CA_PATH = "/etc/pki/ca-trust/source/anchors/devpi-registry-ca.pem"
#: a certificate expiring sooner than this many days gets a warning at preview
CERT_WARN_DAYS = 30

# Replicas and the shared secret file
DEFAULT_REPLICA_CONTAINER_NAME = "devpi-replica"
#: a replica is ready when it is at most this many serials behind the primary
DEFAULT_REPLICA_MAX_LAG = 10
#: host folder holding devpi's --secretfile (mode 600), mounted read-only into the container
DEFAULT_SECRET_DIR = "/opt/local/devpi/secret"  # noqa: S105 - a folder, not a password
#: the user-defined Docker network devpi and the HTTPS proxy share (devpi is "devpi" on it)
PROXY_NETWORK = "devpi-registry"
#: behind the proxy devpi is published on this address only
LOOPBACK = "127.0.0.1"
