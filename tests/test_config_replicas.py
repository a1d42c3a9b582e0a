"""The `replicas` stack key (and `server.secretDir`): each replica is a host like the primary's, with
a pinned host key, its own address/port and URL, and optionally its own SSH key — refused at load
time (= `pulumi preview`) naming `devpi-registry:replicas[i].<key>`, SSH keys never shown."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config.defaults import (
    DEFAULT_DATA_DIR,
    DEFAULT_REPLICA_CONTAINER_NAME,
    DEFAULT_REPLICA_MAX_LAG,
    DEFAULT_SECRET_DIR,
)
from components.config.errors import ConfigError
from components.config.sources import load_stack_file
from components.config.stack import load_stack_config
from tests.fixtures.tls import Issued, TestCA, make_ca

P = "devpi-registry:"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeButWellFormedKeyForTests0123456789"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"


def replica(name: str = "r1", address: str = "192.0.2.21", **more: Any) -> dict[str, Any]:
    return {"name": name, "host": {"address": address, "hostKey": HOST_KEY}, **more}


def stack(*replicas: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "host": {"address": "192.0.2.10", "hostKey": HOST_KEY},
        "rootPassword": "secret-root",
        "sshPrivateKey": SSH_KEY,
        "replicas": list(replicas) or [replica()],
        **more,
    }


def changed(cfg: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """``cfg`` with ``a.b.c`` (list items as numbers) set; ``...`` deletes it."""
    cfg = copy.deepcopy(cfg)
    node: Any = cfg
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return cfg


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return make_ca(tmp_path_factory.mktemp("replica-ca"))


@pytest.fixture(scope="module")
def cert(ca: TestCA) -> Issued:
    return ca.issue(["devpi.example.internal", "replica1.example.internal", "192.0.2.22"], label="replicas")


def with_tls(cert: Issued, *replicas: dict[str, Any], **tls: Any) -> dict[str, Any]:
    return stack(*replicas, tls={"certificate": cert.chain_pem, "names": ["devpi.example.internal"], **tls},
                 tlsPrivateKey=cert.key_pem)


class TestReplicasLoad:
    def test_defaults(self) -> None:
        cfg = load_stack_config(stack())
        (r,) = cfg.replicas
        assert (r.name, r.host.address, r.port, r.url) == ("r1", "192.0.2.21", 3141, "http://192.0.2.21:3141")
        assert r.primary_url == cfg.server_url == "http://192.0.2.10:3141"
        assert (r.data_dir, r.secret_dir, r.container_name, r.max_lag, r.firewall_when_inactive) == (
            DEFAULT_DATA_DIR, DEFAULT_SECRET_DIR, DEFAULT_REPLICA_CONTAINER_NAME, DEFAULT_REPLICA_MAX_LAG, "fail")
        assert r.own_ssh_key is False and r.host.host_key == HOST_KEY

    def test_every_key(self) -> None:
        cfg = load_stack_config(stack(replica(
            port=4000, dataDir="/srv/devpi/data", containerName="replica-a", secretDir="/srv/devpi/secret",
            url="http://mirror.example.internal:4000/", maxLag=0, firewallWhenInactive="skip",
            host={"address": "192.0.2.21", "port": 2222, "user": "deploy", "insecureIgnoreHostKey": True}),
            replicaSshPrivateKeys={"r1": SSH_KEY}))
        (r,) = cfg.replicas
        assert (r.port, r.data_dir, r.container_name, r.secret_dir, r.url, r.max_lag, r.firewall_when_inactive) == (
            4000, "/srv/devpi/data", "replica-a", "/srv/devpi/secret", "http://mirror.example.internal:4000", 0, "skip")
        assert r.host.insecure_ignore_host_key and r.host.sudo and r.host.port == 2222
        assert r.own_ssh_key is True

    def test_same_host_as_the_primary_with_its_own_port_container_and_folder(self) -> None:
        cfg = load_stack_config(stack(replica(address="192.0.2.10", port=3142, dataDir="/srv/replica")))
        assert cfg.replicas[0].url == "http://192.0.2.10:3142"

    def test_tls_urls_are_https_on_a_covered_name(self, cert: Issued) -> None:
        cfg = load_stack_config(with_tls(cert, replica(address="replica1.example.internal"),
                                         replica("r2", address="192.0.2.22")))
        assert [r.url for r in cfg.replicas] == ["https://replica1.example.internal", "https://192.0.2.22"]
        assert all(r.primary_url == "https://devpi.example.internal" for r in cfg.replicas)
        cfg = load_stack_config(with_tls(cert, replica(address="replica1.example.internal"), httpsPort=8443))
        assert cfg.replicas[0].url == "https://replica1.example.internal:8443"

    def test_server_secret_dir(self) -> None:
        cfg = load_stack_config(stack(server={"secretDir": "/srv/devpi-secret/"}))
        assert cfg.server.secret_dir == "/srv/devpi-secret"
        assert load_stack_config({"serverUrl": "http://h:3141", "rootPassword": "pw"}).server.secret_dir == (
            DEFAULT_SECRET_DIR)

    def test_cli_reads_sealed_replica_keys(self, tmp_path: Path) -> None:
        path = tmp_path / "Pulumi.r.yaml"
        for sealed, own in (({"r1": {"secure": "v1:abc"}}, True), ({"secure": "v1:abc"}, False)):
            path.write_text(yaml.safe_dump({"config": {
                f"{P}host": {"address": "192.0.2.10", "hostKey": HOST_KEY},
                f"{P}replicas": [replica()], f"{P}replicaSshPrivateKeys": sealed,
            }}))
            (r,) = load_stack_file(path).replicas
            assert r.own_ssh_key is own


def bad_cases(cert: Issued) -> list[tuple[str, dict[str, Any], str, str]]:
    base = stack()
    return [
        ("replicas without a managed host", {"serverUrl": "http://h:3141", "rootPassword": "pw",
                                             "replicas": [replica()]}, f"{P}replicas", "need a managed `host`"),
        ("replicas not a list", changed(base, "replicas", {"name": "r1"}), f"{P}replicas", "must be a list"),
        ("name missing", changed(base, "replicas.0.name", ...), f"{P}replicas[0].name", "is required"),
        ("name with capitals", changed(base, "replicas.0.name", "Replica_1"), f"{P}replicas[0].name", "short name"),
        ("name too long", changed(base, "replicas.0.name", "r" * 32), f"{P}replicas[0].name", "short name"),
        ("name twice", stack(replica(), replica(address="192.0.2.22")), f"{P}replicas[1].name",
         "declared twice (also replicas[0])"),
        ("host missing", changed(base, "replicas.0.host", ...), f"{P}replicas[0].host", "is required"),
        ("host key not pinned", changed(base, "replicas.0.host.hostKey", ...), f"{P}replicas[0].host.hostKey",
         "pin the host's SSH key"),
        ("host key malformed", changed(base, "replicas.0.host.hostKey", "rsa-sha2-512 AAAA"),
         f"{P}replicas[0].host.hostKey", "signature algorithm"),
        ("host address bad", changed(base, "replicas.0.host.address", "a b"), f"{P}replicas[0].host.address",
         "host name or IP"),
        ("unknown host key", changed(base, "replicas.0.host.hostname", "x"), f"{P}replicas[0].host.hostname",
         "not a known key"),
        ("unknown replica key", changed(base, "replicas.0.hostname", "x"), f"{P}replicas[0].hostname",
         "not a known key"),
        ("port out of range", changed(base, "replicas.0.port", 70000), f"{P}replicas[0].port", "between 1 and 65535"),
        ("the primary's address and port", stack(replica(address="192.0.2.10", dataDir="/srv/replica")),
         f"{P}replicas[0].port", "taken on 192.0.2.10 by the primary"),
        ("another replica's address and port", stack(replica(), replica("r2")), f"{P}replicas[1].port",
         "taken on 192.0.2.21 by replicas[0]"),
        ("the primary's container on its host", stack(replica(address="192.0.2.10", port=3142, dataDir="/srv/r",
                                                              containerName="devpi-server")),
         f"{P}replicas[0].containerName", "taken on 192.0.2.10 by the primary"),
        ("the primary's data folder on its host", stack(replica(address="192.0.2.10", port=3142)),
         f"{P}replicas[0].dataDir", "overlaps the data folder of the primary"),
        ("url is the serverUrl", changed(base, "replicas.0.url", "http://192.0.2.10:3141/"), f"{P}replicas[0].url",
         "primary's serverUrl"),
        ("url of another replica", stack(replica(url="http://r.example:3141"),
                                         replica("r2", address="192.0.2.22", url="http://r.example:3141")),
         f"{P}replicas[1].url", "that of replicas[0]"),
        ("url not a server root", changed(base, "replicas.0.url", "http://r:3141/build_bot/dev"),
         f"{P}replicas[0].url", "devpi index"),
        ("maxLag negative", changed(base, "replicas.0.maxLag", -1), f"{P}replicas[0].maxLag", "between 0 and 100000"),
        ("maxLag too large", changed(base, "replicas.0.maxLag", 100001), f"{P}replicas[0].maxLag", "between 0 and"),
        ("data dir a system folder", changed(base, "replicas.0.dataDir", "/var"), f"{P}replicas[0].dataDir",
         "system folder"),
        ("secret dir is the data dir", changed(base, "replicas.0.secretDir", DEFAULT_DATA_DIR),
         f"{P}replicas[0].secretDir", "apart from dataDir"),
        ("firewall choice", changed(base, "replicas.0.firewallWhenInactive", "ignore"),
         f"{P}replicas[0].firewallWhenInactive", "one of fail, skip"),
        ("container name bad", changed(base, "replicas.0.containerName", "-x"), f"{P}replicas[0].containerName",
         "Docker container name"),
        ("http url with tls", with_tls(cert, replica(address="replica1.example.internal",
                                                     url="http://replica1.example.internal:3141")),
         f"{P}replicas[0].url", "https"),
        ("address not covered by the certificate", with_tls(cert, replica(address="192.0.2.21")),
         f"{P}replicas[0].host.address", "not covered by tls.certificate"),
        ("url not covered by the certificate", with_tls(cert, replica(address="replica1.example.internal",
                                                                      url="https://other.example.internal")),
         f"{P}replicas[0].url", "not covered by tls.certificate"),
        ("replica port is a TLS port", with_tls(cert, replica(address="replica1.example.internal", port=443)),
         f"{P}replicas[0].port", "TLS ports"),
        ("with tls on the primary's host", with_tls(cert, replica(address="192.0.2.10", port=3142, dataDir="/srv/r",
                                                                  url="https://replica1.example.internal")),
         f"{P}replicas[0].host", "primary's host"),
        ("server secretDir is the dataDir", stack(server={"secretDir": DEFAULT_DATA_DIR}), f"{P}server.secretDir",
         "apart from dataDir"),
        ("server secretDir inside the dataDir", stack(server={"secretDir": f"{DEFAULT_DATA_DIR}/secret"}),
         f"{P}server.secretDir", "apart from dataDir"),
        ("server secretDir relative", stack(server={"secretDir": "secret"}), f"{P}server.secretDir", "absolute"),
    ]


SECRET_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("key for no replica", stack(replicaSshPrivateKeys={"r1": SSH_KEY, "ghost": SSH_KEY}),
     f"{P}replicaSshPrivateKeys.ghost", "names no replica (declared: r1)"),
    ("keys for replicas that are absent", {**stack(), "replicas": [], "replicaSshPrivateKeys": {"r1": SSH_KEY}},
     f"{P}replicaSshPrivateKeys.r1", "names no replica"),
    ("keys not an object", stack(replicaSshPrivateKeys=SSH_KEY), f"{P}replicaSshPrivateKeys",
     "structured YAML"),
    ("keys a list", stack(replicaSshPrivateKeys=[SSH_KEY]), f"{P}replicaSshPrivateKeys", "replica name -> private key"),
    ("empty key", stack(replicaSshPrivateKeys={"r1": " "}), f"{P}replicaSshPrivateKeys.r1", "SSH private key"),
    ("unknown top-level key holding a key", stack(replicaSshKey={"r1": SSH_KEY}), f"{P}replicaSshKey",
     "not a known key"),
    ("replica key pasted under the host", changed(stack(), "replicas.0.host.privKey", SSH_KEY),
     f"{P}replicas[0].host.privKey", "not a known key"),
]


@pytest.fixture(scope="module")
def cases(cert: Issued) -> dict[str, tuple[dict[str, Any], str, str]]:
    return {cid: (cfg, path, words) for cid, cfg, path, words in bad_cases(cert)}


CASE_IDS = [
    "replicas without a managed host", "replicas not a list", "name missing", "name with capitals", "name too long",
    "name twice", "host missing", "host key not pinned", "host key malformed", "host address bad",
    "unknown host key", "unknown replica key", "port out of range", "the primary's address and port",
    "another replica's address and port", "the primary's container on its host",
    "the primary's data folder on its host", "url is the serverUrl", "url of another replica",
    "url not a server root", "maxLag negative", "maxLag too large", "data dir a system folder",
    "secret dir is the data dir", "firewall choice", "container name bad", "http url with tls",
    "address not covered by the certificate", "url not covered by the certificate", "replica port is a TLS port",
    "with tls on the primary's host", "server secretDir is the dataDir", "server secretDir inside the dataDir",
    "server secretDir relative",
]


class TestBadReplicasFailAtPreview:
    def test_every_case_is_listed(self, cases: dict[str, Any]) -> None:
        assert sorted(cases) == sorted(CASE_IDS)

    @pytest.mark.parametrize("case_id", CASE_IDS)
    def test_refused_naming_the_key(self, case_id: str, cases: dict[str, tuple[dict[str, Any], str, str]]) -> None:
        cfg, path, words = cases[case_id]
        with pytest.raises(ConfigError) as caught:
            load_stack_config(cfg)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and words in message, message
        assert "PRIVATE KEY" not in message and "b3BlbnNzaC1rZXkt" not in message, message

    @pytest.mark.parametrize(("cfg", "path", "words"), [c[1:] for c in SECRET_CASES],
                             ids=[c[0] for c in SECRET_CASES])
    def test_ssh_key_errors_are_masked(self, cfg: dict[str, Any], path: str, words: str) -> None:
        with pytest.raises(ConfigError) as caught:
            load_stack_config(cfg)
        message = str(caught.value)
        assert message.startswith(f"{path}: ") and words in message, message
        assert message.endswith("(got [secret])"), message
        assert "PRIVATE KEY" not in message and "b3BlbnNzaC1rZXkt" not in message, message

    def test_replica_keys_in_clear_are_refused(self) -> None:
        with pytest.raises(ConfigError, match=rf"^{P}replicaSshPrivateKeys: must be set as a secret") as caught:
            load_stack_config(stack(replicaSshPrivateKeys={"r1": SSH_KEY}),
                              secret_keys={"rootPassword", "sshPrivateKey"})
        assert "b3BlbnNzaC1rZXkt" not in str(caught.value)
