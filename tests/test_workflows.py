"""The CI workflows cannot run here, so they are validated against GitHub's schema and read as specs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def load(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / name).read_text())


def pulumi_steps(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for job in doc["jobs"].values() for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]


def test_there_are_workflows() -> None:
    assert {p.name for p in WORKFLOWS} >= {"preview.yml", "drift.yml"}


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_matches_githubs_schema(path: Path) -> None:
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pull_requests_get_a_commented_diff_per_stack() -> None:
    doc = load("preview.yml")
    assert "pull_request" in doc[True]  # YAML 1.1 reads the key `on` as True
    assert doc["permissions"]["pull-requests"] == "write"
    [step] = pulumi_steps(doc)
    assert step["uses"] == "pulumi/actions@v7"
    assert step["with"]["command"] == "preview"
    assert step["with"]["comment-on-pr"] is True and step["with"]["diff"] is True
    stacks = doc["jobs"]["preview"]["strategy"]["matrix"]["stack"]
    assert all((ROOT / f"Pulumi.{s}.yaml").exists() for s in stacks)
    steps = doc["jobs"]["preview"]["steps"]
    # pulumi/actions v3+ does not install Python dependencies: the workflow must, before the action.
    install = next(i for i, s in enumerate(steps) if "pip install" in s.get("run", ""))
    assert install < steps.index(step)


def test_drift_check_fails_on_any_change() -> None:
    doc = load("drift.yml")
    assert doc[True]["schedule"][0]["cron"]
    [step] = pulumi_steps(doc)
    assert step["with"]["refresh"] is True and step["with"]["expect-no-changes"] is True


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_no_secret_in_clear(path: Path) -> None:
    text = path.read_text()
    for line in text.splitlines():
        sensitive = "PASSPHRASE" in line or "SSH_KEY" in line or "ssh-private-key" in line
        if sensitive and ":" in line and not line.strip().startswith("#"):
            value = line.split(":", 1)[1].strip()
            assert value.startswith("${{ secrets."), line
