"""Pure input handling shared by the devpi dynamic providers: unknowns, secrets, the field schema.

``check`` and ``diff`` are pure (no network): they run during ``pulumi preview``, when inputs may be
unknown. The engine passes unknowns as :class:`pulumi.output.Unknown` instances (the host
deserializes with ``keep_unknowns=True``); callers of the methods may also pass the wire sentinel
string :data:`pulumi.runtime.rpc.UNKNOWN`. :func:`is_unknown` accepts both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.dynamic import CheckFailure, DiffResult
from pulumi.output import Unknown
from pulumi.runtime import rpc

__all__ = [
    "Field",
    "check_fields",
    "contains_unknown",
    "diff_fields",
    "is_unknown",
    "keep_secrets",
    "merge_secret_outputs",
    "plain",
    "shown",
    "with_defaults",
]


def is_unknown(value: Any) -> bool:
    """True for a value Pulumi does not know yet (preview): the Unknown object or the wire sentinel."""
    return isinstance(value, Unknown) or (isinstance(value, str) and value == rpc.UNKNOWN)


def contains_unknown(value: Any) -> bool:
    """True when ``value`` or anything nested in a list/dict is unknown."""
    if is_unknown(value):
        return True
    if isinstance(value, Mapping):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(contains_unknown(v) for v in value)
    return False


def plain(value: Any) -> Any:
    """``value`` with Pulumi's wrapped-secret dicts replaced by their plain contents, recursively.

    The host tells the engine it does not accept secrets, so the engine sends plaintext; but the
    host's own deserializer wraps any secret it does receive, and a provider must never send such a
    wrapper (a dict) to devpi as a password.
    """
    value = rpc.unwrap_rpc_secret(value)
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def keep_secrets(result: Mapping[str, Any], source: Mapping[str, Any]) -> dict[str, Any]:
    """``result`` with every key that was a wrapped secret in ``source`` wrapped again.

    The engine normally sends plaintext (the host does not accept secrets) and re-marks outputs
    itself; but if secrets do arrive wrapped, what the provider returns for those keys must leave the
    host wrapped too, never as plaintext.
    """
    out = dict(result)
    for key, value in source.items():
        if key in out and rpc.is_rpc_secret(value) and out[key] is not None:
            out[key] = rpc.wrap_rpc_secret(out[key])
    return out


def merge_secret_outputs(opts: pulumi.ResourceOptions | None, names: Iterable[str]) -> pulumi.ResourceOptions:
    """``opts`` with ``names`` added to ``additional_secret_outputs`` (the caller's entries are kept)."""
    extra = pulumi.ResourceOptions(additional_secret_outputs=list(names))
    return pulumi.ResourceOptions.merge(opts, extra) if opts is not None else extra


# ------------------------------------------------------------------------------------ input schema
@dataclass(frozen=True)
class Field:
    """One input property: its accepted Python types, default, and whether a change replaces.

    ``secret`` fields never show their value in a CheckFailure reason. ``nullable`` allows ``None``
    (meaning "not set on the server").
    """

    types: tuple[type, ...]
    default: Any = None
    replace: bool = False
    secret: bool = False
    nullable: bool = True
    list_of_str: bool = False
    choices: tuple[str, ...] = ()
    server: bool = True  # sent to devpi (False: a provider-side flag such as force_destroy)
    default_factory: Callable[[Mapping[str, Any]], Any] | None = field(default=None, compare=False)


def _type_name(value: Any) -> str:
    """The type to name in a message: a whole float from the wire is the int the user wrote."""
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return "int"
    return type(value).__name__


def shown(value: Any) -> str:
    """``repr`` for messages, with whole numbers as the user wrote them.

    Numbers cross Pulumi's wire as floats, so a ``42`` in the program arrives as ``42.0``; showing
    ``42.0`` in a check message would point at a value nobody wrote.
    """
    return repr(_whole_numbers(value))


def _whole_numbers(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _whole_numbers(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_whole_numbers(v) for v in value)
    return value


def _shown(name: str, spec: Field, value: Any) -> str:
    return "a secret value" if spec.secret else shown(value)


def check_fields(fields: Mapping[str, Field], news: Mapping[str, Any]) -> list[CheckFailure]:
    """Type checks of every known input (unknown values pass) and a failure per unknown key.

    Reasons name the property and the bad value, except for secret fields where only the type is
    shown.
    """
    failures: list[CheckFailure] = []
    for key in sorted(news):
        if key.startswith("__"):
            continue
        # None = not set (e.g. an output seeded in the resource's props, like ``created``)
        if key not in fields and news[key] is not None:
            failures.append(CheckFailure(key, f"unknown property {key!r}; known: {', '.join(sorted(fields))}"))
    for key, spec in fields.items():
        value = plain(news.get(key))
        if value is None or is_unknown(value):
            if value is None and not spec.nullable and spec.default is None and spec.default_factory is None:
                failures.append(CheckFailure(key, f"{key} is required"))
            continue
        if spec.list_of_str:
            if not isinstance(value, list):
                failures.append(CheckFailure(
                    key, f"{key} must be a list of strings, got {_shown(key, spec, value)} ({_type_name(value)})"))
                continue
            bad = [v for v in value if not (isinstance(v, str) or is_unknown(v))]
            if bad:
                failures.append(CheckFailure(key, f"{key} must contain only strings, got {_shown(key, spec, bad[0])}"))
            continue
        # bool is an int subclass: True is not an acceptable cache expiry, 1 is not a flag.
        ok = isinstance(value, spec.types) and not (isinstance(value, bool) and bool not in spec.types)
        if int in spec.types and float not in spec.types and isinstance(value, float):
            ok = math.isfinite(value) and value == int(value)  # the wire has only floats
        if not ok:
            want = " or ".join(t.__name__ for t in spec.types)
            failures.append(CheckFailure(
                key, f"{key} must be {want}, got {_shown(key, spec, value)} ({_type_name(value)})"))
            continue
        if spec.choices and value not in spec.choices:
            failures.append(CheckFailure(
                key, f"{key} must be one of {', '.join(spec.choices)}, got {_shown(key, spec, value)}"))
    return failures


def with_defaults(fields: Mapping[str, Field], props: Mapping[str, Any]) -> dict[str, Any]:
    """The declared fields of ``props`` with defaults filled in; internal and unknown keys dropped.

    Used by both ``check`` (so stored inputs are explicit) and ``diff`` (so an old state written
    before a field existed compares equal to its default).
    """
    out: dict[str, Any] = {}
    for key, spec in fields.items():
        value = plain(props.get(key))
        if value is None:
            if spec.default_factory is not None:
                value = spec.default_factory(props)
            elif isinstance(spec.default, list):
                value = list(spec.default)
            else:
                value = spec.default
        elif int in spec.types and isinstance(value, float) and math.isfinite(value) and value == int(value):
            value = int(value)  # numbers cross the wire as floats: 600.0 is the int 600
        out[key] = value
    return out


def diff_fields(fields: Mapping[str, Field], olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffResult:
    """Pure, symmetric diff over the declared input fields only (outputs and ``__`` keys ignored).

    An unknown value counts as a change (it may differ once known); a replace field that changed or
    is unknown is listed in ``replaces`` and then ``delete_before_replace`` is set, because devpi
    names are unique: the new object cannot exist beside the old one.
    """
    old = with_defaults(fields, olds)
    new = with_defaults(fields, news)
    changed = sorted(k for k in fields if contains_unknown(old[k]) or contains_unknown(new[k]) or old[k] != new[k])
    replaces = [k for k in changed if fields[k].replace]
    return DiffResult(
        changes=bool(changed),
        replaces=replaces,
        stables=[k for k in fields if k not in changed],
        delete_before_replace=bool(replaces),
    )
