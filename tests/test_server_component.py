"""DevpiServer under Pulumi mocks, and the pure container spec: the container keeps its state in the
host data folder at /devpi/server (the guide's /data loses it), restarts always, gets root's
password only as a secret, and the image is pinned unless a floating tag is chosen explicitly."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from pathlib import Path
from typing import Any

import pulumi
import pytest

from components.config.errors import ConfigError
from components.config.stack import load_stack_config
from components.server.component import COMPONENT_TYPE, DevpiServer, ServerArgs
from components.server.spec import (
    HEALTHCHECK_COMMAND,
    SERVER_DIR,
    container_spec,
    docker_run_args,
    floating_tag,
)
from tests.mocks import MockRecorder, Recorded, resolve, settle, unwrap_secret, use_mocks
from tests.tokens import COMMAND, CONTAINER, IMAGE, SERVER

PROVIDER = "pulumi:providers:docker"
PASSWORD = "initial-root-secret"
HOST = "ssh://deploy@10.0.0.5:22"
DATA = "/opt/local/devpi/data"
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeButWellFormedKeyForTests0123456789"


class ImageIdMocks(MockRecorder):
    """MockRecorder plus the RemoteImage output the container consumes (``image_id``)."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        rid, outputs = super().new_resource(args)
        if args.typ == IMAGE:
            outputs["image_id"] = f"sha256:id-of-{args.inputs['name']}"
        return rid, outputs


def server_args(**changes: Any) -> ServerArgs:
    base = ServerArgs(docker_host=HOST, initial_root_password=PASSWORD,
                      ssh_opts=("-o", "StrictHostKeyChecking=yes"), data_dir=DATA)
    return replace(base, **changes)


def deploy(args: ServerArgs, opts: pulumi.ResourceOptions | None = None, *, make_dependency: bool = False,
           secret_password: bool = True) -> tuple[MockRecorder, dict[str, Any]]:
    """Build the component under mocks; the password arrives as a secret Output as from the stack config."""
    recorder = ImageIdMocks()
    with use_mocks(recorder):
        if secret_password and args.initial_root_password is not None:  # Outputs belong to the mocks' loop
            args = replace(args, initial_root_password=pulumi.Output.secret(args.initial_root_password))
        if make_dependency:
            step = pulumi.CustomResource(COMMAND, "host-data-dir", {"create": "mkdir"})
            opts = pulumi.ResourceOptions(depends_on=[step])
        server = DevpiServer("devpi", args, opts)
        settle()
        outputs = {k: resolve(getattr(server, k)) for k in ("container_id", "container_name", "image", "image_id")}
    return recorder, outputs


def inputs(r: Recorded) -> dict[str, Any]:
    return {k: unwrap_secret(v)[0] for k, v in r.inputs.items()}


def container(rec: MockRecorder) -> Recorded:
    return rec.one(CONTAINER)


