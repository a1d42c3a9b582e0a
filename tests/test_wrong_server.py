"""A serverUrl that is not devpi-server's root is a clear error, never "everything was deleted".

Before the fix, a wrong URL (an index URL as the manual procedure prints it, or any web server that
answers 404) turned every lookup into NotFoundError, which the providers read as "already gone":
``pulumi refresh`` dropped every user and index from state and ``pulumi destroy`` reported success
while deleting nothing. Real servers only: a real devpi-server, and a real non-devpi HTTP server on
loopback.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from components.devpi.client import DEFAULT_STATE, ClientState, DevpiClient, RetryPolicy
from components.devpi.errors import DevpiError, NotDevpiError, NotFoundError
from components.providers.base import ClientOptions, NotConfiguredError
from components.providers.index import DevpiIndexProvider
from components.providers.root import DevpiRootProvider
from components.providers.user import DevpiUserProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import configured
from tests.support import make_wheel

pytestmark = pytest.mark.devpi


class _Answers404(BaseHTTPRequestHandler):
    """Any web server that is not devpi: 404 for every path and method."""

    def _reply(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = b"<html><body>404 Not Found</body></html>"
        self.send_response(404)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _reply

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass


@pytest.fixture
def not_devpi() -> Iterator[str]:
    """A plain Python http.server on a free loopback port that answers 404 to everything."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers404)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def root(server: DevpiServer) -> DevpiClient:
    return DevpiClient(server.url, "root", server.root_password)


@pytest.fixture
def team(devpi_server: DevpiServer, unique: str) -> tuple[str, str]:
    """A user and one of its indexes (holding a package) that really exist on the server."""
    c = root(devpi_server)
    user = f"wrong{unique}"
    c.create_user(user, "pw")
    c.create_index(f"{user}/nightly", {"acl_upload": ["root"]})
    return user, f"{user}/nightly"


def user_props(name: str) -> dict[str, Any]:
    return {"name": name, "password": "pw", "email": None, "title": None, "description": None,
            "adopt": False, "force_destroy": True}


def index_props(index: str) -> dict[str, Any]:
    owner, name = index.split("/")
    return {"owner": owner, "name": name, "type": "stage", "bases": [], "volatile": True,
            "acl_upload": ["root"], "force_destroy": True}


def test_not_devpi_is_not_a_not_found_error() -> None:
    assert issubclass(NotDevpiError, DevpiError) and not issubclass(NotDevpiError, NotFoundError)


class TestIndexUrlAsServerUrl:
    """``http://host:3141/build_bot/nightly``: devpi itself answers, with its headers, but for an index."""

    # Two layers refuse such a URL. The providers' connection comes from the stack config's rules, so
    # a provider configured with it refuses it before any request (the same message `pulumi preview`
    # gives); and the client itself proves the root before any answer may mean "absent", for every
    # caller that builds one directly (the lifecycle CLI, a stack configured before the rule).

    def test_provider_reads_raise_instead_of_dropping_state(self, devpi_server: DevpiServer,
                                                            team: tuple[str, str]) -> None:
        user, index = team
        url = f"{devpi_server.url}/{index}"
        for provider, id_, props in ((DevpiUserProvider, user, user_props(user)),
                                     (DevpiIndexProvider, index, index_props(index))):
            p = configured(provider, url=url, password=devpi_server.root_password)
            with pytest.raises(NotConfiguredError, match="serverUrl") as refused:
                p.read(id_, props)
            assert url in str(refused.value) and "index" in str(refused.value)
        with pytest.raises(NotDevpiError, match=f"URL of the devpi index '{index}'") as exc:
            DevpiClient(url).get_user(user)
        assert devpi_server.url in str(exc.value), "the message names the server root to use"

    def test_provider_deletes_raise_and_delete_nothing(self, devpi_server: DevpiServer,
                                                       team: tuple[str, str]) -> None:
        user, index = team
        url = f"{devpi_server.url}/{index}"
        with pytest.raises(NotConfiguredError):
            configured(DevpiIndexProvider, url=url, password=devpi_server.root_password).delete(
                index, index_props(index))
        with pytest.raises(NotConfiguredError):
            configured(DevpiUserProvider, url=url, password=devpi_server.root_password).delete(
                user, user_props(user))
        with pytest.raises(NotDevpiError):
            DevpiClient(url, "root", devpi_server.root_password).delete_index(index)
        c = root(devpi_server)
        assert c.get_user(user)["username"] == user and c.get_index(index)["type"] == "stage"

    def test_user_url_is_refused_too(self, devpi_server: DevpiServer, team: tuple[str, str]) -> None:
        user, index = team
        url = f"{devpi_server.url}/{user}"
        p = configured(DevpiIndexProvider, url=url, password=devpi_server.root_password)
        with pytest.raises(NotConfiguredError, match="serverUrl"):
            p.read(index, index_props(index))
        with pytest.raises(NotDevpiError, match=f"URL of the devpi user '{user}'"):
            DevpiClient(url).get_index(index)

    def test_url_of_a_missing_index_is_refused(self, devpi_server: DevpiServer, team: tuple[str, str]) -> None:
        user, _ = team
        url = f"{devpi_server.url}/{user}/nosuch"
        p = configured(DevpiUserProvider, url=url, password=devpi_server.root_password)
        with pytest.raises(NotConfiguredError, match="serverUrl"):
            p.read(user, user_props(user))
        with pytest.raises(NotDevpiError, match="not devpi-server's root URL"):
            DevpiClient(url).get_user(user)

    def test_login_on_an_index_url_is_not_a_not_found(self, devpi_server: DevpiServer,
                                                      team: tuple[str, str]) -> None:
        _, index = team
        c = DevpiClient(f"{devpi_server.url}/{index}", "root", devpi_server.root_password)
        with pytest.raises(NotDevpiError):
            c.login()

    def test_lifecycle_reads_are_protected(self, devpi_server: DevpiServer, team: tuple[str, str],
                                           tmp_path: Path) -> None:
        # promote / prune read versions and treat 404 as "no files": on a wrong URL that is an error.
        _, index = team
        c = root(devpi_server)
        c.upload(index, make_wheel(tmp_path, "wrong-url-pkg", "1.0"), name="wrong-url-pkg", version="1.0")
        wrong = DevpiClient(f"{devpi_server.url}/{index}")
        with pytest.raises(NotDevpiError):
            wrong.get_version(index, "wrong-url-pkg", "1.0")


