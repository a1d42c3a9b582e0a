"""The `tls` stack key: a certificate the proxy cannot serve, a key that does not fit it, names it does
not cover, an expired or future certificate, a chain the declared CA did not sign — each fails at
load time (= `pulumi preview`) naming the key path, and no message ever shows private-key material.

Certificates are real ones, made by the test CA (tests/fixtures/tls.py) with `cryptography`.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from components.config import tls as certs
from components.config.connection import provider_settings
from components.config.defaults import CERT_WARN_DAYS
from components.config.errors import ConfigError
from components.config.model import TlsConfig
from components.config.sources import load_stack_file
from components.config.stack import load_connection, load_stack_config
from tests.fixtures.tls import Issued, TestCA, make_ca

ROOT = Path(__file__).resolve().parent.parent
P = "devpi-registry:"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeButWellFormedKeyForTests0123456789"
NAME = "devpi.example.internal"
UTC = dt.UTC


def stack(issued: Issued, **tls: Any) -> dict[str, Any]:
    """A valid managed-host stack with TLS for ``issued`` (a leaf of the test CA)."""
    return {
        "host": {"address": "192.0.2.10", "hostKey": HOST_KEY},
        "rootPassword": "secret-root",
        "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----",
        "tls": {"certificate": issued.chain_pem, "names": [NAME], **tls},
        "tlsPrivateKey": issued.key_pem,
    }


def pem_of(key: Any, *, password: bytes | None = None) -> str:
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption).decode()


def leaf_for_key(ca: TestCA, names: list[str], key: Any) -> str:
    """A leaf certificate (PEM chain with the CA) for a key of the test's choice (RSA sizes)."""
    now = dt.datetime.now(UTC) - dt.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca.cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode() + ca.cert_pem


def key_lines(*pems: str) -> list[str]:
    """The base64 lines of private keys: none of them may appear in a message."""
    return [ln for pem in pems for ln in pem.splitlines() if ln and not ln.startswith("-----")]


def assert_no_key_material(message: str, *pems: str) -> None:
    assert "PRIVATE KEY" not in message, message
    for line in key_lines(*pems):
        assert line not in message, f"key material in: {message}"
        assert line[:24] not in message, f"key material in: {message}"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("config-tls-ca"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("config-tls-other-ca"), "some other CA")


@pytest.fixture(scope="module")
def good(ca: TestCA) -> Issued:
    return ca.issue([NAME, "192.0.2.10"], label="good")


