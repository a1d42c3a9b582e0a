"""DevpiUserProvider against a real devpi-server: lifecycle, drift, adopt, data safety, failures."""

from __future__ import annotations

import base64
from typing import Any

import dill
import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.devpi.client import DevpiClient, RetryPolicy
from components.devpi.errors import AuthenticationError, ConflictError, ServerUnreachableError
from components.providers.base import ClientOptions, NotConfiguredError
from components.providers.user import DevpiUserProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured, provider_prop
from tests.support import free_port

pytestmark = pytest.mark.devpi


def root(server: DevpiServer) -> DevpiClient:
    return DevpiClient(server.url, "root", server.root_password)


def logs_in(server: DevpiServer, user: str, password: str) -> bool:
    try:
        DevpiClient(server.url, user, password).login()
    except AuthenticationError:
        return False
    return True


def user_props(name: Any, **over: Any) -> dict[str, Any]:
    props: dict[str, Any] = {"name": name, "password": f"pw-{name}", "email": f"{name}@example.com",
                             "title": None, "description": None, "adopt": False, "force_destroy": False}
    props.update(over)
    return props


class TestUserLifecycle:
    def test_create_read_update_delete_round_trip(self, devpi_server: DevpiServer, unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server)
        name = f"life{unique}"
        inputs = p.check({}, user_props(name)).inputs
        created = p.create(inputs)
        assert created.id == name
        outs = created.outs or {}
        assert outs["email"] == f"{name}@example.com" and outs["created"]
        assert logs_in(devpi_server, name, f"pw-{name}")

        read = p.read(name, outs)
        assert read.id == name and read.outs == outs, "read right after create must report no drift"
        assert read.inputs is not None and "created" not in read.inputs
        assert p.diff(name, outs, inputs).changes is False

        news = p.check(inputs, user_props(name, password="new-pw", email=None, title="Tester")).inputs
        d = p.diff(name, outs, news)
        assert d.changes is True and d.replaces == []
        updated = p.update(name, outs, news).outs or {}
        assert updated["email"] is None and updated["title"] == "Tester" and updated["created"] == outs["created"]
        server = root(devpi_server).get_user(name)
        assert "email" not in server and server["title"] == "Tester"
        assert logs_in(devpi_server, name, "new-pw") and not logs_in(devpi_server, name, f"pw-{name}")

        p.delete(name, updated)
        assert p.read(name, updated).id is None

    def test_update_patches_only_changed_keys(self, devpi_server: DevpiServer, unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server)
        name = f"only{unique}"
        outs = p.create(user_props(name, title="T")).outs or {}
        # Someone sets a description behind our back; an update of the title alone must not touch it.
        root(devpi_server).modify_user(name, description="kept")
        p.update(name, outs, user_props(name, title="T2"))
        server = root(devpi_server).get_user(name)
        assert server["title"] == "T2" and server["description"] == "kept"
        assert logs_in(devpi_server, name, f"pw-{name}"), "an unchanged password must not be re-sent"


class TestDrift:
    def test_read_reports_profile_changes_made_behind_our_back(self, devpi_server: DevpiServer, unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server)
        name = f"drift{unique}"
        outs = p.create(user_props(name, title="T")).outs or {}
        root(devpi_server).modify_user(name, email="other@example.com", title="", description="D")
        read = p.read(name, outs)
        assert read.outs is not None and read.inputs is not None
        assert (read.outs["email"], read.outs["title"], read.outs["description"]) == ("other@example.com", None, "D")
        assert read.inputs["email"] == "other@example.com"
        # the next `pulumi up` sees the difference to the program and puts it back
        d = p.diff(name, read.outs, user_props(name, title="T"))
        assert d.changes is True and not d.replaces
        p.update(name, read.outs, user_props(name, title="T"))
        server = root(devpi_server).get_user(name)
        assert server["email"] == f"{name}@example.com" and server["title"] == "T" and "description" not in server

    def test_user_deleted_behind_our_back_drops_from_state(self, devpi_server: DevpiServer, unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server)
        name = f"gone{unique}"
        outs = p.create(user_props(name)).outs or {}
        root(devpi_server).delete_user(name)
        read = p.read(name, outs)
        assert read.id is None and read.outs == {}
        p.delete(name, outs)  # already gone = done


class TestAdopt:
    def test_existing_user_is_a_clear_conflict_without_adopt(self, devpi_server: DevpiServer, unique: str) -> None:
        name = f"taken{unique}"
        root(devpi_server).create_user(name, "theirs")
        p = configured(DevpiUserProvider, devpi_server)
        with pytest.raises(ConflictError, match=rf"user '{name}' already exists.*adopt=True") as exc:
            p.create(user_props(name))
        assert f"pw-{name}" not in str(exc.value)
        assert logs_in(devpi_server, name, "theirs"), "a refused create must not change the existing user"

    def test_adopt_converges_password_and_profile(self, devpi_server: DevpiServer, unique: str) -> None:
        name = f"adopt{unique}"
        root(devpi_server).create_user(name, "theirs", title="old title")
        p = configured(DevpiUserProvider, devpi_server)
        created = p.create(user_props(name, adopt=True))
        outs = created.outs or {}
        assert created.id == name and outs["title"] is None and outs["created"]
        server = root(devpi_server).get_user(name)
        assert "title" not in server and server["email"] == f"{name}@example.com"
        assert logs_in(devpi_server, name, f"pw-{name}") and not logs_in(devpi_server, name, "theirs")


