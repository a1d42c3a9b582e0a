"""Replication lag and fresh-replica sync, against the primary's own commit rate.

A primary and one replica on loopback, started as the stack starts them (tests/fixtures/replicas.py:
the replica runs the replica container's own command). Then:

1. **burst**: 200 uploads (one small wheel each, 8 threads, keep-alive) to the primary. Each upload's
   commit serial comes back in ``X-Devpi-Serial``; a watcher polls the replica's ``/+status`` every
   20 ms. Lag of a file = first time the replica's serial reached the file's commit serial minus
   the time the primary answered the upload. Afterwards every file is fetched from the replica's
   simple page to prove it is served. The primary's commit rate is uploads/s of the same burst.
2. **fresh replica**: a new replica on an empty folder joins the primary holding those 200 files;
   time until it answers, until its serial equals the primary's, and until devpi reports its files
   in sync (``replica-in-sync-at``).

Reproduce: ``.venv/bin/python benchmarks/bench_replicas.py`` (prints the README section).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.replicas import FAST_ARGON2, INDEX, JSON, Cluster, make_wheels, start_cluster


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def upload(session: requests.Session, cluster: Cluster, path: Path, auth: str) -> tuple[int, float]:
    """One upload as alice; (commit serial, monotonic time of the answer)."""
    name, version = path.name.split("-")[:2]
    with path.open("rb") as fh:
        resp = session.post(f"{cluster.primary.url}/{INDEX}/", headers={"X-Devpi-Auth": auth},
                            data={":action": "file_upload", "name": name.replace("_", "-"), "version": version,
                                  "protocol_version": "1"},
                            files={"content": (path.name, fh, "application/octet-stream")}, timeout=60)
    done = time.monotonic()
    resp.raise_for_status()
    return int(resp.headers["X-Devpi-Serial"]), done


def burst(cluster: Cluster, wheels: list[Path], replica_url: str) -> dict[str, float]:
    auth = cluster.login(cluster.primary.url, "alice", cluster.alice_password)
    seen: list[tuple[float, int]] = []
    stop = threading.Event()

    def watch() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                serial = s.get(f"{replica_url}/+status", headers=JSON, timeout=5).json()["result"]["serial"]
                seen.append((time.monotonic(), int(serial)))
                time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    local = threading.local()

    def one(path: Path) -> tuple[int, float]:
        if not hasattr(local, "s"):
            local.s = requests.Session()
        return upload(local.s, cluster, path, auth)

    start = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, wheels))
    upload_seconds = time.monotonic() - start
    target = max(serial for serial, _ in results)
    deadline = time.monotonic() + 120
    while (not seen or seen[-1][1] < target) and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    watcher.join()
    lags = []
    for serial, done in results:
        reached = next(t for t, s in seen if s >= serial)
        lags.append(max(reached - done, 0.0))
    all_replicated = (next(t for t, s in seen if s >= target)) - start
    for path in wheels:  # every file is served by the replica
        project = path.name.split("-")[0].replace("_", "-")
        page = requests.get(f"{replica_url}/{INDEX}/+simple/{project}/", timeout=10)
        assert page.status_code == 200 and path.name in page.text, path.name
    return {
        "uploads": len(wheels), "upload_seconds": upload_seconds, "rate": len(wheels) / upload_seconds,
        "p50": statistics.median(lags), "p95": percentile(lags, 95), "max": max(lags),
        "all_replicated": all_replicated,
    }


def fresh_sync(cluster: Cluster) -> dict[str, float]:
    target = cluster.primary.status()["serial"]
    start = time.monotonic()
    node = cluster.add_replica("fresh", start=False)
    node.start(timeout=300)
    answered = time.monotonic() - start
    while node.status()["serial"] < target:
        time.sleep(0.05)
    serial_synced = time.monotonic() - start
    while node.status()["replica-in-sync-at"] is None:
        time.sleep(0.05)
    files_synced = time.monotonic() - start
    return {"answered": answered, "serial": serial_synced, "files": files_synced, "target": target}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--default-argon2", action="store_true",
                        help="keep devpi's argon2 defaults (512 MiB x 16 passes per derived key), as in production")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        base = Path(tmp)
        cluster = start_cluster(base, replicas=("r1",), server_args=() if args.default_argon2 else FAST_ARGON2)
        try:
            wheels = make_wheels(base / "wheels", "burst", args.files)
            b = burst(cluster, wheels, cluster.replicas["r1"].url)
            f = fresh_sync(cluster)
        finally:
            cluster.stop()
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = os.getloadavg()[0]
    print(f"devpi-server 6.20.3 primary + replica on loopback (`benchmarks/bench_replicas.py`, {when}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}, load average {load:.1f} at the end). "
          + ("devpi's default argon2 cost.\n" if args.default_argon2 else
             "Every node with `--argon2-*` lowered as in the tests.\n"))
    print("| burst of uploads to the primary | value |\n|---|---:|")
    print(f"| uploads (8 threads, keep-alive) | {b['uploads']} |")
    print(f"| primary commit rate | {b['rate']:.1f} uploads/s ({b['upload_seconds']:.2f} s) |")
    print(f"| replication lag p50 / p95 / max | {b['p50']:.3f} / {b['p95']:.3f} / {b['max']:.3f} s |")
    print(f"| burst start until the replica held all {b['uploads']} | {b['all_replicated']:.2f} s |")
    print("\n| fresh replica joining the primary | seconds |\n|---|---:|")
    print(f"| start (empty folder, devpi-init as replica) until it answers | {f['answered']:.2f} |")
    print(f"| … until its serial = the primary's ({f['target']}) | {f['serial']:.2f} |")
    print(f"| … until devpi reports its files in sync | {f['files']:.2f} |")


if __name__ == "__main__":
    main()
