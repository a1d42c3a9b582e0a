"""Where the dynamic providers learn the server URL and root's credentials: the stack config.

The providers receive the whole stack configuration (secrets decrypted) through ``configure()``;
they never carry credentials in their pickled form or in resource inputs. That is what makes a
rotated root password work everywhere at once: after ``pulumi config set --secret rootPassword``,
every later create, read, update and delete — including deletes of resources created long ago —
logs in with the password the stack holds now.

Keys read (project namespace ``devpi-registry``):

- ``rootPassword`` (secret, required): root's password on the server.
- ``serverUrl`` (optional): the URL through which the machine running Pulumi reaches devpi. When
  absent it is ``http://<host.address>:<server.port>`` from the ``host`` and ``server`` objects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from components.config.errors import ConfigError

__all__ = ["DEFAULT_PORT", "PROJECT", "ProviderSettings", "default_server_url", "provider_settings"]

PROJECT = "devpi-registry"
DEFAULT_PORT = 3141


@dataclass(frozen=True)
class ProviderSettings:
    """Connection for the dynamic providers. ``repr`` never shows the password."""

    url: str
    user: str = "root"
    password: str = field(default="", repr=False)


def default_server_url(address: str, port: int = DEFAULT_PORT) -> str:
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"http://{host}:{port}"


def _object(raw: Any, key: str) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{PROJECT}:{key}", raw, "must be an object") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{PROJECT}:{key}", value, "must be an object")
    return value


def provider_settings(get: Callable[[str], Any]) -> ProviderSettings:
    """Build the provider connection from a config getter taking fully qualified keys
    (``"devpi-registry:rootPassword"``), e.g. ``pulumi.dynamic.Config.get``."""
    password = get(f"{PROJECT}:rootPassword")
    if not password:
        raise ConfigError(
            f"{PROJECT}:rootPassword", None,
            "is required: run `pulumi config set --secret rootPassword` for this stack",
        )
    url = get(f"{PROJECT}:serverUrl")
    if not url:
        host = _object(get(f"{PROJECT}:host"), "host")
        server = _object(get(f"{PROJECT}:server"), "server")
        address = host.get("address")
        if not address:
            raise ConfigError(
                f"{PROJECT}:serverUrl", None,
                "is required when no `host.address` is configured (the URL Pulumi uses to reach devpi)",
            )
        url = default_server_url(str(address), int(server.get("port", DEFAULT_PORT)))
    return ProviderSettings(url=str(url).rstrip("/"), user="root", password=str(password))
