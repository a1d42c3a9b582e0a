"""The devpi client and the ``devpi-lifecycle`` CLI work where Pulumi is not installed.

``pip install devpi-registry`` (no ``stack`` extra) brings the client and the CLI without Pulumi:
nothing they import may import ``pulumi``, ``pulumi_docker`` or ``pulumi_command``. Each test runs a
fresh interpreter in which those packages are shadowed by ones that refuse to import, as on a
machine that has only the base dependencies.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PULUMI_PACKAGES = ("pulumi", "pulumi_docker", "pulumi_command")
REFUSAL = "Pulumi is not installed here (the client and the CLI must not need it)"

IMPORT_ALL = f"""
import importlib, pkgutil, sys
import components.devpi, components.lifecycle
imported = []
for package in (components.devpi, components.lifecycle):
    for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
        if not info.name.endswith(".__main__"):  # runs the CLI; covered by `python -m` below
            importlib.import_module(info.name)
            imported.append(info.name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {PULUMI_PACKAGES!r})
assert not loaded, loaded
print("\\n".join(imported))
"""


@pytest.fixture
def without_pulumi(tmp_path: Path) -> dict[str, str]:
    """The environment of an interpreter in which ``import pulumi`` (and the providers) fails."""
    for name in PULUMI_PACKAGES:
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError({REFUSAL!r})\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, timeout=120, check=False,
                          stdin=subprocess.DEVNULL)


def test_pulumi_really_cannot_be_imported_there(without_pulumi: dict[str, str]) -> None:
    for name in PULUMI_PACKAGES:
        proc = run([sys.executable, "-c", f"import {name}"], without_pulumi)
        assert proc.returncode != 0 and REFUSAL in proc.stderr, (name, proc.stderr)


def test_every_client_and_cli_module_imports_without_pulumi(without_pulumi: dict[str, str]) -> None:
    proc = run([sys.executable, "-c", IMPORT_ALL], without_pulumi)
    assert proc.returncode == 0, proc.stderr
    imported = set(proc.stdout.split())
    expected = {f"components.devpi.{m}" for m in ("client", "errors", "names")} | {
        f"components.lifecycle.{m}" for m in ("cli", "common", "connection", "promote", "remove", "prune", "du",
                                               "status", "backup")}
    assert expected <= imported, sorted(expected - imported)


@pytest.mark.parametrize("how", ["console-script", "python -m"])
def test_devpi_lifecycle_help_runs_without_pulumi(without_pulumi: dict[str, str], how: str) -> None:
    argv = ([str(Path(sys.executable).parent / "devpi-lifecycle")] if how == "console-script"
            else [sys.executable, "-m", "components.lifecycle"])
    proc = run([*argv, "--help"], without_pulumi)
    assert proc.returncode == 0, proc.stderr
    assert "promote" in proc.stdout and "examples:" in proc.stdout
