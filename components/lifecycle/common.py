"""What every lifecycle command shares: the one-line error type, a stderr progress bar, and the
load gate that pauses work while devpi-server is busy."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["BusyGate", "BusyLimits", "LifecycleError", "Progress", "UsageError", "busy_reason"]


class LifecycleError(Exception):
    """A failure the CLI reports as one line (no traceback) with a non-zero exit."""


class UsageError(LifecycleError):
    """A bad option or argument value, found before anything was done (exit 2, like argparse's)."""


class Progress:
    """A dependency-free progress bar on stderr, drawn only when stderr is a terminal.

    tqdm would not earn its place: one bar, redrawn at most ten times a second.
    """

    def __init__(self, total: int, label: str, stream: TextIO | None = None, *, enabled: bool | None = None):
        self.total = max(total, 0)
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty() if enabled is None else enabled
        self.done = 0
        self._last = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._last >= 0.1 or self.done >= self.total):
            self._last = now
            self._draw()

    def _draw(self) -> None:
        width = 30
        filled = width * self.done // self.total if self.total else width
        self.stream.write(f"\r[{'#' * filled}{'-' * (width - filled)}] {self.done}/{self.total} {self.label}")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.total:
            self._draw()
            self.stream.write("\n")
            self.stream.flush()


@dataclass(frozen=True)
class BusyLimits:
    """When devpi counts as busy (see ``busy_reason``)."""

    max_event_lag: int = 1000  # commits the event processing (plugins, devpi-web search) may be behind
    max_replica_lag: int = 1000  # serials an active replica may be behind
    replica_active_seconds: float = 300.0  # a replica not polling for this long is gone, not lagging


def busy_reason(status: Mapping[str, Any], now: float, limits: BusyLimits = BusyLimits()) -> str | None:
    """Pure: why the server should be left alone for a while, or None.

    What devpi-server 6.20.3's ``/+status`` really gives: ``serial`` (last commit) and
    ``event-serial`` (last commit the event hooks — devpi-web's search indexer, other plugins — have
    processed); on a primary ``polling_replicas`` {uuid: {serial, last-request, ...}}; on a replica
    ``primary-serial``. Every version we delete is one commit and one event, so a backlog that keeps
    growing means we delete faster than the server digests; replicas far behind mean readers see stale
    data. Either way: pause, the way devpi-cleaner does (it waits on the whoosh queue).
    """
    serial = status.get("serial")
    if not isinstance(serial, int):
        return None
    event_serial = status.get("event-serial")
    if isinstance(event_serial, int) and serial - event_serial > limits.max_event_lag:
        return f"event processing is {serial - event_serial} commits behind (limit {limits.max_event_lag})"
    primary = status.get("primary-serial")
    if isinstance(primary, int) and primary - serial > limits.max_replica_lag:
        return f"this replica is {primary - serial} serials behind its primary"
    for uuid, replica in (status.get("polling_replicas") or {}).items():
        if not isinstance(replica, Mapping):
            continue
        rserial, last = replica.get("serial"), replica.get("last-request")
        if not isinstance(rserial, int) or not isinstance(last, int | float):
            continue
        if now - last <= limits.replica_active_seconds and serial - rserial > limits.max_replica_lag:
            return f"replica {uuid[:8]} is {serial - rserial} serials behind (limit {limits.max_replica_lag})"
    return None


class BusyGate:
    """Call ``check()`` before each write: reads /+status at most every ``interval`` seconds and, while
    the server is busy, waits (bounded by ``max_wait``), then raises LifecycleError."""

    def __init__(
        self,
        fetch_status: Callable[[], Mapping[str, Any]],
        *,
        limits: BusyLimits = BusyLimits(),
        interval: float = 2.0,
        max_wait: float = 300.0,
        poll: float = 1.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.fetch_status = fetch_status
        self.limits = limits
        self.interval = interval
        self.max_wait = max_wait
        self.poll = poll
        self.sleep = sleep
        self.clock = clock
        self.wall = wall
        self.notify = notify
        self._next = 0.0
        self.paused_seconds = 0.0
        self.pauses = 0

    def check(self) -> None:
        now = self.clock()
        if now < self._next:
            return
        reason = busy_reason(self.fetch_status(), self.wall(), self.limits)
        if reason is not None:
            self.pauses += 1
            start = now
            if self.notify:
                self.notify(f"devpi-server busy ({reason}); pausing up to {self.max_wait:g} s")
            while reason is not None:
                if self.clock() - start >= self.max_wait:
                    self.paused_seconds += self.clock() - start
                    raise LifecycleError(
                        f"devpi-server stayed busy for {self.max_wait:g} s ({reason}); nothing more was "
                        "removed — re-run later (prune is safe to repeat)"
                    )
                self.sleep(self.poll)
                reason = busy_reason(self.fetch_status(), self.wall(), self.limits)
            self.paused_seconds += self.clock() - start
        self._next = self.clock() + self.interval
