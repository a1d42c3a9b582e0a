"""Pulumi dynamic providers for devpi: users, indexes, root (readiness + password) and a secret latch.

Importable on purpose: provider classes defined here are pickled by reference, so the ``__provider``
property stays tiny and stable across code edits (see docs/pulumi-notes.md §2).
"""

from components.providers.index import DevpiIndex, DevpiIndexProvider
from components.providers.latch import InitialValue, InitialValueProvider
from components.providers.root import DevpiRoot, DevpiRootProvider
from components.providers.user import DevpiUser, DevpiUserProvider

__all__ = [
    "DevpiIndex",
    "DevpiIndexProvider",
    "DevpiRoot",
    "DevpiRootProvider",
    "DevpiUser",
    "DevpiUserProvider",
    "InitialValue",
    "InitialValueProvider",
]
