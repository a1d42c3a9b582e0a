"""The whole stack with ``tls`` and ``replicas`` under Pulumi mocks (issues 11 and 12).

HTTPS: one network shared by devpi and the nginx proxy, devpi published on 127.0.0.1 only, the proxy
on 443/80, the firewall opening the proxy's ports instead of devpi's, the TLS key only on a secret
stdin (never in a container's envs, command or labels), root's gate after the proxy, https outputs.
Replicas: per replica one host, one container in replica mode, one readiness gate, all after the
primary's gate; one shared secret, delivered to every host as a secret; config errors at preview.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from components.config.errors import ConfigError
from components.program import define_registry
from tests.fixtures.tls import Issued, TestCA
from tests.mocks import MockRecorder, Recorded, is_secret, resolve, settle, unwrap_secret, use_mocks
from tests.tokens import (
    COMMAND,
    CONTAINER,
    NETWORK,
    PROXY,
    REPLICA,
    REPLICA_READY,
    ROOT_ACCOUNT,
    SHARED_SECRET,
)

ROOT_PW = "root-secret-value"
SSH_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nssh-key-material\n-----END OPENSSH PRIVATE KEY-----\n"
REPLICA_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nreplica-key-material\n-----END OPENSSH PRIVATE KEY-----\n"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithTheOutputOfSshKeyscanOnYourHost"
P = "devpi-registry:"


@pytest.fixture(scope="module")
def issued(tmp_path_factory: pytest.TempPathFactory) -> tuple[TestCA, Issued]:
    from tests.fixtures.tls import make_ca

    ca = make_ca(tmp_path_factory.mktemp("ca"))
    return ca, ca.issue(["devpi.example.internal", "r1.example.internal", "r2.example.internal"])


def config(issued: tuple[TestCA, Issued], *, tls: bool = True, replicas: list[dict[str, Any]] | None = None,
           **extra: Any) -> dict[str, str]:
    ca, leaf = issued
    raw: dict[str, Any] = {
        "host": {"address": "devpi.example.internal", "user": "deploy", "hostKey": HOST_KEY},
        "server": {"port": 3141},
        "users": [{"name": "build_bot"}],
        "indexes": [{"name": "build_bot/stable", "volatile": False}],
        "rootPassword": ROOT_PW, "sshPrivateKey": SSH_KEY, "userPasswords": {"build_bot": "pw-of-build_bot"},
    }
    if tls:
        raw["tls"] = {"certificate": leaf.chain_pem, "names": ["devpi.example.internal"], "caBundle": ca.cert_pem}
        raw["tlsPrivateKey"] = leaf.key_pem
    if replicas is not None:
        raw["replicas"] = replicas
    raw.update(extra)
    return {f"{P}{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


REPLICAS = [
    {"name": "r1", "host": {"address": "r1.example.internal", "hostKey": HOST_KEY}},
    {"name": "r2", "host": {"address": "r2.example.internal", "hostKey": HOST_KEY}, "port": 3142},
]


def build(cfg: dict[str, str]) -> tuple[MockRecorder, dict[str, Any], Any]:
    recorder = MockRecorder()
    with use_mocks(recorder, config=cfg):
        registry = define_registry()
        settle()
        outputs = {**registry.outputs.exported(), "serverUrl": resolve(registry.server_url)}
    return recorder, outputs, registry


def plain(r: Recorded) -> dict[str, Any]:
    return {k: unwrap_secret(v)[0] for k, v in r.inputs.items()}


def containers(rec: MockRecorder) -> dict[str, Recorded]:
    return {plain(c)["name"]: c for c in rec.of_type(CONTAINER)}


def ancestors_and_deps(rec: MockRecorder, r: Recorded) -> set[str]:
    """Names ``r`` depends on, directly or through its parents' dependencies."""
    names = set(rec.depends_on(r))
    parent = r.parent_urn
    while parent:
        p = next((x for x in rec.resources if x.urn == parent), None)
        if p is None:
            break
        names |= rec.depends_on(p)
        parent = p.parent_urn
    return names


def assert_no_clear_secret(rec: MockRecorder, *secrets: str) -> None:
    for r in rec.resources:
        for key, value in r.inputs.items():
            text, secret = unwrap_secret(value)
            dumped = json.dumps(text, default=str)
            for s in secrets:
                if s.strip().splitlines()[1] in dumped:
                    assert secret, f"{r.typ} {r.name}.{key} carries a secret in clear"


