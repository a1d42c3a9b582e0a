"""``status``: is the server up, which version and serial, and does it hold what the stack declares."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.devpi.client import DevpiClient

from .common import busy_reason
from .connection import StackConfig

__all__ = ["Drift", "StatusReport", "compare_stack", "gather"]


@dataclass(frozen=True)
class Drift:
    kind: str  # "missing-user", "missing-index", "volatile", "bases", "undeclared-index"
    name: str
    expected: Any = None
    actual: Any = None

    def human(self) -> str:
        if self.kind.startswith("missing-"):
            return f"{self.kind.removeprefix('missing-')} {self.name} is declared but missing"
        if self.kind == "undeclared-index":
            return f"index {self.name} exists but is not declared (ignored by the stack)"
        return f"index {self.name}: {self.kind} is {self.actual!r}, stack declares {self.expected!r}"


def compare_stack(stack: StackConfig, users: Mapping[str, Mapping[str, Any]]) -> list[Drift]:
    """Pure: declared users/indexes (stack file) against ``GET /`` (users with their index configs)."""
    drift: list[Drift] = []
    for user in stack.users:
        if user not in users:
            drift.append(Drift("missing-user", user))
    declared = set()
    for decl in stack.indexes:
        declared.add(decl.name)
        owner, name = decl.name.split("/")
        config = ((users.get(owner) or {}).get("indexes") or {}).get(name)
        if config is None:
            drift.append(Drift("missing-index", decl.name))
            continue
        if decl.volatile is not None and bool(config.get("volatile", True)) != decl.volatile:
            drift.append(Drift("volatile", decl.name, decl.volatile, bool(config.get("volatile", True))))
        if decl.bases is not None and list(config.get("bases") or []) != list(decl.bases):
            drift.append(Drift("bases", decl.name, list(decl.bases), list(config.get("bases") or [])))
    for user, uconf in users.items():
        if user not in stack.users:
            continue
        for name in (uconf.get("indexes") or {}):
            if f"{user}/{name}" not in declared and f"{user}/{name}" != "root/pypi":
                drift.append(Drift("undeclared-index", f"{user}/{name}"))
    return drift


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

    def human(self) -> str:
        if not self.reachable:
            return f"{self.url}: UNREACHABLE ({self.error})"
        lines = [f"{self.url}: up, devpi-server {self.version}, serial {self.serial} "
                 f"(events at {self.event_serial}), role {self.role}",
                 f"load: {'busy — ' + self.busy if self.busy else 'idle'}"]
        if self.drift is not None:
            lines.append("stack: matches the declared users and indexes" if not self.drift
                         else "stack drift:")
            lines += [f"  {d.human()}" for d in self.drift]
        return "\n".join(lines)


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
