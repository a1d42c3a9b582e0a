"""Check messages show numbers as the user wrote them: ``42``, not the ``42.0`` Pulumi's wire carries.

Numbers cross the engine/provider boundary as floats, so a program's ``42`` reaches ``check`` as
``42.0``; a message saying ``got 42.0 (float)`` points at a value nobody wrote. Pure: no server.
"""

from __future__ import annotations

from typing import Any

import pytest

from components.providers.index import DevpiIndexProvider
from components.providers.schema import shown
from components.providers.user import DevpiUserProvider


def index_props(**over: Any) -> dict[str, Any]:
    return {"owner": "alice", "name": "dev", "type": "stage", **over}


def user_props(**over: Any) -> dict[str, Any]:
    return {"name": "alice", "password": "pw", **over}


INDEX_CASES = [
    ("bool given a whole number", index_props(volatile=1.0), "volatile", "got 1 (int)"),
    ("list given a whole number", index_props(acl_upload=3.0), "acl_upload", "got 3 (int)"),
    ("list holding a whole number", index_props(bases=[42.0]), "bases", "only strings, got 42"),
    ("mirror key on a stage", index_props(mirror_cache_expiry=600.0), "mirror_cache_expiry", "got 600"),
    ("negative expiry", index_props(type="mirror", mirror_url="https://pypi.org/simple/",
                                    mirror_cache_expiry=-5.0), "mirror_cache_expiry", "got -5"),
    ("stage key on a mirror", index_props(type="mirror", mirror_url="https://pypi.org/simple/",
                                          mirror_whitelist_inheritance=None, acl_toxresult_upload=[7.0]),
     "acl_toxresult_upload", "got 7"),
]


@pytest.mark.parametrize(("news", "prop", "words"), [c[1:] for c in INDEX_CASES], ids=[c[0] for c in INDEX_CASES])
def test_index_check_shows_whole_numbers_as_ints(news: dict[str, Any], prop: str, words: str) -> None:
    failures = [f for f in DevpiIndexProvider().check({}, news).failures if f.property == prop]
    assert failures, DevpiIndexProvider().check({}, news).failures
    reason = failures[0].reason
    assert words in reason, reason
    assert ".0" not in reason, reason


def test_user_check_shows_whole_numbers_as_ints() -> None:
    (failure,) = DevpiUserProvider().check({}, user_props(name=42.0)).failures
    assert failure.reason == "name must be str, got 42 (int)"


def test_a_real_fraction_is_still_shown_as_written() -> None:
    failures = DevpiIndexProvider().check({}, index_props(type="mirror", mirror_url="https://x/simple/",
                                                          mirror_cache_expiry=1.5)).failures
    assert [f.reason for f in failures] == ["mirror_cache_expiry must be int, got 1.5 (float)"]


def test_secret_values_stay_hidden() -> None:
    (failure,) = DevpiUserProvider().check({}, user_props(password=12345678.0)).failures
    assert "12345678" not in failure.reason and "a secret value (int)" in failure.reason


def test_shown_converts_nested_whole_numbers_only() -> None:
    assert shown(42.0) == "42"
    assert shown([1.0, "a", 2.5, {"k": 3.0}]) == "[1, 'a', 2.5, {'k': 3}]"
    assert shown(float("inf")) == "inf" and shown(True) == "True"