def bad_configs(ca: TestCA, other_ca: TestCA, good: Issued) -> list[tuple[str, dict[str, Any], str, str]]:
    """(id, raw config, key path named, words of the message)."""
    past = dt.datetime.now(UTC) - dt.timedelta(days=400)
    expired = ca.issue([NAME], not_before=past, days=30, label="expired")
    future = ca.issue([NAME], not_before=dt.datetime.now(UTC) + dt.timedelta(days=3), label="future")
    wrong = ca.issue(["elsewhere.example.internal"], label="wrong-names")
    foreign = other_ca.issue([NAME], label="foreign")
    mismatched = ca.issue([NAME], label="mismatched")
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - the weak key refused
    encrypted = pem_of(ec.generate_private_key(ec.SECP256R1()), password=b"passphrase")
    reversed_chain = ca.cert_pem + good.cert_pem

    def edit(change: dict[str, Any], base: Issued = good, drop: tuple[str, ...] = ()) -> dict[str, Any]:
        cfg = copy.deepcopy(stack(base))
        for path, value in change.items():
            node = cfg
            *parents, last = path.split(".")
            for part in parents:
                node = node[part]
            node[last] = value
        for path in drop:
            *parents, last = path.split(".")
            node = cfg
            for part in parents:
                node = node[part]
            del node[last]
        return cfg

    registry_only = {"serverUrl": "https://devpi.example.internal", "rootPassword": "secret-root"}
    return [
        ("certificate missing", edit({}, drop=("tls.certificate",)), f"{P}tls.certificate",
         "pulumi config set --path tls.certificate"),
        ("names missing", edit({}, drop=("tls.names",)), f"{P}tls.names", "names clients use"),
        ("key missing", edit({}, drop=("tlsPrivateKey",)), f"{P}tlsPrivateKey", "--secret tlsPrivateKey"),
        ("garbage certificate", edit({"tls.certificate": "-----BEGIN CERTIFICATE-----\nnot base64 at all\n"
                                      "-----END CERTIFICATE-----\n"}), f"{P}tls.certificate", "PEM certificate chain"),
        ("key pasted as certificate", edit({"tls.certificate": good.key_pem}), f"{P}tls.certificate",
         "contains a private key"),
        ("key appended to the chain", edit({"tls.certificate": good.chain_pem + good.key_pem}), f"{P}tls.certificate",
         "contains a private key"),
        ("CA first in the chain", edit({"tls.certificate": reversed_chain}), f"{P}tls.certificate",
         "starts with a CA certificate"),
        ("garbage key", edit({"tlsPrivateKey": "-----BEGIN PRIVATE KEY-----\nMIIBroken0123456789abcdef\n"
                              "-----END PRIVATE KEY-----\n"}), f"{P}tlsPrivateKey", "not a readable PEM private key"),
        ("certificate as key", edit({"tlsPrivateKey": good.cert_pem}), f"{P}tlsPrivateKey", "must be a PEM private key"),
        ("encrypted key", edit({"tlsPrivateKey": encrypted}), f"{P}tlsPrivateKey", "passphrase"),
        ("RSA 1024 key", edit({"tls.certificate": leaf_for_key(ca, [NAME], small), "tlsPrivateKey": pem_of(small)}),
         f"{P}tlsPrivateKey", "at least 2048 bits"),
        ("key of another certificate", edit({"tlsPrivateKey": mismatched.key_pem}), f"{P}tlsPrivateKey",
         "does not match the certificate"),
        ("names not covered", edit({}, base=wrong), f"{P}tls.names",
         "'devpi.example.internal', which the certificate does not cover"),
        ("second name not covered", edit({"tls.names": [NAME, "registry.example.internal"]}), f"{P}tls.names",
         "'registry.example.internal'"),
        ("expired", edit({}, base=expired), f"{P}tls.certificate", "has expired"),
        ("not yet valid", edit({}, base=future), f"{P}tls.certificate", "not valid yet"),
        ("signed by another CA", edit({"tls.caBundle": ca.cert_pem}, base=foreign), f"{P}tls.certificate",
         "not signed by a CA of tls.caBundle"),
        ("garbage CA bundle", edit({"tls.caBundle": "hello"}), f"{P}tls.caBundle", "PEM certificates"),
        ("key as CA bundle", edit({"tls.caBundle": good.key_pem}), f"{P}tls.caBundle", "contains a private key"),
        ("plain-http serverUrl", {**stack(good), "serverUrl": "http://devpi.example.internal:3141"}, f"{P}serverUrl",
         "a TLS stack is served over https"),
        ("https port is devpi's", edit({"tls.httpsPort": 3141}), f"{P}tls.httpsPort", "differ from server.port"),
        ("redirect port is devpi's", edit({"tls.httpPort": 3141}), f"{P}tls.httpPort", "differ from server.port"),
        ("https and http ports equal", edit({"tls.httpsPort": 8443, "tls.httpPort": 8443}), f"{P}tls.httpPort",
         "must differ from httpsPort"),
        ("https port out of range", edit({"tls.httpsPort": 0}), f"{P}tls.httpsPort", "between 1 and 65535"),
        ("wildcard name", edit({"tls.names": ["*.example.internal"]}), f"{P}tls.names[0]", "wildcard"),
        ("bad DNS name", edit({"tls.names": ["devpi_example!"]}), f"{P}tls.names[0]", "DNS name"),
        ("name twice", edit({"tls.names": [NAME, NAME.upper()]}), f"{P}tls.names[1]", "twice"),
        ("proxy dir inside the data dir", edit({"tls.proxyDir": "/opt/local/devpi/data/proxy"}), f"{P}tls.proxyDir",
         "apart from server.dataDir"),
        ("proxy dir a system folder", edit({"tls.proxyDir": "/etc"}), f"{P}tls.proxyDir", "system folder"),
        ("upload limit zero", edit({"tls.maxUploadMb": 0}), f"{P}tls.maxUploadMb", "between 1 and 1024"),
        ("upload limit above devpi's", edit({"tls.maxUploadMb": 2048}), f"{P}tls.maxUploadMb", "1 GiB"),
        ("client CA path relative", edit({"tls.clientCaPath": "ca.pem"}), f"{P}tls.clientCaPath", "absolute path"),
        ("floating proxy image", edit({"tls.proxyImage": "nginx:latest"}), f"{P}tls.proxyImage",
         "tls.allowFloatingProxyTag: true"),
        ("proxy named like devpi", edit({"tls.proxyContainerName": "devpi-server"}), f"{P}tls.proxyContainerName",
         "differ from server.containerName"),
        ("unknown tls key holding a key", edit({"tls.privateKey": good.key_pem}), f"{P}tls.privateKey",
         "not a known key"),
        ("key without tls", {**{k: v for k, v in stack(good).items() if k != "tls"}}, f"{P}tlsPrivateKey",
         "`tls` is not"),
        ("registry-only with a certificate", {**registry_only, "tls": {"certificate": good.chain_pem}},
         f"{P}tls.certificate", "managed only with `host`"),
        ("registry-only with a proxy key", {**registry_only, "tls": {"httpsPort": 8443}}, f"{P}tls.httpsPort",
         "managed only with `host`"),
        ("registry-only with the key", {**registry_only, "tls": {}, "tlsPrivateKey": good.key_pem},
         f"{P}tlsPrivateKey", "managed only with `host`"),
        ("registry-only over http", {**registry_only, "serverUrl": "http://h:3141", "tls": {"caBundle": ca.cert_pem}},
         f"{P}serverUrl", "a TLS stack is served over https"),
    ]


