"""``prune``: apply a retention policy (components.config.retention) to an index.

Fast by construction: one keep-alive session, one request per project to learn every version with
its files and upload times (``GET /<u>/<i>/<project>?ignore_bases``), then one DELETE per removed
version (a few in flight, each thread with its own keep-alive session) — no re-listing between
deletes. Dry-run unless told to apply; a ``BusyGate`` pauses the
deletes while ``/+status`` shows the server falling behind.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.padding import Padding

from components.config.retention import Decision, Plan, RetentionPolicy, VersionInfo, plan_prune
from components.devpi.client import DevpiClient, release_files_of
from components.devpi.errors import NotFoundError, PermissionDeniedError

from .common import BusyGate, LifecycleError, Progress, table

__all__ = ["PruneReport", "collect_versions", "prune_index", "uploaded_at"]


def uploaded_at(versiondata: Mapping[str, Any]) -> datetime | None:
    """Pure: earliest ``when`` in the release files' logs (devpi records ``[Y, M, D, h, m, s]`` UTC)."""
    times = []
    for f in release_files_of(versiondata):
        for entry in f.log:
            when = entry.get("when")
            if isinstance(when, list | tuple) and len(when) >= 6:
                try:
                    y, mo, d, h, mi, sec = (int(x) for x in when[:6])
                    times.append(datetime(y, mo, d, h, mi, sec, tzinfo=UTC))
                except (TypeError, ValueError):
                    continue
    return min(times) if times else None


def collect_versions(client: DevpiClient, index: str, policy: RetentionPolicy,
                     progress: Callable[[int], Progress] | None = None) -> tuple[list[VersionInfo], int]:
    """Every version of the projects the policy can touch, and the number of projects skipped."""
    projects = client.list_projects(index)
    wanted = [p for p in projects if policy.matches_project(p)]
    bar = progress(len(wanted)) if progress else None
    out: list[VersionInfo] = []
    for project in wanted:
        try:
            versions = client.get_project(index, project)
        except NotFoundError:  # removed meanwhile
            versions = {}
        for version, data in versions.items():
            out.append(VersionInfo(project, version, uploaded_at(data), len(release_files_of(data))))
        if bar:
            bar.advance()
    if bar:
        bar.close()
    return out, len(projects) - len(wanted)


@dataclass
class PruneReport:
    index: str
    policy: RetentionPolicy
    plan: Plan
    applied: bool
    volatile: bool
    skipped_projects: int = 0
    removed: list[Decision] = field(default_factory=list)
    pauses: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index, "policy": self.policy.to_config(), "applied": self.applied,
            "volatile": self.volatile, "skipped_projects": self.skipped_projects,
            "versions": len(self.plan.decisions), "to_remove": len(self.plan.removals),
            "removed": len(self.removed), "busy_pauses": self.pauses,
            "decisions": [{"project": d.project, "version": d.version,
                           "action": "remove" if d.remove else "keep", "reason": d.reason}
                          for d in self.plan.decisions],
        }

    def human(self, verbose: bool = False) -> RenderableType:
        """A summary line and a table of the removals (with ``verbose`` also of what is kept, and why)."""
        n = len(self.plan.removals)
        head = (f"{self.index}: removed {len(self.removed)} of {len(self.plan.decisions)} versions"
                if self.applied else
                f"{self.index}: would remove {n} of {len(self.plan.decisions)} versions (dry run; --yes applies)")
        shown = [d for d in self.plan.decisions if d.remove or verbose]
        if not shown:
            return head
        decisions = table("action", "version", "reason")
        for d in shown:
            decisions.add_row("remove" if d.remove else "keep", f"{d.project}=={d.version}", d.reason)
        return Group(head, Padding(decisions, (0, 0, 0, 2)))


