"""HostSetup wiring under Pulumi mocks: children, exact scripts, triggers, order, secrets, pinning."""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections.abc import Callable
from typing import Any

import pulumi
import pytest
from pulumi.runtime.stack import wait_for_rpcs

from components.config.errors import ConfigError
from components.config.model import HostConfig, ReplicaConfig, ServerConfig, StackConfig, TlsConfig
from components.host.component import HOST_SETUP_TYPE, HostArgs, HostSetup
from components.host.scripts import PAYLOAD_END, PAYLOAD_HEADER, TLS_KEY_FILE, HostPlan, proxy_file_specs, render_steps
from tests.mocks import MockRecorder, Recorded, unwrap_secret, use_mocks
from tests.tokens import COMMAND

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHg7Zq1y0bQyYk4zC3l2c2dW6o5m0nG8t9V2c1x9AbCd"
PRIVATE_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
STEPS = ["preflight", "data-dir", "selinux", "firewall"]


def build(args: HostArgs | Callable[[], HostArgs], opts: pulumi.ResourceOptions | None = None,
          before: bool = False) -> tuple[MockRecorder, HostSetup]:
    """``args``, or a function making them inside the mocks (where secret Outputs can exist)."""
    recorder = MockRecorder()
    with use_mocks(recorder):
        dep = pulumi.CustomResource("test:index:Thing", "before") if before else None
        if dep is not None:
            opts = pulumi.ResourceOptions(depends_on=[dep])
        host = HostSetup("h", args if isinstance(args, HostArgs) else args(), opts)
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
                                 port=3142, purge_data_on_destroy=True, firewall_when_inactive="skip",
                                 ports=(3142,))

    def test_plan_carries_the_settings(self) -> None:
        plan = args(user="deploy", data_dir="/srv/d", port=1, data_owner_uid=5, data_owner_gid=6,
                    firewall_when_inactive="skip", purge_data_on_destroy=True).plan()
        assert plan == HostPlan(user="deploy", data_dir="/srv/d", port=1, data_owner_uid=5,
                                data_owner_gid=6, firewall_when_inactive="skip", purge_data_on_destroy=True)
        assert plan.use_sudo


# ------------------------------------------------------------------------------------------ TLS, replicas, files

SECRET = "c2VjcmV0LWZyb20tdGhlLXN0YWNrLXNlY3JldC0zMmJ5dGVzIQ=="
TLS_KEY = "-----BEGIN PRIVATE KEY-----\nnot-a-real-tls-key\n-----END PRIVATE KEY-----\n"
NGINX_CONF = "server { listen 443 ssl; }\n"
CHAIN = "-----BEGIN CERTIFICATE-----\nnot-a-real-chain\n-----END CERTIFICATE-----\n"
ALL_STEPS = ["preflight", "data-dir", "selinux", "secret", "proxy-files", "firewall"]


def files_args(*, as_outputs: bool = True, **overrides: Any) -> HostArgs:
    secret: Any = pulumi.Output.secret(SECRET) if as_outputs else SECRET
    key: Any = pulumi.Output.secret(TLS_KEY) if as_outputs else TLS_KEY
    values: dict[str, Any] = {
        "secret": secret, "tls_private_key": key, "ports": (443, 80),
        "proxy_files": {"conf.d/devpi.conf": (NGINX_CONF, 0o644), "tls/chain.pem": (CHAIN, 0o644)},
    }
    values.update(overrides)
    return args(**values)


def decode(payload: str) -> dict[str, tuple[str, str]]:
    lines = payload.split("\n")
    assert lines[0] == PAYLOAD_HEADER and lines[-2:] == [PAYLOAD_END, ""]
    out = {}
    for line in lines[1:-2]:
        path, mode, data = line.split("\t")
        out[path] = (mode, base64.b64decode(data).decode())
    return out


