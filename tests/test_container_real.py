"""The container the stack declares, run for real: packages survive a container replacement (an image
upgrade), the deployment guide's /data mount loses them, the healthcheck passes, and the image
contract around DEVPI_PASSWORD holds.

Each container is started from ``docker_run_args(container_spec(ServerArgs(...)))`` — the same spec
``DevpiServer`` turns into a ``docker.Container`` — published on 127.0.0.1 only, with its data folder
in the test's tmp directory and root's password in a 0600 env file, never in an argv.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from components.devpi.client import DevpiClient
from components.devpi.errors import AuthenticationError, NotFoundError
from components.server.component import ServerArgs
from components.server.spec import SERVER_DIR, BindMount, ContainerSpec, container_spec, docker_run_args
from tests.fixtures.docker import DockerEngine, wait_health
from tests.support import free_port, make_wheel

pytestmark = [pytest.mark.docker, pytest.mark.slow]

READY_TIMEOUT = 90.0


@dataclass
class Started:
    """A running test container and how to reach it."""

    name: str
    url: str
    password: str


class Containers:
    """Starts containers from a spec and removes every one of them at the end of the test."""

    def __init__(self, engine: DockerEngine, workdir: Path) -> None:
        self.engine = engine
        self.workdir = workdir
        self.names: list[str] = []

    def env_file(self, password: str | None) -> Path:
        """A private env file with DEVPI_PASSWORD (or without it, for the contract test)."""
        path = self.workdir / f"env-{uuid.uuid4().hex[:8]}"
        path.touch(mode=0o600)
        path.write_text(f"DEVPI_PASSWORD={password}\n" if password is not None else "")
        return path

    def run(self, spec: ContainerSpec, password: str | None) -> Started:
        self.names.append(spec.name)
        argv = docker_run_args(spec, self.env_file(password))
        assert password is None or password not in " ".join(argv)
        self.engine.docker(*argv[1:])
        port = spec.ports[0].external
        return Started(spec.name, f"http://127.0.0.1:{port}", password or "")

    def remove(self, name: str) -> None:
        # What the Docker provider does when it replaces the container: a forced removal.
        self.engine.docker("rm", "--force", name)

    def inspect(self, name: str) -> dict[str, object]:
        return dict(json.loads(self.engine.docker("inspect", name).stdout)[0])

    def logs(self, name: str) -> str:
        proc = self.engine.docker("logs", name, check=False)
        return proc.stdout + proc.stderr

    def wait_ready(self, started: Started) -> DevpiClient:
        root = DevpiClient(started.url, "root", started.password)
        try:
            root.wait_ready(timeout=READY_TIMEOUT, interval=0.3)
        except Exception as exc:
            raise AssertionError(f"{started.name} not ready: {exc}\n{self.logs(started.name)[-3000:]}") from exc
        return root

    def cleanup(self) -> None:
        for name in self.names:
            self.engine.docker("rm", "--force", "--volumes", name, check=False)


@pytest.fixture
def containers(docker_engine: DockerEngine, tmp_path: Path) -> Iterator[Containers]:
    c = Containers(docker_engine, tmp_path)
    yield c
    c.cleanup()


def server_args(image: str, data_dir: Path) -> ServerArgs:
    """The component's settings for a loopback-only test container (the password goes separately)."""
    return ServerArgs(
        docker_host="unix:///var/run/docker.sock",
        initial_root_password="",  # not part of the spec: passed through the env file
        image=image,
        port=free_port(),
        bind_address="127.0.0.1",
        data_dir=str(data_dir),
        container_name=f"devpi-registry-test-{uuid.uuid4().hex[:8]}",
    )


def new_password() -> str:
    """A random password the image accepts (one starting with '-' breaks devpi-init; see below)."""
    return "pw" + secrets.token_urlsafe(16)


def data_folder(tmp_path: Path) -> Path:
    """A root-owned 0700 folder, as the host step creates it on RHEL."""
    path = tmp_path / "data"
    path.mkdir(mode=0o700)
    return path


def seed_package(root: DevpiClient, tmp_path: Path) -> tuple[str, str]:
    """As root: user alice and index alice/dev; as alice: upload one wheel. Returns (index, sha256)."""
    alice_pw = new_password()
    root.create_user("alice", alice_pw, email="alice@example.com")
    root.create_index("alice/dev", {"bases": [], "volatile": False})
    wheel = make_wheel(tmp_path / "dist", "geek-utils", "0.1.0.dev1")
    with DevpiClient(root.url, "alice", alice_pw) as alice:
        alice.upload("alice/dev", wheel, name="geek-utils", version="0.1.0.dev1")
    files = root.release_files("alice/dev", "geek-utils", "0.1.0.dev1")
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert [(f.filename, f.sha256) for f in files] == [(wheel.name, sha)], files
    return "alice/dev", sha




class TestImageContract:
    """The image under test has what the spec relies on (and what jonasal/devpi-server has)."""

    def test_image_config(self, docker_engine: DockerEngine, devpi_image: str) -> None:
        config = json.loads(docker_engine.docker("image", "inspect", "-f", "{{json .Config}}", devpi_image).stdout)
        assert f"DEVPISERVER_SERVERDIR={SERVER_DIR}" in config["Env"]
        assert "3141/tcp" in config["ExposedPorts"]
        assert config.get("Healthcheck") is None  # the image has none: the stack declares it
        assert config.get("User") in ("", None, "root", "0")
        assert not config.get("Volumes")  # no VOLUME: without the bind mount the state dies with it

    def test_python_on_path_and_no_curl(self, docker_engine: DockerEngine, devpi_image: str) -> None:
        probe = "command -v python; command -v curl || echo no-curl"
        out = docker_engine.docker("run", "--rm", "--network", "none", "--entrypoint", "sh", devpi_image,
                                   "-c", probe).stdout.split()
        assert out[0].endswith("/python") and out[1] == "no-curl", out


