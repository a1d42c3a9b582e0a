"""Helpers every test module shares: the CI rule for missing fixtures, free ports, package builders."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import zipfile
from pathlib import Path

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_fixture(reason: str) -> None:
    """Skip on a developer laptop, fail under CI=true: a real-server test must never silently skip in CI."""
    if IN_CI:
        pytest.fail(f"CI=true and a required test fixture is missing: {reason}", pytrace=False)
    pytest.skip(reason)


def stop_process(proc: subprocess.Popen[bytes] | subprocess.Popen[str]) -> int | None:
    """Stop a server the tests started: SIGTERM, then SIGKILL after 10 s; returns its exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def is_root() -> bool:
    return os.geteuid() == 0


def make_wheel(directory: Path, name: str, version: str, payload: str = "") -> Path:
    """Write a minimal valid wheel (no build backend needed): enough for devpi, pip and twine.

    ``payload`` changes the module body, so two wheels of the same name/version can differ in bytes.
    """
    dist = name.replace("-", "_")
    filename = f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": f'__version__ = "{version}"\n{payload}',
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: test package\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: devpi-registry-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    import base64
    import hashlib

    record = []
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for path, text in files.items():
            data = text.encode()
            zi = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            zf.writestr(zi, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        record.append(f"{info}/RECORD,,")
        zf.writestr(zipfile.ZipInfo(f"{info}/RECORD", date_time=(2026, 1, 1, 0, 0, 0)), "\n".join(record) + "\n")
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / filename
    out.write_bytes(buf.getvalue())
    return out
