"""Bad stack config fails at preview time with a message naming the key path and the value."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config.errors import ConfigError
from components.config.stack import DEFAULT_IMAGE, load_stack_config
from tests.fixtures.tls import with_stack_certificate

ROOT = Path(__file__).resolve().parent.parent
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeButWellFormedKeyForTests0123456789"


def valid() -> dict[str, Any]:
    return {
        "host": {"address": "192.0.2.10", "hostKey": HOST_KEY},
        "rootPassword": "secret-root",
        "sshPrivateKey": "-----BEGIN OPENSSH PRIVATE KEY-----",
        "userPasswords": {"build_bot": "secret-bot"},
        "server": {"pypiMirror": True},
        "users": [{"name": "build_bot"}],
        "indexes": [
            {"name": "build_bot/nightly", "volatile": True},
            {"name": "build_bot/stable", "volatile": False},
            {"name": "build_bot/prod", "volatile": False, "bases": ["build_bot/stable"]},
        ],
    }


def with_change(path: str, value: Any) -> dict[str, Any]:
    """valid() with one value set (``a.b[0].c``); value ``...`` deletes the key."""
    cfg = copy.deepcopy(valid())
    parts = re.findall(r"[^.\[\]]+|\[\d+\]", path)
    node: Any = cfg
    for part in parts[:-1]:
        node = node[int(part[1:-1])] if part.startswith("[") else node.setdefault(part, {})
    last = parts[-1]
    if last.startswith("["):
        node[int(last[1:-1])] = value
    elif value is ...:
        del node[last]
    else:
        node[last] = value
    return cfg


P = "devpi-registry:"
BAD: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, config, expected key path in message, expected words)
    ("unknown top-level key", with_change("userz", []), f"{P}userz", "not a known key"),
    ("unknown host key", with_change("host.adress", "x"), f"{P}host.adress", "not a known key"),
    ("host without address", with_change("host.address", ...), f"{P}host.address", "is required"),
    ("host address with a slash", with_change("host.address", "a/b"), f"{P}host.address", "host name or IP"),
    ("ssh port out of range", with_change("host.port", 70000), f"{P}host.port", "between 1 and 65535"),
    ("ssh port a string", with_change("host.port", "22"), f"{P}host.port", "whole number"),
    ("bad unix user", with_change("host.user", "Root User"), f"{P}host.user", "Unix user name"),
    ("no pinned host key", with_change("host.hostKey", ...), f"{P}host.hostKey", "pin the host's SSH key"),
    ("malformed host key", with_change("host.hostKey", "abc"), f"{P}host.hostKey", "ssh-ed25519"),
    ("sudo not a bool", with_change("host.sudo", "yes"), f"{P}host.sudo", "true or false"),
    ("missing root password", with_change("rootPassword", ...), f"{P}rootPassword", "--secret rootPassword"),
    ("root password with leading dash", with_change("rootPassword", "-oops"), f"{P}rootPassword", "must not start with '-'"),
    ("missing ssh key with host", with_change("sshPrivateKey", ...), f"{P}sshPrivateKey", "--secret sshPrivateKey"),
    ("server port a string", with_change("server.port", "abc"), f"{P}server.port", "whole number"),
    ("floating image tag", with_change("server.image", "jonasal/devpi-server:latest"), f"{P}server.image",
     "floating tag 'latest'"),
    ("untagged image", with_change("server.image", "jonasal/devpi-server"), f"{P}server.image", "version tag"),
    ("relative data dir", with_change("server.dataDir", "data"), f"{P}server.dataDir", "absolute"),
    ("system data dir", with_change("server.dataDir", "/usr"), f"{P}server.dataDir", "system folder"),
    ("root as data dir", with_change("server.dataDir", "/"), f"{P}server.dataDir", "system folder"),
    ("root as data dir, doubled", with_change("server.dataDir", "//"), f"{P}server.dataDir", "system folder"),
    ("bad firewall choice", with_change("server.firewallWhenInactive", "ignore"), f"{P}server.firewallWhenInactive",
     "one of fail, skip"),
    ("unknown server key", with_change("server.pypi", True), f"{P}server.pypi", "not a known key"),
    ("users not a list", with_change("users", {"name": "x"}), f"{P}users", "must be a list"),
    ("user name with space", with_change("users[0].name", "build bot"), f"{P}users[0].name", "characters devpi refuses"),
    ("root declared as user", with_change("users", [{"name": "root"}]), f"{P}users[0].name", "managed by the stack"),
    ("duplicate user", with_change("users", [{"name": "build_bot"}, {"name": "build_bot"}]), f"{P}users[1].name",
     "declared twice"),
    ("user without password", with_change("userPasswords", {}), f"{P}userPasswords.build_bot", "is required"),
    ("password for undeclared user", with_change("userPasswords", {"build_bot": "a", "ghost": "b"}),
     f"{P}userPasswords.ghost", "no matching entry"),
    ("index not user/index", with_change("indexes[0].name", "nightly"), f"{P}indexes[0].name", "user/index"),
    ("index owner not declared", with_change("indexes[0].name", "alice/nightly"), f"{P}indexes[0].name",
     "'alice', which is not declared"),
    ("duplicate index", with_change("indexes[1].name", "build_bot/nightly"), f"{P}indexes[1].name", "declared twice"),
    ("base not declared", with_change("indexes[2].bases", ["build_bot/nope"]), f"{P}indexes[2].bases[0]",
     "neither a declared index nor root/pypi"),
    ("base malformed", with_change("indexes[2].bases", ["stable"]), f"{P}indexes[2].bases[0]", "user/index"),
    ("base cycle", with_change("indexes[1].bases", ["build_bot/prod"]), f"{P}indexes[", "cycle"),
    ("self base", with_change("indexes[0].bases", ["build_bot/nightly"]), f"{P}indexes[0].bases[0]",
     "cannot inherit itself"),
    ("private index inherits pypi", with_change("indexes[0].bases", ["root/pypi"]), f"{P}indexes[0].bases",
     "dependency confusion"),
    ("private index inherits pypi transitively",
     with_change("indexes", [{"name": "build_bot/cache", "cachePypi": True},
                             {"name": "build_bot/private", "bases": ["build_bot/cache"]}]),
     f"{P}indexes[1].bases", "via build_bot/private -> build_bot/cache -> root/pypi"),
    ("cachePypi without mirror", with_change("server.pypiMirror", False) | {"indexes": [
        {"name": "build_bot/cache", "cachePypi": True}]}, f"{P}indexes[0].cachePypi", "pypiMirror: true"),
    ("stable index volatile", with_change("indexes[1].volatile", True), f"{P}indexes[1].volatile",
     "named like a stable index"),
    ("volatile not a bool", with_change("indexes[0].volatile", "maybe"), f"{P}indexes[0].volatile", "true or false"),
    ("whitelist star", with_change("indexes[0].mirrorWhitelist", ["*"]), f"{P}indexes[0].mirrorWhitelist",
     "allowMirrorWhitelistStar"),
    ("anonymous upload", with_change("indexes[0].aclUpload", [":anonymous:"]), f"{P}indexes[0].aclUpload",
     "allowAnonymousUpload"),
    ("mirror without url", with_change("indexes[0].type", "mirror"), f"{P}indexes[0].mirrorUrl",
     "crashes on its next start"),
    ("unknown index type", with_change("indexes[0].type", "proxy"), f"{P}indexes[0].type", "one of stage, mirror"),
    ("mirror key on a stage", with_change("indexes[0].mirrorCacheExpiry", 600), f"{P}indexes[0].mirrorCacheExpiry",
     "only applies to mirror indexes"),
    ("stage key on a mirror", {**with_change("indexes[0].type", "mirror"), "indexes": [
        {"name": "build_bot/up", "type": "mirror", "mirrorUrl": "https://pypi.org/simple/", "aclUpload": ["x"]}]},
     f"{P}indexes[0].aclUpload", "does not apply to a mirror"),
    ("bad whitelist inheritance", with_change("indexes[0].mirrorWhitelistInheritance", "all"),
     f"{P}indexes[0].mirrorWhitelistInheritance", "intersection, union"),
    ("unknown index key", with_change("indexes[0].volatil", True), f"{P}indexes[0].volatil", "not a known key"),
    ("retention negative", with_change("indexes[0].retention", {"keepLast": -1}),
     f"{P}indexes[0].retention.keepLast", ">= 0"),
    ("bad server url", with_change("host", ...) | {"serverUrl": "ftp://x", "sshPrivateKey": "k"}, f"{P}serverUrl",
     "http(s)://"),
    ("index url as server url", with_change("host", ...) | {
        "serverUrl": "http://devpi.example:3141/build_bot/nightly", "sshPrivateKey": "k"},
     f"{P}serverUrl", "looks like the URL of a devpi index (user/index)"),
    ("user url as server url", with_change("host", ...) | {
        "serverUrl": "http://devpi.example:3141/build_bot", "sshPrivateKey": "k"},
     f"{P}serverUrl", "looks like the URL of a devpi user"),
    ("pip url as server url", with_change("host", ...) | {
        "serverUrl": "http://devpi.example:3141/build_bot/nightly/+simple/", "sshPrivateKey": "k"},
     f"{P}serverUrl", "points inside devpi"),
    ("neither host nor url", {k: v for k, v in valid().items() if k not in ("host", "sshPrivateKey")},
     f"{P}serverUrl", "is required when no `host`"),
    ("backup keep zero", with_change("backup", {"keep": 0}), f"{P}backup.keep", "between 1 and 1000"),
    ("index list of strings", with_change("indexes", ["build_bot/nightly"]), f"{P}indexes[0]", "must be an object"),
]


@pytest.mark.parametrize(("config", "where", "words"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_config_names_key_and_reason(config: dict[str, Any], where: str, words: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_stack_config(config)
    message = str(exc.value)
    assert message.startswith(where), message
    assert words in message, message


class TestSecretsStaySecret:
    def test_error_messages_never_show_a_secret(self) -> None:
        cfg = with_change("userPasswords", {"build_bot": "a", "ghost": "hunter2-secret"})
        with pytest.raises(ConfigError) as exc:
            load_stack_config(cfg)
        assert "hunter2-secret" not in str(exc.value)

    def test_secrets_set_in_clear_are_refused(self) -> None:
        with pytest.raises(ConfigError, match=r"rootPassword: must be set as a secret.*\[secret\]") as exc:
            load_stack_config(valid(), secret_keys={"sshPrivateKey", "userPasswords"})
        assert "secret-root" not in str(exc.value)


class TestRootPasswordRuleAtLoad:
    """The image's rule for root's password (not empty, no leading '-') is checked where the raw secret
    is at hand, with the value masked (moved from tests/test_server_component.py, where DevpiServer
    checked it inside an Output and the error surfaced as "Future exception was never retrieved")."""

    @pytest.mark.parametrize(("password", "words"), [
        ("-starts-with-dash", "must not start with '-'"), ("", "is required"),
    ])
    def test_password_the_image_cannot_start_with_is_refused(self, password: str, words: str) -> None:
        with pytest.raises(ConfigError) as exc:
            load_stack_config(with_change("rootPassword", password))
        message = str(exc.value)
        assert message.startswith(f"{P}rootPassword: ") and words in message, message
        assert password == "" or password not in message


class TestServerUrlIsTheServerRoot:
    """serverUrl must be devpi's root: a user/index URL made every lookup a 404 read as "deleted"."""

    @staticmethod
    def load(url: str) -> str:
        cfg = {k: v for k, v in valid().items() if k not in ("host", "sshPrivateKey")} | {"serverUrl": url}
        return load_stack_config(cfg).server_url

    @pytest.mark.parametrize("url", ["http://devpi.example:3141", "http://devpi.example:3141/",
                                     "https://example.com/devpi/", "https://example.com/tools/devpi/"])
    def test_root_or_explicit_prefix_is_accepted(self, url: str) -> None:
        assert self.load(url) == url.rstrip("/")

    @pytest.mark.parametrize("url", ["http://devpi.example:3141/build_bot/nightly", "http://devpi.example:3141/build_bot",
                                     "https://example.com/devpi", "http://devpi.example:3141/a/b/c"])
    def test_a_path_without_trailing_slash_is_refused_with_the_fix(self, url: str) -> None:
        with pytest.raises(ConfigError) as exc:
            self.load(url)
        message = str(exc.value)
        assert message.startswith(f"{P}serverUrl: ") and repr(url) in message, "names key and value"
        assert "server's root URL" in message and "http://host:3141" in message, "says what to use instead"
        assert "end the URL with '/'" in message, "says how to mark a real reverse-proxy prefix"

    @pytest.mark.parametrize("url", ["http://h:3141/build_bot/nightly/+simple/", "http://h:3141/+api",
                                     "https://example.com/devpi/+f/"])
    def test_devpi_routes_are_refused_even_with_a_slash(self, url: str) -> None:
        with pytest.raises(ConfigError, match="points inside devpi"):
            self.load(url)

    def test_query_is_refused(self) -> None:
        with pytest.raises(ConfigError, match="query"):
            self.load("http://h:3141/?x=1")