class TestWebServerThatIsNotDevpi:
    @pytest.mark.parametrize("kind", ["user", "index"])
    @pytest.mark.parametrize("method", ["read", "delete"])
    def test_provider_read_and_delete_raise_naming_url_and_server(self, not_devpi: str, kind: str,
                                                                  method: str) -> None:
        provider: type[DevpiUserProvider | DevpiIndexProvider]
        if kind == "user":
            provider, id_, props = DevpiUserProvider, "alice", user_props("alice")
        else:
            provider, id_, props = DevpiIndexProvider, "alice/dev", index_props("alice/dev")
        p = configured(provider, url=not_devpi, password="s3cret-root")
        with pytest.raises(NotDevpiError) as exc:
            getattr(p, method)(id_, props)
        message = str(exc.value)
        assert not_devpi in message and "404" in message
        assert "BaseHTTP" in message and "text/html" in message, "names what answered"
        assert "s3cret-root" not in message

    def test_a_404_without_devpis_headers_is_never_not_found(self, not_devpi: str) -> None:
        # Even a client that skipped the proof must not turn a foreign 404 into "not found".
        state = ClientState()
        state.mark_proven(not_devpi)
        with pytest.raises(NotDevpiError, match="without devpi's X-Devpi-\\* headers"):
            DevpiClient(not_devpi, state=state).get_user("alice")

    def test_wait_ready_fails_at_once(self, not_devpi: str) -> None:
        t0 = time.monotonic()
        with pytest.raises(NotDevpiError, match="does not lead to devpi-server"):
            DevpiClient(not_devpi).wait_ready(timeout=30, interval=0.2)
        assert time.monotonic() - t0 < 5, "a wrong URL is final: no waiting for the ready timeout"

    def test_root_provider_read_raises(self, not_devpi: str) -> None:
        p = configured(DevpiRootProvider, url=not_devpi, password="pw")
        p.client_options = ClientOptions(retry=RetryPolicy(attempts=0))
        with pytest.raises(NotDevpiError):
            p.read("root", {"password": "pw", "ready_timeout": 5})


class TestProofIsCheap:
    def test_one_proof_request_per_process_and_url(self, devpi_server: DevpiServer, team: tuple[str, str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
        user, index = team
        DEFAULT_STATE.clear()  # the providers' clients share the process-wide state
        sent: list[tuple[str, str]] = []
        real = requests.Session.send

        def recording(self: requests.Session, request: requests.PreparedRequest, **kw: Any) -> Any:
            path = (request.path_url or "").split("?")[0].removeprefix("/")
            sent.append((str(request.method), path))
            return real(self, request, **kw)

        monkeypatch.setattr(requests.Session, "send", recording)
        p = configured(DevpiUserProvider, devpi_server)
        q = configured(DevpiIndexProvider, devpi_server)
        for _ in range(3):
            assert p.read(user, user_props(user)).id == user
            assert q.read(index, index_props(index)).id == index
        assert sent.count(("GET", "+api")) == 1, sent

    def test_devpis_own_404_still_means_gone(self, devpi_server: DevpiServer, unique: str) -> None:
        p = configured(DevpiUserProvider, devpi_server)
        assert p.read(f"never{unique}", user_props(f"never{unique}")).id is None
        p.delete(f"never{unique}", user_props(f"never{unique}"))  # already gone: done
