"""HostSetup wiring under Pulumi mocks: children, exact scripts, triggers, order, secrets, pinning."""

from __future__ import annotations

import asyncio
from typing import Any

import pulumi
import pytest
from pulumi.runtime.stack import wait_for_rpcs

from components.config.errors import ConfigError
from components.host.component import HOST_SETUP_TYPE, HostArgs, HostSetup
from components.host.scripts import HostPlan, render_steps
from tests.mocks import MockRecorder, Recorded, unwrap_secret, use_mocks
from tests.tokens import COMMAND

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHg7Zq1y0bQyYk4zC3l2c2dW6o5m0nG8t9V2c1x9AbCd"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
STEPS = ["preflight", "data-dir", "selinux", "firewall"]


def build(args: HostArgs, opts: pulumi.ResourceOptions | None = None,
          before: bool = False) -> tuple[MockRecorder, HostSetup]:
    recorder = MockRecorder()
    with use_mocks(recorder):
        dep = pulumi.CustomResource("test:index:Thing", "before") if before else None
        if dep is not None:
            opts = pulumi.ResourceOptions(depends_on=[dep])
        host = HostSetup("h", args, opts)
        settle()
    return recorder, host


def settle() -> None:
    """Let every registration (children, register_outputs) finish before the mock loop closes."""
    asyncio.get_event_loop().run_until_complete(wait_for_rpcs())


def args(**overrides: Any) -> HostArgs:
    values: dict[str, Any] = {"address": "203.0.113.7", "private_key": PRIVATE_KEY, "host_key": HOST_KEY}
    values.update(overrides)
    return HostArgs(**values)


def commands(recorder: MockRecorder) -> dict[str, Recorded]:
    return {r.name.removeprefix("h-"): r for r in recorder.of_type(COMMAND)}


class TestResourceGraph:
    def test_component_with_one_command_per_step_parented_to_it(self) -> None:
        recorder, host = build(args())
        component = recorder.one(HOST_SETUP_TYPE, "h")
        cmds = commands(recorder)
        assert sorted(cmds) == sorted(STEPS)
        assert all(c.parent_urn == component.urn for c in cmds.values())
        assert list(host.steps) == STEPS
        assert host.ready == [host.steps[s] for s in STEPS]

    def test_steps_run_in_order(self) -> None:
        recorder, _ = build(args())
        cmds = commands(recorder)
        assert recorder.depends_on(cmds["preflight"]) == set()
        assert recorder.depends_on(cmds["data-dir"]) == {"h-preflight"}
        assert recorder.depends_on(cmds["selinux"]) == {"h-data-dir"}
        assert recorder.depends_on(cmds["firewall"]) == {"h-selinux"}

    def test_callers_depends_on_reaches_the_first_step(self) -> None:
        recorder, _ = build(args(), before=True)
        assert recorder.depends_on(commands(recorder)["preflight"]) == {"before"}

    def test_exposes_data_dir_and_port(self) -> None:
        _, host = build(args(data_dir="/srv/devpi/data", port=3142))
        assert host.data_dir == "/srv/devpi/data"
        assert host.port == 3142


class TestScripts:
    @pytest.mark.parametrize("overrides", [
        {},
        {"user": "deploy"},
        {"user": "deploy", "sudo_command": "sudo -n -u root", "firewall_when_inactive": "skip",
         "purge_data_on_destroy": True, "data_dir": "/srv/devpi/data", "port": 8080,
         "data_owner_uid": 1000, "data_owner_gid": 1001},
    ], ids=["root", "sudo", "everything-set"])
    def test_create_delete_update_are_the_rendered_scripts(self, overrides: dict[str, Any]) -> None:
        a = args(**overrides)
        recorder, _ = build(a)
        cmds = commands(recorder)
        for step in render_steps(a.plan()):
            inputs = cmds[step.name].inputs
            assert inputs["create"] == step.create
            assert inputs.get("delete") == step.delete
            assert inputs.get("update") == step.update
            assert inputs.get("triggers") == ([step.trigger] if step.trigger else None)
            assert inputs["logging"] == "stdoutAndStderr"
            assert inputs["addPreviousOutputInEnv"] is False
            assert "stdin" not in inputs and "environment" not in inputs

    def test_sudo_variant_uses_sudo_and_root_does_not(self) -> None:
        root = commands(build(args())[0])
        sudo = commands(build(args(user="deploy"))[0])
        assert "as_root() { \"$@\"; }" in root["data-dir"].inputs["create"].replace("'\"'\"'", "'")
        assert "sudo -n" not in root["firewall"].inputs["create"]
        for step in STEPS:
            assert "sudo -n" in sudo[step].inputs["create"]

    def test_trigger_changes_with_the_script(self) -> None:
        a = commands(build(args(port=3141))[0])
        b = commands(build(args(port=3142))[0])
        assert a["firewall"].inputs["triggers"] != b["firewall"].inputs["triggers"]
        assert a["preflight"].inputs["triggers"] == b["preflight"].inputs["triggers"]

    def test_destroy_safety_options(self) -> None:
        cmds = commands(build(args(purge_data_on_destroy=True))[0])
        assert "triggers" not in cmds["data-dir"].inputs  # never replaced: replace would purge
        assert cmds["data-dir"].delete_before_replace is False
        assert cmds["firewall"].delete_before_replace is True
        assert cmds["selinux"].delete_before_replace is True

    def test_default_delete_keeps_the_data(self) -> None:
        cmds = commands(build(args())[0])
        assert "rm -rf" not in cmds["data-dir"].inputs["delete"]
        assert "purgeDataOnDestroy is false" in cmds["data-dir"].inputs["delete"]


