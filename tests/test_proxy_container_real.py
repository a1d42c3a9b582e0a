"""The proxy container the stack declares, run for real beside the devpi container on one Docker
network: twine and pip work over https through it, devpi's links are https, devpi is reachable only
through the proxy (or its 127.0.0.1 publish), and a certificate rotation is a file swap plus
``nginx -s reload`` in the proxy that leaves devpi's container untouched.

Both containers come from the specs the components turn into ``docker.Container``s
(``components.server.spec.container_spec`` with ``network=``, ``components.proxy.spec.proxy_spec``),
started with their ``docker_run_args``; the host folder is written from ``proxy_files`` plus the key
at ``KEY_FILE`` (mode 600), as the host step does. One deviation: the test publishes the proxy on
127.0.0.1 (``bind_address``) instead of every address, so nothing is opened on this machine's network.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from components.devpi.client import DevpiClient
from components.proxy.spec import (
    DIR_MODES,
    KEY_FILE,
    KEY_MODE,
    ProxySettings,
    ProxySpec,
    docker_run_args,
    proxy_files,
    proxy_spec,
    reload_command,
)
from components.server.component import ServerArgs
from components.server.spec import CONTAINER_PORT, NETWORK_ALIAS, ContainerSpec, container_spec
from components.server.spec import docker_run_args as server_run_args
from tests.fixtures.docker import DockerEngine, wait_health
from tests.fixtures.nginx import write_replacing
from tests.fixtures.tls import Issued, TestCA
from tests.support import free_port, make_wheel, missing_fixture

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NAMES = ["localhost", "127.0.0.1"]
READY_TIMEOUT = 90.0
BIN = Path(sys.executable).parent
# Resolves devpi's alias and connects to devpi's address; prints what worked.
PROBE = """
import json, socket, sys
out = {}
try:
    out["resolved"] = socket.gethostbyname(sys.argv[1])
except OSError as exc:
    out["resolved"] = None
try:
    socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=3).close()
    out["connected"] = True
except OSError as exc:
    out["connected"] = False
