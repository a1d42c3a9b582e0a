"""Pulumi mocks that record every resource with its inputs and options, for wiring tests.

Usage::

    recorder = MockRecorder()
    with use_mocks(recorder):
        component = SomeComponent("x", args)
        value = resolve(component.some_output)
    recorder.one("docker:index/container:Container").inputs["restart"] == "always"
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pulumi

from tests.tokens import COMMAND, CONTAINER, SHARED_SECRET

SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
SECRET_CONFIG_KEYS = ("rootPassword", "sshPrivateKey", "userPasswords", "tlsPrivateKey", "replicaSshPrivateKeys")


@dataclass
class Recorded:
    typ: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    custom: bool
    urn: str = ""
    parent_urn: str | None = None
    dependencies: list[str] = field(default_factory=list)
    additional_secret_outputs: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    protect: bool = False


class MockRecorder(pulumi.runtime.Mocks):
    """Records resources; outputs echo inputs plus an id (and a few computed outputs for known types)."""

    def __init__(self) -> None:
        self.resources: list[Recorded] = []
        self.calls: list[pulumi.runtime.MockCallArgs] = []
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}

    def attach(self, monitor: Any) -> None:
        """Wrap the mock monitor so each registration's URN, parent, dependencies and options are kept
        (MockResourceArgs carries only type, name and inputs)."""
        register = monitor.RegisterResource

        def recording_register(request: Any) -> Any:
            self._pending[(request.type, request.name)] = {
                "urn": monitor.make_urn(request.parent, request.type, request.name),
                "parent_urn": request.parent or None,
                "dependencies": list(request.dependencies),
                "additional_secret_outputs": list(request.additionalSecretOutputs),
                "delete_before_replace": bool(request.deleteBeforeReplace),
                "protect": bool(request.protect),
            }
            return register(request)

        monitor.RegisterResource = recording_register

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        meta = self._pending.pop((args.typ, args.name), None) or {}
        self.resources.append(Recorded(args.typ, args.name, dict(args.inputs), args.provider, bool(args.custom), **meta))
        outputs = dict(args.inputs)
        if args.typ == CONTAINER:
            outputs.setdefault("id", f"{args.name}-container-id")
        if args.typ == SHARED_SECRET:  # the provider generates it at create
            outputs["value"] = "mock-shared-secret-0123456789abcdef0123456789abcdef"
        if args.typ.startswith(COMMAND):
            outputs.setdefault("stdout", "")
            outputs.setdefault("stderr", "")
        return f"{args.name}-id", outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[Any, Any], list[tuple[str, str]] | None]:
        self.calls.append(args)
        return {}, None

    # ---- queries
    def of_type(self, typ: str) -> list[Recorded]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name: str | None = None) -> Recorded:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        assert len(found) == 1, f"expected one {typ} {name or ''}, found {[r.name for r in found]}"
        return found[0]

    def named(self, name: str) -> Recorded:
        found = [r for r in self.resources if r.name == name]
        assert len(found) == 1, f"expected one resource named {name}, found {len(found)}"
        return found[0]

    def by_urn(self, urn: str) -> Recorded:
        return next(r for r in self.resources if r.urn == urn)

    def depends_on(self, resource: Recorded) -> set[str]:
        """Names of the resources ``resource`` explicitly depends on."""
        return {self.by_urn(u).name for u in resource.dependencies if any(r.urn == u for r in self.resources)}

    def types(self) -> list[str]:
        return sorted({r.typ for r in self.resources})


@contextlib.contextmanager
def use_mocks(recorder: MockRecorder, *, preview: bool = False, project: str = "devpi-registry",
              stack: str = "dev", config: dict[str, str] | None = None,
              secret_keys: list[str] | None = None) -> Iterator[MockRecorder]:
    """Install mocks with a fresh event loop and settings; restore afterwards so tests don't leak.

    ``config`` reaches the program exactly as the engine's language host delivers it: the
    ``PULUMI_CONFIG`` / ``PULUMI_CONFIG_SECRET_KEYS`` environment, loaded with the SDK's public
    ``set_all_config``. ``secret_keys`` defaults to the project's secret keys present in ``config``
    (what ``pulumi config set --secret`` produces).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    config = dict(config or {})
    if secret_keys is None:
        secret_keys = [k for k in config if k.removeprefix(f"{project}:") in SECRET_CONFIG_KEYS]
    saved_env = {k: os.environ.get(k) for k in ("PULUMI_CONFIG", "PULUMI_CONFIG_SECRET_KEYS")}
    os.environ["PULUMI_CONFIG"] = json.dumps(config)
    os.environ["PULUMI_CONFIG_SECRET_KEYS"] = json.dumps(secret_keys)
    pulumi.runtime.set_all_config(pulumi.runtime.get_config_env(), pulumi.runtime.get_config_secret_keys_env())
    from pulumi.runtime.mocks import MockMonitor

    monitor = MockMonitor(recorder)
    recorder.attach(monitor)
    pulumi.runtime.set_mocks(recorder, project=project, stack=stack, preview=preview, monitor=monitor)
    try:
        yield recorder
    finally:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        pulumi.runtime.set_all_config({}, [])
        # Public SDK API: new settings and no root stack resource. A root stack left from a run that
        # registered nothing holds futures of this (closing) loop; the next test must not inherit it.
        pulumi.runtime.reset_options(project=project, stack=stack)
        # Finish or cancel what the program left running, so no task is destroyed pending (and no
        # "exception never retrieved" noise lands after pytest's summary at interpreter exit).
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        asyncio.set_event_loop(None)
        loop.close()


def resolve(output: Any) -> Any:
    """Wait for an Output (or plain value) under mocks and return its value."""
    if not isinstance(output, pulumi.Output):
        return output
    loop = asyncio.get_event_loop()
    return loop.run_until_complete(output.future())


def is_secret(output: pulumi.Output[Any]) -> bool:
    loop = asyncio.get_event_loop()
    return bool(loop.run_until_complete(output.is_secret()))


def unwrap_secret(value: Any) -> tuple[Any, bool]:
    """A mock input as (plain value, was it marked secret)."""
    if isinstance(value, dict) and value.get("4dabf18193072939515e22adb298388d") == SECRET_SIG:
        return value.get("value"), True
    return value, False


def settle() -> None:
    """Wait until every queued registration and Output has finished (resources register asynchronously)."""
    from pulumi.runtime.stack import wait_for_rpcs

    loop = asyncio.get_event_loop()
    loop.run_until_complete(wait_for_rpcs())
