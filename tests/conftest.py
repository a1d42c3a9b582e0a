"""Shared fixtures live in tests/fixtures/, one module per real component the tests start."""

pytest_plugins = [
    "tests.fixtures.devpi",
    "tests.fixtures.sshd",
    "tests.fixtures.firewalld",
    "tests.fixtures.docker",
    "tests.fixtures.provider_host",
]
