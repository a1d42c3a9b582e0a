"""An index that other indexes inherit from is never deleted under them, not even with force_destroy.

devpi deletes such an index and leaves the dependants a dangling ``bases`` entry; from then on it
refuses every change of their bases (docs/devpi-api.md, "Indexes"). Pulumi deletes dependants before their
bases, so an index that still lists this one on the server at delete time is one this run does not
delete. Real devpi-server (``--restrict-modify root``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.devpi.client import DevpiClient
from components.providers.index import DevpiIndexProvider, dependants_of
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured
from tests.support import make_wheel

pytestmark = pytest.mark.devpi


def root(server: DevpiServer) -> DevpiClient:
    return DevpiClient(server.url, "root", server.root_password)


def props(index: str, **over: Any) -> dict[str, Any]:
    owner, name = index.split("/")
    return {"owner": owner, "name": name, **over}


@pytest.fixture
def family(devpi_server: DevpiServer, unique: str, tmp_path: Path) -> dict[str, str]:
    """base (non-volatile, with a package) <- child (same user), other (another user)."""
    c = root(devpi_server)
    a, b = f"dep{unique}", f"oth{unique}"
    c.create_user(a, "pw")
    c.create_user(b, "pw")
    names = {"base": f"{a}/base", "child": f"{a}/child", "other": f"{b}/other", "alone": f"{a}/alone"}
    c.create_index(names["base"], {"volatile": False, "acl_upload": ["root"]})
    c.upload(names["base"], make_wheel(tmp_path, "dep-pkg", "1.0"), name="dep-pkg", version="1.0")
    c.create_index(names["child"], {"bases": [names["base"]]})
    c.create_index(names["other"], {"bases": [names["base"]]})
    c.create_index(names["alone"], {})
    c.modify_index(names["alone"], {"bases": [names["alone"]]})  # devpi accepts a self-reference
    return names


class TestDeleteRefusesWhileInherited:
    def test_force_destroy_does_not_break_dependants(self, devpi_server: DevpiServer,
                                                     family: dict[str, str]) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        base = family["base"]
        with pytest.raises(RuntimeError, match="still inherit") as exc:
            p.delete(base, props(base, force_destroy=True))
        message = str(exc.value)
        assert family["child"] in message and family["other"] in message, "names every dependant"
        assert "force_destroy does not override" in message
        c = root(devpi_server)
        assert c.get_index(base, projects=True)["projects"] == ["dep-pkg"], "nothing was deleted"
        assert c.get_index(base)["volatile"] is False, "not even flipped to volatile"
        # the dependants still accept changes of their bases (no dangling base)
        c.modify_index(family["child"], {"bases": [base]})

    def test_delete_works_once_nothing_inherits(self, devpi_server: DevpiServer, family: dict[str, str]) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        c = root(devpi_server)
        base = family["base"]
        c.modify_index(family["child"], {"bases": []})
        with pytest.raises(RuntimeError, match=family["other"]):
            p.delete(base, props(base, force_destroy=True))
        c.modify_index(family["other"], {"bases": []})
        p.delete(base, props(base, force_destroy=True))
        assert p.read(base, props(base)).id is None

    def test_a_self_reference_is_not_a_dependant(self, devpi_server: DevpiServer, family: dict[str, str]) -> None:
        p = configured(DevpiIndexProvider, devpi_server)
        alone = family["alone"]
        p.delete(alone, props(alone))
        assert p.read(alone, props(alone)).id is None


def test_dependants_of_reads_devpis_user_list() -> None:
    users = {
        "root": {"indexes": {"pypi": {"type": "mirror"}}},
        "a": {"indexes": {"base": {"bases": []}, "x": {"bases": ["a/base", "root/pypi"]},
                          "self": {"bases": ["a/self"]}}},
        "b": {"indexes": {"y": {"bases": ["a/base"]}}},
        "c": {"created": "2026-01-01T00:00:00Z"},  # a user without indexes has no "indexes" key
    }
    assert dependants_of("a/base", users) == ["a/x", "b/y"]
    assert dependants_of("a/self", users) == []
    assert dependants_of("root/pypi", users) == ["a/x"]


class TestForceDeletedUserKeepsOtherUsersBasesWhole:
    """devpi deletes a user's indexes with the user: another user's index inheriting one of them would
    be left with a dangling base, so even force_destroy refuses, naming it."""

    def test_refuses_while_another_users_index_inherits(self, devpi_server: DevpiServer,
                                                         family: dict[str, str]) -> None:
        from components.providers.user import DevpiUserProvider

        owner = family["base"].split("/")[0]
        p = configured(DevpiUserProvider, devpi_server)
        with pytest.raises(RuntimeError, match="of other users inherit") as exc:
            p.delete(owner, {"name": owner, "force_destroy": True})
        assert family["other"] in str(exc.value)
        assert family["child"] not in str(exc.value), "the user's own indexes go with it"
        assert owner in DevpiClient(devpi_server.url).list_users()

    def test_deletes_when_only_its_own_indexes_inherit(self, devpi_server: DevpiServer, unique: str) -> None:
        from components.providers.user import DevpiUserProvider

        c = root(devpi_server)
        user = f"solo{unique}"
        c.create_user(user, "pw")
        c.create_index(f"{user}/base", {})
        c.create_index(f"{user}/child", {"bases": [f"{user}/base"]})
        configured(DevpiUserProvider, devpi_server).delete(user, {"name": user, "force_destroy": True})
        assert user not in DevpiClient(devpi_server.url).list_users()
