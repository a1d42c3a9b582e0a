"""``status``: is the server up, which version and serial, does it hold what the stack declares, and
where is each node (the primary and every replica) in devpi's changelog.

devpi-server 6.20.3 reports replication in ``/+status``: the primary lists the replicas that poll it
in ``polling_replicas`` (keyed by the replica's uuid: ``serial``, ``last-request``, ``in-request``,
``outside-url``); a replica reports its own ``serial``, ``uuid``, ``primary-serial`` and
``primary-contacted-at``. A node's lag is the primary's serial minus the node's; its last contact
is the primary's view when the primary knows the replica (a replica streaming changes right now is
in contact now), else the replica's own ``primary-contacted-at``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding

from components.config.model import IndexConfig
from components.devpi.client import DevpiClient
from components.devpi.errors import DevpiError

from .common import busy_reason, table
from .connection import StackConfig

__all__ = ["Drift", "Node", "NodeTarget", "StatusReport", "compare_stack", "gather", "replica_nodes"]


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


@dataclass(frozen=True)
class NodeTarget:
    """A replica to ask: its name (from the stack file, else its URL), a client for it, the lag allowed."""

    name: str
    client: DevpiClient
    max_lag: int | None = None


@dataclass(frozen=True)
class Node:
    """One node of the registry as ``status`` lists it. ``reachable`` is None for a replica known only
    from the primary's ``polling_replicas`` (not declared, so not asked)."""

    name: str | None
    url: str | None
    role: str
    declared: bool
    reachable: bool | None
    serial: int | None = None
    lag: int | None = None
    last_contact: float | None = None  # unix time
    problem: str | None = None

    def to_json(self, now: float) -> dict[str, Any]:
        return {"name": self.name, "url": self.url, "role": self.role, "declared": self.declared,
                "reachable": self.reachable, "serial": self.serial, "lag": self.lag,
                "last_contact": _iso(self.last_contact),
                "seconds_since_contact": None if self.last_contact is None
                else round(max(0.0, now - self.last_contact), 1),
                "problem": self.problem}

    def cells(self, now: float) -> tuple[str, ...]:
        contact = "-" if self.last_contact is None else f"{max(0.0, now - self.last_contact):.0f} s ago"
        return (self.name or "(undeclared)", self.role, self.url or "-",
                "-" if self.serial is None else str(self.serial), "-" if self.lag is None else str(self.lag),
                contact, self.problem or "ok")


