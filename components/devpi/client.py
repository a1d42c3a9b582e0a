"""The one devpi-server HTTP client: users, indexes, projects, files, upload, push, delete.

Every provider, readiness gate and lifecycle command talks to devpi through this class, so retries,
timeouts, authentication and error translation live in one place (see docs/devpi-api.md for the
status codes this module relies on).

Design notes:
- The session is injected, as httpx takes a transport: ``DevpiClient(url, session=...)`` with a
  session from ``make_session(retry)`` (which carries the retry policy), or none and the client makes
  and owns one. Clients are cheap; build one per unit of work. What clients learn about servers —
  login tokens and which URLs are proven to be devpi's root — lives in one ``ClientState`` (a
  process-wide ``DEFAULT_STATE`` unless one is passed), so a refresh of N resources costs one login.
- Bounded retries with backoff via urllib3 ``Retry``: connection errors for every method (the request
  never left), 502/503/504 for idempotent methods only. POST (upload, push, login) is never retried
  after bytes were sent.
- devpi answers 403, never 401, when a token is invalid (expired, or the server restarted without a
  secret file): on a 403 with a cached token we log in again once and repeat the request.
- Messages carry method, URL and status, never a password or token.
- HTTPS: ``ca_bundle`` (PEM text, e.g. the stack's ``tls.caBundle``) is what the client trusts; it is
  written once per content to a private file (requests verifies against a path). Without it requests'
  defaults apply, ``REQUESTS_CA_BUNDLE`` included. A failed TLS handshake is a ``TlsError``: never
  retried, never read as "absent". ``require_https`` refuses a plain-http URL for a TLS stack.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import ssl
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util import Timeout
from urllib3.util.retry import Retry

from components.devpi.errors import (
    AuthenticationError,
    ConflictError,
    DevpiError,
    InvalidRequestError,
    LoginRefusedError,
    NotDevpiError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    ServerUnreachableError,
    TlsError,
)

__all__ = [
    "DEFAULT_STATE",
    "DEFAULT_TIMEOUT",
    "DEVPI_HEADERS",
    "NO_RETRY",
    "ClientState",
    "DevpiClient",
    "ReleaseFile",
    "RetryPolicy",
    "answered_by",
    "ca_bundle_file",
    "is_devpi_response",
    "make_session",
    "release_files_of",
    "split_index",
]

DEFAULT_TIMEOUT = 30.0
JSON = "application/json"
USER_AGENT = "devpi-registry"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up; the defaults wait about 15 s for a server that is down.

    ``budget`` (seconds) bounds each request as a whole: its attempts, the backoff pauses between
    them and every connect/read wait end ``budget`` seconds after the request started (see
    ``_BudgetAdapter``). None: only ``attempts`` and the client's per-attempt timeout bound it.
    """

    attempts: int = 5
    backoff: float = 0.5
    budget: float | None = None

    def __post_init__(self) -> None:
        if self.budget is not None and not (0 < self.budget < float("inf")):
            raise ValueError(f"retry budget must be a number of seconds > 0, got {self.budget!r}")

    def to_urllib3(self) -> Retry:
        return _DeadlineRetry(
            total=self.attempts,
            connect=self.attempts,
            read=0,  # a read error means the server may have acted: never repeat blindly
            status=self.attempts,
            other=0,
            backoff_factor=self.backoff,
            status_forcelist=(502, 503, 504),
            allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"}),
            raise_on_status=False,
            respect_retry_after_header=True,
        )


NO_RETRY = RetryPolicy(attempts=0)

# Per thread: when the request being sent started and, with a budget, its deadline (time.monotonic()).
# Set by _BudgetAdapter.send; read by _DeadlineRetry between attempts and by DevpiClient._unreachable.
_REQUEST = threading.local()


def _within(seconds: float, left: float | None) -> float:
    """``seconds``, cut to what is ``left`` of the request's budget (never negative)."""
    return seconds if left is None else max(0.0, min(seconds, left))


class _DeadlineRetry(Retry):
    """urllib3 Retry that also gives up at the deadline of the request being sent and never pauses
    past it (backoff, Retry-After). Without a deadline it is urllib3's Retry."""

    @staticmethod
    def _left() -> float | None:
        deadline: float | None = getattr(_REQUEST, "deadline", None)
        return None if deadline is None else deadline - time.monotonic()

    def is_exhausted(self) -> bool:
        left = self._left()
        return super().is_exhausted() or (left is not None and left <= 0)

    def get_backoff_time(self) -> float:
        return _within(super().get_backoff_time(), self._left())

    def get_retry_after(self, response: Any) -> float | None:
        after = super().get_retry_after(response)
        return None if after is None else _within(after, self._left())


class _DeadlineTimeout(Timeout):
    """Connect/read timeouts that never reach past ``deadline``: urllib3 clones the timeout for each
    attempt, and each clone gets at most what is left of the request's budget."""

    def __init__(self, seconds: float, deadline: float) -> None:
        super().__init__(connect=seconds, read=seconds)
        self.seconds, self.deadline = seconds, deadline

    def clone(self) -> Timeout:
        left = max(0.01, self.deadline - time.monotonic())  # 0 would mean "non-blocking" to a socket
        return Timeout(connect=min(self.seconds, left), read=min(self.seconds, left), total=left)


