"""Bad input never reaches devpi and never shows a traceback: one line on stderr naming the option and
the value, exit 2 (the documented usage-error status), and not one connection to the server."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from components.lifecycle.cli import main
from tests.fixtures.silent import SilentServer

CLI = [sys.executable, "-m", "components.lifecycle"]
ROOT = Path(__file__).resolve().parent.parent


def run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DEVPI_")}
    env.update(DEVPI_USER="build_bot", DEVPI_PASSWORD="not-used-QQQ")
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
                          env=env, stdin=subprocess.DEVNULL)


def assert_usage_error(proc: subprocess.CompletedProcess[str], *must_name: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("devpi-lifecycle") and ": error: " in line, line
    for text in must_name:
        assert text in line, (text, line)
    assert "not-used-QQQ" not in proc.stderr + proc.stdout
    return line


BAD_INDEX = [
    (["du", "--index", "nightly"], "--index", "'nightly'"),
    (["du", "--index", "build_bot/nightly/x"], "--index", "'build_bot/nightly/x'"),
    (["promote", "geek-utils==0.1.0", "--from", "nightly", "--to", "build_bot/stable"], "--from", "'nightly'"),
    (["promote", "geek-utils==0.1.0", "--from", "build_bot/nightly", "--to", "build_bot/nightly/x"], "--to",
     "'build_bot/nightly/x'"),
    (["remove", "geek-utils==0.1.0", "--index", "nightly", "--yes"], "--index", "'nightly'"),
    (["remove", "geek-utils==0.1.0", "--index", "build_bot/nightly/x", "--yes"], "--index",
     "'build_bot/nightly/x'"),
    (["prune", "--index", "nightly", "--keep-last", "1", "--yes"], "--index", "'nightly'"),
    (["prune", "--index", "build_bot/nightly/x", "--keep-last", "1"], "--index", "'build_bot/nightly/x'"),
    (["prune", "--index", "build_bot/night ly", "--keep-last", "1"], "--index", "'build_bot/night ly'"),
]

BAD_TIMEOUT = [
    (["status", "--timeout", "0"], "--timeout", "'0'"),
    (["du", "--timeout", "-1"], "--timeout", "'-1'"),
    (["du", "--timeout=-0.5"], "--timeout", "'-0.5'"),
    (["status", "--timeout", "nan"], "--timeout", "'nan'"),
    (["status", "--timeout", "soon"], "--timeout", "'soon'"),
]

BAD_SPEC = [
    (["remove", "geek-utils==0.1.0/x", "--index", "build_bot/nightly", "--yes"], "NAME[==VERSION]", "'0.1.0/x'"),
    (["remove", "geek-utils==../../x", "--index", "build_bot/nightly", "--yes"], "NAME[==VERSION]", "'../../x'"),
    (["promote", "geek-utils==1.0/../2", "--from", "build_bot/nightly", "--to", "build_bot/stable"],
     "NAME==VERSION", "'1.0/../2'"),
    (["remove", "build_bot/geek-utils", "--index", "build_bot/nightly", "--yes"], "NAME[==VERSION]",
     "'build_bot/geek-utils'"),
    (["promote", "geek-utils", "--from", "build_bot/nightly", "--to", "build_bot/stable"], "NAME==VERSION",
     "'geek-utils'"),
]


@pytest.mark.parametrize(("argv", "option", "value"), BAD_INDEX + BAD_TIMEOUT + BAD_SPEC,
                         ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_value_is_one_line_exit_2_and_nothing_is_sent(silent_server: SilentServer, argv: list[str], option: str,
                                                          value: str) -> None:
    assert_usage_error(run([*argv, "--url", silent_server.url]), option, value)
    assert silent_server.connections == 0


def test_bad_value_with_json_is_one_json_error(silent_server: SilentServer) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["remove", "geek-utils==1/2", "--index", "build_bot/nightly", "--yes", "--json",
                 "--url", silent_server.url], out=out, err=err, env={"DEVPI_PASSWORD": "x", "DEVPI_USER": "u"})
    assert code == 2 and len(err.getvalue().splitlines()) == 1
    assert "'1/2'" in json.loads(out.getvalue())["error"]
    assert silent_server.connections == 0


def test_help_documents_exit_2_for_bad_values() -> None:
    proc = run(["--help"])
    assert proc.returncode == 0
    exit_text = " ".join(proc.stdout.split("exit status:")[1].split())
    assert "2 usage error" in exit_text and "before anything is sent to the server" in exit_text
    assert "--timeout 0" in exit_text and "truncated" in exit_text


def _export_archive(path: Path) -> Path:
    """A small archive shaped like a backup (export/dataindex.json and a file)."""
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("export/dataindex.json", json.dumps({"users": {}, "indexes": {}}).encode()),
                           ("export/payload.bin", os.urandom(64 * 1024))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("keep", [100, 2000, 20_000])
def test_truncated_archive_is_one_line_and_leaves_no_trace(tmp_path: Path, keep: int) -> None:
    full = _export_archive(tmp_path / "full.tar.gz")
    truncated = tmp_path / "devpi-export-20260101T000000Z.tar.gz"
    truncated.write_bytes(full.read_bytes()[:keep])
    target = tmp_path / "restored"
    line = assert_usage_error(run(["restore", str(truncated), "--serverdir", str(target)]), "ARCHIVE",
                              str(truncated))
    assert "truncated" in line or "not a devpi-lifecycle backup" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["full.tar.gz", truncated.name])


def test_missing_archive_is_a_usage_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.tar.gz"
    assert_usage_error(run(["restore", str(missing), "--serverdir", str(tmp_path / "new")]), "ARCHIVE",
                       str(missing))
    assert not (tmp_path / "new").exists()
