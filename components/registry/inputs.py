"""The one way from the validated stack config to the devpi resources' typed inputs.

The config objects (:mod:`components.config.model`) and the inputs classes
(:mod:`components.providers`) use the same field names — devpi's own keys — so each function copies
every field the inputs class declares, by name. A devpi option added to ``IndexInputs`` therefore
needs no edit here, only its config key in the loader; a test checks that every inputs field exists
on the config object, so a forgotten one fails loudly instead of silently staying at its default.
"""

from __future__ import annotations

from typing import Any

import pulumi

from components.config.model import IndexConfig, UserConfig
from components.providers.index import IndexInputs
from components.providers.schema import input_names
from components.providers.user import UserInputs

__all__ = ["index_inputs", "user_inputs"]


def _copied(config: Any, cls: type, **given: Any) -> dict[str, Any]:
    """Every field of inputs class ``cls`` from the same-named attribute of ``config`` (or ``given``)."""
    return {name: given[name] if name in given else getattr(config, name) for name in input_names(cls)}


def index_inputs(ix: IndexConfig) -> IndexInputs:
    """The inputs of ``DevpiIndex`` for a declared index (``bases`` are the effective bases)."""
    return IndexInputs(**_copied(ix, IndexInputs))


def user_inputs(user: UserConfig, password: pulumi.Input[str]) -> UserInputs:
    """The inputs of ``DevpiUser`` for a declared user; the password stays a secret Output."""
    return UserInputs(**_copied(user, UserInputs, password=password))