class TestDataLivesInTheHostFolder:
    """The bug this stack exists to prevent: the guide's ./data:/data mount keeps nothing."""

    def test_data_folder_is_mounted_at_devpi_server_with_selinux_relabel(self) -> None:
        rec, _ = deploy(server_args())
        volumes = inputs(container(rec))["volumes"]
        assert volumes == [{"hostPath": DATA, "containerPath": "/devpi/server", "selinuxRelabel": "Z",
                            "readOnly": False}], volumes

    def test_nothing_is_mounted_at_data(self) -> None:
        rec, _ = deploy(server_args())
        ins = inputs(container(rec))
        assert all(v["containerPath"] != "/data" for v in ins["volumes"])
        assert "mounts" not in ins  # `mounts` cannot carry the SELinux relabel

    def test_data_dir_is_normalised(self) -> None:
        # The loader normalises the spelling once; ServerArgs is built from its result by one function.
        config = load_stack_config({
            "host": {"address": "10.0.0.5", "hostKey": HOST_KEY}, "server": {"dataDir": "/srv/devpi/data/"},
            "rootPassword": PASSWORD, "sshPrivateKey": "k",
        })
        rec, _ = deploy(ServerArgs.from_config(config, PASSWORD))
        assert inputs(container(rec))["volumes"][0]["hostPath"] == "/srv/devpi/data"

    def test_args_built_from_the_validated_config(self) -> None:
        config = load_stack_config({
            "host": {"address": "10.0.0.5", "user": "deploy", "hostKey": HOST_KEY},
            "server": {"port": 3142, "pypiMirror": True, "containerName": "devpi2", "readyTimeout": 60,
                       "sshOpts": ["-o", "StrictHostKeyChecking=yes"]},
            "rootPassword": PASSWORD, "sshPrivateKey": "k",
        })
        assert ServerArgs.from_config(config, PASSWORD) == ServerArgs(
            docker_host=HOST, initial_root_password=PASSWORD, ssh_opts=["-o", "StrictHostKeyChecking=yes"],
            port=3142, pypi_mirror=True, container_name="devpi2", ready_timeout=60,
            secret_dir=config.server.secret_dir)


class TestContainerSettings:
    def test_restart_always_and_must_run(self) -> None:
        ins = inputs(container(deploy(server_args())[0]))
        assert ins["restart"] == "always"
        assert ins["mustRun"] is True

    def test_name_default_and_custom(self) -> None:
        rec, outputs = deploy(server_args())
        assert inputs(container(rec))["name"] == "devpi-server"
        assert outputs["container_name"] == "devpi-server"
        rec, outputs = deploy(server_args(container_name="registry"))
        assert inputs(container(rec))["name"] == "registry"
        assert outputs["container_name"] == "registry"

    def test_port_published_on_every_address_by_default(self) -> None:
        ins = inputs(container(deploy(server_args())[0]))
        assert ins["ports"] == [{"internal": 3141, "external": 3141, "protocol": "tcp"}], ins["ports"]

    def test_custom_port_and_bind_address(self) -> None:
        ins = inputs(container(deploy(server_args(port=8080, bind_address="127.0.0.1"))[0]))
        assert ins["ports"] == [{"internal": 3141, "external": 8080, "ip": "127.0.0.1", "protocol": "tcp"}]

    def test_healthcheck_uses_the_images_python_not_curl(self) -> None:
        hc = inputs(container(deploy(server_args())[0]))["healthcheck"]
        assert hc["tests"] == ["CMD-SHELL", HEALTHCHECK_COMMAND]
        assert "curl" not in json.dumps(hc) and "wget" not in json.dumps(hc)
        assert shlex.split(hc["tests"][1])[:2] == ["python", "-c"]
        assert "http://127.0.0.1:3141/+api" in hc["tests"][1]
        assert hc["interval"] == "10s" and hc["retries"] == 3 and hc["startPeriod"] == "120s"

    def test_waits_for_healthy(self) -> None:
        ins = inputs(container(deploy(server_args(ready_timeout=300))[0]))
        assert ins["wait"] is True and ins["waitTimeout"] == 300
        ins = inputs(container(deploy(server_args(wait_healthy=False))[0]))
        assert ins["wait"] is False and "waitTimeout" not in ins

    def test_labels_and_bounded_logs(self) -> None:
        ins = inputs(container(deploy(server_args())[0]))
        assert {"label": "devpi-registry.managed-by", "value": "devpi-registry"} in ins["labels"]
        assert ins["logDriver"] == "json-file"
        assert ins["logOpts"] == {"max-size": "10m", "max-file": "3"}

    def test_no_secretfile_and_extra_args_reach_the_server(self) -> None:
        ins = inputs(container(deploy(server_args())[0]))
        assert "command" not in ins  # the entrypoint's own arguments only
        ins = inputs(container(deploy(server_args(extra_server_args=("--threads", "4")))[0]))
        assert ins["command"] == ["--threads", "4"]


