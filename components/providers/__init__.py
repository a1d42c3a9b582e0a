"""Pulumi dynamic providers for devpi: users, indexes, root (readiness + password) and a secret latch.

Importable on purpose: provider classes defined here are pickled by reference, so the ``__provider``
property stays tiny and stable across code edits (see docs/pulumi-notes.md, "Dynamic providers"). Each resource takes
one typed inputs object (``IndexInputs``, ``UserInputs``, ``RootInputs``) from which its provider
derives its field list, type checks, defaults and diff (:mod:`components.providers.schema`).
"""

from components.providers.index import DevpiIndex, DevpiIndexProvider, IndexInputs
from components.providers.latch import InitialValue, InitialValueProvider
from components.providers.root import DevpiRoot, DevpiRootProvider, RootInputs
from components.providers.user import DevpiUser, DevpiUserProvider, UserInputs

__all__ = [
    "DevpiIndex",
    "DevpiIndexProvider",
    "DevpiRoot",
    "DevpiRootProvider",
    "DevpiUser",
    "DevpiUserProvider",
    "IndexInputs",
    "InitialValue",
    "InitialValueProvider",
    "RootInputs",
    "UserInputs",
]
