"""Where a lifecycle command finds the server and the credentials.

Precedence: flags (``--url``, ``--user``) > environment (``DEVPI_URL``, ``DEVPI_USER``) > the stack
file (``--stack-config Pulumi.<stack>.yaml``: ``serverUrl`` or ``host.address`` + ``server.port``,
user ``root``). The password comes ONLY from ``DEVPI_PASSWORD``, ``--password-file`` or an
interactive prompt: a ``--password`` flag would be visible to every user in ``ps`` and land in shell
history, and the stack's ``rootPassword`` is encrypted in the yaml (Pulumi's secrets provider), so it
cannot be read from there.

The stack file is read by the stack-config loader itself (:func:`components.config.sources.load_stack_file`):
the CLI sees the same :class:`~components.config.model.StackConfig` (same rules, same default server
URL) as ``pulumi preview``.
"""

from __future__ import annotations

import getpass
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from components.config.model import StackConfig
from components.config.sources import load_stack_file

from .common import LifecycleError

__all__ = ["Connection", "StackConfig", "read_stack_config", "resolve_connection"]


@dataclass(frozen=True)
class Connection:
    url: str
    user: str | None = None
    password: str | None = field(default=None, repr=False)


def read_stack_config(path: Path) -> StackConfig:
    """Read ``Pulumi.<stack>.yaml``: server URL, declared users and indexes (no secret is read).

    Raises ``LifecycleError`` when the file cannot be read or is not YAML, ``ConfigError`` (naming the
    key path) when a value breaks a rule.
    """
    try:
        return load_stack_file(path)
    except OSError as exc:
        raise LifecycleError(f"cannot read stack config {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise LifecycleError(f"stack config {path} is not valid YAML: {exc}") from exc


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
    url = url or env.get("DEVPI_URL") or (stack.server_url if stack else None)
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
