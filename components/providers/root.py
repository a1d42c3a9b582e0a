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

import math
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.devpi.client import TOKENS, DevpiClient
from components.devpi.errors import AuthenticationError
from components.providers.base import DevpiProviderBase
from components.providers.schema import (
    Field,
    check_fields,
    diff_fields,
    keep_secrets,
    merge_secret_outputs,
    plain,
    shown,
    with_defaults,
)

__all__ = ["DEFAULT_READY_TIMEOUT", "ROOT_FIELDS", "DevpiRoot", "DevpiRootProvider"]

DEFAULT_READY_TIMEOUT = 180.0

ROOT_FIELDS: dict[str, Field] = {
    "password": Field((str,), secret=True, nullable=False),
    "initial_password": Field((str,), secret=True),
    "server_id": Field((str,)),
    "ready_timeout": Field((int, float), default=DEFAULT_READY_TIMEOUT),
}


class DevpiRootProvider(DevpiProviderBase):
    """Readiness and root's password; the only provider whose credentials come from its inputs."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_fields(ROOT_FIELDS, news)
        if plain(news.get("password")) == "":
            failures.append(CheckFailure("password", "password must not be empty"))
        timeout = news.get("ready_timeout")
        if isinstance(timeout, (int, float)) and not isinstance(timeout, bool) and not (
                math.isfinite(timeout) and timeout > 0):
            failures.append(CheckFailure("ready_timeout", f"ready_timeout must be a positive number of seconds, "
                                                          f"got {shown(timeout)}"))
        return CheckResult(keep_secrets(with_defaults(ROOT_FIELDS, news), news), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # Nothing here is ever replaced: root exists as long as the server does.
        return diff_fields(ROOT_FIELDS, olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        p = with_defaults(ROOT_FIELDS, props)
        return CreateResult("root", keep_secrets(self._converge(p, previous=None), props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        p = with_defaults(ROOT_FIELDS, news)
        return UpdateResult(keep_secrets(self._converge(p, previous=plain(olds.get("password"))), news))

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        p = with_defaults(ROOT_FIELDS, props)
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
        with DevpiClient(self.settings.url, "root", password, retry=getattr(self, "retry", None)) as c:
            try:
                c.login()
            except AuthenticationError:
                return False
        return True

    def _rotate(self, old: str, new: str) -> None:
        """PATCH /root to the new password, then prove it works."""
        with DevpiClient(self.settings.url, "root", old, retry=getattr(self, "retry", None)) as c:
            c.modify_user("root", password=new)
            # Tokens survive password changes; forget the one obtained with the old password so this
            # process never keeps acting on a password that is no longer root's.
            key = TOKENS.key(c.url, "root", old)
            token = TOKENS.get(key)
            if token is not None:
                TOKENS.drop(key, token)
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

    ``initial_password`` is the ``DEVPI_PASSWORD`` the container was initialised with (use
    :class:`~components.providers.latch.InitialValue` so it never changes); ``server_id`` (e.g. the
    container id) re-runs the readiness wait when the server is replaced.
    """

    url: pulumi.Output[str]
    server_version: pulumi.Output[str | None]
    server_id: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        *,
        password: pulumi.Input[str],
        initial_password: pulumi.Input[str] | None = None,
        server_id: pulumi.Input[str] | None = None,
        ready_timeout: pulumi.Input[float] = DEFAULT_READY_TIMEOUT,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "password": password,
            "initial_password": initial_password,
            "server_id": server_id,
            "ready_timeout": ready_timeout,
            "url": None,
            "server_version": None,
        }
        super().__init__(DevpiRootProvider(), resource_name, props,
                         merge_secret_outputs(opts, ["password", "initial_password"]))
