"""The stack's nginx site in Debian's real nginx, in front of a real devpi-server, with certificates
from a test CA: the clients a team uses (twine, pip in strict mode, devpi-client) work over https
with the CA and nothing else, every link devpi renders is https, plain HTTP only redirects (or
nothing listens), a certificate for another name or an expired one is refused by the clients (so
TLS is really verified), an upload above the limit gets 413, and a certificate rotation is a
reload that leaves devpi running.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from components.devpi.client import DevpiClient
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.nginx import TlsProxy, start_tls_proxy
from tests.fixtures.tls import TestCA
from tests.support import make_wheel, missing_fixture

pytestmark = [pytest.mark.devpi]

BIN = Path(sys.executable).parent
NAMES = ["localhost", "127.0.0.1"]
# Variables that would let a client trust something other than what each call passes explicitly.
TRUST_ENV = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR", "PIP_CERT",
             "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_TRUSTED_HOST", "PIP_CONFIG_FILE")

TlsProxies = Callable[..., TlsProxy]


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        missing_fixture(f"{name} is not installed in this virtualenv (pip install -e .[test])")
    return str(path)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in TRUST_ENV}
    env.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
               TWINE_NON_INTERACTIVE="1", **extra)
    return env


def run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=180, check=False)


def twine_upload(url: str, index: str, user: str, password: str, wheel: Path, ca: Path) -> subprocess.CompletedProcess[str]:
    env = clean_env(TWINE_USERNAME=user, TWINE_PASSWORD=password)
    return run([tool("twine"), "upload", "--disable-progress-bar", "--cert", str(ca),
                "--repository-url", f"{url}/{index}/", str(wheel)], env)


def pip(*args: str) -> subprocess.CompletedProcess[str]:
    # --isolated: no pip.conf, no PIP_* variables; the index and the CA are only what is passed here.
    return run([sys.executable, "-m", "pip", *args, "--isolated", "--no-deps", "--no-cache-dir",
                "--retries", "0", "--timeout", "20"], clean_env())


def served_certificate(port: int) -> str:
    return ssl.get_server_certificate(("127.0.0.1", port), timeout=10)


@pytest.fixture(scope="module")
def proxy(devpi_server: DevpiServer, test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsProxy]:
    issued = test_ca.issue(NAMES, label="nginx-real-shared")
    started = start_tls_proxy(tmp_path_factory.mktemp("nginx"), devpi_server.port, issued)
    yield started
    started.stop()


def team(server: DevpiServer, url: str, ca: Path, unique: str, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str, str]:
    """As root, over https through the proxy: a user and its index. Returns (user, password, index)."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    user, password = f"tls{unique}", "pw" + secrets.token_urlsafe(12)
    with DevpiClient(url, "root", server.root_password) as root:
        root.create_user(user, password, email=f"{user}@example.com")
        root.create_index(f"{user}/dev", {"bases": [], "volatile": True})
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    return user, password, f"{user}/dev"


