"""The one devpi-server HTTP client: users, indexes, projects, files, upload, push, delete.

Every provider, readiness gate and lifecycle command talks to devpi through this class, so retries,
timeouts, authentication and error translation live in one place (see docs/devpi-api.md for the
status codes this module relies on).

Design notes:
- One ``requests.Session`` per client (keep-alive); build one client per unit of work. Clients are
  cheap; login tokens are cached per process (see ``_TokenCache``) so a refresh of N resources costs
  one login, not N.
- Bounded retries with backoff via urllib3 ``Retry``: connection errors for every method (the request
  never left), 502/503/504 for idempotent methods only. POST (upload, push, login) is never retried
  after bytes were sent.
- devpi answers 403, never 401, when a token is invalid (expired, or the server restarted without a
  secret file): on a 403 with a cached token we log in again once and repeat the request.
- Messages carry method, URL and status, never a password or token.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from components.errors import (
    AuthenticationError,
    ConflictError,
    DevpiError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    ServerError,
    ServerUnreachableError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DevpiClient",
    "ReleaseFile",
    "RetryPolicy",
    "split_index",
]

DEFAULT_TIMEOUT = 30.0
JSON = "application/json"


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before giving up; the defaults wait about 15 s for a server that is down."""

    attempts: int = 5
    backoff: float = 0.5

    def to_urllib3(self) -> Retry:
        return Retry(
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
        """The server-relative path ``user/index/+f/…/filename``."""
        return urlsplit(self.href).path.lstrip("/")


def split_index(name: str) -> tuple[str, str]:
    """``"user/index"`` -> ``("user", "index")``; raises ValueError otherwise."""
    parts = name.split("/")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"index name must be 'user/index', got {name!r}")
    return parts[0], parts[1]


