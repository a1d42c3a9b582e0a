"""Where a lifecycle command finds the server and the credentials.

Precedence: flags (``--url``, ``--user``) > environment (``DEVPI_URL``, ``DEVPI_USER``) > the stack
file (``--stack-config Pulumi.<stack>.yaml``: ``serverUrl`` or ``host.address`` + ``server.port``,
user ``root``). The password comes ONLY from ``DEVPI_PASSWORD``, ``--password-file`` or an
interactive prompt: a ``--password`` flag would be visible to every user in ``ps`` and land in shell
history, and the stack's ``rootPassword`` is encrypted in the yaml (Pulumi's secrets provider), so it
cannot be read from there.
"""

from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config.connection import DEFAULT_PORT, PROJECT, default_server_url
from components.config.errors import ConfigError
from components.config.retention import RetentionPolicy

from .common import LifecycleError

__all__ = ["Connection", "IndexDecl", "StackConfig", "read_stack_config", "resolve_connection"]


@dataclass(frozen=True)
class Connection:
    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class IndexDecl:
    """One entry of ``devpi-registry:indexes`` as far as the lifecycle tool needs it."""

    name: str
    volatile: bool | None = None
    bases: tuple[str, ...] | None = None
    retention: RetentionPolicy | None = None


@dataclass(frozen=True)
class StackConfig:
    path: Path
    url: str | None
    users: tuple[str, ...]
    indexes: tuple[IndexDecl, ...]


def _value(raw: Any, key: str) -> Any:
    """Stack yaml values are either structured YAML or JSON strings (``pulumi config set --path``)."""
    if isinstance(raw, str) and raw[:1] in "[{":
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(key, raw, "is not valid JSON") from exc
    return raw


def _index_decl(raw: Any, path: str) -> IndexDecl:
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "must be an object with at least `name: user/index`")
    name = raw.get("name")
    if not isinstance(name, str) or name.count("/") != 1 or not all(name.split("/")):
        raise ConfigError(f"{path}.name", name, "must be 'user/index'")
    volatile = raw.get("volatile")
    if volatile is not None and not isinstance(volatile, bool):
        raise ConfigError(f"{path}.volatile", volatile, "must be true or false")
    bases = raw.get("bases")
    if bases is not None:
        if isinstance(bases, str) or not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
            raise ConfigError(f"{path}.bases", bases, "must be a list of 'user/index' names")
        bases = tuple(bases)
    retention = raw.get("retention")
    policy = RetentionPolicy.from_config(retention, f"{path}.retention") if retention is not None else None
    return IndexDecl(name=name, volatile=volatile, bases=bases, retention=policy)


def read_stack_config(path: Path) -> StackConfig:
    """Read ``Pulumi.<stack>.yaml``: server URL, declared users and indexes (no secrets are read)."""
    try:
        doc = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise LifecycleError(f"cannot read stack config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise LifecycleError(f"stack config {path} is not valid YAML: {exc}") from exc
    config = doc.get("config") or {} if isinstance(doc, dict) else {}

    def get(key: str) -> Any:
        full = f"{PROJECT}:{key}"
        return _value(config.get(full), full)

    url = get("serverUrl")
    if not url:
        host, server = get("host") or {}, get("server") or {}
        if isinstance(host, Mapping) and host.get("address"):
            port = server.get("port", DEFAULT_PORT) if isinstance(server, Mapping) else DEFAULT_PORT
            url = default_server_url(str(host["address"]), int(port))
    raw_indexes = get("indexes") or []
    if not isinstance(raw_indexes, list):
        raise ConfigError(f"{PROJECT}:indexes", raw_indexes, "must be a list of index objects")
    indexes = tuple(_index_decl(item, f"{PROJECT}:indexes[{i}]") for i, item in enumerate(raw_indexes))
    users: list[str] = []
    for i, item in enumerate(get("users") or []):
        name = item.get("name") if isinstance(item, Mapping) else item
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{PROJECT}:users[{i}]", item, "must be a user name or an object with `name`")
        users.append(name)
    for decl in indexes:
        owner = decl.name.split("/")[0]
        if owner not in users:
            users.append(owner)
    return StackConfig(Path(path), str(url).rstrip("/") if url else None, tuple(users), indexes)


def resolve_connection(
    *,
    url: str | None,
    user: str | None,
    password_file: Path | None,
    stack: StackConfig | None,
    env: Mapping[str, str] = os.environ,
    prompt: Callable[[str], str] | None = None,
    interactive: bool | None = None,
    need_password: bool = False,
) -> Connection:
    """Combine flags, environment and stack file; ask for the password only when it is needed."""
    url = url or env.get("DEVPI_URL") or (stack.url if stack else None)
    if not url:
        raise LifecycleError("no server URL: pass --url, set DEVPI_URL, or point --stack-config at a stack "
                             "file with devpi-registry:serverUrl or host.address")
    user = user or env.get("DEVPI_USER") or ("root" if stack else None)
    password: str | None = None
    if password_file is not None:
        try:
            password = Path(password_file).read_text().rstrip("\r\n")
        except OSError as exc:
            raise LifecycleError(f"cannot read --password-file {password_file}: {exc.strerror}") from exc
    elif env.get("DEVPI_PASSWORD"):
        password = env["DEVPI_PASSWORD"]
    if password is None and need_password:
        if user is None:
            raise LifecycleError("this command changes data: pass --user (or DEVPI_USER) and a password "
                                 "via DEVPI_PASSWORD, --password-file or the prompt")
        if interactive is None:
            interactive = sys.stdin.isatty()
        if not interactive:
            raise LifecycleError(f"no password for user {user!r}: set DEVPI_PASSWORD or pass --password-file "
                                 "(stdin is not a terminal, so there is nobody to ask)")
        password = (prompt or getpass.getpass)(f"password for {user} at {url}: ")
    if user is not None and password is None and not need_password:
        user = None  # reading works anonymously; a user without a password is no identity
    return Connection(url=url.rstrip("/"), user=user, password=password)