class TestHttps:
    def test_devpi_and_proxy_share_a_network_and_devpi_is_on_loopback_only(self, issued: Any) -> None:
        rec, _, _ = build(config(issued))
        net = rec.one(NETWORK)
        assert plain(net)["name"] == "devpi-registry"
        by_name = containers(rec)
        devpi, proxy = by_name["devpi-server"], by_name["devpi-proxy"]
        assert [(p["ip"], p["external"], p["internal"]) for p in plain(devpi)["ports"]] == [("127.0.0.1", 3141, 3141)]
        assert [n["aliases"] for n in plain(devpi)["networksAdvanced"]] == [["devpi"]]
        assert sorted(p["external"] for p in plain(proxy)["ports"]) == [80, 443]
        assert all(p.get("ip") in (None, "") for p in plain(proxy)["ports"])
        # the proxy mounts its folders read-only with a private SELinux label
        assert all(v["readOnly"] and v["selinuxRelabel"] == "Z" for v in plain(proxy)["volumes"])
        assert rec.one(PROXY)

    def test_the_key_travels_only_as_a_secret_stdin(self, issued: Any) -> None:
        _, leaf = issued
        rec, _, _ = build(config(issued))
        for c in rec.of_type(CONTAINER):
            ins = json.dumps(plain(c), default=str)
            assert "PRIVATE KEY" not in ins
        steps = {c.name: c for c in rec.of_type(COMMAND)}
        files = steps["devpi-host-proxy-files"]
        stdin, secret = unwrap_secret(files.inputs["stdin"])
        assert secret and stdin
        for field in ("create", "update", "delete"):
            assert "PRIVATE KEY" not in json.dumps(plain(files).get(field, ""))
        assert_no_clear_secret(rec, leaf.key_pem, SSH_KEY)

    def test_firewall_opens_the_proxy_ports_not_devpi(self, issued: Any) -> None:
        rec, _, _ = build(config(issued))
        fw = plain(next(c for c in rec.of_type(COMMAND) if c.name == "devpi-host-firewall"))["create"]
        assert "443" in fw and "80" in fw and "3141" not in fw
        rec_plain, _, _ = build(config(issued, tls=False))
        fw_plain = plain(next(c for c in rec_plain.of_type(COMMAND) if c.name == "devpi-host-firewall"))["create"]
        assert "3141" in fw_plain and "443" not in fw_plain

    def test_root_gate_waits_for_the_proxy_and_outputs_are_https(self, issued: Any) -> None:
        ca, _ = issued
        rec, outputs, _ = build(config(issued))
        root = rec.one(ROOT_ACCOUNT)
        assert "devpi-proxy-container" in ancestors_and_deps(rec, root)
        assert plain(root)["url"] == "https://devpi.example.internal"
        assert outputs["serverUrl"] == "https://devpi.example.internal"
        ca_path = "/etc/pki/ca-trust/source/anchors/devpi-registry-ca.pem"
        assert "trusted-host" not in outputs["pipConf"] and f"cert = {ca_path}" in outputs["pipConf"]
        assert f"ca_cert = {ca_path}" in outputs["pypirc"]
        assert outputs["caBundle"] == ca.cert_pem
        ix = outputs["indexes"]["build_bot/stable"]
        assert ix["simpleUrl"] == "https://devpi.example.internal/build_bot/stable/+simple/"
        assert f"REQUESTS_CA_BUNDLE={ca_path}" in ix["devpiUse"]

    def test_without_tls_nothing_of_the_proxy_exists(self, issued: Any) -> None:
        rec, outputs, _ = build(config(issued, tls=False))
        assert not rec.of_type(NETWORK) and not rec.of_type(PROXY)
        assert list(containers(rec)) == ["devpi-server"]
        assert outputs["serverUrl"] == "http://devpi.example.internal:3141"
        assert "caBundle" not in outputs


