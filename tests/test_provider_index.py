"""DevpiIndexProvider against a real devpi-server: lifecycle, drift, adopt, package safety, check, diff."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pulumi.output import Unknown
from pulumi.runtime import rpc

from components.devpi.client import DevpiClient, RetryPolicy
from components.devpi.errors import ConflictError, InvalidRequestError, ServerUnreachableError
from components.providers.base import ClientOptions
from components.providers.index import INDEX_FIELDS, DevpiIndexProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured
from tests.support import free_port, make_wheel

pytestmark = pytest.mark.devpi


def root(server: DevpiServer) -> DevpiClient:
    return DevpiClient(server.url, "root", server.root_password)


def index_props(owner: Any, name: Any, **over: Any) -> dict[str, Any]:
    """Inputs as DevpiIndex sends them (unset = None), checked like the engine would."""
    props: dict[str, Any] = dict.fromkeys(INDEX_FIELDS)
    props.update(owner=owner, name=name, type="stage", volatile=True, force_destroy=False, adopt=False,
                 allow_mirror_whitelist_star=False, allow_anonymous_upload=False)
    props.update(over)
    return props


def checked(p: DevpiIndexProvider, props: dict[str, Any], olds: dict[str, Any] | None = None) -> dict[str, Any]:
    result = p.check(olds or {}, props)
    assert result.failures == [], [(f.property, f.reason) for f in result.failures]
    return result.inputs


@pytest.fixture
def owner(devpi_server: DevpiServer, unique: str) -> str:
    name = f"o{unique}"
    root(devpi_server).create_user(name, f"pw-{name}")
    return name


def upload(server: DevpiServer, index: str, tmp_path: Path, user: str) -> None:
    DevpiClient(server.url, user, f"pw-{user}").upload(index, make_wheel(tmp_path, "demo-pkg", "1.0"),
                                                       name="demo-pkg", version="1.0")


class TestIndexLifecycle:
    def test_create_read_update_delete_round_trip(self, devpi_server: DevpiServer, owner: str) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        root(devpi_server).create_index(f"{owner}/base", {})
        inputs = checked(p, index_props(owner, "dev", bases=[f"{owner}/base"], title="Dev",
                                        mirror_whitelist=["Foo_Bar"], acl_upload=[owner, ":authenticated:"]))
        created = p.create(inputs)
        assert created.id == f"{owner}/dev"
        outs = created.outs or {}
        assert outs["bases"] == [f"{owner}/base"] and outs["title"] == "Dev"
        assert outs["mirror_whitelist"] == ["foo-bar"] and outs["acl_upload"] == [owner, ":AUTHENTICATED:"]

        read = p.read(created.id, outs)
        assert read.outs == outs, "devpi's normalizations are applied in check: no drift after create"
        assert p.diff(created.id, outs, inputs).changes is False

        news = checked(p, index_props(owner, "dev", bases=[], title=None, description="D", volatile=False,
                                      mirror_whitelist=["Foo_Bar"], acl_upload=[owner, ":authenticated:"]))
        d = p.diff(created.id, outs, news)
        assert d.changes is True and d.replaces == []
        updated = p.update(created.id, outs, news).outs or {}
        server = root(devpi_server).get_index(f"{owner}/dev")
        assert server["bases"] == [] and "title" not in server and server["description"] == "D"
        assert server["volatile"] is False
        assert updated["title"] is None and updated["bases"] == []

        p.delete(created.id, updated)  # empty index: made volatile, then deleted
        assert not root(devpi_server).index_exists(f"{owner}/dev")
        assert p.read(created.id, updated).id is None

    def test_mirror_with_options_round_trips(self, devpi_server: DevpiServer, owner: str) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        inputs = checked(p, index_props(owner, "mirror", type="mirror", mirror_url="http://127.0.0.1:9/simple/",
                                        mirror_web_url_fmt="https://example.org/p/{name}/",
                                        mirror_cache_expiry=600.0, mirror_no_project_list=True))
        outs = p.create(inputs).outs or {}
        assert outs["mirror_cache_expiry"] == 600 and outs["bases"] is None
        assert p.read(f"{owner}/mirror", outs).outs == outs
        news = checked(p, index_props(owner, "mirror", type="mirror", mirror_url="http://127.0.0.1:9/simple/",
                                      mirror_cache_expiry=60))
        updated = p.update(f"{owner}/mirror", outs, news).outs or {}
        server = root(devpi_server).get_index(f"{owner}/mirror")
        assert server["mirror_cache_expiry"] == 60 and "mirror_web_url_fmt" not in server
        assert "mirror_no_project_list" not in server and updated["mirror_web_url_fmt"] is None
        p.delete(f"{owner}/mirror", updated)


class TestDrift:
    def test_read_reports_drift_in_every_field(self, devpi_server: DevpiServer, owner: str) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        root(devpi_server).create_index(f"{owner}/b1", {})
        outs = p.create(checked(p, index_props(owner, "drift", title="T"))).outs or {}
        behind = {"bases": [f"{owner}/b1"], "volatile": False, "acl_upload": ["root"],
                  "acl_toxresult_upload": [], "mirror_whitelist": ["x"], "mirror_whitelist_inheritance": "union",
                  "description": "D"}
        root(devpi_server).modify_index(f"{owner}/drift", behind)
        root(devpi_server).remove_index_keys(f"{owner}/drift", ["title"])
        read = p.read(f"{owner}/drift", outs)
        assert read.outs is not None and read.inputs is not None
        for key, value in behind.items():
            assert read.outs[key] == value, key
            assert read.inputs[key] == value, key
        assert read.outs["title"] is None
        declared = checked(p, index_props(owner, "drift", title="T"))
        d = p.diff(f"{owner}/drift", read.outs, declared)
        assert d.changes is True and d.replaces == []
        p.update(f"{owner}/drift", read.outs, declared)
        fixed = p.read(f"{owner}/drift", outs)
        assert fixed.outs == outs, "update puts back exactly the declared config"

    def test_index_deleted_behind_our_back_drops_from_state(self, devpi_server: DevpiServer, owner: str) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        outs = p.create(checked(p, index_props(owner, "gone"))).outs or {}
        root(devpi_server).delete_index(f"{owner}/gone")
        read = p.read(f"{owner}/gone", outs)
        assert read.id is None and read.outs == {}
        p.delete(f"{owner}/gone", outs)  # devpi answers 403 to DELETE of a missing index: we GET first


class TestAdopt:
    def test_existing_index_is_a_clear_conflict_without_adopt(self, devpi_server: DevpiServer, owner: str) -> None:
        root(devpi_server).create_index(f"{owner}/taken", {"title": "theirs"})
        p = configured(DevpiIndexProvider, devpi_server)
        with pytest.raises(ConflictError, match=rf"index '{owner}/taken' already exists.*adopt=True"):
            p.create(checked(p, index_props(owner, "taken")))
        assert root(devpi_server).get_index(f"{owner}/taken")["title"] == "theirs"

    def test_adopt_converges_config_and_keeps_packages(self, devpi_server: DevpiServer, owner: str,
                                                       tmp_path: Path) -> None:
        root(devpi_server).create_index(f"{owner}/adopt", {"title": "theirs", "volatile": True})
        upload(devpi_server, f"{owner}/adopt", tmp_path, owner)
        p = configured(DevpiIndexProvider, devpi_server)
        outs = p.create(checked(p, index_props(owner, "adopt", volatile=False, adopt=True))).outs or {}
        server = root(devpi_server).get_index(f"{owner}/adopt", projects=True)
        assert "title" not in server and server["volatile"] is False and server["projects"] == ["demo-pkg"]
        assert outs["title"] is None and outs["volatile"] is False

    def test_adopt_refuses_a_different_type(self, devpi_server: DevpiServer, owner: str) -> None:
        root(devpi_server).create_index(f"{owner}/typed", {})
        p = configured(DevpiIndexProvider, devpi_server)
        with pytest.raises(ConflictError, match="stage index, declared mirror"):
            p.create(checked(p, index_props(owner, "typed", type="mirror", mirror_url="http://127.0.0.1:9/",
                                            adopt=True)))


class TestDeleteProtectsPackages:
    def test_index_with_packages_is_not_deleted(self, devpi_server: DevpiServer, owner: str, tmp_path: Path) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        outs = p.create(checked(p, index_props(owner, "pkgs"))).outs or {}
        upload(devpi_server, f"{owner}/pkgs", tmp_path, owner)
        with pytest.raises(RuntimeError, match=rf"refusing to delete devpi index '{owner}/pkgs'.*demo-pkg"):
            p.delete(f"{owner}/pkgs", outs)
        assert root(devpi_server).list_projects(f"{owner}/pkgs") == ["demo-pkg"]

    def test_force_destroy_deletes_non_volatile_index_with_packages(self, devpi_server: DevpiServer, owner: str,
                                                                   tmp_path: Path) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        outs = p.create(checked(p, index_props(owner, "prod", volatile=False, force_destroy=True))).outs or {}
        upload(devpi_server, f"{owner}/prod", tmp_path, owner)
        p.delete(f"{owner}/prod", outs)
        assert not root(devpi_server).index_exists(f"{owner}/prod")


class TestFailures:
    def test_missing_base_is_devpis_own_error(self, devpi_server: DevpiServer, owner: str) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        with pytest.raises(InvalidRequestError, match="does not exist"):
            p.create(checked(p, index_props(owner, "orphan", bases=[f"{owner}/nothing"])))

    def test_unreachable_server_fails_fast_naming_the_url(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        p = configured(DevpiIndexProvider, url=url, password="pw")
        p.client_options = ClientOptions(retry=RetryPolicy(attempts=1, backoff=0))
        with pytest.raises(ServerUnreachableError, match=url):
            p.create(checked(p, index_props("a", "b")))


U = Unknown()
CHECK_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("bad owner", {"owner": "a b"}, "owner", "'a b'"),
    ("bad index name", {"name": "x/y"}, "name", "'x/y'"),
    ("unknown type", {"type": "weird"}, "type", "'weird'"),
    ("unknown key", {"colour": "red"}, "colour", "colour"),
    ("volatile not bool", {"volatile": "yes"}, "volatile", "'yes'"),
    ("bases not a list", {"bases": "a/b"}, "bases", "'a/b'"),
    ("base not user/index", {"bases": ["pypi"]}, "bases", "'pypi'"),
    ("base with bad chars", {"bases": ["a/b c"]}, "bases", "'a/b c'"),
    ("acl entry not a string", {"acl_upload": [1]}, "acl_upload", "1"),
    ("mirror without mirror_url", {"type": "mirror"}, "mirror_url", "mirror_url"),
    ("mirror_url not http", {"type": "mirror", "mirror_url": "ftp://x/"}, "mirror_url", "'ftp://x/'"),
    ("bases on a mirror", {"type": "mirror", "mirror_url": "http://x/", "bases": ["a/b"]}, "bases", "['a/b']"),
    ("mirror option on a stage", {"mirror_cache_expiry": 5}, "mirror_cache_expiry", "5"),
    ("cache expiry not int", {"type": "mirror", "mirror_url": "http://x/", "mirror_cache_expiry": "5"},
     "mirror_cache_expiry", "'5'"),
    ("cache expiry fractional", {"type": "mirror", "mirror_url": "http://x/", "mirror_cache_expiry": 1.5},
     "mirror_cache_expiry", "1.5"),
    ("cache expiry infinite", {"type": "mirror", "mirror_url": "http://x/", "mirror_cache_expiry": float("inf")},
     "mirror_cache_expiry", "inf"),
    ("whitelist star with bases", {"bases": ["root/pypi"], "mirror_whitelist": ["*"]}, "mirror_whitelist",
     "allow_mirror_whitelist_star"),
    ("anonymous upload", {"acl_upload": [":Anonymous:"]}, "acl_upload", ":Anonymous:"),
    ("inheritance value", {"mirror_whitelist_inheritance": "all"}, "mirror_whitelist_inheritance", "'all'"),
]


class TestCheck:
    @pytest.mark.parametrize(("_case", "over", "prop", "shown"), CHECK_CASES, ids=[c[0] for c in CHECK_CASES])
    def test_check_names_property_and_value(self, _case: str, over: dict[str, Any], prop: str, shown: str) -> None:
        failures = DevpiIndexProvider().check({}, {**index_props("alice", "dev"), **over}).failures
        assert [f.property for f in failures] == [prop], [(f.property, f.reason) for f in failures]
        assert shown in failures[0].reason

    def test_risky_settings_pass_when_acknowledged(self) -> None:
        props = index_props("alice", "dev", bases=["root/pypi"], mirror_whitelist=["*"], acl_upload=[":anonymous:"],
                            allow_mirror_whitelist_star=True, allow_anonymous_upload=True)
        result = DevpiIndexProvider().check({}, props)
        assert result.failures == []
        assert result.inputs["acl_upload"] == [":ANONYMOUS:"]

    def test_empty_stage_lists_on_a_mirror_mean_none(self) -> None:
        props = index_props("alice", "m", type="mirror", mirror_url="http://x/", bases=[], acl_upload=[])
        result = DevpiIndexProvider().check({}, props)
        assert result.failures == []
        assert result.inputs["bases"] is None and result.inputs["acl_upload"] is None

    def test_whitelist_star_needs_the_opt_out_even_without_bases(self) -> None:
        # The stack config's rule (components.config.rules.mirror_whitelist_problem), shared by check():
        # without bases '*' is harmless today, but it switches on dependency confusion the day a base is
        # added, so it needs allow_mirror_whitelist_star=True either way.
        failures = DevpiIndexProvider().check({}, index_props("alice", "dev", mirror_whitelist=["*"])).failures
        assert [f.property for f in failures] == ["mirror_whitelist"]
        assert "allow_mirror_whitelist_star" in failures[0].reason
        acknowledged = index_props("alice", "dev", mirror_whitelist=["*"], allow_mirror_whitelist_star=True)
        assert DevpiIndexProvider().check({}, acknowledged).failures == []

    @pytest.mark.parametrize("unknown", [U, rpc.UNKNOWN], ids=["Unknown", "wire-sentinel"])
    def test_unknown_inputs_pass_check(self, unknown: Any) -> None:
        p = DevpiIndexProvider()
        everything = {k: unknown for k in INDEX_FIELDS}
        assert p.check({}, everything).failures == []
        some = index_props(unknown, "dev", bases=[unknown, "a/b"], acl_upload=[unknown], mirror_whitelist=[unknown])
        assert p.check({}, some).failures == []
        mirror = index_props("alice", "m", type="mirror", mirror_url=unknown)
        assert p.check({}, mirror).failures == []

    def test_defaults_are_explicit_in_checked_inputs(self) -> None:
        inputs = DevpiIndexProvider().check({}, index_props("alice", "dev")).inputs
        assert inputs["acl_upload"] == ["alice"] and inputs["bases"] == []
        assert inputs["acl_toxresult_upload"] == [":ANONYMOUS:"]


class TestDiff:
    def test_diff_is_symmetric_and_ignores_internal_keys(self) -> None:
        p = DevpiIndexProvider()
        a = {**index_props("alice", "dev"), "__provider": "one"}
        b = {**index_props("alice", "dev", title="T", bases=["root/pypi"]), "__provider": "two"}
        ab, ba = p.diff("alice/dev", a, b), p.diff("alice/dev", b, a)
        assert (ab.changes, ab.replaces) == (ba.changes, ba.replaces) == (True, [])
        assert p.diff("alice/dev", a, {**a, "__provider": "three"}).changes is False

    @pytest.mark.parametrize("key,value", [("owner", "bob"), ("name", "prod"), ("type", "mirror")])
    def test_identity_changes_replace_delete_first(self, key: str, value: str) -> None:
        d = DevpiIndexProvider().diff("alice/dev", index_props("alice", "dev"),
                                      {**index_props("alice", "dev"), key: value})
        assert d.replaces is not None and key in d.replaces and d.delete_before_replace is True
        assert set(d.replaces) <= {"owner", "name", "type"}

    def test_order_of_bases_matters(self) -> None:
        d = DevpiIndexProvider().diff("a/x", index_props("a", "x", bases=["a/1", "a/2"]),
                                      index_props("a", "x", bases=["a/2", "a/1"]))
        assert d.changes is True and d.replaces == []

    def test_devpi_normalizations_are_not_changes(self) -> None:
        d = DevpiIndexProvider().diff("a/x", index_props("a", "x", acl_upload=["a", ":AUTHENTICATED:"],
                                                         mirror_whitelist=["foo-bar"]),
                                      index_props("a", "x", acl_upload=["a", ":authenticated:"],
                                                  mirror_whitelist=["Foo_Bar"]))
        assert d.changes is False

    @pytest.mark.parametrize("unknown", [U, rpc.UNKNOWN], ids=["Unknown", "wire-sentinel"])
    def test_unknown_counts_as_change(self, unknown: Any) -> None:
        p = DevpiIndexProvider()
        d = p.diff("a/x", index_props("a", "x"), index_props("a", "x", bases=[unknown]))
        assert d.changes is True and d.replaces == []
        d = p.diff("a/x", index_props("a", "x"), index_props(unknown, "x"))
        assert d.replaces is not None and "owner" in d.replaces and d.delete_before_replace is True
