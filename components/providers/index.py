"""devpi indexes as Pulumi resources (``pulumi-python:dynamic/devpi:Index``).

id = ``"owner/name"``. ``owner``, ``name`` and ``type`` can only change by replacement (devpi refuses
to change an index type; names are the URL). Everything else is updated in place with a PATCH of only
the keys that changed.

devpi quirks this module handles (docs/devpi-api.md §4):

- A mirror without ``mirror_url`` is accepted by devpi, then every access fails with 500 and the next
  server start crashes: ``check`` refuses it, so it never reaches the server.
- devpi silently drops ``bases``, ``acl_upload`` and ``mirror_whitelist`` on a mirror and refuses
  ``mirror_*`` keys on a stage: ``check`` refuses both (the first would be drift forever).
- devpi rewrites ``:anonymous:`` to ``:ANONYMOUS:`` and normalizes whitelist names (``Foo_Bar`` ->
  ``foo-bar``): ``check`` does the same, so the stored inputs equal what ``read`` reports.
- ``title``/``description`` (and the optional mirror keys) can only be removed with the ``key-=``
  operation form; ``{"title": null}`` is a 500.
- PATCH and DELETE of a missing index answer 403, not 404: ``delete`` GETs first.
- A non-volatile index cannot be deleted (403) until PATCHed ``volatile: true``.
- devpi deletes an index that others inherit from and leaves them a dangling base, after which it
  refuses every change of their bases: ``delete`` refuses while other indexes still list it.

Reads (``read``, the existence checks of ``delete``) are anonymous, as devpi allows; writes log in as
root through ``root_client``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckFailure,
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    UpdateResult,
)

from components.devpi.client import DevpiClient, normalize
from components.devpi.errors import ConflictError, NotFoundError, PermissionDeniedError
from components.devpi.names import INDEX_TYPES, index_name_problem, index_spec_problem, user_name_problem
from components.providers.base import DevpiProviderBase
from components.providers.schema import Field, check_fields, diff_fields, is_unknown, plain, shown, with_defaults

__all__ = ["INDEX_FIELDS", "DevpiIndex", "DevpiIndexProvider", "dependants_of", "index_outputs"]


def _default_acl_upload(props: Mapping[str, Any]) -> Any:
    """devpi's default ``acl_upload`` is ``[owner]`` (not root, even when root creates the index)."""
    owner = plain(props.get("owner"))
    if is_unknown(owner):
        return owner
    if plain(props.get("type")) == "mirror":
        return None  # devpi keeps no acl_upload on a mirror
    return [owner] if isinstance(owner, str) else None


def _stage_default(value: Any) -> Any:
    """A default that applies to stages only (devpi stores none of these keys on a mirror)."""

    def factory(props: Mapping[str, Any]) -> Any:
        return None if plain(props.get("type")) == "mirror" else (list(value) if isinstance(value, list) else value)

    return factory


INDEX_FIELDS: dict[str, Field] = {
    "owner": Field((str,), replace=True, nullable=False),
    "name": Field((str,), replace=True, nullable=False),
    "type": Field((str,), default="stage", replace=True, choices=INDEX_TYPES),
    "bases": Field((list,), list_of_str=True, default_factory=_stage_default([])),
    "volatile": Field((bool,), default=True),
    "acl_upload": Field((list,), list_of_str=True, default_factory=_default_acl_upload),
    "acl_toxresult_upload": Field((list,), list_of_str=True, default_factory=_stage_default([":ANONYMOUS:"])),
    "mirror_whitelist": Field((list,), list_of_str=True, default_factory=_stage_default([])),
    "mirror_whitelist_inheritance": Field(
        (str,), choices=("intersection", "union"), default_factory=_stage_default("intersection")),
    "title": Field((str,)),
    "description": Field((str,)),
    "mirror_url": Field((str,)),
    "mirror_web_url_fmt": Field((str,)),
    "mirror_cache_expiry": Field((int,)),
    "mirror_no_project_list": Field((bool,)),
    "mirror_use_external_urls": Field((bool,)),
    "mirror_ignore_serial_header": Field((bool,)),
    "force_destroy": Field((bool,), default=False, server=False),
    "adopt": Field((bool,), default=False, server=False),
    "allow_mirror_whitelist_star": Field((bool,), default=False, server=False),
    "allow_anonymous_upload": Field((bool,), default=False, server=False),
}
_STAGE_ONLY = ("bases", "acl_upload", "acl_toxresult_upload", "mirror_whitelist", "mirror_whitelist_inheritance")
_MIRROR_ONLY = ("mirror_url", "mirror_web_url_fmt", "mirror_cache_expiry", "mirror_no_project_list",
                "mirror_use_external_urls", "mirror_ignore_serial_header")
