"""The replica container the stack declares, on the real Docker engine with the local devpi image.

A primary container (``serves_replicas``: ``--role primary``) and a replica container on one user
network, both mounting the same secret folder read-only; the replica's ``primary_url`` is the
primary's network alias. Both come from ``docker_run_args(container_spec(ServerArgs(...)))``. The
replica starts on an EMPTY data folder and must come up as a replica — never through the image's
entrypoint, which would ``devpi-init`` a second primary — and keep its data and identity when the
container is recreated from another image (an upgrade). devpi's default argon2 cost is kept here (the
real thing), so waits are generous.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import requests

from components.devpi.client import DevpiClient
from components.devpi.errors import AuthenticationError
from components.providers.replica import wait_replica
from components.providers.secret import new_secret
from components.server.component import ServerArgs
from components.server.spec import NETWORK_ALIAS, NetworkAttachment, container_spec
from tests.fixtures.docker import DockerEngine
from tests.support import free_port, make_wheel
from tests.test_container_real import Containers, data_folder, new_password

pytestmark = [pytest.mark.docker, pytest.mark.slow]

READY_TIMEOUT = 300.0
JSON = {"Accept": "application/json"}


@pytest.fixture
def containers(docker_engine: DockerEngine, tmp_path: Path) -> Iterator[Containers]:
    c = Containers(docker_engine, tmp_path)
    yield c
    c.cleanup()


@pytest.fixture
def network(docker_engine: DockerEngine) -> Iterator[str]:
    name = f"devpi-registry-test-repl-{uuid.uuid4().hex[:8]}"
    docker_engine.docker("network", "create", name)
    yield name
    docker_engine.docker("network", "rm", name, check=False)


def secret_folder(tmp_path: Path) -> Path:
    """What the host step writes: a 0700 folder with the generated secret in a 0600 file."""
    folder = tmp_path / "secret"
    folder.mkdir(mode=0o700)
    secret = folder / "secret"
    secret.touch(mode=0o600)
    secret.write_text(new_secret())
    return folder


def wait_answering(c: Containers, name: str, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{url}/+api", timeout=3).status_code == 200:
                return
        except requests.RequestException:
            pass
        state = c.inspect(name)["State"]
        assert isinstance(state, dict)
        if not state.get("Running"):
            pytest.fail(f"{name} stopped: {c.logs(name)[-3000:]}")
        time.sleep(0.5)
    pytest.fail(f"{name} did not answer in {READY_TIMEOUT} s: {c.logs(name)[-3000:]}")


def status(url: str) -> dict[str, object]:
    return dict(requests.get(f"{url}/+status", headers=JSON, timeout=10).json()["result"])


class TestReplicaContainer:
    def test_replica_starts_as_replica_on_an_empty_folder_syncs_and_survives_recreation(
        self, containers: Containers, network: str, devpi_image: str, devpi_upgrade_image: str, tmp_path: Path
    ) -> None:
        secret_dir = secret_folder(tmp_path)
        primary_data = data_folder(tmp_path)
        primary_spec = container_spec(ServerArgs(
            docker_host="unix:///var/run/docker.sock", image=devpi_image, port=free_port(), bind_address="127.0.0.1",
            data_dir=str(primary_data), secret_dir=str(secret_dir), network=network, serves_replicas=True,
            container_name=f"devpi-registry-test-primary-{uuid.uuid4().hex[:8]}",
        ))
        assert primary_spec.command[:2] == ("--role", "primary")
        password = new_password()
        primary = containers.run(primary_spec, password)
        wait_answering(containers, primary.name, primary.url)

        replica_data = tmp_path / "replica-data"
        replica_data.mkdir(mode=0o700)
        replica_args = ServerArgs(
            docker_host="unix:///var/run/docker.sock", image=devpi_image, port=free_port(), bind_address="127.0.0.1",
            data_dir=str(replica_data), secret_dir=str(secret_dir), primary_url=f"http://{NETWORK_ALIAS}:3141",
            container_name=f"devpi-registry-test-replica-{uuid.uuid4().hex[:8]}",
        )
        # On the primary's network under its own alias ("devpi" is the primary's name there).
        replica_spec = replace(container_spec(replica_args), networks=(NetworkAttachment(network, ("replica",)),))
        assert replica_spec.is_replica and replica_spec.secret_env == ()
        # A random DEVPI_PASSWORD in its environment must change nothing: the replica never reads it.
        stray = new_password()
        replica = containers.run(replica_spec, stray)
        wait_answering(containers, replica.name, replica.url)

        # --- replica mode from the first start, never a primary
        logs = containers.logs(replica.name)
        assert "devpi-init --role replica --primary-url http://devpi:3141" in logs, logs[-3000:]
        assert "No server state" not in logs and "[entrypoint]" not in logs, "the image's entrypoint ran"
        assert "running with role 'replica'" in logs
        nodeinfo = json.loads((replica_data / ".nodeinfo").read_text())
        assert nodeinfo["role"] == "replica" and nodeinfo["masterurl"] == "http://devpi:3141"
        assert status(replica.url)["role"] == "REPLICA"
        with DevpiClient(replica.url, "root", stray) as wrong, pytest.raises(AuthenticationError):
            wrong.login()  # no root of its own: the login is relayed to the primary, which refuses it
        assert stray not in logs

        # --- data syncs (the primary's root logs in through the replica: one shared secret)
        wait_replica(replica.url, primary.url, max_lag=0, ready_timeout=READY_TIMEOUT)
        with DevpiClient(primary.url, "root", password) as root:
            root.create_user("alice", "alice-pw-1", email="alice@example.com")
            root.create_index("alice/dev", {"bases": [], "volatile": False})
        wheel = make_wheel(tmp_path / "dist", "replicated", "1.0.0")
        with DevpiClient(primary.url, "alice", "alice-pw-1") as alice:
            alice.upload("alice/dev", wheel, name="replicated", version="1.0.0")
        sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
        synced = wait_replica(replica.url, primary.url, max_lag=0, ready_timeout=120)
        with DevpiClient(replica.url, "root", password) as via_replica:
            via_replica.login()
            (f,) = via_replica.release_files("alice/dev", "replicated", "1.0.0")
            assert f.sha256 == sha and hashlib.sha256(via_replica.download(f.href)).hexdigest() == sha

        # --- upgrade: a new image, the same folder: same identity, no second init, data kept
        containers.remove(replica.name)
        upgraded = containers.run(replace(replica_spec, image=devpi_upgrade_image), new_password())
        wait_answering(containers, upgraded.name, upgraded.url)
        logs = containers.logs(upgraded.name)
        assert "devpi-init" not in logs and "empty server directory" not in logs, logs[-3000:]
        after = status(upgraded.url)
        assert after["uuid"] == nodeinfo["uuid"] and after["role"] == "REPLICA"
        assert isinstance(after["serial"], int) and synced.serial is not None and after["serial"] >= synced.serial
        with DevpiClient(upgraded.url) as anonymous:
            (f,) = anonymous.release_files("alice/dev", "replicated", "1.0.0")
            assert hashlib.sha256(anonymous.download(f.href)).hexdigest() == sha
