"""One stack-config reader, two sources (the engine, a ``Pulumi.<stack>.yaml`` file), one model: the
program, the providers' connection and the CLI see the same values, and the same default server URL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import model
from components.config.connection import provider_settings
from components.config.errors import ConfigError
from components.config.sources import SECRET_PLACEHOLDER, engine_config, file_config, load_stack_file
from components.config.stack import load_stack_config
from tests.mocks import MockRecorder, use_mocks

ROOT = Path(__file__).resolve().parent.parent
P = "devpi-registry:"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeButWellFormedKeyForTests0123456789"


def write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "Pulumi.test.yaml"
    path.write_text(yaml.safe_dump({"config": config}))
    return path


class TestFileSource:
    def test_encrypted_values_are_placeholders_and_reported_secret(self, tmp_path: Path) -> None:
        raw = file_config(write(tmp_path, {
            f"{P}rootPassword": {"secure": "v1:AAAA"},
            f"{P}userPasswords": {"build_bot": {"secure": "v1:BBBB"}},
            f"{P}serverUrl": "http://h:3141",
            "aws:region": "elsewhere",
        }))
        assert raw.values == {"rootPassword": SECRET_PLACEHOLDER, "userPasswords": {"build_bot": SECRET_PLACEHOLDER},
                              "serverUrl": "http://h:3141"}
        assert raw.secret_keys == {"rootPassword", "userPasswords"}

    def test_committed_stack_file_gives_the_programs_model(self) -> None:
        path = ROOT / "Pulumi.dev.yaml"
        from_file = load_stack_file(path)
        doc = yaml.safe_load(path.read_text())
        raw = {k.removeprefix(P): v for k, v in doc["config"].items()}
        raw |= {"rootPassword": "x", "sshPrivateKey": "k", "userPasswords": {"build_bot": "p"}}
        from_engine = load_stack_config(raw)
        assert from_file == from_engine
        assert isinstance(from_file, model.StackConfig)

    def test_cli_view_implies_owners_and_allows_a_missing_url(self, tmp_path: Path) -> None:
        cfg = load_stack_file(write(tmp_path, {f"{P}indexes": [{"name": "alice/dev", "volatile": False}]}))
        assert cfg.server_url == "" and cfg.user_names == ("alice",)
        assert cfg.find_index("alice/dev") is not None and cfg.indexes[0].full_name == "alice/dev"
        assert cfg.indexes[0].name == "dev" and cfg.indexes[0].owner == "alice"

    def test_cli_view_applies_the_same_rules(self, tmp_path: Path) -> None:
        with pytest.raises(ConfigError, match=r"^devpi-registry:server\.image: uses the floating tag"):
            load_stack_file(write(tmp_path, {f"{P}serverUrl": "http://h:3141",
                                             f"{P}server": {"image": "jonasal/devpi-server:6.19"}}))
        with pytest.raises(ConfigError, match=r"^devpi-registry:rootPassword: must be set as a secret"):
            load_stack_file(write(tmp_path, {f"{P}serverUrl": "http://h:3141", f"{P}rootPassword": "clear"}))

    def test_lifecycle_reads_the_one_model(self, tmp_path: Path) -> None:
        from components.lifecycle import connection

        assert connection.StackConfig is model.StackConfig
        stack = connection.read_stack_config(write(tmp_path, {
            f"{P}host": {"address": "2001:db8::5", "hostKey": HOST_KEY}, f"{P}server": {"port": 3142}}))
        assert stack.server_url == "http://[2001:db8::5]:3142"
        conn = connection.resolve_connection(url=None, user=None, password_file=None, stack=stack, env={})
        assert conn.url == "http://[2001:db8::5]:3142"


class TestEngineSource:
    def test_reads_the_engine_config_and_its_secret_keys(self) -> None:
        config = {f"{P}serverUrl": "http://h:3141", f"{P}rootPassword": "pw", "other:key": "x"}
        with use_mocks(MockRecorder(), config=config, secret_keys=[f"{P}rootPassword"]):
            raw = engine_config()
        assert raw.values == {"serverUrl": "http://h:3141", "rootPassword": "pw"}
        assert raw.secret_keys == {"rootPassword"}


class TestDefaultServerUrlIsDerivedOnce:
    """``http://<host.address>:<server.port>`` comes from one function for the program, the providers
    and the CLI."""

    @pytest.mark.parametrize(("address", "port", "url"), [
        ("192.0.2.10", 3141, "http://192.0.2.10:3141"), ("devpi.example", 4000, "http://devpi.example:4000"),
        ("2001:db8::5", 3141, "http://[2001:db8::5]:3141"),
    ])
    def test_program_providers_and_cli_agree(self, tmp_path: Path, address: str, port: int, url: str) -> None:
        host = {"address": address, "hostKey": HOST_KEY}
        raw = {"host": host, "server": {"port": port}, "rootPassword": "pw", "sshPrivateKey": "k"}
        assert load_stack_config(raw).server_url == url
        engine = {f"{P}host": json.dumps(host), f"{P}server": json.dumps({"port": port}),
                  f"{P}rootPassword": "pw", f"{P}sshPrivateKey": "k"}
        assert provider_settings(engine.get).url == url
        assert load_stack_file(write(tmp_path, {f"{P}host": host, f"{P}server": {"port": port}})).server_url == url


class TestProviderConnection:
    def test_url_and_password(self) -> None:
        settings = provider_settings({f"{P}serverUrl": "http://h:3141/", f"{P}rootPassword": "pw"}.get)
        assert (settings.url, settings.user, settings.password) == ("http://h:3141", "root", "pw")
        assert "pw" not in repr(settings)

    @pytest.mark.parametrize(("config", "message"), [
        ({f"{P}serverUrl": "http://h:3141"}, r"^devpi-registry:rootPassword: is required"),
        ({f"{P}rootPassword": "pw"}, r"^devpi-registry:serverUrl: is required"),
        ({f"{P}rootPassword": "pw", f"{P}serverUrl": "http://h:3141/build_bot/dev"},
         r"^devpi-registry:serverUrl: has a path that looks like the URL of a devpi index"),
        ({f"{P}rootPassword": "pw", f"{P}host": json.dumps({"address": "h", "hostKey": "rsa-sha2-512 AAAA"})},
         r"^devpi-registry:host\.hostKey: starts with 'rsa-sha2-512'"),
    ])
    def test_same_rules_and_key_paths_as_the_program(self, config: dict[str, str], message: str) -> None:
        with pytest.raises(ConfigError, match=message):
            provider_settings(config.get)
