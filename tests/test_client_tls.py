"""The devpi client and the providers over real HTTPS: Debian nginx terminating TLS in front of a real
devpi-server, with certificates from the tests' own CA. The client trusts exactly the CA it is given
(or ``REQUESTS_CA_BUNDLE``); an untrusted, wrong-name or expired certificate is a ``TlsError`` —
fast, not retried, never "absent" — so the tests prove TLS really is checked."""

from __future__ import annotations

import datetime as dt
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pulumi.dynamic import Config, ConfigureRequest

from components.config.connection import PROJECT
from components.devpi.client import DevpiClient, RetryPolicy, ca_bundle_file
from components.devpi.errors import NotFoundError, TlsError
from components.providers.base import ClientOptions
from components.providers.index import INDEX_FIELDS, DevpiIndexProvider
from components.registry.client_config import devpi_use_command, pip_conf, pypirc
from tests.fixtures.devpi import BIN, DevpiServer
from tests.fixtures.nginx import Nginx, start_nginx
from tests.fixtures.tls import TestCA
from tests.support import make_wheel

pytestmark = pytest.mark.devpi

@pytest.fixture(scope="module")
def tls_front(devpi_server: DevpiServer, test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory
              ) -> Iterator[Nginx]:
    """nginx in front of the session's devpi: ``good`` (127.0.0.1 and localhost), ``wrong`` (another
    name), ``expired`` (valid names, expired last month)."""
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=60)
    certs = {
        "good": test_ca.issue(["127.0.0.1", "localhost"], label="client-tls-good"),
        "wrong": test_ca.issue(["elsewhere.example"], label="client-tls-wrong"),
        "expired": test_ca.issue(["127.0.0.1"], not_before=past, days=30, label="client-tls-expired"),
    }
    nginx = start_nginx(tmp_path_factory.mktemp("nginx"), devpi_server.port, certs)
    yield nginx
    nginx.stop()


@pytest.fixture(autouse=True)
def no_ambient_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    """The tests decide what is trusted: no REQUESTS_CA_BUNDLE from the calling shell."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


# ------------------------------------------------------------------------------------------- tests
class TestTrustedCa:
    def test_client_with_the_ca_logs_in_writes_and_reads(self, tls_front: Nginx, devpi_server: DevpiServer,
                                                         test_ca: TestCA, unique: str, tmp_path: Path) -> None:
        url = tls_front.url("good")
        root = DevpiClient(url, "root", devpi_server.root_password, ca_bundle=test_ca.cert_pem)
        user = f"tls{unique}"
        root.create_user(user, "pw")
        root.create_index(f"{user}/dev", {"volatile": True, "acl_upload": ["root"]})
        assert root.get_index(f"{user}/dev")["volatile"] is True
        wheel = make_wheel(tmp_path, f"tls-pkg-{unique}", "1.0")
        root.upload(f"{user}/dev", wheel, name=f"tls-pkg-{unique}", version="1.0")
        files = root.release_files(f"{user}/dev", f"tls-pkg-{unique}", "1.0")
        assert [f.filename for f in files] == [wheel.name]
        assert files[0].href.startswith(url + "/"), "devpi renders https links behind the proxy"
        assert root.download(files[0].href) == wheel.read_bytes()
        assert root.api()["authstatus"][:2] == ["ok", "root"]

    def test_requests_ca_bundle_from_the_environment_is_honoured(
            self, tls_front: Nginx, test_ca: TestCA, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(test_ca.cert_file))
        with DevpiClient(tls_front.url("good")) as c:
            assert "login" in c.api(auth=False)

    def test_the_ca_file_is_private_and_written_once_per_content(self, test_ca: TestCA) -> None:
        path = Path(ca_bundle_file(test_ca.cert_pem))
        assert path == Path(ca_bundle_file(test_ca.cert_pem))
        assert path.read_text() == test_ca.cert_pem
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        with pytest.raises(ValueError, match="not PEM certificates"):
            ca_bundle_file("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")


class TestRefusedCertificates:
    def test_without_the_ca_a_read_is_a_tls_error_fast_and_never_absent(self, tls_front: Nginx) -> None:
        url = tls_front.url("good")
        client = DevpiClient(url, retry=RetryPolicy())  # the default policy retries connection errors
        start = time.monotonic()
        with pytest.raises(TlsError) as caught:
            client.index_exists("nobody/nothing")  # must not answer False
        assert time.monotonic() - start < 3, "a TLS failure is not retried"
        assert not isinstance(caught.value, NotFoundError)
        message = str(caught.value)
        assert url in message and "not trusted" in message and "tls.caBundle" in message
        assert "REQUESTS_CA_BUNDLE" in message

    def test_readiness_wait_stops_at_the_first_tls_error(self, tls_front: Nginx) -> None:
        start = time.monotonic()
        with pytest.raises(TlsError):
            DevpiClient(tls_front.url("good")).wait_ready(timeout=30)
        assert time.monotonic() - start < 3

    def test_a_wrong_name_certificate_is_refused_even_with_the_ca(self, tls_front: Nginx, test_ca: TestCA) -> None:
        with pytest.raises(TlsError, match=r"does not cover the name .127\.0\.0\.1."):
            DevpiClient(tls_front.url("wrong"), ca_bundle=test_ca.cert_pem).api(auth=False)

    def test_an_expired_certificate_is_refused(self, tls_front: Nginx, test_ca: TestCA) -> None:
        with pytest.raises(TlsError, match="expired"):
            DevpiClient(tls_front.url("expired"), ca_bundle=test_ca.cert_pem).status()

    def test_another_ca_is_not_trusted(self, tls_front: Nginx, tmp_path: Path) -> None:
        from tests.fixtures.tls import make_ca

        other = make_ca(tmp_path / "other-ca", "some other CA")
        with pytest.raises(TlsError, match=r"not trusted .* trusting only the CA bundle given"):
            DevpiClient(tls_front.url("good"), ca_bundle=other.cert_pem).status()

    def test_a_tls_client_refuses_plain_http(self, devpi_server: DevpiServer) -> None:
        with pytest.raises(ValueError, match="is plain http, but devpi is served over https"):
            DevpiClient(devpi_server.url, require_https=True)


def configured_over_tls(url: str, password: str, ca_pem: str | None) -> DevpiIndexProvider:
    """An index provider configured as the provider host would, with the stack's ``tls.caBundle``."""
    config: dict[str, Any] = {f"{PROJECT}:serverUrl": url, f"{PROJECT}:rootPassword": password}
    if ca_pem is not None:
        config[f"{PROJECT}:tls"] = {"caBundle": ca_pem}
    provider = DevpiIndexProvider()
    provider.configure(ConfigureRequest(Config(config, PROJECT)))
    return provider


