"""The stack's default values, stated once (the loader, the components and the docs use these)."""

from __future__ import annotations

__all__ = [
    "DEFAULT_BACKUP_DIR",
    "DEFAULT_BACKUP_KEEP",
    "DEFAULT_BACKUP_SCHEDULE",
    "DEFAULT_BACKUP_UNIT",
    "DEFAULT_CONTAINER_NAME",
    "DEFAULT_DATA_DIR",
    "DEFAULT_IMAGE",
    "DEFAULT_PORT",
    "DEFAULT_READY_TIMEOUT",
    "DEFAULT_SSH_PORT",
    "PROJECT",
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
