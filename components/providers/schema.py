"""Pure input handling shared by the devpi dynamic providers: unknowns, secrets, typed inputs.

Each resource declares its inputs once, as a frozen dataclass (``IndexInputs``, ``UserInputs``,
``RootInputs``) whose fields carry :class:`Prop` metadata (made with :func:`prop`). Everything the
providers need about a property derives from that one declaration: the wire names
(:func:`input_names`), the type checks of ``check`` (:func:`check_fields`, from the annotation), the
defaults filled in by ``check`` and ``diff`` (:func:`with_defaults`, from the field default or
``Prop.default_from``), what replaces (:func:`diff_fields`, ``Prop.replace``), what is secret
(:func:`secret_names`, ``Prop.secret``) and what is sent to devpi (``Prop.server``). A field is
declared as ``name: pulumi.Input[str] | None = field(default=None, metadata=prop(replace=True))``.

``check`` and ``diff`` are pure (no network): they run during ``pulumi preview``, when inputs may be
unknown. The engine passes unknowns as :class:`pulumi.output.Unknown` instances (the host
deserializes with ``keep_unknowns=True``); callers of the methods may also pass the wire sentinel
string :data:`pulumi.runtime.rpc.UNKNOWN`. :func:`is_unknown` accepts both.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi.output
from pulumi.dynamic import CheckFailure, DiffResult
from pulumi.output import Unknown
from pulumi.runtime import rpc

__all__ = [
    "InputSpec",
    "Prop",
    "ResourceInputs",
    "check_fields",
    "contains_unknown",
    "diff_fields",
    "input_names",
    "input_specs",
    "is_unknown",
    "keep_secrets",
    "merge_secret_outputs",
    "password_problem",
    "plain",
    "prop",
    "secret_names",
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


def password_problem(password: Any) -> str | None:
    """A password a devpi account may be given: not empty (the type is checked with the inputs).

    ``components.config.rules`` has no rule for an account password as such (its
    ``root_password_problem`` is about the container's first start, where a leading ``-`` breaks
    devpi-init; a password rotated through the API may start with ``-``).
    """
    return "must not be empty" if password == "" else None


# ------------------------------------------------------------------------------------ typed inputs
_META = "devpi"


@dataclass(frozen=True)
class Prop:
    """How one input property behaves, as metadata of a field of an inputs dataclass.

    ``replace``: a change replaces the object (devpi cannot rename it or change it in place).
    ``secret``: never shown in a check message, marked secret in the outputs.
    ``server``: sent to devpi (False: a provider-side flag such as ``force_destroy``).
    ``choices``: the only accepted values. ``default_from``: a default that depends on the other
    inputs (the raw props are passed), used instead of the field's own default.
    ``applies_to``: the index ``type`` the key exists for on the server (devpi refuses or drops it
    on the other). ``removable``: optional on the server, where a key once set must be removed
    explicitly (``key-=``) rather than set to null. ``normalize``: how devpi rewrites a list value,
    applied by ``check`` so the stored inputs equal what ``read`` reports. ``unset_is_unchanged``:
    the provider also reports the key as an output, so an unset (None) value on either side of a
    diff says nothing and is no change (a program that does not pass it never sees a diff).
    """

    replace: bool = False
    secret: bool = False
    server: bool = True
    choices: tuple[str, ...] = ()
    default_from: Callable[[Mapping[str, Any]], Any] | None = None
    applies_to: str | None = None
    removable: bool = False
    normalize: Callable[[list[Any]], list[Any]] | None = None
    unset_is_unchanged: bool = False


def prop(
    *,
    replace: bool = False,
    secret: bool = False,
    server: bool = True,
    choices: tuple[str, ...] = (),
    default_from: Callable[[Mapping[str, Any]], Any] | None = None,
    applies_to: str | None = None,
    removable: bool = False,
    normalize: Callable[[list[Any]], list[Any]] | None = None,
    unset_is_unchanged: bool = False,
) -> dict[str, Prop]:
    """The ``metadata`` of an inputs dataclass field: ``field(default=None, metadata=prop(replace=True))``.

    A field without a default is required; a field without metadata behaves as ``Prop()``.
    """
    return {_META: Prop(replace=replace, secret=secret, server=server, choices=choices, default_from=default_from,
                        applies_to=applies_to, removable=removable, normalize=normalize,
                        unset_is_unchanged=unset_is_unchanged)}


class ResourceInputs:
    """Base of the typed inputs dataclasses: what a resource sends to its provider."""

    def props(self) -> dict[str, Any]:
        """The wire properties: every declared field (None = unset), tuples as lists."""
        return {f.name: _wire(getattr(self, f.name)) for f in dataclasses.fields(self)}  # type: ignore[arg-type]


def _wire(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class InputSpec:
    """One input property as the providers see it, derived from a field of an inputs dataclass."""

    name: str
    types: tuple[type, ...]
    list_of_str: bool
    required: bool
    default: Any
    default_factory: Callable[[], Any] | None
    prop: Prop

    def default_for(self, props: Mapping[str, Any]) -> Any:
        """The value an unset (None) property takes, given all the raw props."""
        if self.prop.default_from is not None:
            return self.prop.default_from(props)
        if self.default_factory is not None:
            return self.default_factory()
        return list(self.default) if isinstance(self.default, list) else self.default

    def problem(self, value: Any) -> str | None:
        """Why a (plain) wire value does not fit this property, or None. Unknown values fit."""
        if value is None or is_unknown(value):
            return f"{self.name} is required" if value is None and self.required else None
        if self.list_of_str:
            return self._list_problem(value)
        return self._scalar_problem(value)

    def _list_problem(self, value: Any) -> str | None:
        if not isinstance(value, list):
            return f"{self.name} must be a list of strings, got {self._shown(value)} ({_type_name(value)})"
        bad = [v for v in value if not (isinstance(v, str) or is_unknown(v))]
        if bad:
            return f"{self.name} must contain only strings, got {self._shown(bad[0])}"
        return None

    def _scalar_problem(self, value: Any) -> str | None:
        if not self._fits(value):
            want = " or ".join(t.__name__ for t in self.types)
            return f"{self.name} must be {want}, got {self._shown(value)} ({_type_name(value)})"
        if self.prop.choices and value not in self.prop.choices:
            return f"{self.name} must be one of {', '.join(self.prop.choices)}, got {self._shown(value)}"
        return None

    def _fits(self, value: Any) -> bool:
        if isinstance(value, bool):  # bool is an int subclass: True is not an expiry, 1 is not a flag
            return bool in self.types
        if isinstance(value, float) and int in self.types and float not in self.types:
            return math.isfinite(value) and value == int(value)  # the wire has only floats
        return isinstance(value, self.types)

    def _shown(self, value: Any) -> str:
        return "a secret value" if self.prop.secret else shown(value)

    def differs(self, old: Any, new: Any) -> bool:
        """Whether a diff sees a change: an unknown value may differ once known."""
        if self.prop.unset_is_unchanged and (old is None or new is None):
            return False
        return contains_unknown(old) or contains_unknown(new) or old != new

    def from_wire(self, value: Any) -> Any:
        """A set wire value as the property's type: numbers cross the wire as floats (600.0 is 600)."""
        if int in self.types and isinstance(value, float) and math.isfinite(value) and value == int(value):
            return int(value)
        return value


