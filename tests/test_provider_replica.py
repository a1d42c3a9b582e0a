"""DevpiReplicaReady against a real primary and real replicas (tests/fixtures/replicas.py): ready
when caught up, a clear error when not, re-waits on a new container, reads without failing, and
refuses what is not a replica of this primary."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from components.providers.replica import DevpiReplicaReady, DevpiReplicaReadyProvider, ReplicaState
from components.providers.secret import new_secret
from tests.fixtures import replicas
from tests.fixtures.replicas import Cluster
from tests.mocks import MockRecorder, resolve, use_mocks
from tests.support import free_port, make_wheel

# the fixture (tests/conftest.py does not list tests.fixtures.replicas among its plugins)
replica_cluster = replicas.replica_cluster
pytestmark = [pytest.mark.devpi]


def props(cluster: Cluster, replica_url: str, **changes: object) -> dict[str, object]:
    p = DevpiReplicaReadyProvider()
    base = {"replica_url": replica_url, "primary_url": cluster.primary.url, "max_lag": 0,
            "ready_timeout": 30, "server_id": "container-1", "ca_bundle": None}
    checked = p.check({}, {**base, **changes})
    assert not checked.failures, checked.failures
    return dict(checked.inputs)


class TestReadiness:
    def test_create_waits_until_caught_up(self, replica_cluster: Cluster, tmp_path: Path) -> None:
        replica = replica_cluster.replicas["r1"]
        replica_cluster.upload_many([make_wheel(tmp_path, "ready-pkg", "1.0")])
        target = replica_cluster.primary.status()["serial"]
        created = DevpiReplicaReadyProvider().create(props(replica_cluster, replica.url))
        outs = created.outs or {}
        assert created.id == f"replica:{replica.url}"
        assert outs["lag"] == 0 and outs["serial"] >= target and outs["primary_serial"] >= target
        assert outs["replica_url"] == replica.url and outs["server_id"] == "container-1"

    def test_new_container_re_waits(self, replica_cluster: Cluster) -> None:
        p = DevpiReplicaReadyProvider()
        replica = replica_cluster.replicas["r2"]
        olds = props(replica_cluster, replica.url)
        news = props(replica_cluster, replica.url, server_id="container-2")
        d = p.diff("id", olds, news)
        assert d.changes is True and not d.replaces
        assert p.diff("id", olds, dict(olds)).changes is False
        outs = p.update("id", olds, news).outs or {}
        assert outs["server_id"] == "container-2" and outs["lag"] == 0

    def test_read_reports_serials_and_survives_a_stopped_replica(self, replica_cluster: Cluster) -> None:
        p = DevpiReplicaReadyProvider()
        replica = replica_cluster.replicas["r2"]
        state = props(replica_cluster, replica.url)
        read = p.read("id", state)
        assert isinstance((read.outs or {})["serial"], int) and (read.outs or {})["lag"] == 0
        replica.stop()
        try:
            down = p.read("id", state).outs or {}
        finally:
            replica.start()
        assert down["serial"] is None and down["lag"] is None and down["replica_url"] == replica.url
        p.delete("id", state)  # nothing to do, nothing raised

    def test_the_primary_is_not_a_replica(self, replica_cluster: Cluster) -> None:
        start = time.monotonic()
        with pytest.raises(Exception, match=r"runs as MASTER, not as a replica") as err:
            DevpiReplicaReadyProvider().create(props(replica_cluster, replica_cluster.primary.url))
        assert replica_cluster.primary.url in str(err.value)
        assert time.monotonic() - start < 10, "a wrong role fails at once, without waiting"

    def test_unreachable_replica_times_out_naming_it(self, replica_cluster: Cluster) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        start = time.monotonic()
        with pytest.raises(Exception, match=r"was not ready after 2 s") as err:
            DevpiReplicaReadyProvider().create(props(replica_cluster, url, ready_timeout=2))
        assert url in str(err.value) and "does not answer" in str(err.value)
        assert time.monotonic() - start < 15

    def test_replica_with_another_secret_never_becomes_ready(self, replica_cluster: Cluster, tmp_path: Path) -> None:
        """The replica authenticates to the primary with a key derived from the secret file: another
        secret means 403 on every changelog fetch, and the gate says so instead of passing."""
        folder = tmp_path / "other-secret"
        folder.mkdir(mode=0o700)
        other = folder / "secret"
        other.touch(mode=0o600)
        other.write_text(new_secret())
        node = replica_cluster.add_replica("wrong-secret", start=False, secret_file=other)
        del replica_cluster.replicas["wrong-secret"]  # not one of the cluster's working replicas
        node.start()
        try:
            with pytest.raises(Exception, match=r"has not heard from its primary") as err:
                DevpiReplicaReadyProvider().create(props(replica_cluster, node.url, ready_timeout=4))
            assert node.url in str(err.value) and "secretfile" in str(err.value)
            assert "403" in node.log()
        finally:
            node.stop()


class TestPure:
    def test_lag_message_names_both_serials(self) -> None:
        state = ReplicaState(role="REPLICA", serial=90, primary_serial=100, heard_from_primary=True,
                             replica_primary_uuid="a", primary_uuid="a")
        assert state.lag == 10
        assert state.problem(max_lag=10) is None
        assert state.problem(max_lag=9) == "its serial 90 is 10 behind the primary's 100 (max_lag 9)"

    def test_another_primarys_replica_is_refused(self) -> None:
        state = ReplicaState(role="REPLICA", serial=5, primary_serial=5, heard_from_primary=True,
                             replica_primary_uuid="other", primary_uuid="this")
        assert "not this primary" in (state.problem(10) or "")

    @pytest.mark.parametrize(("key", "value"), [("max_lag", -1), ("ready_timeout", 0), ("replica_url", "ftp://x"),
                                                ("primary_url", None)])
    def test_check_refuses(self, key: str, value: object) -> None:
        base = {"replica_url": "http://r:3141", "primary_url": "http://p:3141", "max_lag": 10, "ready_timeout": 60}
        failures = DevpiReplicaReadyProvider().check({}, {**base, key: value}).failures
        assert [f.property for f in failures] == [key]

    def test_defaults_and_wire_floats(self) -> None:
        inputs = DevpiReplicaReadyProvider().check(
            {}, {"replica_url": "http://r:3141", "primary_url": "http://p:3141", "max_lag": 3.0}).inputs
        assert inputs["max_lag"] == 3 and inputs["ready_timeout"] == 180

    def test_resource_registers_its_inputs(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):
            r = DevpiReplicaReady("r1-ready", replica_url="http://r:3141", primary_url="http://p:3141",
                                  server_id="cid", max_lag=5)
            resolve(r.urn)
        rec = recorder.one("pulumi-python:dynamic/devpi:ReplicaReady")
        assert rec.inputs["replica_url"] == "http://r:3141" and rec.inputs["max_lag"] == 5
        assert rec.inputs["server_id"] == "cid"
