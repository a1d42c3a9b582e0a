"""The stack through the real Pulumi engine vs a devpi-client loop vs a raw ``requests`` loop.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--sizes 10,100] [--no-readme]``

For each size N: one fresh devpi-server (started here, like the tests do), 3 users and N indexes
spread over them, and in one run against that server:

- ``pulumi``: the real CLI (``~/.pulumi/bin/pulumi``, built by ``.ci/engine/build.sh``), local file
  backend, passphrase secrets, this repository's program (``tests/engine/harness.py``):
  ``up`` (create), a no-change ``preview``, ``refresh``, ``up`` changing the title of every index,
  ``destroy``;
- ``devpi-client``: ``devpi user -c`` / ``devpi index -c`` / ``devpi getjson`` / ``devpi index NAME
  title=...`` / ``devpi index --delete -y`` / ``devpi user --delete -y``, one process per object
  (throwaway ``--clientdir``);
- ``raw``: one keep-alive ``requests.Session``, one login as root, bare PUT/GET/PATCH/DELETE (the floor).

Then where the engine's time goes: ``up``/``destroy`` with ``--parallel 1``, the default and
``--parallel 32`` and with ``PULUMI_SKIP_CHECKPOINTS=true``; one ``up``/``preview``/``destroy`` with
``-v=9 --logtostderr`` whose engine log gives the start of the language host and of the dynamic
provider host, every provider RPC (the first call per provider class includes unpickling
``__provider``) and every checkpoint write; and start-up micro-benchmarks (an empty program's
preview, ``python -m pulumi.dynamic`` until it prints its port, unpickling each provider class).
The figures replace the ``engine`` section of benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import json
import os
import platform
import re
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.engine.harness import (  # noqa: E402
    ENGINE_BIN,
    VENV,
    PulumiProject,
    engine_env,
    find_pulumi,
    new_project,
)
from tests.fixtures.devpi import BIN, DevpiServer, start_devpi_server  # noqa: E402

README = REPO / "benchmarks" / "README.md"
BEGIN, END = "<!-- BEGIN engine -->", "<!-- END engine -->"
STACK = "bench"
USERS = 3
TITLE = "bench v2"
PHASES = ("create", "preview", "refresh", "update", "destroy")
PHASE_LABEL = {
    "create": "create (`up`) — 3 users + N indexes",
    "preview": "no-change `preview`",
    "refresh": "`refresh` (read every object)",
    "update": "`up` changing the title of every index",
    "destroy": "`destroy` (delete every object)",
}


# ------------------------------------------------------------------------------------ helpers
def median_time(fn: Callable[[], Any], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return statistics.median(out)


class ServerLog:
    """Requests devpi-server logged since the last ``take()``."""

    PATTERN = re.compile(r"\[req\d+\] (\w+) (\S+)")

    def __init__(self, server: DevpiServer) -> None:
        self.server = server
        self.seen = self._all()

    def _all(self) -> list[str]:
        text = self.server.log_path.read_text(errors="replace")
        return ["login" if m.group(2) == "/+login" else m.group(1) for m in self.PATTERN.finditer(text)]

    def take(self) -> Counter[str]:
        now = self._all()
        new = Counter(now[len(self.seen):])
        self.seen = now
        return new


def fmt_requests(counts: Counter[str]) -> str:
    order = ["login", "GET", "PUT", "PATCH", "DELETE", "POST"]
    keys = sorted(counts, key=lambda k: order.index(k) if k in order else 99)
    return ", ".join(f"{counts[k]} {k}" for k in keys) or "0"


Timings = dict[str, tuple[float, Counter[str]]]  # phase -> (seconds, server requests)


@dataclasses.dataclass
class Layout:
    """Users and indexes one contender creates (names distinct per contender)."""

    prefix: str
    n: int

    @property
    def users(self) -> list[str]:
        return [f"{self.prefix}u{k}" for k in range(USERS)]

    @property
    def indexes(self) -> list[str]:
        return [f"{self.prefix}u{i % USERS}/ix{i}" for i in range(self.n)]

    def config(self, *, title: str | None = None) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name in self.indexes:
            entry: dict[str, Any] = {"name": name, "volatile": True, "bases": []}
            if title:
                entry["title"] = title
            out.append(entry)
        return out


# ------------------------------------------------------------------------------------ engine
def ensure_engine() -> None:
    needed = ["pulumi", "pulumi-language-python", "pulumi-resource-pulumi-python"]
    if find_pulumi() is None or not all((ENGINE_BIN / b).exists() for b in needed):
        subprocess.run([str(REPO / ".ci" / "engine" / "build.sh"), sys.executable], check=True)


def pulumi_version() -> str:
    return subprocess.run([str(find_pulumi()), "version"], capture_output=True, text=True, check=True,
                          env=engine_env(Path(tempfile.gettempdir()))).stdout.strip()


@dataclasses.dataclass
class Run:
    seconds: float
    stdout: str
    stderr: str
    started: float  # wall clock (time.time()) at spawn, to line up with the engine log

    def summary(self) -> str:
        found = re.findall(r"([+~\-]?\s*\d+ (?:created|updated|deleted|unchanged|changed|replaced|to create|"
                           r"to update|to delete))", self.stdout)
        return ", ".join(" ".join(s.split()) for s in found)


def pulumi(project: PulumiProject, *args: str, env: dict[str, str] | None = None) -> Run:
    p = dataclasses.replace(project, env={**project.env, **env}) if env else project
    started = time.time()
    start = time.perf_counter()
    result = p.run(*args, timeout=900)
    return Run(time.perf_counter() - start, result.stdout, result.stderr, started)


def up(project: PulumiProject, *extra: str, env: dict[str, str] | None = None) -> Run:
    return pulumi(project, "up", "--yes", "--skip-preview", "--stack", project.stack, *extra, env=env)


def destroy(project: PulumiProject, *extra: str, env: dict[str, str] | None = None) -> Run:
    return pulumi(project, "destroy", "--yes", "--skip-preview", "--stack", project.stack, *extra, env=env)


def engine_project(base: Path, server: DevpiServer, layout: Layout) -> PulumiProject:
    project = new_project(base, stack=STACK)
    project.write_config({
        "serverUrl": server.url,
        "users": [{"name": u, "email": f"{u}@example.com"} for u in layout.users],
        "indexes": layout.config(),
    })
    project.set_secret("rootPassword", server.root_password)
    for user in layout.users:
        project.set_secret(f"userPasswords.{user}", secrets.token_urlsafe(12), path=True)
    return project


def expect(run: Run, *fragments: str) -> None:
    for fragment in fragments:
        if fragment not in " ".join(run.stdout.split()):
            raise AssertionError(f"expected {fragment!r} in the output:\n{run.stdout[-3000:]}")


Step = Callable[[], Any]


def engine_steps(project: PulumiProject, layout: Layout, state_kb: list[float]) -> dict[str, Step]:
    """The five commands, checked by their summaries; ``state_kb`` gets the state file's size after ``up``."""
    objects = 4 + USERS + layout.n  # stack, registry component, InitialValue, root, users, indexes
    state_file = project.state / ".pulumi" / "stacks" / "devpi-registry" / f"{project.stack}.json"

    def create() -> Run:
        run = up(project)
        expect(run, f"+ {objects} created")
        state_kb.append(state_file.stat().st_size / 1024)
        return run

    def update() -> Run:
        project.write_config({"indexes": layout.config(title=TITLE)})
        run = up(project)
        expect(run, f"~ {layout.n} updated")
        project.write_config({"indexes": layout.config()})  # the variants below create without titles
        return run

    def remove() -> Run:
        run = destroy(project)
        expect(run, f"- {objects} deleted")
        return run

    return {
        "create": create,
        "preview": lambda: pulumi(project, "preview", "--expect-no-changes", "--stack", project.stack),
        "refresh": lambda: pulumi(project, "refresh", "--yes", "--skip-preview", "--stack", project.stack),
        "update": update,
        "destroy": remove,
    }