class _TokenCache:
    """Login tokens per (server, user, password fingerprint), shared by every client of a process.

    The fingerprint is a hash held in memory only; it keys the cache so a rotated password never
    reuses a token obtained with the old one by mistake (devpi would accept it: tokens survive
    password changes, but we want the configured password to be the one proven).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[tuple[str, str, str], str] = {}
        self._login_locks: dict[tuple[str, str, str], threading.Lock] = {}

    @staticmethod
    def key(url: str, user: str, password: str) -> tuple[str, str, str]:
        return (url, user, hashlib.sha256(password.encode()).hexdigest())

    def get(self, key: tuple[str, str, str]) -> str | None:
        with self._lock:
            return self._tokens.get(key)

    def put(self, key: tuple[str, str, str], token: str) -> None:
        with self._lock:
            self._tokens[key] = token

    def drop(self, key: tuple[str, str, str], token: str) -> None:
        with self._lock:
            if self._tokens.get(key) == token:
                del self._tokens[key]

    def login_lock(self, key: tuple[str, str, str]) -> threading.Lock:
        with self._lock:
            return self._login_locks.setdefault(key, threading.Lock())

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKENS = _TokenCache()


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
    """A devpi-server client; pass ``user``/``password`` to act as that user (root for admin work)."""

    def __init__(
        self,
        url: str,
        user: str | None = None,
        password: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"devpi server URL must be http(s)://host[:port][/path], got {url!r}")
        if parts.username or parts.password:
            raise ValueError("devpi server URL must not carry credentials; pass user and password")
        self.url = url.rstrip("/")
        self.user = user
        self._password = password
        self.timeout = timeout
        self.session = requests.Session()
        self.session.headers["Accept"] = JSON
        self.session.headers["User-Agent"] = "devpi-registry"
        adapter = HTTPAdapter(max_retries=(retry or RetryPolicy()).to_urllib3(), pool_maxsize=8)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def __repr__(self) -> str:  # never show the password
        return f"DevpiClient({self.url!r}, user={self.user!r})"

    def close(self) -> None:
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
    ) -> requests.Response:
        url = self._url(path)
        token = self._token() if auth and self.user is not None and self._password is not None else None
        for attempt in (1, 2):
            hdrs = dict(headers or {})
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
                )
            except requests.RequestException as exc:
                raise ServerUnreachableError(self._unreachable(exc, timeout), method=method, url=url) from exc
            # 403 with a cached token: the token may be dead (server restarted without a secret
            # file, or expired after 10 h). devpi then treats us as anonymous. Log in afresh once.
            if resp.status_code == 403 and token is not None and attempt == 1:
                key = TOKENS.key(self.url, self.user or "", self._password or "")
                TOKENS.drop(key, token)
                fresh = self._token()
                if fresh != token:
                    token = fresh
                    continue
            return resp
        return resp  # pragma: no cover - loop always returns

    def _unreachable(self, exc: requests.RequestException, timeout: float | None) -> str:
        """Words for a request that got no HTTP answer (after the bounded retries)."""
        if isinstance(exc, requests.ConnectionError):  # includes connect timeouts
            return f"devpi-server at {self.url} is unreachable (connection refused or reset after retries)"
        if isinstance(exc, requests.Timeout):
            return f"devpi-server at {self.url} did not answer within {timeout or self.timeout:g} s"
        return f"talking to devpi-server at {self.url} failed: {type(exc).__name__}"

    def _call(self, method: str, path: str, *, expect: Sequence[int] = (200,), **kw: Any) -> requests.Response:
        resp = self._send(method, path, **kw)
        if resp.status_code in expect:
            return resp
        raise self._error(method, resp)

    def _error(self, method: str, resp: requests.Response, what: str | None = None) -> DevpiError:
        status = resp.status_code
        cls, default = _STATUS_ERRORS.get(status, (ServerError if status >= 500 else DevpiError, ""))
        if not default:
            default = f"devpi-server failed with HTTP {status}" if status >= 500 else f"unexpected HTTP {status}"
        return cls(what or default, method=method, url=resp.url, status=status, server_message=_server_message(resp))

    def _json(self, method: str, path: str, **kw: Any) -> Any:
        resp = self._call(method, path, **kw)
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
        key = TOKENS.key(self.url, self.user, self._password)
        cached = TOKENS.get(key)
        if cached is not None:
            return cached
        with TOKENS.login_lock(key):  # one login per process, even with 4 provider threads
            cached = TOKENS.get(key)
            if cached is not None:
                return cached
            token = self.login()
            TOKENS.put(key, token)
            return token

    def login(self) -> str:
        """POST /+login; returns a fresh token (valid 10 h). Raises AuthenticationError on refusal."""
        if self.user is None or self._password is None:
            raise AuthenticationError(f"no credentials configured for devpi-server at {self.url}")
        resp = self._send(
            "POST", "+login", json={"user": self.user, "password": self._password}, auth=False
        )
        if resp.status_code == 401:
            raise AuthenticationError(
                f"devpi-server at {self.url} refused the login of user {self.user!r}: "
                "wrong password or unknown user",
                method="POST",
                url=resp.url,
                status=401,
            )
        if resp.status_code != 200:
            raise self._error("POST", resp)
        return str(resp.json()["result"]["password"])

    def api(self, *, auth: bool = True) -> dict[str, Any]:
        """GET /+api: features and who we are (``authstatus``)."""
        return dict(self._json("GET", "+api", auth=auth))

    def check_credentials(self) -> None:
        """Prove the configured credentials work. devpi never answers 401 on the JSON API for bad
        credentials (it treats the caller as anonymous), so this reads ``/+api`` authstatus."""
        status = self.api().get("authstatus") or ["noauth"]
        if status[0] != "ok" and self.user is not None and self._password is not None:
            # /+api answers 200 (never 403) with a dead token (server restarted without a secret
            # file, or 10 h passed): forget the cached token and prove the password with a fresh login.
            key = TOKENS.key(self.url, self.user, self._password)
            cached = TOKENS.get(key)
            if cached is not None:
                TOKENS.drop(key, cached)
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
        probe = DevpiClient(self.url, timeout=min(5.0, self.timeout), retry=NO_RETRY)
        try:
            while True:
                try:
                    return probe.api(auth=False)
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
        return release_files_of(data)

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


def release_files_of(versiondata: Mapping[str, Any]) -> list[ReleaseFile]:
    """Pure: the ``+links`` of a versiondata dict that are release files."""
    out = []
    for link in versiondata.get("+links", []) or []:
        if link.get("rel") != "releasefile":
            continue
        href = str(link["href"])
        sha = (link.get("hashes") or {}).get("sha256") or str(link.get("hash_spec", "")).partition("=")[2]
        path = urlsplit(href).path.lstrip("/").split("/")
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