class TestReplicas:
    def test_one_host_container_and_gate_per_replica_after_the_primary(self, issued: Any) -> None:
        rec, outputs, _ = build(config(issued, tls=False, replicas=REPLICAS))
        assert sorted(r.name for r in rec.of_type(REPLICA)) == ["devpi-replica-r1", "devpi-replica-r2"]
        by_name = containers(rec)
        assert len(rec.of_type(CONTAINER)) == 3 and sorted(by_name) == ["devpi-replica", "devpi-server"]
        replicas = [c for c in rec.of_type(CONTAINER) if c.name.startswith("devpi-replica-")]
        assert len(replicas) == 2
        root = rec.one(ROOT_ACCOUNT)
        for c in replicas:
            ins = plain(c)
            # replica mode: the image's entrypoint (devpi-init as a primary) is never run
            assert ins["entrypoints"][:2] == ["/bin/sh", "-c"]
            assert ins["command"][0] == "http://devpi.example.internal:3141"
            assert not any(e.startswith("DEVPI_PASSWORD=") for e in ins.get("envs") or [])
            assert root.name in ancestors_and_deps(rec, c)
            host_steps = {s.name for s in rec.of_type(COMMAND) if s.name.startswith(c.name.rsplit("-server", 1)[0])}
            assert host_steps and host_steps <= ancestors_and_deps(rec, c)
        for gate in rec.of_type(REPLICA_READY):
            ins = plain(gate)
            assert ins["primary_url"] == "http://devpi.example.internal:3141"
            server = gate.name.replace("-ready", "-server-container")
            assert server in ancestors_and_deps(rec, gate)
        primary = by_name["devpi-server"]
        assert plain(primary)["command"][:2] == ["--role", "primary"]
        assert outputs["primaryUrl"] == "http://devpi.example.internal:3141"
        assert outputs["replicas"]["r2"]["url"] == "http://r2.example.internal:3142"
        assert "index-url = http://r2.example.internal:3142/build_bot/stable/+simple/" in \
            outputs["replicas"]["r2"]["pipConf"]

    def test_one_shared_secret_reaches_every_host_as_a_secret(self, issued: Any) -> None:
        rec, _, _ = build(config(issued, tls=False, replicas=REPLICAS))
        assert len(rec.of_type(SHARED_SECRET)) == 1
        secret_steps = [c for c in rec.of_type(COMMAND) if c.name.endswith("-secret")]
        assert sorted(s.name for s in secret_steps) == [
            "devpi-host-secret", "devpi-replica-r1-host-secret", "devpi-replica-r2-host-secret"]
        for step in secret_steps:
            _, secret = unwrap_secret(step.inputs["stdin"])
            assert secret
        assert "value" in rec.one(SHARED_SECRET).additional_secret_outputs

    def test_own_ssh_key_of_a_replica_is_used_and_kept_secret(self, issued: Any) -> None:
        cfg = config(issued, tls=False, replicas=REPLICAS, replicaSshPrivateKeys={"r2": REPLICA_KEY})
        recorder = MockRecorder()
        with use_mocks(recorder, config=cfg):
            registry = define_registry()
            settle()
            conn_r1 = registry.replicas["r1"].host.connection
            conn_r2 = registry.replicas["r2"].host.connection
            assert is_secret(conn_r2.private_key)
            assert resolve(conn_r2.private_key) == REPLICA_KEY
            assert resolve(conn_r1.private_key) == SSH_KEY
        assert_no_clear_secret(recorder, REPLICA_KEY, SSH_KEY)

    def test_replicas_behind_tls_get_their_own_proxy_and_trust_the_ca(self, issued: Any) -> None:
        rec, outputs, _ = build(config(issued, replicas=REPLICAS[:1]))
        assert len(rec.of_type(PROXY)) == 2
        replica = next(c for c in rec.of_type(CONTAINER) if c.name.startswith("devpi-replica-r1"))
        ins = plain(replica)
        assert "REQUESTS_CA_BUNDLE=/devpi/secret/ca.pem" in ins["envs"]
        assert ins["command"][0] == "https://devpi.example.internal"
        assert outputs["replicas"]["r1"]["url"] == "https://r1.example.internal"
        gate = plain(rec.one(REPLICA_READY))
        assert gate["replica_url"] == "https://r1.example.internal"
        assert gate["ca_bundle"] == issued[0].cert_pem

    @pytest.mark.parametrize(("replicas", "path", "words"), [
        ([REPLICAS[0], {**REPLICAS[1], "name": "r1"}], "replicas[1].name", "r1"),
        ([{"name": "r1", "host": {"address": "devpi.example.internal", "hostKey": HOST_KEY}}],
         "replicas[0]", "primary"),
        ([{"name": "r1", "host": {"address": "r1.example.internal"}}], "replicas[0].host.hostKey", "pin"),
    ])
    def test_bad_replica_entries_fail_at_preview_naming_the_key(
            self, issued: Any, replicas: list[dict[str, Any]], path: str, words: str) -> None:
        with pytest.raises(ConfigError) as err:
            build(config(issued, tls=False, replicas=replicas))
        assert f"{P}{path}" in str(err.value) and words in str(err.value)
        assert "key-material" not in str(err.value)


def test_committed_prod_stack_uses_tls() -> None:
    text = (Path(__file__).resolve().parent.parent / "Pulumi.prod.yaml").read_text()
    assert "\n  devpi-registry:tls:" in text
