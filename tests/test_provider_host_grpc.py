"""The providers inside the real dynamic-provider host, over gRPC, as the engine drives them.

Covers what direct method calls cannot: unpickling ``__provider`` in another process (the module must
import from the project dir), ``configure()`` with the stack config as the engine sends it (fully
qualified keys, the root password as a secret), the wire form of unknowns and secrets, and that no
secret leaves the host except inside fields that were secret inputs.
"""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2
from pulumi.runtime import rpc
from pulumi.runtime.proto import provider_pb2

from components.config.connection import PROJECT
from components.devpi.client import DevpiClient
from components.providers.index import DevpiIndexProvider
from components.providers.root import DevpiRootProvider
from components.providers.user import DevpiUserProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import ProviderHost, from_struct, provider_prop, secret, stack_config

pytestmark = pytest.mark.devpi


def plaintext_leaks(value: Any, needle: str, path: str = "") -> list[str]:
    """Paths where ``needle`` occurs outside a secret wrapper."""
    if rpc.is_rpc_secret(value):
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in plaintext_leaks(v, needle, f"{path}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in plaintext_leaks(v, needle, f"{path}[{i}]")]
    return [path or "."] if isinstance(value, str) and needle in value else []


def user_inputs(name: str, password: str, **over: Any) -> dict[str, Any]:
    return {"__provider": provider_prop(DevpiUserProvider()), "name": name, "password": secret(password),
            "email": f"{name}@example.com", **over}


class TestUserThroughTheHost:
    def test_full_lifecycle_keeps_secrets_wrapped(self, provider_host: ProviderHost, devpi_server: DevpiServer,
                                                  unique: str) -> None:
        name, pw = f"grpc{unique}", f"grpc-pw-{unique}"
        root_pw = devpi_server.root_password

        checked = provider_host.check({}, user_inputs(name, pw))
        assert list(checked.failures) == []
        inputs = from_struct(checked.inputs)
        assert rpc.is_rpc_secret(inputs["password"]) and inputs["password"]["value"] == pw
        assert inputs["adopt"] is False and "__provider" in inputs

        preview_news = {**inputs, "email": rpc.UNKNOWN}  # preview: a value not known yet
        d = provider_host.diff(name, {**inputs, "created": "x"}, preview_news)
        assert d.changes == provider_pb2.DiffResponse.DIFF_SOME and list(d.replaces) == []

        created = provider_host.create(inputs)
        assert created.id == name
        outs = from_struct(created.properties)
        assert outs["created"] and outs["email"] == f"{name}@example.com"
        assert DevpiClient(devpi_server.url, name, pw).login()

        read = provider_host.read(name, outs, inputs)
        assert read.id == name and from_struct(read.properties)["email"] == f"{name}@example.com"
        read_inputs = from_struct(read.inputs)
        assert "created" not in read_inputs and "__provider" in read_inputs

        same = provider_host.diff(name, outs, inputs)
        assert same.changes == provider_pb2.DiffResponse.DIFF_NONE

        renamed = provider_host.diff(name, outs, {**inputs, "name": name + "x"})
        assert list(renamed.replaces) == ["name"] and renamed.deleteBeforeReplace is True

        new_pw = pw + "-2"
        news = from_struct(provider_host.check(inputs, user_inputs(name, new_pw, title="T")).inputs)
        updated = from_struct(provider_host.update(name, outs, news).properties)
        assert updated["title"] == "T"
        assert DevpiClient(devpi_server.url, name, new_pw).login()

        replies = [checked.inputs, created.properties, read.properties, read.inputs]
        for reply in replies:
            for needle in (pw, new_pw, root_pw):
                assert plaintext_leaks(from_struct(reply), needle) == [], needle
        assert plaintext_leaks(updated, new_pw) == [] and rpc.is_rpc_secret(updated["password"])

        provider_host.delete(name, updated)
        assert provider_host.read(name, updated).id == ""  # gone: the engine drops it from state
        for needle in (pw, new_pw, root_pw):
            assert all(needle not in line for line in provider_host.stderr_lines)

    def test_provider_errors_reach_the_engine_without_secrets(self, provider_host: ProviderHost,
                                                              devpi_server: DevpiServer, unique: str) -> None:
        name, pw = f"dup{unique}", f"dup-pw-{unique}"
        DevpiClient(devpi_server.url, "root", devpi_server.root_password).create_user(name, "theirs")
        with pytest.raises(grpc.RpcError) as exc:
            provider_host.create(user_inputs(name, pw))
        details = exc.value.details() or ""
        assert exc.value.code() == grpc.StatusCode.UNKNOWN and "adopt=True" in details
        assert pw not in details and devpi_server.root_password not in details

    def test_check_failures_travel_as_property_and_reason(self, provider_host: ProviderHost) -> None:
        reply = provider_host.check({}, {**user_inputs("bad name", "x"), "password": secret(["s3cret-pw"])})
        failures = {f.property: f.reason for f in reply.failures}
        assert set(failures) == {"name", "password"} and "'bad name'" in failures["name"]
        assert all("s3cret-pw" not in r for r in failures.values())


class TestIndexAndRootThroughTheHost:
    def test_index_lifecycle(self, provider_host: ProviderHost, devpi_server: DevpiServer, unique: str) -> None:
        owner = f"gi{unique}"
        DevpiClient(devpi_server.url, "root", devpi_server.root_password).create_user(owner, "pw")
        props = {"__provider": provider_prop(DevpiIndexProvider()), "owner": owner, "name": "dev",
                 "bases": [], "volatile": False, "title": "T"}
        checked = provider_host.check({}, props)
        assert list(checked.failures) == []
        inputs = from_struct(checked.inputs)
        created = provider_host.create(inputs)
        assert created.id == f"{owner}/dev"
        outs = from_struct(created.properties)
        assert outs["volatile"] is False and outs["acl_upload"] == [owner]
        d = provider_host.diff(created.id, outs, {**inputs, "title": None})
        assert d.changes == provider_pb2.DiffResponse.DIFF_SOME
        updated = from_struct(provider_host.update(created.id, outs, {**inputs, "title": None}).properties)
        assert "title" not in updated  # None travels as null, which the engine drops
        assert "title" not in DevpiClient(devpi_server.url).get_index(created.id)
        provider_host.delete(created.id, updated)
        assert provider_host.read(created.id, updated).id == ""

    def test_mirror_without_url_never_reaches_the_server(self, provider_host: ProviderHost) -> None:
        props = {"__provider": provider_prop(DevpiIndexProvider()), "owner": "alice", "name": "m",
                 "type": "mirror"}
        failures = list(provider_host.check({}, props).failures)
        assert [f.property for f in failures] == ["mirror_url"]

    def test_root_gate_reports_version(self, provider_host: ProviderHost, devpi_server: DevpiServer) -> None:
        props = {"__provider": provider_prop(DevpiRootProvider()), "password": secret(devpi_server.root_password),
                 "initial_password": secret(devpi_server.root_password), "ready_timeout": 30}
        inputs = from_struct(provider_host.check({}, props).inputs)
        created = provider_host.create(inputs)
        outs = from_struct(created.properties)
        assert created.id == "root" and outs["server_version"] == "6.20.3" and outs["url"] == devpi_server.url
        assert plaintext_leaks(outs, devpi_server.root_password) == []


class TestHostProcess:
    def test_unconfigured_host_names_the_missing_keys(self, devpi_server: DevpiServer) -> None:
        host = ProviderHost.start()
        try:
            host.configure({f"{PROJECT}:serverUrl": devpi_server.url})  # no rootPassword in the stack
            # preview still works: check and diff need no server
            assert list(host.check({}, user_inputs("ok", "pw")).failures) == []
            with pytest.raises(grpc.RpcError, match="devpi-registry:rootPassword"):
                host.read("someone", user_inputs("someone", "pw"))
        finally:
            assert host.stop() is not None
        assert host.proc.poll() is not None

    def test_host_stops_cleanly(self, devpi_server: DevpiServer) -> None:
        host = ProviderHost.start()
        host.configure(stack_config(devpi_server.url, devpi_server.root_password),
                       secret_keys=(f"{PROJECT}:rootPassword",))
        assert host.stub.GetPluginInfo(empty_pb2.Empty()).version
        code = host.stop()
        assert host.proc.poll() is not None and code in (0, -15)
        assert not any("Traceback" in line for line in host.stderr_lines)
