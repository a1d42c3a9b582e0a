"""Issue 9 through the real engine: a wrong server is never read as "everything was deleted", and a
config error never shows a value the engine holds as a secret."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from components.devpi.client import DevpiClient
from tests.engine.conftest import configure
from tests.engine.harness import PulumiProject
from tests.fixtures.devpi import DevpiServer

pytestmark = [pytest.mark.engine, pytest.mark.devpi, pytest.mark.slow]


@pytest.fixture
def not_devpi() -> Iterator[str]:
    """Some other web server on loopback: it answers 404 to everything."""

    class Handler(BaseHTTPRequestHandler):
        def _404(self) -> None:
            body = b"<html><body>Not Found</body></html>"
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _404

        def log_message(self, *_args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def devpi_resources(project: PulumiProject) -> set[str]:
    return {name for name in project.resources() if name.startswith("devpi-")}


def test_a_wrong_server_is_an_error_never_an_empty_registry(
        project: PulumiProject, fresh_devpi_server: DevpiServer, not_devpi: str) -> None:
    server = fresh_devpi_server
    configure(project, server)
    project.up()
    before = devpi_resources(project)
    assert {"devpi-user-build_bot", "devpi-index-build_bot-stable"} <= before

    project.write_config({"serverUrl": not_devpi})
    # `pulumi up` checks the server the config now names (DevpiRoot takes the URL as an input), so a
    # changed serverUrl shows in the preview and a wrong one fails here, naming what answered.
    preview = project.preview_json()
    root_steps = [s for s in preview["steps"] if s["urn"].endswith("::devpi-root")]
    assert [s["op"] for s in root_steps] == ["update"]
    up = project.up(check=False)
    assert up.returncode != 0
    assert not_devpi in up.stdout + up.stderr and "serverUrl" in up.stdout + up.stderr
    assert devpi_resources(project) == before
    # Refresh and destroy now talk to the wrong server: errors, never "gone".
    refresh = project.refresh(check=False)
    assert refresh.returncode != 0
    assert not_devpi in refresh.stdout + refresh.stderr
    assert devpi_resources(project) == before, "a refresh against the wrong server dropped state"
    destroy = project.destroy(check=False)
    assert destroy.returncode != 0
    assert devpi_resources(project) == before, "a destroy against the wrong server reported deletions"

    # The right server again: nothing was lost anywhere.
    project.write_config({"serverUrl": server.url})
    project.up()
    project.run("preview", "--refresh", "--expect-no-changes", "--stack", project.stack)
    assert DevpiClient(server.url).get_index("build_bot/stable")["volatile"] is False


def test_an_index_url_as_server_url_is_refused_at_preview(
        project: PulumiProject, fresh_devpi_server: DevpiServer) -> None:
    server = fresh_devpi_server
    configure(project, server, f"{server.url}/build_bot/nightly")
    preview = project.run("preview", "--stack", project.stack, check=False)
    out = preview.stdout + preview.stderr
    assert preview.returncode != 0
    assert "serverUrl" in out and f"{server.url}/build_bot/nightly" in out
    assert "Traceback" not in out


@pytest.mark.parametrize(("key", "path"), [("rootPasswd", False), ("users[0].password", True)],
                         ids=["typo-of-a-secret-key", "secret-under-an-unknown-path"])
def test_config_errors_never_show_a_secret(
        project: PulumiProject, fresh_devpi_server: DevpiServer, key: str, path: bool) -> None:
    server = fresh_devpi_server
    configure(project, server)
    secret = "do-not-show-Me-31337"
    project.set_secret(key, secret, path=path)
    preview = project.run("preview", "--stack", project.stack, check=False)
    out = preview.stdout + preview.stderr
    assert preview.returncode != 0
    assert key.split("[")[0] in out
    assert secret not in out
    assert "Traceback" not in out, "a config error is one message, not a traceback"