class TestProvidersOverHttps:
    def test_index_provider_creates_and_reads_with_the_stacks_ca(
            self, tls_front: Nginx, devpi_server: DevpiServer, test_ca: TestCA, unique: str) -> None:
        owner = f"tp{unique}"
        DevpiClient(devpi_server.url, "root", devpi_server.root_password).create_user(owner, "pw")
        p = configured_over_tls(tls_front.url("good"), devpi_server.root_password, test_ca.cert_pem)
        assert p.settings.ca_bundle == test_ca.cert_pem
        props = dict.fromkeys(INDEX_FIELDS)
        props.update(owner=owner, name="dev", type="stage", volatile=True, force_destroy=False, adopt=False,
                     allow_mirror_whitelist_star=False, allow_anonymous_upload=False)
        checked = p.check({}, props)
        assert checked.failures == []
        created = p.create(checked.inputs)
        assert created.id == f"{owner}/dev"
        read = p.read(created.id, created.outs or {})
        assert read.outs == created.outs
        p.delete(created.id, read.outs or {})

    def test_provider_without_the_ca_fails_with_tls_error(
            self, tls_front: Nginx, devpi_server: DevpiServer) -> None:
        p = configured_over_tls(tls_front.url("good"), devpi_server.root_password, None)
        p.client_options = ClientOptions(retry=RetryPolicy(attempts=2))
        with pytest.raises(TlsError, match=r"tls\.caBundle"):
            p.read("nobody/dev", {"owner": "nobody", "name": "dev"})


class TestRenderedClientFilesOverHttps:
    def test_twine_pip_and_devpi_client_trust_the_ca_they_are_told(
            self, tls_front: Nginx, devpi_server: DevpiServer, test_ca: TestCA, unique: str, tmp_path: Path) -> None:
        url, ca = tls_front.url("good"), str(test_ca.cert_file)
        user, index, name = f"rf{unique}", f"rf{unique}/dev", f"rf-pkg-{unique}"
        root = DevpiClient(url, "root", devpi_server.root_password, ca_bundle=test_ca.cert_pem)
        root.create_user(user, "pw-up")
        root.create_index(index, {"volatile": True})
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_", "TWINE_", "REQUESTS_CA", "CURL_CA"))}
        wheel = make_wheel(tmp_path / "dist", name, "1.0")

        rc = tmp_path / "pypirc"
        rc.write_text(pypirc(url, {"dev": (index, user)}, ca_path=ca))
        twine = subprocess.run([str(BIN / "twine"), "upload", "--config-file", str(rc), "-r", "dev",
                                "--non-interactive", str(wheel)],
                               capture_output=True, text=True, env={**env, "TWINE_PASSWORD": "pw-up"}, timeout=120)
        assert twine.returncode == 0, twine.stdout + twine.stderr

        conf = tmp_path / "pip.conf"
        conf.write_text(pip_conf(url, index, ca_path=ca))
        pip = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "got"),
                              f"{name}==1.0"], capture_output=True, text=True, timeout=120,
                             env={**env, "PIP_CONFIG_FILE": str(conf), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        assert pip.returncode == 0, pip.stderr
        assert (tmp_path / "got" / wheel.name).read_bytes() == wheel.read_bytes()

        use = devpi_use_command(url, index, ca_path=ca)
        devpi = subprocess.run(["bash", "-c", f"{use} && devpi getjson /{index}"], capture_output=True, text=True,
                               timeout=120, env={**env, "PATH": f"{BIN}:{env.get('PATH', '')}",
                                                 "DEVPI_CLIENTDIR": str(tmp_path / "devpi-client")})
        assert devpi.returncode == 0, devpi.stdout + devpi.stderr
        assert '"type": "indexconfig"' in devpi.stdout

        # the same files without the CA are refused by each tool (so the CA really is what made it work)
        conf.write_text(pip_conf(url, index))
        refused = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-d", str(tmp_path / "no"),
                                  "--retries", "0", f"{name}==1.0"], capture_output=True, text=True, timeout=120,
                                 env={**env, "PIP_CONFIG_FILE": str(conf), "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        assert refused.returncode != 0 and "CERTIFICATE_VERIFY_FAILED" in refused.stdout + refused.stderr
        no_ca = subprocess.run(["bash", "-c", f"{devpi_use_command(url, index)}"], capture_output=True, text=True,
                               timeout=120, env={**env, "PATH": f"{BIN}:{env.get('PATH', '')}",
                                                 "DEVPI_CLIENTDIR": str(tmp_path / "devpi-client-2")})
        assert no_ca.returncode != 0, no_ca.stdout
