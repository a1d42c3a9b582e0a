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
        if secret_password:  # Outputs belong to the mocks' event loop: create them inside
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
            port=3142, pypi_mirror=True, container_name="devpi2", ready_timeout=60)


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
