"""``devpi-lifecycle`` over real HTTPS (Debian nginx with a certificate from the tests' CA in front of
devpi-server): the CA from ``--ca-bundle``, the stack file's ``tls.caBundle`` or ``REQUESTS_CA_BUNDLE``;
a TLS stack refuses plain-http URLs and an unreadable CA file before anything is sent (exit 2)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.devpi.client import DevpiClient
from components.lifecycle.cli import main
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.nginx import Nginx, start_nginx
from tests.fixtures.tls import TestCA
from tests.support import make_wheel

pytestmark = pytest.mark.devpi


@pytest.fixture(scope="module")
def https(devpi_server: DevpiServer, test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    certs = {"good": test_ca.issue(["127.0.0.1"], label="lifecycle-tls-good"),
             "wrong": test_ca.issue(["elsewhere.example"], label="lifecycle-tls-wrong")}
    nginx = start_nginx(tmp_path_factory.mktemp("nginx-lifecycle"), devpi_server.port, certs)
    yield nginx
    nginx.stop()


@pytest.fixture(autouse=True)
def no_ambient_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err, env=env or {})
    return code, out.getvalue(), err.getvalue()


def tls_stack(tmp_path: Path, url: str, ca_pem: str | None) -> Path:
    """A registry-only stack file that declares tls (with the private CA when given)."""
    tls: dict[str, Any] = {"caBundle": ca_pem} if ca_pem else {"clientCaPath": "/etc/pki/ca.pem"}
    path = tmp_path / "Pulumi.tls.yaml"
    path.write_text(json.dumps({"config": {"devpi-registry:serverUrl": url, "devpi-registry:tls": tls}}))
    return path


class TestTrust:
    def test_status_and_du_with_ca_bundle(self, https: Nginx, test_ca: TestCA) -> None:
        code, out, err = run(["status", "--url", https.url("good"), "--ca-bundle", str(test_ca.cert_file), "--json"])
        assert code == 0, err
        assert json.loads(out)["reachable"] is True
        code, _, err = run(["du", "--url", https.url("good"), "--ca-bundle", str(test_ca.cert_file), "--json"])
        assert code == 0, err

    def test_without_the_ca_the_command_fails_at_once_naming_the_fix(self, https: Nginx) -> None:
        code, out, err = run(["status", "--url", https.url("good"), "--json"])
        assert code == 1
        assert len(err.splitlines()) == 1 and "not trusted" in err and "--ca-bundle" in err
        assert https.url("good") in json.loads(out)["error"]

    def test_requests_ca_bundle_is_honoured(self, https: Nginx, test_ca: TestCA) -> None:
        code, _, err = run(["status", "--url", https.url("good")], env={"REQUESTS_CA_BUNDLE": str(test_ca.cert_file)})
        assert code == 0, err

    def test_a_wrong_name_certificate_fails(self, https: Nginx, test_ca: TestCA) -> None:
        code, _, err = run(["status", "--url", https.url("wrong"), "--ca-bundle", str(test_ca.cert_file)])
        assert code == 1 and "does not cover the name '127.0.0.1'" in err

    def test_the_stack_files_ca_bundle_is_used_for_reads_and_writes(
            self, https: Nginx, devpi_server: DevpiServer, test_ca: TestCA, unique: str, tmp_path: Path) -> None:
        url = https.url("good")
        user = f"lt{unique}"
        admin = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
        admin.create_user(user, "pw-lt")
        admin.create_index(f"{user}/dev", {"volatile": True})
        admin.create_index(f"{user}/stable", {"volatile": True})
        DevpiClient(devpi_server.url, user, "pw-lt").upload(
            f"{user}/dev", make_wheel(tmp_path, "tls-life", "1.0"), name="tls-life", version="1.0")
        stack = tls_stack(tmp_path, url, test_ca.cert_pem)
        code, out, err = run(["status", "--stack-config", str(stack), "--json"])
        assert code in (0, 3), err  # 3: the stack declares none of the server's indexes (drift)
        assert json.loads(out)["reachable"] is True
        code, out, err = run(["promote", "tls-life==1.0", "--from", f"{user}/dev", "--to", f"{user}/stable",
                              "--stack-config", str(stack), "--user", user, "--json"], env={"DEVPI_PASSWORD": "pw-lt"})
        assert code == 0, err
        assert json.loads(out)["files"][0]["filename"].startswith("tls_life-1.0")


class TestRefusals:
    def test_a_tls_stack_refuses_a_plain_http_url(self, devpi_server: DevpiServer, test_ca: TestCA,
                                                  tmp_path: Path) -> None:
        stack = tls_stack(tmp_path, "https://devpi.example.internal", test_ca.cert_pem)
        code, out, err = run(["status", "--stack-config", str(stack), "--url", devpi_server.url])
        assert code == 2 and out == ""
        assert err.splitlines() == [err.rstrip("\n")]
        assert devpi_server.url in err and str(stack) in err and "plain http" in err

    def test_a_tls_stack_refuses_a_plain_http_replica(self, https: Nginx, test_ca: TestCA, tmp_path: Path) -> None:
        stack = tls_stack(tmp_path, https.url("good"), test_ca.cert_pem)
        code, _, err = run(["status", "--stack-config", str(stack), "--replica", "http://127.0.0.1:9"])
        assert code == 2 and "replica URL http://127.0.0.1:9 is plain http" in err

    def test_a_tls_stack_without_a_private_ca_still_refuses_http(self, devpi_server: DevpiServer,
                                                                  tmp_path: Path) -> None:
        stack = tls_stack(tmp_path, "https://devpi.example.internal", None)
        code, _, err = run(["du", "--stack-config", str(stack), "--url", devpi_server.url])
        assert code == 2 and "plain http" in err

    @pytest.mark.parametrize("content", [None, "not a certificate\n"])
    def test_a_bad_ca_bundle_file_is_a_usage_error(self, tmp_path: Path, content: str | None) -> None:
        path = tmp_path / "ca.pem"
        if content is not None:
            path.write_text(content)
        code, out, err = run(["status", "--url", "https://127.0.0.1:9", "--ca-bundle", str(path), "--json"])
        assert code == 2
        assert len(err.splitlines()) == 1 and str(path) in err
        assert json.loads(out) == {"error": err.strip().removeprefix("devpi-lifecycle: error: ")}

    def test_a_bad_requests_ca_bundle_is_a_usage_error(self, tmp_path: Path) -> None:
        code, _, err = run(["status", "--url", "https://127.0.0.1:9"],
                           env={"REQUESTS_CA_BUNDLE": str(tmp_path / "missing.pem")})
        assert code == 2 and "REQUESTS_CA_BUNDLE" in err and "missing.pem" in err

