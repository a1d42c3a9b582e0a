"""The stack configuration, read once and validated before any resource exists.

``load_stack_config`` turns the raw ``devpi-registry:*`` keys of ``Pulumi.<stack>.yaml`` into frozen
objects. Every problem raises ``ConfigError`` naming the key path (``devpi-registry:indexes[1].bases[0]``),
the bad value and how to fix it, so ``pulumi preview`` fails before anything is touched. Nothing
else in the program reads raw config.

Secrets (``rootPassword``, ``sshPrivateKey``, ``userPasswords``) are only checked for presence here;
their values stay Pulumi secrets (see ``components.program``).

Guardrails, each with an explicit per-index opt-out:
- a private index (``cachePypi: false``, the default) must not inherit ``root/pypi``, directly or
  through its bases — dependency confusion (opt-out: ``cachePypi: true``);
- an index named like a stable/release/prod index must be non-volatile (opt-out: ``allowVolatile``);
- ``mirrorWhitelist: ["*"]`` is refused (opt-out: ``allowMirrorWhitelistStar``);
- ``:ANONYMOUS:`` in ``aclUpload`` is refused (opt-out: ``allowAnonymousUpload``).
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlsplit

from components.config.connection import DEFAULT_PORT, PROJECT, default_server_url
from components.config.errors import ConfigError
from components.config.retention import RetentionPolicy
from components.devpi.names import index_name_problem, index_spec_problem, user_name_problem

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_IMAGE",
    "PYPI_MIRROR",
    "SECRET_KEYS",
    "TOP_LEVEL_KEYS",
    "BackupConfig",
    "HostConfig",
    "IndexConfig",
    "ServerConfig",
    "StackConfig",
    "UserConfig",
    "load_stack_config",
]

DEFAULT_IMAGE = "jonasal/devpi-server:6.20.3"
DEFAULT_DATA_DIR = "/opt/local/devpi/data"
PYPI_MIRROR = "root/pypi"
SECRET_KEYS = ("rootPassword", "sshPrivateKey", "userPasswords")
FLOATING_TAGS = {"latest", "6", "6.20", "latest-alpine", "6-alpine", "6.20-alpine"}
# Paths a recursive :Z relabel or a purge must never touch (Docker warns about /home and /usr).
DANGEROUS_DIRS = {"/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/opt", "/proc",
                  "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var"}
STABLE_NAME = re.compile(r"(^|[-_.])(stable|release|releases|prod|production)([-_.]|$)")

T = TypeVar("T")


# ------------------------------------------------------------------------------------ value readers
class _Obj:
    """A mapping read at a key path; each accessor validates type and records what was read."""

    def __init__(self, value: Any, path: str) -> None:
        if not isinstance(value, Mapping):
            raise ConfigError(path, value, "must be an object (a YAML mapping)")
        self.value = value
        self.path = path
        self.seen: set[str] = set()

    def at(self, key: str) -> str:
        return f"{self.path}.{key}"

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        return self.value.get(key, default)

    def has(self, key: str) -> bool:
        return key in self.value

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> Any:
        value = self._get(key, default)
        if value is None:
            if required:
                raise ConfigError(self.at(key), None, "is required")
            return None
        if not isinstance(value, str) or (required and not value):
            raise ConfigError(self.at(key), value, "must be a non-empty string")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            raise ConfigError(self.at(key), value, "must be true or false")
        return value

    def number(self, key: str, default: int | None, *, lo: int | None = None, hi: int | None = None) -> Any:
        value = self._get(key, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(self.at(key), value, "must be a whole number")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(self.at(key), value, f"must be between {lo} and {hi}")
        return value

    def texts(self, key: str, default: Sequence[str] | None = None) -> tuple[str, ...] | None:
        value = self._get(key, default)
        if value is None:
            return None
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(self.at(key), value, "must be a list of strings")
        return tuple(value)

    def choice(self, key: str, default: str | None, choices: Sequence[str]) -> Any:
        value = self._get(key, default)
        if value is None:
            return None
        if value not in choices:
            raise ConfigError(self.at(key), value, f"must be one of {', '.join(choices)}")
        return value

    def done(self) -> None:
        """Refuse keys nobody read: a typo must not be silently ignored."""
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            raise ConfigError(self.at(unknown[0]), self.value[unknown[0]],
                              f"is not a known key here (known: {', '.join(sorted(self.seen))})")


# ------------------------------------------------------------------------------------------ models
@dataclass(frozen=True, kw_only=True)
class HostConfig:
    """The RHEL 8 host reached over SSH."""

    address: str
    port: int = 22
    user: str = "root"
    host_key: str | None = None
    sudo: bool = False


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """The devpi-server container and the host resources it needs."""

    port: int = DEFAULT_PORT
    image: str = DEFAULT_IMAGE
    allow_floating_tag: bool = False
    data_dir: str = DEFAULT_DATA_DIR
    pypi_mirror: bool = False
    container_name: str = "devpi-server"
    firewall_when_inactive: str = "fail"
    purge_data_on_destroy: bool = False
    ready_timeout: int = 180
    docker_host: str | None = None
    ssh_opts: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UserConfig:
    """A devpi user; its password is the secret ``userPasswords.<name>``."""

    name: str
    email: str | None = None
    title: str | None = None
    description: str | None = None
    adopt: bool = False
    force_destroy: bool = False


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """A devpi index (``owner/name``); ``bases`` are the effective, ordered bases sent to devpi."""

    owner: str
    name: str
    type: str = "stage"
    bases: tuple[str, ...] = ()
    cache_pypi: bool = False
    volatile: bool = True
    acl_upload: tuple[str, ...] | None = None
    acl_toxresult_upload: tuple[str, ...] | None = None
    mirror_whitelist: tuple[str, ...] | None = None
    mirror_whitelist_inheritance: str | None = None
    mirror_url: str | None = None
    mirror_web_url_fmt: str | None = None
    mirror_cache_expiry: int | None = None
    mirror_no_project_list: bool | None = None
    mirror_use_external_urls: bool | None = None
    mirror_ignore_serial_header: bool | None = None
    title: str | None = None
    description: str | None = None
    retention: RetentionPolicy | None = None
    adopt: bool = False
    force_destroy: bool = False
    allow_mirror_whitelist_star: bool = False
    allow_anonymous_upload: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def uploaders(self) -> tuple[str, ...]:
        """Who may upload: devpi's default ``acl_upload`` is the owner."""
        return self.acl_upload if self.acl_upload is not None else (self.owner,)

    def resource_inputs(self) -> dict[str, Any]:
        """Keyword arguments for ``DevpiIndex`` (None = leave devpi's default)."""
        keys = ("type", "volatile", "acl_upload", "acl_toxresult_upload", "mirror_whitelist",
                "mirror_whitelist_inheritance", "mirror_url", "mirror_web_url_fmt", "mirror_cache_expiry",
                "mirror_no_project_list", "mirror_use_external_urls", "mirror_ignore_serial_header",
                "title", "description", "adopt", "force_destroy", "allow_mirror_whitelist_star",
                "allow_anonymous_upload")
        out: dict[str, Any] = {}
        for key in keys:
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


