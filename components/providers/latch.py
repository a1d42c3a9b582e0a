"""A secret latch (``pulumi-python:dynamic/devpi:InitialValue``): the first value, forever.

The devpi container reads ``DEVPI_PASSWORD`` only at its first initialisation, yet any change of a
container env replaces the container. Feeding the env from ``InitialValue(value=rootPassword).value``
keeps it at the password the server was initialised with when ``rootPassword`` later rotates (root's
password is then changed through the API by :class:`~components.providers.root.DevpiRoot`), so the
container is not needlessly replaced. No network, no configuration.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import (
    CheckResult,
    CreateResult,
    DiffResult,
    ReadResult,
    Resource,
    ResourceProvider,
    UpdateResult,
)

from components.providers.schema import merge_secret_outputs

__all__ = ["InitialValue", "InitialValueProvider"]


class InitialValueProvider(ResourceProvider):
    """Stores ``value`` at create and ignores every later value."""

    def check(self, olds: dict[str, Any], news: dict[str, Any]) -> CheckResult:
        # Once created, keep the first value in the inputs too: the stored inputs then never hold a
        # later (rotated) password, and the engine sees no difference to report.
        if "value" in olds:
            return CheckResult({"value": olds["value"]}, [])
        return CheckResult({"value": news.get("value")}, [])

    def diff(self, _id: str, _olds: dict[str, Any], _news: dict[str, Any]) -> DiffResult:
        return DiffResult(changes=False, replaces=[], stables=["value"], delete_before_replace=False)

    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult("initial-value", {"value": props.get("value")})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs={"value": props.get("value")}, inputs={"value": props.get("value")})

    def update(self, _id: str, olds: dict[str, Any], _news: dict[str, Any]) -> UpdateResult:
        return UpdateResult({"value": olds.get("value")})

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        """Nothing exists outside the state."""


class InitialValue(Resource, module="devpi", name="InitialValue"):
    """Outputs (as a secret) the first ``value`` it was given, whatever ``value`` becomes later."""

    value: pulumi.Output[Any]

    def __init__(self, resource_name: str, *, value: pulumi.Input[Any],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(InitialValueProvider(), resource_name, {"value": value},
                         merge_secret_outputs(opts, ["value"]))
