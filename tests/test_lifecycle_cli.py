"""The command line as a user meets it: teaching --help, --json for CI, one-line errors without
tracebacks, passwords never on the command line or in output; du and status against a real server."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from components.lifecycle.cli import build_parser, command_parsers, main
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.team import Team
from tests.support import free_port, make_wheel

CLI = [sys.executable, "-m", "components.lifecycle"]
ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ["promote", "remove", "prune", "du", "status", "backup", "restore"]


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("DEVPI_")}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, cwd=ROOT, timeout=120, check=False,
                          env={**base, **(env or {})}, stdin=subprocess.DEVNULL)


def assert_one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("devpi-lifecycle: error: ")
    assert "Traceback" not in proc.stderr
    return lines[0]


class TestHelpTeaches:
    def test_top_level_help_has_examples_and_password_rules(self) -> None:
        proc = run(["--help"])
        assert proc.returncode == 0
        for text in ("examples:", "DEVPI_PASSWORD", "--password-file", *COMMANDS):
            assert text in proc.stdout

    @pytest.mark.parametrize("command", COMMANDS)
    def test_each_command_help_has_an_example(self, command: str) -> None:
        proc = run([command, "--help"])
        assert proc.returncode == 0
        assert f"devpi-lifecycle {command}" in proc.stdout.split("options:")[-1] or "example" in proc.stdout

    def test_console_script_is_installed(self) -> None:
        script = Path(sys.executable).parent / "devpi-lifecycle"
        proc = subprocess.run([str(script), "--help"], capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and "promote" in proc.stdout


class TestPasswordNeverInArgv:
    def test_no_option_takes_a_password(self) -> None:
        parser = build_parser()
        subparsers = command_parsers(parser)
        options = {opt for sub in subparsers.values() for opt in re.findall(r"(?<![\w-])--?[a-z][\w-]*", sub.format_help())}
        assert "--password-file" in options
        assert {o for o in options if "passw" in o} == {"--password-file"}

    def test_password_flag_is_rejected(self) -> None:
        for args in (["--password", "hunter2"], ["--password=hunter2"], ["--passw", "hunter2"]):
            proc = run(["status", "--url", "http://127.0.0.1:1", *args])
            assert proc.returncode == 2, proc.stderr
            assert "hunter2" not in proc.stderr + proc.stdout
            assert "there is no --password option" in proc.stderr

    def test_no_password_and_no_terminal_is_refused(self) -> None:
        proc = run(["remove", "x==1", "--index", "a/b", "--url", "http://127.0.0.1:1", "--user", "alice"])
        line = assert_one_line_error(proc)
        assert "no password for user 'alice'" in line and "DEVPI_PASSWORD" in line




@pytest.mark.devpi
class TestAgainstRealServer:
    def test_promote_with_env_password_and_json(self, team: Team, tmp_path: Path) -> None:
        team.client.upload(f"{team.user}/dev", make_wheel(tmp_path, "cli-pkg", "1.0"), name="cli-pkg",
                           version="1.0")
        argv = ["promote", "cli-pkg==1.0", "--from", f"{team.user}/dev", "--to", f"{team.user}/stable",
                "--url", team.url, "--user", team.user, "--json"]
        assert not any(team.password in a for a in argv)
        proc = run(argv, env={"DEVPI_PASSWORD": team.password})
        assert proc.returncode == 0, proc.stderr
        data = json.loads(proc.stdout)
        assert data["action"] == "pushed" and data["to"] == f"{team.user}/stable"
        again = json.loads(run(argv, env={"DEVPI_PASSWORD": team.password}).stdout)
        assert again["action"] == "already-present" and again["files"] == data["files"]
        assert team.password not in proc.stdout + proc.stderr

    def test_password_file_and_url_user_from_env(self, team: Team, tmp_path: Path) -> None:
        team.client.upload(f"{team.user}/dev", make_wheel(tmp_path, "file-pkg", "1.0"), name="file-pkg",
                           version="1.0")
        pw = tmp_path / "pw"
        pw.write_text(team.password + "\n")
        proc = run(["remove", "file-pkg", "--index", f"{team.user}/dev", "--password-file", str(pw), "--yes"],
                   env={"DEVPI_URL": team.url, "DEVPI_USER": team.user})
        assert proc.returncode == 0, proc.stderr
        assert "file-pkg" not in team.client.list_projects(f"{team.user}/dev")

    def test_wrong_password_is_one_line_without_the_password(self, team: Team, tmp_path: Path) -> None:
        team.client.upload(f"{team.user}/dev", make_wheel(tmp_path, "pw-pkg", "1.0"), name="pw-pkg",
                           version="1.0")
        wrong = "not-the-password-QQQ"
        proc = run(["remove", "pw-pkg==1.0", "--index", f"{team.user}/dev", "--url", team.url,
                    "--user", team.user, "--yes"], env={"DEVPI_PASSWORD": wrong})
        line = assert_one_line_error(proc)
        assert "refused the login" in line and wrong not in proc.stderr + proc.stdout

    def test_unreachable_server_is_one_line(self) -> None:
        proc = run(["du", "--url", f"http://127.0.0.1:{free_port()}", "--timeout", "2"])
        assert "unreachable" in assert_one_line_error(proc)

    def test_bad_stack_config_names_the_key(self, tmp_path: Path) -> None:
        stack = tmp_path / "Pulumi.dev.yaml"
        stack.write_text("config:\n  devpi-registry:serverUrl: http://127.0.0.1:1\n"
                         "  devpi-registry:indexes:\n    - name: a/b\n      retention: {keepLast: -3}\n")
        line = assert_one_line_error(run(["prune", "--stack-config", str(stack)]))
        assert "devpi-registry:indexes[0].retention.keepLast: must be a whole number >= 0 (got -3)" in line

    def test_du_matches_file_sizes_api_and_serverdir(self, team: Team, tmp_path: Path,
                                                     devpi_server: DevpiServer) -> None:
        sizes = {}
        for name, version, payload in (("big-pkg", "1.0", "x" * 50_000), ("big-pkg", "1.1", "y" * 20_000),
                                       ("small-pkg", "1.0", "")):
            wheel = make_wheel(tmp_path / name / version, name, version, payload=payload)
            team.client.upload(f"{team.user}/dev", wheel, name=name, version=version)
            sizes.setdefault(name, []).append(wheel.stat().st_size)
        results = []
        for extra in ([], ["--serverdir", str(devpi_server.serverdir)]):
            out = io.StringIO()
            assert main(["du", "--url", team.url, "--index", f"{team.user}/dev", "--json", *extra], out=out,
                        err=io.StringIO(), env={}) == 0
            results.append(json.loads(out.getvalue()))
        api, disk = results
        assert api == disk
        projects = {p["name"]: p for p in api["projects"]}
        assert projects[f"{team.user}/dev/big-pkg"] == {"name": f"{team.user}/dev/big-pkg",
                                                        "bytes": sum(sizes["big-pkg"]), "files": 2}
        assert api["projects"][0]["name"] == f"{team.user}/dev/big-pkg"  # largest first
        assert api["users"] == [{"name": team.user, "bytes": sum(map(sum, sizes.values())), "files": 3}]
        # whole server, human output: our user appears with its total
        out = io.StringIO()
        assert main(["du", "--url", team.url], out=out, err=io.StringIO(), env={}) == 0
        assert f"{team.user}/dev/big-pkg" in out.getvalue() and "users:" in out.getvalue()

    def test_status_human_json_and_stack_drift(self, team: Team, tmp_path: Path) -> None:
        out = io.StringIO()
        assert main(["status", "--url", team.url], out=out, err=io.StringIO(), env={}) == 0
        assert "up, devpi-server 6.20.3" in out.getvalue() and "serial" in out.getvalue()
        stack = tmp_path / "Pulumi.dev.yaml"
        stack.write_text(
            "config:\n"
            f"  devpi-registry:serverUrl: {team.url}\n"
            "  devpi-registry:indexes:\n"
            f"    - {{name: {team.user}/dev, volatile: false, bases: []}}\n"
            f"    - {{name: {team.user}/stable, volatile: false, bases: []}}\n"
            f"    - {{name: {team.user}/missing, volatile: true}}\n")
        out = io.StringIO()
        code = main(["status", "--stack-config", str(stack), "--json"], out=out, err=io.StringIO(), env={})
        data = json.loads(out.getvalue())
        assert code == 3 and data["reachable"] and data["version"] == "6.20.3"
        assert isinstance(data["serial"], int)
        drift = {(d["kind"], d["name"]) for d in data["drift"]}
        assert drift == {("volatile", f"{team.user}/dev"), ("missing-index", f"{team.user}/missing")}

    def test_prune_dry_run_human_output(self, team: Team, tmp_path: Path) -> None:
        for v in ("1.0", "1.1.dev1", "1.1.dev2"):
            team.client.upload(f"{team.user}/dev", make_wheel(tmp_path / v, "dr-pkg", v), name="dr-pkg",
                               version=v)
        out = io.StringIO()
        assert main(["prune", "--url", team.url, "--index", f"{team.user}/dev", "--keep-last", "1",
                     "--only-prereleases"], out=out, err=io.StringIO(), env={}) == 0
        text = out.getvalue()
        assert "would remove 1 of 3 versions (dry run; --yes applies)" in text
        assert "remove dr-pkg==1.1.dev1" in text
        assert set(team.client.get_project(f"{team.user}/dev", "dr-pkg")) == {"1.0", "1.1.dev1", "1.1.dev2"}
