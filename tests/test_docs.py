"""README and code must not drift: commands that exist, config keys the code really reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from components.config import stack as config_module
from components.config.retention import _KEYS as RETENTION_KEYS
from components.config.stack import TOP_LEVEL_KEYS, load_stack_config
from tests.fixtures.tls import make_ca

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def readme_config_keys() -> set[str]:
    section = README.split("## Configuration reference", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([^`]+)` \|", section, flags=re.M))


def code_config_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> set[str]:
    """Every key path the loader reads, recorded while it loads a config touching every section."""
    seen: set[str] = set(TOP_LEVEL_KEYS)
    real_done = config_module.KeyReader.done

    def recording_done(self: Any) -> None:
        path = re.sub(r"\[\d+\]", "[]", self.path.split(":", 1)[1])
        seen.update(f"{path}.{k}" for k in self.seen)
        real_done(self)

    monkeypatch.setattr(config_module.KeyReader, "done", recording_done)
    issued = make_ca(tmp_path).issue(["devpi.example.internal", "replica.example.internal"])
    load_stack_config({
        "tls": {"certificate": issued.chain_pem, "names": ["devpi.example.internal"]},
        "tlsPrivateKey": issued.key_pem,
        "replicas": [{"name": "r1", "host": {"address": "replica.example.internal",
                                             "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK"}}],
        "replicaSshPrivateKeys": {"r1": "k"},
        "host": {"address": "192.0.2.1", "hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK"},
        "rootPassword": "r", "sshPrivateKey": "k", "userPasswords": {"u": "p"},
        "server": {}, "users": [{"name": "u"}],
        "indexes": [{"name": "u/nightly", "retention": {"keepLast": 3}}],
        "backup": {},
    })
    seen.update(f"indexes[].retention.{k}" for k in RETENTION_KEYS)
    return seen


def test_readme_documents_exactly_the_keys_the_code_reads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    documented = readme_config_keys()
    read = code_config_keys(monkeypatch, tmp_path)
    assert sorted(read - documented) == [], "read by the code but missing from README's reference"
    assert sorted(documented - read) == [], "documented in README but not read by the code"


def test_the_two_set_up_commands_are_near_the_top() -> None:
    first_block = README.split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["./tasks deploy", "./tasks test"]
    assert README.index("```sh") < 800


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec \./tasks test\s*$", ci, flags=re.M), ci


def test_every_tasks_subcommand_in_the_readme_exists() -> None:
    tasks = (ROOT / "tasks").read_text()
    handled = set(re.findall(r"^  ([a-z-]+)\)", tasks, flags=re.M))
    used = set(re.findall(r"\./tasks ([a-z-]+)", README))
    assert used <= handled, used - handled


def test_readme_stack_files_exist() -> None:
    for stack in re.findall(r"Pulumi\.(\w+)\.yaml", README):
        if stack != "<stack>":
            assert (ROOT / f"Pulumi.{stack}.yaml").exists(), stack


def test_every_lifecycle_command_in_the_readme_parses() -> None:
    """Each `devpi-lifecycle ...` line of the README is accepted by the real argument parser."""
    import shlex

    from components.lifecycle.cli import build_parser

    parser = build_parser()
    lines = [ln.strip() for ln in README.splitlines() if ln.strip().startswith("devpi-lifecycle ")]
    assert len(lines) >= 5
    for line in lines:
        argv = shlex.split(line.split("  #")[0])[1:]
        if argv[0] in ("--help",) or "--help" in argv or argv[-1] == "--help":
            continue
        parser.parse_args(argv)  # SystemExit (exit 2) would fail the test with argparse's message


def test_readme_layout_matches_the_tree() -> None:
    """The README's layout picture names every package folder, one line each, and only paths that exist."""
    block = README.split("## Layout", 1)[1].split("```", 2)[1]
    named = set()
    for line in block.strip().splitlines():
        named.update(p.strip() for p in line.split("  ")[0].split(","))
    packages = {f"components/{p.name}/" for p in (ROOT / "components").iterdir()
                if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= named, packages - named
    missing = [p for p in named if not (ROOT / p).exists()]
    assert missing == []