VARIANTS: list[tuple[str, tuple[str, ...], dict[str, str]]] = [
    ("default (`--parallel` = 4 x CPUs)", (), {}),
    ("`--parallel 1`", ("--parallel", "1"), {}),
    ("`--parallel 32`", ("--parallel", "32"), {}),
    ("`PULUMI_SKIP_CHECKPOINTS=true`", (), {"PULUMI_SKIP_CHECKPOINTS": "true"}),
]


def engine_variants(project: PulumiProject, rounds: int = 2) -> dict[str, tuple[float, float]]:
    """``up`` + ``destroy`` per setting, ``rounds`` times with the order rotated; the best of each (the
    machine is shared: the minimum is the figure least disturbed by other load)."""
    seen: dict[str, list[tuple[float, float]]] = {label: [] for label, _, _ in VARIANTS}
    for k in range(rounds):
        for label, args, env in VARIANTS[k % len(VARIANTS):] + VARIANTS[:k % len(VARIANTS)]:
            created = up(project, *args, env=env)
            destroyed = destroy(project, *args, env=env)
            seen[label].append((created.seconds, destroyed.seconds))
    return {label: (min(c for c, _ in runs), min(d for _, d in runs)) for label, runs in seen.items()}


# ------------------------------------------------------------------------------ engine log
def _log_events(stderr: str) -> list[tuple[float, str]]:
    events = []
    for line in stderr.splitlines():
        if not line.startswith('{"time"'):
            continue
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        stamp = doc.get("time", "")
        m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", stamp)
        if not m:
            continue
        t = datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp()
        t += float(f"0.{m.group(2) or 0}")
        events.append((t, str(doc.get("msg", ""))))
    return events


RPC = re.compile(r"^Provider\[0x[0-9a-f]+\]\.(\w+)\((.*?)\):? (executing|success|failed)")
DYNAMIC_TYPE = re.compile(r"dynamic/devpi:(\w+)::")


@dataclasses.dataclass
class Breakdown:
    wall: float
    cli_start: float | None = None
    metadata: float | None = None
    required_packages: float | None = None
    program: float | None = None
    program_first_registration: float | None = None
    provider_start: float | None = None
    program_start: float | None = None
    rpcs: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    first_rpc: float | None = None
    until_first_rpc: float | None = None
    rpc_busy: float = 0.0
    max_in_flight: int = 0
    checkpoints: int = 0
    tail: float | None = None


