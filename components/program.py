"""The Pulumi program as a function: read and validate config, build the registry, export outputs.

``__main__.py`` only calls ``define_registry()``; tests call it under mocks with a stack file's
config, so nothing happens at import time.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.config import StackConfig, load_stack_config
from components.registry import DevpiRegistry, RegistrySecrets
from components.settings import PROJECT

__all__ = ["define_registry", "read_stack_config"]


def _raw_config() -> dict[str, Any]:
    """This project's config keys (bare names) as the engine handed them to the program."""
    prefix = f"{PROJECT}:"
    return {k[len(prefix):]: v for k, v in runtime_config.CONFIG.get().items() if k.startswith(prefix)}


def _secret_keys() -> set[str] | None:
    """Bare names of the keys Pulumi holds encrypted, when the engine told us (None under mocks)."""
    keys = runtime_config._SECRET_KEYS.get()
    if not keys:
        return None
    prefix = f"{PROJECT}:"
    return {k[len(prefix):] for k in keys if k.startswith(prefix)}


def read_stack_config() -> tuple[StackConfig, RegistrySecrets]:
    """Validate the stack config (ConfigError names key path and value) and wrap secrets as Outputs."""
    stack = load_stack_config(_raw_config(), secret_keys=_secret_keys())
    cfg = pulumi.Config(PROJECT)
    passwords = cfg.get_secret_object("userPasswords")
    user_passwords: dict[str, pulumi.Output[str]] = {}
    for user in stack.users:
        user_passwords[user.name] = pulumi.Output.secret(passwords).apply(_pick(user.name))
    secrets = RegistrySecrets(
        root_password=cfg.require_secret("rootPassword"),
        user_passwords=user_passwords,
        ssh_private_key=cfg.get_secret("sshPrivateKey"),
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
    registry = DevpiRegistry("devpi", stack, secrets)
    pulumi.export("serverUrl", registry.server_url)
    outputs = registry.outputs
    pulumi.export("indexes", outputs["indexes"])
    pulumi.export("pypirc", outputs["pypirc"])
    pulumi.export("twineCommands", outputs["twineCommands"])
    if stack.indexes:
        first = next((i for i in stack.indexes if i.type == "stage"), stack.indexes[0])
        pulumi.export("pipConf", outputs["indexes"][first.full_name]["pipConfStrict"])
    return registry
