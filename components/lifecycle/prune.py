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

from components.config.retention import Decision, Plan, RetentionPolicy, VersionInfo, plan_prune
from components.devpi.client import DevpiClient, release_files_of
from components.devpi.errors import NotFoundError, PermissionDeniedError

from .common import BusyGate, LifecycleError, Progress

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

    def human(self, verbose: bool = False) -> str:
        n = len(self.plan.removals)
        head = (f"{self.index}: removed {len(self.removed)} of {len(self.plan.decisions)} versions"
                if self.applied else
                f"{self.index}: would remove {n} of {len(self.plan.decisions)} versions (dry run; --yes applies)")
        lines = [head]
        for d in self.plan.decisions:
            if d.remove or verbose:
                lines.append(f"  {'remove' if d.remove else 'keep  '} {d.project}=={d.version}  ({d.reason})")
        return "\n".join(lines)


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
    """DELETE each version, ``jobs`` requests in flight (devpi serializes the commits, but request
    handling, auth and the response overlap: ~1.5x with 4 on devpi-server 6.20.3). Each worker thread
    has its own keep-alive client; the login token is shared (components.devpi.client token cache)."""
    jobs = max(1, jobs) if make_client is not None else 1
    local = threading.local()
    clones: list[DevpiClient] = []
    lock = threading.Lock()

    def worker_client() -> DevpiClient:
        if jobs == 1 or make_client is None:
            return client
        mine: DevpiClient | None = getattr(local, "client", None)
        if mine is None:
            mine = local.client = make_client()
            with lock:
                clones.append(mine)
        return mine

    def delete(decision: Decision) -> Decision:
        # NotFoundError: already gone (another prune, a manual remove) — the goal is reached
        with contextlib.suppress(NotFoundError):
            worker_client().delete_version(index, decision.project, decision.version, force=force)
        return decision

    failure: BaseException | None = None

    def collect(done: set[Future[Decision]]) -> None:
        nonlocal failure
        for future in done:
            exc = future.exception()
            if exc is not None:
                failure = failure or exc
                continue
            report.removed.append(future.result())
            if bar:
                bar.advance()

    try:
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="prune") as pool:
            pending: set[Future[Decision]] = set()
            for decision in removals:
                if failure is not None:
                    break
                if gate:
                    gate.check()
                pending.add(pool.submit(delete, decision))
                if len(pending) >= 2 * jobs:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    collect(done)
            collect(wait(pending)[0])
    finally:
        for c in clones:
            c.close()
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


def now_utc() -> datetime:
    return datetime.now(UTC)
