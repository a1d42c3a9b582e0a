"""The registry objects through the real Pulumi engine (issue 8): `pulumi up / preview / refresh /
destroy` run by the CLI this project builds, its Python language host and the dynamic-provider
plugin, with the local file backend and passphrase secrets, against a real devpi-server started as
the image starts it (`--restrict-modify root`). No mocks anywhere."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from components.devpi.client import DevpiClient
from components.devpi.errors import AuthenticationError
from tests.engine.conftest import USER_PASSWORD, configure, pip_env
from tests.engine.harness import EngineError, PulumiProject
from tests.fixtures.devpi import DevpiServer
from tests.support import make_wheel

pytestmark = [pytest.mark.engine, pytest.mark.devpi, pytest.mark.slow]
BIN = Path(sys.executable).parent


def steps_by_name(preview: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Preview steps grouped by resource name (the URN's last part)."""
    out: dict[str, list[dict[str, Any]]] = {}
    for step in preview.get("steps") or []:
        out.setdefault(step["urn"].rsplit("::", 1)[-1], []).append(step)
    return out


QUIET = {"same", "refresh"}  # `refresh` is the read step of `--refresh`; drift shows as its own step


def changed(preview: dict[str, Any]) -> dict[str, set[str]]:
    """name -> the set of step ops of every resource with a step that changes something."""
    return {name: {s["op"] for s in steps if s["op"] not in QUIET}
            for name, steps in steps_by_name(preview).items() if any(s["op"] not in QUIET for s in steps)}


def changed_inputs(step: dict[str, Any]) -> set[str]:
    """The inputs a step changes, old state against new (dynamic providers send no diff keys, so the
    engine and its `--diff` display compare the two the same way)."""
    old = (step.get("oldState") or {}).get("inputs") or {}
    new = (step.get("newState") or {}).get("inputs") or {}
    return {k for k in set(old) | set(new) if not k.startswith("__") and old.get(k) != new.get(k)}


def index_config(server: DevpiServer, name: str) -> dict[str, Any]:
    return DevpiClient(server.url).get_index(name)


# --------------------------------------------------------------------------------------------- up
def test_up_creates_the_manual_procedure_and_outputs_work(
        project: PulumiProject, fresh_devpi_server: DevpiServer, devpi_cli: Any, tmp_path: Path) -> None:
    server = fresh_devpi_server
    configure(project, server)
    project.up()

    # devpi-client sees exactly the manual procedure's objects.
    cli = devpi_cli(server)
    users = cli.getjson("/")
    assert set(users) == {"root", "build_bot"}
    assert users["build_bot"]["email"] == "build_bot@example.com"
    assert set(users["build_bot"]["indexes"]) == {"nightly", "stable", "prod"}
    nightly, stable, prod = (cli.getjson(f"/build_bot/{n}") for n in ("nightly", "stable", "prod"))
    assert nightly["volatile"] is True and nightly["bases"] == []
    assert stable["volatile"] is False and stable["bases"] == []
    assert prod["volatile"] is False and prod["bases"] == ["build_bot/stable"]

    # A second `up` changes nothing; a preview says the same.
    again = project.up()
    assert "unchanged" in again.stdout and "created" not in again.stdout.split("Resources:")[-1]
    assert changed(project.preview_json()) == {}

    # The outputs work as printed: twine with the .pypirc section, pip with the strict pip.conf.
    outputs = project.outputs()
    assert outputs["serverUrl"] == server.url
    pypirc = tmp_path / "pypirc"
    pypirc.write_text(outputs["pypirc"])
    wheel = make_wheel(tmp_path / "dist", "geek-utils", "0.1.0.dev1")
    env = {**pip_env(), "TWINE_PASSWORD": USER_PASSWORD, "TWINE_NON_INTERACTIVE": "1"}
    upload = subprocess.run([str(BIN / "twine"), "upload", "--config-file", str(pypirc), "-r", "nightly",
                             "-u", "build_bot", str(wheel)], capture_output=True, text=True, env=env, timeout=120)
    assert upload.returncode == 0, upload.stdout + upload.stderr
    pipconf = tmp_path / "pip.conf"
    pipconf.write_text(outputs["pipConf"])
    assert "index-url" in outputs["pipConf"] and "extra-index-url" not in outputs["pipConf"]
    target = tmp_path / "installed"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-cache-dir", "--target", str(target),
         "geek-utils==0.1.0.dev1"],
        capture_output=True, text=True, env={**pip_env(), "PIP_CONFIG_FILE": str(pipconf)}, timeout=180)
    assert install.returncode == 0, install.stdout + install.stderr
    assert (target / "geek_utils" / "__init__.py").read_text().startswith('__version__ = "0.1.0.dev1"')
    # Strict: nothing but the private index is consulted.
    assert "pypi.org" not in install.stdout + install.stderr


