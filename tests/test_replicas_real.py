"""devpi replication for real: one primary and two replicas on loopback (tests/fixtures/replicas.py),
each replica started with the replica container's own command (an EMPTY folder, ``devpi-init --role
replica``, then devpi-server), the primary with ``--role primary`` and the shared secret file.

Installs use real pip against a replica's simple index; logins use devpi's HTTP API (``POST
/+login``, ``X-Devpi-Auth``). Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from components.devpi.client import DevpiClient
from components.providers.replica import replica_state
from tests.fixtures import replicas
from tests.fixtures.replicas import (
    INDEX,
    JSON,
    Cluster,
    make_wheels,
    served,
    wait_until,
)
from tests.support import make_wheel

# the fixture (tests/conftest.py does not list tests.fixtures.replicas among its plugins)
replica_cluster = replicas.replica_cluster
pytestmark = [pytest.mark.devpi, pytest.mark.slow]

SYNC_TIMEOUT = 30.0


def pip_download(index_url: str, requirement: str, dest: Path) -> Path:
    """Real pip: download ``requirement`` (no dependencies) from ``index_url``; returns the file."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--disable-pip-version-check",
         "--index-url", index_url, "--dest", str(dest), requirement],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    files = sorted(dest.iterdir())
    assert len(files) == 1, files
    return files[0]


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def auth(header: str) -> dict[str, str]:
    return {**JSON, "X-Devpi-Auth": header}