_SPECS: dict[type, dict[str, InputSpec]] = {}


def input_specs(cls: type) -> dict[str, InputSpec]:
    """The properties of inputs dataclass ``cls``, in declaration order (derived once per class)."""
    specs = _SPECS.get(cls)
    if specs is None:
        specs = _SPECS[cls] = _derive_specs(cls)
    return specs


def _derive_specs(cls: type) -> dict[str, InputSpec]:
    # Each class's annotations are evaluated in its own module (a subclass may live elsewhere);
    # ``pulumi.Input`` refers to ``Output[T]`` by a forward reference the SDK's module resolves.
    hints = typing.get_type_hints(cls, localns={"Output": pulumi.Output, "T": pulumi.output.T})
    specs: dict[str, InputSpec] = {}
    for f in dataclasses.fields(cls):
        wire_types, list_of_str = _wire_types(hints[f.name])
        default = None if f.default is dataclasses.MISSING else f.default
        factory = None if f.default_factory is dataclasses.MISSING else f.default_factory
        meta = f.metadata.get(_META, Prop())
        required = f.default is dataclasses.MISSING and factory is None and meta.default_from is None
        specs[f.name] = InputSpec(f.name, wire_types, list_of_str, required, default, factory, meta)
    return specs


def _wire_types(hint: Any) -> tuple[tuple[type, ...], bool]:
    """The Python types a property's wire value may have, from its annotation, and whether it is a
    list of strings. ``pulumi.Input``'s ``Output``/``Awaitable`` members and ``None`` are dropped."""
    found: list[type] = []
    list_of_str = False
    for member in _union_members(hint):
        origin = typing.get_origin(member)
        if member is type(None) or origin in (Awaitable, pulumi.Output) or member is pulumi.Output:
            continue
        if origin in (list, tuple, Sequence) or member in (list, tuple, Sequence):
            list_of_str = True
            found.append(list)
        elif isinstance(member, type):
            found.extend((int, float) if member is float else (member,))  # an int is a fine float
    if not found:
        raise TypeError(f"cannot derive a wire type from the annotation {hint!r}")
    return tuple(dict.fromkeys(found)), list_of_str


