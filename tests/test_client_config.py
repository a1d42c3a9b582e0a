"""Client configuration a team pastes into its machines: rendered purely, then used by the real pip."""

from __future__ import annotations

import configparser
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.config.stack import load_stack_config
from components.devpi.client import DevpiClient
from components.registry.client_config import (
    index_urls,
    pip_conf,
    pypirc,
    pypirc_section_name,
    requirements_header,
    twine_command,
)
from components.registry.component import registry_outputs
from tests.fixtures.devpi import DevpiServer
from tests.support import make_wheel

URL = "http://devpi.example.internal:3141"


def test_index_urls() -> None:
    urls = index_urls(URL + "/", "build_bot/stable")
    assert urls.upload == f"{URL}/build_bot/stable/"
    assert urls.simple == f"{URL}/build_bot/stable/+simple/"


def test_strict_pip_conf_trusts_plain_http_host_only() -> None:
    text = pip_conf(URL, "build_bot/stable")
    parsed = configparser.ConfigParser()
    parsed.read_string(text)
    assert parsed["global"]["index-url"] == f"{URL}/build_bot/stable/+simple/"
    assert parsed["global"]["trusted-host"] == "devpi.example.internal"
    assert "extra-index-url" not in parsed["global"]
    assert "trusted-host" not in pip_conf("https://devpi.example.internal", "a/b")


def test_mixed_pip_conf_warns_about_dependency_confusion() -> None:
    text = pip_conf(URL, "build_bot/nightly", mode="mixed")
    parsed = configparser.ConfigParser()
    parsed.read_string(text)
    assert parsed["global"]["index-url"] == "https://pypi.org/simple/"
    assert parsed["global"]["extra-index-url"] == f"{URL}/build_bot/nightly/+simple/"
    assert "dependency confusion" in text
    with pytest.raises(ValueError, match="'strict' or 'mixed'"):
        pip_conf(URL, "a/b", mode="loose")


def test_requirements_header_and_twine_command_have_no_secret() -> None:
    assert requirements_header(URL, "a/b").splitlines() == [
        f"--index-url {URL}/a/b/+simple/", "--trusted-host devpi.example.internal"]
    cmd = twine_command(URL, "build_bot/nightly", "build_bot")
    assert cmd == f"twine upload --repository-url {URL}/build_bot/nightly/ -u build_bot dist/*"
    assert "-p" not in cmd.split()


def test_pypirc_one_section_per_upload_target() -> None:
    text = pypirc(URL, {"nightly": ("build_bot/nightly", "build_bot"), "stable": ("build_bot/stable", "rm")})
    parsed = configparser.ConfigParser()
    parsed.read_string(text)
    assert parsed["distutils"]["index-servers"].split() == ["nightly", "stable"]
    assert parsed["stable"]["repository"] == f"{URL}/build_bot/stable/"
    assert parsed["stable"]["username"] == "rm"
    assert all("password" not in parsed[s] for s in parsed.sections())
    assert pypirc_section_name("alice/nightly", ["nightly"]) == "alice-nightly"


def test_registry_outputs_for_the_dev_procedure() -> None:
    cfg = load_stack_config({
        "serverUrl": URL, "rootPassword": "r", "users": [{"name": "build_bot"}],
        "userPasswords": {"build_bot": "p"},
        "indexes": [{"name": "build_bot/nightly"}, {"name": "build_bot/stable", "volatile": False}],
    })
    out = registry_outputs(cfg).exported()
    assert out["serverUrl"] == URL
    assert out["indexes"]["build_bot/nightly"]["simpleUrl"] == f"{URL}/build_bot/nightly/+simple/"
    assert out["twineCommands"]["build_bot/stable"].endswith("-u build_bot dist/*")
    assert "[nightly]" in out["pypirc"] and "[stable]" in out["pypirc"]
    assert "p" not in out["pypirc"].split()


@pytest.mark.devpi
def test_real_pip_installs_through_the_rendered_strict_pip_conf(
    devpi_server: DevpiServer, unique: str, tmp_path: Path
) -> None:
    root = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
    user = f"cc{unique}"
    root.create_user(user, "pw")
    root.create_index(f"{user}/stable", {"volatile": False, "acl_upload": ["root"]})
    wheel = make_wheel(tmp_path / "dist", f"geek-utils-{unique}", "0.1.0")
    root.upload(f"{user}/stable", wheel, name=f"geek-utils-{unique}", version="0.1.0")
    conf = tmp_path / "pip.conf"
    conf.write_text(pip_conf(devpi_server.url, f"{user}/stable"))
    env = {**os.environ, "PIP_CONFIG_FILE": str(conf), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    env.pop("PIP_INDEX_URL", None)
    env.pop("PIP_EXTRA_INDEX_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "got"),
         f"geek-utils-{unique}==0.1.0"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "got" / wheel.name).read_bytes() == wheel.read_bytes()
