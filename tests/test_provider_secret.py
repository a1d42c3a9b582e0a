"""GeneratedSecret: one random secret per purpose, generated once, kept forever, secret in the state,
and acceptable to devpi-server 6.20.3's own --secretfile checks (run for real)."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from components.providers.secret import (
    GeneratedSecret,
    GeneratedSecretProvider,
    new_secret,
    secret_problem,
)
from tests.mocks import MockRecorder, resolve, unwrap_secret, use_mocks
from tests.support import missing_fixture

BIN = Path(sys.executable).parent


class TestGeneratedOnceKeptForever:
    def test_create_generates_and_every_later_step_keeps_it(self) -> None:
        p = GeneratedSecretProvider()
        inputs = p.check({}, {"purpose": "devpi-secretfile"}).inputs
        created = p.create(inputs)
        outs = created.outs or {}
        value = outs["value"]
        assert isinstance(value, str) and secret_problem(value) is None
        assert outs["purpose"] == "devpi-secretfile"
        # the same purpose: no change, no replacement; an update (if the engine ever asks) keeps it
        d = p.diff(created.id, outs, p.check(inputs, {"purpose": "devpi-secretfile"}).inputs)
        assert d.changes is False and not d.replaces
        assert (p.update(created.id, outs, {"purpose": "devpi-secretfile"}).outs or {})["value"] == value
        assert (p.read(created.id, outs).outs or {})["value"] == value

    def test_a_new_purpose_replaces(self) -> None:
        p = GeneratedSecretProvider()
        outs = p.create({"purpose": "a"}).outs or {}
        d = p.diff("generated-secret", outs, {"purpose": "b"})
        assert d.changes is True and d.replaces == ["purpose"]
        assert (p.create({"purpose": "b"}).outs or {})["value"] != outs["value"]

    def test_values_differ_and_have_devpis_shape(self) -> None:
        values = {new_secret() for _ in range(50)}
        assert len(values) == 50
        assert all(len(v) == 64 and secret_problem(v) is None for v in values)

    def test_purpose_must_be_named(self) -> None:
        failures = GeneratedSecretProvider().check({}, {"purpose": ""}).failures
        assert [f.property for f in failures] == ["purpose"]

    def test_no_network(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def no_network(*_args: object) -> None:
            raise AssertionError("the secret opened a network connection")

        monkeypatch.setattr(socket.socket, "connect", no_network)
        p = GeneratedSecretProvider()  # never configured
        outs = p.create({"purpose": "x"}).outs or {}
        p.delete("generated-secret", outs)  # nothing to do, nothing raised

    @pytest.mark.parametrize(("value", "word"), [("x" * 31, "short"), ("ab" * 20, "weak")])
    def test_devpis_rules(self, value: str, word: str) -> None:
        assert word in (secret_problem(value) or "")


class TestSecretInTheState:
    def test_value_is_an_additional_secret_output_and_the_provider_carries_nothing(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            s = GeneratedSecret("devpi-secret", purpose="devpi-secretfile")
            resolve(s.urn)
        r = recorder.one("pulumi-python:dynamic/devpi:GeneratedSecret")
        assert "value" in r.additional_secret_outputs
        raw = base64.b64decode(unwrap_secret(r.inputs["__provider"])[0])
        assert b"components.providers.secret" in raw and len(raw) < 150


class TestDevpiAcceptsIt:
    def test_devpi_server_starts_with_the_generated_secret(self, tmp_path: Path) -> None:
        """devpi-server checks the file at start (length, repetition, mode 600, folder not writable
        by others): a generated secret written as the host step writes it passes."""
        if not (BIN / "devpi-server").exists():
            missing_fixture("devpi-server is not installed in this virtualenv")
        folder = tmp_path / "secret"
        folder.mkdir(mode=0o700)
        secret_file = folder / "secret"
        secret_file.touch(mode=0o600)
        secret_file.write_text(new_secret())
        serverdir = tmp_path / "server"
        subprocess.run([str(BIN / "devpi-init"), "--serverdir", str(serverdir), "--no-root-pypi",
                        "--root-passwd", "pw-init-only"], check=True, capture_output=True)
        proc = subprocess.run(
            [sys.executable, "-c", _PROBE, str(serverdir), str(secret_file)],
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == ["Using", "secret", "file", "64"]
        # the probe is devpi's real check: the same file readable by the group is refused
        secret_file.chmod(0o640)
        refused = subprocess.run([sys.executable, "-c", _PROBE, str(serverdir), str(secret_file)],
                                 capture_output=True, text=True, timeout=60, check=False)
        assert refused.returncode != 0 and "group accessible" in refused.stdout + refused.stderr


# Builds devpi-server's own Config and runs its validation of the secret file (what the server does
# at start, Config.get_validated_secret), without opening a port.
_PROBE = """
import sys
from devpi_server.config import parseoptions, get_pluginmanager
serverdir, secretfile = sys.argv[1:]
config = parseoptions(get_pluginmanager(), ["devpi-server", "--serverdir", serverdir, "--secretfile", secretfile])
secret = config.get_validated_secret()
print("Using secret file", len(secret))
"""
