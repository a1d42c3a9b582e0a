"""The replica readiness gate (``pulumi-python:dynamic/devpi:ReplicaReady``).

A replica is ready when it answers as devpi, runs as a replica of *this* primary, has heard from
the primary, and its serial is within ``max_lag`` of the primary's current serial. What devpi-server
6.20.3 reports (docs/replicas.md, "Serials and status"):

- the replica's ``GET /+status``: ``role: "REPLICA"``, ``serial`` (last change it applied),
  ``primary-serial`` (the primary's serial as last heard, None until the first successful contact:
  with a wrong shared secret it stays None, every changelog fetch gets 403), ``primary-uuid``,
  ``replication-errors`` (file downloads that failed);
- the primary's ``GET /+status``: ``serial`` and ``uuid`` (``role: "MASTER"`` even when standalone).

``create``/``update`` wait (bounded by ``ready_timeout``) and fail with the replica URL, its serial,
the primary's and the lag; ``server_id`` (the container id) re-runs the wait when the container is
replaced. ``read`` reports the current serials (None while the replica is unreachable: a refresh
must not fail because a replica is down). ``delete`` does nothing: Docker removes the container.

HTTP goes through :class:`~components.devpi.client.DevpiClient` (one attempt per request: this
module's loop is the retry), with ``ca_bundle`` (PEM text) written to a private temporary file for
TLS verification. No stack configuration: everything comes from the inputs.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from components.config.defaults import DEFAULT_READY_TIMEOUT, DEFAULT_REPLICA_MAX_LAG
from components.devpi.client import ClientState, DevpiClient, RetryPolicy, make_session
from components.devpi.errors import DevpiError, NotDevpiError

__all__ = [
    "DevpiReplicaReady",
    "DevpiReplicaReadyProvider",
    "ReplicaNotReadyError",
    "ReplicaState",
    "replica_state",
    "wait_replica",
]

INPUTS = ("replica_url", "primary_url", "max_lag", "ready_timeout", "server_id", "ca_bundle")
#: outputs besides the inputs
STATE_OUTPUTS = ("serial", "primary_serial", "lag")
POLL_INTERVAL = 0.5
REQUEST_TIMEOUT = 5.0


class ReplicaNotReadyError(Exception):
    """The replica did not catch up in time, or is not a replica of this primary."""


@dataclass(frozen=True)
class ReplicaState:
    """One observation: the replica's and the primary's serials (None when unknown)."""

    role: str | None
    serial: int | None
    primary_serial: int | None  # the primary's current serial (its own /+status, else the replica's view)
    heard_from_primary: bool  # the replica's ``primary-serial`` is set
    replica_primary_uuid: str | None
    primary_uuid: str | None
    errors: int = 0  # replication-errors (failed file downloads)

    @property
    def lag(self) -> int | None:
        if self.serial is None or self.primary_serial is None:
            return None
        return max(self.primary_serial - self.serial, 0)

    def problem(self, max_lag: int) -> str | None:
        """Why this observation is not "ready", or None."""
        if self.role != "REPLICA":
            return f"it runs as {self.role or 'an unknown role'}, not as a replica"
        if self.primary_uuid and self.replica_primary_uuid and self.primary_uuid != self.replica_primary_uuid:
            return (f"it follows the primary with uuid {self.replica_primary_uuid}, not this primary "
                    f"({self.primary_uuid})")
        if not self.heard_from_primary:
            return ("it has not heard from its primary yet (a different --secretfile than the primary's, "
                    "a primary without --role primary, or no route to the primary)")
        lag = self.lag
        if lag is None or lag > max_lag:
            return f"its serial {self.serial} is {lag} behind the primary's {self.primary_serial} (max_lag {max_lag})"
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _status(url: str, ca_bundle: str | None, timeout: float) -> dict[str, Any]:
    """GET /+status once (proving the URL is devpi's root first); raises DevpiError.

    The CA goes to the client, which passes it on every request: a session's ``verify`` would lose
    to an exported ``REQUESTS_CA_BUNDLE`` (requests prefers the environment over the session)."""
    session = make_session(RetryPolicy(attempts=0))
    try:
        with DevpiClient(url, session=session, state=ClientState(), timeout=timeout, ca_bundle=ca_bundle,
                         ca_label="the stack's tls.caBundle" if ca_bundle else None) as client:
            return client.status()
    finally:
        session.close()


def replica_state(replica_url: str, primary_url: str, ca_bundle: str | None = None,
                  timeout: float = REQUEST_TIMEOUT) -> ReplicaState:
    """Observe the replica, then the primary (so a busy primary can only make the lag look larger).

    Raises DevpiError when the replica does not answer; an unreachable primary is tolerated (the
    replica's own view of the primary's serial is used).
    """
    replica = _status(replica_url, ca_bundle, timeout)
    primary: dict[str, Any] = {}
    with contextlib.suppress(DevpiError):
        primary = _status(primary_url, ca_bundle, timeout)
    primary_serial = _int(primary.get("serial"))
    heard = _int(replica.get("primary-serial"))
    if primary_serial is None:
        primary_serial = heard
    elif heard is not None:
        primary_serial = max(primary_serial, heard)
    return ReplicaState(
        role=str(replica.get("role")) if replica.get("role") else None,
        serial=_int(replica.get("serial")),
        primary_serial=primary_serial,
        heard_from_primary=heard is not None,
        replica_primary_uuid=replica.get("primary-uuid") or None,
        primary_uuid=primary.get("uuid") or None,
        errors=len(replica.get("replication-errors") or {}),
    )


def wait_replica(replica_url: str, primary_url: str, *, max_lag: int, ready_timeout: float,
                 ca_bundle: str | None = None, interval: float = POLL_INTERVAL,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> ReplicaState:
    """Poll until the replica is ready (see :meth:`ReplicaState.problem`) or ``ready_timeout`` passes."""
    deadline = clock() + ready_timeout
    last: str = "it never answered"
    while True:
        left = deadline - clock()
        try:
            state = replica_state(replica_url, primary_url, ca_bundle,
                                  timeout=max(0.5, min(REQUEST_TIMEOUT, left)))
        except NotDevpiError as exc:
            raise ReplicaNotReadyError(f"replica {replica_url} is not devpi-server's root: {exc}") from exc
        except DevpiError as exc:
            last = f"it does not answer ({exc})"
        else:
            problem = state.problem(max_lag)
            if problem is None:
                return state
            last = problem
            if (state.role is not None and state.role != "REPLICA") or "not this primary" in problem:
                raise ReplicaNotReadyError(f"replica {replica_url}: {problem}")
        if clock() >= deadline:
            raise ReplicaNotReadyError(
                f"replica {replica_url} was not ready after {ready_timeout:g} s (primary {primary_url}): {last}"
            )
        sleep(min(interval, max(deadline - clock(), 0)))


class DevpiReplicaReadyProvider(ResourceProvider):
    """Waits for a replica to catch up; never touches the server."""

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        props = {k: news.get(k) for k in INPUTS}
        props["max_lag"] = DEFAULT_REPLICA_MAX_LAG if props["max_lag"] is None else props["max_lag"]
        props["ready_timeout"] = DEFAULT_READY_TIMEOUT if props["ready_timeout"] is None else props["ready_timeout"]
        failures = []
        for key in ("replica_url", "primary_url"):
            value = props[key]
            if not isinstance(value, str) or not value.startswith(("http://", "https://")):
                failures.append(CheckFailure(key, f"{key} must be an http(s) URL, got {value!r}"))
        lag = props["max_lag"]
        if isinstance(lag, float) and lag.is_integer():
            props["max_lag"] = lag = int(lag)  # numbers arrive as floats over the wire
        if not isinstance(lag, int) or isinstance(lag, bool) or lag < 0:
            failures.append(CheckFailure("max_lag", f"max_lag must be a whole number >= 0, got {lag!r}"))
        timeout = props["ready_timeout"]
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 3600:
            failures.append(CheckFailure("ready_timeout",
                                         f"ready_timeout must be seconds in (0, 3600], got {timeout!r}"))
        return CheckResult(props, failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in INPUTS if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(f"replica:{props['replica_url']}", self._wait(props))

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return UpdateResult(self._wait(news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        inputs = {k: props.get(k) for k in INPUTS}
        outs: dict[str, Any] = {**inputs, **dict.fromkeys(STATE_OUTPUTS)}
        try:
            state = replica_state(str(props["replica_url"]), str(props["primary_url"]), props.get("ca_bundle") or None)
        except DevpiError:
            pass  # unreachable now: a refresh reports unknown serials, it does not fail
        else:
            outs.update(serial=state.serial, primary_serial=state.primary_serial, lag=state.lag)
        return ReadResult(id_=id_, outs=outs, inputs=inputs)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing to do: the container belongs to the Docker provider."""

    @staticmethod
    def _wait(props: dict[str, Any]) -> dict[str, Any]:
        state = wait_replica(str(props["replica_url"]), str(props["primary_url"]),
                             max_lag=int(props["max_lag"]), ready_timeout=float(props["ready_timeout"]),
                             ca_bundle=props.get("ca_bundle") or None)
        return {**{k: props.get(k) for k in INPUTS}, "serial": state.serial,
                "primary_serial": state.primary_serial, "lag": state.lag}


class DevpiReplicaReady(Resource, module="devpi", name="ReplicaReady"):
    """Waits until the replica at ``replica_url`` follows ``primary_url`` within ``max_lag`` serials.

    ``server_id``: the replica container's id (a replacement re-runs the wait). ``ca_bundle``: PEM
    text trusted for https URLs (None: the system's CAs). Outputs: the inputs plus ``serial``,
    ``primary_serial`` and ``lag`` as last observed.
    """

    replica_url: pulumi.Output[str]
    serial: pulumi.Output[int]
    primary_serial: pulumi.Output[int]
    lag: pulumi.Output[int]

    def __init__(self, resource_name: str, *, replica_url: pulumi.Input[str], primary_url: pulumi.Input[str],
                 max_lag: pulumi.Input[int] = DEFAULT_REPLICA_MAX_LAG,
                 ready_timeout: pulumi.Input[float] = DEFAULT_READY_TIMEOUT,
                 server_id: pulumi.Input[str] | None = None, ca_bundle: pulumi.Input[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        props = {"replica_url": replica_url, "primary_url": primary_url, "max_lag": max_lag,
                 "ready_timeout": ready_timeout, "server_id": server_id, "ca_bundle": ca_bundle,
                 **dict.fromkeys(STATE_OUTPUTS)}
        super().__init__(DevpiReplicaReadyProvider(), resource_name, props, opts)
