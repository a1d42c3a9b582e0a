"""What every devpi dynamic provider shares: configuration and the client (pure input handling is
in :mod:`components.providers.schema`).

Providers are pickled **by reference** (this module is importable, never ``__main__``), so the
pickled form is the class path plus an empty instance ``__dict__``: no URL, no password, no session.
The provider host calls :meth:`DevpiProviderBase.configure` once per process with the whole stack
config (secrets decrypted); the URL and root's password come from there, and each provider method
builds its own :class:`~components.devpi.client.DevpiClient` (the host runs 4 threads on one provider
instance, so nothing per-call may live on ``self``). Login tokens are shared per process by the
client's ``DEFAULT_STATE``, so N resources cost one login, and each thread reuses one keep-alive
session from this module's :class:`SessionPool`.

HTTPS: every client trusts the stack's ``tls.caBundle`` (``ProviderSettings.ca_bundle``) when one is
declared, and refuses a plain-http server URL when the stack declares ``tls`` or serves https (the
readiness gate included), so a password never crosses the network in clear.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import requests
from pulumi.dynamic import ConfigureRequest, ResourceProvider

from components.config.connection import PROJECT, ProviderSettings, provider_settings
from components.config.errors import ConfigError
from components.devpi.client import DEFAULT_TIMEOUT, DevpiClient, RetryPolicy, make_session
from components.devpi.errors import AuthenticationError, LoginRefusedError

__all__ = [
    "REQUIRED_CONFIG_KEYS",
    "ClientOptions",
    "DevpiProviderBase",
    "NotConfiguredError",
    "SessionPool",
    "root_login_refused",
    "tls_options",
]

REQUIRED_CONFIG_KEYS = (f"{PROJECT}:rootPassword", f"{PROJECT}:serverUrl")


class NotConfiguredError(RuntimeError):
    """A provider method that needs the server ran before ``configure()`` supplied the stack config."""


# -------------------------------------------------------------------------------- keep-alive pool
class SessionPool:
    """One keep-alive ``requests.Session`` per thread and retry policy, for ``DevpiClient(session=…)``.

    A fresh TCP connection per provider call costs a connect/accept round trip (about 1 ms on
    loopback, far more across a network or with TLS), which made the provider 1.5x slower than a
    raw keep-alive loop. ``requests.Session`` is not thread-safe, so the pool is per thread (the
    provider host runs 4); it lives in this module, never on the pickled provider. urllib3 checks a
    pooled connection before reuse and reconnects when the server has closed it. Clients given a
    pooled session leave it open when they close.
    """

    def __init__(self) -> None:
        self._local = threading.local()

    def session(self, retry: RetryPolicy) -> requests.Session:
        """This thread's session sending with ``retry`` (made on first use)."""
        sessions: dict[RetryPolicy, requests.Session] = self._local.__dict__.setdefault("sessions", {})
        if retry not in sessions:
            sessions[retry] = make_session(retry)
        return sessions[retry]

    def close(self) -> None:
        """Close and forget this thread's sessions."""
        sessions: dict[RetryPolicy, requests.Session] = self._local.__dict__.pop("sessions", {})
        for session in sessions.values():
            session.close()


SESSIONS = SessionPool()


@dataclass(frozen=True)
class ClientOptions:
    """How provider methods build their clients: the retry policy and the per-wait timeout.

    The defaults are for real deployments. A test that needs an unreachable server to fail fast sets
    its own on the provider *instance* after construction, e.g.
    ``p.client_options = ClientOptions(retry=RetryPolicy(attempts=0))``; providers are pickled before
    any such assignment, so the pickled form stays stateless.
    """

    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timeout: float = DEFAULT_TIMEOUT


