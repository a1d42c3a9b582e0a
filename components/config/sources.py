"""The two sources of the stack config, feeding the one loader (:mod:`components.config.stack`).

* :func:`engine_config` — the program's config as the Pulumi engine hands it over, through the SDK's
  public runtime API (values decrypted, and which keys are secrets);
* :func:`file_config` — ``Pulumi.<stack>.yaml`` read directly, for the ``devpi-lifecycle`` CLI. Secret
  values there are encrypted (``{secure: v1:…}``) and cannot be read: they are replaced by
  :data:`SECRET_PLACEHOLDER` and their keys reported as secret.

Both give a :class:`RawConfig` of bare keys (``serverUrl``, not ``devpi-registry:serverUrl``), so
:func:`components.config.stack.load_stack_config` sees the same shape whichever source it is fed from.
This module does not import Pulumi unless :func:`engine_config` is called (the CLI runs without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.config.defaults import PROJECT
from components.config.model import StackConfig
from components.config.stack import SECRET_PLACEHOLDER, load_stack_config

#: ``SECRET_PLACEHOLDER`` (defined by the loader, which recognises it): what an encrypted value of a
#: stack file reads as, its clear text being known only to the engine. ``tls``, ``replicas`` and the
#: secrets ``tlsPrivateKey`` / ``replicaSshPrivateKeys`` (sealed whole or per replica) read like any key.
__all__ = ["SECRET_PLACEHOLDER", "RawConfig", "engine_config", "file_config", "load_stack_file"]


@dataclass(frozen=True)
class RawConfig:
    """This project's config keys (bare names) with their raw values, and the names held as secrets."""

    values: dict[str, Any]
    secret_keys: set[str] = field(default_factory=set)


def engine_config() -> RawConfig:
    """The config the engine handed to this program (``PULUMI_CONFIG`` and its secret-key list),
    read with the SDK's public API."""
    import pulumi  # only the program needs it; the CLI reads files

    prefix = f"{PROJECT}:"
    everything = pulumi.runtime.get_config_env()
    values = {k[len(prefix):]: v for k, v in everything.items() if k.startswith(prefix)}
    secret = {name for name in values if pulumi.runtime.is_config_secret(f"{prefix}{name}")}
    return RawConfig(values, secret)


def _is_secure(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"secure"}


def _unseal(value: Any) -> tuple[Any, bool]:
    """``value`` with every ``{secure: …}`` replaced by the placeholder, and whether there was one."""
    if _is_secure(value):
        return SECRET_PLACEHOLDER, True
    if isinstance(value, Mapping):
        pairs = {k: _unseal(v) for k, v in value.items()}
        return {k: v for k, (v, _) in pairs.items()}, any(s for _, s in pairs.values())
    if isinstance(value, list):
        items = [_unseal(v) for v in value]
        return [v for v, _ in items], any(s for _, s in items)
    return value, False


def file_config(path: Path) -> RawConfig:
    """This project's keys of a ``Pulumi.<stack>.yaml`` file (other namespaces are ignored).

    Raises ``OSError`` when the file cannot be read and ``yaml.YAMLError`` when it is not YAML.
    """
    doc = yaml.safe_load(Path(path).read_text()) or {}
    config = (doc.get("config") or {}) if isinstance(doc, Mapping) else {}
    prefix = f"{PROJECT}:"
    values: dict[str, Any] = {}
    secret: set[str] = set()
    for full, raw in config.items():
        if not isinstance(full, str) or not full.startswith(prefix):
            continue
        name = full[len(prefix):]
        values[name], sealed = _unseal(raw)
        if sealed:
            secret.add(name)
    return RawConfig(values, secret)


def load_stack_file(path: Path) -> StackConfig:
    """The model of a stack file as the CLI sees it (``partial``: secrets unreadable, owners implied,
    ``serverUrl`` optional; every value rule as for ``pulumi preview``)."""
    raw = file_config(path)
    return load_stack_config(raw.values, secret_keys=raw.secret_keys, partial=True)
