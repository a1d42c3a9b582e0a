"""The Pulumi program as a function: read and validate config, build the registry, export outputs.

``__main__.py`` only calls ``define_registry()``; tests call it under mocks with a stack file's
config, so nothing happens at import time.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

import pulumi

from components.config.connection import PROJECT
from components.config.errors import ConfigError
from components.config.sources import engine_config
from components.config.stack import StackConfig, load_stack_config
from components.config.tls import certificate_warnings
from components.registry.component import DevpiRegistry, RegistrySecrets

__all__ = ["StackConfigError", "define_registry", "mask_config_error", "read_stack_config"]

MASK = "[secret]"


class StackConfigError(ConfigError, pulumi.RunError):
    """A stack config problem, shown by the engine as one message (a RunError has no traceback)."""


def _leaves(value: Any) -> Iterator[str]:
    """Every string inside a config value (objects arrive as JSON text)."""
    if isinstance(value, str):
        yield value
        try:
            decoded = json.loads(value)
        except ValueError:
            return
        if not isinstance(decoded, str):
            yield from _leaves(decoded)
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _leaves(v)
    elif isinstance(value, list):
        for v in value:
            yield from _leaves(v)


def mask_config_error(exc: ConfigError, raw: Mapping[str, Any], secret_keys: set[str]) -> StackConfigError:
    """``exc`` as the user may see it: nothing the engine holds as a secret appears in it.

    The rule is the engine's secret-key list, not key names: an error about any key the engine marks
    secret (a typo set with ``--secret``, a secret under an unknown path, a ``serverUrl`` set as a
    secret) shows ``[secret]`` for the value; and every string held under a secret key is scrubbed
    from the message text as well, whatever key the message is about.
    """
    top = exc.path.removeprefix(f"{PROJECT}:").split(".")[0].split("[")[0]
    value, problem = exc.value, exc.problem
    secret = top in secret_keys
    for leaf in sorted({s for k in secret_keys for s in _leaves(raw.get(k)) if s}, key=len, reverse=True):
        if leaf in problem:
            problem = problem.replace(leaf, MASK)
        if isinstance(value, str) and leaf in value:
            secret = True
    if value is not None and not isinstance(value, (str, bool, int, float)) and secret_keys:
        secret = secret or any(s in json.dumps(value, default=str) for k in secret_keys
                               for s in _leaves(raw.get(k)) if s)
    return StackConfigError(exc.path, value, problem, secret=secret or value == MASK)


def read_stack_config() -> tuple[StackConfig, RegistrySecrets]:
    """Validate the stack config (ConfigError names key path and value) and wrap secrets as Outputs."""
    source = engine_config()
    raw, secret_keys = source.values, source.secret_keys
    try:
        stack = load_stack_config(raw, secret_keys=secret_keys)
    except ConfigError as exc:
        # ``from None``: the original error (and anything it chained) may hold a secret in clear.
        raise mask_config_error(exc, raw, secret_keys) from None
    cfg = pulumi.Config(PROJECT)
    passwords = cfg.get_secret_object("userPasswords")
    user_passwords: dict[str, pulumi.Output[str]] = {}
    for user in stack.users:
        user_passwords[user.name] = pulumi.Output.secret(passwords).apply(_pick(user.name))
    replica_keys_raw = cfg.get_secret_object("replicaSshPrivateKeys")
    replica_keys = {r.name: pulumi.Output.secret(replica_keys_raw).apply(_pick(r.name))
                    for r in stack.replicas if r.own_ssh_key}
    secrets = RegistrySecrets(
        root_password=cfg.require_secret("rootPassword"),
        user_passwords=user_passwords,
        ssh_private_key=cfg.get_secret("sshPrivateKey"),
        tls_private_key=cfg.get_secret("tlsPrivateKey") if stack.proxied else None,
        replica_ssh_keys=replica_keys,
    )
    return stack, secrets


def _pick(name: str) -> Any:
    """A function taking one user's password out of the secret userPasswords object (still secret)."""
    def pick(passwords: Any) -> str:
        return str(passwords[name])

    return pick


def define_registry() -> DevpiRegistry:
    """Build the stack's registry and export what a team needs."""
    stack, secrets = read_stack_config()
    if stack.tls is not None:
        for warning in certificate_warnings(stack.tls, datetime.now(UTC)):
            pulumi.log.warn(warning)
    registry = DevpiRegistry("devpi", stack, secrets)
    for name, value in registry.exports().items():
        pulumi.export(name, value)
    return registry