class TestFilesSteps:
    def test_steps_in_order_secret_and_proxy_before_the_firewall(self) -> None:
        recorder, host = build(files_args)
        cmds = commands(recorder)
        assert list(host.steps) == ALL_STEPS
        assert host.ready == [host.steps[s] for s in ALL_STEPS]
        for before, after in itertools.pairwise(ALL_STEPS):
            assert recorder.depends_on(cmds[after]) == {f"h-{before}"}

    @pytest.mark.parametrize("as_outputs", [True, False], ids=["secret-outputs", "plain-strings"])
    def test_stdin_is_a_secret_carrying_the_files(self, as_outputs: bool) -> None:
        recorder, _ = build(lambda: files_args(as_outputs=as_outputs))
        cmds = commands(recorder)
        secret_stdin, is_secret = unwrap_secret(cmds["secret"].inputs["stdin"])
        assert is_secret, "the payload holds devpi's secret: stdin must be a secret input"
        assert decode(secret_stdin) == {"secret": ("600", SECRET)}
        proxy_stdin, is_secret = unwrap_secret(cmds["proxy-files"].inputs["stdin"])
        assert is_secret
        assert decode(proxy_stdin) == {"conf.d/devpi.conf": ("644", NGINX_CONF), "tls/chain.pem": ("644", CHAIN),
                                       TLS_KEY_FILE: ("600", TLS_KEY)}
        for name in ("secret", "proxy-files"):
            assert "stdin" in cmds[name].additional_secret_outputs
            assert "connection" in cmds[name].additional_secret_outputs

    def test_no_secret_in_commands_triggers_or_environment(self) -> None:
        recorder, _ = build(files_args)
        for cmd in commands(recorder).values():
            assert "environment" not in cmd.inputs
            text = " ".join(str(cmd.inputs.get(k, "")) for k in ("create", "update", "delete", "triggers"))
            for secret in (SECRET, TLS_KEY.strip(), "not-a-real-tls-key", base64.b64encode(TLS_KEY.encode()).decode(),
                           base64.b64encode(SECRET.encode()).decode()):
                assert secret not in text

    def test_change_handling(self) -> None:
        cmds = commands(build(files_args)[0])
        by = {s.name: s for s in render_steps(files_args(as_outputs=False).plan())}
        for name in ("secret", "proxy-files"):
            assert cmds[name].inputs["create"] == by[name].create
            assert cmds[name].inputs["update"] == by[name].create, "new content on stdin re-runs the script"
            assert cmds[name].inputs["delete"] == by[name].delete
            assert cmds[name].inputs["triggers"] == [by[name].trigger]
            assert cmds[name].delete_before_replace is True
        assert cmds["firewall"].delete_before_replace is True

    def test_new_content_keeps_the_triggers(self) -> None:
        """A rotated certificate or key is an update (stdin changed), never a replace."""
        a = commands(build(files_args)[0])
        b = commands(build(lambda: files_args(tls_private_key=pulumi.Output.secret(TLS_KEY + "x"),
                                              proxy_files={"conf.d/devpi.conf": (NGINX_CONF, 0o644),
                                                           "tls/chain.pem": (CHAIN + "x", 0o644)}))[0])
        assert a["proxy-files"].inputs["triggers"] == b["proxy-files"].inputs["triggers"]
        assert a["proxy-files"].inputs["stdin"] != b["proxy-files"].inputs["stdin"]

    def test_firewall_opens_the_port_set(self) -> None:
        cmds = commands(build(files_args)[0])
        assert "port_specs=(443/tcp 80/tcp)" in cmds["firewall"].inputs["create"]
        assert "3141" not in cmds["firewall"].inputs["create"]
        plain = commands(build(args())[0])
        assert plain["firewall"].inputs["triggers"] != cmds["firewall"].inputs["triggers"]

    def test_exposes_ports_and_folders(self) -> None:
        _, host = build(lambda: files_args(secret_dir="/srv/devpi/secret", proxy_dir="/srv/devpi/proxy"))
        assert host.port == 3141 and host.ports == (443, 80)
        assert host.secret_dir == "/srv/devpi/secret" and host.proxy_dir == "/srv/devpi/proxy"
        _, plain = build(args())
        assert plain.ports == (3141,) and plain.secret_dir is None and plain.proxy_dir is None

    def test_the_key_and_the_files_come_together(self) -> None:
        with pytest.raises(ConfigError, match=r"^HostArgs\.tls_private_key: must be given with proxy_files"):
            args(proxy_files={"conf.d/devpi.conf": (NGINX_CONF, 0o644)})
        with pytest.raises(ConfigError, match=r"^HostArgs\.tls_private_key: .*\(got '\[secret\]'\)"):
            args(tls_private_key=TLS_KEY)

    def test_the_proxy_files_cannot_name_the_key(self) -> None:
        with pytest.raises(ValueError, match="comes separately, as a secret"):
            files_args(as_outputs=False, proxy_files={TLS_KEY_FILE: ("x", 0o600)})


def stack(*, tls: TlsConfig | None = None, replicas: tuple[ReplicaConfig, ...] = ()) -> StackConfig:
    return StackConfig(
        host=HostConfig(address="203.0.113.7", user="deploy", sudo=True, host_key=HOST_KEY),
        server=ServerConfig(port=3142, data_dir="/srv/devpi/data", secret_dir="/srv/devpi/secret",
                            purge_data_on_destroy=True),
        server_url="https://devpi.example.org", tls=tls, replicas=replicas,
    )


REPLICA = ReplicaConfig(
    name="eu", host=HostConfig(address="198.51.100.9", port=2200, user="ops", sudo=True, host_key=HOST_KEY),
    port=4141, data_dir="/srv/replica/data", secret_dir="/srv/replica/secret", url="http://198.51.100.9:4141",
    primary_url="https://devpi.example.org", firewall_when_inactive="skip",
)


