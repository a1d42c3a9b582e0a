"""Driving the real Pulumi engine from tests: the CLI, the Python language host and the plugins the
set-up built (``.ci/engine/build.sh``), a local file backend and passphrase secrets — no mocks.

``PulumiProject`` is a copy of this repository's program in a temporary folder whose Pulumi.yaml
points at the checkout's virtualenv, with one helper per ``pulumi`` command the users run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.executable).parent.parent
PULUMI_HOME = Path(os.environ.get("PULUMI_HOME", Path.home() / ".pulumi"))
ENGINE_BIN = PULUMI_HOME / "bin"
PROJECT = "devpi-registry"
PASSPHRASE = "engine-tests-passphrase"


def find_pulumi() -> Path | None:
    """The CLI the set-up installed (``~/.pulumi/bin``), else one on PATH."""
    candidate = ENGINE_BIN / "pulumi"
    if candidate.exists():
        return candidate
    found = shutil.which("pulumi")
    return Path(found) if found else None


def engine_env(state: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment every engine run gets: offline, local file backend, passphrase secrets."""
    env = dict(os.environ)
    env.update({
        "PATH": f"{ENGINE_BIN}{os.pathsep}{env.get('PATH', '')}",
        "PULUMI_HOME": str(PULUMI_HOME),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_BACKEND_URL": f"file://{state}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "NO_COLOR": "1",
    })
    env.pop("PULUMI_ACCESS_TOKEN", None)
    env.update(extra or {})
    return env


class EngineError(AssertionError):
    """A pulumi command failed (or succeeded when it should not have); carries its output."""

    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]) -> None:
        self.result = result
        super().__init__(f"pulumi {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}"
                         f"\n--- stderr\n{result.stderr[-4000:]}")


@dataclass
class PulumiProject:
    """This repository's program, copied, as a Pulumi project with one selected stack."""

    dir: Path
    state: Path
    stack: str
    env: dict[str, str] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)

    def run(self, *args: str, check: bool = True, input: str | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
        argv = [str(find_pulumi()), *args]
        result = subprocess.run(argv, cwd=self.dir, env=self.env, input=input, capture_output=True, text=True,
                                timeout=timeout)
        self.log.append(f"$ pulumi {' '.join(args)}\n{result.stdout}\n{result.stderr}")
        if check and result.returncode != 0:
            raise EngineError(list(args), result)
        return result

    # ---------------------------------------------------------------------------------- config
    def stack_file(self) -> Path:
        return self.dir / f"Pulumi.{self.stack}.yaml"

    def write_config(self, values: Mapping[str, Any]) -> None:
        """Plain (non-secret) config keys, written into the stack file as a person edits it."""
        doc = yaml.safe_load(self.stack_file().read_text()) if self.stack_file().exists() else None
        doc = doc or {}
        config = doc.setdefault("config", {})
        for key, value in values.items():
            full = key if ":" in key else f"{PROJECT}:{key}"
            if value is None:
                config.pop(full, None)
            else:
                config[full] = value
        self.stack_file().write_text(yaml.safe_dump(doc, sort_keys=False))

    def read_config(self, key: str) -> Any:
        doc = yaml.safe_load(self.stack_file().read_text()) or {}
        return (doc.get("config") or {}).get(f"{PROJECT}:{key}")

    def set_secret(self, key: str, value: str, *, path: bool = False) -> None:
        """``pulumi config set --secret`` with the value on stdin (never on a command line)."""
        args = ["config", "set", "--secret", "--stack", self.stack]
        if path:
            args.append("--path")
        self.run(*args, key, input=value)

    # -------------------------------------------------------------------------------- commands
    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("up", "--yes", "--skip-preview", "--stack", self.stack, *extra, check=check)

    def preview_json(self, *extra: str, check: bool = True) -> dict[str, Any]:
        result = self.run("preview", "--json", "--stack", self.stack, *extra, check=check)
        return dict(json.loads(result.stdout))

    def refresh(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("refresh", "--yes", "--skip-preview", "--stack", self.stack, *extra, check=check)

    def destroy(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("destroy", "--yes", "--skip-preview", "--stack", self.stack, *extra, check=check)

    def outputs(self, *, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "output", "--json", "--stack", self.stack]
        if show_secrets:
            args.append("--show-secrets")
        return dict(json.loads(self.run(*args).stdout))

    def export(self) -> dict[str, Any]:
        return dict(json.loads(self.run("stack", "export", "--stack", self.stack).stdout))

    def resources(self) -> dict[str, dict[str, Any]]:
        """Resources in the stack's state by URN name (the last ``::`` part)."""
        deployment = self.export()["deployment"]
        return {r["urn"].rsplit("::", 1)[-1]: r for r in deployment.get("resources") or []}

    def select(self, stack: str) -> PulumiProject:
        """The same project folder with another stack (created if missing)."""
        other = PulumiProject(self.dir, self.state, stack, self.env, self.log)
        if stack not in self.run("stack", "ls", "--json").stdout:
            other.run("stack", "init", stack, "--secrets-provider", "passphrase")
        return other


def copy_program(target: Path) -> Path:
    """The program (``__main__.py``, ``components/``, project file) in ``target``; the project file's
    virtualenv is this checkout's, so no install is needed."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(ROOT / "components", target / "components", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "__main__.py", target / "__main__.py")
    doc = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    doc["runtime"]["options"]["virtualenv"] = str(VENV)
    (target / "Pulumi.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return target


def new_project(base: Path, stack: str = "dev", env: Mapping[str, str] | None = None) -> PulumiProject:
    state = base / "state"
    state.mkdir(parents=True, exist_ok=True)
    project = PulumiProject(copy_program(base / "project"), state, stack, engine_env(state, env))
    project.run("stack", "init", stack, "--secrets-provider", "passphrase")
    return project


# ------------------------------------------------------------------------------ counting proxy
class CountingProxy:
    """A loopback HTTP forwarder that counts the requests it relays (to prove a command sent none)."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.requests: list[str] = []
        lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def _relay(self) -> None:
                with lock:
                    proxy.requests.append(f"{self.command} {self.path}")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = HTTPConnection(proxy.target.hostname, proxy.target.port, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status, resp.reason)
                for k, v in resp.getheaders():
                    if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _relay

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def counting_proxy(target: str) -> Iterator[CountingProxy]:
    proxy = CountingProxy(target)
    try:
        yield proxy
    finally:
        proxy.close()