print(json.dumps(out))
"""


@dataclass
class Deployed:
    """devpi and its proxy on one network, as the stack runs them."""

    engine: DockerEngine
    network: str
    server: ContainerSpec
    env_file: Path
    devpi_name: str
    devpi_url: str
    devpi_image: str
    root_password: str
    proxy: ProxySpec
    proxy_dir: Path
    https_url: str
    ca: Path

    def inspect(self, name: str) -> dict[str, Any]:
        return dict(json.loads(self.engine.docker("inspect", name).stdout)[0])

    def logs(self, name: str) -> str:
        proc = self.engine.docker("logs", name, check=False)
        return proc.stdout + proc.stderr


def write_proxy_folder(settings: ProxySettings, issued: Issued) -> None:
    """What the host step writes: the folders, ``proxy_files`` and the key from the secret (0600)."""
    root = Path(settings.proxy_dir)
    for folder, mode in DIR_MODES.items():
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder).chmod(mode)
    for relative, (content, mode) in proxy_files(settings, issued.chain_pem).items():
        write_replacing(root / relative, content, mode)
    write_replacing(root / KEY_FILE, issued.key_pem, KEY_MODE)


def wait_https(url: str, ca: Path, what: str, logs: Callable[[], str]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    last: object = None
    while time.monotonic() < deadline:
        try:
            resp = requests.get(url + "/+api", verify=str(ca), timeout=5, headers={"Accept": "application/json"})
            if resp.status_code == 200 and resp.json().get("type") == "apiconfig":
                return
            last = resp.status_code
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{what} not ready: {last}\n{logs()[-3000:]}")




@pytest.fixture(scope="module")
def deployed(docker_engine: DockerEngine, devpi_image: str, nginx_image: str, test_ca: TestCA,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    tag = uuid.uuid4().hex[:8]
    work = tmp_path_factory.mktemp("proxy-stack")
    network = f"devpi-registry-test-net-{tag}"
    names: list[str] = []
    docker_engine.docker("network", "create", network)
    try:
        password = "pw" + secrets.token_urlsafe(16)
        data = work / "data"
        data.mkdir(mode=0o700)
        server = container_spec(ServerArgs(
            docker_host=docker_engine.host, initial_root_password="", image=devpi_image, port=free_port(),
            bind_address="127.0.0.1", data_dir=str(data), container_name=f"devpi-registry-test-{tag}",
            network=network,
        ))
        env_file = work / "devpi.env"
        env_file.touch(mode=0o600)
        env_file.write_text(f"DEVPI_PASSWORD={password}\n")
        names.append(server.name)
        docker_engine.docker(*server_run_args(server, env_file)[1:])

        settings = ProxySettings(names=tuple(NAMES), image=nginx_image, container_name=f"devpi-registry-proxy-{tag}",
                                 proxy_dir=str(work / "proxy"), https_port=free_port(), http_port=free_port(),
                                 network=network, bind_address="127.0.0.1")
        write_proxy_folder(settings, test_ca.issue(NAMES, label=f"container-{tag}"))
        proxy = proxy_spec(settings)
        names.append(proxy.name)
        docker_engine.docker(*docker_run_args(proxy)[1:])

        result = Deployed(engine=docker_engine, network=network, server=server, env_file=env_file,
                          devpi_name=server.name,
                          devpi_url=f"http://127.0.0.1:{server.ports[0].external}", devpi_image=devpi_image,
                          root_password=password, proxy=proxy, proxy_dir=Path(settings.proxy_dir),
                          https_url=f"https://localhost:{settings.https_port}", ca=test_ca.cert_file)
        with DevpiClient(result.devpi_url, "root", password) as root:
            try:
                root.wait_ready(timeout=READY_TIMEOUT, interval=0.3)
            except Exception as exc:
                raise AssertionError(f"devpi not ready: {exc}\n{result.logs(server.name)[-3000:]}") from exc
        wait_https(result.https_url, result.ca, "the proxy", lambda: result.logs(proxy.name))
        yield result
    finally:
        for name in names:
            docker_engine.docker("rm", "--force", "--volumes", name, check=False)
        docker_engine.docker("network", "rm", network, check=False)


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        missing_fixture(f"{name} is not installed in this virtualenv (pip install -e .[test])")
    return str(path)


def run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith("PIP_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")}
    clean.update(PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
                 TWINE_NON_INTERACTIVE="1", **env)
    return subprocess.run(argv, capture_output=True, text=True, env=clean, timeout=180, check=False)


class TestRoundTripThroughTheProxyContainer:
    def test_upload_and_install_over_https(self, deployed: Deployed, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
        user, password = f"c{uuid.uuid4().hex[:8]}", "pw" + secrets.token_urlsafe(12)
        index = f"{user}/dev"
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(deployed.ca))  # how the stack's tools get the CA
        with DevpiClient(deployed.https_url, "root", deployed.root_password) as root:
            root.create_user(user, password, email=f"{user}@example.com")
            root.create_index(index, {"bases": [], "volatile": True})

        project = f"proxied-{user}"
        wheel = make_wheel(tmp_path / "dist", project, "1.0")
        upload = run([tool("twine"), "upload", "--disable-progress-bar", "--cert", str(deployed.ca),
                      "--repository-url", f"{deployed.https_url}/{index}/", str(wheel)],
                     TWINE_USERNAME=user, TWINE_PASSWORD=password)
        assert upload.returncode == 0, upload.stdout + upload.stderr

        simple = f"{deployed.https_url}/{index}/+simple/"
        got = run([sys.executable, "-m", "pip", "download", "--isolated", "--no-deps", "--no-cache-dir",
                   "-d", str(tmp_path / "got"), "--index-url", simple, "--cert", str(deployed.ca), f"{project}==1.0"])
        assert got.returncode == 0, got.stdout + got.stderr
        assert (tmp_path / "got" / wheel.name).read_bytes() == wheel.read_bytes()

        page = requests.get(f"{simple}{project}/", verify=str(deployed.ca), timeout=10)
        hrefs = [urljoin(page.url, h) for h in re.findall(r'href="([^"]+)"', page.text)]
        assert hrefs and all(h.startswith(f"{deployed.https_url}/{index}/+f/") for h in hrefs), hrefs
        assert password not in deployed.logs(deployed.proxy.name)

    def test_proxy_healthcheck_passes(self, deployed: Deployed) -> None:
        assert wait_health(deployed, deployed.proxy.name) == "healthy", deployed.logs(deployed.proxy.name)[-2000:]

    def test_proxy_container_holds_no_secret(self, deployed: Deployed) -> None:
        info = deployed.inspect(deployed.proxy.name)
        text = json.dumps({k: info[k] for k in ("Config", "HostConfig", "Args", "Path")})
        key = (deployed.proxy_dir / KEY_FILE).read_text()
        assert "PRIVATE KEY" not in text and key.splitlines()[1] not in text
        mounts = {m["Destination"]: m for m in info["Mounts"]}
        assert {d: m["RW"] for d, m in mounts.items()} == {"/etc/nginx/conf.d": False, "/etc/nginx/devpi-tls": False}
        assert (deployed.proxy_dir / KEY_FILE).stat().st_mode & 0o777 == 0o600


class TestDevpiOnlyThroughTheProxy:
    def test_devpi_is_published_on_loopback_only(self, deployed: Deployed) -> None:
        bindings = deployed.inspect(deployed.devpi_name)["HostConfig"]["PortBindings"]
        assert {b["HostIp"] for b in bindings[f"{CONTAINER_PORT}/tcp"]} == {"127.0.0.1"}, bindings

    def test_other_containers_reach_devpi_only_on_the_shared_network(self, deployed: Deployed) -> None:
        nets = deployed.inspect(deployed.devpi_name)["NetworkSettings"]["Networks"]
        address = nets[deployed.network]["IPAddress"]

        def probe(network: str) -> dict[str, object]:
            out = deployed.engine.docker("run", "--rm", "--network", network, "--entrypoint", "python",
                                         deployed.devpi_image, "-c", PROBE, NETWORK_ALIAS, address,
                                         str(CONTAINER_PORT), timeout=60).stdout
            return dict(json.loads(out.strip().splitlines()[-1]))

        # The probe works: on the shared network the alias resolves to devpi and the port answers.
        assert probe(deployed.network) == {"resolved": address, "connected": True}
        # From the default bridge (any other container on the host) neither the name nor the address.
        assert probe("bridge") == {"resolved": None, "connected": False}


class TestCertificateRotationInTheContainer:
    def test_swap_files_and_reload_devpi_untouched(self, deployed: Deployed, test_ca: TestCA) -> None:
        before = {n: deployed.inspect(n)["State"] for n in (deployed.devpi_name, deployed.proxy.name)}
        fresh = test_ca.issue(NAMES, label=f"container-rotated-{uuid.uuid4().hex[:6]}")
        port = int(deployed.https_url.rsplit(":", 1)[1])
        assert ssl.get_server_certificate(("127.0.0.1", port), timeout=10) != fresh.cert_pem

        write_replacing(deployed.proxy_dir / "tls" / "chain.pem", fresh.chain_pem, 0o644)
        write_replacing(deployed.proxy_dir / KEY_FILE, fresh.key_pem, KEY_MODE)
        deployed.engine.docker(*reload_command(deployed.proxy)[1:])

        deadline = time.monotonic() + 15
        while ssl.get_server_certificate(("127.0.0.1", port), timeout=10) != fresh.cert_pem:
            assert time.monotonic() < deadline, deployed.logs(deployed.proxy.name)[-2000:]
            time.sleep(0.2)
        after = {n: deployed.inspect(n)["State"] for n in before}
        for name, state in before.items():  # neither container restarted
            assert after[name]["StartedAt"] == state["StartedAt"] and after[name]["Pid"] == state["Pid"], name
        wait_https(deployed.https_url, deployed.ca, "the proxy after rotation", lambda: deployed.logs(deployed.proxy.name))


class TestDevpiReplacementNeedsNoProxyReload:
    def test_proxy_follows_devpi_to_its_new_address(self, deployed: Deployed) -> None:
        """An image upgrade replaces devpi's container (new address); nginx resolves the alias per
        request, so the proxy serves the new container without a reload or restart."""
        def address() -> str:
            nets = deployed.inspect(deployed.devpi_name)["NetworkSettings"]["Networks"]
            return str(nets[deployed.network]["IPAddress"])

        old, proxy_started = address(), deployed.inspect(deployed.proxy.name)["State"]["StartedAt"]
        deployed.engine.docker("rm", "--force", deployed.devpi_name)
        # Hold the freed address, so the new devpi gets another one (as after a real replacement).
        holder = f"{deployed.devpi_name}-holder"
        deployed.engine.docker("run", "--detach", "--name", holder, "--network", deployed.network,
                               "--entrypoint", "sleep", deployed.devpi_image, "120")
        try:
            deployed.engine.docker(*server_run_args(deployed.server, deployed.env_file)[1:])
            new = address()
            assert new != old, "the replacement kept its address: the test would prove nothing"
            with DevpiClient(deployed.devpi_url, "root", deployed.root_password) as root:
                root.wait_ready(timeout=READY_TIMEOUT, interval=0.3)
            wait_https(deployed.https_url, deployed.ca, "the proxy after devpi's replacement",
                       lambda: deployed.logs(deployed.proxy.name))
        finally:
            deployed.engine.docker("rm", "--force", holder, check=False)
        assert deployed.inspect(deployed.proxy.name)["State"]["StartedAt"] == proxy_started