# ------------------------------------------------------------------------------------- base class
class DevpiProviderBase(ResourceProvider):
    """Base of the devpi providers: stack config from ``configure()``, a fresh client per call.

    ``client_options`` (class attribute; see :class:`ClientOptions`) sets retry and timeout of every
    client the provider builds.
    """

    client_options: ClientOptions = ClientOptions()

    def configure(self, req: ConfigureRequest) -> None:
        """Read the server URL and root's password from the stack config (fully qualified keys).

        A config problem is remembered, not raised: ``check`` and ``diff`` must keep working in a
        preview; the error surfaces on the first call that needs the server.
        """
        try:
            self._settings: ProviderSettings | None = provider_settings(req.config.get)
            self._config_error: ConfigError | None = None
        except ConfigError as exc:
            self._settings = None
            self._config_error = exc

    @property
    def settings(self) -> ProviderSettings:
        """The configured connection; raises a clear error naming the keys if configure never ran."""
        settings = getattr(self, "_settings", None)
        if settings is not None:
            return settings
        error = getattr(self, "_config_error", None)
        if error is not None:
            raise NotConfiguredError(f"the devpi provider cannot reach the server: {error}") from error
        raise NotConfiguredError(
            "the devpi provider was never configured (configure() was not called), so it does not know "
            f"the server: set the stack config keys {' and '.join(REQUIRED_CONFIG_KEYS)} "
            "(serverUrl may be omitted when host.address is set)"
        )

    def client(self, user: str = "root", password: str | None = None) -> DevpiClient:
        """A fresh client for one method call: root with the configured password unless told otherwise."""
        settings = self.settings
        password = settings.password if password is None else password
        return self._pooled(settings.url, user, password)

    def _pooled(self, url: str, user: str | None, password: str | None) -> DevpiClient:
        """A client on this thread's keep-alive session, with this provider's ``client_options`` and
        the stack's TLS trust (the CA is passed per request, so pooled sessions stay shareable)."""
        options = self.client_options
        tls = tls_options(self.settings)
        return DevpiClient(url, user, password, session=SESSIONS.session(options.retry), timeout=options.timeout,
                           **tls)

    def anonymous_client(self) -> DevpiClient:
        """A client without credentials: readiness probes and every read devpi serves to anyone.

        devpi lets anonymous callers read users, indexes (with their projects) and the list of all
        users, also under ``--restrict-modify root`` (docs/devpi-api.md). Reads must not log in: a
        rotation of root's password that ``pulumi up`` has not yet applied must not break
        ``pulumi refresh``.
        """
        return self._pooled(self.settings.url, None, None)

    @contextmanager
    def root_client(self) -> Iterator[DevpiClient]:
        """A client acting as root with the stack's rootPassword, for the operations that need it.

        A refused login becomes an error that says what it means here: the stack's rootPassword is
        not root's current password on the server.
        """
        with self.client() as c:
            try:
                yield c
            except LoginRefusedError as exc:
                raise AuthenticationError(root_login_refused(c.url), method=exc.method, url=exc.url,
                                          status=exc.status) from exc


def tls_options(settings: ProviderSettings) -> dict[str, Any]:
    """Pure: the TLS keyword arguments of :class:`DevpiClient` for the stack's connection.

    A declared CA bundle means the stack is TLS: the client trusts it and refuses plain http. An
    https URL without a bundle needs no private CA (requests' default trust, ``REQUESTS_CA_BUNDLE``
    included) but is TLS all the same.
    """
    ca_bundle = settings.ca_bundle
    return {"ca_bundle": ca_bundle, "ca_label": "the stack's tls.caBundle" if ca_bundle else None,
            "require_https": ca_bundle is not None or settings.url.lower().startswith("https://")}


def root_login_refused(url: str) -> str:
    """The message for a refused root login in a user/index operation (never contains a password)."""
    return (
        f"devpi-server at {url} refused root's login with the stack's rootPassword: it is not root's current "
        "password on the server. If you have just changed rootPassword, the rotation is still pending: "
        "`pulumi up` performs it (DevpiRoot runs before users and indexes; `pulumi refresh` works meanwhile, "
        "since reads need no login). Otherwise set rootPassword to root's current password "
        "(`pulumi config set --secret rootPassword`), or reset root's password on the host with "
        "`devpi-passwd --serverdir <serverdir> root` and set that one."
    )