# Keys devpi only stores once set; removing them needs the ``key-=`` operation form.
_REMOVABLE = ("title", "description", *_MIRROR_ONLY[1:])
_SERVER_KEYS = tuple(k for k, f in INDEX_FIELDS.items() if f.server and k not in ("owner", "name"))
_SPECIAL_ACL = (":anonymous:", ":authenticated:")


def _normalize_acl(values: list[Any]) -> list[Any]:
    return [v.upper() if isinstance(v, str) and v.lower() in _SPECIAL_ACL else v for v in values]


def _normalize_whitelist(values: list[Any]) -> list[Any]:
    return [v if not isinstance(v, str) or v == "*" else normalize(v) for v in values]


def normalized_inputs(props: Mapping[str, Any]) -> dict[str, Any]:
    """Declared fields with defaults and devpi's own normalizations applied (pure)."""
    p = with_defaults(INDEX_FIELDS, props)
    for key in ("acl_upload", "acl_toxresult_upload"):
        if isinstance(p[key], list):
            p[key] = _normalize_acl(p[key])
    if isinstance(p["mirror_whitelist"], list):
        p["mirror_whitelist"] = _normalize_whitelist(p["mirror_whitelist"])
    if p["type"] == "mirror":
        # An empty list of a stage-only key on a mirror means "none", which is what devpi stores.
        for key in _STAGE_ONLY:
            if p[key] == []:
                p[key] = None
    return p


def _server_config(p: Mapping[str, Any]) -> dict[str, Any]:
    """The body devpi gets for a PUT: server keys that are set (None = leave devpi's default)."""
    return {k: p[k] for k in _SERVER_KEYS if p[k] is not None}


