"""``devpi-lifecycle status`` lists every node — the primary and each replica — with role, serial, lag
and last contact, against a real primary and a real replica devpi-server on loopback; prune's load
gate consults the declared replicas' own /+status.

devpi-server 6.20.3 facts this file relies on (found by running it): the primary must be started with
``--role primary`` (a standalone server answers the replication protocol with 403 "Replication
protocol disabled"); a replica's empty folder must first be ``devpi-init --primary-url URL``-ed
(``devpi-server`` alone refuses a folder without data) and the replica then started with the same
``--primary-url`` and the primary's ``--secretfile``.
"""

from __future__ import annotations

import dataclasses
import io
import json
import subprocess
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from components.config.model import HostConfig, ReplicaConfig
from components.config.sources import load_stack_file
from components.devpi.client import DevpiClient
from components.devpi.errors import ServerUnreachableError
from components.lifecycle import cli
from components.lifecycle.cli import main
from components.lifecycle.common import BusyGate, BusyLimits
from components.lifecycle.status import NodeTarget, replica_nodes
from tests.fixtures.devpi import BIN, DevpiServer, start_devpi_server
from tests.support import free_port, make_wheel, stop_process

pytestmark = pytest.mark.devpi


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def start_replica(base: Path, primary: DevpiServer, timeout: float = 60.0) -> Replica:
    """A devpi-server replica of ``primary`` on a free port, with the primary's secret file."""
    serverdir, log = base / "replica", base / "replica.log"
    subprocess.run([str(BIN / "devpi-init"), "--serverdir", str(serverdir), "--primary-url", primary.url],
                   check=True, capture_output=True, timeout=60)
    port = free_port()
    proc = subprocess.Popen([str(BIN / "devpi-server"), "--primary-url", primary.url, "--serverdir", str(serverdir),
                             "--host", "127.0.0.1", "--port", str(port),
                             "--secretfile", str(primary.serverdir / ".secret")],
                            stdout=log.open("ab"), stderr=subprocess.STDOUT)
    replica = Replica(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"replica exited: {log.read_text()[-2000:]}")
        try:
            if requests.get(f"{replica.url}/+api", timeout=1).status_code == 200:
                return replica
        except requests.RequestException:
            pass
        time.sleep(0.2)
    stop_process(proc)
    raise RuntimeError(f"replica did not start in {timeout} s: {log.read_text()[-2000:]}")


def status_of(url: str) -> dict[str, Any]:
    return DevpiClient(url).status()