@dataclass(frozen=True, kw_only=True)
class BackupConfig:
    """Scheduled backups on the host (a systemd timer), keeping the newest ``keep`` archives."""

    enabled: bool = False
    schedule: str = "daily"
    directory: str = "/opt/local/devpi/backups"
    keep: int = 7


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """Everything the program needs, validated. ``host`` is None when only registry objects are managed."""

    host: HostConfig | None
    server: ServerConfig
    server_url: str
    users: tuple[UserConfig, ...] = ()
    indexes: tuple[IndexConfig, ...] = ()
    backup: BackupConfig = field(default_factory=BackupConfig)

    @property
    def docker_host(self) -> str | None:
        if self.server.docker_host:
            return self.server.docker_host
        if self.host is None:
            return None
        return f"ssh://{self.host.user}@{self.host.address}:{self.host.port}"

    def index(self, full_name: str) -> IndexConfig:
        return next(i for i in self.indexes if i.full_name == full_name)

    def indexes_in_creation_order(self) -> list[IndexConfig]:
        """Bases before the indexes that inherit them (validated acyclic)."""
        order: list[IndexConfig] = []
        done: set[str] = set()
        by_name = {i.full_name: i for i in self.indexes}

        def visit(ix: IndexConfig) -> None:
            if ix.full_name in done:
                return
            for base in ix.bases:
                if base in by_name:
                    visit(by_name[base])
            done.add(ix.full_name)
            order.append(ix)

        for ix in self.indexes:
            visit(ix)
        return order


