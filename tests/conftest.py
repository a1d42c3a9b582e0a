"""Shared fixtures live in tests/fixtures/, one module per real component the tests start; process
state the client and the providers keep between calls is reset around every test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from components.devpi.client import DEFAULT_STATE
from components.providers.base import SESSIONS

pytest_plugins = [
    "tests.fixtures.devpi",
    "tests.fixtures.sshd",
    "tests.fixtures.firewalld",
    "tests.fixtures.docker",
    "tests.fixtures.provider_host",
    "tests.fixtures.team",
    "tests.fixtures.silent",
    "tests.fixtures.tls",
    "tests.fixtures.nginx",
]


@pytest.fixture(autouse=True)
def fresh_process_state() -> Iterator[None]:
    """No test sees a login token, a proof that a URL is devpi, or a pooled keep-alive session left
    by another: each starts as a new provider host process would."""
    DEFAULT_STATE.clear()
    yield
    DEFAULT_STATE.clear()
    SESSIONS.close()