def wait_caught_up(primary: DevpiServer, replica: Replica, timeout: float = 60.0) -> int:
    """The serial both have once the replica caught up with the primary (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        want, have = status_of(primary.url)["serial"], status_of(replica.url)["serial"]
        if have >= want:
            return int(want)
        if time.monotonic() > deadline:
            raise AssertionError(f"replica still at serial {have}, primary at {want} after {timeout} s")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[DevpiServer, Replica]]:
    primary = start_devpi_server(tmp_path_factory.mktemp("primary"), extra_args=("--role", "primary"))
    replica = None
    try:
        replica = start_replica(tmp_path_factory.mktemp("replica"), primary)
        admin = DevpiClient(primary.url, "root", primary.root_password)
        admin.create_user("team", "pw-team")
        admin.create_index("team/dev", {"volatile": True, "acl_upload": ["team"]})
        wait_caught_up(primary, replica)
        yield primary, replica
    finally:
        if replica is not None:
            stop_process(replica.proc)
        primary.stop()


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, out=out, err=err, env=env or {})
    return code, out.getvalue(), err.getvalue()


def nodes_of(argv: list[str], expect: int = 0) -> list[dict[str, Any]]:
    code, out, err = run([*argv, "--json"])
    assert code == expect, err
    return list(json.loads(out)["nodes"])


class TestStatusListsEveryNode:
    def test_primary_and_replica_with_serial_lag_and_last_contact(self, cluster: tuple[DevpiServer, Replica]) -> None:
        primary, replica = cluster
        serial = wait_caught_up(primary, replica)
        nodes = nodes_of(["status", "--url", primary.url, "--replica", replica.url])
        assert [(n["name"], n["role"], n["declared"]) for n in nodes] == [
            ("primary", "primary", True), (replica.url, "replica", True)]
        first, second = nodes
        assert first["serial"] >= serial and first["lag"] == 0 and first["problem"] is None
        assert second["reachable"] is True and second["problem"] is None
        assert second["serial"] == serial and second["lag"] == first["serial"] - second["serial"]
        assert second["seconds_since_contact"] is not None and second["seconds_since_contact"] < 60
        assert second["last_contact"].endswith("+00:00")

    def test_lag_follows_a_commit_until_the_replica_catches_up(self, cluster: tuple[DevpiServer, Replica],
                                                               tmp_path: Path, unique: str) -> None:
        primary, replica = cluster
        team = DevpiClient(primary.url, "team", "pw-team")
        for i in range(3):
            team.upload("team/dev", make_wheel(tmp_path / str(i), f"lag-{unique}", f"1.{i}"),
                        name=f"lag-{unique}", version=f"1.{i}")
        serial = wait_caught_up(primary, replica)
        nodes = nodes_of(["status", "--url", primary.url, "--replica", replica.url])
        assert nodes[1]["serial"] >= serial and nodes[1]["lag"] == nodes[0]["serial"] - nodes[1]["serial"]

    def test_a_polling_replica_that_is_not_declared_is_listed_as_such(
            self, cluster: tuple[DevpiServer, Replica]) -> None:
        primary, replica = cluster
        wait_caught_up(primary, replica)
        nodes = nodes_of(["status", "--url", primary.url])
        undeclared = [n for n in nodes if not n["declared"]]
        assert len(undeclared) == 1, nodes
        assert undeclared[0]["role"] == "replica" and undeclared[0]["reachable"] is None
        assert undeclared[0]["serial"] is not None and undeclared[0]["lag"] is not None

    def test_an_unreachable_declared_replica_is_a_problem_exit_3(self, cluster: tuple[DevpiServer, Replica]) -> None:
        primary, replica = cluster
        gone = f"http://127.0.0.1:{free_port()}"
        code, out, err = run(["status", "--url", primary.url, "--replica", replica.url, "--replica", gone,
                              "--timeout", "2", "--json"])
        assert code == 3, err
        doc = json.loads(out)
        bad = [n for n in doc["nodes"] if n["url"] == gone]
        assert len(bad) == 1 and bad[0]["reachable"] is False and "unreachable" in bad[0]["problem"]
        assert doc["ok"] is False
        code, human, _ = run(["status", "--url", primary.url, "--replica", gone, "--timeout", "2"])
        assert code == 3
        lines = human.splitlines()
        table = lines[lines.index("nodes:") + 1:]
        assert table[0].split()[:5] == ["node", "role", "url", "serial", "lag"]
        assert any(gone in line and "unreachable" in line for line in table)

    def test_the_stack_files_replicas_are_the_declared_nodes(self, cluster: tuple[DevpiServer, Replica],
                                                             tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        primary, replica = cluster
        stack_file = tmp_path / "Pulumi.dev.yaml"
        stack_file.write_text(f"config:\n  devpi-registry:serverUrl: {primary.url}\n")
        declared = ReplicaConfig(name="eu", host=HostConfig(address="127.0.0.1"), url=replica.url,
                                 primary_url=primary.url, max_lag=0)
        # the replicas as the loader would give them (the stack file's replicas: keys are the config's)
        monkeypatch.setattr(cli, "read_stack_config", lambda path: dataclasses.replace(
            load_stack_file(path), replicas=(declared,)))
        wait_caught_up(primary, replica)
        nodes = nodes_of(["status", "--stack-config", str(stack_file)])
        assert [n["name"] for n in nodes if n["declared"]] == ["primary", "eu"]
        assert all(n["declared"] for n in nodes), "the polling replica is matched to its declaration (by uuid)"


class TestReplicaNodesArePure:
    def target(self, url: str, max_lag: int | None = 10) -> NodeTarget:
        return NodeTarget(url, DevpiClient(url), max_lag)

    def test_lag_beyond_the_limit_is_a_problem_and_contact_comes_from_the_primary(self) -> None:
        primary = {"serial": 100, "polling_replicas": {
            "u1": {"serial": 80, "last-request": 1000.0, "in-request": False, "outside-url": None}}}
        own = {"role": "REPLICA", "uuid": "u1", "serial": 80, "primary-contacted-at": 900.0}
        [node] = replica_nodes(primary, [(self.target("http://r1"), own)], now=1010.0)
        assert node.lag == 20 and node.problem == "20 serials behind the primary (limit 10)"
        assert node.last_contact == 1000.0

    def test_without_the_primary_the_replicas_own_view_is_used(self) -> None:
        own = {"role": "REPLICA", "uuid": "u1", "serial": 7, "primary-serial": 9, "primary-contacted-at": 900.0}
        [node] = replica_nodes(None, [(self.target("http://r1"), own)], now=1000.0)
        assert (node.lag, node.last_contact, node.problem) == (2, 900.0, None)

    def test_a_standalone_server_declared_as_replica_is_a_problem(self) -> None:
        [node] = replica_nodes({"serial": 1}, [(self.target("http://r1"), {"role": "MASTER", "serial": 1})], 0.0)
        assert node.problem == "not a replica (devpi reports role 'MASTER')"


class TestBusyGateConsultsDeclaredReplicas:
    def gate(self, replicas: Mapping[str, Any], notes: list[str]) -> BusyGate:
        clock = iter(range(10_000))
        return BusyGate(lambda: {"serial": 5000}, replicas=replicas, limits=BusyLimits(max_replica_lag=100),
                        interval=0, poll=0, max_wait=50, sleep=lambda _s: None, clock=lambda: float(next(clock)),
                        notify=notes.append)

    def test_a_lagging_declared_replica_pauses_until_it_catches_up(self) -> None:
        serials = iter([4000, 4500, 4950])
        notes: list[str] = []
        gate = self.gate({"eu": lambda: {"serial": next(serials)}}, notes)
        gate.check()
        assert gate.pauses == 1 and "replica eu is 1000 serials behind (limit 100)" in notes[0]

    def test_an_unreachable_declared_replica_is_reported_once_and_not_waited_for(self) -> None:
        def down() -> Mapping[str, Any]:
            raise ServerUnreachableError("devpi-server at http://r is unreachable")
        notes: list[str] = []
        gate = self.gate({"eu": down}, notes)
        gate.check()
        gate.check()
        assert gate.pauses == 0 and len(notes) == 1 and "declared replica eu is unreachable" in notes[0]


class TestPruneWithReplicas:
    def test_prune_applies_with_a_healthy_and_reports_an_unreachable_replica(
            self, cluster: tuple[DevpiServer, Replica], tmp_path: Path, unique: str) -> None:
        primary, replica = cluster
        team = DevpiClient(primary.url, "team", "pw-team")
        name = f"prune-{unique}"
        for v in ("1.0.dev1", "1.0.dev2", "1.0.dev3"):
            team.upload("team/dev", make_wheel(tmp_path / v, name, v), name=name, version=v)
        gone = f"http://127.0.0.1:{free_port()}"
        code, out, err = run(["prune", "--url", primary.url, "--user", "team", "--index", "team/dev",
                              "--keep-last", "1", "--include", name, "--yes", "--replica", replica.url,
                              "--replica", gone, "--timeout", "2", "--json"], env={"DEVPI_PASSWORD": "pw-team"})
        assert code == 0, err
        assert json.loads(out)["indexes"][0]["removed"] == 2
        assert f"declared replica {gone} is unreachable" in err
        assert sorted(team.get_project("team/dev", name)) == ["1.0.dev3"]
        wait_caught_up(primary, replica)
        assert sorted(DevpiClient(replica.url).get_project("team/dev", name)) == ["1.0.dev3"]