class TestRootPasswordStaysSecret:
    def test_envs_carrying_the_password_are_secret(self) -> None:
        # A secret element makes the SDK send the whole list as one secret value.
        envs, secret = unwrap_secret(container(deploy(server_args())[0]).inputs["envs"])
        assert secret, envs
        assert f"DEVPI_PASSWORD={PASSWORD}" in envs

    def test_password_from_a_plain_input_is_still_secret(self) -> None:
        envs, secret = unwrap_secret(container(deploy(server_args(), secret_password=False)[0]).inputs["envs"])
        assert secret and f"DEVPI_PASSWORD={PASSWORD}" in envs

    def test_envs_is_an_additional_secret_output(self) -> None:
        assert "envs" in container(deploy(server_args())[0]).additional_secret_outputs

    def test_password_appears_nowhere_in_clear(self) -> None:
        rec, outputs = deploy(server_args())
        assert PASSWORD not in json.dumps(outputs)
        for r in rec.resources:
            for key, value in r.inputs.items():
                if isinstance(value, list):
                    clear = [v for v in value if not unwrap_secret(v)[1]]
                else:
                    clear = [] if unwrap_secret(value)[1] else [value]
                assert PASSWORD not in json.dumps(clear, default=str), f"{r.typ} {r.name}.{key} in clear"


    def test_the_password_is_not_validated_inside_an_output(self) -> None:
        # The rule (no leading '-', not empty) runs when the stack config is loaded, where the raw
        # secret is at hand (tests/test_config.py); an error raised inside ``apply`` surfaced late,
        # nested, and as "Future exception was never retrieved" noise after the test summary.
        envs, _ = unwrap_secret(container(deploy(server_args(initial_root_password="-x"))[0]).inputs["envs"])
        assert "DEVPI_PASSWORD=-x" in envs


class TestPypiMirror:
    def test_off_sets_no_root_pypi(self) -> None:
        envs = inputs(container(deploy(server_args(pypi_mirror=False))[0]))["envs"]
        assert "DEVPISERVER_NO_ROOT_PYPI=1" in envs

    def test_on_leaves_root_pypi_to_devpi_init(self) -> None:
        envs = inputs(container(deploy(server_args(pypi_mirror=True))[0]))["envs"]
        assert not any(e.startswith("DEVPISERVER_NO_ROOT_PYPI") for e in envs), envs


class TestWiring:
    def test_provider_reaches_the_host_over_ssh(self) -> None:
        rec, _ = deploy(server_args())
        provider = rec.one(PROVIDER)
        assert provider.inputs["host"] == HOST
        ssh_opts = provider.inputs["sshOpts"]
        assert (json.loads(ssh_opts) if isinstance(ssh_opts, str) else ssh_opts) == \
            ["-o", "StrictHostKeyChecking=yes"]
        for child in (container(rec), rec.one(IMAGE)):
            assert child.provider is not None and child.provider.startswith(provider.urn), child.provider

    def test_image_is_pulled_kept_and_used_by_id(self) -> None:
        rec, outputs = deploy(server_args(image="jonasal/devpi-server:6.20.3"))
        image = inputs(rec.one(IMAGE))
        assert image["name"] == "jonasal/devpi-server:6.20.3" and image["keepLocally"] is True
        assert inputs(container(rec))["image"] == "sha256:id-of-jonasal/devpi-server:6.20.3"
        assert outputs["image"] == "jonasal/devpi-server:6.20.3"
        assert outputs["image_id"] == "sha256:id-of-jonasal/devpi-server:6.20.3"
        assert outputs["container_id"] == "devpi-container-id"  # the resource id the mock assigned

    def test_children_are_parented_and_type_token_is_stable(self) -> None:
        rec, _ = deploy(server_args())
        component = rec.one(COMPONENT_TYPE)
        assert COMPONENT_TYPE == SERVER
        for child in (container(rec), rec.one(IMAGE), rec.one(PROVIDER)):
            assert child.parent_urn == component.urn, child.name
        assert {r.name for r in rec.resources} >= {"devpi", "devpi-docker", "devpi-image", "devpi-container"}

    def test_depends_on_reaches_image_and_container(self) -> None:
        rec, _ = deploy(server_args(), make_dependency=True)
        assert "host-data-dir" in rec.depends_on(container(rec))
        assert "host-data-dir" in rec.depends_on(rec.one(IMAGE))

    def test_bad_setting_fails_before_any_resource(self) -> None:
        recorder = ImageIdMocks()
        with use_mocks(recorder), pytest.raises(ConfigError, match="floating tag"):
            DevpiServer("devpi", server_args(image="jonasal/devpi-server:latest"))
        assert not recorder.of_type(CONTAINER)