def _union_members(hint: Any) -> tuple[Any, ...]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


def input_names(cls: type) -> tuple[str, ...]:
    """The wire property names of inputs dataclass ``cls``: the provider's field list."""
    return tuple(input_specs(cls))


def secret_names(cls: type) -> list[str]:
    """The properties of ``cls`` marked secret (they go into ``additional_secret_outputs``)."""
    return [name for name, spec in input_specs(cls).items() if spec.prop.secret]


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


def check_fields(cls: type, news: Mapping[str, Any]) -> list[CheckFailure]:
    """Type checks of every known input of ``cls`` (unknown values pass) and a failure per unknown key.

    Reasons name the property and the bad value, except for secret fields where only the type is
    shown.
    """
    specs = input_specs(cls)
    failures = [CheckFailure(key, f"unknown property {key!r}; known: {', '.join(sorted(specs))}")
                for key in _unknown_keys(specs, news)]
    for key, spec in specs.items():
        problem = spec.problem(plain(news.get(key)))
        if problem is not None:
            failures.append(CheckFailure(key, problem))
    return failures


def _unknown_keys(specs: Mapping[str, InputSpec], news: Mapping[str, Any]) -> list[str]:
    """Keys that are no declared input; internal ``__`` keys and None (e.g. a seeded output) pass."""
    return [key for key in sorted(news)
            if not key.startswith("__") and key not in specs and news[key] is not None]


def with_defaults(cls: type, props: Mapping[str, Any]) -> dict[str, Any]:
    """The declared inputs of ``props`` with defaults filled in; internal and unknown keys dropped.

    Used by both ``check`` (so stored inputs are explicit) and ``diff`` (so an old state written
    before a field existed compares equal to its default).
    """
    out: dict[str, Any] = {}
    for key, spec in input_specs(cls).items():
        value = plain(props.get(key))
        out[key] = spec.default_for(props) if value is None else spec.from_wire(value)
    return out


def diff_fields(cls: type, olds: Mapping[str, Any], news: Mapping[str, Any]) -> DiffResult:
    """Pure, symmetric diff over the declared inputs of ``cls`` only (outputs and ``__`` keys ignored).

    An unknown value counts as a change (it may differ once known); a replace field that changed or
    is unknown is listed in ``replaces`` and then ``delete_before_replace`` is set, because devpi
    names are unique: the new object cannot exist beside the old one.
    """
    specs = input_specs(cls)
    old = with_defaults(cls, olds)
    new = with_defaults(cls, news)
    changed = sorted(k for k, spec in specs.items() if spec.differs(old[k], new[k]))
    replaces = [k for k in changed if specs[k].prop.replace]
    return DiffResult(
        changes=bool(changed),
        replaces=replaces,
        stables=[k for k in specs if k not in changed],
        delete_before_replace=bool(replaces),
    )
