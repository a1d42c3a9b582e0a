"""What every devpi dynamic provider shares: configuration and the client (pure input handling is
in :mod:`components.providers.schema`).

Providers are pickled **by reference** (this module is importable, never ``__main__``), so the
pickled form is the class path plus an empty instance ``__dict__``: no URL, no password, no session.
The provider host calls :meth:`DevpiProviderBase.configure` once per process with the whole stack
config (secrets decrypted); the URL and root's password come from there, and each provider method
builds its own :class:`~components.devpi.client.DevpiClient` (the host runs 4 threads on one provider
instance, so nothing per-call may live on ``self``). Login tokens are shared per process by the
client's token cache, so N resources cost one login.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests
from pulumi.dynamic import ConfigureRequest, ResourceProvider

from components.config.connection import PROJECT, ProviderSettings, provider_settings
from components.config.errors import ConfigError
from components.devpi.client import DevpiClient
from components.devpi.errors import AuthenticationError, LoginRefusedError

__all__ = [
    "REQUIRED_CONFIG_KEYS",
    "DevpiProviderBase",
    "NotConfiguredError",
    "root_login_refused",
]

REQUIRED_CONFIG_KEYS = (f"{PROJECT}:rootPassword", f"{PROJECT}:serverUrl")


class NotConfiguredError(RuntimeError):
    """A provider method that needs the server ran before ``configure()`` supplied the stack config."""


# -------------------------------------------------------------------------------- keep-alive pool
_THREAD = threading.local()


class _PooledClient(DevpiClient):
    """A DevpiClient whose keep-alive session is kept for later calls on the same thread.

    A fresh TCP connection per provider call costs a connect/accept round trip (about 1 ms on
    loopback, far more across a network or with TLS), which made the provider 1.5x slower than a
    raw keep-alive loop. ``requests.Session`` is not thread-safe, so the pool is per thread (the
    provider host runs 4); it lives in this module, never on the pickled provider. urllib3 checks a
    pooled connection before reuse and reconnects when the server has closed it.
    """

    def __init__(self, url: str, user: str | None, password: str | None, **kwargs: Any) -> None:
        super().__init__(url, user, password, **kwargs)
        pool: dict[tuple[Any, ...], requests.Session] = _THREAD.__dict__.setdefault("sessions", {})
        key = (self.url, repr(kwargs.get("retry")), kwargs.get("timeout"))
        cached = pool.get(key)
        if cached is None:
            pool[key] = self.session
        else:
            self.session.close()
            self.session = cached

    def close(self) -> None:
        """Keep the session open: it is this thread's keep-alive connection for the next call."""


# ------------------------------------------------------------------------------------- base class
class DevpiProviderBase(ResourceProvider):
    """Base of the devpi providers: stack config from ``configure()``, a fresh client per call.

    Tests may set ``retry`` (a :class:`RetryPolicy`) or ``timeout`` on an *instance* after
    construction to make unreachable-server cases fast; such attributes are never set before the
    provider is pickled, so the pickled form stays stateless.
    """

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
        return _PooledClient(settings.url, user, password, **self._client_options())

    def _client_options(self) -> dict[str, Any]:
        """``retry``/``timeout`` a test set on this instance (never set before pickling)."""
        options: dict[str, Any] = {}
        for name in ("retry", "timeout"):
            value = getattr(self, name, None)
            if value is not None:
                options[name] = value
        return options

    def anonymous_client(self) -> DevpiClient:
        """A client without credentials: readiness probes and every read devpi serves to anyone.

        devpi lets anonymous callers read users, indexes (with their projects) and the list of all
        users, also under ``--restrict-modify root`` (docs/devpi-api.md). Reads must not log in: a
        rotation of root's password that ``pulumi up`` has not yet applied must not break
        ``pulumi refresh``.
        """
        return _PooledClient(self.settings.url, None, None, **self._client_options())

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