class TestImageTagPinning:
    """A floating tag silently changes the server on the next pull: refused unless chosen explicitly."""

    @pytest.mark.parametrize("image", [
        "jonasal/devpi-server:latest", "jonasal/devpi-server", "jonasal/devpi-server:6",
        "jonasal/devpi-server:6.20", "jonasal/devpi-server:latest-alpine", "jonasal/devpi-server:6-alpine",
        "registry.example.com:5000/devpi-server",
    ])
    def test_floating_tag_refused_with_argument_and_value(self, image: str) -> None:
        # The same rule refuses it in the stack config, naming devpi-registry:server.image and the
        # opt-out key (tests/test_config.py); the component's guard names its own argument.
        with pytest.raises(ConfigError) as err:
            container_spec(server_args(image=image))
        message = str(err.value)
        assert message.startswith("ServerArgs.image: ") and repr(image) in message, message
        assert "6.20.3" in message, message

    @pytest.mark.parametrize("image", ["jonasal/devpi-server:latest", "jonasal/devpi-server"])
    def test_floating_tag_allowed_when_chosen(self, image: str) -> None:
        assert container_spec(server_args(image=image, allow_floating_tag=True)).image == image

    @pytest.mark.parametrize("image", [
        "jonasal/devpi-server:6.20.3", "jonasal/devpi-server:6.20.3-alpine",
        "registry.example.com:5000/devpi-server:6.20.3",
        "jonasal/devpi-server@sha256:" + "a" * 64, "jonasal/devpi-server:latest@sha256:" + "b" * 64,
    ])
    def test_pinned_images_accepted(self, image: str) -> None:
        assert floating_tag(image) is None
        assert container_spec(server_args(image=image)).image == image

    def test_default_image_is_pinned(self) -> None:
        assert container_spec(server_args()).image == "jonasal/devpi-server:6.20.3"


class TestContainerSpecValidation:
    @pytest.mark.parametrize("data_dir", ["data", "./data", "/", "/srv/a:b"])
    def test_data_dir_must_be_an_absolute_dedicated_folder(self, data_dir: str) -> None:
        with pytest.raises(ConfigError, match=r"^ServerArgs\.data_dir: "):
            container_spec(server_args(data_dir=data_dir))

    @pytest.mark.parametrize("arg", ["--port", "--port=8080", "--serverdir", "--host", "--secretfile=/x"])
    def test_extra_args_must_not_move_port_or_state(self, arg: str) -> None:
        with pytest.raises(ConfigError, match=r"^ServerArgs\.extra_server_args: must not set --"):
            container_spec(server_args(extra_server_args=(arg, "x")))

    def test_container_name_checked(self) -> None:
        with pytest.raises(ConfigError, match=r"^ServerArgs\.container_name: "):
            container_spec(server_args(container_name="bad name"))

    def test_spec_contents(self) -> None:
        spec = container_spec(server_args(port=3142, bind_address="127.0.0.1"))
        assert spec.data_mount.container_path == SERVER_DIR == "/devpi/server"
        assert spec.data_mount.selinux_relabel == "Z"
        assert spec.secret_env == ("DEVPI_PASSWORD",)
        assert ("DEVPISERVER_NO_ROOT_PYPI", "1") in spec.env
        assert all(k != "DEVPI_PASSWORD" for k, _ in spec.env)
        assert spec.ports[0].external == 3142 and spec.ports[0].internal == 3141


