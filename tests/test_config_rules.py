"""Each value rule lives once (components.config.rules): the loader, the components and the providers
all apply it, so a value passes everywhere or fails at ``pulumi preview`` with the real key path."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from components.backup.scripts import BackupPlan
from components.config import rules
from components.config.errors import ConfigError
from components.config.stack import load_stack_config
from components.host.component import HostArgs
from components.host.scripts import HostPlan
from components.server.component import ServerArgs
from components.server.spec import container_spec

P = "devpi-registry:"
ED25519 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
RSA = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQC7"
ECDSA = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEm"


def base() -> dict[str, Any]:
    return {
        "host": {"address": "192.0.2.10", "hostKey": ED25519},
        "rootPassword": "secret-root", "sshPrivateKey": "k",
        "users": [{"name": "build_bot"}], "userPasswords": {"build_bot": "p"},
        "indexes": [{"name": "build_bot/nightly"}],
    }


def config_with(section: str, **values: Any) -> dict[str, Any]:
    cfg = copy.deepcopy(base())
    if section == "index":
        cfg["indexes"][0].update(values)
    else:
        cfg.setdefault(section, {}).update(values)
    return cfg


def loader_accepts(cfg: dict[str, Any]) -> bool:
    try:
        load_stack_config(cfg)
    except ConfigError:
        return False
    return True


def accepts(build: Callable[[], object]) -> bool:
    try:
        build()
    except ConfigError:
        return False
    return True


# --------------------------------------------------------------------------------- the rules alone
class TestRules:
    @pytest.mark.parametrize(("rule", "value", "words"), [
        (rules.data_dir_problem, "data", "absolute"),
        (rules.data_dir_problem, "/var/lib", "system folder"),
        (rules.data_dir_problem, "/var/lib/", "system folder"),
        (rules.data_dir_problem, "//", "system folder"),
        (rules.data_dir_problem, "/srv/a:b", "':' or ','"),
        (rules.data_dir_problem, "/srv/a b", "blanks"),
        (rules.data_dir_problem, "/srv/x/../y", "did you mean /srv/y?"),
        (rules.backup_dir_problem, "/opt/local", "system folder"),
        (rules.backup_dir_problem, "/srv/back\nups", "control characters"),
        (rules.image_problem, "jonasal/devpi-server:6.19", "floating tag '6.19'"),
        (rules.image_problem, "jonasal/devpi-server", "no version tag"),
        (rules.image_problem, "a b:1.2.3", "without spaces"),
        (rules.host_key_problem, "rsa-sha2-512 AAAAB3NzaC1yc2E", "signature algorithm"),
        (rules.host_key_problem, "ssh-dss AAAAB3NzaC1kc3M", "key types: ssh-ed25519"),
        (rules.host_key_problem, "[h]:22 " + ED25519, "must be a public key line"),
        (rules.host_key_problem, "ssh-rsa " + ED25519.split()[1], "key data is a 'ssh-ed25519' key"),
        (rules.port_problem, 0, "between 1 and 65535"),
        (rules.port_problem, True, "whole number"),
        (rules.unix_user_problem, "Root User", "Unix user name"),
        (rules.user_problem, "root", "managed by the stack"),
        (rules.user_problem, "build bot", "characters devpi refuses"),
        (rules.index_problem, "nightly", "user/index"),
        (rules.index_declaration_problem, "root/pypi", "created by the server"),
        (rules.mirror_whitelist_problem, ["*"], "dependency confusion"),
        (rules.anonymous_upload_problem, [":anonymous:"], "anyone"),
        (rules.backup_schedule_problem, "daily; rm -rf /", "OnCalendar"),
        (rules.backup_keep_problem, 1001, "between 1 and 1000"),
        (rules.root_password_problem, "-x", "must not start with '-'"),
        (rules.server_args_problem, ["--port=1"], "must not set --port"),
        (rules.retention_count_problem, -1, ">= 0"),
    ])
    def test_a_bad_value_gets_one_sentence(self, rule: Callable[[Any], str | None], value: Any,
                                           words: str) -> None:
        problem = rule(value)
        assert problem is not None and words in problem, problem
        assert "devpi-registry:" not in problem, "rules never speak in key paths"

    @pytest.mark.parametrize(("rule", "value"), [
        (rules.data_dir_problem, "/opt/local/devpi/data"), (rules.data_dir_problem, "/var/lib/devpi"),
        (rules.backup_dir_problem, "/srv/host backups"),
        (rules.image_problem, "jonasal/devpi-server:6.20.3"), (rules.image_problem, "r/i@sha256:" + "a" * 64),
        (rules.host_key_problem, ED25519), (rules.host_key_problem, RSA), (rules.host_key_problem, ECDSA),
        (rules.host_key_problem, ED25519 + " root@host"),
        (rules.port_problem, 65535), (rules.unix_user_problem, "deploy"), (rules.user_problem, "build_bot"),
        (rules.index_problem, "root/pypi"), (rules.mirror_whitelist_problem, ["requests"]),
        (rules.backup_schedule_problem, "*-*-* 02:30:00"), (rules.root_password_problem, "pa-ss"),
    ])
    def test_a_good_value_passes(self, rule: Callable[[Any], str | None], value: Any) -> None:
        assert rule(value) is None

    def test_opt_outs_accept_the_value(self) -> None:
        assert rules.image_problem("jonasal/devpi-server:latest", allowed=True) is None
        assert rules.mirror_whitelist_problem(["*"], allowed=True) is None
        assert rules.anonymous_upload_problem([":ANONYMOUS:"], allowed=True) is None
        assert rules.volatile_problem("u/stable", volatile=True, allowed=True) is None
        assert rules.volatile_problem("u/stable", volatile=True) is not None
        assert rules.volatile_problem("u/stable", volatile=True, index_type="mirror") is None


# ------------------------------------------------------------------- the loader names the real keys
class TestLoaderNamesRealKeys:
    """The values the components' guards used to report under invented keys (``host.sshPort``,
    ``dataOwnerUid``, ``backup.backupDir``…) are refused by the loader, under the key a user sets."""

    @pytest.mark.parametrize(("cfg", "path", "words"), [
        (config_with("server", dataDir="relative/data"), "server.dataDir", "must be an absolute path"),
        (config_with("server", dataDir="/home"), "server.dataDir", "is a system folder"),
        (config_with("server", dataDir="/var/lib"), "server.dataDir", "is a system folder"),
        (config_with("server", dataDir="/opt/local/devpi/../data"), "server.dataDir", "did you mean /opt/local/data?"),
        (config_with("server", dataDir="/opt/my dir"), "server.dataDir", "must not contain blanks"),
        (config_with("server", dataDir="/srv/a:b"), "server.dataDir", "':' or ','"),
        (config_with("server", port=0), "server.port", "between 1 and 65535"),
        (config_with("server", containerName="bad name"), "server.containerName", "Docker container name"),
        (config_with("server", image="jonasal/devpi-server:6.19"), "server.image", "floating tag '6.19'"),
        (config_with("host", port=0), "host.port", "between 1 and 65535"),
        (config_with("host", user="Bad User"), "host.user", "Unix user name"),
        (config_with("host", hostKey="rsa-sha2-512 AAAAB3NzaC1yc2E"), "host.hostKey", "signature algorithm"),
        (config_with("backup", directory="relative"), "backup.directory", "must be an absolute path"),
        (config_with("backup", directory="/"), "backup.directory", "system folder"),
        (config_with("backup", schedule="daily; rm -rf /"), "backup.schedule", "OnCalendar"),
        (config_with("backup", keep=0), "backup.keep", "between 1 and 1000"),
        (config_with("index", mirrorWhitelist=["*"]), "indexes[0].mirrorWhitelist", "allowMirrorWhitelistStar"),
    ])
    def test_message_names_the_key_path(self, cfg: dict[str, Any], path: str, words: str) -> None:
        with pytest.raises(ConfigError) as err:
            load_stack_config(cfg)
        message = str(err.value)
        assert message.startswith(f"{P}{path}: ") and words in message, message

    @pytest.mark.parametrize("image", [
        "jonasal/devpi-server:latest", "jonasal/devpi-server", "jonasal/devpi-server:6",
        "jonasal/devpi-server:6.20", "jonasal/devpi-server:latest-alpine", "jonasal/devpi-server:6-alpine",
        "registry.example.com:5000/devpi-server",
    ])
    def test_floating_tag_refused_with_key_value_and_opt_out(self, image: str) -> None:
        # (moved from tests/test_server_component.py: the loader is the one that names keys)
        with pytest.raises(ConfigError) as err:
            load_stack_config(config_with("server", image=image))
        message = str(err.value)
        assert f"{P}server.image" in message and repr(image) in message, message
        assert "allowFloatingTag" in message and "6.20.3" in message, message
        assert load_stack_config(config_with("server", image=image, allowFloatingTag=True)).server.image == image

    def test_every_component_message_names_a_real_key_or_its_own_argument(self) -> None:
        # The seven invented keys are gone: the guards name ClassName.argument, the loader the key.
        invented = ("host.sshPort", "sudoCommand", "dataOwnerUid", "dataOwnerGid", "server.extraServerArgs",
                    "backup.backupDir", "backup.containerName", "backup.unitName", "backup.dataDir")
        messages = []
        for build in (lambda: HostArgs(address="h", private_key="k", host_key=ED25519, ssh_port=0),
                      lambda: HostPlan(user="deploy", sudo_command=" "),
                      lambda: HostPlan(data_owner_uid=-1),
                      lambda: container_spec(ServerArgs(docker_host="ssh://h", initial_root_password="p",
                                                        extra_server_args=["--port=1"])),
                      lambda: BackupPlan(backup_dir="x"), lambda: BackupPlan(unit_name="../x"),
                      lambda: BackupPlan(container_name="a b"), lambda: BackupPlan(data_dir="x")):
            with pytest.raises(ConfigError) as err:
                build()
            messages.append(str(err.value))
        for message in messages:
            assert not any(k in message for k in invented), message
            assert message.split(":")[0] in {"HostArgs.ssh_port", "HostPlan.sudo_command", "HostPlan.data_owner_uid",
                                             "ServerArgs.extra_server_args", "BackupPlan.backup_dir",
                                             "BackupPlan.unit_name", "BackupPlan.container_name",
                                             "BackupPlan.data_dir"}, message


# --------------------------------------------------------------------- config and components agree
DATA_DIRS = ["/var/lib", "/var/lib/docker", "/opt/local", "/usr/local", "/srv", "/mnt", "/media", "/tmp",
             "/srv/devpi", "/var/lib/devpi", "/opt/local/devpi/data", "/srv/a:b", "/srv/a,b", "/opt/my dir",
             "relative", "/srv/x/../y", *sorted(rules.SYSTEM_FOLDERS)]
IMAGES = ["jonasal/devpi-server:6.19", "jonasal/devpi-server:6", "jonasal/devpi-server:latest",
          "jonasal/devpi-server", "jonasal/devpi-server:6.20.3", "jonasal/devpi-server:6.20.3-alpine",
          "registry.example.com:5000/devpi-server", "jonasal/devpi-server@sha256:" + "a" * 64]
HOST_KEYS = [ED25519, RSA, ECDSA, ED25519 + " comment", "rsa-sha2-512 AAAAB3NzaC1yc2E",
             "rsa-sha2-256 AAAAB3NzaC1yc2E", "ssh-dss AAAAB3NzaC1kc3M", "[h]:22 " + ED25519, "abc"]


class TestConfigAndComponentsAgree:
    """The named disagreements are gone: each value is accepted by the stack config exactly when the
    component that uses it accepts it (same rule, one module)."""

    @pytest.mark.parametrize("data_dir", DATA_DIRS)
    def test_data_dir(self, data_dir: str) -> None:
        # /var/lib used to pass the config and be refused by HostPlan (two forbidden-folder sets).
        config = loader_accepts(config_with("server", dataDir=data_dir))
        assert accepts(lambda: HostPlan(data_dir=data_dir)) is config
        assert accepts(lambda: container_spec(ServerArgs(docker_host="ssh://h", initial_root_password="p",
                                                         data_dir=data_dir))) is config

    @pytest.mark.parametrize("folder", sorted(rules.SYSTEM_FOLDERS))
    def test_one_forbidden_folder_set_for_data_and_backups(self, folder: str) -> None:
        assert not loader_accepts(config_with("server", dataDir=folder))
        assert not loader_accepts(config_with("backup", directory=folder))
        assert not accepts(lambda: BackupPlan(backup_dir=folder))
        assert not accepts(lambda: HostPlan(data_dir=folder))

    @pytest.mark.parametrize("allow", [False, True])
    @pytest.mark.parametrize("image", IMAGES)
    def test_image(self, image: str, allow: bool) -> None:
        # jonasal/devpi-server:6.19 used to pass the config and fail later in DevpiServer.
        config = loader_accepts(config_with("server", image=image, allowFloatingTag=allow))
        component = accepts(lambda: container_spec(ServerArgs(docker_host="ssh://h", initial_root_password="p",
                                                              image=image, allow_floating_tag=allow)))
        assert component is config

    @pytest.mark.parametrize("host_key", HOST_KEYS)
    def test_host_key(self, host_key: str) -> None:
        # rsa-sha2-512 used to be refused by the config and accepted by HostArgs.
        config = loader_accepts(config_with("host", hostKey=host_key))
        assert accepts(lambda: HostArgs(address="h", private_key="k", host_key=host_key)) is config

    def test_rsa_sha2_is_refused_everywhere_with_the_fix(self) -> None:
        with pytest.raises(ConfigError, match="an RSA host key line starts with 'ssh-rsa'"):
            HostArgs(address="h", private_key="k", host_key="rsa-sha2-512 AAAAB3NzaC1yc2E")

    def test_insecure_ignore_host_key_is_honoured_by_the_component(self) -> None:
        cfg = copy.deepcopy(base())
        cfg["host"] = {"address": "192.0.2.10", "insecureIgnoreHostKey": True}
        args = HostArgs.from_config(load_stack_config(cfg), "k")
        assert args.host_key is None and args.insecure_ignore_host_key

    @pytest.mark.parametrize(("field", "value"), [
        ("keep", 0), ("keep", 1), ("keep", 1000), ("keep", 1001),
        ("schedule", "daily"), ("schedule", "*-*-* 02:30:00"), ("schedule", "daily; rm -rf /"), ("schedule", " "),
        ("directory", "/srv/backups"), ("directory", "/srv/host backups"), ("directory", "relative"),
        ("directory", "/var/lib"),
    ])
    def test_backup(self, field: str, value: Any) -> None:
        config = loader_accepts(config_with("backup", **{field: value}))
        arg = {"keep": "keep", "schedule": "schedule", "directory": "backup_dir"}[field]
        assert accepts(lambda: BackupPlan(**{arg: value})) is config

    @pytest.mark.parametrize("bases", [[], ["build_bot/stable"]])
    def test_mirror_whitelist_star_needs_the_opt_out_with_or_without_bases(self, bases: list[str]) -> None:
        # The config refused '*' always, the provider's check only with bases: now both, always.
        from components.providers.index import INDEX_FIELDS, DevpiIndexProvider

        cfg = copy.deepcopy(base())
        cfg["indexes"] = [{"name": "build_bot/stable", "volatile": False},
                          {"name": "build_bot/nightly", "bases": bases, "mirrorWhitelist": ["*"]}]
        assert not loader_accepts(cfg)
        cfg["indexes"][1]["allowMirrorWhitelistStar"] = True
        assert loader_accepts(cfg)
        props: dict[str, Any] = dict.fromkeys(INDEX_FIELDS)
        props.update(owner="build_bot", name="nightly", type="stage", volatile=True, bases=bases,
                     mirror_whitelist=["*"], allow_mirror_whitelist_star=False)
        assert [f.property for f in DevpiIndexProvider().check({}, props).failures] == ["mirror_whitelist"]