def breakdown(  # noqa: C901, PLR0912, PLR0915 - one linear report of one log; splitting it hides the table it builds
    run: Run,
) -> Breakdown:
    """Where one logged command spent its time, from the engine's own log lines."""
    events = _log_events(run.stderr)
    b = Breakdown(wall=run.seconds)
    if not events:
        return b
    b.cli_start = events[0][0] - run.started

    def first(pred: Callable[[str], bool], after: float = 0.0) -> float | None:
        return next((t for t, msg in events if t >= after and pred(msg)), None)

    def span(start: float | None, end: float | None) -> float | None:
        return end - start if start is not None and end is not None else None

    about = first(lambda m: m.startswith("langhost[python].About() executing"))
    b.metadata = span(about, first(lambda m: m.startswith("langhost[python].About() success")))
    req = first(lambda m: "GetRequiredPackages(" in m and m.endswith("executing"))
    b.required_packages = span(req, first(lambda m: "GetRequiredPackages(" in m and "success" in m))
    run_start = first(lambda m: m.startswith("langhost[python].Run(") and m.endswith("executing"))
    run_end = first(lambda m: m.startswith("langhost[python].Run(") and " success" in m)
    b.program = span(run_start, run_end)
    b.program_start = span(run.started, run_start)
    if run_start is not None:
        b.program_first_registration = span(
            run_start, first(lambda m: m.startswith("ResourceMonitor.RegisterResource received"), run_start))
    launch = first(lambda m: "Launching plugin 'pulumi-python (resource)'" in m)
    b.provider_start = span(launch, first(lambda m: m.startswith("Handshake:") and "pulumi-python" in m))
    b.checkpoints = sum(1 for _, m in events if m.startswith("Saved stack") and "checkpoint" in m)
    end = next((t for t, m in reversed(events) if "complete ***" in m), events[-1][0])
    b.tail = (run.started + run.seconds) - (run_end if run_end is not None else end)

    open_calls: dict[tuple[str, str], float] = {}
    intervals: list[tuple[float, float]] = []
    first_key: tuple[str, str] | None = None
    in_flight = 0
    for t, msg in events:
        m = RPC.match(msg)
        if not m:
            continue
        method, args, state = m.groups()
        typ = DYNAMIC_TYPE.search(args)
        if typ is None:
            continue
        key = (method, args.split(",")[0] if method != "Read" else args)
        if state == "executing":
            if first_key is None:
                first_key = key
                b.until_first_rpc = t - run.started
            open_calls[key] = t
            in_flight += 1
            b.max_in_flight = max(b.max_in_flight, in_flight)
        elif key in open_calls:
            start = open_calls.pop(key)
            in_flight -= 1
            ms = (t - start) * 1000
            b.rpcs.setdefault(method, []).append(ms)
            intervals.append((start, t))
            if key == first_key and b.first_rpc is None:
                b.first_rpc = ms / 1000
    covered, cur_start, cur_end = 0.0, None, None
    for s, e in sorted(intervals):
        if cur_end is None or s > cur_end:
            if cur_end is not None and cur_start is not None:
                covered += cur_end - cur_start
            cur_start, cur_end = s, e
        else:
            cur_end = max(cur_end, e)
    if cur_end is not None and cur_start is not None:
        covered += cur_end - cur_start
    b.rpc_busy = covered
    return b


def engine_logged(project: PulumiProject) -> dict[str, Breakdown]:
    verbose = ("-v=9", "--logtostderr")
    out = {"up": breakdown(up(project, *verbose))}
    out["preview"] = breakdown(pulumi(project, "preview", "--expect-no-changes", "--stack", project.stack, *verbose))
    out["destroy"] = breakdown(destroy(project, *verbose))
    return out


# ------------------------------------------------------------------------------ the baselines


def cli_steps(server: DevpiServer, layout: Layout, clientdir: Path) -> dict[str, Step]:
    def devpi(*args: str) -> None:
        subprocess.run([str(BIN / "devpi"), "--clientdir", str(clientdir), *args],
                       capture_output=True, text=True, check=True)

    passwords = {u: secrets.token_urlsafe(12) for u in layout.users}

    def create() -> None:
        devpi("use", server.url)
        devpi("login", "root", "--password", server.root_password)
        for u in layout.users:
            devpi("user", "-c", u, f"password={passwords[u]}", f"email={u}@example.com")
        for ix in layout.indexes:
            devpi("index", "-c", ix, "volatile=True")

    def read() -> None:
        for ix in layout.indexes:
            devpi("getjson", f"/{ix}")

    def update() -> None:
        for ix in layout.indexes:
            devpi("index", ix, f"title={TITLE}")

    def delete() -> None:
        for ix in layout.indexes:
            devpi("index", "--delete", "-y", ix)
        for u in layout.users:
            devpi("user", "--delete", "-y", u)

    return {"create": create, "refresh": read, "update": update, "destroy": delete}


