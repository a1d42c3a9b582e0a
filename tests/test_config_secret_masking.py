"""Config errors never show a value the engine holds as a secret, whatever key it sits under.

The program gets the config and the secret-key list the way the engine's language host delivers
them (``PULUMI_CONFIG`` / ``PULUMI_CONFIG_SECRET_KEYS``, loaded with the SDK's public API); the
mocks deliver them the same way. The same cases run through the real engine in
``tests/engine/test_registry_engine.py``.
"""

from __future__ import annotations

import json

import pulumi
import pytest

from components.config.errors import ConfigError
from components.program import define_registry
from tests.mocks import MockRecorder, use_mocks

P = "devpi-registry:"
BASE = {
    f"{P}serverUrl": "http://127.0.0.1:3141",
    f"{P}rootPassword": "root-Pa55-word",
}


def run(config: dict[str, str], secret_keys: list[str]) -> ConfigError:
    with use_mocks(MockRecorder(), config=config, secret_keys=secret_keys), pytest.raises(ConfigError) as info:
        define_registry()
    return info.value


def test_secret_under_an_unknown_path_is_masked() -> None:
    users = json.dumps([{"name": "build_bot", "password": "s3cret-in-users"}])
    err = run({**BASE, f"{P}users": users}, [f"{P}rootPassword", f"{P}users"])
    assert "users[0].password" in str(err)
    assert "s3cret-in-users" not in str(err)
    assert "[secret]" in str(err)


def test_typo_of_a_secret_key_set_with_secret_is_masked() -> None:
    err = run({**BASE, f"{P}rootPasswd": "typo-Secret-99"}, [f"{P}rootPassword", f"{P}rootPasswd"])
    assert "rootPasswd" in str(err)
    assert "typo-Secret-99" not in str(err)


def test_server_url_set_as_secret_with_credentials_is_masked() -> None:
    url = "http://admin:url-Secret-77@devpi.example:3141"
    err = run({**BASE, f"{P}serverUrl": url}, [f"{P}rootPassword", f"{P}serverUrl"])
    assert "serverUrl" in str(err)
    assert "url-Secret-77" not in str(err) and url not in str(err)


def test_secret_value_quoted_under_another_key_is_scrubbed() -> None:
    # rootPassword's value pasted into a plain key by mistake: the message about that key must not
    # repeat it, since the engine holds that string as a secret.
    err = run({**BASE, f"{P}serverUrl": "root-Pa55-word"}, [f"{P}rootPassword"])
    assert "serverUrl" in str(err)
    assert "root-Pa55-word" not in str(err)


def test_plain_values_are_still_shown() -> None:
    err = run({**BASE, f"{P}serverUrl": "ftp://devpi.example"}, [f"{P}rootPassword"])
    assert "ftp://devpi.example" in str(err)


def test_error_is_a_run_error_without_a_chained_cause() -> None:
    # A RunError is shown by the engine as its message alone (no traceback); ``from None`` keeps the
    # unmasked original out of any traceback that is printed.
    err = run({**BASE, f"{P}rootPasswd": "typo-Secret-99"}, [f"{P}rootPassword", f"{P}rootPasswd"])
    assert isinstance(err, pulumi.RunError)
    assert err.__cause__ is None and err.__suppress_context__
