"""The stack-config loader: raw ``devpi-registry:*`` values in, the validated model out.

``load_stack_config`` turns the raw keys (from the engine or from ``Pulumi.<stack>.yaml``, see
:mod:`components.config.sources`) into the frozen objects of :mod:`components.config.model`. The
value rules themselves live in :mod:`components.config.rules`; this module is the only place that
speaks in key paths: every problem raises ``ConfigError`` naming the key path
(``devpi-registry:indexes[1].bases[0]``), the bad value and how to fix it, so ``pulumi preview``
fails before anything is touched. Nothing else in the program reads raw config.

Secrets (``rootPassword``, ``sshPrivateKey``, ``userPasswords``) are checked for presence, for being
stored encrypted, and ``rootPassword`` against its rule (masked in the message); their values stay
Pulumi secrets (see ``components.program``).

Guardrails, each with an explicit per-index opt-out:
- a private index (``cachePypi: false``, the default) must not inherit ``root/pypi``, directly or
  through its bases — dependency confusion (opt-out: ``cachePypi: true``);
- an index named like a stable/release/prod index must be non-volatile (opt-out: ``allowVolatile``);
- ``mirrorWhitelist: ["*"]`` is refused (opt-out: ``allowMirrorWhitelistStar``);
- ``:ANONYMOUS:`` in ``aclUpload`` is refused (opt-out: ``allowAnonymousUpload``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from components.config import rules
from components.config import tls as certs
from components.config.defaults import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_BACKUP_KEEP,
    DEFAULT_BACKUP_SCHEDULE,
    DEFAULT_CLIENT_CA_PATH,
    DEFAULT_CONTAINER_NAME,
    DEFAULT_DATA_DIR,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_IMAGE,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PORT,
    DEFAULT_PROXY_CONTAINER_NAME,
    DEFAULT_PROXY_DIR,
    DEFAULT_PROXY_IMAGE,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_REPLICA_CONTAINER_NAME,
    DEFAULT_REPLICA_MAX_LAG,
    DEFAULT_SECRET_DIR,
    DEFAULT_SSH_PORT,
    PROJECT,
    PYPI_MIRROR,
)
from components.config.errors import ConfigError
from components.config.model import (
    BackupConfig,
    HostConfig,
    IndexConfig,
    ReplicaConfig,
    ServerConfig,
    StackConfig,
    TlsConfig,
    UserConfig,
    default_server_url,
)
from components.config.retention import RetentionPolicy
from components.devpi.names import INDEX_TYPES

__all__ = [
    "DEFAULT_DATA_DIR",
    "DEFAULT_IMAGE",
    "PYPI_MIRROR",
    "SECRET_KEYS",
    "SECRET_PLACEHOLDER",
    "TOP_LEVEL_KEYS",
    "BackupConfig",
    "HostConfig",
    "IndexConfig",
    "ReplicaConfig",
    "ServerConfig",
    "StackConfig",
    "TlsConfig",
    "UserConfig",
    "key",
    "load_connection",
    "load_stack_config",
]

SECRET_KEYS = ("rootPassword", "sshPrivateKey", "userPasswords", "tlsPrivateKey", "replicaSshPrivateKeys")
TOP_LEVEL_KEYS = ("host", "server", "serverUrl", "users", "indexes", "backup", "tls", "replicas", *SECRET_KEYS)
_STRUCTURED_KEYS = ("host", "server", "users", "indexes", "backup", "tls", "replicas", "userPasswords",
                    "replicaSshPrivateKeys")
#: what an encrypted value of a stack file reads as (see components.config.sources.file_config)
SECRET_PLACEHOLDER = "[secret]"  # noqa: S105 - a placeholder, not a password


def key(name: str) -> str:
    """The fully qualified key of a bare name: ``serverUrl`` -> ``devpi-registry:serverUrl``."""
    return f"{PROJECT}:{name}"


def _refuse(path: str, value: Any, problem: str | None, *, opt_out: str | None = None,
            fix: str | None = None, secret: bool = False) -> None:
    """Raise ``ConfigError`` at ``path`` when a rule found a ``problem``; ``opt_out`` names the key
    that accepts the value anyway, ``fix`` adds a stack-specific hint."""
    if not problem:
        return
    if fix:
        problem = f"{problem}: {fix}"
    if opt_out:
        problem = f"{problem}; or set {opt_out} to opt out"
    raise ConfigError(path, value, problem, secret=secret)


# ------------------------------------------------------------------------------------ value readers
class KeyReader:
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

    def rule(self, key: str, value: Any, problem: str | None, *, opt_out: str | None = None,
             fix: str | None = None) -> None:
        """Refuse ``value`` of ``key`` when a rule of :mod:`components.config.rules` found a problem."""
        _refuse(self.at(key), value, problem, opt_out=opt_out, fix=fix)

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

    def opt_flag(self, key: str) -> bool | None:
        """A boolean that stays None (devpi's default) unless the config states it."""
        self.seen.add(key)
        return self.flag(key, False) if self.has(key) else None

    def number(self, key: str, default: int | None, check: Callable[[object], str | None]) -> Any:
        """A whole number checked by ``check`` (a rule); None when absent without a default."""
        value = self._get(key, default)
        if value is not None:
            self.rule(key, value, check(value))
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

    def folder(self, key: str, default: str, check: Callable[[object], str | None]) -> str:
        """A host folder checked by ``check``; a trailing ``/`` is a spelling, not another folder."""
        value: str = self.text(key, default, required=True)
        folder = value.rstrip("/") or value
        self.rule(key, value, check(folder))
        return folder

    def done(self) -> None:
        """Refuse keys nobody read: a typo must not be silently ignored (nor its value printed when
        it looks like a secret: a key pasted under a misspelt name)."""
        unknown = sorted(set(self.value) - self.seen)
        if unknown:
            value = self.value[unknown[0]]
            raise ConfigError(self.at(unknown[0]), value,
                              f"is not a known key here (known: {', '.join(sorted(self.seen))})",
                              secret=_hidden(unknown[0], value))


def _hidden(name: str, value: Any) -> bool:
    """Whether a value must stay out of messages: a secret-sounding key name, or PEM key material."""
    lowered = str(name).lower()
    if any(word in lowered for word in ("password", "key", "secret", "token")):
        return True
    return "PRIVATE KEY" in json.dumps(value, default=str)


def _decode(raw: Any, name: str) -> Any:
    """Pulumi hands structured config to programs as JSON strings; decode them once here. A secret
    object a stack file holds encrypted as a whole reads as the placeholder and stays one."""
    if isinstance(raw, str) and name in _STRUCTURED_KEYS and not (name in SECRET_KEYS and raw == SECRET_PLACEHOLDER):
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise ConfigError(key(name), raw, "must be structured YAML (an object or list), not a string",
                              secret=name in SECRET_KEYS) from exc
    return raw


def _load_list(raw: Any, name: str) -> list[Any]:
    if not isinstance(raw, list):
        raise ConfigError(key(name), raw, "must be a list")
    return raw


# ----------------------------------------------------------------------------------------- loading
def load_stack_config(raw: Mapping[str, Any], *, secret_keys: set[str] | None = None,
                      partial: bool = False) -> StackConfig:
    """Validate the stack's ``devpi-registry:*`` config (bare key -> value) and return typed objects.

    ``secret_keys``, when known, are the bare keys Pulumi holds encrypted; the secret keys must be
    among them, so a password never sits in clear text in ``Pulumi.<stack>.yaml``.

    ``partial=True`` reads a stack file outside the engine (the ``devpi-lifecycle`` CLI): the secrets
    are encrypted there, so only the encryption is checked; index owners need not be declared in
    ``users`` (they are added as users); ``serverUrl`` may be absent (``server_url`` is then ``""``).
    Every value rule is the same.
    """
    values = {name: _decode(v, name) for name, v in raw.items()}
    _refuse_unknown_keys(values)
    if not partial:
        _root_password(values)
    _refuse_clear_secrets(values, secret_keys)
    host = _load_host(values.get("host"))
    server = _load_server(values.get("server", {}))
    if not partial and host is not None and not values.get("sshPrivateKey"):
        raise ConfigError(key("sshPrivateKey"), None,
                          "is required when `host` is set: pulumi config set --secret sshPrivateKey < KEYFILE")
    tls = _load_tls(values, host, server, partial=partial)
    server_url = _load_server_url(values.get("serverUrl"), host, server, tls, required=not partial)
    replicas = _load_replicas(values, host, server, tls, server_url, partial=partial)
    users = _load_users(values.get("users", []))
    if not partial:
        _check_user_passwords(values.get("userPasswords"), users)
    indexes = _load_indexes(values.get("indexes", []), users, server, owners_declared=not partial)
    if partial:
        users += tuple(UserConfig(name=owner) for owner in dict.fromkeys(ix.owner for ix in indexes)
                       if owner not in {u.name for u in users})
    backup = _load_backup(values.get("backup"), host)
    return StackConfig(host=host, server=server, server_url=server_url, users=users, indexes=indexes,
                       backup=backup, tls=tls, replicas=replicas)


def load_connection(raw: Mapping[str, Any]) -> tuple[str, str, str | None]:
    """``(server URL, root's password, CA bundle PEM or None)`` — what the dynamic providers need —
    read with the same functions and rules as :func:`load_stack_config` (only the keys they depend
    on are read; ``tls`` fully, since it decides the URL's scheme and the default URL)."""
    values = {name: _decode(v, name) for name, v in raw.items() if name in TOP_LEVEL_KEYS}
    password = _root_password(values)
    host = _load_host(values.get("host"))
    server = _load_server(values.get("server", {}))
    tls = _load_tls(values, host, server, partial=False)
    url = _load_server_url(values.get("serverUrl"), host, server, tls, required=True)
    return url, password, tls.ca_bundle if tls is not None else None


def _refuse_unknown_keys(values: Mapping[str, Any]) -> None:
    for name in values:
        if name not in TOP_LEVEL_KEYS:
            raise ConfigError(key(name), values[name], f"is not a known key (known: {', '.join(TOP_LEVEL_KEYS)})",
                              secret=_hidden(name, values[name]))


def _root_password(values: Mapping[str, Any]) -> str:
    """root's password: present, and acceptable to the image (checked here, where the raw secret is
    at hand, so no error is ever raised inside an Output; the message masks the value)."""
    password = values.get("rootPassword")
    if not password:
        raise ConfigError(key("rootPassword"), None,
                          "is required: pulumi config set --secret rootPassword (it stays encrypted)")
    _refuse(key("rootPassword"), password, rules.root_password_problem(password), secret=True)
    return str(password)


def _refuse_clear_secrets(values: Mapping[str, Any], secret_keys: set[str] | None) -> None:
    if secret_keys is None:
        return
    for name in SECRET_KEYS:
        if name in values and name not in secret_keys:
            raise ConfigError(key(name), values[name],
                              f"must be set as a secret: pulumi config set --secret {name} ...", secret=True)


def _load_host(raw: Any, path: str | None = None) -> HostConfig | None:
    """The top-level ``host`` (the primary) or, at ``path``, a replica's host: the same keys and rules."""
    if raw is None:
        return None
    o = KeyReader(raw, path or key("host"))
    address = o.text("address", required=True)
    o.rule("address", address, rules.host_address_problem(address))
    port = o.number("port", DEFAULT_SSH_PORT, rules.port_problem)
    user = o.text("user", "root", required=True)
    o.rule("user", user, rules.unix_user_problem(user))
    host_key = o.text("hostKey")
    insecure = o.flag("insecureIgnoreHostKey", False)
    if host_key is None and not insecure:
        raise ConfigError(
            o.at("hostKey"), None,
            "is required: pin the host's SSH key (e.g. the output of `ssh-keyscan -t ed25519 HOST`, "
            "without the host name) or set insecureIgnoreHostKey: true explicitly",
        )
    if host_key is not None:
        o.rule("hostKey", host_key, rules.host_key_problem(host_key))
    sudo = o.flag("sudo", user != "root")
    o.done()
    return HostConfig(address=address, port=port, user=user, host_key=host_key,
                      insecure_ignore_host_key=insecure and host_key is None, sudo=sudo)


def _load_server(raw: Any) -> ServerConfig:
    o = KeyReader(raw if raw is not None else {}, key("server"))
    port = o.number("port", DEFAULT_PORT, rules.port_problem)
    image = o.text("image", DEFAULT_IMAGE, required=True)
    allow_floating = o.flag("allowFloatingTag", False)
    o.rule("image", image, rules.image_problem(image, allowed=allow_floating),
           opt_out="server.allowFloatingTag: true")
    data_dir = o.folder("dataDir", DEFAULT_DATA_DIR, rules.data_dir_problem)
    pypi = o.flag("pypiMirror", False)
    container_name = o.text("containerName", DEFAULT_CONTAINER_NAME, required=True)
    o.rule("containerName", container_name, rules.container_name_problem(container_name))
    firewall = o.choice("firewallWhenInactive", "fail", rules.FIREWALL_CHOICES)
    purge = o.flag("purgeDataOnDestroy", False)
    ready = o.number("readyTimeout", DEFAULT_READY_TIMEOUT, rules.ready_timeout_problem)
    docker_host = o.text("dockerHost")
    if docker_host is not None:
        o.rule("dockerHost", docker_host, rules.docker_host_problem(docker_host))
    ssh_opts = o.texts("sshOpts", ()) or ()
    secret_dir = _secret_dir(o, data_dir)
    o.done()
    return ServerConfig(port=port, image=image, allow_floating_tag=allow_floating, data_dir=data_dir,
                        pypi_mirror=pypi, container_name=container_name, firewall_when_inactive=firewall,
                        purge_data_on_destroy=purge, ready_timeout=ready, docker_host=docker_host,
                        ssh_opts=ssh_opts, secret_dir=secret_dir)


def _secret_dir(o: KeyReader, data_dir: str) -> str:
    """``secretDir`` (devpi's --secretfile folder): folder rules like ``dataDir``, and apart from it —
    the data folder goes into every backup archive, the secret must not."""
    secret_dir = o.folder("secretDir", DEFAULT_SECRET_DIR, rules.secret_dir_problem)
    if rules.folders_overlap(secret_dir, data_dir):
        o.rule("secretDir", secret_dir, f"must be a folder apart from dataDir ({data_dir}): the data folder "
               "goes into every backup archive, devpi's secret must not")
    return secret_dir


def _load_server_url(raw: Any, host: HostConfig | None, server: ServerConfig, tls: TlsConfig | None = None,
                     *, required: bool) -> str:
    if raw is None or raw == "":
        if host is not None and tls is not None and tls.names:
            return _https_url(tls.names[0], tls.https_port)
        if host is not None:
            return default_server_url(host.address, server.port)
        if not required:
            return ""
        raise ConfigError(key("serverUrl"), None,
                          "is required when no `host` is configured (the devpi server to manage)")
    _refuse(key("serverUrl"), raw, rules.server_url_problem(raw))
    if tls is not None and not str(raw).startswith("https://"):
        hint = " (remove serverUrl to use the default https://<tls.names[0]>)" if host is not None else ""
        raise ConfigError(key("serverUrl"), raw, f"must be an https:// URL: a TLS stack is served over https{hint}")
    return str(raw).rstrip("/")


def _https_url(address: str, port: int) -> str:
    """``https://<address>`` with ``:<port>`` unless 443 (IPv6 literals in brackets)."""
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"https://{host}" if port == 443 else f"https://{host}:{port}"


# ------------------------------------------------------------------------------------------ users
def _load_users(raw: Any) -> tuple[UserConfig, ...]:
    users: list[UserConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(_load_list(raw, "users")):
        o = KeyReader(item, f"{key('users')}[{i}]")
        name = o.text("name", required=True)
        o.rule("name", name, rules.user_problem(name))
        if name in seen:
            raise ConfigError(o.at("name"), name, f"is declared twice (also users[{seen[name]}])")
        seen[name] = i
        users.append(UserConfig(
            name=name, email=o.text("email"), title=o.text("title"), description=o.text("description"),
            adopt=o.flag("adopt", False), force_destroy=o.flag("forceDestroy", False),
        ))
        o.done()
    return tuple(users)


def _check_user_passwords(raw: Any, users: Sequence[UserConfig]) -> None:
    """One secret ``userPasswords.<name>`` per declared user, and none for an undeclared one."""
    passwords = raw or {}
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
    declared = {u.name for u in users}
    for name in passwords:
        if name not in declared:
            raise ConfigError(f"{key('userPasswords')}.{name}", "[secret]",
                              "has no matching entry in `users`: remove it or declare the user")


# ---------------------------------------------------------------------------------------- indexes
def _load_indexes(raw: Any, users: Sequence[UserConfig], server: ServerConfig, *,
                  owners_declared: bool) -> tuple[IndexConfig, ...]:
    owners = {u.name for u in users} | {"root"} if owners_declared else None
    loaded: list[IndexConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(_load_list(raw, "indexes")):
        loaded.append(_load_index(item, i, owners, server, seen))
    _refuse_undeclared_bases(loaded)
    _refuse_cycles(loaded)
    _refuse_private_pypi(loaded)
    return tuple(loaded)


def _load_index(item: Any, i: int, owners: set[str] | None, server: ServerConfig,
                seen: dict[str, int]) -> IndexConfig:
    o = KeyReader(item, f"{key('indexes')}[{i}]")
    full = _index_full_name(o, i, owners, seen)
    owner, name = full.split("/")
    typ = o.choice("type", "stage", INDEX_TYPES)
    for typed_key in sorted(set(o.value) & {*rules.STAGE_ONLY_KEYS, *rules.MIRROR_ONLY_KEYS}):
        if o.value[typed_key] not in (None, []):
            o.rule(typed_key, o.value[typed_key], rules.index_type_key_problem(typed_key, index_type=typ))
    bases, cache_pypi = _index_bases(o, full, typ, server)
    volatile = o.flag("volatile", True)  # devpi's own default
    allow_volatile = o.flag("allowVolatile", False)
    o.rule("volatile", volatile,
           rules.volatile_problem(full, volatile=volatile, index_type=typ, allowed=allow_volatile),
           opt_out="allowVolatile: true")
    acl_upload = o.texts("aclUpload")
    allow_anon = o.flag("allowAnonymousUpload", False)
    o.rule("aclUpload", _shown(acl_upload), rules.anonymous_upload_problem(acl_upload, allowed=allow_anon),
           opt_out="allowAnonymousUpload: true")
    whitelist = o.texts("mirrorWhitelist")
    allow_star = o.flag("allowMirrorWhitelistStar", False)
    o.rule("mirrorWhitelist", _shown(whitelist), rules.mirror_whitelist_problem(whitelist, allowed=allow_star),
           opt_out="allowMirrorWhitelistStar: true")
    mirror_url = _index_mirror_url(o, typ, bases)
    ix = IndexConfig(
        owner=owner, name=name, type=typ, bases=bases, cache_pypi=cache_pypi, volatile=volatile,
        acl_upload=acl_upload, acl_toxresult_upload=o.texts("aclToxresultUpload"),
        mirror_whitelist=whitelist,
        mirror_whitelist_inheritance=o.choice("mirrorWhitelistInheritance", None, ("intersection", "union")),
        mirror_url=mirror_url, mirror_web_url_fmt=o.text("mirrorWebUrlFmt"),
        mirror_cache_expiry=o.number("mirrorCacheExpiry", None, rules.cache_expiry_problem),
        mirror_no_project_list=o.opt_flag("mirrorNoProjectList"),
        mirror_use_external_urls=o.opt_flag("mirrorUseExternalUrls"),
        mirror_ignore_serial_header=o.opt_flag("mirrorIgnoreSerialHeader"),
        title=o.text("title"), description=o.text("description"), retention=_index_retention(o),
        adopt=o.flag("adopt", False), force_destroy=o.flag("forceDestroy", False),
        allow_mirror_whitelist_star=allow_star, allow_anonymous_upload=allow_anon,
    )
    o.done()
    return ix


def _shown(values: tuple[str, ...] | None) -> list[str] | None:
    """A list value as the user wrote it (a YAML list), for messages."""
    return list(values) if values is not None else None


def _index_full_name(o: KeyReader, i: int, owners: set[str] | None, seen: dict[str, int]) -> str:
    """``indexes[i].name``: a valid ``user/name`` the stack may declare, owned by a declared user
    (``owners`` None: any owner), declared once."""
    full: str = o.text("name", required=True)
    o.rule("name", full, rules.index_declaration_problem(full))
    owner = full.split("/")[0]
    if owners is not None and owner not in owners:
        raise ConfigError(o.at("name"), full, f"is owned by {owner!r}, which is not declared in `users`")
    if full in seen:
        raise ConfigError(o.at("name"), full, f"is declared twice (also indexes[{seen[full]}])")
    seen[full] = i
    return full


def _index_bases(o: KeyReader, full: str, typ: str, server: ServerConfig) -> tuple[tuple[str, ...], bool]:
    """The effective bases (``root/pypi`` appended with ``cachePypi``) and the ``cachePypi`` flag."""
    cache_pypi = o.flag("cachePypi", False)
    bases = list(o.texts("bases", ()) or ())
    for j, base in enumerate(bases):
        _refuse(f"{o.at('bases')}[{j}]", base, rules.base_problem(full, base))
    o.rule("bases", bases, rules.bases_problem(bases))
    if cache_pypi:
        o.rule("cachePypi", True, rules.cache_pypi_problem(pypi_mirror=server.pypi_mirror, index_type=typ),
               fix=None if server.pypi_mirror else "set server.pypiMirror: true")
        if PYPI_MIRROR not in bases:
            bases.append(PYPI_MIRROR)
    return tuple(bases), cache_pypi


def _index_mirror_url(o: KeyReader, typ: str, bases: Sequence[str]) -> str | None:
    mirror_url = o.text("mirrorUrl")
    o.rule("mirrorUrl", mirror_url, rules.mirror_url_problem(mirror_url, index_type=typ))
    if typ == "mirror" and bases:
        raise ConfigError(o.at("bases"), list(bases), "a mirror index has no bases (devpi would drop them)")
    return mirror_url


def _index_retention(o: KeyReader) -> RetentionPolicy | None:
    o.seen.add("retention")
    if not o.has("retention"):
        return None
    return RetentionPolicy.from_config(o.value["retention"], o.at("retention"))


def _refuse_undeclared_bases(indexes: Sequence[IndexConfig]) -> None:
    declared = {ix.full_name for ix in indexes}
    for i, ix in enumerate(indexes):
        for j, base in enumerate(ix.bases):
            if base != PYPI_MIRROR and base not in declared:
                raise ConfigError(f"{key('indexes')}[{i}].bases[{j}]", base,
                                  f"is neither a declared index nor {PYPI_MIRROR}")


def _refuse_private_pypi(indexes: Sequence[IndexConfig]) -> None:
    """A private index (no ``cachePypi``) must not reach root/pypi through its bases."""
    by_name = {ix.full_name: ix for ix in indexes}
    for i, ix in enumerate(indexes):
        chain = _pypi_path(ix.full_name, by_name)
        if chain and not ix.cache_pypi:
            raise ConfigError(
                f"{key('indexes')}[{i}].bases", list(ix.bases),
                f"makes private index {ix.full_name} inherit {PYPI_MIRROR} (via {' -> '.join(chain)}): "
                "public packages would shadow private ones (dependency confusion). "
                "Remove that base, or opt in with cachePypi: true",
            )


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


# ----------------------------------------------------------------------------------------- backup
def _load_backup(raw: Any, host: HostConfig | None) -> BackupConfig:
    if raw is None:
        return BackupConfig()
    o = KeyReader(raw, key("backup"))
    enabled = o.flag("enabled", True)
    schedule = o.text("schedule", DEFAULT_BACKUP_SCHEDULE, required=True)
    o.rule("schedule", schedule, rules.backup_schedule_problem(schedule))
    directory = o.folder("directory", DEFAULT_BACKUP_DIR, rules.backup_dir_problem)
    keep = o.number("keep", DEFAULT_BACKUP_KEEP, rules.backup_keep_problem)
    o.done()
    if enabled and host is None:
        raise ConfigError(o.at("enabled"), enabled, "scheduled backups need `host` (they run on the host)")
    return BackupConfig(enabled=enabled, schedule=schedule, directory=directory, keep=keep)


# -------------------------------------------------------------------------------------------- tls
#: ``tls`` keys that configure the proxy the stack runs on ``host`` (meaningless without one)
_PROXY_KEYS = ("certificate", "names", "httpsPort", "httpRedirect", "httpPort", "proxyImage",
               "allowFloatingProxyTag", "proxyContainerName", "proxyDir", "maxUploadMb")
_NO_PROXY = ("is for the HTTPS proxy, which is managed only with `host`; a registry-only stack "
             "(serverUrl without host) takes only caBundle and clientCaPath in `tls`")


def _pem_error(path: str, value: Any, problem: str) -> ConfigError:
    """A problem with a PEM value: shown by its shape only, masked when it holds key material."""
    return ConfigError(path, certs.pem_summary(value), problem,
                       secret=isinstance(value, str) and "PRIVATE KEY" in value)


def _load_tls(values: Mapping[str, Any], host: HostConfig | None, server: ServerConfig, *,
              partial: bool) -> TlsConfig | None:
    """``tls`` and the secret ``tlsPrivateKey``. The PEM checks need ``cryptography`` (the ``stack``
    extra); a partial load (the CLI) without it skips them and leaves ``not_after`` unknown."""
    raw, private_key = values.get("tls"), values.get("tlsPrivateKey")
    if raw is None:
        if private_key is not None:
            raise ConfigError(key("tlsPrivateKey"), private_key,
                              "is set but `tls` is not: add tls (certificate, names) or remove the key", secret=True)
        return None
    o = KeyReader(raw, key("tls"))
    checks = not partial or certs.crypto_available()
    ca_bundle = o.text("caBundle")
    if ca_bundle is not None and checks and (problem := certs.ca_bundle_problem(ca_bundle)):
        raise _pem_error(o.at("caBundle"), ca_bundle, problem)
    client_ca_path = o.text("clientCaPath", DEFAULT_CLIENT_CA_PATH, required=True)
    o.rule("clientCaPath", client_ca_path, rules.client_ca_path_problem(client_ca_path))
    if host is None:
        for name in _PROXY_KEYS:
            if o.has(name):
                raise ConfigError(o.at(name), certs.pem_summary(o.value[name]) if name == "certificate"
                                  else o.value[name], _NO_PROXY, secret=_hidden(name, o.value[name]))
        if private_key is not None:
            raise ConfigError(key("tlsPrivateKey"), private_key, _NO_PROXY, secret=True)
        o.done()
        return TlsConfig(ca_bundle=ca_bundle, client_ca_path=client_ca_path)
    tls = _load_proxy(o, server, ca_bundle=ca_bundle, client_ca_path=client_ca_path, checks=checks)
    o.done()
    if not partial and not private_key:
        raise ConfigError(key("tlsPrivateKey"), None, "is required with `tls` and `host` (the proxy's key): "
                          "pulumi config set --secret tlsPrivateKey < key.pem")
    if checks and tls.certificate is not None:
        _check_certificate(tls, private_key if private_key != SECRET_PLACEHOLDER else None)
        return dataclasses.replace(tls, not_after=certs.certificate_not_after(tls.certificate))
    return tls


def _load_proxy(o: KeyReader, server: ServerConfig, *, ca_bundle: str | None, client_ca_path: str,
                checks: bool) -> TlsConfig:
    """The proxy keys of ``tls`` on a managed host (value rules; the certificate is checked after)."""
    certificate = o.text("certificate")
    if certificate is None:
        raise ConfigError(o.at("certificate"), None, "is required with `host` (the proxy serves it): "
                          "pulumi config set --path tls.certificate < chain.pem (server certificate first)")
    if checks and (problem := certs.certificate_chain_problem(certificate)):
        raise _pem_error(o.at("certificate"), certificate, problem)
    names = o.texts("names") or ()
    if not names:
        raise ConfigError(o.at("names"), list(names), "is required with `host`: the names clients use to reach "
                          "the registry (the first one makes the default serverUrl)")
    for j, name in enumerate(names):
        _refuse(f"{o.at('names')}[{j}]", name, rules.tls_name_problem(name))
        if name.lower() in (n.lower() for n in names[:j]):
            raise ConfigError(f"{o.at('names')}[{j}]", name, "is listed twice")
    https_port = o.number("httpsPort", DEFAULT_HTTPS_PORT, rules.port_problem)
    redirect = o.flag("httpRedirect", True)
    http_port = o.number("httpPort", DEFAULT_HTTP_PORT, rules.port_problem)
    if redirect and http_port == https_port:
        o.rule("httpPort", http_port, "must differ from httpsPort (the redirect and https cannot share a port)",
               fix="pick another port, or set httpRedirect: false")
    for port_key, port in (("httpsPort", https_port), ("httpPort", http_port if redirect else None)):
        if port == server.port:
            o.rule(port_key, port, f"must differ from server.port ({server.port}): devpi still binds that port "
                   "on the host (published on 127.0.0.1 only, behind the proxy)")
    image = o.text("proxyImage", DEFAULT_PROXY_IMAGE, required=True)
    allow_floating = o.flag("allowFloatingProxyTag", False)
    o.rule("proxyImage", image, rules.image_problem(image, allowed=allow_floating, example=DEFAULT_PROXY_IMAGE),
           opt_out="tls.allowFloatingProxyTag: true")
    container = o.text("proxyContainerName", DEFAULT_PROXY_CONTAINER_NAME, required=True)
    o.rule("proxyContainerName", container, rules.container_name_problem(container))
    if container == server.container_name:
        o.rule("proxyContainerName", container, "must differ from server.containerName (both run on the host)")
    proxy_dir = o.folder("proxyDir", DEFAULT_PROXY_DIR, rules.proxy_dir_problem)
    for other_key, other in (("server.dataDir", server.data_dir), ("server.secretDir", server.secret_dir)):
        if rules.folders_overlap(proxy_dir, other):
            o.rule("proxyDir", proxy_dir, f"must be a folder apart from {other_key} ({other}): each folder gets "
                   "its own SELinux label and owner, and one inside the other would relabel both")
    max_upload = o.number("maxUploadMb", DEFAULT_MAX_UPLOAD_MB, rules.max_upload_problem)
    return TlsConfig(certificate=certificate, names=names, ca_bundle=ca_bundle, https_port=https_port,
                     http_redirect=redirect, http_port=http_port, proxy_image=image,
                     allow_floating_proxy_tag=allow_floating, proxy_container_name=container,
                     proxy_dir=proxy_dir, max_upload_mb=max_upload, client_ca_path=client_ca_path)


def _check_certificate(tls: TlsConfig, private_key: Any) -> None:
    """What makes the proxy start and clients accept it: the key (never shown) fits the certificate,
    which covers every name, is valid now, and leads to ``caBundle`` when one is declared."""
    chain = tls.certificate
    if chain is None:
        return
    if private_key is not None:
        problem = certs.private_key_problem(private_key) or certs.key_match_problem(chain, private_key)
        _refuse(key("tlsPrivateKey"), private_key, problem, secret=True)
    _refuse(key("tls.names"), list(tls.names), certs.names_coverage_problem(chain, tls.names))
    if problem := certs.validity_problem(chain, dt.datetime.now(dt.UTC)):
        raise _pem_error(key("tls.certificate"), chain, problem)
    if tls.ca_bundle is not None and (problem := certs.chain_trust_problem(chain, tls.ca_bundle)):
        raise _pem_error(key("tls.certificate"), chain, problem)


# --------------------------------------------------------------------------------------- replicas
def _load_replicas(values: Mapping[str, Any], host: HostConfig | None, server: ServerConfig,
                   tls: TlsConfig | None, server_url: str, *, partial: bool) -> tuple[ReplicaConfig, ...]:
    """``replicas`` and the secret ``replicaSshPrivateKeys`` (replica name -> its own SSH key)."""
    raw = values.get("replicas")
    ssh_keys = _replica_keys(values.get("replicaSshPrivateKeys"), partial=partial)
    items = _load_list(raw, "replicas") if raw is not None else []
    if items and host is None:
        raise ConfigError(key("replicas"), f"{len(items)} replica(s)",
                          "need a managed `host`: a replica follows the primary this stack runs there")
    loaded: list[ReplicaConfig] = []
    occupied: list[tuple[str, str, int, str, str]] = []  # (who, address, port, container, dataDir)
    if host is not None:
        occupied.append(("the primary (host.address, server.port)", host.address.lower(), server.port,
                         server.container_name, server.data_dir))
    for i, item in enumerate(items):
        loaded.append(_load_replica(item, i, host, tls, server_url, occupied, loaded,
                                    own_key=ssh_keys is not None and _name_of(item) in ssh_keys))
    declared = {r.name for r in loaded}
    for name in ssh_keys or {}:
        if name not in declared:
            raise ConfigError(f"{key('replicaSshPrivateKeys')}.{name}", None,
                              f"names no replica (declared: {', '.join(sorted(declared)) or 'none'}): remove it "
                              "or declare the replica", secret=True)
    return tuple(loaded)


def _name_of(item: Any) -> Any:
    return item.get("name") if isinstance(item, Mapping) else None


def _replica_keys(raw: Any, *, partial: bool) -> Mapping[str, Any] | None:
    """The replica SSH keys by name; None when unknown (a stack file holding the object sealed)."""
    if raw is None:
        return {}
    if raw == SECRET_PLACEHOLDER:
        return None
    path = key("replicaSshPrivateKeys")
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "must be an object of replica name -> private key: "
                          "pulumi config set --secret --path 'replicaSshPrivateKeys.<name>' < KEYFILE", secret=True)
    for name, value in raw.items():
        if not partial and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{path}.{name}", value, "must be the replica's SSH private key (PEM text)",
                              secret=True)
    return raw


def _load_replica(item: Any, i: int, primary: HostConfig | None, tls: TlsConfig | None, server_url: str,
                  occupied: list[tuple[str, str, int, str, str]], earlier: Sequence[ReplicaConfig], *,
                  own_key: bool) -> ReplicaConfig:
    o = KeyReader(item, f"{key('replicas')}[{i}]")
    name = o.text("name", required=True)
    o.rule("name", name, rules.replica_name_problem(name))
    twin = next((j for j, r in enumerate(earlier) if r.name == name), None)
    if twin is not None:
        raise ConfigError(o.at("name"), name, f"is declared twice (also replicas[{twin}])")
    o.seen.add("host")
    host = _load_host(o.value.get("host"), o.at("host"))
    if host is None:
        raise ConfigError(o.at("host"), None, "is required: the replica's own host (address, hostKey to pin)")
    port = o.number("port", DEFAULT_PORT, rules.port_problem)
    data_dir = o.folder("dataDir", DEFAULT_DATA_DIR, rules.data_dir_problem)
    container = o.text("containerName", DEFAULT_REPLICA_CONTAINER_NAME, required=True)
    o.rule("containerName", container, rules.container_name_problem(container))
    secret_dir = _secret_dir(o, data_dir)
    max_lag = o.number("maxLag", DEFAULT_REPLICA_MAX_LAG, rules.replica_max_lag_problem)
    firewall = o.choice("firewallWhenInactive", "fail", rules.FIREWALL_CHOICES)
    _refuse_shared_host(o, (host.address.lower(), port, container, data_dir), occupied, tls, primary)
    url = _replica_url(o, host, port, tls, server_url, earlier)
    o.done()
    occupied.append((f"replicas[{i}]", host.address.lower(), port, container, data_dir))
    return ReplicaConfig(name=name, host=host, port=port, data_dir=data_dir, container_name=container, url=url,
                         primary_url=server_url, own_ssh_key=own_key, secret_dir=secret_dir, max_lag=max_lag,
                         firewall_when_inactive=firewall)


def _replica_url(o: KeyReader, host: HostConfig, port: int, tls: TlsConfig | None, server_url: str,
                 earlier: Sequence[ReplicaConfig]) -> str:
    """``url``: where clients reach the replica; with ``tls`` https on the replica's own proxy, for a
    name the certificate covers."""
    raw = o.text("url")
    if raw is None:
        url = _https_url(host.address, tls.https_port) if tls is not None else default_server_url(host.address, port)
        url_key = "host.address"
    else:
        o.rule("url", raw, rules.server_url_problem(raw))
        if tls is not None and not raw.startswith("https://"):
            o.rule("url", raw, "must be an https:// URL: a TLS stack is served over https")
        url, url_key = raw.rstrip("/"), "url"
    if url == server_url:
        o.rule(url_key, url, "makes the replica's URL the primary's serverUrl: give the replica its own address")
    twin = next((j for j, r in enumerate(earlier) if r.url == url), None)
    if twin is not None:
        o.rule(url_key, url, f"makes the replica's URL that of replicas[{twin}]")
    if tls is not None and tls.certificate is not None and certs.crypto_available():
        hostname = urlsplit(url).hostname or ""
        if not certs.covers_name(tls.certificate, hostname):
            o.rule(url_key, hostname if url_key == "host.address" else url,
                   f"is not covered by tls.certificate (it covers: "
                   f"{', '.join(certs.certificate_names(tls.certificate)) or 'no subjectAltName'}): the replica's "
                   "proxy serves the same certificate; add the name to it or set url to a covered name")
    if tls is not None and port in tls.proxy_ports:
        o.rule("port", port, f"must differ from the TLS ports ({', '.join(map(str, tls.proxy_ports))}): the "
               "replica's proxy takes them on its host")
    return url


def _refuse_shared_host(o: KeyReader, me: tuple[str, int, str, str],
                        occupied: Sequence[tuple[str, str, int, str, str]], tls: TlsConfig | None,
                        primary: HostConfig | None) -> None:
    """Two devpi servers on one host need their own port, container and data folder (and with TLS
    their own host: both proxies would need the https port)."""
    address, port, container, data_dir = me
    for who, other_address, other_port, other_container, other_data in occupied:
        if other_address != address:
            continue
        if tls is not None and primary is not None and other_address == primary.address.lower():
            o.rule("host", {"address": address}, "is the primary's host: with `tls` each replica needs a host of "
                   "its own (both proxies would need the https port there)")
        if other_port == port:
            o.rule("port", port, f"is taken on {address} by {who}: give the replica another host or port")
        if other_container == container:
            o.rule("containerName", container, f"is taken on {address} by {who}")
        if rules.folders_overlap(other_data, data_dir):
            o.rule("dataDir", data_dir, f"overlaps the data folder of {who} on {address} ({other_data})")
