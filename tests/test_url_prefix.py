"""devpi behind a URL prefix (``https://host/devpi/``): files belong to their index, not to ``devpi/alice``.

devpi renders hrefs under its outside URL, so behind a reverse proxy at ``/devpi`` a release file is
``…/devpi/alice/dev/+f/…``. Attributing it by the first two path segments said ``devpi/alice``:
promote reported "no files on source" and du counted nothing. A unit test of the pure function,
then a tiny loopback reverse proxy (forwarding ``/devpi/…`` with ``X-Outside-Url``, as a real proxy
is configured) in front of the real devpi-server.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests

from components.devpi.client import ClientState, DevpiClient, release_files_of
from components.devpi.errors import NotDevpiError
from components.lifecycle.du import measure
from components.lifecycle.promote import promote
from tests.fixtures.devpi import DevpiServer
from tests.support import make_wheel

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "te", "trailer",
              "upgrade", "proxy-authorization", "proxy-authenticate"}


def link(href: str, sha: str = "ab") -> dict[str, Any]:
    return {"rel": "releasefile", "href": href, "hashes": {"sha256": sha}}


class TestAttributionIsPure:
    def test_prefixed_hrefs_belong_to_their_index(self) -> None:
        data = {"+links": [
            link("https://host/devpi/alice/dev/+f/3a6/eb0790f39ac87/p-1.0.tar.gz"),
            link("https://host/tools/devpi/bob/stable/+f/123/4567890abcdef/p-1.0-py3-none-any.whl"),
            {"rel": "doczip", "href": "https://host/devpi/alice/dev/+f/aaa/bbbbbbbbbbbbb/p-1.0.doc.zip"},
        ]}
        files = release_files_of(data)
        assert [(f.index, f.filename) for f in files] == [
            ("alice/dev", "p-1.0.tar.gz"), ("bob/stable", "p-1.0-py3-none-any.whl")]
        assert files[0].path == "alice/dev/+f/3a6/eb0790f39ac87/p-1.0.tar.gz", "server-relative, without prefix"

    def test_the_clients_prefix_is_stripped(self) -> None:
        data = {"+links": [link("https://host/devpi/alice/dev/+f/3a6/eb0790f39ac87/p-1.0.tar.gz")]}
        assert [f.index for f in release_files_of(data, prefix="/devpi")] == ["alice/dev"]
        assert [f.index for f in release_files_of(data, prefix="/devpi/")] == ["alice/dev"]

    def test_unprefixed_and_relative_hrefs_are_unchanged(self) -> None:
        data = {"+links": [link("http://h:3141/u/i/+f/a/b/x-1.whl"), link("/u/i/+f/a/b/x-2.whl")]}
        assert [(f.index, f.path) for f in release_files_of(data)] == [
            ("u/i", "u/i/+f/a/b/x-1.whl"), ("u/i", "u/i/+f/a/b/x-2.whl")]


def _proxy_handler(upstream: str, prefix: str, outside: bool) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        """Forwards ``<prefix>/…`` to devpi; anything else is the proxy's own 404 (no devpi headers)."""

        protocol_version = "HTTP/1.1"

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if self.path != prefix and not self.path.startswith(prefix + "/"):
                self._send(404, {"Content-Type": "text/plain"}, b"no such location")
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
            if outside:
                headers["X-Outside-Url"] = f"http://{self.headers['Host']}{prefix}"
            resp = requests.request(self.command, upstream + (self.path[len(prefix):] or "/"), data=body,
                                    headers=headers, allow_redirects=False, timeout=30)
            kept = {k: v for k, v in resp.headers.items() if k.lower() not in HOP_BY_HOP | {"content-encoding"}}
            # HEAD: no body, but the size of the one a GET would return (du reads it)
            size = resp.headers.get("Content-Length") if self.command == "HEAD" else None
            self._send(resp.status_code, kept, resp.content, size)

        def _send(self, status: int, headers: dict[str, str], body: bytes, size: str | None = None) -> None:
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", size or str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward

        def log_message(self, *args: Any) -> None:
            pass

    return Proxy


def _serve(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def proxied(devpi_server: DevpiServer) -> Iterator[str]:
    """``http://127.0.0.1:PORT/devpi`` -> devpi-server, with X-Outside-Url (a correctly set-up proxy)."""
    for base in _serve(_proxy_handler(devpi_server.url, "/devpi", outside=True)):
        yield base + "/devpi"


@pytest.mark.devpi
class TestBehindAPrefixProxy:
    def test_files_promote_and_du_under_the_prefix(self, devpi_server: DevpiServer, proxied: str,
                                                   unique: str, tmp_path: Path) -> None:
        admin = DevpiClient(proxied + "/", "root", devpi_server.root_password)
        user = f"pre{unique}"
        admin.create_user(user, "pw")
        admin.create_index(f"{user}/dev", {})
        admin.create_index(f"{user}/stable", {"volatile": False})
        c = DevpiClient(proxied, user, "pw")
        whl = make_wheel(tmp_path, "prefix-pkg", "1.0")
        c.upload(f"{user}/dev", whl, name="prefix-pkg", version="1.0")

        files = c.release_files(f"{user}/dev", "prefix-pkg", "1.0")
        assert files[0].href.startswith(proxied + f"/{user}/dev/+f/"), "devpi renders links under the prefix"
        assert [(f.index, f.filename) for f in files] == [(f"{user}/dev", whl.name)]
        assert c.download(files[0].href) == whl.read_bytes()

        result = promote(c, "prefix-pkg", "1.0", f"{user}/dev", f"{user}/stable")
        assert result.action == "pushed" and result.files[0][0] == whl.name

        sizes = measure(c, index=f"{user}/stable")
        assert [(s.index, s.filename, s.size) for s in sizes] == [(f"{user}/stable", whl.name, whl.stat().st_size)]
        on_disk = measure(c, index=f"{user}/dev", serverdir=devpi_server.serverdir)
        assert [s.size for s in on_disk] == [whl.stat().st_size], "f.path is server-relative"

    def test_a_path_the_proxy_does_not_forward_is_not_devpi(self, proxied: str) -> None:
        wrong = proxied.replace("/devpi", "/pypi")
        with pytest.raises(NotDevpiError, match="without devpi's X-Devpi-\\* headers"):
            DevpiClient(wrong).get_user("root")

    def test_prefix_without_outside_url_is_accepted_as_devpis_root(self, devpi_server: DevpiServer) -> None:
        # A proxy that does not send X-Outside-Url: devpi renders its root as "/", our URL has a
        # path. One more request (GET of the URL answers devpi's list of users) proves it is the root.
        for base in _serve(_proxy_handler(devpi_server.url, "/devpi", outside=False)):
            c = DevpiClient(base + "/devpi", state=ClientState())
            assert "root" in c.list_users()
            assert c.get_user("root")["username"] == "root"
