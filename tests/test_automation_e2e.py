"""End to end through the real Pulumi engine (Automation API, file backend, passphrase secrets).

Uses the engine the set-up builds (``.ci/engine/build.sh``; under CI a missing engine fails). It
deploys a stack that targets only the registry objects (``serverUrl`` mode) against a local
devpi-server: preview, up, outputs, refresh expecting no changes, rotate root's password, destroy.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.devpi.client import DevpiClient
from components.devpi.errors import NotFoundError
from tests.engine.harness import engine_env, find_pulumi
from tests.fixtures.devpi import DevpiServer
from tests.support import missing_fixture

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.devpi


@pytest.fixture
def pulumi_project(tmp_path: Path) -> Path:
    """A copy of the program whose Pulumi.yaml points at this checkout's virtualenv."""
    if find_pulumi() is None:
        missing_fixture("no `pulumi` CLI: run .ci/setup.d/25-engine.sh (it builds the engine from Go modules)")
    project = tmp_path / "project"
    shutil.copytree(ROOT / "components", project / "components",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "__main__.py", project / "__main__.py")
    venv = Path(sys.executable).parent.parent
    text = (ROOT / "Pulumi.yaml").read_text().replace("virtualenv: .venv", f"virtualenv: {venv}")
    (project / "Pulumi.yaml").write_text(text)
    return project


def test_registry_objects_preview_up_refresh_rotate_destroy(
    pulumi_project: Path, fresh_devpi_server: DevpiServer, unique: str, tmp_path: Path
) -> None:
    from pulumi import automation as auto

    devpi_server = fresh_devpi_server  # its own server: this test rotates root's password

    backend = tmp_path / "state"
    backend.mkdir()
    stack = auto.create_or_select_stack(
        stack_name=f"e2e{unique}",
        work_dir=str(pulumi_project),
        opts=auto.LocalWorkspaceOptions(
            env_vars={**engine_env(backend), "PULUMI_CONFIG_PASSPHRASE": "e2e-passphrase"},
            secrets_provider="passphrase",
            pulumi_command=auto.PulumiCommand(root=str(find_pulumi().parent.parent)),  # type: ignore[union-attr]
        ),
    )
    user = f"e2e{unique}"
    stack.set_config("devpi-registry:serverUrl", auto.ConfigValue(devpi_server.url))
    stack.set_config("devpi-registry:rootPassword", auto.ConfigValue(devpi_server.root_password, secret=True))
    stack.set_config("devpi-registry:users", auto.ConfigValue(f'[{{"name": "{user}"}}]'))
    stack.set_config("devpi-registry:userPasswords", auto.ConfigValue(f'{{"{user}": "pw-{unique}"}}', secret=True))
    stack.set_config("devpi-registry:indexes", auto.ConfigValue(
        f'[{{"name": "{user}/nightly"}}, {{"name": "{user}/stable", "volatile": false}},'
        f' {{"name": "{user}/prod", "volatile": false, "bases": ["{user}/stable"]}}]'))
    try:
        preview = stack.preview()
        assert preview.change_summary.get("create", 0) >= 6
        up = stack.up()
        assert up.summary.result == "succeeded"
        assert up.outputs["serverUrl"].value == devpi_server.url
        root = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
        assert root.get_index(f"{user}/prod")["bases"] == [f"{user}/stable"]
        # The Automation API's export_stack() passes --show-secrets; the state as stored is what the
        # CLI exports without it: every secret there is ciphertext.
        stored = subprocess.run([str(find_pulumi()), "stack", "export", "--stack", stack.name],
                                cwd=pulumi_project, env=engine_env(backend, {"PULUMI_CONFIG_PASSPHRASE": "e2e-passphrase"}),
                                capture_output=True, text=True, check=True).stdout
        assert '"resources"' in stored
        assert devpi_server.root_password not in stored and f"pw-{unique}" not in stored
        stack.refresh()
        again = stack.preview()
        assert set(again.change_summary) <= {"same"}, again.change_summary
        new_password = f"rotated-{unique}"
        stack.set_config("devpi-registry:rootPassword", auto.ConfigValue(new_password, secret=True))
        stack.up()
        DevpiClient(devpi_server.url, "root", new_password).check_credentials()
        stack.destroy()
        root = DevpiClient(devpi_server.url, "root", new_password)
        with pytest.raises(NotFoundError):
            root.get_user(user)
    finally:
        stack.workspace.remove_stack(stack.name, force=True)
