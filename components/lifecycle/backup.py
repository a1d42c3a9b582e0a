"""``backup`` and ``restore`` of a devpi-server data folder, through devpi-export / devpi-import.

What devpi guarantees (read in devpi-server 6.20.3 ``importexport.py`` and ``keyfs.py``, then tried
against a running server in tests/test_lifecycle_backup.py):

- ``devpi-export`` may run **while the server runs**. It opens the same sqlite database and dumps
  everything inside ONE keyfs read transaction pinned at the serial current when it starts; keyfs is
  versioned by serial, so commits made during the export are simply not in it. The dump is a
  consistent snapshot of users (with password hashes), indexes, versions, files and their logs.
- The one live hazard: a file deleted by the server *during* the export (a prune, a remove) is gone
  from ``+files`` while the snapshot still lists it; devpi-export then stops with ``Fatal: The file for
  … is missing`` (or the copy fails) and exits non-zero. It never writes a silently incomplete dump;
  this tool treats any non-zero exit as failure, keeps no partial archive, and a re-run succeeds.
- Copying the data folder (``tar`` of the serverdir) while the server runs is **not** safe: the
  sqlite database can be copied mid-write (no WAL checkpoint coordination), and ``+files`` and the
  database are not copied at one instant (files referenced but not copied, or the reverse). That is
  the seed guide's method; it is only correct with the server stopped (stop → tar → start).
- ``devpi-import`` needs a serverdir with no devpi data; it recreates users (same password hashes, so
  the same passwords work), indexes, versions and files with their sha256 and logs. Login tokens from
  before do not survive unless the secret file is kept (restore does not invent one).

On the jonasal/devpi-server image the same archive can also be restored by the image itself: unpack
it and mount its ``export/`` folder at ``/import`` for one run (the entrypoint then runs
``devpi-import --root-passwd $DEVPI_PASSWORD /import`` into an empty ``/devpi/server``).

So: ``backup`` = devpi-export (live) into a temporary folder next to the archives → tar.gz →
atomic rename → keep the newest N. ``restore`` = unpack (a truncated or foreign archive stops here)
→ devpi-import into a temporary folder beside the serverdir (same filesystem) → rename it into place
only on success. A failed import (a file missing from the archive, a full disk, Ctrl-C) removes the
temporary folder and leaves the serverdir as it was, so the restore can simply be repeated.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from components.backup.archive import ARCHIVE_RE, COMPLETE_MEMBER, DUMP_FOLDER, archive_name

from .common import LifecycleError, UsageError

__all__ = ["ARCHIVE_RE", "BackupResult", "archives_to_delete", "backup", "restore"]



def _tool(name: str) -> str:
    """The devpi tool next to this Python (the venv), else on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise LifecycleError(f"{name} not found (install devpi-server where this tool runs)")
    return found


def archives_to_delete(names: list[str], keep: int) -> list[str]:
    """Pure: which of our archives (by name; the timestamp sorts) fall outside the newest ``keep``."""
    ours = sorted((n for n in names if ARCHIVE_RE.match(n)), reverse=True)
    return ours[keep:]


@dataclass(frozen=True)
class BackupResult:
    archive: Path
    bytes: int
    deleted: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"archive": str(self.archive), "bytes": self.bytes, "deleted_old": list(self.deleted)}

    def human(self) -> str:
        old = f"; removed old archives: {', '.join(self.deleted)}" if self.deleted else ""
        return f"backup written: {self.archive} ({self.bytes} bytes){old}"


def failure_line(stderr: str, stdout: str) -> str:
    """Pure: the line that says why a devpi tool failed: its own ``fatal:`` line (devpi-import and
    devpi-export print it on stderr, after pages of INFO logging on stdout), else the last line of
    stderr, else of stdout."""
    for text in (stderr, stdout):
        fatal = [ln.strip() for ln in text.splitlines() if ln.strip().lower().startswith("fatal:")]
        if fatal:
            return fatal[-1]
    tail = [ln.strip() for ln in stderr.splitlines() if ln.strip()] or [
        ln.strip() for ln in stdout.splitlines() if ln.strip()]
    return tail[-1] if tail else "no output"


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LifecycleError(f"{what} failed (exit {proc.returncode}): {failure_line(proc.stderr, proc.stdout)}")


