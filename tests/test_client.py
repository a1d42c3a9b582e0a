"""The API client against a real devpi-server: typed errors, auth, retries, the operations later work needs."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from components.devpi.client import ClientState, DevpiClient, RetryPolicy, make_session, release_files_of
from components.devpi.errors import (
    AuthenticationError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServerUnreachableError,
)
from tests.fixtures.devpi import DevpiServer
from tests.support import free_port, make_wheel

pytestmark = pytest.mark.devpi


def root(server: DevpiServer, state: ClientState | None = None) -> DevpiClient:
    return DevpiClient(server.url, "root", server.root_password, state=state)


class TestUsersAndIndexes:
    def test_user_and_index_round_trip(self, devpi_server: DevpiServer, unique: str) -> None:
        c = root(devpi_server)
        user = f"u{unique}"
        created = c.create_user(user, "pw-" + unique, email="a@example.com")
        assert created["username"] == user
        assert c.get_user(user)["email"] == "a@example.com"
        cfg = c.create_index(f"{user}/dev", {"volatile": False, "bases": []})
        assert cfg["volatile"] is False and cfg["bases"] == []
        assert c.modify_index(f"{user}/dev", {"title": "T"})["title"] == "T"
        assert "title" not in c.remove_index_keys(f"{user}/dev", ["title"])
        with pytest.raises(ConflictError, match="409"):
            c.create_index(f"{user}/dev", {})
        with pytest.raises(PermissionDeniedError, match="non-volatile"):
            c.delete_index(f"{user}/dev")
        c.modify_index(f"{user}/dev", {"volatile": True})
        c.delete_index(f"{user}/dev")
        with pytest.raises(NotFoundError, match=f"{user}/dev"):
            c.get_index(f"{user}/dev")
        c.delete_user(user)
        with pytest.raises(NotFoundError):
            c.get_user(user)

    def test_invalid_values_are_typed(self, devpi_server: DevpiServer, unique: str) -> None:
        c = root(devpi_server)
        with pytest.raises(InvalidRequestError, match="aren't allowed"):
            c.create_user("bad name" + unique, "pw")
        c.create_user(f"v{unique}", "pw")
        with pytest.raises(InvalidRequestError, match="does not exist"):
            c.create_index(f"v{unique}/x", {"bases": ["nobody/nothing"]})


class TestAuthentication:
    def test_wrong_password_is_an_authentication_error(self, devpi_server: DevpiServer) -> None:
        c = DevpiClient(devpi_server.url, "root", "not-the-password")
        with pytest.raises(AuthenticationError, match="refused the login of user 'root'") as exc:
            c.check_credentials()
        assert "not-the-password" not in str(exc.value)
        assert "not-the-password" not in repr(c)

    def test_one_login_per_process(self, devpi_server: DevpiServer, monkeypatch: pytest.MonkeyPatch) -> None:
        state = ClientState()  # the process's clients share one state: here a fresh one
        calls = []
        real = DevpiClient.login
        monkeypatch.setattr(DevpiClient, "login", lambda self: calls.append(1) or real(self))
        for _ in range(5):
            root(devpi_server, state).check_credentials()
        assert len(calls) == 1

    def test_dead_token_is_renewed(self, devpi_server: DevpiServer) -> None:
        state = ClientState()
        c = root(devpi_server, state)
        c.check_credentials()
        state.remember(c.url, "root", devpi_server.root_password, "forged.token.value")
        c.create_user(f"t{time.time_ns()}", "pw")  # 403 as anonymous -> re-login -> 201
        assert state.cached_token(c.url, "root", devpi_server.root_password) != "forged.token.value"


    def test_check_credentials_survives_a_dead_cached_token(self, devpi_server: DevpiServer) -> None:
        state = ClientState()
        c = root(devpi_server, state)
        state.remember(c.url, "root", devpi_server.root_password, "dead.token.after-restart")
        c.check_credentials()  # /+api says noauth for the dead token: re-login, then ok
        assert state.cached_token(c.url, "root", devpi_server.root_password) not in (None, "dead.token.after-restart")

    def test_forget_token_makes_the_next_request_log_in(self, devpi_server: DevpiServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
        state = ClientState()
        c = root(devpi_server, state)
        c.check_credentials()
        calls = []
        real = DevpiClient.login
        monkeypatch.setattr(DevpiClient, "login", lambda self: calls.append(1) or real(self))
        c.forget_token()
        assert state.cached_token(c.url, "root", devpi_server.root_password) is None
        c.check_credentials()
        assert len(calls) == 1


class TestInjectedSession:
    def test_an_injected_session_is_used_and_left_open(self, devpi_server: DevpiServer) -> None:
        session = make_session(RetryPolicy(attempts=1, backoff=0))
        with DevpiClient(devpi_server.url, session=session, state=ClientState()) as c:
            assert c.session is session and c.retry == RetryPolicy(attempts=1, backoff=0)
            assert "root" in c.list_users()
        with DevpiClient(devpi_server.url, session=session) as again:
            assert again.get_user("root")["username"] == "root"  # the session still works
        session.close()

    def test_a_plain_requests_session_works_too(self, devpi_server: DevpiServer) -> None:
        import requests

        with requests.Session() as session:
            c = DevpiClient(devpi_server.url, session=session, state=ClientState())
            assert c.get_user("root")["username"] == "root", "Accept: JSON is sent per request"

    def test_retry_belongs_to_the_session(self) -> None:
        with pytest.raises(ValueError, match="make_session"):
            DevpiClient("http://127.0.0.1:1", session=make_session(), retry=RetryPolicy())


class TestFaults:
    def test_unreachable_server_names_the_url_after_bounded_retries(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        c = DevpiClient(url, retry=RetryPolicy(attempts=2, backoff=0.05))
        t0 = time.monotonic()
        with pytest.raises(ServerUnreachableError, match=url.replace(".", r"\.")):
            c.api()
        assert time.monotonic() - t0 < 5

    def test_wait_ready_times_out_with_the_url(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        with pytest.raises(ServerUnreachableError, match=r"not ready after 1 s .*\+api"):
            DevpiClient(url).wait_ready(timeout=1, interval=0.2)


class TestPackages:
    def test_upload_push_and_hashes(self, devpi_server: DevpiServer, unique: str, tmp_path: Path) -> None:
        c = root(devpi_server)
        user = f"p{unique}"
        c.create_user(user, "pw")
        c.create_index(f"{user}/nightly", {"volatile": True, "acl_upload": ["root"]})
        c.create_index(f"{user}/stable", {"volatile": False, "acl_upload": ["root"]})
        whl = make_wheel(tmp_path, "geek-utils", "0.1.0.dev1")
        c.upload(f"{user}/nightly", whl, name="geek-utils", version="0.1.0.dev1")
        assert c.list_projects(f"{user}/nightly") == ["geek-utils"]
        files = c.release_files(f"{user}/nightly", "geek_utils", "0.1.0.dev1")
        assert [f.filename for f in files] == [whl.name]
        import hashlib

        assert files[0].sha256 == hashlib.sha256(whl.read_bytes()).hexdigest()
        assert c.download(files[0].href) == whl.read_bytes()
        c.push(f"{user}/nightly", "geek-utils", "0.1.0.dev1", f"{user}/stable")
        pushed = c.release_files(f"{user}/stable", "geek-utils", "0.1.0.dev1")
        assert pushed[0].sha256 == files[0].sha256 and pushed[0].index == f"{user}/stable"
        with pytest.raises(ConflictError, match="already exists"):
            c.push(f"{user}/nightly", "geek-utils", "0.1.0.dev1", f"{user}/stable")
        with pytest.raises(PermissionDeniedError, match="non-volatile"):
            c.delete_version(f"{user}/stable", "geek-utils", "0.1.0.dev1")
        c.delete_version(f"{user}/stable", "geek-utils", "0.1.0.dev1", force=True)
        assert c.list_projects(f"{user}/stable") == []


def test_release_files_of_ignores_docs() -> None:
    data = {"+links": [
        {"rel": "doczip", "href": "http://h/u/i/+f/a/b/x.doc.zip"},
        {"rel": "releasefile", "href": "http://h/u/i/+f/a/b/x-1.whl", "hashes": {"sha256": "ab"}},
    ]}
    assert [(f.filename, f.sha256, f.index) for f in release_files_of(data)] == [("x-1.whl", "ab", "u/i")]
