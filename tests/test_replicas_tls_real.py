"""A replica behind HTTPS following a primary behind HTTPS, with a private CA (issues 11 and 12).

Real processes on loopback: the primary devpi-server (``--role primary``, shared secret) behind real
nginx with the stack's rendered site; a replica started with the replica container's own command
for an ``https://`` primary URL — its environment is the spec's, so the private CA is trusted only
through the ``REQUESTS_CA_BUNDLE=<secret folder>/ca.pem`` the spec sets (the machine's own bundle
variables are removed) — and behind its own nginx. An upload to the primary over https becomes
installable with real pip from the replica's https URL, and the replica's links are https.

The test process itself keeps this machine's ``REQUESTS_CA_BUNDLE`` (a bundle without the test CA):
the readiness gate must trust the stack's CA anyway. It did not while it set the CA on its session
(requests lets the environment win over a session's ``verify``); that is the regression kept here.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from components.devpi.client import DevpiClient
from components.providers.replica import wait_replica
from components.server.component import ServerArgs
from components.server.spec import CA_FILE, SERVER_DIR, SERVERDIR_ENV, container_spec, replica_argv
from tests.fixtures.nginx import TlsProxy, start_tls_proxy
from tests.fixtures.replicas import BIN, FAST_ARGON2, INDEX, Cluster, Node, localize, start_cluster
from tests.fixtures.tls import TestCA
from tests.support import free_port, make_wheel

pytestmark = pytest.mark.devpi

NO_AMBIENT_CA = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR")


@pytest.fixture(scope="module")
def https_pair(tmp_path_factory: pytest.TempPathFactory, test_ca: TestCA
               ) -> Iterator[tuple[Cluster, TlsProxy, Node, TlsProxy]]:
    base = tmp_path_factory.mktemp("replicas-tls")
    issued = test_ca.issue(["localhost", "127.0.0.1"], label="replicas-tls")
    cluster = start_cluster(base, replicas=())
    proxies: list[TlsProxy] = []
    try:
        primary_proxy = start_tls_proxy(base / "nginx-primary", cluster.primary.port, issued)
        proxies.append(primary_proxy)
        primary_url = primary_proxy.https_url.rstrip("/")
        # the host step writes the CA beside the secret (the folder the container mounts read-only)
        secret_dir = cluster.secret_file.parent
        (secret_dir / "ca.pem").write_text(test_ca.cert_pem)
        serverdir = base / "replica"
        spec = container_spec(ServerArgs(
            docker_host="unix:///var/run/docker.sock", data_dir=str(serverdir), secret_dir=str(secret_dir),
            primary_url=primary_url, trust_ca_file=True, extra_server_args=FAST_ARGON2))
        env = dict(spec.env)
        assert env.pop(SERVERDIR_ENV) == SERVER_DIR
        assert env.pop("REQUESTS_CA_BUNDLE") == CA_FILE, "the spec trusts the CA in the secret folder"
        port = free_port()
        base_env = {k: v for k, v in os.environ.items() if k not in NO_AMBIENT_CA}
        node = Node("replica", serverdir, port,
                    localize(replica_argv(spec), port=port, secret_file=cluster.secret_file),
                    {**base_env, **env, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                     SERVERDIR_ENV: str(serverdir), "REQUESTS_CA_BUNDLE": str(secret_dir / "ca.pem")},
                    base / "replica.log")
        cluster.replicas["replica"] = node
        node.start(timeout=120)
        replica_proxy = start_tls_proxy(base / "nginx-replica", port, issued)
        proxies.append(replica_proxy)
        yield cluster, primary_proxy, node, replica_proxy
    finally:
        for proxy in proxies:
            proxy.stop()
        cluster.stop()


def test_replica_follows_an_https_primary_and_serves_installs_over_https(
        https_pair: tuple[Cluster, TlsProxy, Node, TlsProxy], test_ca: TestCA, tmp_path: Path) -> None:
    cluster, primary_proxy, node, replica_proxy = https_pair
    primary_url = primary_proxy.https_url.rstrip("/")
    replica_url = replica_proxy.https_url.rstrip("/")
    # the readiness gate over https with the stack's CA: a replica of this primary, caught up
    state = wait_replica(replica_url, primary_url, max_lag=0, ready_timeout=120, ca_bundle=test_ca.cert_pem)
    assert state.lag == 0, node.log()[-2000:]
    assert node.status()["primary-url"].startswith("https://"), node.status()

    wheel = make_wheel(tmp_path / "dist", "tls-replicated", "1.0.0")
    with DevpiClient(primary_url, "alice", cluster.alice_password, ca_bundle=test_ca.cert_pem) as alice:
        alice.upload(INDEX, wheel, name="tls-replicated", version="1.0.0")
    wait_replica(replica_url, primary_url, max_lag=0, ready_timeout=60, ca_bundle=test_ca.cert_pem)

    page = f"{replica_url}/{INDEX}/+simple/tls-replicated/"
    html = requests.get(page, verify=str(test_ca.cert_file), timeout=30).text
    links = [urljoin(page, h) for h in re.findall(r'href="([^"]+)"', html)]
    assert links and all(link.startswith(f"{replica_url}/{INDEX}/+f/") for link in links), links

    env = {k: v for k, v in os.environ.items() if k not in NO_AMBIENT_CA and not k.startswith("PIP_")}
    target = tmp_path / "dl"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir", "--isolated", "-d", str(target),
         "--cert", str(test_ca.cert_file), "--index-url", f"{replica_url}/{INDEX}/+simple/", "tls-replicated==1.0.0"],
        capture_output=True, text=True, env=env, timeout=180)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert [p.name for p in target.iterdir()] == [wheel.name]
    assert (target / wheel.name).read_bytes() == wheel.read_bytes()
