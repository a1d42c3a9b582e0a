"""Every key of every command's --json output is documented in that command's --help (its
"--json output:" section), so CI authors can rely on the help text; du names its lists
users/indexes/projects."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.devpi.client import DevpiClient
from components.lifecycle.cli import build_parser, command_parsers, main
from tests.fixtures.devpi import DevpiServer
from tests.support import make_wheel

COMMANDS = ["promote", "remove", "prune", "du", "status", "backup", "restore"]


def keys_of(doc: Any) -> Iterator[str]:
    """Every dict key at any depth (inside lists too)."""
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield key
            yield from keys_of(value)
    elif isinstance(doc, list):
        for item in doc:
            yield from keys_of(item)


def json_section(command: str) -> str:
    """The "--json output:" part of ``devpi-lifecycle COMMAND --help``."""
    subparsers = command_parsers(build_parser())
    text = subparsers[command].format_help()
    assert "--json output:" in text, f"{command} --help does not document its --json output"
    return text.split("--json output:", 1)[1]


def run_json(argv: list[str], env: dict[str, str] | None = None, expect: int = 0) -> Any:
    out, err = io.StringIO(), io.StringIO()
    code = main([*argv, "--json"], out=out, err=err, env=env or {})
    assert code == expect, err.getvalue()
    return json.loads(out.getvalue())


@pytest.mark.devpi
def test_every_json_key_is_in_the_commands_help(devpi_server: DevpiServer, unique: str, tmp_path: Path) -> None:
    admin = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
    user, password = f"j{unique}", f"pw-{unique}"
    admin.create_user(user, password)
    admin.create_index(f"{user}/dev", {"volatile": True, "bases": []})
    admin.create_index(f"{user}/stable", {"volatile": False, "bases": []})
    me = DevpiClient(devpi_server.url, user, password)
    for v in ("1.0", "1.1.dev1", "1.1.dev2"):
        me.upload(f"{user}/dev", make_wheel(tmp_path / "w" / v, "json-pkg", v), name="json-pkg", version=v)
    conn = ["--url", devpi_server.url, "--user", user]
    env = {"DEVPI_PASSWORD": password}
    stack = tmp_path / "Pulumi.dev.yaml"
    stack.write_text("config:\n"
                     f"  devpi-registry:serverUrl: {devpi_server.url}\n"
                     "  devpi-registry:indexes:\n"
                     f"    - {{name: {user}/dev, volatile: false}}\n")
    backup = run_json(["backup", "--serverdir", str(devpi_server.serverdir), "--to", str(tmp_path / "b"),
                       "--keep", "1"])

    outputs: dict[str, list[Any]] = {
        "promote": [run_json(["promote", "json-pkg==1.0", "--from", f"{user}/dev", "--to", f"{user}/stable",
                              *conn], env)],
        "prune": [run_json(["prune", "--index", f"{user}/dev", "--keep-last", "1", "--max-age-days", "0",
                            "--only-prereleases", "--include", "json-*", "--exclude", "nothing*", "--yes",
                            *conn], env)],
        "remove": [run_json(["remove", "json-pkg==1.0", "--index", f"{user}/dev", "--yes", *conn], env),
                   run_json(["remove", "json-pkg", "--index", f"{user}/stable", "--force", "--yes", *conn], env)],
        "du": [run_json(["du", "--url", devpi_server.url])],
        "status": [run_json(["status", "--stack-config", str(stack)], expect=3),
                   run_json(["status", "--url", "http://127.0.0.1:9", "--timeout", "1"], expect=1)],
        "backup": [backup],
        "restore": [run_json(["restore", backup["archive"], "--serverdir", str(tmp_path / "restored")])],
    }
    failure = run_json(["remove", "json-pkg==9.9", "--index", f"{user}/dev", "--yes", *conn], env, expect=1)
    assert set(failure) == {"error"}
    assert set(outputs) == set(COMMANDS)

    undocumented = {}
    for command, docs in outputs.items():
        section = json_section(command)
        keys = {k for doc in [*docs, failure] for k in keys_of(doc)}
        missing = sorted(k for k in keys if f'"{k}"' not in section)
        if missing:
            undocumented[command] = missing
    assert undocumented == {}
    # the runs above really reached the nested keys
    assert outputs["prune"][0]["indexes"][0]["policy"].keys() == {"keepLast", "maxAgeDays", "onlyPrereleases",
                                                                 "include", "exclude"}
    assert outputs["status"][0]["drift"] and outputs["status"][1]["error"]


@pytest.mark.devpi
def test_du_lists_users_indexes_projects(devpi_server: DevpiServer, unique: str, tmp_path: Path) -> None:
    admin = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
    user = f"d{unique}"
    admin.create_user(user, "pw")
    admin.create_index(f"{user}/dev", {"volatile": True, "bases": [], "acl_upload": ["root"]})
    admin.upload(f"{user}/dev", make_wheel(tmp_path, "du-pkg", "1.0"), name="du-pkg", version="1.0")
    data = run_json(["du", "--url", devpi_server.url, "--index", f"{user}/dev"])
    assert list(data) == ["users", "indexes", "projects"]
    assert [row["name"] for row in data["indexes"]] == [f"{user}/dev"]
    out = io.StringIO()
    assert main(["du", "--url", devpi_server.url, "--index", f"{user}/dev"], out=out, err=io.StringIO(),
                env={}) == 0
    assert [ln for ln in out.getvalue().splitlines() if ln.endswith(":")] == ["users:", "indexes:", "projects:"]


def test_every_command_documents_its_json_output() -> None:
    for command in COMMANDS:
        section = json_section(command)
        assert '{"error"' in section, command
