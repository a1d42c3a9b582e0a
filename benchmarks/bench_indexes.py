"""Index create/read/delete: the providers vs devpi's CLI vs a raw ``requests`` loop (the floor).

Run: ``.venv/bin/python benchmarks/bench_indexes.py [--count 100] [--no-readme]``

One devpi-server (started here, like the tests do), one owner user, then ``count`` indexes created,
read and deleted by each contender in turn:

- ``provider``: the provider methods in this process (what the host runs, minus gRPC);
- ``provider-host``: the same through the real ``python -m pulumi.dynamic`` host over gRPC;
- ``devpi-cli``: a loop of ``devpi index -c`` / ``devpi getjson`` / ``devpi index --delete``;
- ``raw``: one keep-alive ``requests.Session``, one login, bare PUT/GET/DELETE (the floor).

Also counted: HTTP requests per operation (a counting transport adapter in this process; the server
log for the host), logins per process, and requests made by a preview (check + diff).
The figures replace the ``indexes`` section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from components.client import TOKENS, DevpiClient  # noqa: E402
from components.providers.index import DevpiIndexProvider  # noqa: E402
from tests.fixtures.devpi import DevpiServer, start_devpi_server  # noqa: E402
from tests.fixtures.provider_host import (  # noqa: E402
    ProviderHost,
    configured,
    from_struct,
    provider_prop,
    stack_config,
)

BIN = Path(sys.executable).parent
README = REPO / "benchmarks" / "README.md"
BEGIN, END = "<!-- BEGIN indexes -->", "<!-- END indexes -->"


class Counting:
    """Counts every HTTP request this process sends (all sessions), by method."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._orig = HTTPAdapter.send

    def __enter__(self) -> Counting:
        orig, counts = self._orig, self.counts

        def send(adapter: HTTPAdapter, request: requests.PreparedRequest, *a: Any, **kw: Any) -> Any:
            path = (request.path_url or "").split("?")[0]
            counts["login" if path.endswith("/+login") else str(request.method)] += 1
            return orig(adapter, request, *a, **kw)

        HTTPAdapter.send = send  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        HTTPAdapter.send = self._orig  # type: ignore[method-assign]

    def take(self) -> dict[str, int]:
        out = dict(self.counts)
        self.counts.clear()
        return out


def server_requests(server: DevpiServer) -> Counter[str]:
    """Requests the server logged so far, by method (login separately)."""
    out: Counter[str] = Counter()
    for m in re.finditer(r"\[req\d+\] (\w+) (\S+)", server.log_path.read_text(errors="replace")):
        out["login" if m.group(2) == "/+login" else m.group(1)] += 1
    return out


def timed(fn: Callable[[int], Any], n: int) -> tuple[float, list[Any]]:
    """Mean ms per call of fn(0..n-1), and the results."""
    results = []
    start = time.perf_counter()
    for i in range(n):
        results.append(fn(i))
    return (time.perf_counter() - start) * 1000 / n, results


def bench_provider(server: DevpiServer, owner: str, n: int, counter: Counting) -> dict[str, Any]:
    p = configured(DevpiIndexProvider, server)
    TOKENS.clear()
    counter.take()
    inputs = [p.check({}, {"owner": owner, "name": f"p{i}"}).inputs for i in range(n)]
    diffs = [p.diff(f"{owner}/p{i}", inputs[i], inputs[i]) for i in range(n)]
    assert not any(d.changes for d in diffs)
    preview_requests = sum(counter.take().values())
    create, created = timed(lambda i: p.create(inputs[i]), n)
    c_create = counter.take()
    outs = [c.outs for c in created]
    read, reads = timed(lambda i: p.read(f"{owner}/p{i}", outs[i]), n)
    assert all(r.id == f"{owner}/p{i}" for i, r in enumerate(reads))
    c_read = counter.take()
    delete, _ = timed(lambda i: p.delete(f"{owner}/p{i}", outs[i]), n)
    c_delete = counter.take()
    return {"create": create, "read": read, "delete": delete, "preview_requests": preview_requests,
            "requests": {"create": c_create, "read": c_read, "delete": c_delete}}


def bench_host(server: DevpiServer, owner: str, n: int) -> dict[str, Any]:
    host = ProviderHost.start()
    try:
        host.configure(stack_config(server.url, server.root_password))
        prov = provider_prop(DevpiIndexProvider())
        before = server_requests(server)
        inputs = [from_struct(host.check({}, {"__provider": prov, "owner": owner, "name": f"h{i}"}).inputs)
                  for i in range(n)]
        for i in range(n):
            host.diff(f"{owner}/h{i}", inputs[i], inputs[i])
        preview_requests = sum((server_requests(server) - before).values())
        create, created = timed(lambda i: host.create(inputs[i]), n)
        outs = [from_struct(c.properties) for c in created]
        before = server_requests(server)
        read, _ = timed(lambda i: host.read(f"{owner}/h{i}", outs[i]), n)
        read_requests = dict(server_requests(server) - before)
        delete, _ = timed(lambda i: host.delete(f"{owner}/h{i}", outs[i]), n)
    finally:
        host.stop()
    return {"create": create, "read": read, "delete": delete, "preview_requests": preview_requests,
            "read_requests": read_requests}