def raw_steps(server: DevpiServer, layout: Layout, session: requests.Session) -> dict[str, Step]:
    s = session
    s.headers["Accept"] = "application/json"

    def call(method: str, path: str, expect: tuple[int, ...], **kw: Any) -> None:
        resp = s.request(method, f"{server.url}/{path}", timeout=30, **kw)
        assert resp.status_code in expect, (method, path, resp.status_code, resp.text)

    def create() -> None:
        token = s.post(f"{server.url}/+login", json={"user": "root", "password": server.root_password},
                       timeout=30).json()["result"]["password"]
        s.headers["X-Devpi-Auth"] = base64.b64encode(f"root:{token}".encode()).decode()
        for u in layout.users:
            call("PUT", u, (201,), json={"password": secrets.token_urlsafe(12), "email": f"{u}@example.com"})
        for ix in layout.indexes:
            call("PUT", ix, (200, 201), json={"volatile": True})

    def read() -> None:
        for ix in layout.indexes:
            call("GET", ix, (200,), params={"no_projects": ""})

    def update() -> None:
        for ix in layout.indexes:
            call("PATCH", ix, (200,), json={"title": TITLE})

    def delete() -> None:
        for ix in layout.indexes:
            call("DELETE", ix, (200, 201))
        for u in layout.users:
            call("DELETE", u, (200, 201))

    return {"create": create, "refresh": read, "update": update, "destroy": delete}


def run_interleaved(log: ServerLog, contenders: dict[str, dict[str, Step]]) -> dict[str, Timings]:
    """Phase by phase, each contender in turn (pulumi, devpi-client, raw) on its own users and indexes:
    a change in the machine's load over the minutes of the run hits one phase of all three alike."""
    out: dict[str, Timings] = {name: {} for name in contenders}
    log.take()
    for phase in PHASES:
        for name, steps in contenders.items():
            if phase not in steps:
                continue
            start = time.perf_counter()
            steps[phase]()
            out[name][phase] = (time.perf_counter() - start, log.take())
        print(f"  {phase}: " + ", ".join(f"{name} {out[name][phase][0]:.2f}s" for name in contenders
                                         if phase in out[name]), flush=True)
    return out


def warm_up(server: DevpiServer) -> None:
    """A few raw requests first, so no contender pays for the fresh server's first commits."""
    s = requests.Session()
    token = s.post(f"{server.url}/+login", json={"user": "root", "password": server.root_password},
                   timeout=30).json()["result"]["password"]
    s.headers["X-Devpi-Auth"] = base64.b64encode(f"root:{token}".encode()).decode()
    for i in range(3):
        s.put(f"{server.url}/root/warm{i}", json={}, timeout=30).raise_for_status()
        s.get(f"{server.url}/root/warm{i}", timeout=30).raise_for_status()
        s.delete(f"{server.url}/root/warm{i}", timeout=30).raise_for_status()
    s.close()


# ------------------------------------------------------------------------------ start-up costs
@contextlib.contextmanager
def session_process(argv: list[str], **kw: Any) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True, **kw)
    try:
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)  # our own process group: the sh wrapper and its python
        proc.wait(10)


def provider_host_start(cwd: Path, *, wrapper: bool) -> float:
    """Seconds from spawn until the dynamic provider host prints its port (it then serves gRPC)."""
    env = {**os.environ, "PULUMI_PROJECT": "devpi-registry", "PULUMI_RUNTIME_VIRTUALENV": str(VENV)}
    argv = [str(ENGINE_BIN / "pulumi-resource-pulumi-python")] if wrapper else [sys.executable, "-u", "-m",
                                                                               "pulumi.dynamic"]
    start = time.perf_counter()
    with session_process(argv, cwd=cwd, env=env) as proc:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        took = time.perf_counter() - start
    assert line.strip().isdigit(), line
    return took


STARTUP = {
    "cli": "`pulumi version` (CLI start)",
    "empty": "`pulumi preview`, empty program (no resources, no provider plugin)",
    "python": "`python -c pass`",
    "import pulumi": "`python -c 'import pulumi'`",
    "import program": "`python -c 'import components.program'` (the program's imports)",
    "host": "`python -m pulumi.dynamic` until it prints its port",
    "plugin": "`pulumi-resource-pulumi-python` (sh wrapper + the same) until the port",
}
COLD = ("InitialValue", "DevpiRoot", "DevpiUser", "DevpiIndex")
UNPICKLE = r"""
import base64, json, sys, time
t0 = time.perf_counter()
import dill, pulumi.dynamic.dynamic as dyn
from pulumi.runtime._serialization import _deserialize
base = time.perf_counter() - t0
strings = json.loads(sys.argv[1])
out = {"sdk import": base}
for name, s in strings.items():
    start = time.perf_counter()
    _deserialize(lambda: dill.loads(base64.b64decode(s)))
    out[name + " cold"] = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(200):
        _deserialize(lambda: dill.loads(base64.b64decode(s)))
    out[name + " warm"] = (time.perf_counter() - start) / 200
print(json.dumps(out))
"""