# ----------------------------------------------------------------------------------------- loading
def key(name: str) -> str:
    return f"{PROJECT}:{name}"


TOP_LEVEL_KEYS = ("host", "server", "serverUrl", "users", "indexes", "backup", *SECRET_KEYS)


def _decode(raw: Any, name: str) -> Any:
    """Pulumi hands structured config to programs as JSON strings; decode them once here."""
    if isinstance(raw, str) and name in ("host", "server", "users", "indexes", "backup", "userPasswords"):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(key(name), raw, "must be structured YAML (an object or list), not a string",
                              secret=name in SECRET_KEYS) from exc
    return raw


def load_stack_config(raw: Mapping[str, Any], *, secret_keys: set[str] | None = None) -> StackConfig:
    """Validate the stack's ``devpi-registry:*`` config (bare key -> value) and return typed objects.

    ``secret_keys``, when known, are the bare keys Pulumi holds encrypted; the secret keys must be
    among them, so a password never sits in clear text in ``Pulumi.<stack>.yaml``.
    """
    values = {name: _decode(v, name) for name, v in raw.items()}
    for name in values:
        if name not in TOP_LEVEL_KEYS:
            raise ConfigError(key(name), "[value hidden]" if "assword" in name or "Key" in name else values[name],
                              f"is not a known key (known: {', '.join(TOP_LEVEL_KEYS)})")

    # Secrets: presence and encryption only.
    for name in ("rootPassword",):
        if not values.get(name):
            raise ConfigError(key(name), None,
                              f"is required: pulumi config set --secret {name} (it stays encrypted)")
    if str(values["rootPassword"]).startswith("-"):
        # The image hands DEVPI_PASSWORD to devpi-init on its command line at first start, where a
        # leading dash is read as an option and the container crash-loops.
        raise ConfigError(key("rootPassword"), values["rootPassword"],
                          "must not start with '-' (the image passes it to devpi-init as an argument)", secret=True)
    if secret_keys is not None:
        for name in SECRET_KEYS:
            if name in values and name not in secret_keys:
                raise ConfigError(key(name), values[name],
                                  f"must be set as a secret: pulumi config set --secret {name} ...", secret=True)

    host = _load_host(values.get("host"))
    server = _load_server(values.get("server", {}), host)
    if host is not None and not values.get("sshPrivateKey"):
        raise ConfigError(key("sshPrivateKey"), None,
                          "is required when `host` is set: pulumi config set --secret sshPrivateKey < KEYFILE")
    server_url = _load_server_url(values.get("serverUrl"), host, server)
    users = _load_users(values.get("users", []))
    passwords = values.get("userPasswords") or {}
    if not isinstance(passwords, Mapping):
        raise ConfigError(key("userPasswords"), passwords, "must be an object of user name -> password",
                          secret=True)
    for i, user in enumerate(users):
        pw = passwords.get(user.name)
        if not isinstance(pw, str) or not pw:
            raise ConfigError(
                f"{key('userPasswords')}.{user.name}", None,
                f"is required for user {user.name!r} (users[{i}]): "
                f"pulumi config set --secret --path 'userPasswords.{user.name}' ...",
            )
    for name in passwords:
        if name not in {u.name for u in users}:
            raise ConfigError(f"{key('userPasswords')}.{name}", "[secret]",
                              "has no matching entry in `users`: remove it or declare the user")
    indexes = _load_indexes(values.get("indexes", []), users, server)
    backup = _load_backup(values.get("backup"), host)
    return StackConfig(host=host, server=server, server_url=server_url, users=users, indexes=indexes,
                       backup=backup)


