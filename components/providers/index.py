"""devpi indexes as Pulumi resources (``pulumi-python:dynamic/devpi:Index``).

id = ``"owner/name"``. ``owner``, ``name`` and ``type`` can only change by replacement (devpi refuses
to change an index type; names are the URL). Everything else is updated in place with a PATCH of only
the keys that changed.

devpi quirks this module handles (docs/devpi-api.md, "Indexes"):

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

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

from components.config import rules
from components.devpi.client import DevpiClient, normalize
from components.devpi.errors import ConflictError, NotFoundError, PermissionDeniedError
from components.devpi.names import INDEX_TYPES
from components.providers.base import DevpiProviderBase
from components.providers.schema import (
    ResourceInputs,
    check_fields,
    diff_fields,
    input_names,
    input_specs,
    is_unknown,
    plain,
    prop,
    shown,
    with_defaults,
)

__all__ = ["INDEX_FIELDS", "DevpiIndex", "DevpiIndexProvider", "IndexInputs", "dependants_of", "index_outputs",
           "normalized_inputs"]


def _default_acl_upload(props: Mapping[str, Any]) -> Any:
    """devpi's default ``acl_upload`` is ``[owner]`` (not root, even when root creates the index)."""
    owner = plain(props.get("owner"))
    if is_unknown(owner):
        return owner
    if plain(props.get("type")) == "mirror":
        return None  # devpi keeps no acl_upload on a mirror
    return [owner] if isinstance(owner, str) else None


