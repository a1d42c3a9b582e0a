"""The readiness gate and root-password rotation (``pulumi-python:dynamic/devpi:Root``).

Users and indexes depend on this resource, so nothing talks to devpi before it answers. It also
makes the stack's ``rootPassword`` true on the server without touching the container:

1. wait (bounded) until ``GET /+api`` answers 200;
2. log in as root with ``password`` (the stack's rootPassword) — done if that works;
3. otherwise log in with the previous ``password`` (from the old state) or ``initial_password``
   (the ``DEVPI_PASSWORD`` the container was first started with) and ``PATCH /root`` to ``password``.

The URL comes from the stack config (``configure``); the passwords come from this resource's inputs,
because rotating needs both the old and the new one. ``delete`` never touches the server.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.config import rules
from components.config.defaults import DEFAULT_READY_TIMEOUT
from components.devpi.client import DevpiClient
from components.devpi.errors import AuthenticationError
from components.providers.base import DevpiProviderBase
from components.providers.schema import (
    ResourceInputs,
    check_fields,
    diff_fields,
    input_specs,
    keep_secrets,
    merge_secret_outputs,
    password_problem,
    plain,
    prop,
    secret_names,
    shown,
    with_defaults,
)

__all__ = ["DEFAULT_READY_TIMEOUT", "DevpiRoot", "DevpiRootProvider", "RootInputs"]


@dataclass(frozen=True, kw_only=True)
class RootInputs(ResourceInputs):
    """What the root gate is given (wire names = state property names). Nothing here ever replaces:
    root exists as long as the server does."""

    password: pulumi.Input[str] = field(metadata=prop(secret=True))  # the stack's rootPassword
    initial_password: pulumi.Input[str] | None = field(default=None, metadata=prop(secret=True))  # DEVPI_PASSWORD
    server_id: pulumi.Input[str] | None = None  # a new server (container id) re-runs the wait
    ready_timeout: pulumi.Input[float] = DEFAULT_READY_TIMEOUT  # seconds
    # The server the stack config names (serverUrl). The provider connects through its configured
    # URL, which comes from the same config; as an input, a changed serverUrl is a change of this
    # resource, so `pulumi up` proves the new server and root's password there before anything else.
    # Also an output (the URL proven): unset, it is no change.
    url: pulumi.Input[str] | None = field(default=None, metadata=prop(unset_is_unchanged=True))


class DevpiRootProvider(DevpiProviderBase):
    """Readiness and root's password; the only provider whose credentials come from its inputs."""

    #: the declared inputs (a class attribute: not part of the pickled provider)
    inputs_class: ClassVar[type[RootInputs]] = RootInputs

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_fields(self.inputs_class, news)
        if problem := password_problem(plain(news.get("password"))):
            failures.append(CheckFailure("password", f"password {problem}"))
        timeout = plain(news.get("ready_timeout"))
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and (
                problem := rules.ready_timeout_problem(input_specs(self.inputs_class)["ready_timeout"]
                                                       .from_wire(timeout))):
            failures.append(CheckFailure("ready_timeout", f"ready_timeout {problem} (seconds), got {shown(timeout)}"))
        return CheckResult(keep_secrets(with_defaults(self.inputs_class, news), news), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_fields(self.inputs_class, olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        p = with_defaults(self.inputs_class, props)
        return CreateResult("root", keep_secrets(self._converge(p, previous=None), props))

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        p = with_defaults(self.inputs_class, news)
        return UpdateResult(keep_secrets(self._converge(p, previous=plain(olds.get("password"))), news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        p = with_defaults(self.inputs_class, props)
        with self.anonymous_client() as c:
            version = _server_version(c)
        outs = {**p, "url": self.settings.url, "server_version": version}
        return ReadResult(id_=id_, outs=keep_secrets(outs, props), inputs=keep_secrets(p, props))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        """Nothing to do: root cannot be deleted, and destroying the stack must not touch the server."""

    # ------------------------------------------------------------------------------------ helpers
    def _converge(self, p: dict[str, Any], previous: str | None) -> dict[str, Any]:
        url = self.settings.url
        with self.anonymous_client() as probe:
            probe.wait_ready(float(p["ready_timeout"]))
            version = _server_version(probe)
        password: str = p["password"]
        if not self._logs_in(password):
            candidates = [c for c in (previous, p.get("initial_password")) if c and c != password]
            for old in dict.fromkeys(candidates):  # ordered, without duplicates
                if self._logs_in(old):
                    self._rotate(old, password)
                    break
            else:
                raise AuthenticationError(
                    f"devpi-server at {url} refused root's login with the stack's rootPassword, the previous "
                    "rootPassword and the container's initial password. Set the stack's rootPassword to root's "
                    "current password (`pulumi config set --secret rootPassword`), or reset it on the host "
                    "with `devpi-passwd --serverdir <serverdir> root` and run `pulumi up` again."
                )
        return {**p, "url": url, "server_version": version}

    def _logs_in(self, password: str) -> bool:
        """POST /+login with this password (no token cache: the question is whether it works now)."""
        with self.client("root", password) as c:
            try:
                c.login()
            except AuthenticationError:
                return False
        return True

    def _rotate(self, old: str, new: str) -> None:
        """PATCH /root to the new password, then prove it works."""
        with self.client("root", old) as c:
            c.modify_user("root", password=new)
            # Tokens survive password changes; forget the one obtained with the old password so this
            # process never keeps acting on a password that is no longer root's.
            c.forget_token()
        if not self._logs_in(new):
            raise AuthenticationError(f"devpi-server at {self.settings.url} accepted the new root password "
                                      "but refuses it on login")


def _server_version(c: DevpiClient) -> str | None:
    """devpi-server's version from /+status (unauthenticated)."""
    info = c.status().get("versioninfo") or {}
    version = info.get("devpi-server") if isinstance(info, dict) else None
    return str(version) if version else None


class DevpiRoot(Resource, module="devpi", name="Root"):
    """Waits until devpi answers and makes root's password equal to ``password`` (rotating it if needed).

    Declared by :class:`RootInputs`: ``initial_password`` is the ``DEVPI_PASSWORD`` the container was
    initialised with (use :class:`~components.providers.latch.InitialValue` so it never changes);
    ``server_id`` (e.g. the container id) re-runs the readiness wait when the server is replaced.
    Outputs: every input (the passwords stay secret), ``url`` and ``server_version``.
    """

    url: pulumi.Output[str]  # read by DevpiRegistry: known once devpi answered and root's password is proven

    def __init__(self, resource_name: str, inputs: RootInputs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {**inputs.props(), "server_version": None}  # seeded: an output only
        super().__init__(DevpiRootProvider(), resource_name, props,
                         merge_secret_outputs(opts, secret_names(type(inputs))))