class TestDockerRunArgs:
    def _env_file(self, tmp_path: Path, mode: int = 0o600) -> Path:
        path = tmp_path / "env"
        path.write_text(f"DEVPI_PASSWORD={PASSWORD}\n")
        path.chmod(mode)
        return path

    def test_equivalent_of_the_declared_container(self, tmp_path: Path) -> None:
        spec = container_spec(server_args(port=4000, bind_address="127.0.0.1"))
        argv = docker_run_args(spec, self._env_file(tmp_path))
        assert argv[:3] == ["docker", "run", "--detach"]
        joined = " ".join(argv)
        assert f"--volume {DATA}:/devpi/server:rw,Z" in joined
        assert "--publish 127.0.0.1:4000:3141/tcp" in joined
        assert "--restart always" in joined and "--name devpi-server" in joined
        assert "--env DEVPISERVER_NO_ROOT_PYPI=1" in joined
        assert argv[argv.index("--health-cmd") + 1] == HEALTHCHECK_COMMAND
        assert argv[-1] == spec.image

    def test_password_only_through_a_private_env_file(self, tmp_path: Path) -> None:
        env_file = self._env_file(tmp_path)
        argv = docker_run_args(container_spec(server_args()), env_file)
        assert PASSWORD not in " ".join(argv)
        assert argv[argv.index("--env-file") + 1] == str(env_file)

    def test_readable_env_file_refused(self, tmp_path: Path) -> None:
        with pytest.raises(ValueError, match="chmod 600"):
            docker_run_args(container_spec(server_args()), self._env_file(tmp_path, 0o644))

    def test_ipv6_bind_address_is_bracketed(self, tmp_path: Path) -> None:
        argv = docker_run_args(container_spec(server_args(bind_address="::1")), self._env_file(tmp_path))
        assert "[::1]:3141:3141/tcp" in argv


# ------------------------------------------------------------------------------------------ replicas
PRIMARY_URL = "http://10.0.0.5:3141"
SECRET_DIR = "/opt/local/devpi/secret"


def replica_args(**changes: Any) -> ServerArgs:
    base = ServerArgs(docker_host="ssh://deploy@10.0.0.6:22", data_dir=DATA, secret_dir=SECRET_DIR,
                      primary_url=PRIMARY_URL, container_name="devpi-replica")
    return replace(base, **changes)


def stack_with_replica() -> tuple[Any, Any]:
    from components.config.model import HostConfig, ReplicaConfig, ServerConfig, StackConfig

    replica = ReplicaConfig(name="site-b", host=HostConfig(address="10.0.0.6", port=2222, user="deploy",
                                                          host_key=HOST_KEY),
                            port=3142, data_dir="/srv/devpi/replica", container_name="devpi-replica-b",
                            url="http://10.0.0.6:3142", primary_url=PRIMARY_URL, secret_dir="/srv/devpi/secret")
    config = StackConfig(host=HostConfig(address="10.0.0.5", user="deploy", host_key=HOST_KEY),
                         server=ServerConfig(image="jonasal/devpi-server:6.20.3", ssh_opts=("-o", "X=1")),
                         server_url=PRIMARY_URL, replicas=(replica,))
    return config, replica


