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
    devpi_use_command,
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


# ------------------------------------------------------------------------------------------- https
HTTPS = "https://devpi.example.internal"
CA = "/etc/pki/ca-trust/source/anchors/devpi-registry-ca.pem"


def test_https_outputs_trust_no_host_and_name_the_private_ca() -> None:
    conf = configparser.ConfigParser()
    conf.read_string(pip_conf(HTTPS, "a/b", ca_path=CA))
    assert conf["global"]["cert"] == CA and "trusted-host" not in conf["global"]
    mixed = configparser.ConfigParser()
    mixed.read_string(pip_conf(HTTPS, "a/b", mode="mixed", ca_path=CA))
    assert mixed["global"]["cert"] == CA
    assert requirements_header(HTTPS, "a/b", ca_path=CA).splitlines() == [
        f"--index-url {HTTPS}/a/b/+simple/", f"--cert {CA}"]
    assert twine_command(HTTPS, "a/b", "bot", ca_path=CA) == \
        f"twine upload --repository-url {HTTPS}/a/b/ --cert {CA} -u bot dist/*"
    rc = configparser.ConfigParser()
    rc.read_string(pypirc(HTTPS, {"b": ("a/b", "bot")}, ca_path=CA))
    assert rc["b"]["ca_cert"] == CA
    assert devpi_use_command(HTTPS, "a/b", ca_path=CA) == f"export REQUESTS_CA_BUNDLE={CA} && devpi use {HTTPS}/a/b"


def test_without_a_private_ca_https_outputs_carry_no_cert_and_http_is_unchanged() -> None:
    assert "cert" not in pip_conf(HTTPS, "a/b") and "--cert" not in requirements_header(HTTPS, "a/b")
    assert "ca_cert" not in pypirc(HTTPS, {"b": ("a/b", "bot")})
    assert devpi_use_command(HTTPS, "a/b") == f"devpi use {HTTPS}/a/b"
    assert "--cert" not in twine_command(HTTPS, "a/b", "bot")
    assert devpi_use_command(URL, "a/b", ca_path=None) == f"devpi use {URL}/a/b"


def test_pip_reads_the_cert_of_the_rendered_pip_conf(tmp_path: Path) -> None:
    conf = tmp_path / "pip.conf"
    conf.write_text(pip_conf(HTTPS, "a/b", ca_path=str(tmp_path / "ca.pem")))
    env = {**os.environ, "PIP_CONFIG_FILE": str(conf)}
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert f"global.cert='{tmp_path / 'ca.pem'}'" in proc.stdout.splitlines()
    assert f"global.index-url='{HTTPS}/a/b/+simple/'" in proc.stdout.splitlines()


def test_twine_reads_ca_cert_from_the_rendered_pypirc(tmp_path: Path) -> None:
    from twine.settings import Settings

    rc = tmp_path / "pypirc"
    rc.write_text(pypirc(HTTPS, {"nightly": ("bot/nightly", "bot")}, ca_path=CA))
    settings = Settings(config_file=str(rc), repository_name="nightly", password="x")
    assert settings.cacert == CA
    assert settings.repository_config["repository"] == f"{HTTPS}/bot/nightly/"