# ---------------------------------------------------------------------------------------- preview
def test_preview_json_shows_exactly_the_config_edits_and_sends_no_request(
        project: PulumiProject, fresh_devpi_server: DevpiServer, proxy_to: Any) -> None:
    server = fresh_devpi_server
    proxy = proxy_to(server.url)
    config = configure(project, server, proxy.url)
    project.up()
    indexes = config["indexes"]
    edited = [
        {**indexes[0], "name": "build_bot/nightly2"},          # rename: replace
        {**indexes[1], "volatile": True, "allowVolatile": True},  # flip volatile (stable-named: opt-out)
        {**indexes[2], "bases": []},                            # change bases
        {"name": "build_bot/experimental", "volatile": True},  # add
    ]
    project.write_config({"indexes": edited})
    before = len(proxy.requests)
    preview = project.preview_json()
    assert proxy.requests[before:] == [], "pulumi preview must not talk to devpi"

    steps = steps_by_name(preview)
    ops = changed(preview)
    # A rename is a new resource (the name is devpi's identity): create the new, delete the old.
    assert ops == {
        "devpi-index-build_bot-nightly": {"delete"},
        "devpi-index-build_bot-nightly2": {"create"},
        "devpi-index-build_bot-stable": {"update"},
        "devpi-index-build_bot-prod": {"update"},
        "devpi-index-build_bot-experimental": {"create"},
    }, ops
    (stable_step,) = steps["devpi-index-build_bot-stable"]
    assert changed_inputs(stable_step) == {"volatile"}
    (prod_step,) = steps["devpi-index-build_bot-prod"]
    assert changed_inputs(prod_step) == {"bases"}
    assert prod_step["newState"]["inputs"]["bases"] == []
    (created,) = steps["devpi-index-build_bot-experimental"]
    assert created["newState"]["inputs"]["volatile"] is True
    assert created["newState"]["inputs"]["bases"] == []
    (renamed,) = steps["devpi-index-build_bot-nightly2"]
    assert renamed["newState"]["inputs"]["name"] == "nightly2"
    # Nothing else would change: users, root, latch stay.
    assert all(s["op"] == "same" for name, ss in steps.items() if "index" not in name for s in ss)


# ------------------------------------------------------------------------------------------ drift
def test_drift_made_by_hand_is_reported_then_converged(
        project: PulumiProject, fresh_devpi_server: DevpiServer, devpi_cli: Any) -> None:
    server = fresh_devpi_server
    configure(project, server)
    project.up()
    cli = devpi_cli(server)
    cli.run("index", "build_bot/nightly", "volatile=False")
    cli.run("index", "build_bot/prod", "volatile=True")  # devpi deletes only volatile indexes
    cli.run("index", "--delete", "-y", "build_bot/prod")
    cli.run("user", "-m", "build_bot", "email=someone-else@example.com")

    # The drift workflow: `pulumi preview --refresh --expect-no-changes` fails...
    drift = project.run("preview", "--refresh", "--expect-no-changes", "--stack", project.stack, check=False)
    assert drift.returncode != 0
    # ...and `pulumi refresh` reports each drifted object, with the property that drifted.
    refresh = project.run("refresh", "--preview-only", "--stack", project.stack).stdout
    nightly = next(line for line in refresh.splitlines() if "devpi-index-build_bot-nightly" in line and "diff" in line)
    assert "~volatile" in nightly
    user = next(line for line in refresh.splitlines() if "devpi-user-build_bot" in line and "diff" in line)
    assert "~email" in user
    prod = [line for line in refresh.splitlines() if "devpi-index-build_bot-prod" in line]
    assert any(line.lstrip().startswith("-") and "delete" in line for line in prod), prod

    project.up("--refresh")
    assert index_config(server, "build_bot/nightly")["volatile"] is True
    assert index_config(server, "build_bot/prod")["bases"] == ["build_bot/stable"]
    assert DevpiClient(server.url).get_user("build_bot")["email"] == "build_bot@example.com"
    project.run("preview", "--refresh", "--expect-no-changes", "--stack", project.stack)


# --------------------------------------------------------------------------------------- rotation
def test_root_password_rotation_with_up_and_with_up_refresh(
        project: PulumiProject, fresh_devpi_server: DevpiServer) -> None:
    server = fresh_devpi_server
    configure(project, server)
    project.up()
    first, second = "rotated-Once-123", "rotated-Twice-456"

    project.set_secret("rootPassword", first)
    # The PR workflow previews with refresh while the rotation is pending: it must work.
    project.run("preview", "--refresh", "--stack", project.stack)
    project.up()
    DevpiClient(server.url, "root", first).check_credentials()
    with pytest.raises(AuthenticationError):
        DevpiClient(server.url, "root", server.root_password).login()

    project.set_secret("rootPassword", second)
    project.up("--refresh")
    DevpiClient(server.url, "root", second).check_credentials()
    with pytest.raises(AuthenticationError):
        DevpiClient(server.url, "root", first).login()
    assert changed(project.preview_json("--refresh")) == {}