class TestReplicaSpec:
    """A replica never runs the image's entrypoint (it would devpi-init a second primary)."""

    def test_entrypoint_is_replaced_and_inits_only_as_a_replica(self) -> None:
        from components.server.spec import REPLICA_ENTRYPOINT, REPLICA_SCRIPT, SECRET_FILE

        spec = container_spec(replica_args())
        assert spec.is_replica and spec.entrypoint == REPLICA_ENTRYPOINT
        assert spec.entrypoint[:2] == ("/bin/sh", "-c")
        assert "devpi-init --serverdir \"$dir\" --role replica --primary-url \"$primary\"" in REPLICA_SCRIPT
        assert "root-passwd" not in REPLICA_SCRIPT and "DEVPI_PASSWORD" not in REPLICA_SCRIPT
        assert 'if [ ! -f "$dir/.nodeinfo" ]' in REPLICA_SCRIPT and "exec devpi-server" in REPLICA_SCRIPT
        assert spec.command == (PRIMARY_URL, "--host", "0.0.0.0", "--port", "3141", "--restrict-modify", "root",
                                "--secretfile", SECRET_FILE)

    def test_no_root_password_and_the_secret_folder_read_only(self) -> None:
        spec = container_spec(replica_args())
        assert spec.secret_env == () and spec.env == (("DEVPISERVER_SERVERDIR", SERVER_DIR),)
        secret = next(m for m in spec.mounts if m.container_path == "/devpi/secret")
        assert secret.host_path == SECRET_DIR and secret.read_only
        assert spec.data_mount.host_path == DATA and not spec.data_mount.read_only
        assert ("devpi-registry.role", "replica") in spec.labels

    def test_the_script_runs_as_sh_would(self, tmp_path: Path) -> None:
        """The script itself, with stand-ins for devpi-init/devpi-server: init once, then exec."""
        import os
        import subprocess

        from components.server.spec import replica_argv

        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for tool in ("devpi-init", "devpi-server"):
            stub = bin_dir / tool
            stub.write_text(f'#!/bin/sh\necho {tool} "$@" >> "$LOG"\n'
                            + ('touch "$DEVPISERVER_SERVERDIR/.nodeinfo"\n' if tool == "devpi-init" else ""))
            stub.chmod(0o755)
        data = tmp_path / "data"
        data.mkdir()
        env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "DEVPISERVER_SERVERDIR": str(data),
               "LOG": str(tmp_path / "log")}
        argv = replica_argv(container_spec(replica_args()))
        for _ in range(2):
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=10)
        calls = (tmp_path / "log").read_text().splitlines()
        assert calls[0] == f"devpi-init --serverdir {data} --role replica --primary-url {PRIMARY_URL}"
        server = (f"devpi-server --serverdir {data} --role replica --primary-url {PRIMARY_URL} --host 0.0.0.0 "
                  "--port 3141 --restrict-modify root --secretfile /devpi/secret/secret")
        assert calls[1:] == [server, server], "devpi-init ran again on an initialised folder"

    def test_replication_needs_the_shared_secret(self) -> None:
        with pytest.raises(ConfigError, match=r"^ServerArgs\.secret_dir: .*shared --secretfile"):
            container_spec(replica_args(secret_dir=None))
        with pytest.raises(ConfigError, match=r"^ServerArgs\.secret_dir: "):
            container_spec(server_args(serves_replicas=True))

    @pytest.mark.parametrize("url", ["ftp://x", "10.0.0.5:3141", "http://u:p@10.0.0.5:3141", "http://h:1/?a=1"])
    def test_bad_primary_url(self, url: str) -> None:
        with pytest.raises(ConfigError, match=r"^ServerArgs\.primary_url: "):
            container_spec(replica_args(primary_url=url))

    @pytest.mark.parametrize("arg", ["--role=standalone", "--primary-url", "--master-url=http://x"])
    def test_extra_args_must_not_set_the_role(self, arg: str) -> None:
        with pytest.raises(ConfigError, match=r"^ServerArgs\.extra_server_args: "):
            container_spec(replica_args(extra_server_args=(arg,)))

    def test_a_replica_does_not_serve_replicas(self) -> None:
        with pytest.raises(ConfigError, match=r"^ServerArgs\.serves_replicas: "):
            container_spec(replica_args(serves_replicas=True))

    def test_primary_with_replicas_runs_role_primary(self) -> None:
        spec = container_spec(server_args(serves_replicas=True, secret_dir=SECRET_DIR))
        assert spec.command == ("--role", "primary", "--secretfile", "/devpi/secret/secret")
        assert not spec.is_replica and spec.entrypoint == ()
        plain = container_spec(server_args())
        assert plain.command == () and plain.entrypoint == () and plain.secret_env == ("DEVPI_PASSWORD",)

    def test_docker_run_args_for_a_replica(self) -> None:
        argv = docker_run_args(container_spec(replica_args(network="devpi-net")))
        image = argv.index("jonasal/devpi-server:6.20.3")
        assert argv[argv.index("--entrypoint") + 1] == "/bin/sh"
        assert argv[image + 1] == "-c" and argv[image + 3] == "devpi-replica" and argv[image + 4] == PRIMARY_URL
        assert "--env-file" not in argv
        assert argv[argv.index("--network") + 1] == "devpi-net"

    def test_docker_run_args_still_needs_the_env_file_for_a_primary(self) -> None:
        with pytest.raises(ValueError, match="DEVPI_PASSWORD"):
            docker_run_args(container_spec(server_args()))


