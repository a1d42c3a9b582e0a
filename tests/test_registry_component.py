"""The whole stack under Pulumi mocks: every declared user and index becomes a resource with the
right inputs and dependencies, the host -> container -> root -> users -> indexes order holds,
outputs render, and secrets stay secret."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.program import define_registry
from tests.fixtures.tls import with_stack_certificate
from tests.mocks import MockRecorder, Recorded, is_secret, resolve, settle, unwrap_secret, use_mocks
from tests.tokens import COMMAND, CONTAINER, INDEX, LATCH, ROOT_ACCOUNT, USER

ROOT = Path(__file__).resolve().parent.parent
ROOT_PW = "root-secret-value"
KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-key-material\n-----END OPENSSH PRIVATE KEY-----\n"


def stack_config(stack: str) -> dict[str, str]:
    """A committed stack file's config as the engine hands it to the program, plus its secrets (and,
    for a TLS stack, a certificate and key issued for its names)."""
    doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    bare = {k.split(":", 1)[1]: v for k, v in doc["config"].items()}
    bare = with_stack_certificate(bare, Path(tempfile.mkdtemp(prefix="stack-ca-")))
    cfg = {f"devpi-registry:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in bare.items()}
    users = [u["name"] for u in doc["config"].get("devpi-registry:users", [])]
    cfg["devpi-registry:rootPassword"] = ROOT_PW
    cfg["devpi-registry:sshPrivateKey"] = KEY
    cfg["devpi-registry:userPasswords"] = json.dumps({u: f"pw-of-{u}" for u in users})
    return cfg


def build(config: dict[str, str]) -> tuple[MockRecorder, dict[str, Any], Any]:
    recorder = MockRecorder()
    with use_mocks(recorder, config=config):
        registry = define_registry()
        settle()
        outputs = {**registry.outputs.exported(), "serverUrl": resolve(registry.server_url)}
        secret_root = is_secret(registry.root.password) if hasattr(registry.root, "password") else True
    return recorder, outputs, secret_root


def inputs_of(r: Recorded) -> dict[str, Any]:
    return {k: unwrap_secret(v)[0] for k, v in r.inputs.items()}


class TestRegistryOnlyStack:
    """serverUrl without host: the Automation-API shape, and how a hand-made server is adopted."""

    CONFIG = {
        "devpi-registry:serverUrl": "http://127.0.0.1:3141",
        "devpi-registry:rootPassword": ROOT_PW,
        "devpi-registry:users": json.dumps([{"name": "build_bot", "email": "b@example.com", "adopt": True}]),
        "devpi-registry:userPasswords": json.dumps({"build_bot": "pw-of-build_bot"}),
        "devpi-registry:indexes": json.dumps([
            {"name": "build_bot/stable", "volatile": False},
            {"name": "build_bot/prod", "volatile": False, "bases": ["build_bot/stable"], "adopt": True},
        ]),
    }

    def test_no_host_and_no_container(self) -> None:
        rec, _, _ = build(self.CONFIG)
        assert not rec.of_type(CONTAINER) and not rec.of_type(COMMAND)
        assert len(rec.of_type(USER)) == 1 and len(rec.of_type(INDEX)) == 2

    def test_adopt_and_inputs_pass_through(self) -> None:
        rec, _, _ = build(self.CONFIG)
        user = inputs_of(rec.one(USER))
        assert (user["name"], user["email"], user["adopt"]) == ("build_bot", "b@example.com", True)
        prod = inputs_of(rec.named("devpi-index-build_bot-prod"))
        assert (prod["owner"], prod["name"], prod["bases"], prod["volatile"], prod["adopt"]) == (
            "build_bot", "prod", ["build_bot/stable"], False, True)

    def test_root_has_no_server_to_wait_for(self) -> None:
        rec, outputs, _ = build(self.CONFIG)
        root = rec.one(ROOT_ACCOUNT)
        assert inputs_of(root).get("server_id") in (None, "")
        assert outputs["serverUrl"] == "http://127.0.0.1:3141"


@pytest.mark.parametrize("stack", ["dev", "prod"])
class TestCommittedStacks:
    def test_every_declared_user_and_index_is_a_resource(self, stack: str) -> None:
        rec, _, _ = build(stack_config(stack))
        doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        assert sorted(inputs_of(u)["name"] for u in rec.of_type(USER)) == sorted(
            u["name"] for u in doc["devpi-registry:users"])
        got = {f"{inputs_of(i)['owner']}/{inputs_of(i)['name']}" for i in rec.of_type(INDEX)}
        assert got == {i["name"] for i in doc["devpi-registry:indexes"]}

    def test_dependency_chain_host_container_root_users_indexes(self, stack: str) -> None:
        rec, _, _ = build(stack_config(stack))
        container = rec.named("devpi-server-container")
        commands = {c.name for c in rec.of_type(COMMAND)}
        host_steps = {n for n in commands if "backup" not in n}
        # the container waits for every host step (data folder, SELinux label, firewall)
        assert host_steps and host_steps <= rec.depends_on(container) | _ancestor_deps(rec, container)
        root = rec.one(ROOT_ACCOUNT)
        assert container.name in rec.depends_on(root) | _ancestor_deps(rec, root)
        for user in rec.of_type(USER):
            assert root.name in rec.depends_on(user)
        for index in rec.of_type(INDEX):
            ins = inputs_of(index)
            deps = rec.depends_on(index)
            assert root.name in deps
            assert f"devpi-user-{ins['owner']}" in deps
            for base in ins["bases"]:
                if base != "root/pypi":
                    assert f"devpi-index-{base.replace('/', '-')}" in deps, (index.name, base)

    def test_secrets_are_secret(self, stack: str) -> None:
        rec, _, _ = build(stack_config(stack))
        for user in rec.of_type(USER):
            value, secret = unwrap_secret(user.inputs["password"])
            assert secret and value == f"pw-of-{inputs_of(user)['name']}"
            assert "password" in user.additional_secret_outputs
        root = rec.one(ROOT_ACCOUNT)
        assert unwrap_secret(root.inputs["password"]) == (ROOT_PW, True)
        latch = rec.one(LATCH)
        assert unwrap_secret(latch.inputs["value"]) == (ROOT_PW, True)
        for r in rec.resources:
            for key, value in r.inputs.items():
                plain, secret = unwrap_secret(value)
                if ROOT_PW in json.dumps(plain, default=str) or "secret-key-material" in json.dumps(plain, default=str):
                    assert secret, f"{r.typ} {r.name}.{key} carries a secret in clear"

    def test_outputs_render(self, stack: str) -> None:
        _, outputs, _ = build(stack_config(stack))
        doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        address = doc["devpi-registry:host"]["address"]
        # prod serves https on 443 through the proxy; dev is the manual procedure's plain http
        base = f"https://{address}" if "devpi-registry:tls" in doc else f"http://{address}:3141"
        assert outputs["serverUrl"] == base
        for ix in doc["devpi-registry:indexes"]:
            got = outputs["indexes"][ix["name"]]
            assert got["simpleUrl"] == f"{base}/{ix['name']}/+simple/"
            assert f"index-url = {base}/{ix['name']}/+simple/" in got["pipConfStrict"]
            assert ("trusted-host" in got["pipConfStrict"]) == base.startswith("http:")
        assert "password" not in outputs["pypirc"]


def _ancestor_deps(rec: MockRecorder, r: Recorded) -> set[str]:
    """Dependencies declared on the component that parents ``r`` (they gate its children too)."""
    out: set[str] = set()
    parent = r.parent_urn
    while parent:
        try:
            p = rec.by_urn(parent)
        except StopIteration:
            break
        out |= rec.depends_on(p)
        parent = p.parent_urn
    return out
