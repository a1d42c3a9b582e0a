"""The ``local`` stack: a throwaway devpi registry on this machine, for trying the stack out.

``./tasks deploy`` (no stack named) uses it: a devpi-server from this project's virtualenv, started
as the production image starts it (same devpi-server version, ``--restrict-modify root``, a secret
file so login tokens survive restarts), bound to loopback only, its data in the gitignored
``.local/`` folder; then the real ``pulumi up`` of the manual procedure's users and indexes (those
of ``Pulumi.dev.yaml``) in the registry-only shape (``serverUrl``). ``./tasks destroy local`` stops
it and removes its folder and its stack.

Root's password never appears on a command line or in an environment: it is generated here, stored
only as the stack's encrypted ``rootPassword`` (through ``pulumi config set --secret`` on stdin by
``./tasks``), and devpi-init receives its argon2 hash.

Usage (``./tasks`` runs these): ``python -m components.localstack start|stop|stack-file|status``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests
import yaml

__all__ = ["LocalRegistry", "main", "stack_document"]

PROJECT = "devpi-registry"
DEFAULT_PORT = 3141


@dataclass(frozen=True)
class LocalRegistry:
    """Where the local registry lives: ``folder`` holds the server dir, its log, pid and port."""

    folder: Path
    port: int = DEFAULT_PORT

    @property
    def serverdir(self) -> Path:
        return self.folder / "server"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.folder / "devpi-server.pid"

    @property
    def log(self) -> Path:
        return self.folder / "devpi-server.log"

    def pid(self) -> int | None:
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    def answers(self) -> bool:
        try:
            resp = requests.get(f"{self.url}/+api", timeout=2, headers={"Accept": "application/json"})
        except requests.RequestException:
            return False
        return resp.status_code == 200 and "X-Devpi-Server-Version" in resp.headers

    # ------------------------------------------------------------------------------------ start
    def start(self, timeout: float = 60.0) -> str | None:
        """Initialise (first time) and start the server; returns a new root password when it was
        initialised now (the caller stores it as the stack secret), else None."""
        if self.pid() is not None and self.answers():
            return None
        self.folder.mkdir(parents=True, exist_ok=True)
        bindir = Path(sys.executable).parent
        password = None
        if not (self.serverdir / ".serverversion").exists():
            from devpi_server.auth import hash_password

            password = secrets.token_urlsafe(24)
            subprocess.run([str(bindir / "devpi-init"), "--serverdir", str(self.serverdir), "--no-root-pypi",
                            "--root-passwd-hash", hash_password(password)], check=True, capture_output=True)
            subprocess.run([str(bindir / "devpi-gen-secret"), "--secretfile", str(self.folder / "secret")],
                           check=True, capture_output=True)
            (self.folder / "secret").chmod(0o600)
        with self.log.open("ab") as log:
            proc = subprocess.Popen(
                [str(bindir / "devpi-server"), "--serverdir", str(self.serverdir), "--host", "127.0.0.1",
                 "--port", str(self.port), "--restrict-modify", "root", "--secretfile", str(self.folder / "secret")],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.pidfile.write_text(f"{proc.pid}\n")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = self.log.read_text(errors="replace").splitlines()[-5:]
                raise SystemExit(f"devpi-server exited at start (port {self.port} in use?): " + " | ".join(tail))
            if self.answers():
                return password
            time.sleep(0.3)
        raise SystemExit(f"devpi-server at {self.url} did not answer within {timeout:g} s (log: {self.log})")

    def stop(self) -> bool:
        pid = self.pid()
        if pid is None:
            return False
        os.killpg(pid, signal.SIGTERM)
        for _ in range(100):
            if self.pid() is None:
                break
            time.sleep(0.1)
        else:
            os.killpg(pid, signal.SIGKILL)
        self.pidfile.unlink(missing_ok=True)
        return True


def stack_document(source: Path, url: str) -> dict[str, object]:
    """The local stack's config: the users and indexes of ``source`` (the dev stack file), served by
    the local server (registry-only shape: no host, no container)."""
    doc = yaml.safe_load(source.read_text()) or {}
    config = doc.get("config") or {}
    keep = {f"{PROJECT}:users", f"{PROJECT}:indexes"}
    out: dict[str, object] = {k: v for k, v in config.items() if k in keep}
    out[f"{PROJECT}:serverUrl"] = url
    return {"config": out}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m components.localstack", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status", "stack-file"))
    parser.add_argument("--folder", type=Path, default=Path(".local/devpi"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("DEVPI_LOCAL_PORT", DEFAULT_PORT)))
    parser.add_argument("--source", type=Path, default=Path("Pulumi.dev.yaml"))
    parser.add_argument("--output", type=Path, default=Path("Pulumi.local.yaml"))
    parser.add_argument("--password-file", type=Path, help="start: where to write a newly generated root password")
    args = parser.parse_args(argv)
    registry = LocalRegistry(args.folder.resolve(), args.port)
    if args.command == "start":
        password = registry.start()
        if password is not None and args.password_file is not None:
            args.password_file.touch(mode=0o600)
            args.password_file.write_text(password)
        print(json.dumps({"url": registry.url, "initialised": password is not None, "log": str(registry.log)}))
    elif args.command == "stop":
        print(f"devpi-server at {registry.url}: {'stopped' if registry.stop() else 'was not running'}")
    elif args.command == "status":
        print(json.dumps({"url": registry.url, "running": registry.answers()}))
        return 0 if registry.answers() else 1
    else:
        doc = stack_document(args.source, registry.url)
        if args.output.exists():  # keep what pulumi wrote (encryption salt, secrets)
            current = yaml.safe_load(args.output.read_text()) or {}
            current.setdefault("config", {}).update(doc["config"])  # type: ignore[union-attr]
            doc = current
        args.output.write_text("# The local stack (./tasks deploy): generated from Pulumi.dev.yaml; not committed.\n"
                               + yaml.safe_dump(doc, sort_keys=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