class TestConnection:
    def test_connection_is_secret_and_pins_the_host_key(self) -> None:
        recorder, _ = build(args(ssh_port=2222, user="deploy"))
        for cmd in commands(recorder).values():
            conn, secret = unwrap_secret(cmd.inputs["connection"])
            assert secret, "the connection holds the private key: it must be a secret input"
            assert conn["host"] == "203.0.113.7"
            assert conn["port"] == 2222
            assert conn["user"] == "deploy"
            assert conn["hostKey"] == HOST_KEY
            assert conn["privateKey"] == PRIVATE_KEY
            assert "connection" in cmd.additional_secret_outputs

    @pytest.mark.parametrize("as_output", [False, True], ids=["plain-str", "secret-output"])
    def test_private_key_is_secret_either_way(self, as_output: bool) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            key_input = pulumi.Output.secret(PRIVATE_KEY) if as_output else PRIVATE_KEY
            host = HostSetup("h", args(private_key=key_input))
            settle()
            key = host.connection.private_key
            assert isinstance(key, pulumi.Output)
            from tests.mocks import is_secret

            assert is_secret(key)
        for cmd in recorder.of_type(COMMAND):
            assert unwrap_secret(cmd.inputs["connection"])[1]

    def test_private_key_never_in_scripts(self) -> None:
        recorder, _ = build(args())
        for cmd in commands(recorder).values():
            for key in ("create", "delete", "update", "triggers"):
                assert "not-a-real-key" not in str(cmd.inputs.get(key, ""))


class TestArgsValidation:
    """HostArgs' last guard runs the rules of components.config.rules and names its own argument
    (``HostArgs.host_key``), never an invented config key (it said ``host.sshPort`` before)."""

    def test_host_key_is_required(self) -> None:
        with pytest.raises(ConfigError, match=r"^HostArgs\.host_key: is required"):
            args(host_key=None)

    def test_missing_host_key_is_accepted_only_with_the_explicit_opt_out(self) -> None:
        # The stack's host.insecureIgnoreHostKey used to pass the config and fail here.
        assert args(host_key=None, insecure_ignore_host_key=True).host_key is None

    def test_host_key_must_be_a_key_line(self) -> None:
        with pytest.raises(ConfigError, match=r"^HostArgs\.host_key: must be a public key line"):
            args(host_key="[203.0.113.7]:22 not-a-key")

    def test_ssh_port_range(self) -> None:
        with pytest.raises(ConfigError, match=r"^HostArgs\.ssh_port: must be between 1 and 65535"):
            args(ssh_port=0)

    def test_plan_errors_surface_at_construction(self) -> None:
        with pytest.raises(ConfigError, match=r"HostPlan\.data_dir: is a system folder"):
            args(data_dir="/usr")
        with pytest.raises(ConfigError, match=r"HostPlan\.firewall_when_inactive"):
            args(firewall_when_inactive="ignore")

    def test_built_from_the_validated_config_by_one_function(self) -> None:
        from components.config.stack import load_stack_config

        config = load_stack_config({
            "host": {"address": "203.0.113.7", "port": 2222, "user": "deploy", "hostKey": HOST_KEY},
            "server": {"dataDir": "/srv/devpi/data/", "port": 3142, "purgeDataOnDestroy": True,
                       "firewallWhenInactive": "skip"},
            "rootPassword": "r", "sshPrivateKey": PRIVATE_KEY,
        })
        built = HostArgs.from_config(config, PRIVATE_KEY)
        assert built == HostArgs(address="203.0.113.7", ssh_port=2222, user="deploy", sudo=True,
                                 private_key=PRIVATE_KEY, host_key=HOST_KEY, data_dir="/srv/devpi/data",
                                 port=3142, purge_data_on_destroy=True, firewall_when_inactive="skip")

    def test_plan_carries_the_settings(self) -> None:
        plan = args(user="deploy", data_dir="/srv/d", port=1, data_owner_uid=5, data_owner_gid=6,
                    firewall_when_inactive="skip", purge_data_on_destroy=True).plan()
        assert plan == HostPlan(user="deploy", data_dir="/srv/d", port=1, data_owner_uid=5,
                                data_owner_gid=6, firewall_when_inactive="skip", purge_data_on_destroy=True)
        assert plan.use_sudo