@pytest.fixture(scope="module")
def cases(ca: TestCA, other_ca: TestCA, good: Issued) -> dict[str, tuple[dict[str, Any], str, str]]:
    return {case_id: (cfg, path, words) for case_id, cfg, path, words in bad_configs(ca, other_ca, good)}


CASE_IDS = [
    "certificate missing", "names missing", "key missing", "garbage certificate", "key pasted as certificate",
    "key appended to the chain", "CA first in the chain", "garbage key", "certificate as key", "encrypted key",
    "RSA 1024 key", "key of another certificate", "names not covered", "second name not covered", "expired",
    "not yet valid", "signed by another CA", "garbage CA bundle", "key as CA bundle", "plain-http serverUrl",
    "https port is devpi's", "redirect port is devpi's", "https and http ports equal", "https port out of range",
    "wildcard name", "bad DNS name", "name twice", "proxy dir inside the data dir", "proxy dir a system folder",
    "upload limit zero", "upload limit above devpi's", "client CA path relative", "floating proxy image", "proxy named like devpi",
    "unknown tls key holding a key", "key without tls", "registry-only with a certificate",
    "registry-only with a proxy key", "registry-only with the key", "registry-only over http",
]


class TestBadTlsFailsAtPreviewNamingTheKeyWithoutKeyMaterial:
    def test_every_case_is_listed(self, cases: dict[str, Any]) -> None:
        assert sorted(cases) == sorted(CASE_IDS)

    @pytest.mark.parametrize("case_id", CASE_IDS)
    def test_refused(self, case_id: str, cases: dict[str, tuple[dict[str, Any], str, str]]) -> None:
        cfg, path, words = cases[case_id]
        with pytest.raises(ConfigError) as caught:
            load_stack_config(cfg)
        message = str(caught.value)
        assert message.startswith(f"{path}: "), message
        assert words in message, message
        keys = [v for v in json.dumps(cfg).split('"') if "PRIVATE KEY" in v]
        assert_no_key_material(message, *(k.encode().decode("unicode_escape") for k in keys))

    @pytest.mark.parametrize("case_id", ["garbage key", "key of another certificate", "encrypted key",
                                         "registry-only with the key", "key without tls"])
    def test_key_errors_are_masked(self, case_id: str, cases: dict[str, tuple[dict[str, Any], str, str]]) -> None:
        cfg, _, _ = cases[case_id]
        with pytest.raises(ConfigError) as caught:
            load_stack_config(cfg)
        assert caught.value.value == "[secret]" and str(caught.value).endswith("(got [secret])")

    def test_the_key_stored_in_clear_is_refused_masked(self, good: Issued) -> None:
        with pytest.raises(ConfigError, match=rf"^{P}tlsPrivateKey: must be set as a secret") as caught:
            load_stack_config(stack(good), secret_keys={"rootPassword", "sshPrivateKey"})
        assert_no_key_material(str(caught.value), good.key_pem)

    def test_a_certificate_error_shows_its_shape_not_its_text(self, ca: TestCA) -> None:
        wrong = ca.issue(["elsewhere.example.internal"], label="shape")
        with pytest.raises(ConfigError) as caught:
            load_stack_config(stack(wrong) | {"tls": {"certificate": wrong.chain_pem, "names": [NAME],
                                                       "caBundle": make_ca(ca.directory / "x").cert_pem}})
        assert "BEGIN CERTIFICATE" not in str(caught.value)
        assert "elsewhere.example.internal" in str(caught.value)