class _BudgetAdapter(HTTPAdapter):
    """An HTTPAdapter that sends each request within ``RetryPolicy.budget`` seconds of its start
    (retries stop, pauses and timeouts are cut at that deadline) and notes, per thread, when the
    request started so a failure can say how long it waited."""

    def __init__(self, policy: RetryPolicy, **kw: Any) -> None:
        self.policy = policy
        self.budget = policy.budget
        super().__init__(max_retries=policy.to_urllib3(), **kw)

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        _REQUEST.started = start = time.monotonic()
        _REQUEST.deadline = None if self.budget is None else start + self.budget
        if self.budget is not None and (timeout is None or isinstance(timeout, int | float)):
            timeout = _DeadlineTimeout(float(timeout or self.budget), start + self.budget)
        try:
            return super().send(request, stream=stream, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        finally:
            _REQUEST.deadline = None


@dataclass(frozen=True)
class ReleaseFile:
    """One release file of a version as devpi reports it (devpi keeps sha256 only)."""

    filename: str
    sha256: str
    href: str
    index: str = ""
    log: tuple[Mapping[str, Any], ...] = field(default=(), compare=False)

    @property
    def path(self) -> str:
        """The server-relative path ``user/index/+f/…/filename`` (without any URL prefix)."""
        return "/".join(_file_segments(self.href))


def split_index(name: str) -> tuple[str, str]:
    """``"user/index"`` -> ``("user", "index")``; raises ValueError otherwise."""
    parts = name.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"index name must be 'user/index', got {name!r}")
    return parts[0], parts[1]


