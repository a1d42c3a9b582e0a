"""The stack configuration's one error: a key path, the bad value (never a secret), and the fix."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """Stack or resource configuration is invalid; the message names the key path and the value."""

    def __init__(self, path: str, value: object, problem: str, *, secret: bool = False) -> None:
        self.path = path
        self.value = "[secret]" if secret else value
        self.problem = problem
        shown = "[secret]" if secret else repr(value)
        super().__init__(f"{path}: {problem} (got {shown})")
