"""Retention policy for an index: which versions of which projects may be removed, and why.

devpi has no time-to-live for versions (devpi/devpi#751, #968); this module is the policy model the
stack config declares per index (``devpi-registry:indexes[i].retention``) and the pure planner the
``devpi-lifecycle prune`` command applies.

Semantics (chosen to be conservative — a version is removed only when every stated rule agrees):

- *candidates* are the versions of projects matched by ``include`` (all projects when empty) and not
  matched by ``exclude`` (``fnmatch`` on PEP 503 normalized names, patterns normalized the same way);
  with ``only_prereleases`` only dev and pre-releases (PEP 440, ``packaging.version``) are candidates —
  final and post releases are always kept;
- ``keep_last = N`` keeps the N highest candidate versions (PEP 440 order) of each project;
- ``max_age_days = D`` keeps candidates first uploaded less than D days ago (age = earliest ``when``
  in the files' upload/push log; a version without a recorded time is kept);
- a candidate is removed only if it is beyond ``keep_last`` (when set) **and** older than
  ``max_age_days`` (when set). A policy must set at least one of the two: a policy with neither
  would remove every candidate, which is never what a declaration meant.
- versions that are not valid PEP 440 are never removed (they cannot be ordered or classified).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from packaging.version import InvalidVersion, Version

from components.config.errors import ConfigError
from components.config.rules import glob_problem, retention_count_problem, retention_policy_problem

__all__ = [
    "Decision",
    "Plan",
    "RetentionPolicy",
    "VersionInfo",
    "normalize_pattern",
    "plan_prune",
]

_KEYS = {
    "keepLast": "keep_last",
    "maxAgeDays": "max_age_days",
    "onlyPrereleases": "only_prereleases",
    "include": "include",
    "exclude": "exclude",
}


def normalize_pattern(pattern: str) -> str:
    """A project glob normalized like a PEP 503 name (``Demo_Pkg*`` -> ``demo-pkg*``)."""
    return re.sub(r"[-_.]+", "-", pattern).lower()


@dataclass(frozen=True, kw_only=True)
class RetentionPolicy:
    """Which versions of an index may be removed (see the module docstring for the exact rules)."""

    keep_last: int | None = None
    max_age_days: int | None = None
    only_prereleases: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check(self.__dict__, "retention")

    @classmethod
    def from_config(cls, mapping: Any, path: str = "retention") -> RetentionPolicy:
        """Build from the stack-config shape (camelCase keys); errors name ``path.<key>`` and the value."""
        if not isinstance(mapping, Mapping):
            raise ConfigError(path, mapping, "must be an object with keys " + ", ".join(_KEYS))
        unknown = sorted(set(mapping) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{path}.{unknown[0]}", mapping[unknown[0]],
                              f"unknown key; valid keys are {', '.join(_KEYS)}")
        values: dict[str, Any] = {attr: cls.__dataclass_fields__[attr].default for attr in _KEYS.values()}
        for key, attr in _KEYS.items():
            if mapping.get(key) is None:
                continue
            value = mapping[key]
            if key in ("include", "exclude"):
                if isinstance(value, str) or not isinstance(value, Sequence):
                    raise ConfigError(f"{path}.{key}", value, "must be a list of project name globs")
                value = tuple(value)
            values[attr] = value
        _check(values, path)
        return cls(**values)

    def to_config(self) -> dict[str, Any]:
        """The stack-config shape (inverse of ``from_config``)."""
        out: dict[str, Any] = {}
        if self.keep_last is not None:
            out["keepLast"] = self.keep_last
        if self.max_age_days is not None:
            out["maxAgeDays"] = self.max_age_days
        if self.only_prereleases:
            out["onlyPrereleases"] = True
        if self.include:
            out["include"] = list(self.include)
        if self.exclude:
            out["exclude"] = list(self.exclude)
        return out

    def matches_project(self, project: str) -> bool:
        name = normalize_pattern(project)
        if self.include and not any(fnmatch.fnmatchcase(name, normalize_pattern(g)) for g in self.include):
            return False
        return not any(fnmatch.fnmatchcase(name, normalize_pattern(g)) for g in self.exclude)


def _check(values: Mapping[str, Any], path: str) -> None:
    """Raise ConfigError naming ``path.<key>`` (stack-config spelling) for the first invalid value;
    the rules themselves are those of :mod:`components.config.rules`."""
    for key, attr in (("keepLast", "keep_last"), ("maxAgeDays", "max_age_days")):
        value = values[attr]
        if value is not None and (problem := retention_count_problem(value)):
            raise ConfigError(f"{path}.{key}", value, problem)
    if problem := retention_policy_problem(values["keep_last"], values["max_age_days"]):
        raise ConfigError(
            path, {k: values[a] for k, a in _KEYS.items() if values[a] not in (None, (), False)}, problem)
    if not isinstance(values["only_prereleases"], bool):
        raise ConfigError(f"{path}.onlyPrereleases", values["only_prereleases"], "must be true or false")
    for key in ("include", "exclude"):
        for i, glob in enumerate(values[key]):
            if problem := glob_problem(glob):
                raise ConfigError(f"{path}.{key}[{i}]", glob, problem)


@dataclass(frozen=True)
class VersionInfo:
    """One version on an index, as the planner needs it."""

    project: str
    version: str
    uploaded: datetime | None = None  # earliest upload/push time of its files (UTC)
    files: int = 0


@dataclass(frozen=True)
class Decision:
    project: str
    version: str
    remove: bool
    reason: str


@dataclass(frozen=True)
class Plan:
    """The outcome of ``plan_prune``: one decision per version, in project then version order."""

    decisions: tuple[Decision, ...] = field(default=())

    @property
    def removals(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if d.remove)

    @property
    def kept(self) -> tuple[Decision, ...]:
        return tuple(d for d in self.decisions if not d.remove)


def _parse(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


def plan_prune(versions: Iterable[VersionInfo], policy: RetentionPolicy, now: datetime) -> Plan:
    """Pure: decide for every version whether ``policy`` removes it, with the reason."""
    by_project: dict[str, list[VersionInfo]] = {}
    for info in versions:
        by_project.setdefault(info.project, []).append(info)
    cutoff = now - timedelta(days=policy.max_age_days) if policy.max_age_days is not None else None
    decisions: list[Decision] = []
    for project in sorted(by_project):
        infos = by_project[project]
        parsed = [(info, _parse(info.version)) for info in infos]
        out: dict[str, Decision] = {}
        if not policy.matches_project(project):
            for info, _ in parsed:
                out[info.version] = Decision(project, info.version, False, "project not matched by include/exclude")
        else:
            candidates: list[tuple[VersionInfo, Version]] = []
            for info, ver in parsed:
                if ver is None:
                    out[info.version] = Decision(project, info.version, False, "not a PEP 440 version")
                elif policy.only_prereleases and not ver.is_prerelease:
                    out[info.version] = Decision(project, info.version, False, "final release (onlyPrereleases)")
                else:
                    candidates.append((info, ver))
            candidates.sort(key=lambda pair: pair[1], reverse=True)
            for rank, (info, _ver) in enumerate(candidates, start=1):
                out[info.version] = _decide(project, info, rank, policy, cutoff)
        ordered = sorted(out.values(), key=lambda d: (_parse(d.version) is None, _parse(d.version) or d.version))
        decisions.extend(ordered)
    return Plan(tuple(decisions))


def _decide(project: str, info: VersionInfo, rank: int, policy: RetentionPolicy,
            cutoff: datetime | None) -> Decision:
    reasons = []
    if policy.keep_last is not None:
        if rank <= policy.keep_last:
            return Decision(project, info.version, False, f"among the newest {policy.keep_last} (#{rank})")
        reasons.append(f"beyond the newest {policy.keep_last} (#{rank})")
    if cutoff is not None:
        if info.uploaded is None:
            return Decision(project, info.version, False, "no upload time recorded")
        if info.uploaded >= cutoff:
            return Decision(project, info.version, False,
                            f"uploaded {info.uploaded:%Y-%m-%d}, within {policy.max_age_days} days")
        reasons.append(f"uploaded {info.uploaded:%Y-%m-%d}, older than {policy.max_age_days} days")
    return Decision(project, info.version, True, "; ".join(reasons))