def prune_index(
    client: DevpiClient,
    index: str,
    policy: RetentionPolicy,
    *,
    now: datetime,
    apply: bool,
    force: bool,
    gate: BusyGate | None = None,
    progress: Callable[[int, str], Progress] | None = None,
    jobs: int = 4,
    make_client: Callable[[], DevpiClient] | None = None,
) -> PruneReport:
    """Plan with ``policy`` and, when ``apply``, delete. ``make_client`` (a factory of clients with the
    same connection) enables ``jobs`` parallel deletes; without it deletes run one by one."""
    try:
        config = client.get_index(index)
    except NotFoundError as exc:
        raise LifecycleError(f"index {index} does not exist on {client.url}") from exc
    if config.get("type") == "mirror":
        raise LifecycleError(f"{index} is a mirror: its files are a cache, prune only stage indexes")
    volatile = bool(config.get("volatile", True))
    listing = (lambda n: progress(n, f"reading {index}")) if progress else None
    versions, skipped = collect_versions(client, index, policy, listing)
    plan = plan_prune(versions, policy, now)
    report = PruneReport(index, policy, plan, apply, volatile, skipped)
    if not apply or not plan.removals:
        return report
    if not volatile and not force:
        raise LifecycleError(f"{index} is non-volatile: pruning it needs --force (devpi's ?force delete); "
                             "nothing was removed")
    _delete_all(client, index, plan.removals, report, force=not volatile, gate=gate, jobs=jobs,
                make_client=make_client, bar=progress(len(plan.removals), f"pruning {index}") if progress else None)
    return report


def _delete_all(client: DevpiClient, index: str, removals: Sequence[Decision], report: PruneReport, *,
                force: bool, gate: BusyGate | None, jobs: int, make_client: Callable[[], DevpiClient] | None,
                bar: Progress | None) -> None:
    """DELETE each version (see ``_Deletes``), recording the removals in ``report`` in plan order."""

    def done(decision: Decision) -> None:
        report.removed.append(decision)
        if bar:
            bar.advance()

    deletes = _Deletes(client, index, force=force, jobs=jobs, make_client=make_client)
    try:
        failure = deletes.run(removals, gate, done)
    finally:
        deletes.close()
        if bar:
            bar.close()
        if gate:
            report.pauses = gate.pauses
    order = {(d.project, d.version): i for i, d in enumerate(removals)}
    report.removed.sort(key=lambda d: order[(d.project, d.version)])
    if isinstance(failure, PermissionDeniedError):
        who = client.user or "anonymous"
        raise LifecycleError(
            f"user {who!r} may not remove versions on {index} (stopped after {len(report.removed)} "
            "removals; only root, the index owner and acl_upload users may)") from failure
    if failure is not None:
        raise failure


class _Deletes:
    """DELETE versions, ``jobs`` requests in flight (devpi serializes the commits, but request
    handling, auth and the response overlap: ~1.5x with 4 on devpi-server 6.20.3). Each worker thread
    has its own keep-alive client from ``make_client`` (without it, one at a time on ``client``); the
    login token is shared (the clients' ClientState). The first failure stops new deletes."""

    def __init__(self, client: DevpiClient, index: str, *, force: bool, jobs: int,
                 make_client: Callable[[], DevpiClient] | None) -> None:
        self.client, self.index, self.force = client, index, force
        self.make_client = make_client
        self.jobs = max(1, jobs) if make_client is not None else 1
        self.failure: BaseException | None = None
        self._local = threading.local()
        self._clones: list[DevpiClient] = []
        self._lock = threading.Lock()

    def run(self, removals: Sequence[Decision], gate: BusyGate | None,
            done: Callable[[Decision], None]) -> BaseException | None:
        """Delete every version of ``removals`` (pausing at ``gate``), calling ``done`` for each one
        removed; returns the first failure, or None."""
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="prune") as pool:
            pending: set[Future[Decision]] = set()
            for decision in removals:
                if self.failure is not None:
                    break
                if gate:
                    gate.check()
                pending.add(pool.submit(self._delete, decision))
                if len(pending) >= 2 * self.jobs:
                    finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                    self._collect(finished, done)
            self._collect(wait(pending)[0], done)
        return self.failure

    def close(self) -> None:
        for c in self._clones:
            c.close()

    def _worker_client(self) -> DevpiClient:
        if self.jobs == 1 or self.make_client is None:
            return self.client
        mine: DevpiClient | None = getattr(self._local, "client", None)
        if mine is None:
            mine = self._local.client = self.make_client()
            with self._lock:
                self._clones.append(mine)
        return mine

    def _delete(self, decision: Decision) -> Decision:
        # NotFoundError: already gone (another prune, a manual remove) — the goal is reached
        with contextlib.suppress(NotFoundError):
            self._worker_client().delete_version(self.index, decision.project, decision.version, force=self.force)
        return decision

    def _collect(self, finished: set[Future[Decision]], done: Callable[[Decision], None]) -> None:
        for future in finished:
            exc = future.exception()
            if exc is not None:
                self.failure = self.failure or exc
            else:
                done(future.result())


def now_utc() -> datetime:
    return datetime.now(UTC)