def _stage_default(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    """A default that applies to stages only (devpi stores none of these keys on a mirror)."""

    def factory(props: Mapping[str, Any]) -> Any:
        return None if plain(props.get("type")) == "mirror" else (list(value) if isinstance(value, list) else value)

    return factory


_SPECIAL_ACL = (":anonymous:", ":authenticated:")


def _normalize_acl(values: list[Any]) -> list[Any]:
    """devpi upper-cases its special principals (``:anonymous:`` -> ``:ANONYMOUS:``)."""
    return [v.upper() if isinstance(v, str) and v.lower() in _SPECIAL_ACL else v for v in values]


def _normalize_whitelist(values: list[Any]) -> list[Any]:
    """devpi stores whitelisted project names normalized (``Foo_Bar`` -> ``foo-bar``)."""
    return [v if not isinstance(v, str) or v == "*" else normalize(v) for v in values]


Names: TypeAlias = pulumi.Input[Sequence[pulumi.Input[str]]] | None
_MIRROR_OPTION = prop(applies_to="mirror", removable=True)  # an optional key of mirror indexes only
_PROVIDER_FLAG = prop(server=False)


@dataclass(frozen=True, kw_only=True)
class IndexInputs(ResourceInputs):
    """What one devpi index is declared as: every property the provider knows, declared once.

    The wire names are devpi's own keys (they are also the state's property names: never rename
    one). ``None`` means "not set": devpi's default applies (``default_from`` spells it out, so the
    stored inputs equal what ``read`` reports). Adding a devpi option is one field here.
    """

    owner: pulumi.Input[str] = field(metadata=prop(replace=True))
    name: pulumi.Input[str] = field(metadata=prop(replace=True))
    type: str = field(default="stage", metadata=prop(replace=True, choices=INDEX_TYPES))  # devpi cannot change it
    bases: Names = field(default=None, metadata=prop(applies_to="stage", default_from=_stage_default([])))
    volatile: pulumi.Input[bool] = True
    acl_upload: Names = field(default=None, metadata=prop(
        applies_to="stage", default_from=_default_acl_upload, normalize=_normalize_acl))
    acl_toxresult_upload: Names = field(default=None, metadata=prop(
        applies_to="stage", default_from=_stage_default([":ANONYMOUS:"]), normalize=_normalize_acl))
    mirror_whitelist: Names = field(default=None, metadata=prop(
        applies_to="stage", default_from=_stage_default([]), normalize=_normalize_whitelist))
    mirror_whitelist_inheritance: pulumi.Input[str] | None = field(default=None, metadata=prop(
        applies_to="stage", choices=("intersection", "union"), default_from=_stage_default("intersection")))
    title: pulumi.Input[str] | None = field(default=None, metadata=prop(removable=True))
    description: pulumi.Input[str] | None = field(default=None, metadata=prop(removable=True))
    mirror_url: pulumi.Input[str] | None = field(default=None, metadata=prop(applies_to="mirror"))  # required there
    mirror_web_url_fmt: pulumi.Input[str] | None = field(default=None, metadata=_MIRROR_OPTION)
    mirror_cache_expiry: pulumi.Input[int] | None = field(default=None, metadata=_MIRROR_OPTION)
    mirror_no_project_list: pulumi.Input[bool] | None = field(default=None, metadata=_MIRROR_OPTION)
    mirror_use_external_urls: pulumi.Input[bool] | None = field(default=None, metadata=_MIRROR_OPTION)
    mirror_ignore_serial_header: pulumi.Input[bool] | None = field(default=None, metadata=_MIRROR_OPTION)
    # provider-side flags: never sent to devpi
    force_destroy: bool = field(default=False, metadata=_PROVIDER_FLAG)
    adopt: bool = field(default=False, metadata=_PROVIDER_FLAG)
    allow_mirror_whitelist_star: bool = field(default=False, metadata=_PROVIDER_FLAG)
    allow_anonymous_upload: bool = field(default=False, metadata=_PROVIDER_FLAG)


#: the provider's field list (the wire property names), derived from :class:`IndexInputs`
INDEX_FIELDS: tuple[str, ...] = input_names(IndexInputs)
_ID_KEYS = ("owner", "name")  # the index's URL, not part of its config body
_KEYS: dict[type, _Keys] = {}  # per inputs class, see _Keys.of


@dataclass(frozen=True)
class _Keys:
    """The key groups the provider's devpi calls need, derived from an inputs class's metadata."""

    server: tuple[str, ...]  # sent to devpi in the config body
    stage_only: tuple[str, ...]
    mirror_only: tuple[str, ...]
    removable: tuple[str, ...]  # removed with the ``key-=`` operation form, never set to null
    normalized: tuple[tuple[str, Callable[[list[Any]], list[Any]]], ...]

    @staticmethod
    def of(cls: type) -> _Keys:
        """The key groups of inputs class ``cls`` (derived once per class)."""
        keys = _KEYS.get(cls)
        if keys is None:
            keys = _KEYS[cls] = _Keys._derive(cls)
        return keys

    @staticmethod
    def _derive(cls: type) -> _Keys:
        specs = input_specs(cls)
        return _Keys(
            server=tuple(k for k, s in specs.items() if s.prop.server and k not in _ID_KEYS),
            stage_only=tuple(k for k, s in specs.items() if s.prop.applies_to == "stage"),
            mirror_only=tuple(k for k, s in specs.items() if s.prop.applies_to == "mirror"),
            removable=tuple(k for k, s in specs.items() if s.prop.removable),
            normalized=tuple((k, s.prop.normalize) for k, s in specs.items() if s.prop.normalize is not None),
        )


def normalized_inputs(props: Mapping[str, Any], cls: type[IndexInputs] = IndexInputs) -> dict[str, Any]:
    """Declared fields with defaults and devpi's own normalizations applied (pure)."""
    keys = _Keys.of(cls)
    p = with_defaults(cls, props)
    for key, normalize_value in keys.normalized:
        if isinstance(p[key], list):
            p[key] = normalize_value(p[key])
    if p["type"] == "mirror":
        # An empty list of a stage-only key on a mirror means "none", which is what devpi stores.
        for key in keys.stage_only:
            if p[key] == []:
                p[key] = None
    return p


def _server_config(p: Mapping[str, Any], keys: _Keys) -> dict[str, Any]:
    """The body devpi gets for a PUT: server keys that are set (None = leave devpi's default)."""
    return {k: p[k] for k in keys.server if p[k] is not None}


def index_outputs(p: Mapping[str, Any], cfg: Mapping[str, Any], cls: type[IndexInputs] = IndexInputs
                  ) -> dict[str, Any]:
    """State from devpi's indexconfig plus the provider-side flags from the declared inputs."""
    specs = input_specs(cls)
    outs = {k: v for k, v in p.items() if not specs[k].prop.server}
    outs["owner"], outs["name"] = p["owner"], p["name"]
    for key in _Keys.of(cls).server:
        value = cfg.get(key)
        outs[key] = list(value) if isinstance(value, list) else value
    return outs


# ---------------------------------------------------------------------------------- check semantics
# The value rules are the stack config's own (components.config.rules): this module only names the
# property, shows the value and appends the opt-out in a resource's vocabulary.
def _known(value: Any) -> bool:
    return value is not None and not is_unknown(value)


def _identity_failures(p: Mapping[str, Any]) -> list[CheckFailure]:
    failures = []
    owner, name = p.get("owner"), p.get("name")
    if _known(owner) and isinstance(owner, str) and (problem := rules.user_name_problem(owner)):
        failures.append(CheckFailure("owner", f"owner {owner!r}: {problem}"))
    if _known(name) and isinstance(name, str) and (problem := rules.index_name_problem(name)):
        failures.append(CheckFailure("name", f"name {name!r}: {problem}"))
    return failures


def _type_failures(news: Mapping[str, Any], p: Mapping[str, Any], keys: _Keys) -> list[CheckFailure]:
    """Keys that do not exist for the index's type: devpi silently drops stage keys on a mirror and
    refuses mirror keys on a stage (``mirror_url`` has its own rule, see :func:`_mirror_failures`)."""
    if p.get("type") == "mirror":
        return [CheckFailure(key, f"{key} does not apply to a mirror index (devpi silently drops it), "
                                  f"got {shown(news[key])}")
                for key in keys.stage_only if plain(news.get(key)) not in (None, [])]
    if p.get("type") == "stage":
        return [CheckFailure(key, f"{key} applies only to mirror indexes (type='mirror'), got {shown(news[key])}")
                for key in keys.mirror_only if key != "mirror_url" and news.get(key) is not None]
    return []


def _mirror_failures(p: Mapping[str, Any]) -> list[CheckFailure]:
    failures = []
    url, typ = p.get("mirror_url"), p.get("type")
    # An unknown URL (preview) may turn out to be any http(s) URL: only its presence is judged.
    judged = "https://unknown.invalid/" if is_unknown(url) else url
    if problem := rules.mirror_url_problem(judged, index_type=typ if isinstance(typ, str) else ""):
        failures.append(CheckFailure("mirror_url", f"mirror_url {problem}"
                                                   + (f", got {shown(url)}" if isinstance(url, str) else "")))
    expiry = p.get("mirror_cache_expiry")
    if isinstance(expiry, int) and (problem := rules.cache_expiry_problem(expiry)):
        failures.append(CheckFailure("mirror_cache_expiry", f"mirror_cache_expiry {problem}, got {shown(expiry)}"))
    return failures


def _bases_failures(p: Mapping[str, Any]) -> list[CheckFailure]:
    bases = p.get("bases")
    if not isinstance(bases, list):
        return []
    owner, name = p.get("owner"), p.get("name")
    spec = f"{owner}/{name}" if _known(owner) and _known(name) else None
    known = [b for b in bases if not is_unknown(b)]
    failures = [CheckFailure("bases", f"base {base!r}: {problem}")
                for base in known if isinstance(base, str) and (problem := rules.base_problem(spec, base))]
    if problem := rules.bases_problem(known):
        failures.append(CheckFailure("bases", f"bases {problem}: {shown(bases)}"))
    return failures


def _acknowledged(p: Mapping[str, Any], flag: str) -> bool:
    """The risky setting ``flag`` acknowledges is allowed (or may be, once the flag is known)."""
    return p.get(flag) is True or is_unknown(p.get(flag))


def _risk_failures(news: Mapping[str, Any], p: Mapping[str, Any]) -> list[CheckFailure]:
    """The two risky settings, each refused unless its ``allow_*`` flag acknowledges it."""
    failures = []
    whitelist = p.get("mirror_whitelist")
    if isinstance(whitelist, list) and (problem := rules.mirror_whitelist_problem(
            whitelist, allowed=_acknowledged(p, "allow_mirror_whitelist_star"))):
        failures.append(CheckFailure(
            "mirror_whitelist", f"mirror_whitelist {problem}; or set allow_mirror_whitelist_star=True if this "
                                "is intended"))
    acl = p.get("acl_upload")
    if isinstance(acl, list) and (problem := rules.anonymous_upload_problem(
            acl, allowed=_acknowledged(p, "allow_anonymous_upload"))):
        failures.append(CheckFailure(
            "acl_upload", f"acl_upload {shown(news.get('acl_upload'))} {problem}; set allow_anonymous_upload=True "
                          "if this is intended"))
    return failures


def _check_semantics(news: Mapping[str, Any], p: Mapping[str, Any], keys: _Keys) -> list[CheckFailure]:
    """The rules beyond types: devpi's names, what a mirror or a stage accepts, bases, risky settings."""
    return [*_identity_failures(p), *_type_failures(news, p, keys), *_mirror_failures(p),
            *_bases_failures(p), *_risk_failures(news, p)]


class DevpiIndexProvider(DevpiProviderBase):
    """CRUD of one devpi index: writes as root, reads anonymously (as devpi allows).

    Its inputs are those of :attr:`inputs_class`; every key list below derives from it.
    """

    #: the declared inputs (a class attribute: not part of the pickled provider)
    inputs_class: ClassVar[type[IndexInputs]] = IndexInputs

    @property
    def _keys(self) -> _Keys:
        return _Keys.of(self.inputs_class)

    def _normalized(self, props: Mapping[str, Any]) -> dict[str, Any]:
        return normalized_inputs(props, self.inputs_class)

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_fields(self.inputs_class, news)
        bad = {f.property for f in failures}
        p = self._normalized({k: v for k, v in news.items() if k not in bad})
        failures += [f for f in _check_semantics(news, p, self._keys) if f.property not in bad]
        return CheckResult(self._normalized(news) if not failures else dict(news), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_fields(self.inputs_class, self._normalized(olds), self._normalized(news))

    def create(self, props: dict[str, Any]) -> CreateResult:
        p = self._normalized(props)
        index = f"{p['owner']}/{p['name']}"
        with self.root_client() as c:
            try:
                # PUT answers with the full stored config: no GET needed afterwards.
                cfg = c.create_index(index, _server_config(p, self._keys))
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
                cfg = self._patch(c, index, self._outputs(p, current), p) or current
        return CreateResult(index, self._outputs(p, cfg))

    def _outputs(self, p: Mapping[str, Any], cfg: Mapping[str, Any]) -> dict[str, Any]:
        return index_outputs(p, cfg, self.inputs_class)

    def _patch(self, c: DevpiClient, index: str, old: Mapping[str, Any], new: Mapping[str, Any]
               ) -> dict[str, Any] | None:
        """PATCH only the server keys that differ; remove optional keys set to None. Returns the new
        config, or None when nothing had to change."""
        keys = self._keys
        changes = {k: new[k] for k in keys.server
                   if k != "type" and new[k] is not None and old.get(k) != new[k]}
        removals = [k for k in keys.removable if new[k] is None and old.get(k) is not None]
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
        p = self._normalized({**props, "owner": owner, "name": name, "type": cfg.get("type", "stage")})
        outs = self._outputs(p, cfg)
        return ReadResult(id_=id_, outs=outs, inputs=dict(outs))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old = self._normalized(olds)
        new = self._normalized(news)
        with self.root_client() as c:
            cfg = self._patch(c, id_, old, new)
        if cfg is None:  # only provider-side flags changed
            cfg = {k: old[k] for k in self._keys.server}
        return UpdateResult(self._outputs(new, cfg))

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
    """A devpi index (stage or mirror), declared by :class:`IndexInputs`. ``id`` is ``owner/name``.

    ``bases`` is an ordered list of ``user/index``; empty means a private index that never serves
    packages from PyPI. ``force_destroy=True`` allows deleting an index that still holds packages;
    ``adopt=True`` takes over an existing index of that name. ``allow_mirror_whitelist_star`` and
    ``allow_anonymous_upload`` acknowledge the two risky settings ``check`` otherwise refuses.
    Every input is also an output attribute of the same name (as devpi reports it after ``read``).
    """

    def __init__(self, resource_name: str, inputs: IndexInputs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(DevpiIndexProvider(), resource_name, inputs.props(), opts)
