"""The stack configuration's one error: a key path, the bad value (never a secret), and the fix."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["ConfigError", "refuse_arguments"]


class ConfigError(ValueError):
    """Stack or resource configuration is invalid; the message names the key path and the value."""

    def __init__(self, path: str, value: object, problem: str, *, secret: bool = False) -> None:
        self.path = path
        self.value = "[secret]" if secret else value
        self.problem = problem
        shown = "[secret]" if secret else repr(value)
        super().__init__(f"{path}: {problem} (got {shown})")


def refuse_arguments(owner: str, checks: Iterable[tuple[str, object, str | None]]) -> None:
    """Raise ``ConfigError`` naming ``owner.<argument>`` for the first check that found a problem.

    The components' last guard (``HostPlan``, ``ContainerSpec``, ``BackupPlan``…): they run the same
    rules as the stack-config loader (:mod:`components.config.rules`) but name their own Python
    argument, never a stack-config key — only the loader speaks in key paths.
    """
    for argument, value, problem in checks:
        if problem:
            raise ConfigError(f"{owner}.{argument}", value, problem)