def backup(serverdir: Path, to: Path, *, keep: int, now: datetime) -> BackupResult:
    if keep < 1:
        raise LifecycleError("--keep must be at least 1 (the archive just written)")
    serverdir = Path(serverdir)
    if not (serverdir / ".nodeinfo").exists():
        raise LifecycleError(f"{serverdir} holds no devpi-server data (no .nodeinfo): wrong --serverdir?")
    to = Path(to)
    to.mkdir(parents=True, exist_ok=True)
    final = to / archive_name(now)
    if final.exists():
        raise LifecycleError(f"{final} exists already (two backups in the same second?)")
    # temp folder next to the archives: same filesystem, and never inside the serverdir
    with tempfile.TemporaryDirectory(prefix=".devpi-export-", dir=to) as tmp:
        dump = Path(tmp) / DUMP_FOLDER
        _run([_tool("devpi-export"), "--serverdir", str(serverdir), str(dump)], "devpi-export")
        if not (dump / "dataindex.json").exists():
            raise LifecycleError("devpi-export finished without writing dataindex.json")
        partial = Path(tmp) / (final.name + ".partial")
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(dump, arcname=DUMP_FOLDER)
        partial.chmod(0o600)  # the dump holds password hashes
        partial.replace(final)
    deleted = archives_to_delete([p.name for p in to.iterdir()], keep)
    for name in deleted:
        (to / name).unlink()
    return BackupResult(final, final.stat().st_size, tuple(deleted))


def _check_target(serverdir: Path) -> None:
    if (serverdir / ".nodeinfo").exists():
        raise LifecycleError(f"{serverdir} already holds devpi-server data: restore only into a new, empty "
                             "serverdir (move the old one aside first)")
    if serverdir.exists() and (not serverdir.is_dir() or any(serverdir.iterdir())):
        raise LifecycleError(f"{serverdir} is not empty: restore only into a new, empty serverdir")


def _unpack(archive: Path, into: Path) -> tuple[Path, dict[str, Any]]:
    """Unpack ``archive`` into ``into``; (dump folder, its dataindex.json). UsageError for an archive
    that is not a complete devpi-lifecycle backup (truncated, corrupt, foreign)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")  # refuses absolute paths, .., devices
    except (tarfile.TarError, EOFError, zlib.error, OSError) as exc:
        # a truncated gzip ends in EOFError, a corrupt one in zlib.error or BadGzipFile (an OSError)
        raise UsageError(f"argument ARCHIVE: cannot unpack {archive}: it is truncated or corrupt "
                         f"({type(exc).__name__}: {exc})") from exc
    dump = into / DUMP_FOLDER
    try:
        index = json.loads((dump / "dataindex.json").read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"argument ARCHIVE: {archive} is not a devpi-lifecycle backup (no "
                         f"{COMPLETE_MEMBER})") from exc
    if not isinstance(index, dict):
        raise UsageError(f"argument ARCHIVE: {archive} is not a devpi-lifecycle backup ({COMPLETE_MEMBER} "
                         "is not an object)")
    return dump, index


def _staging_dir(serverdir: Path) -> Path:
    """An empty, private folder beside ``serverdir`` (same filesystem, so moving it is one rename)."""
    try:
        serverdir.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{serverdir.name}.restoring-", dir=serverdir.parent))
    except OSError as exc:
        raise LifecycleError(f"cannot create a folder beside {serverdir} to restore into: {exc.strerror}") from exc


def _move_into_place(staging: Path, serverdir: Path) -> None:
    """Rename the restored folder to ``serverdir``; an empty ``serverdir`` is replaced (its mode kept)."""
    try:
        if serverdir.exists():
            staging.chmod(serverdir.stat().st_mode & 0o7777)
        staging.replace(serverdir)  # atomic rename(2); refuses (ENOTEMPTY) if serverdir filled up meanwhile
    except OSError as exc:
        raise LifecycleError(f"restored into {staging}, but cannot move it to {serverdir}: {exc.strerror}") from exc


def restore(archive: Path, serverdir: Path) -> dict[str, Any]:
    """Unpack a backup archive and devpi-import it into ``serverdir`` (which must hold no devpi data).

    The import runs in a temporary folder beside ``serverdir`` that replaces it only on success; on
    any failure the temporary folder is removed and ``serverdir`` is left as it was."""
    archive, serverdir = Path(archive), Path(serverdir)
    if not archive.is_file():
        raise UsageError(f"argument ARCHIVE: {archive} not found (or not a file)")
    _check_target(serverdir)
    with tempfile.TemporaryDirectory(prefix="devpi-restore-") as tmp:
        dump, index = _unpack(archive, Path(tmp))
        argv = [_tool("devpi-import")]
        if "root/pypi" not in (index.get("indexes") or {}):
            argv.append("--no-root-pypi")  # else devpi-import would create the PyPI mirror anew
        staging = _staging_dir(serverdir)
        try:
            _run([*argv, "--serverdir", str(staging), str(dump)], "devpi-import")
            _move_into_place(staging, serverdir)
        except BaseException:  # also Ctrl-C: never leave a half-restored folder behind
            shutil.rmtree(staging, ignore_errors=True)
            raise
    users = index.get("users") or {}
    return {"serverdir": str(serverdir), "users": sorted(users), "indexes": sorted(index.get("indexes") or {}),
            "devpi_server_of_dump": index.get("devpi_server")}
