"""devpi users as Pulumi resources (``pulumi-python:dynamic/devpi:User``).

id = the user name. The password is an input and an output (the engine needs the old value to see a
change; devpi never returns it, so drift of the password cannot be detected) and is always marked
secret through ``additional_secret_outputs``.

Data safety: devpi deletes a user's indexes **and every package in them** together with the user
(docs/devpi-api.md §3), so ``delete`` refuses while the user still owns indexes unless
``force_destroy=True``.

``read`` and the existence check of ``delete`` are anonymous (devpi serves users to anyone), so a
rotation of root's password that ``pulumi up`` has not applied yet does not break ``pulumi refresh``;
writes log in as root (``root_client``), and a refused login says what to do.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CheckResult, CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.devpi.client import DevpiClient
from components.devpi.errors import ConflictError, NotFoundError
from components.devpi.names import user_name_problem
from components.providers.base import DevpiProviderBase
from components.providers.index import dependants_of
from components.providers.schema import (
    Field,
    check_fields,
    diff_fields,
    is_unknown,
    keep_secrets,
    merge_secret_outputs,
    plain,
    with_defaults,
)

__all__ = ["USER_FIELDS", "DevpiUser", "DevpiUserProvider"]

USER_FIELDS: dict[str, Field] = {
    "name": Field((str,), replace=True, nullable=False),
    "password": Field((str,), secret=True, nullable=False),
    "email": Field((str,)),
    "title": Field((str,)),
    "description": Field((str,)),
    "adopt": Field((bool,), default=False, server=False),
    "force_destroy": Field((bool,), default=False, server=False),
}
_PROFILE = ("email", "title", "description")  # optional fields devpi stores and returns


def _outputs(inputs: dict[str, Any], cfg: dict[str, Any]) -> dict[str, Any]:
    """State after a create/update/read: declared inputs, the server's profile fields, ``created``."""
    outs = dict(inputs)
    for key in _PROFILE:
        outs[key] = cfg.get(key) or None  # devpi drops a field set to a falsy value
    outs["created"] = cfg.get("created")
    return outs


class DevpiUserProvider(DevpiProviderBase):
    """CRUD of one devpi user: writes as root, reads anonymously (as devpi allows)."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        failures = check_fields(USER_FIELDS, news)
        name = news.get("name")
        if isinstance(name, str) and not is_unknown(name):
            problem = user_name_problem(name)
            if problem:
                failures.append(pulumi.dynamic.CheckFailure("name", f"name {name!r}: {problem}"))
            elif name == "root":
                failures.append(pulumi.dynamic.CheckFailure(
                    "name", "name 'root': root is managed by DevpiRoot (its password is the stack's rootPassword)"))
        password = plain(news.get("password"))
        if password == "":
            failures.append(pulumi.dynamic.CheckFailure("password", "password must not be empty"))
        return CheckResult(keep_secrets(with_defaults(USER_FIELDS, news), news), failures)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return diff_fields(USER_FIELDS, olds, news)

    def create(self, props: dict[str, Any]) -> CreateResult:
        p = with_defaults(USER_FIELDS, props)
        name = p["name"]
        profile = {k: p[k] for k in _PROFILE if p[k] is not None}
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
        return CreateResult(name, keep_secrets(_outputs(p, cfg), props))

    @staticmethod
    def _adopt(c: DevpiClient, name: str, p: dict[str, Any]) -> dict[str, Any]:
        """Converge an existing user to the declared profile and password (PATCH); returns its config."""
        current = c.get_user(name)
        changes: dict[str, Any] = {k: p[k] or "" for k in _PROFILE if (current.get(k) or None) != p[k]}
        changes["password"] = p["password"]  # devpi never reveals it: always set the declared one
        c.modify_user(name, **changes)
        return {**current, **{k: p[k] for k in _PROFILE}}

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        with self.anonymous_client() as c:
            try:
                cfg = c.get_user(id_)
            except NotFoundError:  # devpi itself said so (the client proved its URL is devpi's root)
                return ReadResult(id_=None, outs={})  # deleted behind our back: drop from state
        p = with_defaults(USER_FIELDS, props)
        p["name"] = id_
        outs = _outputs(p, cfg)
        inputs = {k: outs[k] for k in USER_FIELDS}
        return ReadResult(id_=id_, outs=keep_secrets(outs, props), inputs=keep_secrets(inputs, props))

    def update(self, id_: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        old = with_defaults(USER_FIELDS, olds)
        new = with_defaults(USER_FIELDS, news)
        # PATCH only what changed: devpi treats a falsy value as "remove the field".
        changes: dict[str, Any] = {k: new[k] or "" for k in _PROFILE if old[k] != new[k]}
        if old["password"] != new["password"]:
            changes["password"] = new["password"]
        if changes:
            with self.root_client() as c:
                c.modify_user(id_, **changes)
        cfg = {"created": plain(olds.get("created")), **{k: new[k] for k in _PROFILE}}
        return UpdateResult(keep_secrets(_outputs(new, cfg), news))

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
    """A devpi user managed by root. ``id`` is the user name; renaming replaces the user.

    ``adopt=True`` takes over an existing user of that name (converging its profile and password)
    instead of failing; ``force_destroy=True`` lets ``pulumi destroy`` delete a user that still owns
    indexes (devpi deletes their packages too).
    """

    name: pulumi.Output[str]
    email: pulumi.Output[str | None]
    title: pulumi.Output[str | None]
    description: pulumi.Output[str | None]
    created: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        name: pulumi.Input[str],
        password: pulumi.Input[str],
        email: pulumi.Input[str] | None = None,
        title: pulumi.Input[str] | None = None,
        description: pulumi.Input[str] | None = None,
        adopt: bool = False,
        force_destroy: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        props: dict[str, Any] = {
            "name": name,
            "password": password,
            "email": email,
            "title": title,
            "description": description,
            "adopt": adopt,
            "force_destroy": force_destroy,
            "created": None,
        }
        super().__init__(DevpiUserProvider(), resource_name, props, merge_secret_outputs(opts, ["password"]))