def _load_host(raw: Any) -> HostConfig | None:
    if raw is None:
        return None
    o = _Obj(raw, key("host"))
    address = o.text("address", required=True)
    if any(c.isspace() or c in "/@" for c in address):
        raise ConfigError(o.at("address"), address, "must be a host name or IP address")
    port = o.number("port", 22, lo=1, hi=65535)
    user = o.text("user", "root", required=True)
    if not re.fullmatch(r"[a-z_][a-z0-9_.-]*", user):
        raise ConfigError(o.at("user"), user, "must be a valid Unix user name")
    host_key = o.text("hostKey")
    insecure = o.flag("insecureIgnoreHostKey", False)
    if host_key is None and not insecure:
        raise ConfigError(
            o.at("hostKey"), None,
            "is required: pin the host's SSH key (e.g. the output of `ssh-keyscan -t ed25519 HOST`, "
            "without the host name) or set insecureIgnoreHostKey: true explicitly",
        )
    if host_key is not None and not re.fullmatch(r"(ssh-(ed25519|rsa)|ecdsa-sha2-nistp\d+) [A-Za-z0-9+/=]+", host_key):
        raise ConfigError(o.at("hostKey"), host_key, "must look like 'ssh-ed25519 AAAA...' (type and base64 key)")
    sudo = o.flag("sudo", user != "root")
    o.done()
    return HostConfig(address=address, port=port, user=user, host_key=host_key, sudo=sudo)


