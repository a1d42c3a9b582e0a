"""Benchmark: prune 500 versions with devpi-lifecycle vs the ways a person would otherwise do it.

Two histories, each pruned by every contender on its own copy (volatile index, a fresh loopback
devpi-server 6.20.3 started here): 500 + 10 versions of ONE project (worst case: devpi regenerates
the project's simple links on every delete, O(versions left)), and 50 projects x 11 versions
(nightly dev builds of many packages). Contenders:

1. ``devpi-lifecycle prune`` logic (``prune_index``: one keep-alive session, one listing request,
   one DELETE per version) -> 500 removals, BusyGate on, 4 deletes in flight;
2. the devpi CLI in a loop, ``devpi remove -y NAME==VER`` once per version (temp ``--clientdir``);
3. devpi-cleaner from PyPI (``devpi-cleaner URL user/index 'NAME<1.500' --batch``), installed into a
   temporary venv at benchmark time; if that fails the README says so.

Setup uploads go through the raw API (``DevpiClient.upload``, 4 threads). The throwaway benchmark
user's password is passed to the baseline tools the only way they take it non-interactively
(``--password``); devpi-lifecycle gets it from the environment.

Usage: ``.venv/bin/python benchmarks/bench_prune.py [--versions 500] [--no-cleaner] [--no-readme]``
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.config.retention import RetentionPolicy  # noqa: E402
from components.devpi.client import DevpiClient  # noqa: E402
from components.lifecycle.common import BusyGate  # noqa: E402
from components.lifecycle.prune import prune_index  # noqa: E402
from tests.fixtures.devpi import BIN, start_devpi_server  # noqa: E402
from tests.support import make_wheel  # noqa: E402

PROJECT = "bench-pkg"
USER, PASSWORD = "bench", "bench-throwaway-pw"
NOTE = (
    'Why the single-project ratio stays below 10x: every `DELETE` of a version makes devpi-server '
    "regenerate the project's simple links from every version left (`_regen_simplelinks`, "
    'devpi_server/model.py), so each commit costs O(versions left) — about 40 ms with ~250 left '
    "here. All tools pay that; devpi-lifecycle's own overhead per delete is a few ms (one keep-alive "
    'session per worker, no re-listing, one login), 4 deletes in flight overlap request handling but '
    'devpi commits them one at a time. With many projects (the usual nightly case) the server cost '
    'is small and the ratio is far higher (second table). devpi-cleaner must run as root on this '
    'deployment (it toggles `volatile` with a PATCH, which `--restrict-modify=root` reserves to '
    'root).'
)


@dataclass(frozen=True)
class Scenario:
    """A history to prune: ``keep`` newest versions of every project stay, ``removals`` go."""

    title: str
    key: str
    projects: dict[str, list[str]]  # project -> versions, oldest first
    keep: int
    cleaner_spec: str | None  # one devpi-cleaner spec covering every removal, if one exists

    @property
    def history(self) -> list[tuple[str, str]]:
        return [(p, v) for p, vs in self.projects.items() for v in vs]

    @property
    def removals(self) -> list[tuple[str, str]]:
        return [(p, v) for p, vs in self.projects.items() for v in vs[: len(vs) - self.keep]]


def scenarios(n: int) -> list[Scenario]:
    one = Scenario(f"one project, {n + 10} versions, keep the newest 10", "one",
                   {PROJECT: [f"1.{i}" for i in range(n + 10)]}, 10, f"{PROJECT}<1.{n}")
    per = 10
    spread = Scenario(f"{n // per} projects x {per + 1} versions, keep the newest 1 of each", "spread",
                      {f"{PROJECT}-{k:03d}": [f"1.{i}" for i in range(per + 1)] for k in range(n // per)}, 1, None)
    return [one, spread]


def setup_index(admin: DevpiClient, url: str, index: str, sc: Scenario, wheels: Path) -> None:
    admin.create_index(index, {"volatile": True, "bases": []})
    history = sc.history

    def up(chunk: list[tuple[str, str]]) -> None:
        with DevpiClient(url, USER, PASSWORD) as c:
            for p, v in chunk:
                c.upload(index, wheels / f"{p.replace('-', '_')}-{v}-py3-none-any.whl", name=p, version=v)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(up, [history[i::4] for i in range(4)]))
    assert remaining(admin, index) == len(history)


def remaining(admin: DevpiClient, index: str) -> int:
    return sum(len(admin.get_project(index, p)) for p in admin.list_projects(index))


def bench_lifecycle(url: str, index: str, keep: int) -> tuple[float, int]:
    with DevpiClient(url, USER, PASSWORD) as c:
        t0 = time.perf_counter()
        report = prune_index(c, index, RetentionPolicy(keep_last=keep), now=datetime.now(UTC), apply=True,
                             force=False, gate=BusyGate(c.status), jobs=4,
                             make_client=lambda: DevpiClient(url, USER, PASSWORD))
        return time.perf_counter() - t0, len(report.removed)


def bench_devpi_cli(url: str, index: str, removals: list[tuple[str, str]], tmp: Path) -> float:
    devpi = str(BIN / "devpi")
    clientdir = tmp / f"clientdir-{index.replace('/', '-')}"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    subprocess.run([devpi, "use", "--clientdir", str(clientdir), f"{url}/{index}"], check=True,
                   capture_output=True, env=env)
    subprocess.run([devpi, "login", "--clientdir", str(clientdir), USER, "--password", PASSWORD], check=True,
                   capture_output=True, env=env)
    t0 = time.perf_counter()
    for p, v in removals:
        subprocess.run([devpi, "remove", "--clientdir", str(clientdir), "-y", f"{p}=={v}"], check=True,
                       capture_output=True, env=env)
    return time.perf_counter() - t0


def install_cleaner(tmp: Path) -> tuple[Path | None, str]:
    venv = tmp / "cleaner-venv"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "devpi-cleaner"], capture_output=True,
                              text=True, timeout=300, check=False)
    except (subprocess.SubprocessError, OSError) as exc:
        return None, f"venv/pip failed: {type(exc).__name__}"
    if proc.returncode != 0:
        return None, f"pip install devpi-cleaner failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    ver = subprocess.run([str(venv / "bin" / "pip"), "show", "devpi-cleaner"], capture_output=True, text=True,
                         check=False).stdout
    m = re.search(r"^Version: (.+)$", ver, re.M)
    return venv / "bin" / "devpi-cleaner", f"devpi-cleaner {m.group(1) if m else '?'}"


def bench_cleaner(cleaner: Path, url: str, index: str, spec: str, root_password: str) -> tuple[float | None, str]:
    # As root: devpi-cleaner (devpi-plumber) always PATCHes the index to volatile=True around its
    # deletes, and the jonasal image's --restrict-modify=root lets only root modify indexes (as the
    # owner it fails with 403 "PyPIView failed permission check").
    t0 = time.perf_counter()
    proc = subprocess.run([str(cleaner), url, index, spec, "--batch", "--login", "root",
                           "--password", root_password],
                          capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["?"])[-1]
        return None, f"devpi-cleaner failed (exit {proc.returncode}): {tail[:200]}"
    return elapsed, ""


def run_scenario(sc: Scenario, admin: DevpiClient, url: str, root_password: str, tmp: Path,
                 cleaner: Path | None, cleaner_note: str) -> list[str]:
    wheels = tmp / "wheels"
    for p, v in sc.history:
        make_wheel(wheels, p, v)
    n = len(sc.removals)
    rows: list[tuple[str, float | None, str]] = []
    t0 = time.perf_counter()
    setup_index(admin, url, f"{USER}/{sc.key}-lifecycle", sc, wheels)
    setup_s = time.perf_counter() - t0
    ours, removed = bench_lifecycle(url, f"{USER}/{sc.key}-lifecycle", sc.keep)
    kept = len(sc.history) - n
    assert removed == n and remaining(admin, f"{USER}/{sc.key}-lifecycle") == kept, (removed,)
    rows.append((f"devpi-lifecycle prune --keep-last {sc.keep} --yes (--jobs 4)", ours, ""))

    setup_index(admin, url, f"{USER}/{sc.key}-cli", sc, wheels)
    cli = bench_devpi_cli(url, f"{USER}/{sc.key}-cli", sc.removals, tmp)
    assert remaining(admin, f"{USER}/{sc.key}-cli") == kept
    rows.append(("`devpi remove -y NAME==VER` loop (devpi-client 7.3)", cli, ""))

    if sc.cleaner_spec is None:
        rows.append(("devpi-cleaner", None, "not run: one package spec per call, no single call covers this"))
    elif cleaner is None:
        rows.append(("devpi-cleaner", None, cleaner_note))
    else:
        setup_index(admin, url, f"{USER}/{sc.key}-cleaner", sc, wheels)
        took, err = bench_cleaner(cleaner, url, f"{USER}/{sc.key}-cleaner", sc.cleaner_spec, root_password)
        left = remaining(admin, f"{USER}/{sc.key}-cleaner")
        if took is not None and left != kept:
            took, err = None, f"devpi-cleaner left {left} versions instead of {kept}"
        rows.append((f"{cleaner_note} `'{sc.cleaner_spec}' --batch --login root`", took, err))

    lines = [f"**{sc.title}** ({n} removals; setup: {len(sc.history)} raw-API uploads in {setup_s:.1f} s)", "",
             "| tool | seconds | per version | vs devpi-lifecycle |", "|---|---:|---:|---:|"]
    for name, secs, err in rows:
        if secs is None:
            lines.append(f"| {name} | — | — | {err} |")
        else:
            lines.append(f"| {name} | {secs:.2f} | {1000 * secs / n:.1f} ms | {secs / ours:.1f}x |")
    lines += ["", f"Ratio vs the `devpi remove` loop: **{cli / ours:.1f}x**.", ""]
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", type=int, default=500, help="versions to remove (default 500)")
    ap.add_argument("--no-cleaner", action="store_true", help="skip devpi-cleaner")
    ap.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    ap.add_argument("--only", choices=["one", "spread"], help="run one scenario only")
    args = ap.parse_args()
    lines = [f"Fresh devpi-server 6.20.3 on loopback, volatile index, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC. "
             "Reproduce: `.venv/bin/python benchmarks/bench_prune.py`.", ""]
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmpdir:
        tmp = Path(tmpdir)
        server = start_devpi_server(tmp)
        try:
            admin = DevpiClient(server.url, "root", server.root_password)
            admin.create_user(USER, PASSWORD)
            cleaner, cleaner_note = (None, "skipped (--no-cleaner)")
            if not args.no_cleaner:
                cleaner, cleaner_note = install_cleaner(tmp)
            for sc in scenarios(args.versions):
                if args.only and sc.key != args.only:
                    continue
                lines += run_scenario(sc, admin, server.url, server.root_password, tmp, cleaner, cleaner_note)
        finally:
            server.stop()
    lines.append(NOTE)
    text = "\n".join(lines).rstrip()
    print(text)
    if not args.no_readme:
        readme = ROOT / "benchmarks" / "README.md"
        content = readme.read_text()
        if "<!-- BEGIN prune -->" not in content:
            print("README markers not found; not updated", file=sys.stderr)
        else:
            readme.write_text(re.sub(r"(<!-- BEGIN prune -->\n).*?(\n<!-- END prune -->)",
                                     lambda m: m.group(1) + text + m.group(2), content, flags=re.S))
    return 0


if __name__ == "__main__":
    sys.exit(main())
