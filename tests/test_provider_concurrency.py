"""Many resources at once through the real provider host (4 worker threads on one provider instance).

The engine issues Create/Read/Delete for independent resources in parallel; the shared provider must
keep per-call state only, and the process-wide token cache must make it one login, not fifty.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from components.devpi.client import DevpiClient, RetryPolicy
from components.providers.base import SessionPool
from components.providers.index import DevpiIndexProvider
from tests.fixtures.devpi import DevpiServer
from tests.fixtures.provider_host import ProviderHost, configured, from_struct, provider_prop

pytestmark = pytest.mark.devpi

N = 50


def logins(server: DevpiServer) -> int:
    return server.log_path.read_text(errors="replace").count("POST /+login")


def test_fifty_parallel_creates_reads_deletes_with_one_login(provider_host: ProviderHost, devpi_server: DevpiServer,
                                                             unique: str) -> None:
    owner = f"par{unique}"
    DevpiClient(devpi_server.url, "root", devpi_server.root_password).create_user(owner, "pw")
    prov = provider_prop(DevpiIndexProvider())
    inputs = [from_struct(provider_host.check({}, {"__provider": prov, "owner": owner, "name": f"i{i}",
                                                   "volatile": i % 2 == 0}).inputs) for i in range(N)]
    before = logins(devpi_server)

    with ThreadPoolExecutor(max_workers=16) as pool:
        created = list(pool.map(provider_host.create, inputs))
        ids = sorted(c.id for c in created)
        assert ids == sorted(f"{owner}/i{i}" for i in range(N))
        outs = {c.id: from_struct(c.properties) for c in created}
        reads = list(pool.map(lambda i: provider_host.read(i, outs[i]), ids))
        assert all(r.id == i for r, i in zip(reads, ids, strict=True))

        indexes = DevpiClient(devpi_server.url).get_user(owner)["indexes"]
        assert sorted(indexes) == sorted(f"i{i}" for i in range(N))
        assert all(indexes[f"i{i}"]["volatile"] is (i % 2 == 0) for i in range(N))

        def delete(id_: str) -> Any:
            provider_host.delete(id_, outs[id_])

        list(pool.map(delete, ids))

    assert DevpiClient(devpi_server.url).get_user(owner)["indexes"] == {}
    assert logins(devpi_server) - before == 1, "one login per provider process"


def test_session_pool_keeps_one_session_per_thread_and_policy() -> None:
    pool = SessionPool()
    mine = pool.session(RetryPolicy())
    assert pool.session(RetryPolicy()) is mine, "the same thread gets its keep-alive session back"
    assert pool.session(RetryPolicy(attempts=0)) is not mine, "another retry policy, another session"
    with ThreadPoolExecutor(max_workers=1) as other:
        theirs = other.submit(pool.session, RetryPolicy()).result()
    assert theirs is not mine, "requests.Session is not thread-safe: never shared across threads"
    pool.close()
    assert pool.session(RetryPolicy()) is not mine, "close() forgets this thread's sessions"
    pool.close()


def test_a_pooled_client_leaves_the_session_open(devpi_server: DevpiServer) -> None:
    p = configured(DevpiIndexProvider, devpi_server)
    with p.anonymous_client() as first:
        first.list_users()
    with p.anonymous_client() as second:
        assert second.session is first.session
        assert "root" in second.list_users()