class TestDataSurvivesUpgrade:
    """The stack's container keeps everything in the host folder: a replacement loses nothing."""

    def test_package_and_hash_survive_replacement_by_a_new_image(
        self, containers: Containers, devpi_image: str, devpi_upgrade_image: str, tmp_path: Path
    ) -> None:
        data = data_folder(tmp_path)
        args = server_args(devpi_image, data)
        spec = container_spec(args)
        assert spec.data_mount.container_path == SERVER_DIR
        password = new_password()

        first = containers.run(spec, password)
        with containers.wait_ready(first) as root:
            index, sha = seed_package(root, tmp_path)
        assert (data / ".serverversion").is_file(), sorted(p.name for p in data.iterdir())
        assert wait_health(containers, first.name) == "healthy", containers.logs(first.name)[-2000:]
        logs = containers.logs(first.name)
        assert password not in logs
        info = containers.inspect(first.name)
        assert "DEVPISERVER_NO_ROOT_PYPI=1" in json.dumps(info["Config"])
        assert info["HostConfig"]["RestartPolicy"]["Name"] == "always"  # type: ignore[index]
        assert password not in json.dumps(info["Args"]) + json.dumps(info["Config"]["Cmd"])  # type: ignore[index]

        # The upgrade: a different image, a forced removal, the same name, port and data folder.
        # DEVPI_PASSWORD changes too, as a careless rotation would: only the first init reads it.
        containers.remove(first.name)
        upgraded_spec = container_spec(replace(args, image=devpi_upgrade_image))
        second = containers.run(upgraded_spec, new_password())
        assert containers.inspect(second.name)["Config"]["Image"] == devpi_upgrade_image  # type: ignore[index]
        with containers.wait_ready(replace(second, password=password)) as root:
            root.login()  # root kept the first password (a fresh login: tokens died with the old container)
            files = root.release_files(index, "geek-utils", "0.1.0.dev1")
            assert [f.sha256 for f in files] == [sha], files
            assert hashlib.sha256(root.download(files[0].href)).hexdigest() == sha
            assert "alice" in root.list_users()
        with DevpiClient(second.url, "root", second.password) as wrong, pytest.raises(AuthenticationError):
            wrong.login()


class TestGuideMountLosesData:
    """Regression: the deployment guide mounts the data folder at /data, where the image keeps nothing."""

    def test_data_mount_loses_the_package_on_recreation(
        self, containers: Containers, devpi_image: str, tmp_path: Path
    ) -> None:
        data = data_folder(tmp_path)
        spec = container_spec(server_args(devpi_image, data))
        guide_spec = replace(spec, mounts=(BindMount(str(data), "/data", "Z"),))
        password = new_password()

        first = containers.run(guide_spec, password)
        with containers.wait_ready(first) as root:
            seed_package(root, tmp_path)
        containers.remove(first.name)
        assert list(data.iterdir()) == [], "the image wrote into /data: the regression premise changed"

        second = containers.run(guide_spec, password)
        with containers.wait_ready(second) as root:
            assert "alice" not in root.list_users()
            with pytest.raises(NotFoundError):
                root.get_index("alice/dev")


class TestPasswordContract:
    """DEVPI_PASSWORD is required on every start; without it the container exits 1 with a message.

    Run with ``restart=no`` so ``docker wait`` sees the first exit (``always`` would crash-loop).
    """

    def _exit(self, c: Containers, spec: ContainerSpec, password: str | None = None) -> tuple[int, str]:
        started = c.run(replace(spec, restart="no"), password)
        code = int(c.engine.docker("wait", started.name, timeout=60).stdout.strip())
        return code, c.logs(started.name)

    def test_fresh_start_without_password_exits_1(
        self, containers: Containers, devpi_image: str, tmp_path: Path
    ) -> None:
        data = data_folder(tmp_path)
        code, logs = self._exit(containers, container_spec(server_args(devpi_image, data)))
        assert code == 1, logs
        assert "Root password cannot be empty" in logs
        assert list(data.iterdir()) == []  # nothing initialised with an empty root password

    def test_initialised_server_without_password_still_exits_1(
        self, containers: Containers, devpi_image: str, tmp_path: Path
    ) -> None:
        data = data_folder(tmp_path)
        spec = container_spec(server_args(devpi_image, data))
        first = containers.run(spec, new_password())
        # The entrypoint checks the password before anything else: an initialised folder is enough.
        deadline = time.monotonic() + READY_TIMEOUT
        while not (data / ".serverversion").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        logs = containers.logs(first.name)
        containers.remove(first.name)
        assert (data / ".serverversion").is_file(), logs
        code, logs = self._exit(containers, spec)
        assert code == 1 and "Root password cannot be empty" in logs, logs

    def test_password_starting_with_dash_breaks_first_start(
        self, containers: Containers, devpi_image: str, tmp_path: Path
    ) -> None:
        """Why DevpiServer refuses such a password: the entrypoint puts it on devpi-init's command line."""
        data = data_folder(tmp_path)
        password = "-" + new_password()
        code, logs = self._exit(containers, container_spec(server_args(devpi_image, data)), password)
        assert code != 0 and "--root-passwd: expected one argument" in logs, logs
        assert password not in logs