def index_outputs(p: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
    """State from devpi's indexconfig plus the provider-side flags from the declared inputs."""
    outs = {k: v for k, v in p.items() if not INDEX_FIELDS[k].server}
    outs["owner"], outs["name"] = p["owner"], p["name"]
    for key in _SERVER_KEYS:
        value = cfg.get(key)
        outs[key] = list(value) if isinstance(value, list) else value
    return outs


def _check_semantics(news: Mapping[str, Any], p: Mapping[str, Any]) -> list[CheckFailure]:
    failures: list[CheckFailure] = []

    def known(key: str) -> bool:
        return p.get(key) is not None and not is_unknown(p.get(key))

    if known("owner") and isinstance(p["owner"], str) and (problem := user_name_problem(p["owner"])):
        failures.append(CheckFailure("owner", f"owner {p['owner']!r}: {problem}"))
    if known("name") and isinstance(p["name"], str) and (problem := index_name_problem(p["name"])):
        failures.append(CheckFailure("name", f"name {p['name']!r}: {problem}"))
    typ = p.get("type")
    if typ == "mirror":
        if news.get("mirror_url") is None:
            failures.append(CheckFailure(
                "mirror_url", "a mirror index needs mirror_url (devpi accepts a mirror without it, then fails "
                              "every request and crashes on its next start)"))
        for key in _STAGE_ONLY:
            if plain(news.get(key)) not in (None, []):
                failures.append(CheckFailure(
                    key, f"{key} does not apply to a mirror index (devpi silently drops it), got {shown(news[key])}"))
    elif typ == "stage":
        for key in _MIRROR_ONLY:
            if news.get(key) is not None:
                failures.append(CheckFailure(
                    key, f"{key} applies only to mirror indexes (type='mirror'), got {shown(news[key])}"))
    url = p.get("mirror_url")
    if isinstance(url, str) and not is_unknown(url) and not url.startswith(("http://", "https://")):
        failures.append(CheckFailure("mirror_url", f"mirror_url must be an http(s) URL, got {shown(url)}"))
    expiry = p.get("mirror_cache_expiry")
    if isinstance(expiry, int) and not isinstance(expiry, bool) and expiry < 0:
        failures.append(CheckFailure("mirror_cache_expiry", f"mirror_cache_expiry must be >= 0, got {shown(expiry)}"))
    bases = p.get("bases")
    if isinstance(bases, list):
        for base in bases:
            if isinstance(base, str) and not is_unknown(base) and (problem := index_spec_problem(base)):
                failures.append(CheckFailure("bases", f"base {base!r} {problem}"))
        if known("owner") and known("name") and f"{p['owner']}/{p['name']}" in bases:
            failures.append(CheckFailure("bases", f"an index cannot be its own base ({p['owner']}/{p['name']})"))
        names = [b for b in bases if isinstance(b, str) and not is_unknown(b)]
        if len(set(names)) != len(names):
            failures.append(CheckFailure("bases", f"bases lists an index twice: {shown(bases)}"))
    whitelist = p.get("mirror_whitelist")
    star_ok = p.get("allow_mirror_whitelist_star") is True or is_unknown(p.get("allow_mirror_whitelist_star"))
    if isinstance(whitelist, list) and "*" in whitelist and not star_ok and (is_unknown(bases) or bases):
        failures.append(CheckFailure(
            "mirror_whitelist",
            "mirror_whitelist contains '*' on an index with bases: every project name, including names "
            "you publish privately, is then also served from the mirrors (dependency confusion). "
            "List the names, or set allow_mirror_whitelist_star=True if this is intended"))
    anon_ok = p.get("allow_anonymous_upload") is True or is_unknown(p.get("allow_anonymous_upload"))
    acl = p.get("acl_upload")
    if isinstance(acl, list) and not anon_ok and any(isinstance(a, str) and a.upper() == ":ANONYMOUS:"
                                                     for a in acl):
        failures.append(CheckFailure(
            "acl_upload",
            f"acl_upload {shown(news.get('acl_upload'))} lets anyone upload without logging in; "
            "set allow_anonymous_upload=True if this is intended"))
    return failures


class DevpiIndexProvider(DevpiProviderBase):
    """CRUD of one devpi index: writes as root, reads anonymously (as devpi allows)."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_fields(INDEX_FIELDS, news)
        bad = {f.property for f in failures}
        p = normalized_inputs({k: v for k, v in news.items() if k not in bad})
        failures += [f for f in _check_semantics(news, p) if f.property not in bad]
        return CheckResult(normalized_inputs(news) if not failures else dict(news), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_fields(INDEX_FIELDS, normalized_inputs(olds), normalized_inputs(news))

    def create(self, props: dict[str, Any]) -> CreateResult:
        p = normalized_inputs(props)
        index = f"{p['owner']}/{p['name']}"
        with self.root_client() as c:
            try:
                # PUT answers with the full stored config: no GET needed afterwards.
                cfg = c.create_index(index, _server_config(p))
            except ConflictError as exc:
                if not p["adopt"]:
                    raise ConflictError(
                        f"devpi index {index!r} already exists on {c.url}; set adopt=True to manage it "
                        "(its configuration is then changed to the declared one; packages are kept) "
                        "or choose another name",
                        method=exc.method, url=exc.url, status=exc.status,
                    ) from exc
                current = c.get_index(index)
                if current.get("type") != p["type"]:
                    raise ConflictError(
                        f"cannot adopt devpi index {index!r}: it is a {current.get('type')} index, declared "
                        f"{p['type']} (devpi cannot change an index type)"
                    ) from exc
                cfg = self._patch(c, index, index_outputs(p, current), p) or current
        return CreateResult(index, index_outputs(p, cfg))

    @staticmethod
    def _patch(c: DevpiClient, index: str, old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any] | None:
        """PATCH only the server keys that differ; remove optional keys set to None. Returns the new
        config, or None when nothing had to change."""
        changes = {k: new[k] for k in _SERVER_KEYS
                   if k != "type" and new[k] is not None and old.get(k) != new[k]}
        removals = [k for k in _REMOVABLE if new[k] is None and old.get(k) is not None]
        cfg: dict[str, Any] | None = None
        if changes:
            cfg = c.modify_index(index, changes)
        if removals:
            cfg = c.remove_index_keys(index, removals)
        return cfg

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        owner, _, name = id_.partition("/")
        with self.anonymous_client() as c:
            try:
                cfg = c.get_index(id_)
            except NotFoundError:  # devpi itself said so (the client proved its URL is devpi's root)
                return ReadResult(id_=None, outs={})  # gone (or its owner was deleted): drop from state
        p = normalized_inputs({**props, "owner": owner, "name": name, "type": cfg.get("type", "stage")})
        outs = index_outputs(p, cfg)
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old = normalized_inputs(olds)
        new = normalized_inputs(news)
        with self.root_client() as c:
            cfg = self._patch(c, id_, old, new)
        if cfg is None:  # only provider-side flags changed
            cfg = {k: old[k] for k in _SERVER_KEYS}
        return UpdateResult(index_outputs(new, cfg))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        force = bool(plain(props.get("force_destroy")))
        with self.anonymous_client() as anon:
            try:
                cfg = anon.get_index(id_, projects=True)
            except NotFoundError:
                return  # devpi itself says it is gone; DELETE would answer 403 for a missing index
            _refuse_unsafe_delete(id_, cfg, dependants_of(id_, anon.list_users()), force)
            with self.root_client() as c:
                # devpi refuses to delete a non-volatile index (403). Packages were checked above (or
                # force_destroy was given), so flipping it to volatile loses nothing undeclared.
                if cfg.get("volatile") is False:
                    c.modify_index(id_, {"volatile": True})
                try:
                    c.delete_index(id_)
                except PermissionDeniedError:
                    if not anon.index_exists(id_):
                        return  # deleted concurrently
                    raise


def _refuse_unsafe_delete(index: str, cfg: Mapping[str, Any], dependants: list[str], force: bool) -> None:
    """Raise unless deleting ``index`` (config ``cfg``, with projects) loses only what was asked for."""
    if dependants:
        # Pulumi deletes dependants before their bases, so an index that still lists this one on
        # the server now is one this run does not delete (undeclared, or declared with new bases
        # not applied yet). force_destroy is about packages, not about breaking other indexes.
        raise RuntimeError(
            f"refusing to delete devpi index {index!r}: {', '.join(dependants)} still inherit(s) from it "
            "(their bases list it). devpi would delete it anyway and leave them a dangling base, and then "
            "refuse every later change of their bases. Remove it from their bases (or delete them) first, "
            "then delete this index; force_destroy does not override this."
        )
    projects = list(cfg.get("projects") or [])
    if projects and not force:
        listed = ", ".join(projects[:10]) + (f" and {len(projects) - 10} more" if len(projects) > 10 else "")
        raise RuntimeError(
            f"refusing to delete devpi index {index!r}: it still holds {len(projects)} project(s) "
            f"({listed}); deleting the index deletes their packages. Move or delete the packages "
            "first, or set force_destroy=True on this index."
        )


def dependants_of(index: str, users: Mapping[str, Any]) -> list[str]:
    """Pure: the indexes (``user/name``, sorted) whose ``bases`` list ``index``, from devpi's ``GET /``.

    ``GET /`` returns every user with the config of each of their indexes, so one request finds
    them all. An index listing itself (devpi accepts that) is not a dependant.
    """
    found = []
    for user, ucfg in users.items():
        for name, icfg in ((ucfg or {}).get("indexes") or {}).items():
            full = f"{user}/{name}"
            if full != index and index in ((icfg or {}).get("bases") or []):
                found.append(full)
    return sorted(found)


class DevpiIndex(Resource, module="devpi", name="Index"):
    """A devpi index (stage or mirror). ``id`` is ``owner/name``.

    ``bases`` is an ordered list of ``user/index``; empty means a private index that never serves
    packages from PyPI. ``force_destroy=True`` allows deleting an index that still holds packages;
    ``adopt=True`` takes over an existing index of that name. ``allow_mirror_whitelist_star`` and
    ``allow_anonymous_upload`` acknowledge the two risky settings ``check`` otherwise refuses.
    """

    owner: pulumi.Output[str]
    name: pulumi.Output[str]
    type: pulumi.Output[str]
    bases: pulumi.Output[list[str]]
    volatile: pulumi.Output[bool]
    acl_upload: pulumi.Output[list[str]]
    acl_toxresult_upload: pulumi.Output[list[str]]
    mirror_whitelist: pulumi.Output[list[str]]
    mirror_whitelist_inheritance: pulumi.Output[str]
    title: pulumi.Output[str | None]
    description: pulumi.Output[str | None]
    mirror_url: pulumi.Output[str | None]

    def __init__(
        self,
        resource_name: str,
        *,
        owner: pulumi.Input[str],
        name: pulumi.Input[str],
        type: str = "stage",  # devpi's own key name
        bases: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        volatile: pulumi.Input[bool] = True,
        acl_upload: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        acl_toxresult_upload: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        mirror_whitelist: pulumi.Input[list[pulumi.Input[str]]] | None = None,
        mirror_whitelist_inheritance: pulumi.Input[str] | None = None,
        title: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] | None = None,
        mirror_url: pulumi.Input[str] | None = None,
        mirror_web_url_fmt: pulumi.Input[str] | None = None,
        mirror_cache_expiry: pulumi.Input[int] | None = None,
        mirror_no_project_list: pulumi.Input[bool] | None = None,
        mirror_use_external_urls: pulumi.Input[bool] | None = None,
        mirror_ignore_serial_header: pulumi.Input[bool] | None = None,
        force_destroy: bool = False,
        adopt: bool = False,
        allow_mirror_whitelist_star: bool = False,
        allow_anonymous_upload: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "owner": owner,
            "name": name,
            "type": type,
            "bases": bases,
            "volatile": volatile,
            "acl_upload": acl_upload,
            "acl_toxresult_upload": acl_toxresult_upload,
            "mirror_whitelist": mirror_whitelist,
            "mirror_whitelist_inheritance": mirror_whitelist_inheritance,
            "title": title,
            "description": description,
            "mirror_url": mirror_url,
            "mirror_web_url_fmt": mirror_web_url_fmt,
            "mirror_cache_expiry": mirror_cache_expiry,
            "mirror_no_project_list": mirror_no_project_list,
            "mirror_use_external_urls": mirror_use_external_urls,
            "mirror_ignore_serial_header": mirror_ignore_serial_header,
            "force_destroy": force_destroy,
            "adopt": adopt,
            "allow_mirror_whitelist_star": allow_mirror_whitelist_star,
            "allow_anonymous_upload": allow_anonymous_upload,
        }
        super().__init__(DevpiIndexProvider(), resource_name, props, opts)
