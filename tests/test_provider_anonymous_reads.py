"""Reads need no login, so a pending rotation of root's password cannot break ``pulumi refresh``.

The situation: ``pulumi config set --secret rootPassword NEW`` was run, ``pulumi up`` (whose DevpiRoot
step rotates the password on the server) was not. The providers are configured with NEW while root's
password on the server is still the old one. Before the fix every read logged in as root and failed
(``refused the login of user 'root'``). The real server runs with ``--restrict-modify root``, as the
production image does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.devpi.client import DevpiClient
from components.devpi.errors import AuthenticationError
from components.providers.index import DevpiIndexProvider
from components.providers.user import DevpiUserProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured
from tests.support import make_wheel

pytestmark = pytest.mark.devpi

PENDING = "rotated-in-config-not-yet-on-server"


def root(server: DevpiServer) -> DevpiClient:
    return DevpiClient(server.url, "root", server.root_password)


@pytest.fixture
def objects(devpi_server: DevpiServer, unique: str, tmp_path: Path) -> tuple[str, str, str]:
    """A user with a profile, an empty index and an index holding a package, made as root."""
    c = root(devpi_server)
    user = f"anon{unique}"
    c.create_user(user, "pw", email=f"{user}@example.com", title="T")
    c.create_index(f"{user}/empty", {"title": "empty"})
    c.create_index(f"{user}/full", {"acl_upload": ["root"], "bases": [f"{user}/empty"]})
    c.upload(f"{user}/full", make_wheel(tmp_path, "anon-pkg", "1.0"), name="anon-pkg", version="1.0")
    return user, f"{user}/empty", f"{user}/full"


def user_props(name: str, **over: Any) -> dict[str, Any]:
    return {"name": name, "password": "pw", "email": f"{name}@example.com", "title": "T",
            "description": None, "adopt": False, "force_destroy": False, **over}


def index_props(index: str, **over: Any) -> dict[str, Any]:
    owner, name = index.split("/")
    return {"owner": owner, "name": name, **over}


@pytest.fixture
def no_login(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every login attempt (there must be none for reads)."""
    attempts: list[str] = []
    real = DevpiClient.login

    def login(self: DevpiClient) -> str:
        attempts.append(str(self.user))
        return real(self)

    monkeypatch.setattr(DevpiClient, "login", login)
    return attempts


class TestDevpiServesReadsAnonymously:
    """The facts the providers rely on, checked on a ``--restrict-modify root`` server."""

    def test_user_and_index_with_and_without_projects(self, devpi_server: DevpiServer,
                                                      objects: tuple[str, str, str]) -> None:
        user, empty, full = objects
        anon = DevpiClient(devpi_server.url)
        got = anon.get_user(user)
        assert got["email"] == f"{user}@example.com" and got["title"] == "T"
        assert set(got["indexes"]) == {"empty", "full"}
        assert anon.get_index(empty)["title"] == "empty"
        assert "projects" not in anon.get_index(full)
        assert anon.get_index(full, projects=True)["projects"] == ["anon-pkg"]
        everyone = anon.list_users()
        assert everyone[user]["indexes"]["full"]["bases"] == [empty], "GET / carries every index config"


class TestPendingRootRotation:
    def test_reads_work_without_logging_in(self, devpi_server: DevpiServer, objects: tuple[str, str, str],
                                           no_login: list[str]) -> None:
        user, empty, full = objects
        users = configured(DevpiUserProvider, devpi_server, password=PENDING)
        indexes = configured(DevpiIndexProvider, devpi_server, password=PENDING)
        read = users.read(user, user_props(user))
        assert read.id == user and (read.outs or {})["email"] == f"{user}@example.com"
        for index in (empty, full):
            got = indexes.read(index, index_props(index))
            assert got.id == index
        assert (indexes.read(full, index_props(full)).outs or {})["bases"] == [empty]
        assert no_login == [], "reads must not log in"

    def test_delete_of_something_already_gone_needs_no_login(self, devpi_server: DevpiServer, unique: str,
                                                            no_login: list[str]) -> None:
        configured(DevpiUserProvider, devpi_server, password=PENDING).delete(
            f"gone{unique}", user_props(f"gone{unique}"))
        configured(DevpiIndexProvider, devpi_server, password=PENDING).delete(
            f"gone{unique}/x", index_props(f"gone{unique}/x"))
        assert no_login == []

    def test_refused_delete_needs_no_login(self, devpi_server: DevpiServer, objects: tuple[str, str, str],
                                           no_login: list[str]) -> None:
        user, _, full = objects
        with pytest.raises(RuntimeError, match="still owns the indexes"):
            configured(DevpiUserProvider, devpi_server, password=PENDING).delete(user, user_props(user))
        with pytest.raises(RuntimeError, match="still holds 1 project"):
            configured(DevpiIndexProvider, devpi_server, password=PENDING).delete(full, index_props(full))
        assert no_login == []

    def test_a_write_explains_the_pending_rotation(self, devpi_server: DevpiServer,
                                                   objects: tuple[str, str, str]) -> None:
        user, empty, _ = objects
        users = configured(DevpiUserProvider, devpi_server, password=PENDING)
        with pytest.raises(AuthenticationError) as exc:
            users.update(user, user_props(user), user_props(user, title="New"))
        message = str(exc.value)
        assert "rootPassword" in message and "not root's current password" in message
        assert "`pulumi up` performs it" in message and "DevpiRoot runs before users and indexes" in message
        assert "pulumi config set --secret rootPassword" in message, "says how to fix it otherwise"
        assert PENDING not in message and devpi_server.root_password not in message
        indexes = configured(DevpiIndexProvider, devpi_server, password=PENDING)
        with pytest.raises(AuthenticationError, match="not root's current password"):
            indexes.update(empty, index_props(empty, title="empty"), index_props(empty, title="new"))
        assert root(devpi_server).get_user(user)["title"] == "T", "nothing changed"
