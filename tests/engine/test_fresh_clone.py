"""The project as a new user meets it (issue 8 items 2 and 6): a fresh clone where `pulumi install`
and `pulumi preview` work by Pulumi's own conventions, and `./tasks deploy`, the README's first
command, which stands up the `local` stack — a throwaway registry on this machine."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from components.devpi.client import DevpiClient
from tests.engine.conftest import configure, pip_env
from tests.engine.harness import ROOT, VENV, PulumiProject, engine_env
from tests.fixtures.devpi import DevpiServer
from tests.support import free_port, make_wheel

pytestmark = [pytest.mark.engine, pytest.mark.slow]


def clone(target: Path) -> Path:
    """The files a `git clone` of this checkout has (tracked and new, not ignored)."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.mark.devpi
@pytest.mark.usefixtures("engine")
def test_pulumi_install_then_preview_in_a_fresh_clone(tmp_path: Path,
                                                      devpi_server: DevpiServer) -> None:
    repo = clone(tmp_path / "clone")
    assert not (repo / ".venv").exists()
    state = tmp_path / "state"
    state.mkdir()
    project = PulumiProject(repo, state, "ci", engine_env(state))
    # Pulumi's own convention: Pulumi.yaml names the pip toolchain and .venv; `pulumi install`
    # creates it from requirements.txt — no project script involved.
    project.run("install", "--no-plugins", timeout=900)  # plugins: no download site here (the set-up installs them)
    assert (repo / ".venv" / "bin" / "python").exists()
    project.run("stack", "init", "ci", "--secrets-provider", "passphrase")
    configure(project, devpi_server, user="clonebot")
    preview = project.preview_json()
    creates = {s["urn"].rsplit("::", 1)[-1] for s in preview["steps"] if s["op"] == "create"}
    assert {"devpi-user-clonebot", "devpi-index-clonebot-nightly", "devpi-root"} <= creates


def run_task(repo: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["./tasks", *args], cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"./tasks {' '.join(args)} failed:\n{result.stdout[-5000:]}\n{result.stderr[-3000:]}"
    return result


def test_tasks_deploy_stands_up_the_local_stack_and_destroy_removes_it(engine: Path, tmp_path: Path) -> None:
    repo = clone(tmp_path / "clone")
    # The set-up's virtualenv, shared: its stamp must say it holds this pyproject.toml, or the clone's
    # set-up would reinstall into it through the link (scripts then point at the clone's path).
    stamp = (VENV / ".installed-pyproject").read_text().strip()
    assert stamp == hashlib.sha256((repo / "pyproject.toml").read_bytes()).hexdigest()[:16], (
        "the virtualenv was installed for another pyproject.toml: run .ci/setup.d/20-python.sh first")
    (repo / ".venv").symlink_to(VENV)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env.update({"DEVPI_LOCAL_PORT": str(port), "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}"})
    url = f"http://127.0.0.1:{port}"
    try:
        deploy = run_task(repo, "deploy", env=env)
        assert f"answers at {url}" in deploy.stdout
        assert "+ 8 created" in deploy.stdout or "8 created" in deploy.stdout
        # The manual procedure's objects, from Pulumi.dev.yaml, on a server started as the image does.
        anonymous = DevpiClient(url)
        assert anonymous.get_index("build_bot/nightly")["volatile"] is True
        assert anonymous.get_index("build_bot/prod")["bases"] == ["build_bot/stable"]
        assert requests.get(f"{url}/+api", timeout=5).headers["X-Devpi-Server-Version"] == "6.20.3"
        # Data lives in the gitignored .local/ folder; no secret in clear in the stack file.
        assert (repo / ".local" / "devpi" / "server" / ".serverversion").exists()
        stack_file = (repo / "Pulumi.local.yaml").read_text()
        assert "secure:" in stack_file
        ignored = subprocess.run(["git", "check-ignore", ".local/devpi", "Pulumi.local.yaml"], cwd=ROOT,
                                 capture_output=True, text=True)
        assert ignored.stdout.split() == [".local/devpi", "Pulumi.local.yaml"]

        # What it prints works: upload with .local/pypirc, install with .local/pip.conf.
        password = run_task(repo, "pulumi", "config", "get", "--stack", "local", "--path",
                            "userPasswords.build_bot", env=env).stdout.strip()
        assert password and password not in stack_file and password not in deploy.stdout
        wheel = make_wheel(tmp_path / "dist", "local-demo", "1.0.0.dev1")
        twine = subprocess.run([str(VENV / "bin" / "twine"), "upload", "--config-file", str(repo / ".local" / "pypirc"),
                                "-r", "nightly", "-u", "build_bot", str(wheel)], capture_output=True, text=True,
                               env={**pip_env(), "TWINE_PASSWORD": password, "TWINE_NON_INTERACTIVE": "1"}, timeout=120)
        assert twine.returncode == 0, twine.stdout + twine.stderr
        install = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "-d",
                                  str(tmp_path / "got"), "local-demo"], capture_output=True, text=True, timeout=180,
                                 env={**pip_env(), "PIP_CONFIG_FILE": str(repo / ".local" / "pip.conf")})
        assert install.returncode == 0, install.stdout + install.stderr
        assert [p.name for p in (tmp_path / "got").iterdir()] == [wheel.name]

        # A second deploy converges to no change.
        again = run_task(repo, "deploy", env=env)
        assert "8 unchanged" in again.stdout
    finally:
        destroy = subprocess.run(["./tasks", "destroy", "local"], cwd=repo, env=env, capture_output=True,
                                 text=True, timeout=300)
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{url}/+api", timeout=2)
    assert not (repo / ".local" / "devpi").exists() and not (repo / "Pulumi.local.yaml").exists()
    stacks = subprocess.run([str(engine), "stack", "ls", "--json"], cwd=repo, capture_output=True, text=True,
                            env={**engine_env(tmp_path / "state")}, check=True).stdout
    assert all(s["name"] != "local" for s in json.loads(stacks))