class TestFromConfig:
    def test_plain_http_opens_devpis_port(self) -> None:
        built = HostArgs.from_config(stack(), PRIVATE_KEY)
        assert built.plan().ports == (3142,)
        assert built.secret is None and built.plan().secret_dir is None

    def test_tls_opens_the_proxy_ports_not_devpis(self) -> None:
        tls = TlsConfig(certificate=CHAIN, names=("devpi.example.org",), proxy_dir="/srv/devpi/proxy",
                        proxy_container_name="edge")
        built = HostArgs.from_config(stack(tls=tls), PRIVATE_KEY, secret=SECRET, tls_private_key=TLS_KEY,
                                     proxy_files={"conf.d/devpi.conf": (NGINX_CONF, 0o644)})
        plan = built.plan()
        assert plan.ports == (443, 80)
        assert plan.port == 3142, "devpi's own port stays known (published on 127.0.0.1)"
        assert plan.secret_dir == "/srv/devpi/secret"
        assert plan.proxy_dir == "/srv/devpi/proxy" and plan.proxy_container_name == "edge"
        assert plan.proxy_files == proxy_file_specs({"conf.d/devpi.conf": 0o644})

    def test_tls_without_redirect_and_other_ports(self) -> None:
        tls = TlsConfig(certificate=CHAIN, https_port=8443, http_redirect=False)
        assert HostArgs.from_config(stack(tls=tls), PRIVATE_KEY).plan().ports == (8443,)

    def test_a_ca_bundle_alone_is_not_proxied(self) -> None:
        """tls with only caBundle (no certificate): no proxy on the host, devpi's port stays open."""
        tls = TlsConfig(ca_bundle=CHAIN)
        assert HostArgs.from_config(stack(tls=tls), PRIVATE_KEY).plan().ports == (3142,)

    def test_replica_host(self) -> None:
        built = HostArgs.from_replica(stack(replicas=(REPLICA,)), REPLICA, PRIVATE_KEY, secret=SECRET)
        assert (built.address, built.ssh_port, built.user, built.sudo, built.host_key) == \
            ("198.51.100.9", 2200, "ops", True, HOST_KEY)
        plan = built.plan()
        assert (plan.data_dir, plan.port, plan.ports, plan.secret_dir) == \
            ("/srv/replica/data", 4141, (4141,), "/srv/replica/secret")
        assert plan.firewall_when_inactive == "skip"
        assert plan.purge_data_on_destroy is True, "the stack's purge policy"
        assert plan.proxy_dir is None

    def test_replica_behind_its_own_proxy(self) -> None:
        tls = TlsConfig(certificate=CHAIN, proxy_dir="/srv/devpi/proxy")
        built = HostArgs.from_replica(stack(tls=tls, replicas=(REPLICA,)), REPLICA, PRIVATE_KEY, secret=SECRET,
                                      tls_private_key=TLS_KEY, proxy_files={"conf.d/devpi.conf": (NGINX_CONF, 0o644)})
        plan = built.plan()
        assert plan.ports == (443, 80) and plan.port == 4141
        assert plan.proxy_dir == "/srv/devpi/proxy"

    def test_replica_host_setup_under_mocks(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            HostSetup("h", HostArgs.from_replica(stack(replicas=(REPLICA,)), REPLICA, PRIVATE_KEY,
                                                 secret=pulumi.Output.secret(SECRET)))
            settle()
        cmds = commands(recorder)
        assert list(cmds) == ["preflight", "data-dir", "selinux", "secret", "firewall"]
        conn, _ = unwrap_secret(cmds["secret"].inputs["connection"])
        assert (conn["host"], conn["port"], conn["user"]) == ("198.51.100.9", 2200, "ops")
        assert unwrap_secret(cmds["secret"].inputs["stdin"])[1]

    def test_replica_of_an_https_primary_gets_the_ca_beside_the_secret(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            HostSetup("h", HostArgs.from_replica(stack(replicas=(REPLICA,)), REPLICA, PRIVATE_KEY,
                                                 secret=pulumi.Output.secret(SECRET), ca_bundle=CHAIN))
            settle()
        cmds = commands(recorder)
        payload, is_secret = unwrap_secret(cmds["secret"].inputs["stdin"])
        assert is_secret
        assert decode(payload) == {"ca.pem": ("644", CHAIN), "secret": ("600", SECRET)}
        assert "want_paths=(ca.pem secret)" in cmds["secret"].inputs["create"]

    def test_the_ca_needs_the_secret_step(self) -> None:
        with pytest.raises(ConfigError, match=r"^HostArgs\.ca_bundle: needs secret"):
            args(ca_bundle=CHAIN)
        with pytest.raises(ConfigError, match=r"^HostArgs\.ca_bundle: must be PEM certificates"):
            args(secret=SECRET, ca_bundle="not pem")