def make_session(retry: RetryPolicy | None = None, *, pool_maxsize: int = 8) -> requests.Session:
    """A keep-alive ``requests.Session`` for :class:`DevpiClient` that sends with ``retry`` (default
    :class:`RetryPolicy()`): bounded retries, and each request within ``retry.budget``.

    The policy belongs to the session (as retries belong to an httpx transport): a client given this
    session reads it back from there. ``requests.Session`` is not thread-safe: one per thread.
    """
    session = requests.Session()
    adapter = _BudgetAdapter(retry or RetryPolicy(), pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


_CA_FILES: dict[str, str] = {}
_CA_LOCK = threading.Lock()


def ca_bundle_file(pem: str) -> str:
    """The path of a file holding ``pem`` (CA certificates), for ``requests``' ``verify=``.

    requests verifies against a path, while the stack holds the bundle as text: each distinct content
    is written once per process to ``<tmp>/devpi-registry-ca-<uid>/<sha256>.pem`` (folder 700, file
    600, written to a temporary name and renamed, so a concurrent reader never sees half a file) and
    reused. Raises ValueError when ``pem`` holds no certificate the ssl module can load.
    """
    digest = hashlib.sha256(pem.encode()).hexdigest()
    with _CA_LOCK:
        known = _CA_FILES.get(digest)
        if known is not None and Path(known).is_file():
            return known
        try:
            ssl.create_default_context(cadata=pem)
        except (ssl.SSLError, ValueError) as exc:
            raise ValueError("the CA bundle is not PEM certificates (-----BEGIN CERTIFICATE----- ...): "
                             f"{getattr(exc, 'reason', None) or exc}") from exc
        folder = Path(tempfile.gettempdir()) / f"devpi-registry-ca-{os.getuid()}"
        folder.mkdir(mode=0o700, exist_ok=True)
        if folder.is_symlink() or folder.stat().st_uid != os.getuid():
            raise ValueError(f"{folder} is not a folder of this user; refusing to write the CA bundle there")
        folder.chmod(0o700)
        target = folder / f"{digest[:32]}.pem"
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".ca-", suffix=".pem")  # mode 600
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(pem)
            Path(tmp).replace(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                Path(tmp).unlink()
        _CA_FILES[digest] = str(target)
        return str(target)


def _ssl_reason(exc: BaseException) -> str:
    """Pure: the ssl module's words for why a handshake failed (``certificate has expired``,
    ``Hostname mismatch, …``), found however deep requests and urllib3 wrapped them."""
    found: str | None = None
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo:
        err = todo.pop()
        if id(err) in seen:
            continue
        seen.add(id(err))
        if isinstance(err, ssl.SSLCertVerificationError):
            return str(err.verify_message or err.reason or err)
        if isinstance(err, ssl.SSLError) and found is None:
            found = str(err.reason or err)
        todo += [a for a in err.args if isinstance(a, BaseException)]
        todo += [v for name in ("reason", "original_error", "__cause__", "__context__")
                 if isinstance(v := getattr(err, name, None), BaseException)]
    return found or " ".join(str(exc).split())


def _policy_of(session: requests.Session, url: str) -> RetryPolicy:
    """The retry policy ``session`` sends ``url`` with: ours from ``make_session``, else none (a plain
    requests adapter does not retry)."""
    adapter = session.get_adapter(url)
    return adapter.policy if isinstance(adapter, _BudgetAdapter) else NO_RETRY


_TokenKey = tuple[str, str, str]


class ClientState:
    """What the clients of a process learn about servers and share; thread-safe.

    - Login tokens per (server, user, password fingerprint). The fingerprint is a hash held in memory
      only; it keys the cache so a rotated password never reuses a token obtained with the old one by
      mistake (devpi would accept it: tokens survive password changes, but we want the configured
      password to be the one proven). One login per key at a time, even with many threads.
    - Server URLs proven to be devpi-server's root: the proof (one ``GET /+api``) runs before a
      client's first request; until a URL is proven no answer from it may be read as "absent" (see
      ``DevpiClient.ensure_devpi``).

    Clients use :data:`DEFAULT_STATE` unless given one; tests pass their own to start from nothing.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[_TokenKey, str] = {}
        self._login_locks: dict[_TokenKey, threading.Lock] = {}
        self._proven: set[str] = set()
        self._proof_locks: dict[str, threading.Lock] = {}

    @staticmethod
    def _key(url: str, user: str, password: str) -> _TokenKey:
        return (url, user, hashlib.sha256(password.encode()).hexdigest())

    # ------------------------------------------------------------------------------------- tokens
    def cached_token(self, url: str, user: str, password: str) -> str | None:
        """The token cached for these credentials, or None."""
        with self._lock:
            return self._tokens.get(self._key(url, user, password))

    def token(self, url: str, user: str, password: str, login: Callable[[], str]) -> str:
        """The cached token, else the one ``login()`` returns (remembered). Threads asking for the same
        credentials wait for one login instead of each logging in."""
        key = self._key(url, user, password)
        with self._lock:
            cached = self._tokens.get(key)
            login_lock = self._login_locks.setdefault(key, threading.Lock())
        if cached is not None:
            return cached
        with login_lock:
            with self._lock:
                cached = self._tokens.get(key)
            if cached is not None:
                return cached
            fresh = login()
            self.remember(url, user, password, fresh)
            return fresh

    def remember(self, url: str, user: str, password: str, token: str) -> None:
        """Cache ``token`` for these credentials (replacing any other)."""
        with self._lock:
            self._tokens[self._key(url, user, password)] = token

    def forget(self, url: str, user: str, password: str, token: str | None = None) -> None:
        """Drop the token cached for these credentials; with ``token``, only if it is still that one
        (another thread may have logged in afresh meanwhile)."""
        key = self._key(url, user, password)
        with self._lock:
            if token is None or self._tokens.get(key) == token:
                self._tokens.pop(key, None)

    # ------------------------------------------------------------------------------------- proofs
    def proven(self, url: str) -> bool:
        """True once ``url`` was proven to be devpi-server's root."""
        with self._lock:
            return url in self._proven

    def mark_proven(self, url: str) -> None:
        """Record that ``url`` is devpi-server's root."""
        with self._lock:
            self._proven.add(url)

    def prove_once(self, url: str, prove: Callable[[], None]) -> None:
        """Run ``prove()`` unless ``url`` is proven, one thread at a time per URL; it marks the URL
        proven on success (see ``DevpiClient._prove``) and raises otherwise (nothing is cached)."""
        if self.proven(url):
            return
        with self._lock:
            lock = self._proof_locks.setdefault(url, threading.Lock())
        with lock:
            if not self.proven(url):
                prove()

    def clear(self) -> None:
        """Forget every token and proof (after a server restart with a new secret, or between tests)."""
        with self._lock:
            self._tokens.clear()
            self._proven.clear()


DEFAULT_STATE = ClientState()


# devpi-server 6.20.3 sets these (and X-Devpi-Serial, X-Devpi-Uuid, X-Devpi-Primary-Uuid,
# X-Devpi-Master-Uuid) on every response it produces: JSON, HTML pages and its own 404s alike.
# Another web server, or a reverse proxy's own error page, does not.
DEVPI_HEADERS = ("X-Devpi-Server-Version", "X-Devpi-Api-Version")


def is_devpi_response(resp: requests.Response) -> bool:
    """True when devpi-server itself produced ``resp`` (its ``X-Devpi-*`` headers are present)."""
    return all(name in resp.headers for name in DEVPI_HEADERS)


def answered_by(resp: requests.Response) -> str:
    """What answered, for messages: status, ``Server`` header and content type."""
    server = resp.headers.get("Server") or "no Server header"
    ctype = resp.headers.get("Content-Type") or "no Content-Type"
    return f"HTTP {resp.status_code} (Server: {server}; Content-Type: {ctype})"


def _root_url(url: str, drop: int) -> str:
    """``url`` without its last ``drop`` path segments (the server root a user/index URL lives under)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    kept = segments[: len(segments) - drop] if drop else segments
    return urlunsplit((parts.scheme, parts.netloc, "/" + "/".join(kept) if kept else "", "", ""))


def _json_body(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _server_message(resp: requests.Response) -> str | None:
    """devpi's own words for an error: JSON ``message``, else the reason phrase (uploads are not JSON)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"]).strip()
    return resp.reason or None


_STATUS_ERRORS: dict[int, tuple[type[DevpiError], str]] = {
    400: (InvalidRequestError, "devpi refused the request as invalid"),
    401: (AuthenticationError, "devpi requires credentials that allow this"),
    403: (PermissionDeniedError, "devpi denied permission"),
    404: (NotFoundError, "not found on devpi"),
    409: (ConflictError, "conflict on devpi"),
    410: (NotFoundError, "gone from devpi (deleted earlier)"),
}


class DevpiClient:
    """A devpi-server client; pass ``user``/``password`` to act as that user (root for admin work).

    ``session``: a session from :func:`make_session` (keep-alive shared with later clients; the
    caller closes it), else the client makes one with ``retry`` and closes it in :meth:`close`.
    ``state``: where tokens and proofs are shared (default :data:`DEFAULT_STATE`). ``timeout``: seconds
    per connect/read wait. ``ca_bundle``: PEM of the CA(s) to trust for https (None: requests' default,
    which honours ``REQUESTS_CA_BUNDLE``), ``ca_label`` where it came from, for messages.
    ``require_https``: the stack serves devpi over TLS, so a plain-http URL is refused (ValueError)
    before anything is sent.
    """

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        session: requests.Session | None = None,
        state: ClientState | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        ca_bundle: str | None = None,
        ca_label: str | None = None,
        require_https: bool = False,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"devpi server URL must be http(s)://host[:port][/path], got {url!r}")
        if parts.username or parts.password:
            raise ValueError("devpi server URL must not carry credentials; pass user and password")
        if not (0 < timeout < float("inf")):  # urllib3 would raise deep inside the first request
            raise ValueError(f"timeout must be a number of seconds > 0, got {timeout!r}")
        if session is not None and retry is not None:
            raise ValueError("an injected session carries its retry policy: pass retry to make_session()")
        if require_https and parts.scheme != "https":
            raise ValueError(f"{url} is plain http, but devpi is served over https here (the stack sets tls): "
                             "use the https:// URL, so no password crosses the network in clear")
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self.timeout = timeout
        self.state = state or DEFAULT_STATE
        self._owns_session = session is None
        self.session = make_session(retry) if session is None else session
        self.retry = _policy_of(self.session, self.url)
        self.require_https = require_https
        self._ca_bundle = ca_bundle or None
        self.ca_file = ca_bundle_file(ca_bundle) if ca_bundle else None
        self.ca_label = (ca_label or "the CA bundle given") if ca_bundle else None

    def __repr__(self) -> str:  # never show the password
        return f"DevpiClient({self.url!r}, user={self.user!r})"

    @property
    def url_prefix(self) -> str:
        """The path of the server URL: ``""`` at a host's root, ``"/devpi"`` behind a proxy at /devpi/."""
        return urlsplit(self.url).path.rstrip("/")

    def close(self) -> None:
        """Close the session if this client made it (an injected one belongs to whoever passed it)."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> DevpiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------------------------- transport
    def _url(self, path: str) -> str:
        return f"{self.url}/{path.lstrip('/')}" if path else self.url

    def _send(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Any = None,
        files: Any = None,
        auth: bool = True,
        timeout: float | None = None,
        prove: bool = True,
    ) -> requests.Response:
        if prove:
            self.ensure_devpi()
        url = self._url(path)
        token = self._token() if auth and self.user is not None and self._password is not None else None
        for attempt in (1, 2):
            hdrs = {"Accept": JSON, "User-Agent": USER_AGENT, **(headers or {})}
            if token is not None:
                hdrs["X-Devpi-Auth"] = base64.b64encode(f"{self.user}:{token}".encode()).decode()
            try:
                resp = self.session.request(
                    method,
                    url,
                    json=json,
                    params=params,
                    headers=hdrs,
                    data=data,
                    files=files,
                    timeout=timeout or self.timeout,
                    allow_redirects=False,
                    verify=self.ca_file,  # None: the session's (requests' default, REQUESTS_CA_BUNDLE)
                )
            except requests.exceptions.SSLError as exc:  # a ConnectionError too: it must come first
                raise TlsError(self._tls_problem(exc), method=method, url=url) from exc
            except requests.RequestException as exc:
                raise ServerUnreachableError(self._unreachable(exc, timeout), method=method, url=url) from exc
            # 403 with a cached token: the token may be dead (server restarted without a secret
            # file, or expired after 10 h). devpi then treats us as anonymous. Log in afresh once.
            if resp.status_code == 403 and token is not None and attempt == 1:
                self.state.forget(self.url, self.user or "", self._password or "", token)
                fresh = self._token()
                if fresh != token:
                    token = fresh
                    continue
            return resp
        return resp  # pragma: no cover - loop always returns

    def _unreachable(self, exc: requests.RequestException, timeout: float | None) -> str:
        """Words for a request that got no HTTP answer (after the bounded retries).

        Timeouts first: requests' ConnectTimeout is also a ConnectionError, and a read timeout
        after urllib3's retries arrives as a ConnectionError wrapping MaxRetryError(ReadTimeoutError).
        """
        limit = min(timeout or self.timeout, self.retry.budget or float("inf"))
        started: float | None = getattr(_REQUEST, "started", None)
        waited = f" after {time.monotonic() - started:.1f} s" if started is not None else ""
        kind = self._timeout_kind(exc)
        if kind == "connect":
            return (f"devpi-server at {self.url} timed out{waited}: no connection within {limit:g} s "
                    "(host down or a firewall dropping packets?)")
        if kind == "read":
            return (f"devpi-server at {self.url} timed out{waited}: it accepted the connection but sent no "
                    f"answer within {limit:g} s")
        if isinstance(exc, requests.ConnectionError):
            return (f"devpi-server at {self.url} is unreachable: connection refused or reset "
                    f"(gave up{waited}, retries included)")
        return f"talking to devpi-server at {self.url} failed: {type(exc).__name__}"

    def _trusted(self) -> str:
        """What this client trusted, for a TLS error."""
        if self.ca_file:
            return f"trusting only {self.ca_label}"
        env = (os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")) \
            if self.session.trust_env else None
        if env:
            return f"trusting REQUESTS_CA_BUNDLE={env}"
        if isinstance(self.session.verify, str):
            return f"trusting {self.session.verify}"
        return "trusting only the public CAs (no private CA bundle was given)"

    def _tls_problem(self, exc: requests.RequestException) -> str:
        """Words for a failed TLS handshake: what is wrong with the certificate, and how to fix it."""
        reason = _ssl_reason(exc)
        host = urlsplit(self.url).hostname
        low = reason.lower()
        if "hostname mismatch" in low or "doesn't match" in low or "not valid for" in low:
            return (f"the TLS certificate of {self.url} does not cover the name {host!r} ({reason}): use a URL "
                    "with a name the certificate covers, or reissue the certificate for it (tls.names)")
        if "expired" in low or "not yet valid" in low:
            return f"the TLS certificate of {self.url} is not valid now ({reason}): renew it (tls.certificate)"
        if "certificate" in low or "self-signed" in low or "issuer" in low:
            return (f"the TLS certificate of {self.url} is not trusted ({reason}), {self._trusted()}: when it "
                    "comes from a private CA, set the stack's tls.caBundle to that CA's PEM (the lifecycle tool: "
                    "--ca-bundle FILE or REQUESTS_CA_BUNDLE=FILE)")
        return (f"the TLS handshake with {self.url} failed ({reason}), {self._trusted()}: does this port serve "
                "https (and not plain http)?")

    @staticmethod
    def _timeout_kind(exc: requests.RequestException) -> str | None:
        """Pure: "connect" or "read" when ``exc`` is a timeout (however requests wrapped it), else None."""
        from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError

        reason = exc.args[0] if exc.args else None
        if isinstance(reason, MaxRetryError):
            reason = reason.reason
        if isinstance(exc, requests.ReadTimeout) or isinstance(reason, ReadTimeoutError):
            return "read"
        if isinstance(exc, requests.ConnectTimeout) or (
                isinstance(reason, ConnectTimeoutError) and not isinstance(reason, NewConnectionError)):
            return "connect"
        return None

    def _call(self, method: str, path: str, *, expect: Sequence[int] = (200,), **kw: Any) -> requests.Response:
        resp = self._send(method, path, **kw)
        if resp.status_code in expect:
            return resp
        raise self._error(method, resp)

    def _error(self, method: str, resp: requests.Response, what: str | None = None) -> DevpiError:
        status = resp.status_code
        if status in (404, 410) and not is_devpi_response(resp):
            # Only devpi may say that something does not exist: this answer came from another web
            # server (or a proxy's own error page) and says nothing about the object asked for.
            return NotDevpiError(
                f"{self.url} does not lead to devpi-server: {answered_by(resp)} came without devpi's "
                "X-Devpi-* headers; set serverUrl to devpi-server's root URL",
                method=method, url=resp.url, status=status,
            )
        cls, default = _STATUS_ERRORS.get(status, (ServerError if status >= 500 else DevpiError, ""))
        if not default:
            default = f"devpi-server failed with HTTP {status}" if status >= 500 else f"unexpected HTTP {status}"
        return cls(what or default, method=method, url=resp.url, status=status, server_message=_server_message(resp))

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        return self._result(method, self._call(method, path, **kw))

    @staticmethod
    def _result(method: str, resp: requests.Response) -> Any:
        """The ``result`` of a devpi JSON envelope (or the whole body when there is none)."""
        try:
            body = resp.json()
        except ValueError as exc:
            raise ServerError(
                "devpi answered with something that is not JSON", method=method, url=resp.url, status=resp.status_code
            ) from exc
        return body.get("result", body) if isinstance(body, dict) else body

    # ------------------------------------------------------------------------------ auth and status
    def _token(self) -> str:
        assert self.user is not None and self._password is not None
        # one login per state (process), even with 4 provider threads
        return self.state.token(self.url, self.user, self._password, self.login)

    def forget_token(self) -> None:
        """Forget the login token cached for this client's credentials: the next request logs in
        afresh. Call it after changing this user's password (tokens survive password changes)."""
        if self.user is not None and self._password is not None:
            self.state.forget(self.url, self.user, self._password)

    def login(self) -> str:
        """POST /+login; returns a fresh token (valid 10 h). Raises AuthenticationError on refusal."""
        if self.user is None or self._password is None:
            raise AuthenticationError(f"no credentials configured for devpi-server at {self.url}")
        resp = self._send(
            "POST", "+login", json={"user": self.user, "password": self._password}, auth=False
        )
        if resp.status_code == 401:
            raise LoginRefusedError(
                f"devpi-server at {self.url} refused the login of user {self.user!r}: "
                "wrong password or unknown user",
                method="POST",
                url=resp.url,
                status=401,
            )
        if resp.status_code == 404:  # never "not found": the URL is not devpi's root
            raise NotDevpiError(f"{self.url} has no devpi login endpoint (+login); set serverUrl to "
                                "devpi-server's root URL", method="POST", url=resp.url, status=404)
        if resp.status_code != 200:
            raise self._error("POST", resp)
        return str(resp.json()["result"]["password"])

    def api(self, *, auth: bool = True) -> dict[str, Any]:
        """GET /+api: features and who we are (``authstatus``).

        Anonymous, the answer doubles as the proof that the URL is devpi's root (one request, also
        for each poll of ``wait_ready``).
        """
        if auth and self.user is not None and self._password is not None:
            return dict(self._json("GET", "+api"))
        resp = self._send("GET", "+api", auth=False, prove=False)
        if not self.state.proven(self.url):
            self._prove(resp)
        if resp.status_code != 200:
            raise self._error("GET", resp)
        return dict(self._result("GET", resp))

    def ensure_devpi(self) -> None:
        """Prove, once per process and URL, that ``self.url`` is devpi-server's root (one GET /+api).

        Until then no answer may be read as "absent": a 404 from another web server, or from devpi
        for a path below a user or index URL (``http://host:3141/build_bot/nightly`` as serverUrl),
        says nothing about the user or index asked for. Raises NotDevpiError naming the URL and what
        answered; ServerError/ServerUnreachableError when nothing usable answered (not cached).
        """
        self.state.prove_once(self.url, lambda: self._prove(self._send("GET", "+api", auth=False, prove=False)))

    def _prove(self, resp: requests.Response) -> None:
        if resp.status_code >= 500:  # a proxy in front of a devpi that is down or starting: retry later
            raise self._error("GET", resp)
        problem = self._root_problem(resp)
        if problem:
            raise NotDevpiError(problem, method="GET", url=resp.url, status=resp.status_code)
        self.state.mark_proven(self.url)

    def _root_problem(self, resp: requests.Response) -> str | None:
        """Why the ``GET /+api`` answer ``resp`` does not prove ``self.url`` is devpi's root, or None."""
        parts = urlsplit(self.url)
        fix = (f"set serverUrl to devpi-server's root URL (e.g. {parts.scheme}://{parts.netloc}, or "
               "https://HOST/PREFIX/ behind a reverse proxy)")
        if not is_devpi_response(resp):
            return (f"{self.url} does not lead to devpi-server: GET {self.url}/+api was answered with "
                    f"{answered_by(resp)}, without devpi's X-Devpi-* headers; {fix}")
        body = _json_body(resp)
        result = body.get("result")
        if resp.status_code != 200 or body.get("type") != "apiconfig" or not isinstance(result, dict):
            said = f", saying {_server_message(resp)!r}" if resp.status_code != 200 else ""
            return (f"{self.url} is not devpi-server's root URL: devpi answered GET {self.url}/+api with "
                    f"{answered_by(resp)}{said} (a URL inside devpi, such as an index or project page?); {fix}")
        if result.get("index"):
            index = "/".join(urlsplit(str(result["index"])).path.rstrip("/").split("/")[-2:])
            return (f"{self.url} is the URL of the devpi index {index!r}, not of the server; set serverUrl "
                    f"to devpi-server's root URL: {_root_url(self.url, 2)}")
        login = urlsplit(str(result.get("login") or "")).path
        if not self.url_prefix or (login.endswith("/+login") and login[: -len("/+login")] == self.url_prefix):
            return None
        # devpi renders its root elsewhere than our path: either our URL is a user URL (devpi also
        # serves /<user>/+api) or devpi does not know its outside URL (a proxy at a path without
        # X-Outside-Url, or direct access to a server started with --outside-url). Only devpi's
        # root answers a GET with the list of all users: one more request settles it.
        top = self._send("GET", "", auth=False, prove=False)
        top_body = _json_body(top)
        if is_devpi_response(top) and top.status_code == 200 and top_body.get("type") == "list:userconfig":
            return None
        user = self.url_prefix.rsplit("/", 1)[-1]
        return (f"{self.url} is not devpi-server's root URL: it looks like the URL of the devpi user {user!r} "
                f"(GET {self.url} answered {answered_by(top)}, not devpi's list of users); set serverUrl to "
                f"devpi-server's root URL: {_root_url(self.url, 1)}")

    def check_credentials(self) -> None:
        """Prove the configured credentials work. devpi never answers 401 on the JSON API for bad
        credentials (it treats the caller as anonymous), so this reads ``/+api`` authstatus."""
        status = self.api().get("authstatus") or ["noauth"]
        if status[0] != "ok" and self.user is not None and self._password is not None:
            # /+api answers 200 (never 403) with a dead token (server restarted without a secret
            # file, or 10 h passed): forget the cached token and prove the password with a fresh login.
            self.forget_token()
            status = self.api().get("authstatus") or ["noauth"]
        if status[0] != "ok" or (len(status) > 1 and status[1] != self.user):
            raise AuthenticationError(
                f"devpi-server at {self.url} does not accept the credentials of user {self.user!r}"
            )

    def status(self) -> dict[str, Any]:
        """GET /+status (unauthenticated): serial, version info, role, metrics."""
        return dict(self._json("GET", "+status", auth=False))

    def wait_ready(self, timeout: float = 180.0, interval: float = 1.0) -> dict[str, Any]:
        """Poll /+api until it answers 200 or ``timeout`` passes (devpi-web needs ~10 s to open its port)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        probe = DevpiClient(self.url, state=self.state, timeout=min(5.0, self.timeout), retry=NO_RETRY,
                            ca_bundle=self._ca_bundle, ca_label=self.ca_label, require_https=self.require_https)
        try:
            while True:
                try:
                    return probe.api(auth=False)
                except (NotDevpiError, TlsError):
                    raise  # something answered, and it is not devpi's root (or not trusted): waiting will not help
                except DevpiError as exc:
                    last = exc
                if time.monotonic() >= deadline:
                    raise ServerUnreachableError(
                        f"devpi-server at {self.url} was not ready after {timeout:g} s "
                        f"(GET {self.url}/+api never answered 200; last error: {last})"
                    ) from last
                time.sleep(interval)
        finally:
            probe.close()

    # ----------------------------------------------------------------------------------------- users
    def list_users(self) -> dict[str, dict[str, Any]]:
        return dict(self._json("GET", ""))

    def get_user(self, user: str) -> dict[str, Any]:
        """GET /<user>: userconfig (never includes the password hash). Raises NotFoundError."""
        return dict(self._json("GET", quote(user)))

    def create_user(self, user: str, password: str, **fields: Any) -> dict[str, Any]:
        body = {"password": password, **{k: v for k, v in fields.items() if v is not None}}
        return dict(self._json("PUT", quote(user), json=body, expect=(201,)))

    def modify_user(self, user: str, **fields: Any) -> None:
        """PATCH /<user>: only the given keys change; a falsy value removes the field."""
        self._call("PATCH", quote(user), json=fields)

    def delete_user(self, user: str) -> None:
        """DELETE /<user>: devpi also deletes every index and package of the user."""
        self._call("DELETE", quote(user))

    # --------------------------------------------------------------------------------------- indexes
    def get_index(self, index: str, *, projects: bool = False) -> dict[str, Any]:
        """GET /<user>/<index>: indexconfig. Raises NotFoundError."""
        user, name = split_index(index)
        params = None if projects else {"no_projects": ""}
        return dict(self._json("GET", f"{quote(user)}/{quote(name)}", params=params))

    def index_exists(self, index: str) -> bool:
        try:
            self.get_index(index)
        except NotFoundError:
            return False
        return True

    def create_index(self, index: str, config: Mapping[str, Any]) -> dict[str, Any]:
        user, name = split_index(index)
        return dict(self._json("PUT", f"{quote(user)}/{quote(name)}", json=dict(config)))

    def modify_index(self, index: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH with a dict: a partial merge (only the given keys are validated and changed)."""
        user, name = split_index(index)
        return dict(self._json("PATCH", f"{quote(user)}/{quote(name)}", json=dict(changes)))

    def remove_index_keys(self, index: str, keys: Sequence[str]) -> dict[str, Any]:
        """Drop optional keys (title, description, custom_data): only devpi's ``key-=`` form can."""
        user, name = split_index(index)
        return dict(self._json("PATCH", f"{quote(user)}/{quote(name)}", json=[f"{k}-=" for k in keys]))

    def delete_index(self, index: str) -> None:
        user, name = split_index(index)
        self._call("DELETE", f"{quote(user)}/{quote(name)}", expect=(200, 201))

    # ------------------------------------------------------------------------- projects and versions
    def list_projects(self, index: str) -> list[str]:
        """Projects uploaded to this index itself (not inherited), normalized names."""
        return list(self.get_index(index, projects=True).get("projects", []))

    def get_project(self, index: str, project: str, *, inherited: bool = False) -> dict[str, dict[str, Any]]:
        """{version: versiondata} of one project; only this stage's own versions unless ``inherited``."""
        user, name = split_index(index)
        params = None if inherited else {"ignore_bases": ""}
        return dict(self._json("GET", f"{quote(user)}/{quote(name)}/{quote(normalize(project))}", params=params))

    def get_version(self, index: str, project: str, version: str) -> dict[str, Any]:
        user, name = split_index(index)
        path = f"{quote(user)}/{quote(name)}/{quote(normalize(project))}/{quote(version)}"
        return dict(self._json("GET", path))

    def release_files(self, index: str, project: str, version: str) -> list[ReleaseFile]:
        """Release files of a version with their sha256 (docs excluded)."""
        data = self.get_version(index, project, version)
        return release_files_of(data, prefix=self.url_prefix)

    def iter_versions(self, index: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """(project, version, versiondata) for every version stored on the index itself."""
        for project in self.list_projects(index):
            for version, data in self.get_project(index, project).items():
                yield project, version, data

    def download(self, href: str) -> bytes:
        """The bytes of a release file; ``href`` as devpi gives it (absolute) or server-relative."""
        path = urlsplit(href).path if "://" in href else href
        prefix = urlsplit(self.url).path
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix):]
        return self._call("GET", path, headers={"Accept": "*/*"}).content

    def file_size(self, href: str) -> int:
        """Size in bytes of a release file via HEAD ``Content-Length`` (devpi's JSON has no sizes)."""
        path = urlsplit(href).path if "://" in href else href
        prefix = urlsplit(self.url).path
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix):]
        resp = self._call("HEAD", path, headers={"Accept": "*/*"})
        return int(resp.headers.get("Content-Length", 0))

    # -------------------------------------------------------------------------------------- writes
    def upload(self, index: str, path: Path, *, name: str, version: str, **metadata: Any) -> None:
        """Upload one release file (devpi reads metadata from form fields only, not the file)."""
        user, iname = split_index(index)
        fields: list[tuple[str, str]] = [
            (":action", "file_upload"), ("name", name), ("version", version), ("protocol_version", "1"),
        ]
        fields += [(k, str(v)) for k, v in metadata.items() if v is not None]
        with Path(path).open("rb") as fh:
            files = {"content": (Path(path).name, fh, "application/octet-stream")}
            resp = self._send("POST", f"{quote(user)}/{quote(iname)}/", data=fields, files=files,
                              headers={"Accept": "*/*"})
        if resp.status_code != 200:
            raise self._error("POST", resp, f"upload of {Path(path).name} to {index} failed")

    def push(self, source: str, project: str, version: str, target: str) -> list[list[Any]]:
        """devpi's push: copy a version's files unchanged (same hashes) from ``source`` to ``target``."""
        user, name = split_index(source)
        split_index(target)
        body = {"name": normalize(project), "version": version, "targetindex": target}
        resp = self._send("POST", f"{quote(user)}/{quote(name)}", json=body)
        if resp.status_code != 200:
            raise self._error("POST", resp, f"push of {project}=={version} from {source} to {target} failed")
        return list(resp.json().get("result", []))

    def delete_version(self, index: str, project: str, version: str, *, force: bool = False) -> None:
        user, name = split_index(index)
        path = f"{quote(user)}/{quote(name)}/{quote(normalize(project))}/{quote(version)}"
        self._call("DELETE", path, params={"force": ""} if force else None)

    def delete_project(self, index: str, project: str, *, force: bool = False) -> None:
        user, name = split_index(index)
        path = f"{quote(user)}/{quote(name)}/{quote(normalize(project))}"
        self._call("DELETE", path, params={"force": ""} if force else None)