class TestGoodTls:
    def test_managed_host_defaults(self, good: Issued) -> None:
        cfg = load_stack_config(stack(good))
        assert cfg.tls is not None and cfg.proxied
        assert cfg.server_url == f"https://{NAME}"
        assert cfg.tls.names == (NAME,) and cfg.tls.certificate == good.chain_pem
        assert cfg.tls.proxy_ports == (443, 80)
        assert cfg.ca_bundle is None
        assert cfg.tls.not_after == good.not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
        # no warning 90 days ahead
        assert certs.certificate_warnings(cfg.tls, dt.datetime.now(UTC)) == []

    def test_other_https_port_is_in_the_default_url(self, good: Issued) -> None:
        cfg = load_stack_config(stack(good, httpsPort=8443, httpRedirect=False, httpPort=3141))
        assert cfg.server_url == f"https://{NAME}:8443"
        assert cfg.tls is not None and cfg.tls.proxy_ports == (8443,)

    def test_explicit_https_url_and_ca_bundle(self, ca: TestCA, good: Issued) -> None:
        cfg = load_stack_config({**stack(good, caBundle=ca.cert_pem), "serverUrl": f"https://{NAME}/"})
        assert cfg.server_url == f"https://{NAME}" and cfg.ca_bundle == ca.cert_pem

    def test_ip_name_covered_by_an_ip_san(self, good: Issued) -> None:
        cfg = load_stack_config(stack(good) | {"tls": {"certificate": good.chain_pem, "names": ["192.0.2.10"]}})
        assert cfg.server_url == "https://192.0.2.10"

    def test_wildcard_certificate_covers_exactly_one_label(self, ca: TestCA) -> None:
        wild = ca.issue(["*.example.internal"], label="wild")
        assert load_stack_config(stack(wild)).tls is not None
        with pytest.raises(ConfigError, match=rf"^{P}tls\.names: includes 'a\.devpi\.example\.internal'"):
            load_stack_config(stack(wild) | {"tls": {"certificate": wild.chain_pem,
                                                      "names": ["a.devpi.example.internal"]}})
        assert not certs.covers_name(wild.chain_pem, "example.internal")
        assert certs.covers_name(wild.chain_pem, "DEVPI.example.internal.")

    def test_rsa_2048_key(self, ca: TestCA) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cfg = load_stack_config(stack(ca.issue([NAME])) | {"tls": {"certificate": leaf_for_key(ca, [NAME], key),
                                                                    "names": [NAME]},
                                                            "tlsPrivateKey": pem_of(key)})
        assert cfg.proxied

    def test_registry_only_with_ca_bundle(self, ca: TestCA) -> None:
        raw = {"serverUrl": "https://localhost:8443", "rootPassword": "pw",
               "tls": {"caBundle": ca.cert_pem, "clientCaPath": "/etc/pki/devpi-ca.pem"}}
        cfg = load_stack_config(raw)
        assert cfg.tls == TlsConfig(ca_bundle=ca.cert_pem, client_ca_path="/etc/pki/devpi-ca.pem")
        assert not cfg.proxied and cfg.ca_bundle == ca.cert_pem
        assert load_connection(raw) == ("https://localhost:8443", "pw", ca.cert_pem)

    def test_registry_only_with_a_public_certificate(self) -> None:
        cfg = load_stack_config({"serverUrl": "https://pypi.example.com", "rootPassword": "pw", "tls": {}})
        assert cfg.tls is not None and cfg.ca_bundle is None


