"""``remove``: delete a version or a whole project from one index, deliberately.

Non-volatile indexes refuse deletes (403) unless the request carries ``?force`` (devpi PR #795):
we send it only with an explicit ``--force``, instead of devpi-plumber's trick of making the index
volatile for a moment (which would open it to overwrites). Nothing is deleted without ``--yes`` or an
interactive confirmation.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.version import InvalidVersion, Version

from components.devpi.client import DevpiClient, normalize
from components.devpi.errors import NotFoundError, PermissionDeniedError

from .common import LifecycleError

__all__ = ["RemovePlan", "apply_remove", "missing_version_message", "plan_remove"]


@dataclass(frozen=True)
class RemovePlan:
    index: str
    project: str
    version: str | None  # None: the whole project
    versions: tuple[str, ...]
    volatile: bool

    def describe(self) -> str:
        what = f"{self.project}=={self.version}" if self.version else (
            f"project {self.project} ({len(self.versions)} versions: {', '.join(self.versions)})")
        return f"{what} from {self.index}"

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "project": self.project, "version": self.version,
                "versions": list(self.versions), "volatile": self.volatile}


def _sort_key(v: str) -> tuple[int, Any]:
    try:
        return (0, Version(v))
    except InvalidVersion:
        return (1, v)


def missing_version_message(project: str, version: str, index: str, versions: Sequence[str]) -> str:
    """Pure: one short line for a version that is not on the index: the count and the closest few
    (an index may hold hundreds of nightlies; listing them all helps nobody)."""
    if not versions:
        return f"{project}=={version} is not on {index} (no versions there)"
    closest = difflib.get_close_matches(version, versions, n=3, cutoff=0.0)
    count = f"{len(versions)} version{'' if len(versions) == 1 else 's'} there"
    return f"{project}=={version} is not on {index} ({count}; closest: {', '.join(closest)})"


def plan_remove(client: DevpiClient, index: str, project: str, version: str | None) -> RemovePlan:
    try:
        config = client.get_index(index)
    except NotFoundError as exc:
        raise LifecycleError(f"index {index} does not exist on {client.url}") from exc
    try:
        versions = sorted(client.get_project(index, project), key=_sort_key)
    except NotFoundError as exc:
        raise LifecycleError(f"project {normalize(project)} is not on {index} (inherited projects must be "
                             "removed from the index that holds them)") from exc
    if version is not None:
        if version not in versions:
            raise LifecycleError(missing_version_message(normalize(project), version, index, versions))
        versions = [version]
    return RemovePlan(index, normalize(project), version, tuple(versions), bool(config.get("volatile", True)))


def apply_remove(client: DevpiClient, plan: RemovePlan, *, force: bool) -> None:
    if not plan.volatile and not force:
        raise LifecycleError(f"{plan.index} is non-volatile: removing from it needs --force "
                             "(devpi's ?force delete); nothing was removed")
    try:
        if plan.version is None:
            client.delete_project(plan.index, plan.project, force=not plan.volatile)
        else:
            client.delete_version(plan.index, plan.project, plan.version, force=not plan.volatile)
    except PermissionDeniedError as exc:
        who = client.user or "anonymous"
        raise LifecycleError(f"user {who!r} may not remove anything on {plan.index}: only root, the index "
                             "owner and users in acl_upload may") from exc