def normalize(project: str) -> str:
    """PEP 503 normalized project name, as devpi uses in URLs (``Demo_Pkg`` -> ``demo-pkg``)."""
    from packaging.utils import canonicalize_name

    return str(canonicalize_name(project))


def _file_segments(href: str, prefix: str = "") -> list[str]:
    """Path segments of a release file's href from its owning user on: ``[user, index, "+f", …, name]``.

    devpi renders hrefs under its outside URL, so behind a reverse proxy at ``/devpi`` they read
    ``https://host/devpi/alice/dev/+f/…``. The client's URL prefix is stripped when given; either
    way the owning index is the two segments before devpi's first ``+`` route segment (``+f``,
    ``+e``), because user and index names can never start with ``+``.
    """
    path = urlsplit(href).path
    prefix = prefix.rstrip("/")
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix):]
    segments = [s for s in path.split("/") if s]
    route = next((i for i, s in enumerate(segments) if s.startswith("+")), None)
    return segments[route - 2:] if route is not None and route >= 2 else segments


def release_files_of(versiondata: Mapping[str, Any], *, prefix: str = "") -> list[ReleaseFile]:
    """Pure: the ``+links`` of a versiondata dict that are release files, each with its owning index.

    ``prefix`` is the path of the server URL (``DevpiClient.url_prefix``) when devpi is reached
    below a path; hrefs are attributed correctly without it too (see ``_file_segments``).
    """
    out = []
    for link in versiondata.get("+links", []) or []:
        if link.get("rel") != "releasefile":
            continue
        href = str(link["href"])
        sha = (link.get("hashes") or {}).get("sha256") or str(link.get("hash_spec", "")).partition("=")[2]
        path = _file_segments(href, prefix)
        out.append(
            ReleaseFile(
                filename=path[-1],
                sha256=sha,
                href=href,
                index="/".join(path[:2]),
                log=tuple(link.get("log") or ()),
            )
        )
    return out
