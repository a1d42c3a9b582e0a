"""Reading the stack config at key paths: fully qualified keys, the typed ``KeyReader`` every
section loader uses, and the one way a rule's problem becomes a ``ConfigError`` naming the key."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from components.config.defaults import (
    PROJECT,
)
from components.config.errors import ConfigError

__all__ = ["SECRET_PLACEHOLDER", "KeyReader", "hidden", "key", "load_list", "refuse"]

#: what an encrypted value of a stack file reads as (see components.config.sources.file_config)
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - a placeholder, not a password


def key(name: str) -> str:
    """The fully qualified key of a bare name: ``serverUrl`` -> ``devpi-registry:serverUrl``."""
    return f"{PROJECT}:{name}"


def refuse(path: str, value: Any, problem: str | None, *, opt_out: str | None = None,
            fix: str | None = None, secret: bool = False) -> None:
    """Raise ``ConfigError`` at ``path`` when a rule found a ``problem``; ``opt_out`` names the key
    that accepts the value anyway, ``fix`` adds a stack-specific hint."""
    if not problem:
        return
    if fix:
        problem = f"{problem}: {fix}"
    if opt_out:
        problem = f"{problem}; or set {opt_out} to opt out"
    raise ConfigError(path, value, problem, secret=secret)


# ------------------------------------------------------------------------------------ value readers
class KeyReader:
    """A mapping read at a key path; each accessor validates type and records what was read."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(path, value, "must be an object (a YAML mapping)")
        self.value = value
        self.path = path
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        return self.value.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.value

    def rule(self, key: str, value: Any, problem: str | None, *, opt_out: str | None = None,
             fix: str | None = None) -> None:
        """Refuse ``value`` of ``key`` when a rule of :mod:`components.config.rules` found a problem."""
        refuse(self.at(key), value, problem, opt_out=opt_out, fix=fix)

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self._get(key, default)
        if value is None:
            if required:
                raise ConfigError(self.at(key), None, "is required")
            return None
        if not isinstance(value, str) or (required and not value):
            raise ConfigError(self.at(key), value, "must be a non-empty string")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.at(key), value, "must be true or false")
        return value

    def opt_flag(self, key: str) -> bool | None:
        """A boolean that stays None (devpi's default) unless the config states it."""
        self.seen.add(key)
        return self.flag(key, False) if self.has(key) else None

    def number(self, key: str, default: int | None, check: Callable[[object], str | None]) -> Any:
        """A whole number checked by ``check`` (a rule); None when absent without a default."""
        value = self._get(key, default)
        if value is not None:
            self.rule(key, value, check(value))
        return value

    def texts(self, key: str, default: Sequence[str] | None = None) -> tuple[str, ...] | None:
        value = self._get(key, default)
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.at(key), value, "must be a list of strings")
        return tuple(value)

    def choice(self, key: str, default: str | None, choices: Sequence[str]) -> Any:
        value = self._get(key, default)
        if value is None:
            return None
        if value not in choices:
            raise ConfigError(self.at(key), value, f"must be one of {', '.join(choices)}")
        return value

    def folder(self, key: str, default: str, check: Callable[[object], str | None]) -> str:
        """A host folder checked by ``check``; a trailing ``/`` is a spelling, not another folder."""
        value: str = self.text(key, default, required=True)
        folder = value.rstrip("/") or value
        self.rule(key, value, check(folder))
        return folder

    def done(self) -> None:
        """Refuse keys nobody read: a typo must not be silently ignored (nor its value printed when
        it looks like a secret: a key pasted under a misspelt name)."""
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            value = self.value[unknown[0]]
            raise ConfigError(self.at(unknown[0]), value,
                              f"is not a known key here (known: {', '.join(sorted(self.seen))})",
                              secret=hidden(unknown[0], value))


def hidden(name: str, value: Any) -> bool:
    """Whether a value must stay out of messages: a secret-sounding key name, or PEM key material."""
    lowered = str(name).lower()
    if any(word in lowered for word in ("password", "key", "secret", "token")):
        return True
    return "PRIVATE KEY" in json.dumps(value, default=str)


def load_list(raw: Any, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(key(name), raw, "must be a list")
    return raw