class TestClientsOverHttps:
    def test_twine_pip_and_devpi_client_with_the_ca(self, proxy: TlsProxy, devpi_server: DevpiServer,
                                                    test_ca: TestCA, unique: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
        ca = test_ca.cert_file
        user, password, index = team(devpi_server, proxy.https_url, ca, unique, monkeypatch)
        project = f"tls-pkg-{unique}"
        wheel = make_wheel(tmp_path / "dist", project, "1.0")

        upload = twine_upload(proxy.https_url, index, user, password, wheel, ca)
        assert upload.returncode == 0, upload.stdout + upload.stderr
        assert password not in upload.stdout + upload.stderr

        simple = f"{proxy.https_url}/{index}/+simple/"
        target = tmp_path / "site"
        installed = pip("install", "--target", str(target), "--index-url", simple, "--cert", str(ca), f"{project}==1.0")
        assert installed.returncode == 0, installed.stdout + installed.stderr
        assert (target / project.replace("-", "_") / "__init__.py").read_text().startswith('__version__ = "1.0"')

        # The same command without the CA fails: pip really verifies (no trusted-host anywhere).
        untrusted = pip("download", "-d", str(tmp_path / "x"), "--index-url", simple, f"{project}==1.0")
        assert untrusted.returncode != 0
        assert "CERTIFICATE_VERIFY_FAILED" in untrusted.stdout + untrusted.stderr

        clientdir = tmp_path / "client"
        env = clean_env(REQUESTS_CA_BUNDLE=str(ca))
        devpi = [tool("devpi"), "--clientdir", str(clientdir)]
        used = run([*devpi, "use", f"{proxy.https_url}/{index}"], env)
        assert used.returncode == 0, used.stdout + used.stderr
        assert f"{proxy.https_url}/{index}" in used.stdout
        login = run([*devpi, "login", user, "--password", password], env)  # test-only: password on argv
        assert login.returncode == 0 and "logged in" in login.stdout, login.stdout + login.stderr
        got = run([*devpi, "getjson", f"/{index}/{project}"], env)
        assert got.returncode == 0, got.stdout + got.stderr
        assert f'"{proxy.https_url}/{index}/+f/' in got.stdout

    def test_every_link_devpi_renders_is_https(self, proxy: TlsProxy, devpi_server: DevpiServer, test_ca: TestCA,
                                               unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        ca = test_ca.cert_file
        user, password, index = team(devpi_server, proxy.https_url, ca, unique, monkeypatch)
        project = f"links-{unique}"
        upload = twine_upload(proxy.https_url, index, user, password, make_wheel(tmp_path, project, "2.0"), ca)
        assert upload.returncode == 0, upload.stdout + upload.stderr

        # devpi 6 writes +simple hrefs relative to the page: what pip follows is the resolved URL.
        followed: list[str] = []
        for page in (f"/{index}/+simple/", f"/{index}/+simple/{project}/"):
            resp = requests.get(proxy.https_url + page, verify=str(ca), timeout=10)
            assert resp.status_code == 200, resp.text[:500]
            hrefs = re.findall(r'href="([^"]+)"', resp.text)
            assert hrefs and "http://" not in resp.text, resp.text[:500]
            followed += [urljoin(resp.url, h) for h in hrefs]
        assert all(h.startswith(proxy.https_url + "/") for h in followed), followed
        assert any(h.startswith(f"{proxy.https_url}/{index}/+f/") for h in followed), followed
        api = requests.get(proxy.https_url + "/+api", verify=str(ca), timeout=10,
                           headers={"Accept": "application/json"}).json()["result"]
        assert api["login"] == f"{proxy.https_url}/+login"
        # The same devpi asked directly renders http links: the header, not a setting, makes them https.
        direct = requests.get(devpi_server.url + "/+api", timeout=10, headers={"Accept": "application/json"})
        assert direct.json()["result"]["login"] == f"{devpi_server.url}/+login"


class TestPlainHttp:
    def test_redirects_to_https(self, proxy: TlsProxy, test_ca: TestCA) -> None:
        resp = requests.get(proxy.http_url + "/root/pypi/+simple/?x=1", allow_redirects=False, timeout=10)
        assert resp.status_code == 301
        assert resp.headers["Location"] == f"{proxy.https_url}/root/pypi/+simple/?x=1"
        followed = requests.get(proxy.http_url + "/+api", timeout=10, verify=str(test_ca.cert_file),
                                headers={"Accept": "application/json"})
        assert followed.url == proxy.https_url + "/+api" and followed.json()["type"] == "apiconfig"

    def test_nothing_listens_when_redirect_is_off(self, tls_proxies: TlsProxies, devpi_server: DevpiServer,
                                                  test_ca: TestCA) -> None:
        quiet = tls_proxies(devpi_server.port, test_ca.issue(NAMES, label="nginx-no-redirect"), redirect=False)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", quiet.http_port), timeout=5).close()
        assert requests.get(quiet.https_url + "/+api", verify=str(test_ca.cert_file), timeout=10).status_code == 200


class TestTlsIsVerified:
    def test_certificate_for_another_name_is_refused(self, tls_proxies: TlsProxies, devpi_server: DevpiServer,
                                                     test_ca: TestCA, tmp_path: Path) -> None:
        wrong = tls_proxies(devpi_server.port, test_ca.issue(["registry.example.org"], label="nginx-wrong-name"))
        url = f"https://localhost:{wrong.https_port}"
        with pytest.raises(requests.exceptions.SSLError, match=r"match|mismatch"):
            requests.get(url + "/+api", verify=str(test_ca.cert_file), timeout=10)
        refused = pip("download", "-d", str(tmp_path), "--index-url", f"{url}/root/dev/+simple/",
                      "--cert", str(test_ca.cert_file), "anything")
        assert refused.returncode != 0 and "match" in refused.stdout + refused.stderr, refused.stderr

    def test_expired_certificate_is_refused(self, tls_proxies: TlsProxies, devpi_server: DevpiServer,
                                            test_ca: TestCA, tmp_path: Path) -> None:
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
        expired = tls_proxies(devpi_server.port, test_ca.issue(NAMES, not_before=past, days=1, label="nginx-expired"))
        with pytest.raises(requests.exceptions.SSLError, match="expired"):
            requests.get(expired.https_url + "/+api", verify=str(test_ca.cert_file), timeout=10)
        refused = pip("download", "-d", str(tmp_path), "--index-url", f"{expired.https_url}/root/dev/+simple/",
                      "--cert", str(test_ca.cert_file), "anything")
        assert refused.returncode != 0 and "expired" in refused.stdout + refused.stderr, refused.stderr


class TestUploadLimit:
    def test_upload_above_the_limit_gets_413_a_normal_wheel_passes(
        self, tls_proxies: TlsProxies, devpi_server: DevpiServer, test_ca: TestCA, unique: str, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        limited = tls_proxies(devpi_server.port, test_ca.issue(NAMES, label="nginx-limit"), max_upload_mb=1)
        ca = test_ca.cert_file
        user, password, index = team(devpi_server, limited.https_url, ca, unique, monkeypatch)
        # ~2 MiB of incompressible text: the wheel stays above 1 MiB after deflate
        big = make_wheel(tmp_path / "big", f"big-{unique}", "1.0", payload=f"# {secrets.token_hex(1 << 20)}\n")
        assert big.stat().st_size > 1 << 20
        refused = twine_upload(limited.https_url, index, user, password, big, ca)
        assert refused.returncode != 0 and "413" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
        small = make_wheel(tmp_path / "small", f"small-{unique}", "1.0")
        passed = twine_upload(limited.https_url, index, user, password, small, ca)
        assert passed.returncode == 0, passed.stdout + passed.stderr
        assert DevpiClient(devpi_server.url).list_projects(index) == [f"small-{unique}"]


class TestCertificateRotation:
    def test_new_certificate_after_reload_devpi_untouched(self, tls_proxies: TlsProxies, devpi_server: DevpiServer,
                                                          test_ca: TestCA) -> None:
        first = test_ca.issue(NAMES, label="nginx-rotate-1")
        proxy = tls_proxies(devpi_server.port, first)
        assert served_certificate(proxy.https_port) == first.cert_pem
        assert devpi_server.proc is not None
        devpi_pid, nginx_pid = devpi_server.proc.pid, proxy.pid

        second = test_ca.issue(NAMES, label="nginx-rotate-2")
        proxy.install_certificate(second)
        assert (proxy.tls_dir / "key.pem").stat().st_mode & 0o777 == 0o600
        proxy.reload()

        assert served_certificate(proxy.https_port) == second.cert_pem
        assert proxy.pid == nginx_pid and proxy.proc is not None and proxy.proc.poll() is None  # reloaded, not restarted
        assert devpi_server.proc is not None and devpi_server.proc.pid == devpi_pid and devpi_server.proc.poll() is None
        resp = requests.get(proxy.https_url + "/+api", verify=str(test_ca.cert_file), timeout=10)
        assert resp.status_code == 200
