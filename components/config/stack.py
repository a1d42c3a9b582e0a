"""The stack-config loader: raw ``devpi-registry:*`` values in, the validated model out.

``load_stack_config`` turns the raw keys (from the engine or from ``Pulumi.<stack>.yaml``, see
:mod:`components.config.sources`) into the frozen objects of :mod:`components.config.model`. The
value rules themselves live in :mod:`components.config.rules`; this module and the section loaders
it calls (``load_host``, ``load_tls``, ``load_replicas``, all reading through
:class:`~components.config.reader.KeyReader`) are the only places that speak in key paths: every
problem raises ``ConfigError`` naming the key path
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

import json
from collections.abc import Mapping, Sequence
from typing import Any

from components.config import rules
from components.config.defaults import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_BACKUP_KEEP,
    DEFAULT_BACKUP_SCHEDULE,
    DEFAULT_DATA_DIR,
    DEFAULT_IMAGE,
    PYPI_MIRROR,
)
from components.config.errors import ConfigError
from components.config.load_host import load_host, load_server, load_server_url
from components.config.load_replicas import load_replicas
from components.config.load_tls import load_tls
from components.config.model import (
    BackupConfig,
    HostConfig,
    IndexConfig,
    ReplicaConfig,
    ServerConfig,
    StackConfig,
    TlsConfig,
    UserConfig,
)
from components.config.reader import SECRET_PLACEHOLDER, KeyReader, hidden, key, load_list, refuse
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
    host = load_host(values.get("host"))
    server = load_server(values.get("server", {}))
    if not partial and host is not None and not values.get("sshPrivateKey"):
        raise ConfigError(key("sshPrivateKey"), None,
                          "is required when `host` is set: pulumi config set --secret sshPrivateKey < KEYFILE")
    tls = load_tls(values, host, server, partial=partial)
    server_url = load_server_url(values.get("serverUrl"), host, server, tls, required=not partial)
    replicas = load_replicas(values, host, server, tls, server_url, partial=partial)
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
    host = load_host(values.get("host"))
    server = load_server(values.get("server", {}))
    tls = load_tls(values, host, server, partial=False)
    url = load_server_url(values.get("serverUrl"), host, server, tls, required=True)
    return url, password, tls.ca_bundle if tls is not None else None


def _refuse_unknown_keys(values: Mapping[str, Any]) -> None:
    for name in values:
        if name not in TOP_LEVEL_KEYS:
            raise ConfigError(key(name), values[name], f"is not a known key (known: {', '.join(TOP_LEVEL_KEYS)})",
                              secret=hidden(name, values[name]))


def _root_password(values: Mapping[str, Any]) -> str:
    """root's password: present, and acceptable to the image (checked here, where the raw secret is
    at hand, so no error is ever raised inside an Output; the message masks the value)."""
    password = values.get("rootPassword")
    if not password:
        raise ConfigError(key("rootPassword"), None,
                          "is required: pulumi config set --secret rootPassword (it stays encrypted)")
    refuse(key("rootPassword"), password, rules.root_password_problem(password), secret=True)
    return str(password)


def _refuse_clear_secrets(values: Mapping[str, Any], secret_keys: set[str] | None) -> None:
    if secret_keys is None:
        return
    for name in SECRET_KEYS:
        if name in values and name not in secret_keys:
            raise ConfigError(key(name), values[name],
                              f"must be set as a secret: pulumi config set --secret {name} ...", secret=True)


# ------------------------------------------------------------------------------------------ users
def _load_users(raw: Any) -> tuple[UserConfig, ...]:
    users: list[UserConfig] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(load_list(raw, "users")):
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
    for i, item in enumerate(load_list(raw, "indexes")):
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
        refuse(f"{o.at('bases')}[{j}]", base, rules.base_problem(full, base))
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
