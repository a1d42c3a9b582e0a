"""``status``: is the server up, which version and serial, and does it hold what the stack declares."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding

from components.config.model import IndexConfig
from components.devpi.client import DevpiClient

from .common import busy_reason, table
from .connection import StackConfig

__all__ = ["Drift", "StatusReport", "compare_stack", "gather"]


@dataclass(frozen=True)
class Drift:
    kind: str  # "missing-user", "missing-index", "volatile", "bases", "undeclared-index"
    name: str
    expected: Any = None
    actual: Any = None

    def cells(self) -> tuple[str, str]:
        """What the stack declares and what the server has, for the drift table."""
        if self.kind.startswith("missing-"):
            return "declared", "missing"
        if self.kind == "undeclared-index":
            return "not declared (ignored by the stack)", "exists"
        return repr(self.expected), repr(self.actual)


def compare_stack(stack: StackConfig, users: Mapping[str, Mapping[str, Any]]) -> list[Drift]:
    """Pure: declared users/indexes (stack file) against ``GET /`` (users with their index configs)."""
    declared_users = stack.user_names  # with the owners of declared indexes (a stack file implies them)
    drift = [Drift("missing-user", user) for user in declared_users if user not in users]
    for decl in stack.indexes:
        drift += _index_drift(decl, ((users.get(decl.owner) or {}).get("indexes") or {}).get(decl.name))
    declared = {decl.full_name for decl in stack.indexes}
    drift += [Drift("undeclared-index", index) for index in _indexes_of(users, declared_users)
              if index not in declared and index != "root/pypi"]
    return drift


def _index_drift(decl: IndexConfig, config: Mapping[str, Any] | None) -> list[Drift]:
    """Pure: how one declared index differs from its config on the server (None: missing there)."""
    if config is None:
        return [Drift("missing-index", decl.full_name)]
    drift = []
    volatile = bool(config.get("volatile", True))
    if volatile != decl.volatile:
        drift.append(Drift("volatile", decl.full_name, decl.volatile, volatile))
    bases = list(config.get("bases") or [])
    if bases != list(decl.bases):
        drift.append(Drift("bases", decl.full_name, list(decl.bases), bases))
    return drift


def _indexes_of(users: Mapping[str, Mapping[str, Any]], owners: Collection[str]) -> list[str]:
    """Pure: ``user/index`` of every index on the server owned by one of ``owners``."""
    return [f"{user}/{name}" for user, uconf in users.items() if user in owners
            for name in (uconf.get("indexes") or {})]


@dataclass
class StatusReport:
    url: str
    reachable: bool
    version: str | None = None
    serial: int | None = None
    event_serial: int | None = None
    role: str | None = None
    busy: str | None = None
    drift: list[Drift] | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reachable and not self.drift

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url, "reachable": self.reachable, "version": self.version, "serial": self.serial,
            "event_serial": self.event_serial, "role": self.role, "busy": self.busy, "error": self.error,
            "drift": None if self.drift is None else [
                {"kind": d.kind, "name": d.name, "expected": d.expected, "actual": d.actual} for d in self.drift],
            "ok": self.ok,
        }

    def human(self) -> RenderableType:
        """The human output: server, load, and (with a stack file) a table of the drift found."""
        if not self.reachable:
            return f"{self.url}: UNREACHABLE ({self.error})"
        parts: list[RenderableType] = [
            f"{self.url}: up, devpi-server {self.version}, serial {self.serial} "
            f"(events at {self.event_serial}), role {self.role}",
            f"load: {'busy — ' + self.busy if self.busy else 'idle'}"]
        if self.drift is not None:
            parts.append("stack: matches the declared users and indexes" if not self.drift else "stack drift:")
        if self.drift:
            drift = table("drift", "name", "stack", "server")
            for d in self.drift:
                drift.add_row(d.kind, d.name, *d.cells())
            parts.append(Padding(drift, (0, 0, 0, 2)))
        return Group(*parts)


def gather(client: DevpiClient, stack: StackConfig | None, now: float) -> StatusReport:
    from components.devpi.errors import DevpiError

    report = StatusReport(url=client.url, reachable=False)
    try:
        status = client.status()
    except DevpiError as exc:
        report.error = str(exc)
        return report
    report.reachable = True
    report.version = (status.get("versioninfo") or {}).get("devpi-server")
    report.serial = status.get("serial")
    report.event_serial = status.get("event-serial")
    report.role = status.get("role")
    report.busy = busy_reason(status, now)
    if stack is not None:
        report.drift = compare_stack(stack, client.list_users())
    return report