class TestGoodConfig:
    def test_defaults_follow_the_corrected_procedure(self) -> None:
        cfg = load_stack_config(valid())
        assert cfg.server.image == DEFAULT_IMAGE and cfg.server.data_dir == "/opt/local/devpi/data"
        assert cfg.server_url == "http://192.0.2.10:3141"
        assert cfg.docker_host == "ssh://root@192.0.2.10:22"
        assert cfg.host is not None and cfg.host.sudo is False

    def test_non_root_user_gets_sudo(self) -> None:
        cfg = load_stack_config(with_change("host.user", "deploy"))
        assert cfg.host is not None and cfg.host.sudo is True

    def test_bases_come_before_the_indexes_inheriting_them(self) -> None:
        cfg = load_stack_config(with_change("indexes", [
            {"name": "build_bot/prod", "volatile": False, "bases": ["build_bot/stable"]},
            {"name": "build_bot/stable", "volatile": False},
        ]))
        assert [i.full_name for i in cfg.indexes_in_creation_order()] == ["build_bot/stable", "build_bot/prod"]

    def test_cache_pypi_appends_root_pypi_last(self) -> None:
        cfg = load_stack_config(with_change("indexes", [
            {"name": "build_bot/stable", "volatile": False},
            {"name": "build_bot/ci", "bases": ["build_bot/stable"], "cachePypi": True},
        ]))
        assert cfg.index("build_bot/ci").bases == ("build_bot/stable", "root/pypi")

    def test_opt_outs_are_explicit(self) -> None:
        cfg = load_stack_config(with_change("indexes", [
            {"name": "build_bot/stable", "volatile": True, "allowVolatile": True,
             "aclUpload": [":ANONYMOUS:"], "allowAnonymousUpload": True},
        ]))
        assert cfg.indexes[0].volatile is True

    @pytest.mark.parametrize("stack", ["dev", "prod"])
    def test_committed_stack_files_are_valid(self, stack: str, tmp_path: Path) -> None:
        doc = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
        raw = with_stack_certificate({k.split(":", 1)[1]: v for k, v in doc["config"].items()}, tmp_path)
        users = [u["name"] for u in raw.get("users", [])]
        raw |= {"rootPassword": "x", "sshPrivateKey": "k", "userPasswords": {u: "p" for u in users}}
        cfg = load_stack_config(raw)
        assert cfg.indexes, stack
        # production is served over https by the proxy; dev stays the manual procedure's plain http
        assert cfg.proxied == (stack == "prod")

    def test_dev_stack_reproduces_the_manual_procedure(self) -> None:
        doc = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())
        raw = {k.split(":", 1)[1]: v for k, v in doc["config"].items()}
        raw |= {"rootPassword": "x", "sshPrivateKey": "k", "userPasswords": {"build_bot": "p"}}
        cfg = load_stack_config(raw)
        assert [u.name for u in cfg.users] == ["build_bot"]
        got = {i.full_name: (i.volatile, i.bases) for i in cfg.indexes}
        assert got == {
            "build_bot/nightly": (True, ()),
            "build_bot/stable": (False, ()),
            "build_bot/prod": (False, ("build_bot/stable",)),
        }
        assert cfg.server.pypi_mirror is False
        text = (ROOT / "Pulumi.dev.yaml").read_text() + (ROOT / "Pulumi.prod.yaml").read_text()
        assert "rootPassword" not in doc["config"] and "secure:" not in text