class TestProvidersGetTheUrlAndTheCa:
    def test_provider_settings_match_the_program(self, ca: TestCA, good: Issued) -> None:
        raw = stack(good, caBundle=ca.cert_pem)
        engine = {f"{P}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
        settings = provider_settings(engine.get)
        assert settings.url == load_stack_config(raw).server_url == f"https://{NAME}"
        assert settings.ca_bundle == ca.cert_pem
        assert "BEGIN" not in repr(settings) and "secret-root" not in repr(settings)

    def test_without_tls_no_ca(self) -> None:
        settings = provider_settings({f"{P}serverUrl": "http://h:3141", f"{P}rootPassword": "pw"}.get)
        assert settings.ca_bundle is None

    def test_provider_refuses_a_bad_key_masked(self, good: Issued, ca: TestCA) -> None:
        other = ca.issue([NAME], label="provider-other")
        raw = stack(good) | {"tlsPrivateKey": other.key_pem}
        engine = {f"{P}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}
        with pytest.raises(ConfigError, match=rf"^{P}tlsPrivateKey: does not match") as caught:
            provider_settings(engine.get)
        assert_no_key_material(str(caught.value), other.key_pem, good.key_pem)


class TestCertificateWarnings:
    def test_soon_expiring_certificate_loads_and_warns(self, ca: TestCA) -> None:
        soon = ca.issue([NAME], days=10, label="soon")
        cfg = load_stack_config(stack(soon))
        assert cfg.tls is not None and cfg.tls.not_after is not None
        warnings = certs.certificate_warnings(cfg.tls, dt.datetime.now(UTC))
        assert len(warnings) == 1
        assert warnings[0].startswith(f"{P}tls.certificate expires in 9 days")
        assert "BEGIN" not in warnings[0]

    def test_warning_threshold_and_pure_clock(self) -> None:
        tls = TlsConfig(not_after="2030-06-30T12:00:00Z")
        at = dt.datetime(2030, 6, 30, 12, tzinfo=UTC)
        assert certs.certificate_warnings(tls, at - dt.timedelta(days=CERT_WARN_DAYS)) == []
        assert "in 29 days" in certs.certificate_warnings(tls, at - dt.timedelta(days=CERT_WARN_DAYS - 1))[0]
        assert "within a day" in certs.certificate_warnings(tls, at - dt.timedelta(hours=2))[0]
        assert "expired on 2030-06-30T12:00:00Z" in certs.certificate_warnings(tls, at + dt.timedelta(days=1))[0]
        assert certs.certificate_warnings(TlsConfig(), at) == []


class TestStackFiles:
    def test_cli_reads_a_tls_stack_file_with_the_key_encrypted(self, tmp_path: Path, ca: TestCA, good: Issued) -> None:
        path = tmp_path / "Pulumi.tls.yaml"
        path.write_text(yaml.safe_dump({"config": {
            f"{P}host": {"address": "192.0.2.10", "hostKey": HOST_KEY},
            f"{P}tls": {"certificate": good.chain_pem, "names": [NAME], "caBundle": ca.cert_pem},
            f"{P}tlsPrivateKey": {"secure": "v1:abc"},
            f"{P}rootPassword": {"secure": "v1:def"},
        }}))
        cfg = load_stack_file(path)
        assert cfg.server_url == f"https://{NAME}" and cfg.ca_bundle == ca.cert_pem

    def test_cli_without_cryptography_skips_only_the_pem_checks(self, tmp_path: Path, good: Issued,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(certs, "crypto_available", lambda: False)
        path = tmp_path / "Pulumi.tls.yaml"
        path.write_text(yaml.safe_dump({"config": {
            f"{P}host": {"address": "192.0.2.10", "hostKey": HOST_KEY},
            f"{P}tls": {"certificate": good.chain_pem, "names": [NAME], "httpsPort": 3141},
        }}))
        with pytest.raises(ConfigError, match=rf"^{P}tls\.httpsPort: must differ from server\.port"):
            load_stack_file(path)
        path.write_text(path.read_text().replace("httpsPort: 3141", "httpsPort: 8443"))
        cfg = load_stack_file(path)
        assert cfg.server_url == f"https://{NAME}:8443" and cfg.tls is not None and cfg.tls.not_after is None

    def test_prod_example_block_loads_once_uncommented(self, ca: TestCA) -> None:
        """Pulumi.prod.yaml carries the TLS and replica blocks commented (they need the certificate and
        its key): uncommented, with a real certificate and key, they load as documented."""
        text = (ROOT / "Pulumi.prod.yaml").read_text()
        assert "pulumi config set --secret tlsPrivateKey < key.pem" in text
        assert "pulumi config set --path tls.certificate < chain.pem" in text
        lines, inside = [], False
        for line in text.splitlines():
            if re.match(r"  #devpi-registry:", line):
                inside = True
            elif not line.startswith("  #  "):
                inside = False
            lines.append("  " + line[3:] if inside else line)
        doc = yaml.safe_load("\n".join(lines))
        raw = {k.split(":", 1)[1]: v for k, v in doc["config"].items()}
        assert raw["tls"]["names"] == [NAME] and len(raw["replicas"]) == 1
        issued = ca.issue([NAME, raw["replicas"][0]["host"]["address"]], label="prod")
        raw["tls"] |= {"certificate": issued.chain_pem, "caBundle": ca.cert_pem}
        users = [u["name"] for u in raw["users"]]
        raw |= {"rootPassword": "x", "sshPrivateKey": "k", "userPasswords": {u: "p" for u in users},
                "tlsPrivateKey": issued.key_pem}
        cfg = load_stack_config(raw)
        assert cfg.proxied and cfg.server_url == f"https://{NAME}"
        (replica,) = cfg.replicas
        assert replica.url == "https://devpi-replica1.example.internal"
        assert replica.primary_url == cfg.server_url and not replica.own_ssh_key
