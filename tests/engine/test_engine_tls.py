"""HTTPS through the real engine (issue 11): a registry-only stack whose ``serverUrl`` is https behind
real nginx, trusting a private CA declared as ``tls.caBundle``.

The providers, the readiness gate and the outputs all speak https with the declared CA: ``pulumi up``
creates the manual procedure's objects over TLS, the outputs carry no ``trusted-host`` and point pip
and twine at the CA, and a real upload and a strict install work with them. A plain-http
``serverUrl`` in a TLS stack, and a certificate the declared CA did not sign, fail before or at the
first request, naming what is wrong.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from tests.engine.conftest import USER_PASSWORD, configure, pip_env
from tests.engine.harness import PulumiProject
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.nginx import start_tls_proxy
from tests.fixtures.tls import TestCA, make_ca
from tests.support import make_wheel

BIN = Path(sys.executable).parent


@pytest.fixture
def https_devpi(fresh_devpi_server: DevpiServer, test_ca: TestCA, tmp_path: Path) -> Any:
    issued = test_ca.issue(["localhost", "127.0.0.1"], label="engine-tls")
    proxy = start_tls_proxy(tmp_path / "nginx", fresh_devpi_server.port, issued)
    try:
        yield proxy
    finally:
        proxy.stop()


def _tls_config(test_ca: TestCA, ca_path: Path) -> dict[str, Any]:
    return {"tls": {"caBundle": test_ca.cert_pem, "clientCaPath": str(ca_path)}}


def test_up_over_https_with_the_declared_ca_and_the_outputs_work(
        project: PulumiProject, fresh_devpi_server: DevpiServer, https_devpi: Any, test_ca: TestCA,
        devpi_cli: Any, tmp_path: Path) -> None:
    server = fresh_devpi_server
    url = https_devpi.https_url.rstrip("/")
    assert url.startswith("https://localhost:")
    configure(project, server, url, **_tls_config(test_ca, test_ca.cert_file))
    project.up()

    # The objects exist (checked on devpi itself, behind the proxy).
    cli = devpi_cli(server)
    assert set(cli.getjson("/build_bot")["indexes"]) == {"nightly", "stable", "prod"}
    again = project.up()
    assert "created" not in again.stdout.split("Resources:")[-1]

    outputs = project.outputs()
    assert outputs["serverUrl"] == url
    assert "trusted-host" not in outputs["pipConf"]
    assert f"cert = {test_ca.cert_file}" in outputs["pipConf"]
    assert outputs["indexes"]["build_bot/nightly"]["simpleUrl"] == f"{url}/build_bot/nightly/+simple/"
    assert f"--cert {test_ca.cert_file}" in outputs["twineCommands"]["build_bot/nightly"]

    # A real upload with the .pypirc output and a strict install with the pip.conf output, over TLS.
    pypirc = tmp_path / "pypirc"
    pypirc.write_text(outputs["pypirc"])
    wheel = make_wheel(tmp_path / "dist", "tls-utils", "0.2.0.dev1")
    # requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override twine's ca_cert and pip's cert (docs/tls.md): a person
    # whose shell sets them to another bundle gets a verify failure, so they are not set here.
    clean = {k: v for k, v in pip_env().items() if k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")}
    env = {**clean, "TWINE_PASSWORD": USER_PASSWORD, "TWINE_NON_INTERACTIVE": "1"}
    upload = subprocess.run([str(BIN / "twine"), "upload", "--config-file", str(pypirc), "-r", "nightly",
                             "-u", "build_bot", str(wheel)], capture_output=True, text=True, env=env, timeout=120)
    assert upload.returncode == 0, upload.stdout + upload.stderr
    pipconf = tmp_path / "pip.conf"
    pipconf.write_text(outputs["pipConf"])
    target = tmp_path / "installed"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--target", str(target),
         "tls-utils==0.2.0.dev1"],
        capture_output=True, text=True, env={**clean, "PIP_CONFIG_FILE": str(pipconf)}, timeout=180)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / "tls_utils" / "__init__.py").exists()

    # devpi links rendered through the proxy are https (nginx told devpi its outside URL).
    page = f"{url}/build_bot/nightly/+simple/tls-utils/"
    html = requests.get(page, verify=str(test_ca.cert_file), timeout=30).text
    links = [urljoin(page, href) for href in re.findall(r'href="([^"]+)"', html)]
    assert links and all(link.startswith(f"{url}/build_bot/nightly/+f/") for link in links), links

    # destroy goes through https too, and still refuses the index that holds the uploaded package
    destroyed = project.destroy(check=False)
    assert destroyed.returncode != 0 and "build_bot/nightly" in destroyed.stdout + destroyed.stderr
    assert "devpi-index-build_bot-nightly" in project.resources()
    assert "devpi-index-build_bot-prod" not in project.resources()


def test_plain_http_server_url_is_refused_for_a_tls_stack_at_preview(
        project: PulumiProject, fresh_devpi_server: DevpiServer, test_ca: TestCA) -> None:
    configure(project, fresh_devpi_server, fresh_devpi_server.url, **_tls_config(test_ca, test_ca.cert_file))
    result = project.run("preview", "--stack", project.stack, check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "devpi-registry:serverUrl" in text and "https" in text


def test_a_certificate_the_declared_ca_did_not_sign_fails_naming_tls(
        project: PulumiProject, fresh_devpi_server: DevpiServer, https_devpi: Any, tmp_path: Path) -> None:
    other = make_ca(tmp_path / "other-ca", "some other CA")
    configure(project, fresh_devpi_server, https_devpi.https_url.rstrip("/"),
              **{"tls": {"caBundle": other.cert_pem, "clientCaPath": str(other.cert_file)}})
    result = project.up(check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0
    assert "certificate" in text.lower() and https_devpi.https_url.rstrip("/") in text
    # nothing was created
    assert not [r for r in project.resources().values() if r["type"].endswith(("DevpiIndex", "DevpiUser"))]
