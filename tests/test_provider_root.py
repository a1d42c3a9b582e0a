"""DevpiRootProvider against a real devpi-server: readiness gate and root-password rotation."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
from pulumi.output import Unknown

from components.devpi.client import DevpiClient, RetryPolicy
from components.devpi.errors import AuthenticationError, ServerUnreachableError
from components.providers.base import ClientOptions
from components.providers.root import DevpiRootProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured
from tests.support import free_port

pytestmark = pytest.mark.devpi


def logs_in(server: DevpiServer, password: str) -> bool:
    try:
        DevpiClient(server.url, "root", password).login()
    except AuthenticationError:
        return False
    return True


def root_props(password: Any, initial: Any = None, **over: Any) -> dict[str, Any]:
    return {"password": password, "initial_password": initial, "server_id": "c1", "ready_timeout": 30, **over}


class TestReadiness:
    def test_create_waits_and_reports_url_and_version(self, devpi_server: DevpiServer) -> None:
        p = configured(DevpiRootProvider, devpi_server)
        created = p.create(p.check({}, root_props(devpi_server.root_password)).inputs)
        outs = created.outs or {}
        assert created.id == "root"
        assert outs["url"] == devpi_server.url and outs["server_version"] == "6.20.3"
        read = p.read("root", outs)
        assert read.outs == outs

    def test_server_that_never_answers_times_out_naming_the_url(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        p = configured(DevpiRootProvider, url=url, password="pw")
        p.client_options = ClientOptions(retry=RetryPolicy(attempts=0))
        start = time.monotonic()
        with pytest.raises(ServerUnreachableError, match=rf"{url} was not ready after 2 s") as exc:
            p.create(root_props("pw", ready_timeout=2))
        assert time.monotonic() - start < 10
        assert "pw" not in str(exc.value).replace(url, "")

    def test_server_id_change_is_an_update_that_waits_again(self, devpi_server: DevpiServer) -> None:
        p = configured(DevpiRootProvider, devpi_server)
        old = root_props(devpi_server.root_password)
        new = root_props(devpi_server.root_password, server_id="c2")
        d = p.diff("root", old, new)
        assert d.changes is True and d.replaces == []
        outs = p.update("root", old, new).outs or {}
        assert outs["server_id"] == "c2" and outs["server_version"] == "6.20.3"


class TestRotation:
    def test_rotation_from_initial_password_then_from_previous(self, fresh_devpi_server: DevpiServer) -> None:
        server = fresh_devpi_server
        initial = server.root_password
        p = configured(DevpiRootProvider, server, password="rotated-1")  # the stack's new rootPassword
        outs = p.create(root_props("rotated-1", initial)).outs or {}
        assert logs_in(server, "rotated-1") and not logs_in(server, initial)

        news = root_props("rotated-2", initial)
        assert p.diff("root", outs, news).replaces == []
        p.update("root", outs, news)
        assert logs_in(server, "rotated-2")
        assert not logs_in(server, "rotated-1") and not logs_in(server, initial)

    def test_matching_password_changes_nothing(self, fresh_devpi_server: DevpiServer) -> None:
        server = fresh_devpi_server
        p = configured(DevpiRootProvider, server)
        p.create(root_props(server.root_password, "something-else"))
        assert logs_in(server, server.root_password)

    def test_no_working_password_is_a_clear_error_without_secrets(self, fresh_devpi_server: DevpiServer) -> None:
        p = configured(DevpiRootProvider, fresh_devpi_server, password="stack-pw")
        with pytest.raises(AuthenticationError, match=r"refused root's login.*pulumi config set --secret rootPassword"
                                                      r".*devpi-passwd") as exc:
            p.update("root", root_props("old-guess"), root_props("stack-pw", "initial-guess"))
        for secret in ("stack-pw", "old-guess", "initial-guess", fresh_devpi_server.root_password):
            assert secret not in str(exc.value)
        assert logs_in(fresh_devpi_server, fresh_devpi_server.root_password), "nothing changed on the server"

    def test_delete_never_touches_the_server(self, monkeypatch: pytest.MonkeyPatch) -> None:
        def no_network(*_args: object) -> None:
            raise AssertionError("deleting DevpiRoot opened a network connection")

        monkeypatch.setattr(socket.socket, "connect", no_network)
        # Not even configured: a method that needed the server would raise NotConfiguredError.
        assert DevpiRootProvider().delete("root", root_props("pw")) is None


class TestCheckAndDiff:
    @pytest.mark.parametrize(("over", "prop", "shown"), [
        ({"password": ""}, "password", "empty"),
        ({"password": None}, "password", "required"),
        ({"ready_timeout": -1}, "ready_timeout", "-1"),
        ({"ready_timeout": float("inf")}, "ready_timeout", "inf"),
        ({"ready_timeout": "soon"}, "ready_timeout", "'soon'"),
        ({"server_id": 5}, "server_id", "5"),
        ({"color": "red"}, "color", "color"),
    ])
    def test_check_names_property_and_value(self, over: dict[str, Any], prop: str, shown: str) -> None:
        failures = DevpiRootProvider().check({}, {**root_props("pw"), **over}).failures
        assert [f.property for f in failures] == [prop]
        assert shown in failures[0].reason

    def test_secret_values_never_in_reasons(self) -> None:
        failures = DevpiRootProvider().check({}, root_props(["p4ss"], initial=["1n1t"])).failures
        assert {f.property for f in failures} == {"password", "initial_password"}
        assert all("p4ss" not in f.reason and "1n1t" not in f.reason for f in failures)

    def test_unknowns_pass_and_count_as_changes(self) -> None:
        u = Unknown()
        p = DevpiRootProvider()
        assert p.check({}, root_props(u, u, server_id=u, ready_timeout=u)).failures == []
        d = p.diff("root", root_props("pw"), root_props("pw", server_id=u))
        assert d.changes is True and d.replaces == []

    def test_diff_is_symmetric(self) -> None:
        p = DevpiRootProvider()
        a, b = root_props("a", "i"), {**root_props("b", "i"), "url": "http://x", "__provider": "p"}
        assert p.diff("root", a, b).changes is p.diff("root", b, a).changes is True
        assert p.diff("root", a, {**a, "url": "http://x", "server_version": "1"}).changes is False
