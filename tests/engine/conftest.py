"""Fixtures of the engine tests: the built engine, a project per test, the manual procedure's
registry objects as stack config, and devpi-client for what a person would do by hand."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.engine.harness import ENGINE_BIN, PulumiProject, counting_proxy, find_pulumi, new_project
from tests.fixtures.devpi import DevpiServer
from tests.support import missing_fixture

BIN = Path(sys.executable).parent

@pytest.fixture(scope="session")
def engine() -> Path:
    """The pulumi CLI and the Python language host (`.ci/engine/build.sh` installs both)."""
    pulumi = find_pulumi()
    if pulumi is None or not (ENGINE_BIN / "pulumi-language-python").exists():
        missing_fixture("the Pulumi engine is not installed in ~/.pulumi/bin: run .ci/setup.d/25-engine.sh")
    assert pulumi is not None
    return pulumi


@pytest.fixture
def project(engine: Path, tmp_path: Path) -> PulumiProject:
    assert engine.exists()
    return new_project(tmp_path / "engine")


def manual_procedure(url: str, user: str = "build_bot") -> dict[str, Any]:
    """The registry objects of the manual procedure (the manual procedure: README, "What one stack manages"), registry-only shape."""
    return {
        "serverUrl": url,
        "users": [{"name": user, "email": f"{user}@example.com", "title": "CI upload user"}],
        "indexes": [
            {"name": f"{user}/nightly", "volatile": True, "bases": []},
            {"name": f"{user}/stable", "volatile": False, "bases": []},
            {"name": f"{user}/prod", "volatile": False, "bases": [f"{user}/stable"]},
        ],
    }


USER_PASSWORD = "build-bot-Pw-4711"


def configure(project: PulumiProject, server: DevpiServer, url: str | None = None, *,
              user: str = "build_bot", **overrides: Any) -> dict[str, Any]:
    """Write the manual procedure's config for ``server`` and set its secrets (stdin, never argv)."""
    config = {**manual_procedure(url or server.url, user), **overrides}
    project.write_config(config)
    project.set_secret("rootPassword", server.root_password)
    project.set_secret(f"userPasswords.{user}", USER_PASSWORD, path=True)
    return config


class DevpiClientCLI:
    """devpi-client (the `devpi` command) with its own client dir: what a person types by hand."""

    def __init__(self, url: str, clientdir: Path) -> None:
        self.url = url
        self.clientdir = clientdir
        self.run("use", url)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(BIN / "devpi"), "--clientdir", str(self.clientdir), *args],
                                capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"devpi {' '.join(args)} failed: {result.stdout}\n{result.stderr}")
        return result

    def login(self, user: str, password: str) -> None:
        self.run("login", user, "--password", password)

    def getjson(self, path: str) -> Any:
        import json

        return json.loads(self.run("getjson", path).stdout)["result"]


@pytest.fixture
def devpi_cli(tmp_path: Path) -> Iterator[Any]:
    def make(server: DevpiServer, as_root: bool = True) -> DevpiClientCLI:
        cli = DevpiClientCLI(server.url, tmp_path / f"devpi-client-{server.port}")
        if as_root:
            cli.login("root", server.root_password)
        return cli

    yield make


@pytest.fixture
def proxy_to() -> Iterator[Any]:
    proxies: list[Any] = []

    def make(target: str) -> Any:
        gen = counting_proxy(target)
        proxy = next(gen)
        proxies.append(gen)
        return proxy

    yield make
    for gen in proxies:
        next(gen, None)


def pip_env() -> dict[str, str]:
    """The environment for a person's pip/twine: none of this machine's pip settings leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TWINE_"))}