def _load_server(raw: Any, host: HostConfig | None) -> ServerConfig:
    o = _Obj(raw if raw is not None else {}, key("server"))
    port = o.number("port", DEFAULT_PORT, lo=1, hi=65535)
    image = o.text("image", DEFAULT_IMAGE, required=True)
    allow_floating = o.flag("allowFloatingTag", False)
    _repo, _, tag = image.rpartition(":") if ":" in image.rsplit("/", 1)[-1] else (image, "", "")
    if "@sha256:" not in image:
        if not tag:
            raise ConfigError(o.at("image"), image,
                              "must carry a version tag (e.g. jonasal/devpi-server:6.20.3) or a digest")
        if tag in FLOATING_TAGS and not allow_floating:
            raise ConfigError(o.at("image"), image,
                              f"uses the floating tag {tag!r}, which is overwritten upstream; pin a version "
                              "(jonasal/devpi-server:6.20.3) or set server.allowFloatingTag: true")
    data_dir = o.text("dataDir", DEFAULT_DATA_DIR, required=True)
    if not posixpath.isabs(data_dir):
        raise ConfigError(o.at("dataDir"), data_dir, "must be an absolute, normalized path")
    # The system-folder check comes first and on the normalized path, so `/`, `//` or `/etc/.` get
    # the reason that matters (a recursive relabel, or a purge, of a system folder) rather than a
    # remark about spelling.
    if _is_system_folder(data_dir):
        raise ConfigError(o.at("dataDir"), data_dir,
                          "is a system folder: it gets a recursive SELinux relabel; use a dedicated folder")
    if posixpath.normpath(data_dir) != data_dir.rstrip("/") or ".." in data_dir:
        raise ConfigError(o.at("dataDir"), data_dir, "must be an absolute, normalized path")
    pypi = o.flag("pypiMirror", False)
    container_name = o.text("containerName", "devpi-server", required=True)
    if not re.fullmatch(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*", container_name):
        raise ConfigError(o.at("containerName"), container_name, "must be a valid Docker container name")
    firewall = o.choice("firewallWhenInactive", "fail", ("fail", "skip"))
    purge = o.flag("purgeDataOnDestroy", False)
    ready = o.number("readyTimeout", 180, lo=5, hi=3600)
    docker_host = o.text("dockerHost")
    if docker_host is not None and not re.match(r"^(ssh|tcp|unix)://", docker_host):
        raise ConfigError(o.at("dockerHost"), docker_host, "must start with ssh://, tcp:// or unix://")
    ssh_opts = o.texts("sshOpts", ()) or ()
    o.done()
    _ = host
    return ServerConfig(port=port, image=image, allow_floating_tag=allow_floating,
                        data_dir=data_dir.rstrip("/") or "/", pypi_mirror=pypi,
                        container_name=container_name, firewall_when_inactive=firewall,
                        purge_data_on_destroy=purge, ready_timeout=ready, docker_host=docker_host,
                        ssh_opts=ssh_opts)


def _is_system_folder(path: str) -> bool:
    """True for ``/`` and the system folders of DANGEROUS_DIRS, however they are spelled."""
    return "/" + posixpath.normpath(path).lstrip("/") in DANGEROUS_DIRS


def _load_server_url(raw: Any, host: HostConfig | None, server: ServerConfig) -> str:
    if raw is None or raw == "":
        if host is None:
            raise ConfigError(key("serverUrl"), None,
                              "is required when no `host` is configured (the devpi server to manage)")
        return default_server_url(host.address, server.port)
    parts = urlsplit(str(raw))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        raise ConfigError(key("serverUrl"), raw, "must be http(s)://host[:port] without credentials")
    if parts.query or parts.fragment:
        raise ConfigError(key("serverUrl"), raw, "must not carry a ?query or #fragment; use the server's root URL")
    problem = _server_url_path_problem(parts.path)
    if problem:
        raise ConfigError(key("serverUrl"), raw, problem)
    return str(raw).rstrip("/")


def _server_url_path_problem(path: str) -> str | None:
    """Why the path of a serverUrl is not the root of a devpi-server, or None.

    The rule: a serverUrl is the server's root. A path is accepted only as an explicit URL prefix
    (devpi behind a reverse proxy at a path), written as a folder with a trailing ``/``
    (``https://host/devpi/``), and none of its segments may start with ``+`` (devpi's own routes:
    ``+simple``, ``+api``, ``+f``...).

    Why the trailing slash decides: devpi's URLs of a user (``/build_bot``), an index
    (``/build_bot/nightly``, as the manual procedure prints it) and a project are exactly "segments
    without a trailing slash", and a prefix such as ``/devpi`` is indistinguishable from the user
    ``devpi``. Reading such a URL as the server made every lookup answer 404, which the providers
    took as "deleted" (refresh dropped everything, destroy deleted nothing). So an ambiguous path is
    refused with the fix, instead of guessed; the slash costs a real prefix one character. The
    client additionally proves at run time that the URL answers like devpi's root (``/+api``).
    """
    if path in ("", "/"):
        return None
    segments = [s for s in path.split("/") if s]
    if any(s.startswith("+") for s in segments):
        return ("points inside devpi (a path segment starting with '+' is one of devpi's own routes, such as "
                "an index's +simple/ URL for pip); set it to the server's root URL, e.g. http://host:3141")
    if path.endswith("/"):
        return None
    kind = {1: "a devpi user", 2: "a devpi index (user/index)",
            3: "a devpi project page (user/index/project)"}.get(len(segments), "a page inside devpi")
    return (f"has a path that looks like the URL of {kind}, not of the server: set it to the server's root URL "
            "without that path (e.g. http://host:3141). If devpi really runs behind a reverse proxy at this "
            "path, end the URL with '/' to say so (e.g. https://host/devpi/)")


def _load_list(raw: Any, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(key(name), raw, "must be a list")
    return raw


def _load_users(raw: Any) -> tuple[UserConfig, ...]:
    users: list[UserConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(_load_list(raw, "users")):
        o = _Obj(item, f"{key('users')}[{i}]")
        name = o.text("name", required=True)
        problem = user_name_problem(name)
        if problem:
            raise ConfigError(o.at("name"), name, problem)
        if name == "root":
            raise ConfigError(o.at("name"), name,
                              "root is managed by the stack itself (rootPassword); do not declare it")
        if name in seen:
            raise ConfigError(o.at("name"), name, f"is declared twice (also users[{seen[name]}])")
        seen[name] = i
        users.append(UserConfig(
            name=name, email=o.text("email"), title=o.text("title"), description=o.text("description"),
            adopt=o.flag("adopt", False), force_destroy=o.flag("forceDestroy", False),
        ))
        o.done()
    return tuple(users)


def _load_indexes(raw: Any, users: Sequence[UserConfig], server: ServerConfig) -> tuple[IndexConfig, ...]:
    owners = {u.name for u in users} | {"root"}
    loaded: list[IndexConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(_load_list(raw, "indexes")):
        loaded.append(_load_index(item, i, owners, server, seen))
    by_name = {ix.full_name: (i, ix) for i, ix in enumerate(loaded)}
    for i, ix in enumerate(loaded):
        for j, base in enumerate(ix.bases):
            if base == PYPI_MIRROR or base in by_name:
                continue
            raise ConfigError(f"{key('indexes')}[{i}].bases[{j}]", base,
                              f"is neither a declared index nor {PYPI_MIRROR}")
    _refuse_cycles(loaded)
    for i, ix in enumerate(loaded):
        chain = _pypi_path(ix.full_name, {n: v[1] for n, v in by_name.items()})
        if chain and not ix.cache_pypi:
            raise ConfigError(
                f"{key('indexes')}[{i}].bases", list(ix.bases),
                f"makes private index {ix.full_name} inherit {PYPI_MIRROR} (via {' -> '.join(chain)}): "
                "public packages would shadow private ones (dependency confusion). "
                "Remove that base, or opt in with cachePypi: true",
            )
    return tuple(loaded)


def _load_index(item: Any, i: int, owners: set[str], server: ServerConfig, seen: dict[str, int]) -> IndexConfig:
    o = _Obj(item, f"{key('indexes')}[{i}]")
    full = o.text("name", required=True)
    problem = index_spec_problem(full)
    if problem:
        raise ConfigError(o.at("name"), full, f"{problem} (e.g. build_bot/nightly)")
    owner, name = full.split("/")
    problem = index_name_problem(name)
    if problem:
        raise ConfigError(o.at("name"), full, problem)
    if owner not in owners:
        raise ConfigError(o.at("name"), full, f"is owned by {owner!r}, which is not declared in `users`")
    if full in seen:
        raise ConfigError(o.at("name"), full, f"is declared twice (also indexes[{seen[full]}])")
    if full == PYPI_MIRROR:
        raise ConfigError(o.at("name"), full, "root/pypi is created by the server itself (server.pypiMirror)")
    seen[full] = i
    typ = o.choice("type", "stage", ("stage", "mirror"))
    cache_pypi = o.flag("cachePypi", False)
    bases = list(o.texts("bases", ()) or ())
    for j, base in enumerate(bases):
        problem = index_spec_problem(base)
        if problem:
            raise ConfigError(f"{o.at('bases')}[{j}]", base, problem)
        if base == full:
            raise ConfigError(f"{o.at('bases')}[{j}]", base, "an index cannot inherit itself")
    if len(set(bases)) != len(bases):
        raise ConfigError(o.at("bases"), bases, "lists a base twice")
    if cache_pypi:
        if not server.pypi_mirror:
            raise ConfigError(o.at("cachePypi"), True,
                              "needs server.pypiMirror: true (root/pypi does not exist on this server)")
        if typ == "mirror":
            raise ConfigError(o.at("cachePypi"), True, "only stage indexes inherit bases")
        if PYPI_MIRROR not in bases:
            bases.append(PYPI_MIRROR)
    volatile = o.flag("volatile", True)  # devpi's own default
    allow_volatile = o.flag("allowVolatile", False)
    if volatile and typ == "stage" and STABLE_NAME.search(name) and not allow_volatile:
        raise ConfigError(o.at("volatile"), volatile,
                          f"index {full} is named like a stable index but would be volatile (versions "
                          "could be overwritten): set volatile: false, or allowVolatile: true to opt out")
    acl_upload = o.texts("aclUpload")
    allow_anon = o.flag("allowAnonymousUpload", False)
    if acl_upload and any(a.upper() == ":ANONYMOUS:" for a in acl_upload) and not allow_anon:
        raise ConfigError(o.at("aclUpload"), list(acl_upload),
                          "lets anyone upload (:ANONYMOUS:); set allowAnonymousUpload: true to opt out")
    whitelist = o.texts("mirrorWhitelist")
    allow_star = o.flag("allowMirrorWhitelistStar", False)
    if whitelist and "*" in whitelist and not allow_star:
        raise ConfigError(o.at("mirrorWhitelist"), list(whitelist),
                          "'*' trusts every PyPI release over private ones (dependency confusion); "
                          "list project names, or set allowMirrorWhitelistStar: true")
    mirror_url = o.text("mirrorUrl")
    if typ == "mirror":
        if not mirror_url:
            raise ConfigError(o.at("mirrorUrl"), None,
                              "is required for a mirror index (devpi accepts a mirror without it, then "
                              "crashes on its next start)")
        if bases:
            raise ConfigError(o.at("bases"), bases, "a mirror index has no bases (devpi would drop them)")
    elif mirror_url is not None:
        raise ConfigError(o.at("mirrorUrl"), mirror_url, "only applies to type: mirror")
    if mirror_url is not None and urlsplit(mirror_url).scheme not in ("http", "https"):
        raise ConfigError(o.at("mirrorUrl"), mirror_url, "must be an http(s) URL")
    retention = None
    o.seen.add("retention")
    if o.has("retention"):
        retention = RetentionPolicy.from_config(o.value["retention"], o.at("retention"))
    ix = IndexConfig(
        owner=owner, name=name, type=typ, bases=tuple(bases), cache_pypi=cache_pypi, volatile=volatile,
        acl_upload=acl_upload, acl_toxresult_upload=o.texts("aclToxresultUpload"),
        mirror_whitelist=whitelist,
        mirror_whitelist_inheritance=o.choice("mirrorWhitelistInheritance", None, ("intersection", "union")),
        mirror_url=mirror_url, mirror_web_url_fmt=o.text("mirrorWebUrlFmt"),
        mirror_cache_expiry=o.number("mirrorCacheExpiry", None, lo=0, hi=10**8),
        mirror_no_project_list=_opt_bool(o, "mirrorNoProjectList"),
        mirror_use_external_urls=_opt_bool(o, "mirrorUseExternalUrls"),
        mirror_ignore_serial_header=_opt_bool(o, "mirrorIgnoreSerialHeader"),
        title=o.text("title"), description=o.text("description"), retention=retention,
        adopt=o.flag("adopt", False), force_destroy=o.flag("forceDestroy", False),
        allow_mirror_whitelist_star=allow_star, allow_anonymous_upload=allow_anon,
    )
    o.done()
    return ix


def _opt_bool(o: _Obj, name: str) -> bool | None:
    """A boolean that stays None (devpi's default) unless the config states it."""
    o.seen.add(name)
    return o.flag(name, False) if o.has(name) else None


def _refuse_cycles(indexes: Sequence[IndexConfig]) -> None:
    graph = {ix.full_name: [b for b in ix.bases if b != PYPI_MIRROR] for ix in indexes}
    position = {ix.full_name: i for i, ix in enumerate(indexes)}
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for base in graph.get(node, []):
            if state.get(base) == 1:
                cycle = [*path[path.index(base):], base] if base in path else [node, base]
                raise ConfigError(f"{key('indexes')}[{position[node]}].bases", list(graph[node]),
                                  f"create a cycle: {' -> '.join(cycle)}")
            if state.get(base) is None and base in graph:
                visit(base, [*path, base])
        state[node] = 2

    for name in graph:
        if state.get(name) is None:
            visit(name, [name])


def _pypi_path(start: str, by_name: Mapping[str, IndexConfig]) -> list[str]:
    """The inheritance chain from ``start`` to root/pypi, or [] when it never reaches it."""
    def walk(node: str, path: list[str]) -> list[str]:
        ix = by_name.get(node)
        if ix is None:
            return []
        for base in ix.bases:
            if base == PYPI_MIRROR:
                return [*path, base]
            if base not in path:
                found = walk(base, [*path, base])
                if found:
                    return found
        return []

    return walk(start, [start])


def _load_backup(raw: Any, host: HostConfig | None) -> BackupConfig:
    if raw is None:
        return BackupConfig()
    o = _Obj(raw, key("backup"))
    enabled = o.flag("enabled", True)
    schedule = o.text("schedule", "daily", required=True)
    if not re.fullmatch(r"[A-Za-z0-9*:/,.~ -]+", schedule):
        raise ConfigError(o.at("schedule"), schedule, "must be a systemd OnCalendar expression (e.g. daily)")
    directory = o.text("directory", "/opt/local/devpi/backups", required=True)
    if not posixpath.isabs(directory) or directory.rstrip("/") in DANGEROUS_DIRS:
        raise ConfigError(o.at("directory"), directory, "must be an absolute, dedicated folder")
    keep = o.number("keep", 7, lo=1, hi=1000)
    o.done()
    if enabled and host is None:
        raise ConfigError(o.at("enabled"), enabled, "scheduled backups need `host` (they run on the host)")
    return BackupConfig(enabled=enabled, schedule=schedule, directory=directory, keep=keep)