class TestDeleteProtectsPackages:
    def test_user_owning_indexes_is_not_deleted(self, devpi_server: DevpiServer, unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server)
        name = f"owner{unique}"
        outs = p.create(user_props(name)).outs or {}
        root(devpi_server).create_index(f"{name}/prod", {"volatile": False})
        with pytest.raises(RuntimeError, match=rf"refusing to delete devpi user '{name}'.*{name}/prod.*force_destroy"):
            p.delete(name, outs)
        assert root(devpi_server).index_exists(f"{name}/prod")

    def test_force_destroy_deletes_user_with_non_volatile_indexes(self, devpi_server: DevpiServer,
                                                                  unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server)
        name = f"force{unique}"
        outs = p.create(user_props(name, force_destroy=True)).outs or {}
        root(devpi_server).create_index(f"{name}/prod", {"volatile": False})
        p.delete(name, outs)
        assert p.read(name, outs).id is None


class TestFailures:
    def test_wrong_root_password_is_an_authentication_error_without_the_password(
            self, devpi_server: DevpiServer, unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server, password="wrong-root-pw")
        with pytest.raises(AuthenticationError, match="refused root's login with the stack's rootPassword") as exc:
            p.create(user_props(f"auth{unique}"))
        assert "wrong-root-pw" not in str(exc.value) and f"pw-auth{unique}" not in str(exc.value)

    def test_unreachable_server_fails_fast_naming_the_url(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        p = configured(DevpiUserProvider, url=url, password="pw")
        p.client_options = ClientOptions(retry=RetryPolicy(attempts=1, backoff=0))
        with pytest.raises(ServerUnreachableError, match=url):
            p.read("someone", user_props("someone"))

    def test_unconfigured_provider_names_the_missing_config_keys(self) -> None:
        with pytest.raises(NotConfiguredError, match=r"devpi-registry:rootPassword.*devpi-registry:serverUrl"):
            DevpiUserProvider().create(user_props("x"))

    def test_config_without_root_password_names_the_key(self) -> None:
        p = configured(DevpiUserProvider, url="http://127.0.0.1:1", password="")
        with pytest.raises(NotConfiguredError, match="rootPassword"):
            p.read("x", {})


U = Unknown()
CHECK_CASES = [
    ("bad name", {"name": "bad name"}, "name", "bad name"),
    ("name with slash", {"name": "a/b"}, "name", "a/b"),
    ("root is not a DevpiUser", {"name": "root"}, "name", "root"),
    ("name wrong type", {"name": 5}, "name", "5"),
    ("name missing", {"name": None}, "name", "required"),
    ("empty password", {"password": ""}, "password", "empty"),
    ("password wrong type", {"password": 12345678}, "password", "int"),
    ("email wrong type", {"email": ["a"]}, "email", "['a']"),
    ("unknown key", {"emial": "x"}, "emial", "emial"),
    ("flag wrong type", {"adopt": "yes"}, "adopt", "'yes'"),
]


class TestCheck:
    @pytest.mark.parametrize(("_case", "over", "prop", "shown"), CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
    def test_check_names_property_and_value(self, _case: str, over: dict[str, Any], prop: str, shown: str) -> None:
        news = {**user_props("ok"), **over}
        failures = DevpiUserProvider().check({}, news).failures  # not configured: check needs no server
        assert [f.property for f in failures] == [prop], failures
        assert shown in failures[0].reason

    def test_failure_reasons_never_show_the_password(self) -> None:
        failures = DevpiUserProvider().check({}, user_props("bad name", password=["s3cr3t-value"])).failures
        assert {f.property for f in failures} == {"name", "password"}
        assert all("s3cr3t-value" not in f.reason for f in failures)

    @pytest.mark.parametrize("unknown", [U, rpc.UNKNOWN], ids=["Unknown", "wire-sentinel"])
    def test_unknown_inputs_pass_check(self, unknown: Any) -> None:
        news = {k: unknown for k in user_props("x")}
        assert DevpiUserProvider().check({}, news).failures == []


class TestDiff:
    def test_diff_is_symmetric_and_ignores_internal_and_output_keys(self) -> None:
        p = DevpiUserProvider()
        a = {**user_props("a"), "__provider": "one", "created": "2026-01-01T00:00:00Z"}
        b = {**user_props("a", email="b@example.com"), "__provider": "two"}
        ab, ba = p.diff("a", a, b), p.diff("a", b, a)
        assert (ab.changes, ab.replaces) == (ba.changes, ba.replaces) == (True, [])
        assert p.diff("a", a, {**user_props("a"), "__provider": "other"}).changes is False

    def test_rename_replaces_delete_first(self) -> None:
        d = DevpiUserProvider().diff("a", user_props("a"), user_props("b"))
        assert d.replaces == ["name"] and d.delete_before_replace is True

    def test_password_change_is_an_update(self) -> None:
        d = DevpiUserProvider().diff("a", user_props("a"), user_props("a", password="other"))
        assert d.changes is True and d.replaces == [] and d.delete_before_replace is False

    @pytest.mark.parametrize("unknown", [U, rpc.UNKNOWN], ids=["Unknown", "wire-sentinel"])
    def test_unknown_counts_as_change(self, unknown: Any) -> None:
        d = DevpiUserProvider().diff("a", user_props("a"), user_props("a", email=unknown))
        assert d.changes is True and d.replaces == []
        d = DevpiUserProvider().diff("a", user_props("a"), user_props(unknown))
        assert d.replaces == ["name"]


class TestPickling:
    def test_provider_pickles_by_reference_without_state(self) -> None:
        blob = provider_prop(DevpiUserProvider())
        raw = base64.b64decode(blob)
        assert len(raw) < 150 and b"components.providers.user" in raw, "pickled by reference: class path only"
        restored = dill.loads(raw)  # noqa: S301 - our own pickle, made one line above
        assert type(restored) is DevpiUserProvider and vars(restored) == {}
