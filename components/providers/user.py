"""devpi users as Pulumi resources (``pulumi-python:dynamic/devpi:User``).

id = the user name. The password is an input and an output (the engine needs the old value to see a
change; devpi never returns it, so drift of the password cannot be detected) and is always marked
secret through ``additional_secret_outputs``.

Data safety: devpi deletes a user's indexes **and every package in them** together with the user
(docs/devpi-api.md, "Users"), so ``delete`` refuses while the user still owns indexes unless
``force_destroy=True``.

``read`` and the existence check of ``delete`` are anonymous (devpi serves users to anyone), so a
rotation of root's password that ``pulumi up`` has not applied yet does not break ``pulumi refresh``;
writes log in as root (``root_client``), and a refused login says what to do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pulumi
from pulumi.dynamic import CheckFailure, CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.config import rules
from components.devpi.client import DevpiClient
from components.devpi.errors import ConflictError, NotFoundError
from components.providers.base import DevpiProviderBase
from components.providers.index import dependants_of
from components.providers.schema import (
    ResourceInputs,
    check_fields,
    diff_fields,
    input_names,
    input_specs,
    is_unknown,
    keep_secrets,
    merge_secret_outputs,
    password_problem,
    plain,
    prop,
    secret_names,
    with_defaults,
)

__all__ = ["DevpiUser", "DevpiUserProvider", "UserInputs"]


@dataclass(frozen=True, kw_only=True)
class UserInputs(ResourceInputs):
    """What one devpi user is declared as (wire names = devpi's keys = state property names).

    ``removable`` marks the optional profile fields devpi stores and returns (a falsy value removes
    one); adding such a devpi field is one line here.
    """

    name: pulumi.Input[str] = field(metadata=prop(replace=True))
    password: pulumi.Input[str] = field(metadata=prop(secret=True))  # devpi never returns it: no drift detection
    email: pulumi.Input[str] | None = field(default=None, metadata=prop(removable=True))
    title: pulumi.Input[str] | None = field(default=None, metadata=prop(removable=True))
    description: pulumi.Input[str] | None = field(default=None, metadata=prop(removable=True))
    # provider-side flags: never sent to devpi
    adopt: bool = field(default=False, metadata=prop(server=False))
    force_destroy: bool = field(default=False, metadata=prop(server=False))


def _profile(cls: type) -> tuple[str, ...]:
    """The optional fields devpi stores and returns, from the inputs class."""
    return tuple(k for k, spec in input_specs(cls).items() if spec.prop.removable)


def _outputs(inputs: Mapping[str, Any], cfg: Mapping[str, Any], profile: tuple[str, ...]) -> dict[str, Any]:
    """State after a create/update/read: declared inputs, the server's profile fields, ``created``."""
    outs = dict(inputs)
    for key in profile:
        outs[key] = cfg.get(key) or None  # devpi drops a field set to a falsy value
    outs["created"] = cfg.get("created")
    return outs


class DevpiUserProvider(DevpiProviderBase):
    """CRUD of one devpi user: writes as root, reads anonymously (as devpi allows).

    Its inputs are those of :attr:`inputs_class`.
    """

    #: the declared inputs (a class attribute: not part of the pickled provider)
    inputs_class: ClassVar[type[UserInputs]] = UserInputs

    def check(self, _olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_fields(self.inputs_class, news)
        name = news.get("name")
        if isinstance(name, str) and not is_unknown(name) and (problem := rules.user_problem(name)):
            failures.append(CheckFailure("name", f"name {name!r}: {problem}"))
        if problem := password_problem(plain(news.get("password"))):
            failures.append(CheckFailure("password", f"password {problem}"))
        return CheckResult(keep_secrets(with_defaults(self.inputs_class, news), news), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_fields(self.inputs_class, olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        p = with_defaults(self.inputs_class, props)
        name = p["name"]
        profile = {k: p[k] for k in _profile(self.inputs_class) if p[k] is not None}
        with self.root_client() as c:
            try:
                cfg = c.create_user(name, p["password"], **profile)
            except ConflictError as exc:
                if not p["adopt"]:
                    raise ConflictError(
                        f"devpi user {name!r} already exists on {c.url}; set adopt=True to manage it "
                        "(its password, email, title and description are then set to the declared values) "
                        "or choose another name",
                        method=exc.method, url=exc.url, status=exc.status,
                    ) from exc
                cfg = self._adopt(c, name, p)
        return CreateResult(name, keep_secrets(_outputs(p, cfg, _profile(self.inputs_class)), props))

    def _adopt(self, c: DevpiClient, name: str, p: dict[str, Any]) -> dict[str, Any]:
        """Converge an existing user to the declared profile and password (PATCH); returns its config."""
        profile = _profile(self.inputs_class)
        current = c.get_user(name)
        changes: dict[str, Any] = {k: p[k] or "" for k in profile if (current.get(k) or None) != p[k]}
        changes["password"] = p["password"]  # devpi never reveals it: always set the declared one
        c.modify_user(name, **changes)
        return {**current, **{k: p[k] for k in profile}}

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.anonymous_client() as c:
            try:
                cfg = c.get_user(id_)
            except NotFoundError:  # devpi itself said so (the client proved its URL is devpi's root)
                return ReadResult(id_=None, outs={})  # deleted behind our back: drop from state
        p = with_defaults(self.inputs_class, props)
        p["name"] = id_
        outs = _outputs(p, cfg, _profile(self.inputs_class))
        inputs = {k: outs[k] for k in input_names(self.inputs_class)}
        return ReadResult(id_=id_, outs=keep_secrets(outs, props), inputs=keep_secrets(inputs, props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old = with_defaults(self.inputs_class, olds)
        new = with_defaults(self.inputs_class, news)
        profile = _profile(self.inputs_class)
        # PATCH only what changed: devpi treats a falsy value as "remove the field".
        changes: dict[str, Any] = {k: new[k] or "" for k in profile if old[k] != new[k]}
        if old["password"] != new["password"]:
            changes["password"] = new["password"]
        if changes:
            with self.root_client() as c:
                c.modify_user(id_, **changes)
        cfg = {"created": plain(olds.get("created")), **{k: new[k] for k in profile}}
        return UpdateResult(keep_secrets(_outputs(new, cfg, profile), news))

    def delete(self, id_: str, props: dict[str, Any]) -> None:
        force = bool(plain(props.get("force_destroy")))
        with self.anonymous_client() as anon:
            try:
                cfg = anon.get_user(id_)
            except NotFoundError:
                return  # devpi itself says the user is gone
            indexes = dict(cfg.get("indexes") or {})
            everyone = anon.list_users() if indexes else {}
        if indexes and not force:
            raise RuntimeError(
                f"refusing to delete devpi user {id_!r}: it still owns the indexes "
                f"{', '.join(f'{id_}/{i}' for i in sorted(indexes))}, and devpi deletes a user's indexes "
                "and all their packages together with the user. Delete those indexes first, or set "
                "force_destroy=True on this user to delete everything."
            )
        # Even with force_destroy: indexes of other users that inherit one of this user's indexes would
        # be left with a dangling base, and devpi then refuses every later change to them.
        outside = sorted({d for ix in indexes for d in dependants_of(f"{id_}/{ix}", everyone)
                          if not d.startswith(f"{id_}/")})
        if outside:
            raise RuntimeError(
                f"refusing to delete devpi user {id_!r}: the indexes {', '.join(outside)} of other users inherit "
                f"its indexes through their bases, and would be left with a base that no longer exists. Remove "
                "those bases (or delete those indexes) first."
            )
        with self.root_client() as c:
            for index, icfg in sorted(indexes.items()):
                # devpi refuses to delete a user owning a non-volatile index (403): make them volatile.
                if not icfg.get("volatile", True):
                    c.modify_index(f"{id_}/{index}", {"volatile": True})
            try:
                c.delete_user(id_)
            except NotFoundError:
                return


class DevpiUser(Resource, module="devpi", name="User"):
    """A devpi user managed by root, declared by :class:`UserInputs`. ``id`` is the user name;
    renaming replaces the user.

    ``adopt=True`` takes over an existing user of that name (converging its profile and password)
    instead of failing; ``force_destroy=True`` lets ``pulumi destroy`` delete a user that still owns
    indexes (devpi deletes their packages too). Every input is also an output attribute, plus
    ``created``; the secret inputs (the password) stay secret as outputs.
    """

    def __init__(self, resource_name: str, inputs: UserInputs, opts: pulumi.ResourceOptions | None = None) -> None:
        props = {**inputs.props(), "created": None}  # seeded: an output only
        super().__init__(DevpiUserProvider(), resource_name, props,
                         merge_secret_outputs(opts, secret_names(type(inputs))))
