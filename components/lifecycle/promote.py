"""``promote``: copy a version from one index to another through devpi's push, then prove it arrived.

devpi's push copies files unchanged, but on a non-volatile target it answers 409 for a file that
is already there — even with identical bytes — after it has already registered the metadata. So we
compare sha256 per filename *before* pushing:

- every source file already in the target with the same hash -> nothing to do (idempotent re-run);
- any file in the target with a different hash -> refuse, say how to fix it;
- some files missing on a non-volatile target -> push would 409 on the present ones, so the missing
  files are copied one by one (download, upload: same bytes, same hash); otherwise -> push.

Afterwards every source file must be in the target with the same sha256, or the command fails.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.devpi.client import DevpiClient, ReleaseFile, release_files_of
from components.devpi.errors import AuthenticationError, NotFoundError, PermissionDeniedError

from .common import LifecycleError, UsageError

__all__ = ["Comparison", "PromoteResult", "compare_files", "parse_requirement", "promote"]


# PEP 508 project names; versions as PEP 440 writes them (legacy ones too), but never URL syntax:
# devpi puts both into URL paths, where a "/" reaches other routes (and a 500)
_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9.+!_-]*")


def parse_requirement(spec: str, *, version_required: bool) -> tuple[str, str | None]:
    """``NAME==VERSION`` -> (name, version); ``NAME`` alone when the version is optional.

    Raises UsageError (checked before any request) for anything that is not a project name and a
    version devpi could store."""
    arg = "argument NAME==VERSION" if version_required else "argument NAME[==VERSION]"
    name, sep, version = spec.partition("==")
    name, version = name.strip(), version.strip()
    if not name or (sep and not version):
        raise UsageError(f"{arg}: expected NAME==VERSION, got {spec!r}")
    if version_required and not version:
        raise UsageError(f"{arg}: a version is required (NAME==VERSION), got {spec!r}")
    where = "" if name == spec else f" in {spec!r}"
    if not _NAME.fullmatch(name):
        raise UsageError(f"{arg}: {name!r}{where} is not a project name (letters and digits, with . _ - "
                         "between them, as PEP 508 has it)")
    if version and not _VERSION.fullmatch(version):
        raise UsageError(f"{arg}: version {version!r}{where} may only contain letters, digits and . + ! _ - "
                         "(and must start with a letter or digit)")
    return name, version or None


@dataclass(frozen=True)
class Comparison:
    """Pure comparison of the files of a version in source and target, by filename."""

    identical: tuple[str, ...]
    missing: tuple[str, ...]
    different: tuple[tuple[str, str, str], ...]  # (filename, source sha256, target sha256)
    extra: tuple[str, ...]  # in the target only

    @property
    def complete(self) -> bool:
        return not self.missing and not self.different


def compare_files(source: Sequence[ReleaseFile], target: Sequence[ReleaseFile]) -> Comparison:
    tmap = {f.filename: f.sha256 for f in target}
    smap = {f.filename: f.sha256 for f in source}
    return Comparison(
        identical=tuple(sorted(n for n, h in smap.items() if tmap.get(n) == h)),
        missing=tuple(sorted(n for n in smap if n not in tmap)),
        different=tuple(sorted((n, h, tmap[n]) for n, h in smap.items() if n in tmap and tmap[n] != h)),
        extra=tuple(sorted(n for n in tmap if n not in smap)),
    )


@dataclass(frozen=True)
class PromoteResult:
    project: str
    version: str
    source: str
    target: str
    action: str  # "pushed", "copied", "already-present"
    files: tuple[tuple[str, str], ...]  # (filename, sha256) verified in the target

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "version": self.version, "from": self.source, "to": self.target,
                "action": self.action, "files": [{"filename": f, "sha256": h} for f, h in self.files]}

    def human(self) -> str:
        verb = {"pushed": "promoted", "copied": "promoted (missing files copied)",
                "already-present": "already promoted (identical files), nothing to do"}[self.action]
        lines = [f"{self.project}=={self.version} {self.source} -> {self.target}: {verb}"]
        lines += [f"  {f}  sha256={h}" for f, h in self.files]
        return "\n".join(lines)


def _own_files(client: DevpiClient, index: str, project: str, version: str) -> list[ReleaseFile]:
    """Files of the version stored on ``index`` itself (devpi's version JSON includes inherited ones)."""
    try:
        data: Mapping[str, Any] = client.get_version(index, project, version)
    except NotFoundError:
        return []
    return [f for f in release_files_of(data) if f.index == index]


def _denied(client: DevpiClient, target: str, exc: Exception) -> LifecycleError:
    who = client.user or "anonymous"
    return LifecycleError(
        f"user {who!r} may not upload to {target}: devpi only lets users in the index's acl_upload push "
        f"into it (root is not implied); add {who!r} to acl_upload of {target} or promote as a user "
        f"who is in it ({type(exc).__name__}: HTTP {getattr(exc, 'status', '?')})"
    )


def promote(client: DevpiClient, project: str, version: str, source: str, target: str) -> PromoteResult:
    if source == target:
        raise LifecycleError(f"--from and --to are the same index ({source})")
    for index in (source, target):
        try:
            client.get_index(index)
        except NotFoundError as exc:
            raise LifecycleError(f"index {index} does not exist on {client.url}") from exc
    src_files = _own_files(client, source, project, version)
    if not src_files:
        raise LifecycleError(f"{project}=={version} has no files on {source} itself (push needs them there; "
                             "a version inherited from a base index must be promoted from that base)")
    target_config = client.get_index(target)
    before = compare_files(src_files, _own_files(client, target, project, version))
    if before.different:
        name, s, t = before.different[0]
        raise LifecycleError(
            f"{project}=={version} already exists on {target} with different content ({name}: sha256 "
            f"{t[:12]}… there, {s[:12]}… on {source}); remove it there first with "
            f"`devpi-lifecycle remove {project}=={version} --index {target} --force`, then promote again"
        )
    if before.complete:
        action = "already-present"
    elif before.identical and not target_config.get("volatile", True):
        action = "copied"
        _copy_missing(client, source, target, project, version, [f for f in src_files
                                                                  if f.filename in before.missing])
    else:
        action = "pushed"
        try:
            client.push(source, project, version, target)
        except (AuthenticationError, PermissionDeniedError) as exc:
            raise _denied(client, target, exc) from exc
    after = compare_files(src_files, _own_files(client, target, project, version))
    if not after.complete:
        raise LifecycleError(
            f"after promoting {project}=={version} to {target}, the target does not hold identical files "
            f"(missing: {', '.join(after.missing) or '-'}; different: "
            f"{', '.join(d[0] for d in after.different) or '-'})"
        )
    return PromoteResult(project, version, source, target, action,
                         tuple(sorted((f.filename, f.sha256) for f in src_files)))


def _copy_missing(client: DevpiClient, source: str, target: str, project: str, version: str,
                  files: Sequence[ReleaseFile]) -> None:
    meta = client.get_version(source, project, version)
    fields = {k: meta[k] for k in ("summary", "requires_python") if meta.get(k)}
    with tempfile.TemporaryDirectory(prefix="devpi-promote-") as tmp:
        for f in files:
            path = Path(tmp) / f.filename
            path.write_bytes(client.download(f.href))
            try:
                client.upload(target, path, name=str(meta.get("name") or project), version=version, **fields)
            except (AuthenticationError, PermissionDeniedError) as exc:
                raise _denied(client, target, exc) from exc
