"""A failed restore leaves nothing behind: devpi-import runs in a temporary folder beside the target
and is moved into place only on success, and the error carries devpi-import's own ``fatal:`` line."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from components.devpi.client import DevpiClient
from components.lifecycle import backup as backup_mod
from components.lifecycle.cli import main
from tests.fixtures.devpi import DevpiServer
from tests.support import make_wheel


@pytest.fixture
def archives(devpi_server: DevpiServer, unique: str, tmp_path: Path) -> tuple[Path, Path, str]:
    """(a good backup, the same backup with one release file missing, that file's name)."""
    admin = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
    user = f"a{unique}"
    admin.create_user(user, "pw")
    admin.create_index(f"{user}/dev", {"volatile": True, "bases": [], "acl_upload": ["root"]})
    wheel = make_wheel(tmp_path / "w", f"atomic-{unique}", "1.0")
    admin.upload(f"{user}/dev", wheel, name=f"atomic-{unique}", version="1.0")
    good = backup_mod.backup(devpi_server.serverdir, tmp_path / "archives", keep=1, now=datetime.now(UTC)).archive
    unpacked = tmp_path / "unpacked"
    with tarfile.open(good, "r:gz") as tar:
        tar.extractall(unpacked, filter="data")
    [victim] = (unpacked / "export").rglob(wheel.name)
    victim.unlink()
    broken = tmp_path / "broken.tar.gz"
    with tarfile.open(broken, "w:gz") as tar:
        tar.add(unpacked / "export", arcname="export")
    return good, broken, wheel.name


def restore(archive: Path, target: Path) -> tuple[int, str]:
    err = io.StringIO()
    code = main(["restore", str(archive), "--serverdir", str(target)], out=io.StringIO(), err=err)
    return code, err.getvalue()


def leftovers(parent: Path, target: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(f".{target.name}."))


@pytest.mark.devpi
class TestFailedRestoreLeavesTheTargetAsItWas:
    def test_new_target_is_not_created_and_a_second_restore_works(self, archives: tuple[Path, Path, str],
                                                                   tmp_path: Path) -> None:
        good, broken, missing = archives
        parent = tmp_path / "srv"
        parent.mkdir()
        target = parent / "devpi"
        code, err = restore(broken, target)
        assert code == 1
        [line] = err.strip().splitlines()
        assert "devpi-import failed (exit 1): fatal: The file at " in line and missing in line
        assert line.endswith("is missing.")
        assert not target.exists() and leftovers(parent, target) == []
        # the folder is not refused the second time: the restore simply works now
        code, err = restore(good, target)
        assert code == 0, err
        assert (target / ".nodeinfo").exists() and leftovers(parent, target) == []

    def test_empty_target_stays_empty_and_keeps_its_mode(self, archives: tuple[Path, Path, str],
                                                         tmp_path: Path) -> None:
        good, broken, _ = archives
        target = tmp_path / "devpi"
        target.mkdir(mode=0o750)
        target.chmod(0o750)
        code, _ = restore(broken, target)
        assert code == 1
        assert target.is_dir() and list(target.iterdir()) == [] and leftovers(tmp_path, target) == []
        code, err = restore(good, target)
        assert code == 0, err
        assert (target / ".nodeinfo").exists() and target.stat().st_mode & 0o777 == 0o750
        assert leftovers(tmp_path, target) == []

    def test_restored_folder_serves_the_data(self, archives: tuple[Path, Path, str], tmp_path: Path) -> None:
        good, _, name = archives
        target = tmp_path / "new" / "deeper" / "devpi"  # parents are created
        out = io.StringIO()
        assert main(["restore", str(good), "--serverdir", str(target), "--json"], out=out, err=io.StringIO()) == 0
        info = json.loads(out.getvalue())
        assert info["serverdir"] == str(target) and "root" in info["users"]
        assert any(p.name == name for p in (target / "+files").rglob("*.whl"))


def test_failure_line_prefers_devpi_fatal_over_the_last_log_line() -> None:
    stdout = "2026-11-30 07:36:34,046 INFO  [Wtx2] set_metadata demo-1.0\n"
    stderr = "fatal: The file at x/export/a/b/demo-1.0.whl is missing.\n"
    assert backup_mod.failure_line(stderr, stdout) == "fatal: The file at x/export/a/b/demo-1.0.whl is missing."
    assert backup_mod.failure_line("", "Fatal: The file for a is missing\nINFO later\n") == (
        "Fatal: The file for a is missing")
    assert backup_mod.failure_line("boom\n", "INFO x\n") == "boom"
    assert backup_mod.failure_line("", "") == "no output"


def test_restore_refuses_a_target_holding_data_without_touching_it(tmp_path: Path) -> None:
    target = tmp_path / "devpi"
    target.mkdir()
    (target / ".nodeinfo").write_text("{}")
    archive = tmp_path / "x.tar.gz"
    with tarfile.open(archive, "w:gz"):
        pass
    code, err = restore(archive, target)
    assert code == 1 and "already holds devpi-server data" in err
    assert [p.name for p in target.iterdir()] == [".nodeinfo"] and leftovers(tmp_path, target) == []
    shutil.rmtree(target)