class TestReplicationOnLoopback:
    def test_replicas_run_as_replicas_from_an_empty_folder(self, replica_cluster: Cluster) -> None:
        for node in replica_cluster.replicas.values():
            status = node.status()
            assert status["role"] == "REPLICA" and status["primary-url"] == replica_cluster.primary.url
            log = node.log()
            assert "devpi-init --role replica --primary-url" in log, log[-2000:]
            assert "running with role 'replica'" in log
            # devpi-init as a replica creates no root/pypi of its own: root comes from the primary
            assert "root" in requests.get(node.url, headers=JSON, timeout=5).json()["result"]
        assert replica_cluster.primary.status()["polling_replicas"], "the primary sees no polling replica"

    def test_upload_to_primary_installs_with_pip_from_each_replica(
        self, replica_cluster: Cluster, tmp_path: Path
    ) -> None:
        wheel = make_wheel(tmp_path / "dist", "fanout-pkg", "1.0.0", payload="# fanout\n")
        start = time.monotonic()
        replica_cluster.upload_many([wheel])
        for name, node in replica_cluster.replicas.items():
            wait_until(lambda n=node: served(n.url, "fanout-pkg", wheel.name), SYNC_TIMEOUT,
                       f"replica {name} serves {wheel.name}")
            got = pip_download(f"{node.url}/{INDEX}/+simple/", "fanout-pkg==1.0.0", tmp_path / name)
            assert got.name == wheel.name and sha256(got) == sha256(wheel)
        assert time.monotonic() - start < SYNC_TIMEOUT * 2

    def test_login_on_primary_works_on_a_replica(self, replica_cluster: Cluster) -> None:
        header = replica_cluster.login(replica_cluster.primary.url, "alice", replica_cluster.alice_password)
        for node in replica_cluster.replicas.values():
            api = requests.get(f"{node.url}/+api", headers=auth(header), timeout=5).json()["result"]
            assert api["authstatus"][:2] == ["ok", "alice"], api["authstatus"]
        # a token the secret did not sign is anonymous on a replica
        forged = "alice:" + "x" * 40
        import base64

        bad = requests.get(f"{node.url}/+api", headers=auth(base64.b64encode(forged.encode()).decode()), timeout=5)
        assert bad.json()["result"]["authstatus"][0] != "ok"

    def test_upload_through_a_replica_lands_on_the_primary(self, replica_cluster: Cluster, tmp_path: Path) -> None:
        replica = replica_cluster.replicas["r1"]
        wheel = make_wheel(tmp_path / "dist", "via-replica", "2.0.0", payload="# via replica\n")
        header = replica_cluster.login(replica.url, "alice", replica_cluster.alice_password)  # login forwarded too
        with wheel.open("rb") as fh:
            resp = requests.post(
                f"{replica.url}/{INDEX}/", headers={"X-Devpi-Auth": header},
                data={":action": "file_upload", "name": "via-replica", "version": "2.0.0", "protocol_version": "1"},
                files={"content": (wheel.name, fh, "application/octet-stream")}, timeout=60,
            )
        assert resp.status_code == 200, resp.text[:500]
        assert resp.headers.get("X-Devpi-Proxy") == "replica"  # devpi relayed it to the primary
        with DevpiClient(replica_cluster.primary.url) as primary:
            files = primary.release_files(INDEX, "via-replica", "2.0.0")
        assert [f.sha256 for f in files] == [sha256(wheel)]
        # the replica waited for the change to come back before answering (proxy_write_to_primary)
        assert served(replica.url, "via-replica", wheel.name)

    def test_stopped_replica_catches_up_after_restart(self, replica_cluster: Cluster, tmp_path: Path) -> None:
        replica = replica_cluster.replicas["r2"]
        replica.stop()
        wheel = make_wheel(tmp_path / "dist", "while-down", "1.0.0")
        replica_cluster.upload_many([wheel])
        primary_serial = replica_cluster.primary.status()["serial"]
        replica.start()
        wait_until(lambda: replica.status()["serial"] >= primary_serial, SYNC_TIMEOUT, "r2 catches up")
        wait_until(lambda: served(replica.url, "while-down", wheel.name), SYNC_TIMEOUT, "r2 serves the file")
        got = pip_download(f"{replica.url}/{INDEX}/+simple/", "while-down==1.0.0", tmp_path / "dl")
        assert sha256(got) == sha256(wheel)
        state = replica_state(replica.url, replica_cluster.primary.url)
        assert state.problem(max_lag=0) is None and state.lag == 0

    def test_replicas_serve_installs_while_the_primary_is_down(
        self, replica_cluster: Cluster, tmp_path: Path
    ) -> None:
        wheel = make_wheel(tmp_path / "dist", "survivor", "1.0.0", payload="# survivor\n")
        replica_cluster.upload_many([wheel])
        for node in replica_cluster.replicas.values():
            wait_until(lambda n=node: served(n.url, "survivor", wheel.name), SYNC_TIMEOUT, f"{node.name} synced")
            # the file itself is on the replica's disk before the primary goes (files replicate too)
            wait_until(lambda n=node: n.status()["replica-in-sync-at"] is not None, SYNC_TIMEOUT, "files synced")
        replica_cluster.primary.stop()
        try:
            for name, node in replica_cluster.replicas.items():
                got = pip_download(f"{node.url}/{INDEX}/+simple/", "survivor==1.0.0", tmp_path / name)
                assert sha256(got) == sha256(wheel)
        finally:
            replica_cluster.primary.start()

    def test_login_tokens_survive_a_primary_restart(self, replica_cluster: Cluster) -> None:
        header = replica_cluster.login(replica_cluster.primary.url, "alice", replica_cluster.alice_password)
        replica_cluster.primary.stop()
        replica_cluster.primary.start()
        for url in [replica_cluster.primary.url, *(n.url for n in replica_cluster.replicas.values())]:
            api = requests.get(f"{url}/+api", headers=auth(header), timeout=5).json()["result"]
            assert api["authstatus"][:2] == ["ok", "alice"], (url, api["authstatus"])

    def test_fresh_replica_syncs_200_files(self, replica_cluster: Cluster, tmp_path: Path) -> None:
        wheels = make_wheels(tmp_path / "bulk", "bulk", 200)
        seconds = replica_cluster.upload_many(wheels)
        primary = replica_cluster.primary
        expected: dict[str, str] = {}
        with DevpiClient(primary.url) as c:
            for i in range(200):
                (f,) = c.release_files(INDEX, f"bulk-{i}", "1.0")
                expected[f.filename] = f.sha256
        assert expected == {w.name: sha256(w) for w in wheels}
        target = primary.status()["serial"]

        start = time.monotonic()
        fresh = replica_cluster.add_replica("fresh")
        wait_until(lambda: fresh.status()["serial"] >= target, 60, "the fresh replica reaches the primary's serial")
        wait_until(lambda: fresh.status()["replica-in-sync-at"] is not None, 60, "the fresh replica's files")
        sync_seconds = time.monotonic() - start
        print(f"200 uploads in {seconds:.1f} s; fresh replica synced in {sync_seconds:.1f} s")

        # every file from the fresh replica's own disk: the primary is down while we read them
        primary.stop()
        try:
            with DevpiClient(fresh.url) as c:
                got = {}
                for i in range(200):
                    (f,) = c.release_files(INDEX, f"bulk-{i}", "1.0")
                    got[f.filename] = hashlib.sha256(c.download(f.href)).hexdigest()
        finally:
            primary.start()
        assert got == expected
        assert not fresh.status()["replication-errors"]
