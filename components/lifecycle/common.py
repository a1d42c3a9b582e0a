"""What every lifecycle command shares: the one-line error type, rich consoles on the command's
streams (progress bars, tables), and the load gate that pauses work while devpi-server is busy."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

from rich.console import Console, RenderableType
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as RichProgress
from rich.table import Table

from components.devpi.errors import DevpiError

__all__ = [
    "BusyGate",
    "BusyLimits",
    "LifecycleError",
    "Progress",
    "UsageError",
    "busy_reason",
    "make_console",
    "replica_lag_reason",
    "show",
    "table",
]


class LifecycleError(Exception):
    """A failure the CLI reports as one line (no traceback) with a non-zero exit."""


class UsageError(LifecycleError):
    """A bad option or argument value, found before anything was done (exit 2, like argparse's)."""


# Width of output that is not a terminal: wide enough that a pipe or file never gets a line wrapped.
_PLAIN_WIDTH = 10_000


def make_console(stream: TextIO, env: Mapping[str, str] | None = None) -> Console:
    """A rich Console on ``stream`` (a command's injected stdout or stderr).

    Colours and live progress only at a terminal, by rich's rules read from ``env`` (default: the
    process environment): ``NO_COLOR`` drops colours, ``FORCE_COLOR``/``TTY_COMPATIBLE`` override the
    tty check. A pipe, a file or a test's StringIO gets plain text without escape codes, unwrapped.
    Markup, emoji codes and highlighting are off: names and reasons are printed as they are.
    """
    console = Console(file=stream, _environ=dict(os.environ if env is None else env), markup=False,
                      emoji=False, highlight=False)
    if not console.is_terminal:
        console.width = _PLAIN_WIDTH
    return console


def show(console: Console, renderable: RenderableType) -> None:
    """Print ``renderable``; off a terminal without the trailing blanks rich pads table cells with."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))


def table(*columns: str, right: tuple[str, ...] = ()) -> Table:
    """A borderless table with a header row, one space between columns (greppable in a pipe);
    the columns named in ``right`` are right-aligned (numbers)."""
    grid = Table(box=None, show_edge=False, pad_edge=False, collapse_padding=True, header_style="bold")
    for name in columns:
        grid.add_column(name, justify="right" if name in right else "left")
    return grid


class Progress:
    """A progress bar (rich) on a console, drawn only at a terminal: elsewhere it prints nothing."""

    def __init__(self, total: int, label: str, console: Console) -> None:
        self.total = max(total, 0)
        self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, disable=not console.is_terminal)
        self._task = self._bar.add_task(label, total=self.total)
        self._bar.start()

    def advance(self, n: int = 1) -> None:
        self._bar.advance(self._task, n)

    def close(self) -> None:
        self._bar.stop()


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


def replica_lag_reason(name: str, primary: Mapping[str, Any], replica: Mapping[str, Any],
                       limits: BusyLimits = BusyLimits()) -> str | None:
    """Pure: why a declared replica (its own ``/+status``) is too far behind the primary's serial, or None."""
    serial, own = primary.get("serial"), replica.get("serial")
    if not isinstance(serial, int) or not isinstance(own, int) or serial - own <= limits.max_replica_lag:
        return None
    return f"replica {name} is {serial - own} serials behind (limit {limits.max_replica_lag})"


class BusyGate:
    """Call ``check()`` before each write: reads /+status at most every ``interval`` seconds and, while
    the server is busy, waits (bounded by ``max_wait``), then raises LifecycleError.

    ``replicas`` (name -> fetch of that replica's own ``/+status``) are the declared replicas: one too
    far behind the primary pauses the writes like a lagging polling replica does. One that cannot be
    reached is reported through ``notify`` (once, and again when it is back) and not waited for: a
    replica that is down does not slow down with the primary's load, and it catches up from the
    changelog when it returns, so waiting for it would only block the prune.
    """

    def __init__(
        self,
        fetch_status: Callable[[], Mapping[str, Any]],
        *,
        replicas: Mapping[str, Callable[[], Mapping[str, Any]]] | None = None,
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
        self.replicas = dict(replicas or {})
        self.unreachable: dict[str, str] = {}  # declared replicas that could not be read, and why
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
        reason = self._reason()
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
                reason = self._reason()
            self.paused_seconds += self.clock() - start
        self._next = self.clock() + self.interval

    def _reason(self) -> str | None:
        """Why to pause now: the primary's own status first, then each declared replica's."""
        status = self.fetch_status()
        reason = busy_reason(status, self.wall(), self.limits)
        for name, fetch in self.replicas.items():
            if reason is not None:
                break
            try:
                replica = fetch()
            except DevpiError as exc:
                if name not in self.unreachable and self.notify:
                    self.notify(f"declared replica {name} is unreachable ({' '.join(str(exc).split())}); "
                                "not waiting for it: it catches up from the primary's changelog when back")
                self.unreachable[name] = str(exc)
                continue
            if self.unreachable.pop(name, None) is not None and self.notify:
                self.notify(f"declared replica {name} answers again")
            reason = replica_lag_reason(name, status, replica, self.limits)
        return reason
