"""--timeout bounds the whole wait for a server that does not answer, retries included: a server that
hangs is reported as timed out (and after how long), one that is down costs --timeout, not ~16 s.
Real sockets: a loopback listener that accepts and never answers, and a closed port."""

from __future__ import annotations

import io
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.devpi.client import DevpiClient, RetryPolicy
from components.devpi.errors import ServerUnreachableError
from components.lifecycle.cli import main
from tests.fixtures.silent import SilentServer
from tests.support import free_port

CLI = [sys.executable, "-m", "components.lifecycle"]
ROOT = Path(__file__).resolve().parent.parent


def timed_main(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, float]:
    err = io.StringIO()
    t0 = time.monotonic()
    code = main(argv, out=io.StringIO(), err=err, stdin=io.StringIO(), env=env or {})
    return code, err.getvalue(), time.monotonic() - t0


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


class TestHangingServer:
    @pytest.mark.parametrize("argv", [["status"], ["du"], ["du", "--index", "build_bot/nightly"]])
    def test_is_reported_as_timed_out_after_the_timeout(self, silent_server: SilentServer, argv: list[str]) -> None:
        code, err, took = timed_main([*argv, "--url", silent_server.url, "--timeout", "1.5"])
        line = one_line(err)
        assert code == 1
        assert 1.4 <= took < 3.0, took
        assert re.search(r"timed out after 1\.\d s", line), line
        assert "no answer within 1.5 s" in line and silent_server.url in line
        assert "refused" not in line and "reset" not in line

    def test_commands_that_log_in_are_bounded_too(self, silent_server: SilentServer) -> None:
        code, err, took = timed_main(["remove", "geek-utils==1.0", "--index", "build_bot/nightly", "--yes",
                                      "--url", silent_server.url, "--user", "build_bot", "--timeout", "1"],
                                     env={"DEVPI_PASSWORD": "pw-not-shown-QQQ"})
        line = one_line(err)
        assert code == 1 and 0.9 <= took < 2.5, took
        assert "timed out after" in line and "pw-not-shown-QQQ" not in line

    def test_client_without_a_budget_says_timed_out_too(self, silent_server: SilentServer) -> None:
        # urllib3 hands a read timeout of a GET over as MaxRetryError, which requests turns into a
        # ConnectionError: it used to read "connection refused or reset"
        client = DevpiClient(silent_server.url, timeout=1)
        with pytest.raises(ServerUnreachableError, match=r"timed out after 1\.\d s: .* no answer within 1 s"):
            client.status()


class TestServerDown:
    def test_down_server_costs_the_timeout_not_16_seconds(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        code, err, took = timed_main(["du", "--url", url, "--timeout", "2"])
        line = one_line(err)
        assert code == 1
        assert 1.5 <= took < 3.5, took  # retried until the budget ran out, then gave up
        assert "unreachable: connection refused or reset" in line
        assert re.search(r"gave up after [12]\.\d s", line), line

    def test_short_timeout_is_short(self) -> None:
        url = f"http://127.0.0.1:{free_port()}"
        code, err, took = timed_main(["status", "--url", url, "--timeout", "0.5"])
        assert code == 1 and took < 1.5, took
        assert "unreachable" in one_line(err)

    def test_cli_process_is_bounded_end_to_end(self, silent_server: SilentServer) -> None:
        """The console entry point as a user runs it: wall time of the whole process."""
        for url, words in ((f"http://127.0.0.1:{free_port()}", "unreachable"), (silent_server.url, "timed out after")):
            t0 = time.monotonic()
            proc = subprocess.run([*CLI, "status", "--url", url, "--timeout", "2"], capture_output=True, text=True,
                                  cwd=ROOT, timeout=60, check=False, stdin=subprocess.DEVNULL)
            took = time.monotonic() - t0
            assert proc.returncode == 1 and took < 2 + 4, (took, proc.stderr)  # 4 s: interpreter start-up
            assert words in one_line(proc.stderr) and "Traceback" not in proc.stderr


def test_retry_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="budget"):
        RetryPolicy(budget=0)
    with pytest.raises(ValueError, match="timeout"):
        DevpiClient("http://127.0.0.1:1", timeout=0)


def test_help_and_readme_say_what_timeout_bounds() -> None:
    proc = subprocess.run([*CLI, "status", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          check=False)
    help_text = " ".join(proc.stdout.split())
    assert "--timeout SECONDS" in help_text and "retries included" in help_text
    assert "per HTTP request" not in help_text
    readme = " ".join((ROOT / "README.md").read_text().split())
    assert "`--timeout SECONDS` (default 30) bounds every wait for the server, retries" in readme