class TestReplicaArgsFromConfig:
    def test_from_replica(self) -> None:
        config, replica = stack_with_replica()
        args = ServerArgs.from_replica(config, replica)
        assert args == ServerArgs(
            docker_host="ssh://deploy@10.0.0.6:2222", ssh_opts=["-o", "X=1"], image="jonasal/devpi-server:6.20.3",
            port=3142, data_dir="/srv/devpi/replica", container_name="devpi-replica-b",
            secret_dir="/srv/devpi/secret", primary_url=PRIMARY_URL, initial_root_password=None,
        )
        assert container_spec(args).is_replica

    def test_primary_from_config_serves_replicas_with_the_secret(self) -> None:
        config, _ = stack_with_replica()
        args = ServerArgs.from_config(config, PASSWORD)
        assert args.serves_replicas and args.secret_dir == config.server.secret_dir
        assert container_spec(args).command[:2] == ("--role", "primary")
        without = replace(config, replicas=())
        unchanged = ServerArgs.from_config(without, PASSWORD)
        # without replicas: no --role, and still the shared secret file (tokens survive restarts)
        assert not unchanged.serves_replicas and unchanged.secret_dir == config.server.secret_dir
        assert "--role" not in container_spec(unchanged).command
        assert container_spec(unchanged).command[:2] == ("--secretfile", "/devpi/secret/secret")


class TestReplicaComponent:
    def test_replica_container_under_mocks(self) -> None:
        recorder = ImageIdMocks()
        with use_mocks(recorder):
            DevpiServer("replica-b", replica_args(network="devpi-net"))
            settle()
        ins = inputs(recorder.one(CONTAINER))
        assert ins["entrypoints"][:2] == ["/bin/sh", "-c"] and ins["command"][0] == PRIMARY_URL
        assert ins["envs"] == ["DEVPISERVER_SERVERDIR=/devpi/server"]
        assert not any("DEVPI_PASSWORD" in e for e in ins["envs"])
        assert ins["networksAdvanced"] == [{"name": "devpi-net", "aliases": ["devpi"]}]
        assert recorder.one(CONTAINER).additional_secret_outputs == []
        assert recorder.one(PROVIDER).inputs["host"] == "ssh://deploy@10.0.0.6:22"

    def test_primary_keeps_its_entrypoint_and_secret_password(self) -> None:
        rec, _ = deploy(server_args())
        ins = inputs(container(rec))
        assert "entrypoints" not in ins and "networksAdvanced" not in ins
        assert container(rec).additional_secret_outputs == ["envs"]

    def test_primary_without_password_refused(self) -> None:
        with use_mocks(ImageIdMocks()), pytest.raises(ValueError, match="initial_root_password"):
            DevpiServer("devpi", server_args(initial_root_password=None))