def unpickle_costs(cwd: Path) -> dict[str, float]:
    """``__provider`` of each class as the SDK serializes it, unpickled in a fresh interpreter the way
    the dynamic provider host does (first: imports the provider's module; then: a cache hit would skip it)."""
    script = (
        "import json\n"
        "from pulumi.dynamic.dynamic import serialize_provider\n"
        "from components.providers.latch import InitialValueProvider\n"
        "from components.providers.root import DevpiRootProvider\n"
        "from components.providers.user import DevpiUserProvider\n"
        "from components.providers.index import DevpiIndexProvider\n"
        "print(json.dumps({c.__name__.removesuffix('Provider'): str(serialize_provider(c())) for c in "
        "(InitialValueProvider, DevpiRootProvider, DevpiUserProvider, DevpiIndexProvider)}))\n"
    )
    strings = subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True,
                             check=True).stdout
    out = json.loads(subprocess.run([sys.executable, "-c", UNPICKLE, strings], cwd=cwd, capture_output=True,
                                    text=True, check=True).stdout)
    out["pickle bytes"] = max(len(s) for s in json.loads(strings).values())
    return {k: float(v) for k, v in out.items()}


def empty_project(base: Path) -> PulumiProject:
    """A program that declares nothing, same runtime and virtualenv: what the engine costs by itself."""
    folder = base / "empty"
    folder.mkdir(parents=True)
    (folder / "Pulumi.yaml").write_text(
        f"name: bench-empty\nruntime:\n  name: python\n  options:\n    toolchain: pip\n    virtualenv: {VENV}\n")
    (folder / "__main__.py").write_text("import pulumi  # noqa: F401\n")
    state = base / "empty-state"
    state.mkdir()
    project = PulumiProject(folder, state, "empty", engine_env(state))
    project.run("stack", "init", "empty", "--secrets-provider", "passphrase")
    # one plain key: the language host hands a stack without any config to the program as null
    project.run("config", "set", "--stack", "empty", "bench-empty:unused", "1")
    project.run("up", "--yes", "--skip-preview", "--stack", "empty")
    return project


def startup_costs(base: Path, program_dir: Path) -> dict[str, float]:
    out: dict[str, float] = {}
    py = sys.executable
    out["cli"] = median_time(lambda: subprocess.run(
        [str(find_pulumi()), "version"], capture_output=True, check=True), 3)
    empty = empty_project(base)
    out["empty"] = median_time(
        lambda: empty.run("preview", "--expect-no-changes", "--stack", "empty"), 3)
    out["python"] = median_time(lambda: subprocess.run([py, "-c", "pass"], check=True), 3)
    out["import pulumi"] = median_time(
        lambda: subprocess.run([py, "-c", "import pulumi"], check=True), 3)
    out["import program"] = median_time(
        lambda: subprocess.run([py, "-c", "import components.program"], cwd=program_dir, check=True), 3)
    out["host"] = statistics.median(
        provider_host_start(program_dir, wrapper=False) for _ in range(5))
    out["plugin"] = statistics.median(
        provider_host_start(program_dir, wrapper=True) for _ in range(5))
    return out


# ------------------------------------------------------------------------------ one size
@dataclasses.dataclass
class SizeResult:
    n: int
    engine: Timings
    cli: Timings
    raw: Timings
    variants: dict[str, tuple[float, float]]
    logged: dict[str, Breakdown]
    state_kb: float
    load: float


def fresh_server(base: Path) -> DevpiServer:
    """A fresh devpi-server whose (random) root password the stack config accepts: it refuses one starting
    with '-' (the image passes it to devpi-init as an argument)."""
    for attempt in range(10):
        folder = base / f"server{attempt}"
        folder.mkdir(parents=True)
        server = start_devpi_server(folder)
        if not server.root_password.startswith("-"):
            return server
        server.stop()
    raise RuntimeError("no usable root password in 10 tries")


def run_size(base: Path, n: int) -> SizeResult:
    base.mkdir(parents=True)
    server = fresh_server(base)
    session = requests.Session()
    print(f"N={n} (load average {os.getloadavg()[0]:.1f})", flush=True)
    try:
        warm_up(server)
        log = ServerLog(server)
        project = engine_project(base, server, Layout("e", n))
        state_kb: list[float] = []
        timings = run_interleaved(log, {
            "pulumi": engine_steps(project, Layout("e", n), state_kb),
            "devpi-client": cli_steps(server, Layout("c", n), base / "clientdir"),
            "raw": raw_steps(server, Layout("r", n), session),
        })
        variants = engine_variants(project)
        print(f"  variants (create, destroy): {variants}", flush=True)
        logged = engine_logged(project)
    finally:
        session.close()
        server.stop()
    return SizeResult(n, timings["pulumi"], timings["devpi-client"], timings["raw"], variants, logged, state_kb[0],
                      os.getloadavg()[0])


# ------------------------------------------------------------------------------ the report
def versions() -> dict[str, str]:
    def out(*argv: str) -> str:
        return subprocess.run(list(argv), capture_output=True, text=True, check=False).stdout.strip()

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor() or "unknown CPU")
    return {
        "pulumi": pulumi_version(),
        "devpi-server": out(str(BIN / "devpi-server"), "--version").splitlines()[0],
        "devpi-client": out(str(BIN / "devpi"), "--version").splitlines()[0].split()[-1],
        "python": platform.python_version(),
        "cpu": cpu,
    }


