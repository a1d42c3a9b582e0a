"""What the providers create is what devpi's own tools see and use.

The official ``devpi`` CLI reads back exactly the declared configuration, the declared user logs in
with the declared password, and ``twine upload`` publishes to a created index.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.devpi.client import DevpiClient
from components.providers.index import INDEX_FIELDS, DevpiIndexProvider
from components.providers.user import DevpiUserProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured
from tests.support import make_wheel, missing_fixture

pytestmark = pytest.mark.devpi

BIN = Path(sys.executable).parent


def tool(name: str) -> Path:
    path = BIN / name
    if not path.exists():
        missing_fixture(f"{name} is not installed in this virtualenv (pip install -e .[test])")
    return path


def devpi(clientdir: Path, *args: str) -> str:
    proc = subprocess.run([str(tool("devpi")), "--clientdir", str(clientdir), *args],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"devpi {args[0]} failed: {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def test_devpi_cli_and_twine_see_what_the_providers_made(devpi_server: DevpiServer, unique: str,
                                                          tmp_path: Path) -> None:
    users, indexes = configured(DevpiUserProvider, devpi_server), configured(DevpiIndexProvider, devpi_server)
    name, password = f"cc{unique}", f"cc-pw-{unique}"
    users.create(users.check({}, {"name": name, "password": password, "email": f"{name}@example.com"}).inputs)

    declared: dict[str, dict[str, Any]] = {
        "base": {"volatile": True, "title": "Base"},
        "prod": {"bases": [f"{name}/base"], "volatile": False, "acl_upload": [name],
                 "mirror_whitelist": ["requests"], "description": "releases"},
    }
    for index, cfg in declared.items():
        props = {**dict.fromkeys(INDEX_FIELDS), "owner": name, "name": index, **cfg}
        checked = indexes.check({}, props)
        assert checked.failures == []
        indexes.create(checked.inputs)

    clientdir = tmp_path / "client"
    devpi(clientdir, "use", devpi_server.url)
    for index, cfg in declared.items():
        seen = json.loads(devpi(clientdir, "getjson", f"/{name}/{index}"))["result"]
        for key, value in cfg.items():
            assert seen[key] == value, (index, key, seen)
        assert seen["type"] == "stage"

    out = devpi(clientdir, "login", name, "--password", password)  # test-only: the CLI takes it as an argument
    assert "logged in" in out

    wheel = make_wheel(tmp_path / "dist", "cross-pkg", "1.0")
    env = {**os.environ, "TWINE_USERNAME": name, "TWINE_PASSWORD": password, "TWINE_NON_INTERACTIVE": "1",
           "PYTHON_KEYRING_BACKEND": "keyring.backends.null.Keyring"}
    proc = subprocess.run([str(tool("twine")), "upload", "--disable-progress-bar", "--repository-url",
                           f"{devpi_server.url}/{name}/prod/", str(wheel)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert password not in proc.stdout + proc.stderr
    assert DevpiClient(devpi_server.url).list_projects(f"{name}/prod") == ["cross-pkg"]
    files = DevpiClient(devpi_server.url).release_files(f"{name}/prod", "cross-pkg", "1.0")
    assert [f.filename for f in files] == [wheel.name]