def _iso(when: float | None) -> str | None:
    return None if when is None else datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds")


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def replica_nodes(primary: Mapping[str, Any] | None, replicas: Sequence[tuple[NodeTarget, Mapping[str, Any] | str]],
                  now: float) -> list[Node]:
    """Pure: the replica nodes from the primary's ``/+status`` (None: unreachable) and each declared
    replica's own ``/+status`` (or why it could not be read), plus the replicas that poll the primary
    without being declared."""
    polling: dict[str, Mapping[str, Any]] = {
        str(k): v for k, v in ((primary or {}).get("polling_replicas") or {}).items() if isinstance(v, Mapping)}
    primary_serial = _int((primary or {}).get("serial"))
    matched: set[str] = set()
    nodes = []
    for target, status in replicas:
        url = target.client.url
        own = status if isinstance(status, Mapping) else {}
        uuid = str(own.get("uuid") or "")
        key = uuid if uuid in polling else next(
            (k for k, v in polling.items() if str(v.get("outside-url") or "").rstrip("/") == url), None)
        seen = polling.get(key) if key else None
        if key:
            matched.add(key)
        serial = _int(own.get("serial"))
        if serial is None and seen is not None:
            serial = _int(seen.get("serial"))
        reference = primary_serial if primary_serial is not None else _int(own.get("primary-serial"))
        lag = reference - serial if reference is not None and serial is not None else None
        if seen is not None:
            contact = now if seen.get("in-request") else _num(seen.get("last-request"))
        else:
            contact = _num(own.get("primary-contacted-at")) or _num(own.get("update-from-primary-at"))
        problem = None
        if not isinstance(status, Mapping):
            problem = f"unreachable: {status}"
        elif own.get("role") != "REPLICA":
            problem = f"not a replica (devpi reports role {own.get('role')!r})"
        elif lag is not None and target.max_lag is not None and lag > target.max_lag:
            problem = f"{lag} serials behind the primary (limit {target.max_lag})"
        nodes.append(Node(target.name, url, "replica", True, isinstance(status, Mapping), serial, lag, contact,
                          problem))
    for key, seen in polling.items():
        if key in matched:
            continue
        serial = _int(seen.get("serial"))
        nodes.append(Node(None, str(seen.get("outside-url") or "") or None, "replica", False, None, serial,
                          primary_serial - serial if primary_serial is not None and serial is not None else None,
                          now if seen.get("in-request") else _num(seen.get("last-request"))))
    return nodes


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
    nodes: list[Node] | None = None  # the primary first, then every replica (None: not gathered)
    now: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reachable and not self.drift and not self.node_problems

    @property
    def node_problems(self) -> list[Node]:
        """Declared replicas that are unreachable, not replicas, or lag beyond their limit."""
        return [n for n in self.nodes or [] if n.declared and n.role == "replica" and n.problem]

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url, "reachable": self.reachable, "version": self.version, "serial": self.serial,
            "event_serial": self.event_serial, "role": self.role, "busy": self.busy, "error": self.error,
            "drift": None if self.drift is None else [
                {"kind": d.kind, "name": d.name, "expected": d.expected, "actual": d.actual} for d in self.drift],
            "nodes": [n.to_json(self.now) for n in self.nodes or []],
            "ok": self.ok,
        }

    def human(self) -> RenderableType:
        """The human output: server, load, and (with a stack file) a table of the drift found."""
        if not self.reachable:
            return Group(f"{self.url}: UNREACHABLE ({self.error})", *self._node_table())
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
        return Group(*parts, *self._node_table())

    def _node_table(self) -> list[RenderableType]:
        """``nodes:`` and a table of every node, when there is more than the primary to show."""
        if not self.nodes or len(self.nodes) < 2:
            return []
        grid = table("node", "role", "url", "serial", "lag", "last contact", "state", right=("serial", "lag"))
        for node in self.nodes:
            grid.add_row(*node.cells(self.now))
        return ["nodes:", Padding(grid, (0, 0, 0, 2))]


def gather(client: DevpiClient, stack: StackConfig | None, now: float,
           replicas: Sequence[NodeTarget] = ()) -> StatusReport:
    """The report for the primary at ``client`` and each replica in ``replicas`` (asked one by one;
    an unreachable replica is a node with a problem, never an exception)."""
    report = StatusReport(url=client.url, reachable=False, now=now)
    # replicas first, the primary after: its serial is then never older than theirs, so a lag is never
    # negative just because a commit landed between the two reads
    seen: list[tuple[NodeTarget, Mapping[str, Any] | str]] = []
    for target in replicas:
        try:
            seen.append((target, target.client.status()))
        except DevpiError as exc:
            seen.append((target, " ".join(str(exc).split())))
    try:
        status = client.status()
    except DevpiError as exc:
        report.error = str(exc)
        report.nodes = [Node("primary", client.url, "primary", True, False, problem=f"unreachable: {exc}"),
                        *replica_nodes(None, seen, now)]
        return report
    report.nodes = [Node("primary", client.url, "replica" if status.get("role") == "REPLICA" else "primary", True,
                         True, _int(status.get("serial")), 0), *replica_nodes(status, seen, now)]
    report.reachable = True
    report.version = (status.get("versioninfo") or {}).get("devpi-server")
    report.serial = status.get("serial")
    report.event_serial = status.get("event-serial")
    report.role = status.get("role")
    report.busy = busy_reason(status, now)
    if stack is not None:
        report.drift = compare_stack(stack, client.list_users())
    return report
