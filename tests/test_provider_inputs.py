"""Each resource's inputs are declared once, as a dataclass; the providers derive the rest from it.

The field list, the type checks of ``check``, the defaults, what replaces in ``diff``, what is secret
and what is sent to devpi all come from the dataclass and its field metadata. The proof that nothing
else must be edited: a field added to a dataclass *in this test* (devpi's ``custom_data``, which the
stack does not use) flows through check, diff, create, read and update against a real devpi-server.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi
import pytest
from pulumi.output import Unknown

from components.config.model import IndexConfig, UserConfig
from components.config.stack import load_stack_config
from components.devpi.client import DevpiClient
from components.providers import (
    DevpiIndex,
    DevpiIndexProvider,
    DevpiRoot,
    DevpiRootProvider,
    DevpiUser,
    DevpiUserProvider,
    IndexInputs,
    RootInputs,
    UserInputs,
)
from components.providers.index import INDEX_FIELDS
from components.providers.schema import input_names, input_specs, prop, secret_names
from components.registry.inputs import index_inputs, user_inputs
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured
from tests.mocks import MockRecorder, resolve, use_mocks

PROVIDERS: list[tuple[type[Any], type[Any]]] = [
    (DevpiIndexProvider, IndexInputs), (DevpiUserProvider, UserInputs), (DevpiRootProvider, RootInputs)]
IDS = ["index", "user", "root"]


def names(cls: type[Any]) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def valid(cls: type[Any]) -> dict[str, Any]:
    """A valid set of inputs for ``cls`` (every field set, as a resource sends them)."""
    base: dict[str, dict[str, Any]] = {
        "IndexInputs": {"owner": "alice", "name": "dev"},
        "UserInputs": {"name": "alice", "password": "pw"},
        "RootInputs": {"password": "pw", "url": "http://127.0.0.1:3141"},
    }
    return cls(**base[cls.__name__]).props()  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------ the field list
class TestFieldListIsTheDataclass:
    @pytest.mark.parametrize(("provider", "inputs"), PROVIDERS, ids=IDS)
    def test_provider_knows_exactly_the_dataclass_fields(self, provider: type[Any], inputs: type[Any]) -> None:
        assert provider.inputs_class is inputs
        assert list(input_names(inputs)) == names(inputs)
        checked = provider().check({}, valid(inputs))
        assert checked.failures == [] and list(checked.inputs) == names(inputs)
        (unknown,) = provider().check({}, {**valid(inputs), "colour": "red"}).failures
        assert unknown.property == "colour" and unknown.reason.endswith(", ".join(sorted(names(inputs))))

    def test_index_field_list_constant_is_derived(self) -> None:
        assert list(INDEX_FIELDS) == names(IndexInputs)

    def test_resources_send_every_field_and_only_seeded_outputs_besides(self) -> None:
        recorder = MockRecorder()
        with use_mocks(recorder):  # Outputs belong to the mocks' event loop
            index = IndexInputs(owner="a", name="b", title="T")
            user = UserInputs(name="a", password=pulumi.Output.secret("pw"))
            root = RootInputs(password=pulumi.Output.secret("pw"), server_id="c1")
            for r in (DevpiIndex("i", index), DevpiUser("u", user), DevpiRoot("r", root)):
                resolve(r.urn)
        sent = {r.typ.rsplit(":", 1)[-1]: set(r.inputs) - {"__provider"} for r in recorder.resources}

        def set_fields(inputs: Any) -> set[str]:  # None (unset) does not travel
            assert set(inputs.props()) == set(names(type(inputs)))
            return {k for k, v in inputs.props().items() if v is not None}

        assert sent["Index"] == set_fields(index) and "title" in sent["Index"]
        assert sent["User"] == set_fields(user)  # the seeded output `created` is None until created
        assert sent["Root"] == set_fields(root) and "server_id" in sent["Root"]
        secret_outputs = {r.typ.rsplit(":", 1)[-1]: r.additional_secret_outputs for r in recorder.resources}
        assert secret_outputs == {"Index": [], "User": ["password"], "Root": ["password", "initial_password"]}

    def test_wire_types_come_from_the_annotations(self) -> None:
        specs = input_specs(IndexInputs)
        assert specs["bases"].list_of_str and specs["bases"].types == (list,)
        assert specs["mirror_cache_expiry"].types == (int,) and specs["volatile"].types == (bool,)
        assert input_specs(RootInputs)["ready_timeout"].types == (int, float)  # an int is a fine float
        assert [n for n, s in specs.items() if s.required] == ["owner", "name"]


# ----------------------------------------------------------------------------- metadata drives diff
def _other_value(spec_types: tuple[type, ...], list_of_str: bool, old: Any) -> Any:
    if list_of_str:
        return ["x/changed"]
    return {bool: not old, int: 7, str: "changed"}[spec_types[0]]


def _field_cases() -> list[tuple[type[Any], type[Any], str]]:
    return [(provider, inputs, name) for provider, inputs in PROVIDERS for name in input_names(inputs)]


class TestMetadataDrivesDiffAndCheck:
    @pytest.mark.parametrize(("provider", "inputs", "key"), _field_cases(),
                             ids=[f"{i.__name__}.{k}" for _, i, k in _field_cases()])
    def test_a_change_replaces_exactly_when_the_field_says_so(self, provider: type[Any], inputs: type[Any],
                                                              key: str) -> None:
        spec = input_specs(inputs)[key]
        old = valid(inputs)
        new = {**old, key: _other_value(spec.types, spec.list_of_str, old[key])}
        if key == "type":
            new["mirror_url"] = "http://x/"
        d = provider().diff("id", old, new)
        assert d.changes is True, key
        assert (key in (d.replaces or [])) is spec.prop.replace, (key, d.replaces)
        assert d.delete_before_replace is bool(d.replaces)

    @pytest.mark.parametrize(("provider", "inputs"), PROVIDERS, ids=IDS)
    def test_secret_fields_are_never_shown_in_check_messages(self, provider: type[Any], inputs: type[Any]) -> None:
        secrets = secret_names(inputs)
        assert secrets == [n for n, s in input_specs(inputs).items() if s.prop.secret]
        for key in secrets:
            (failure,) = provider().check({}, {**valid(inputs), key: {"hidden-value": 1}}).failures
            assert failure.property == key and "hidden-value" not in failure.reason
            assert "a secret value" in failure.reason
        for key in set(input_names(inputs)) - set(secrets):
            failures = provider().check({}, {**valid(inputs), key: {"shown-value": 1}}).failures
            assert any("shown-value" in f.reason for f in failures if f.property == key), key

    def test_secret_metadata_is_what_is_secret(self) -> None:
        assert secret_names(UserInputs) == ["password"]
        assert secret_names(RootInputs) == ["password", "initial_password"]
        assert secret_names(IndexInputs) == []

    def test_an_input_that_is_also_an_output_is_compared_only_when_set(self) -> None:
        # DevpiRoot.url: the stack's serverUrl as an input (a new server is re-proven), the proven URL
        # as an output; a program that does not pass it must not see a diff forever.
        assert input_specs(RootInputs)["url"].prop.unset_is_unchanged
        p = DevpiRootProvider()
        old = {**valid(RootInputs), "url": "http://a:3141", "server_version": "6.20.3"}
        moved = p.diff("root", old, {**valid(RootInputs), "url": "http://b:3141"})
        assert moved.changes is True and moved.replaces == []
        assert p.diff("root", old, {**valid(RootInputs), "url": None}).changes is False
        assert p.diff("root", {**old, "url": None}, valid(RootInputs)).changes is False

    def test_only_server_fields_reach_devpi(self) -> None:
        specs = input_specs(IndexInputs)
        flags = [n for n, s in specs.items() if not s.prop.server]
        assert flags == ["force_destroy", "adopt", "allow_mirror_whitelist_star", "allow_anonymous_upload"]


# -------------------------------------------------------------------- a new field needs no other edit
@dataclass(frozen=True, kw_only=True)
class IndexWithCustomData(IndexInputs):
    """IndexInputs plus a devpi option the stack does not declare, and a made-up mirror-only flag."""

    custom_data: pulumi.Input[str] | None = field(default=None, metadata=prop(removable=True))
    mirror_made_up: pulumi.Input[bool] | None = field(default=None, metadata=prop(applies_to="mirror"))


class CustomIndexProvider(DevpiIndexProvider):
    inputs_class: ClassVar[type[IndexInputs]] = IndexWithCustomData


@dataclass(frozen=True, kw_only=True)
class UserWithCustomData(UserInputs):
    custom_data: pulumi.Input[str] | None = field(default=None, metadata=prop(removable=True))


class CustomUserProvider(DevpiUserProvider):
    inputs_class: ClassVar[type[UserInputs]] = UserWithCustomData


def custom_index(owner: str, name: str, **over: Any) -> dict[str, Any]:
    return IndexWithCustomData(owner=owner, name=name, **over).props()


class TestANewFieldFlowsThrough:
    def test_check_types_scopes_and_diffs_the_new_field(self) -> None:
        p = CustomIndexProvider()
        checked = p.check({}, custom_index("alice", "dev", custom_data="hello"))
        assert checked.failures == [] and checked.inputs["custom_data"] == "hello"
        (wrong,) = p.check({}, custom_index("alice", "dev", custom_data=5)).failures
        assert (wrong.property, wrong.reason) == ("custom_data", "custom_data must be str, got 5 (int)")
        (scoped,) = p.check({}, custom_index("alice", "dev", mirror_made_up=True)).failures
        assert scoped.property == "mirror_made_up" and "applies only to mirror indexes" in scoped.reason
        d = p.diff("alice/dev", custom_index("alice", "dev"), custom_index("alice", "dev", custom_data="x"))
        assert d.changes is True and d.replaces == []
        d = p.diff("alice/dev", custom_index("alice", "dev"), custom_index("alice", "dev", custom_data=Unknown()))
        assert d.changes is True
        # the unchanged provider does not know the field: it is the dataclass that decides
        assert [f.property for f in DevpiIndexProvider().check({}, custom_index("a", "b", custom_data="x")).failures
                ] == ["custom_data"]

    @pytest.mark.devpi
    def test_index_create_read_update_with_the_new_field(self, devpi_server: DevpiServer, unique: str) -> None:
        root = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
        owner = f"cd{unique}"
        root.create_user(owner, "pw")
        p = configured(CustomIndexProvider, devpi_server)
        inputs = p.check({}, custom_index(owner, "dev", custom_data="first")).inputs
        outs = p.create(inputs).outs or {}
        assert outs["custom_data"] == "first" and root.get_index(f"{owner}/dev")["custom_data"] == "first"
        assert p.read(f"{owner}/dev", outs).outs == outs, "no drift"
        news = p.check(inputs, custom_index(owner, "dev")).inputs  # removed: devpi needs `custom_data-=`
        assert p.diff(f"{owner}/dev", outs, news).changes is True
        updated = p.update(f"{owner}/dev", outs, news).outs or {}
        assert updated["custom_data"] is None and "custom_data" not in root.get_index(f"{owner}/dev")
        p.delete(f"{owner}/dev", updated)

    @pytest.mark.devpi
    def test_user_create_and_update_with_the_new_field(self, devpi_server: DevpiServer, unique: str) -> None:
        root = DevpiClient(devpi_server.url, "root", devpi_server.root_password)
        name = f"cu{unique}"
        p = configured(CustomUserProvider, devpi_server)
        props = UserWithCustomData(name=name, password="pw", custom_data="first").props()
        outs = p.create(p.check({}, props).inputs).outs or {}
        assert outs["custom_data"] == "first" and root.get_user(name)["custom_data"] == "first"
        news = p.check(props, {**props, "custom_data": "second"}).inputs
        assert p.diff(name, outs, news).replaces == []
        p.update(name, outs, news)
        assert root.get_user(name)["custom_data"] == "second"
        assert p.read(name, outs).outs["custom_data"] == "second"  # type: ignore[index]
        p.delete(name, outs)


# -------------------------------------------------------------------------- the config builds inputs
class TestConfigBuildsTheInputs:
    def test_every_inputs_field_is_a_config_field(self) -> None:
        config_fields = {f.name for f in dataclasses.fields(IndexConfig)}
        assert set(names(IndexInputs)) <= config_fields, "index_inputs copies fields by name"
        assert set(names(UserInputs)) - {"password"} <= {f.name for f in dataclasses.fields(UserConfig)}

    def test_index_inputs_carry_the_declared_values(self) -> None:
        cfg = load_stack_config({
            "serverUrl": "http://127.0.0.1:3141", "rootPassword": "r", "users": [{"name": "bot", "email": "b@x"}],
            "userPasswords": {"bot": "p"},
            "indexes": [
                {"name": "bot/stable", "volatile": False, "title": "T", "aclUpload": ["bot", ":authenticated:"],
                 "forceDestroy": True},
                {"name": "bot/mirror", "type": "mirror", "mirrorUrl": "https://pypi.org/simple/",
                 "mirrorCacheExpiry": 60, "adopt": True},
            ],
        })
        stable, mirror = (index_inputs(ix).props() for ix in cfg.indexes)
        assert stable == {**dict.fromkeys(INDEX_FIELDS), "owner": "bot", "name": "stable", "type": "stage",
                          "bases": [], "volatile": False, "title": "T", "acl_upload": ["bot", ":authenticated:"],
                          "force_destroy": True, "adopt": False, "allow_mirror_whitelist_star": False,
                          "allow_anonymous_upload": False}
        assert (mirror["type"], mirror["mirror_url"], mirror["mirror_cache_expiry"], mirror["adopt"]) == (
            "mirror", "https://pypi.org/simple/", 60, True)
        assert DevpiIndexProvider().check({}, mirror).failures == []
        user = user_inputs(cfg.users[0], "secret")
        assert user.props() == {"name": "bot", "password": "secret", "email": "b@x", "title": None,
                                "description": None, "adopt": False, "force_destroy": False}