def bench_cli(server: DevpiServer, owner: str, n: int, clientdir: Path) -> dict[str, Any]:
    def devpi(*args: str) -> str:
        proc = subprocess.run([str(BIN / "devpi"), "--clientdir", str(clientdir), *args],
                              capture_output=True, text=True, check=True)
        return proc.stdout

    devpi("use", server.url)
    devpi("login", "root", "--password", server.root_password)
    create, _ = timed(lambda i: devpi("index", "-c", f"{owner}/c{i}"), n)
    read, _ = timed(lambda i: devpi("getjson", f"/{owner}/c{i}"), n)
    delete, _ = timed(lambda i: devpi("index", "-y", "--delete", f"{owner}/c{i}"), n)
    return {"create": create, "read": read, "delete": delete}


def bench_raw(server: DevpiServer, owner: str, n: int) -> dict[str, Any]:
    s = requests.Session()
    s.headers["Accept"] = "application/json"
    token = s.post(f"{server.url}/+login", json={"user": "root", "password": server.root_password},
                   timeout=30).json()["result"]["password"]
    s.headers["X-Devpi-Auth"] = base64.b64encode(f"root:{token}".encode()).decode()

    def call(method: str, i: int, expect: tuple[int, ...], **kw: Any) -> None:
        resp = s.request(method, f"{server.url}/{owner}/r{i}", timeout=30, **kw)
        assert resp.status_code in expect, (method, resp.status_code, resp.text)

    create, _ = timed(lambda i: call("PUT", i, (200,), json={}), n)
    read, _ = timed(lambda i: call("GET", i, (200,), params={"no_projects": ""}), n)
    delete, _ = timed(lambda i: call("DELETE", i, (201,)), n)
    s.close()
    return {"create": create, "read": read, "delete": delete}


def render(n: int, results: dict[str, dict[str, Any]], prov: dict[str, Any], host: dict[str, Any]) -> str:
    raw = results["raw"]
    lines = [
        f"Index create/read/delete, {n} indexes each way, one devpi-server 6.20.3 on loopback "
        f"(`benchmarks/bench_indexes.py`, {time.strftime('%Y-%m-%d', time.gmtime())}). Mean ms per operation; "
        "ratio = vs the raw floor.",
        "",
        "| contender | create ms | read ms | delete ms | total ms | total ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, r in results.items():
        total = r["create"] + r["read"] + r["delete"]
        raw_total = raw["create"] + raw["read"] + raw["delete"]
        lines.append(
            f"| {name} | {r['create']:.1f} ({r['create'] / raw['create']:.2f}x) | {r['read']:.1f} "
            f"({r['read'] / raw['read']:.2f}x) | {r['delete']:.1f} ({r['delete'] / raw['delete']:.2f}x) "
            f"| {total:.1f} | {total / raw_total:.2f}x |")
    req = prov["requests"]
    lines += [
        "",
        "Requests (counted by a transport adapter in-process; the server log for the host):",
        f"- provider create: {req['create']} for {n} indexes (incl. the one login of the process)",
        f"- provider refresh (read): {req['read']} for {n} indexes; through the host: {host['read_requests']}",
        f"- provider delete: {req['delete']} (a GET with projects guards against deleting packages, then DELETE)",
        f"- preview (check + diff of {n}): {prov['preview_requests']} requests in-process, "
        f"{host['preview_requests']} through the host",
    ]
    return "\n".join(lines)


def write_readme(text: str) -> None:
    content = README.read_text()
    start, end = content.index(BEGIN) + len(BEGIN), content.index(END)
    README.write_text(content[:start] + "\n" + text + "\n" + content[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--no-readme", action="store_true", help="print only, leave benchmarks/README.md alone")
    args = parser.parse_args()
    n = args.count
    with tempfile.TemporaryDirectory(prefix="bench-indexes-") as tmp:
        server = start_devpi_server(Path(tmp))
        try:
            owner = "bench"
            DevpiClient(server.url, "root", server.root_password).create_user(owner, "bench-pw")
            results: dict[str, dict[str, Any]] = {}
            with Counting() as counter:
                results["raw"] = bench_raw(server, owner, n)
                prov = bench_provider(server, owner, n, counter)
                results["provider"] = prov
            host = bench_host(server, owner, n)
            results["provider-host"] = host
            results["devpi-cli"] = bench_cli(server, owner, n, Path(tmp) / "client")
            # the floor again at the end: the server warms up (and its DB grows) during the run
            raw2 = bench_raw(server, owner, n)
            results["raw"] = {k: min(results["raw"][k], raw2[k]) for k in ("create", "read", "delete")}
        finally:
            server.stop()
    text = render(n, results, prov, host)
    print(text)
    if not args.no_readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