# ------------------------------------------------------------------------------------ data safety
def test_destroy_refuses_an_index_with_a_package_until_force_destroy(
        project: PulumiProject, fresh_devpi_server: DevpiServer, tmp_path: Path) -> None:
    server = fresh_devpi_server
    config = configure(project, server)
    project.up()
    bot = DevpiClient(server.url, "build_bot", USER_PASSWORD)
    wheel = make_wheel(tmp_path / "dist", "geek-utils", "0.1.0")
    bot.upload("build_bot/stable", wheel, name="geek-utils", version="0.1.0")

    refused = project.destroy(check=False)
    assert refused.returncode != 0
    out = refused.stdout + refused.stderr
    assert "refusing to delete devpi index 'build_bot/stable'" in out and "geek-utils" in out
    # The package and the state agree: stable (and its owner) still exist in both.
    assert bot.list_projects("build_bot/stable") == ["geek-utils"]
    left = project.resources()
    assert "devpi-index-build_bot-stable" in left and "devpi-user-build_bot" in left
    assert set(DevpiClient(server.url).list_users()) >= {"build_bot"}

    indexes = [{**ix, "forceDestroy": True} if ix["name"] == "build_bot/stable" else ix for ix in config["indexes"]]
    project.write_config({"indexes": indexes})
    project.up()
    project.destroy()
    assert "build_bot" not in DevpiClient(server.url).list_users()
    assert [k for k in project.resources() if k.startswith("devpi-")] == []


# ------------------------------------------------------------------------------------------ adopt
def test_adopting_a_registry_made_by_hand(
        project: PulumiProject, fresh_devpi_server: DevpiServer, devpi_cli: Any) -> None:
    server = fresh_devpi_server
    cli = devpi_cli(server)
    # The manual procedure, typed by hand.
    cli.run("user", "-c", "build_bot", "password=made-by-hand", "email=old@example.com")
    cli.run("index", "-c", "build_bot/nightly", "volatile=True")
    cli.run("index", "-c", "build_bot/stable", "volatile=False")
    cli.run("index", "-c", "build_bot/prod", "bases=build_bot/stable", "volatile=False")

    config = configure(project, server)
    conflict = project.up(check=False)
    assert conflict.returncode != 0
    assert "devpi user 'build_bot' already exists" in conflict.stdout + conflict.stderr
    assert "adopt" in conflict.stdout + conflict.stderr

    project.write_config({
        "users": [{**u, "adopt": True} for u in config["users"]],
        "indexes": [{**ix, "adopt": True} for ix in config["indexes"]],
    })
    project.up()
    assert DevpiClient(server.url).get_user("build_bot")["email"] == "build_bot@example.com"
    DevpiClient(server.url, "build_bot", USER_PASSWORD).check_credentials()
    assert changed(project.preview_json("--refresh")) == {}


# ---------------------------------------------------------------------------------------- secrets
def test_no_plaintext_secret_in_state_diff_output_or_engine_logs(
        project: PulumiProject, fresh_devpi_server: DevpiServer, tmp_path: Path) -> None:
    server = fresh_devpi_server
    configure(project, server)
    logs = tmp_path / "engine-logs"
    logs.mkdir()
    verbose = ("--logflow", "-v=9", "--logtostderr=false")
    env_before = dict(project.env)
    project.env["TMPDIR"] = str(logs)  # glog writes its files there
    up = project.run("up", "--yes", "--diff", "--stack", project.stack, *verbose)
    project.set_secret("rootPassword", "rotated-Secret-789")
    diff = project.run("preview", "--diff", "--stack", project.stack, *verbose)
    project.env = env_before
    export = json.dumps(project.export())
    secrets = (server.root_password, USER_PASSWORD, "rotated-Secret-789")
    texts = {"stack export": export, "up --diff": up.stdout + up.stderr,
             "preview --diff": diff.stdout + diff.stderr}
    texts.update({f"log {p.name}": p.read_text(errors="replace") for p in logs.rglob("*") if p.is_file()})
    assert any(name.startswith("log ") for name in texts), "the engine wrote no log file"
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"a password appears in plain text in {name}"
    assert "[secret]" in diff.stdout


# ------------------------------------------------------------------------------------ two stacks
def test_two_stacks_of_one_project_keep_separate_state_and_outputs(
        project: PulumiProject, devpi_server: DevpiServer, fresh_devpi_server: DevpiServer) -> None:
    dev = project
    configure(dev, devpi_server, user="devbot")
    prod = dev.select("prod")
    configure(prod, fresh_devpi_server, user="prodbot")
    dev.up()
    prod.up()
    assert dev.outputs()["serverUrl"] == devpi_server.url
    assert prod.outputs()["serverUrl"] == fresh_devpi_server.url
    assert "devbot/nightly" in dev.outputs()["indexes"] and "prodbot/nightly" not in dev.outputs()["indexes"]
    assert all("devbot" not in name for name in prod.resources())
    prod.destroy()
    assert "prodbot" not in DevpiClient(fresh_devpi_server.url).list_users()
    assert "devbot" in DevpiClient(devpi_server.url).list_users()
    assert changed(dev.preview_json("--refresh")) == {}
    dev.destroy()


def test_engine_error_carries_the_output() -> None:
    # The harness's own error must say what the engine printed (used by every test above).
    err = EngineError(["up"], subprocess.CompletedProcess(["pulumi"], 1, "some stdout", "some stderr"))
    assert "some stdout" in str(err) and "some stderr" in str(err) and "exited 1" in str(err)
