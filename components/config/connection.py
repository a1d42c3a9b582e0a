"""Where the dynamic providers learn the server URL and root's credentials: the stack config.

The providers receive the whole stack configuration (secrets decrypted) through ``configure()``;
they never carry credentials in their pickled form or in resource inputs. That is what makes a
rotated root password work everywhere at once: after ``pulumi config set --secret rootPassword``,
every later create, read, update and delete — including deletes of resources created long ago —
logs in with the password the stack holds now.

The keys are read by the stack-config loader itself (:func:`components.config.stack.load_connection`),
so the providers' server URL is the program's: ``serverUrl``, or when absent the default derived from
``host.address`` and ``server.port`` (``https://<tls.names[0]>`` with ``tls``), with the same rules and
the same messages; ``ca_bundle`` is ``tls.caBundle``, the CA the providers must trust for that URL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from components.config.defaults import DEFAULT_PORT, PROJECT
from components.config.stack import TOP_LEVEL_KEYS, load_connection

__all__ = ["DEFAULT_PORT", "PROJECT", "ProviderSettings", "provider_settings"]


@dataclass(frozen=True)
class ProviderSettings:
    """Connection for the dynamic providers. ``repr`` never shows the password."""

    url: str
    user: str = "root"
    password: str = field(default="", repr=False)
    #: PEM of the private CA the server's certificate chains to (``tls.caBundle``); None = the system's
    #: trust store (a publicly trusted certificate, or plain http)
    ca_bundle: str | None = field(default=None, repr=False)


def provider_settings(get: Callable[[str], Any]) -> ProviderSettings:
    """Build the provider connection from a config getter taking fully qualified keys
    (``"devpi-registry:rootPassword"``), e.g. ``pulumi.dynamic.Config.get``. Raises ``ConfigError``
    naming the key, as ``pulumi preview`` would."""
    raw = {name: value for name in TOP_LEVEL_KEYS if (value := get(f"{PROJECT}:{name}")) not in (None, "")}
    url, password, ca_bundle = load_connection(raw)
    return ProviderSettings(url=url, user="root", password=password, ca_bundle=ca_bundle)
