"""Benchmark: prune 500 versions with devpi-lifecycle vs the ways a person would otherwise do it.

Contenders, each on its own copy of the same history (510 versions of one project, one volatile
index, a fresh loopback devpi-server 6.20.3 started here):

1. ``devpi-lifecycle prune`` logic (``prune_index``: one keep-alive session, one listing request,
   one DELETE per version) with ``--keep-last 10`` -> 500 removals, BusyGate on;
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
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from components.client import DevpiClient  # noqa: E402
from components.lifecycle.common import BusyGate  # noqa: E402
from components.lifecycle.prune import prune_index  # noqa: E402
from components.retention import RetentionPolicy  # noqa: E402
from tests.fixtures.devpi import BIN, start_devpi_server  # noqa: E402
from tests.support import make_wheel  # noqa: E402

PROJECT = "bench-pkg"
KEEP = 10
USER, PASSWORD = "bench", "bench-throwaway-pw"


def versions(n: int) -> list[str]:
    return [f"1.{i}" for i in range(n + KEEP)]


def setup_index(admin: DevpiClient, url: str, index: str, vs: list[str], wheels: Path) -> None:
    admin.create_index(index, {"volatile": True, "bases": []})

    def up(chunk: list[str]) -> None:
        with DevpiClient(url, USER, PASSWORD) as c:
            for v in chunk:
                c.upload(index, wheels / f"bench_pkg-{v}-py3-none-any.whl", name=PROJECT, version=v)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(up, [vs[i::4] for i in range(4)]))
    assert len(admin.get_project(index, PROJECT)) == len(vs)


def remaining(admin: DevpiClient, index: str) -> int:
    return len(admin.get_project(index, PROJECT)) if PROJECT in admin.list_projects(index) else 0


def bench_lifecycle(url: str, index: str) -> tuple[float, int]:
    with DevpiClient(url, USER, PASSWORD) as c:
        t0 = time.perf_counter()
        report = prune_index(c, index, RetentionPolicy(keep_last=KEEP), now=datetime.now(UTC), apply=True,
                             force=False, gate=BusyGate(c.status), jobs=4,
                             make_client=lambda: DevpiClient(url, USER, PASSWORD))
        return time.perf_counter() - t0, len(report.removed)


def bench_devpi_cli(url: str, index: str, vs: list[str], tmp: Path) -> float:
    devpi = str(BIN / "devpi")
    clientdir = tmp / "clientdir"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}
    subprocess.run([devpi, "use", "--clientdir", str(clientdir), f"{url}/{index}"], check=True,
                   capture_output=True, env=env)
    subprocess.run([devpi, "login", "--clientdir", str(clientdir), USER, "--password", PASSWORD], check=True,
                   capture_output=True, env=env)
    t0 = time.perf_counter()
    for v in vs:
        subprocess.run([devpi, "remove", "--clientdir", str(clientdir), "-y", f"{PROJECT}=={v}"], check=True,
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


def bench_cleaner(cleaner: Path, url: str, index: str, n: int, root_password: str) -> tuple[float | None, str]:
    # As root: devpi-cleaner (devpi-plumber) always PATCHes the index to volatile=True around its
    # deletes, and the jonasal image's --restrict-modify=root lets only root modify indexes (as the
    # owner it fails with 403 "PyPIView failed permission check").
    t0 = time.perf_counter()
    proc = subprocess.run([str(cleaner), url, index, f"{PROJECT}<1.{n}", "--batch", "--login", "root",
                           "--password", root_password],
                          capture_output=True, text=True, timeout=3600, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["?"])[-1]
        return None, f"devpi-cleaner failed (exit {proc.returncode}): {tail[:200]}"
    return elapsed, ""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--versions", type=int, default=500, help="versions to remove (default 500)")
    ap.add_argument("--no-cleaner", action="store_true", help="skip devpi-cleaner")
    ap.add_argument("--no-readme", action="store_true", help="do not update benchmarks/README.md")
    args = ap.parse_args()
    n = args.versions
    vs = versions(n)
    with tempfile.TemporaryDirectory(prefix="bench-prune-") as tmpdir:
        tmp = Path(tmpdir)
        server = start_devpi_server(tmp)
        try:
            admin = DevpiClient(server.url, "root", server.root_password)
            admin.create_user(USER, PASSWORD)
            wheels = tmp / "wheels"
            for v in vs:
                make_wheel(wheels, PROJECT, v)
            rows: list[tuple[str, float | None, str]] = []

            t0 = time.perf_counter()
            setup_index(admin, server.url, f"{USER}/lifecycle", vs, wheels)
            setup_s = time.perf_counter() - t0
            ours, removed = bench_lifecycle(server.url, f"{USER}/lifecycle")
            assert removed == n and remaining(admin, f"{USER}/lifecycle") == KEEP, (removed,)
            rows.append(("devpi-lifecycle prune --keep-last 10 --yes (--jobs 4)", ours, ""))

            setup_index(admin, server.url, f"{USER}/cli", vs, wheels)
            cli = bench_devpi_cli(server.url, f"{USER}/cli", vs[:n], tmp)
            assert remaining(admin, f"{USER}/cli") == KEEP
            rows.append(("`devpi remove -y NAME==VER` loop (devpi-client 7.3)", cli, ""))

            cleaner_note = "skipped (--no-cleaner)"
            if not args.no_cleaner:
                cleaner, cleaner_note = install_cleaner(tmp)
                if cleaner is not None:
                    setup_index(admin, server.url, f"{USER}/cleaner", vs, wheels)
                    took, err = bench_cleaner(cleaner, server.url, f"{USER}/cleaner", n, server.root_password)
                    left = remaining(admin, f"{USER}/cleaner")
                    if took is not None and left != KEEP:
                        took, err = None, f"devpi-cleaner left {left} versions instead of {KEEP}"
                    rows.append((f"{cleaner_note} `'{PROJECT}<1.{n}' --batch --login root`", took, err))
                else:
                    rows.append(("devpi-cleaner", None, cleaner_note))
        finally:
            server.stop()

    lines = [f"Prune of {n} versions (keep the newest {KEEP} of {len(vs)}) on a volatile index, fresh "
             f"devpi-server 6.20.3 on loopback, {datetime.now(UTC):%Y-%m-%d}. Setup: {len(vs)} uploads "
             f"via the raw API in {setup_s:.1f} s (4 threads).", "",
             "| tool | seconds | per version | vs devpi-lifecycle |", "|---|---:|---:|---:|"]
    for name, secs, err in rows:
        if secs is None:
            lines.append(f"| {name} | — | — | {err} |")
        else:
            lines.append(f"| {name} | {secs:.2f} | {1000 * secs / n:.1f} ms | {secs / ours:.1f}x |")
    lines += ["", f"**Ratio: devpi-lifecycle prune is {cli / ours:.1f}x faster than the `devpi remove` loop**"
              " (target ≥ 10x). Reproduce: `.venv/bin/python benchmarks/bench_prune.py`."]
    text = "\n".join(lines)
    print(text)
    if not args.no_readme:
        readme = ROOT / "benchmarks" / "README.md"
        content = readme.read_text()
        new = re.sub(r"(<!-- BEGIN prune -->\n).*?(\n<!-- END prune -->)", lambda m: m.group(1) + text + m.group(2),
                     content, flags=re.S)
        if new == content and "<!-- BEGIN prune -->" not in content:
            print("README markers not found; not updated", file=sys.stderr)
        else:
            readme.write_text(new)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