def ms_or_dash(v: float | None) -> str:
    return "—" if v is None else f"{v * 1000:.0f}"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "—"


def render(  # noqa: C901, PLR0915 - writes the README section top to bottom, one table after another
    results: list[SizeResult], startup: dict[str, float], unpickle: dict[str, float],
    info: dict[str, str], total_seconds: float,
) -> str:
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sizes = ",".join(str(r.n) for r in results)
    lines = [
        f"The stack through the real engine: pulumi {info['pulumi']} (local file backend, passphrase secrets, "
        f"Python language host, dynamic providers), devpi-server {info['devpi-server']} on loopback, fresh per N, "
        f"3 users and N indexes spread over them; devpi-client {info['devpi-client']}; "
        f"`benchmarks/bench_engine.py --sizes {sizes}`, {stamp}, {os.cpu_count()} CPUs ({info['cpu']}), "
        f"Python {info['python']}, load average " + ", ".join(f"{r.load:.1f} after N={r.n}" for r in results)
        + f", whole run {total_seconds / 60:.1f} min. One run per figure unless noted (wall-clock seconds); "
        f"per N, each operation is done by pulumi, then the devpi-client loop, then the raw loop, on the same server "
        f"(own users and indexes each), before the next operation starts. The loops log in once, inside "
        f"create.",
        "",
        "| N | operation | pulumi | devpi-client loop | raw HTTP (floor) | pulumi vs devpi-client | pulumi vs raw "
        "| server requests (pulumi; raw) |",
        "|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        for phase in PHASES:
            e, e_requests = r.engine[phase]
            if phase in r.cli:
                c, rw = r.cli[phase][0], r.raw[phase][0]
                cells = [f"{c:.2f}", f"{rw:.2f}", f"**{c / e:.2f}x faster**" if e < c else f"{e / c:.2f}x slower",
                         ratio(e, rw)]
                reqs = f"{fmt_requests(e_requests)}; {fmt_requests(r.raw[phase][1])}"
            else:
                cells = ["—", "—", "—", "—"]
                reqs = f"{fmt_requests(e_requests)}; —"
            lines.append(f"| {r.n} | {PHASE_LABEL[phase]} | {e:.2f} | {' | '.join(cells)} | {reqs} |")

    big = results[-1]
    e_up, c_up = big.engine["create"][0], big.cli["create"][0]
    verdict = "met" if e_up < c_up else "NOT met"
    lines += [
        "",
        f"Target — `pulumi up` of {big.n} indexes faster than the devpi-client loop: **{verdict}**: "
        f"{e_up:.2f} s vs {c_up:.2f} s, the loop takes **{c_up / e_up:.2f}x** as long "
        f"(`./tasks deploy` runs `pulumi up` with its preview: add the preview row).",
    ]

    if len(results) >= 2:
        small = results[0]
        dn = big.n - small.n
        lines += [
            "",
            f"Cost per index (slope between N={small.n} and N={big.n}: extra seconds / {dn} extra indexes) and "
            f"fixed cost per command (intercept at N=0), ms:",
            "",
            "| operation | pulumi per index | devpi-client per index | raw per index | pulumi overhead per index "
            "over raw | pulumi fixed | devpi-client fixed | raw fixed |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for phase in PHASES:
            def slope(a: float, b: float) -> float:
                return (b - a) / dn * 1000

            def fixed(a: float, b: float) -> float:
                return (a - (b - a) / dn * small.n) * 1000

            e0, e1 = small.engine[phase][0], big.engine[phase][0]
            slopes = [f"{slope(e0, e1):.1f}"]
            if phase in big.cli:
                c0, c1 = small.cli[phase][0], big.cli[phase][0]
                r0, r1 = small.raw[phase][0], big.raw[phase][0]
                slopes += [f"{slope(c0, c1):.1f}", f"{slope(r0, r1):.1f}", f"{slope(e0, e1) - slope(r0, r1):.1f}",
                        f"{fixed(e0, e1):.0f}", f"{fixed(c0, c1):.0f}", f"{fixed(r0, r1):.0f}"]
            else:
                slopes += ["—", "—", "—", f"{fixed(e0, e1):.0f}", "—", "—"]
            lines.append(f"| {PHASE_LABEL[phase]} | {' | '.join(slopes)} |")

    lines += ["", "Start-up costs (median of 3, provider host of 5):", "",
              "| what | ms |", "|---|---:|"]
    lines += [f"| {STARTUP[k]} | {v * 1000:.0f} |" for k, v in startup.items()]
    for r in results:
        lines.append(f"| `pulumi preview`, no change, this program with N={r.n} (from the table above) | "
                     f"{r.engine['preview'][0] * 1000:.0f} |")
    lines += [
        "",
        f"`__provider` is a {unpickle['pickle bytes']:.0f}-byte by-reference pickle (class path only), stored "
        f"encrypted in the inputs and outputs of every resource. Unpickled in a fresh interpreter as the host "
        f"does: the SDK's dill and dynamic modules import in {unpickle['sdk import'] * 1000:.0f} ms; the first "
        f"unpickle (InitialValue) {unpickle['InitialValue cold'] * 1000:.0f} ms, because it imports "
        f"`components.providers`, which imports all four provider modules; the other three classes then "
        f"{sum(unpickle[k + ' cold'] for k in ('DevpiRoot', 'DevpiUser', 'DevpiIndex')) * 1000:.1f} ms together; "
        f"a repeat unpickle {statistics.mean(unpickle[k + ' warm'] for k in ('DevpiRoot', 'DevpiIndex')) * 1e6:.0f}"
        " µs. The host caches the provider by its pickle string, so a command unpickles 4 times, not once per "
        f"resource: deserialization costs ~{sum(unpickle[k + ' cold'] for k in COLD) * 1000:.0f} ms once per "
        "command (visible as the first provider RPC below), nothing per resource.",
    ]

    lines += ["", "Create and destroy by engine setting (s; best of 2 rounds, order rotated, after the table above):",
              "",
              "| setting | " + " | ".join(f"N={r.n} create | N={r.n} destroy" for r in results) + " |",
              "|---|" + "---:|---:|" * len(results)]
    for label, _, _ in VARIANTS:
        cells = [f"{r.variants[label][0]:.2f} | {r.variants[label][1]:.2f}" for r in results]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    lines += ["", "State file after `up`: " + ", ".join(f"N={r.n} {r.state_kb:.0f} KB" for r in results)
              + " (rewritten whole at every checkpoint).", ""]

    cols = [(r.n, cmd, r.logged[cmd]) for r in results for cmd in ("up", "preview", "destroy")]
    lines += [
        "Where the time goes, from one extra run of each command with `-v=9 --logtostderr` (the engine's "
        "timestamped log; verbose logging itself slows the engine a little):",
        "",
        "| | " + " | ".join(f"N={n} {cmd}" for n, cmd, _ in cols) + " |",
        "|---|" + "---:|" * len(cols),
    ]

    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v * 1000:.0f}"

    def row(label: str, fn: Callable[[Breakdown], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(fn(b) for _, _, b in cols) + " |")

    row("wall, ms", lambda b: f"{b.wall * 1000:.0f}")
    row("CLI start until its first log line, ms", lambda b: ms(b.cli_start))
    row("CLI start until the program starts (`Run`), ms", lambda b: ms(b.program_start))
    row("language host: program metadata (`About`, a python run), ms", lambda b: ms(b.metadata))
    row("language host: `GetRequiredPackages` (a python run), ms", lambda b: ms(b.required_packages))
    row("program run (python start to exit; it lasts as long as the steps), ms", lambda b: ms(b.program))
    row("… of which start until the first resource registration, ms", lambda b: ms(b.program_first_registration))
    row("dynamic provider host start (launch to gRPC handshake), ms", lambda b: ms(b.provider_start))
    row("CLI start until the first provider RPC, ms", lambda b: ms(b.until_first_rpc))
    row("provider RPCs", lambda b: str(sum(len(v) for v in b.rpcs.values())))
    def median_rpc(method: str) -> Callable[[Breakdown], str]:
        return lambda b: f"{statistics.median(b.rpcs[method]):.1f}" if b.rpcs.get(method) else "—"

    for method in ("Check", "Diff", "Create", "Delete"):
        row(f"median `{method}` RPC, ms", median_rpc(method))
    row("first provider RPC, ms (up/preview: a `Check` that unpickles `__provider` and configures the provider; "
        "destroy: a `Delete`, with the login)", lambda b: ms(b.first_rpc))
    row("time with at least one provider RPC in flight, ms (share of wall)",
        lambda b: f"{b.rpc_busy * 1000:.0f} ({b.rpc_busy / b.wall:.0%})")
    row("most provider RPCs in flight at once", lambda b: str(b.max_in_flight))
    row("checkpoint writes (whole state file)", lambda b: str(b.checkpoints))
    row("after the program exits until the CLI exits, ms", lambda b: ms(b.tail))
    return "\n".join([*lines, "", *reading(results, startup, unpickle)])


def reading(results: list[SizeResult], startup: dict[str, float], unpickle: dict[str, float]) -> list[str]:
    """What the figures say, computed from this run's numbers."""
    big, small = results[-1], results[0]
    lb, empty = big.logged["up"], startup["empty"]
    v = big.variants
    default, skip = v[VARIANTS[0][0]], v[VARIANTS[3][0]]
    p1, p32 = v[VARIANTS[1][0]], v[VARIANTS[2][0]]
    mb = lb.checkpoints * big.state_kb / 1024
    out = ["How to read it:", ""]
    out.append(
        f"- **Fixed cost per command.** An empty program's `pulumi preview` takes {empty * 1000:.0f} ms: the CLI "
        f"({startup['cli'] * 1000:.0f} ms to start), then the language host starts Python for the program's "
        f"metadata (`About`, {ms_or_dash(lb.metadata)} ms at N={big.n}), for the plugins it needs "
        f"(`GetRequiredPackages`, {ms_or_dash(lb.required_packages)} ms) and to run the program, whose imports "
        f"(`pulumi` and this project) take {startup['import program'] * 1000:.0f} ms; the dynamic provider host "
        f"({startup['host'] * 1000:.0f} ms until it serves) starts at the first dynamic resource while the "
        f"program runs. At N={big.n} the first provider RPC comes {ms_or_dash(lb.until_first_rpc)} ms after the "
        f"CLI starts. That fixed cost is why a small stack is many times the raw floor, and why the lead over the "
        f"devpi-client loop grows with N: create {ratio(small.cli['create'][0], small.engine['create'][0])} "
        f"faster at N={small.n}, {ratio(big.cli['create'][0], big.engine['create'][0])} at N={big.n}."
    )
    if len(results) >= 2:
        dn = big.n - small.n

        def slope(field: str) -> float:
            t0: Timings = getattr(small, field)
            t1: Timings = getattr(big, field)
            return (t1["create"][0] - t0["create"][0]) / dn * 1000

        out.append(
            f"- **Per resource.** Creating one more index costs {slope('engine'):.1f} ms through the engine, "
            f"{slope('raw'):.1f} ms raw and {slope('cli'):.1f} ms with devpi-client (a new Python process and "
            f"a fresh connection per call): the engine adds ~{slope('engine') - slope('raw'):.0f} ms per "
            f"resource over the floor. At N={big.n}, `up` spends {lb.rpc_busy / lb.wall:.0%} of its time with a "
            f"provider RPC in flight; the rest is the fixed start and the engine's own bookkeeping."
        )
    out.append(
        f"- **State writes.** The file backend rewrites the whole state file at every step: {lb.checkpoints} writes "
        f"for `up` at N={big.n}, of a file that grows to {big.state_kb:.0f} KB (up to ~{mb:.0f} MB written). "
        f"`PULUMI_SKIP_CHECKPOINTS=true` (supported by this engine: `env.SkipCheckpoints` in "
        f"`pkg/backend/snapshot.go` saves only the final state) gives create "
        f"{skip[0]:.2f} s vs {default[0]:.2f} s and destroy {skip[1]:.2f} s vs {default[1]:.2f} s at N={big.n}. "
        f"The stack does not set it: an interrupted run would then leave a state that does not know the objects "
        f"it already made."
    )
    out.append(
        f"- **Parallelism.** The default `--parallel` is 4 x CPUs ({4 * (os.cpu_count() or 1)} here), but the "
        f"dynamic provider host serves 4 RPCs at a time (`ThreadPoolExecutor(max_workers=4)` in "
        f"`pulumi/dynamic/__main__.py`), devpi-server commits one write at a time and there are "
        f"{os.cpu_count()} cores: at N={big.n}, `--parallel 1` {p1[0]:.2f} s, the default {default[0]:.2f} s, "
        f"`--parallel 32` {p32[0]:.2f} s for create; "
        f"{p1[1]:.2f} / {default[1]:.2f} / {p32[1]:.2f} s for destroy."
    )
    start, writes, server = lb.until_first_rpc or 0.0, default[0] - skip[0], big.raw["create"][0]
    out.append(
        f"- **What dominates `up` at N={big.n}** ({default[0]:.2f} s, default settings): the fixed start until "
        f"the first provider RPC ~{start:.2f} s ({start / default[0]:.0%}), the state writes ~{writes:.2f} s "
        f"({writes / default[0]:.0%}, the difference with `PULUMI_SKIP_CHECKPOINTS`), devpi-server's own work "
        f"~{server:.2f} s ({server / default[0]:.0%}, the raw floor); the remaining "
        f"~{default[0] - start - writes - server:.2f} s is the engine's per-step work and the RPC round trips. "
        f"Approximate: these overlap in part."
    )
    out.append(
        f"- **Provider deserialization** is not a per-resource cost: "
        f"~{sum(unpickle[k + ' cold'] for k in COLD) * 1000:.0f} ms once per command for the first unpickle "
        f"(importing the provider modules), microseconds after."
    )
    return out


def write_readme(text: str) -> None:
    content = README.read_text()
    if BEGIN not in content:
        content = content.rstrip("\n") + f"\n\n{BEGIN}\n{END}\n"
    start, end = content.index(BEGIN) + len(BEGIN), content.index(END)
    README.write_text(content[:start] + "\n" + text + "\n" + content[end:])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,100", help="comma-separated index counts (default 10,100)")
    parser.add_argument("--no-readme", action="store_true", help="print only, leave benchmarks/README.md alone")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
    begin = time.perf_counter()
    ensure_engine()
    info = versions()
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-engine-") as tmp:
        base = Path(tmp)
        for n in sizes:
            results.append(run_size(base / f"n{n}", n))
        program_dir = next((base / f"n{sizes[0]}" / "project").glob("__main__.py")).parent
        startup = startup_costs(base / "startup", program_dir)
        unpickle = unpickle_costs(program_dir)
    text = render(results, startup, unpickle, info, time.perf_counter() - begin)
    print(text)
    if not args.no_readme:
        write_readme(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
