"""Pure checks of the names devpi accepts, shared by provider ``check`` and the stack config.

devpi refuses user and index names with ASCII symbols other than ``-.@_`` (docs/devpi-api.md, "Conventions");
we refuse them before any request so ``pulumi preview`` already names the bad value.
"""

from __future__ import annotations

import re
import string

__all__ = ["INDEX_TYPES", "index_name_problem", "index_spec_problem", "split_index_spec", "user_name_problem"]

_ALLOWED_SYMBOLS = set("-.@_")
_BLOCKED = {c for c in string.punctuation if c not in _ALLOWED_SYMBOLS} | set(string.whitespace)
INDEX_TYPES = ("stage", "mirror")
_RESERVED_INDEX_NAMES = {"+api", "+simple", "+login", "+status"}


def _name_problem(kind: str, name: object) -> str | None:
    if not isinstance(name, str):
        return f"{kind} name must be a string"
    if not name:
        return f"{kind} name must not be empty"
    bad = sorted({c for c in name if c in _BLOCKED or not c.isprintable()})
    if bad:
        shown = "".join(bad)
        return f"{kind} name contains characters devpi refuses ({shown!r}); only letters, digits and -.@_ are allowed"
    if name.startswith("+"):
        return f"{kind} name must not start with '+' (reserved by devpi)"
    return None


def user_name_problem(name: object) -> str | None:
    """Why devpi would refuse this user name, or None when it is acceptable."""
    return _name_problem("user", name)


def index_name_problem(name: object) -> str | None:
    """Why devpi would refuse this index name (the part after ``user/``), or None."""
    problem = _name_problem("index", name)
    if problem is None and str(name) in _RESERVED_INDEX_NAMES:
        return f"index name {name!r} is reserved by devpi"
    return problem


_SPEC = re.compile(r"^([^/]+)/([^/]+)$")


def split_index_spec(spec: str) -> tuple[str, str]:
    """``"user/index"`` -> ``("user", "index")``; raises ValueError with the reason."""
    problem = index_spec_problem(spec)
    if problem:
        raise ValueError(problem)
    user, index = spec.split("/")
    return user, index


def index_spec_problem(spec: object) -> str | None:
    """Why ``spec`` is not a valid ``user/index`` reference (as used in ``bases``), or None."""
    if not isinstance(spec, str):
        return "must be a string of the form 'user/index'"
    m = _SPEC.match(spec)
    if not m:
        return "must have the form 'user/index'"
    return user_name_problem(m.group(1)) or index_name_problem(m.group(2))
