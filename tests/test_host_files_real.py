"""The files steps (devpi's secret, the proxy's files) executed over real SSH on the fake RHEL host.

Each test runs the exact command string HostSetup hands to pulumi-command, with the payload on stdin
as pulumi-command sends it (``files_payload``), then checks the files on the host: owner root, the
declared modes, 0700 folders, atomic replacement (a new inode, no temporary file left), "unchanged"
on a re-run, and no content in any output. The proxy's reload hook runs against a recording fake
``docker`` (mounted over ``/usr/local/sbin``, the real CLI hidden) whose container state the test
sets; SELinux labelling runs against the recording SELinux fakes of tests/test_host_real.py.
"""

from __future__ import annotations

import base64
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.host.scripts import (
    PAYLOAD_END,
    PAYLOAD_HEADER,
    RELOAD_PENDING,
    HostPlan,
    Step,
    fcontext_spec,
    files_payload,
    proxy_file_specs,
    render_steps,
)
from tests.fixtures.sshd import SUDO_USER, FakeHost, FakeHostFactory, RemoteResult
from tests.test_host_real import SelinuxFakes, docker_binaries

pytestmark = [pytest.mark.sshd]

CONF = "conf.d/devpi.conf"
CHAIN = "tls/chain.pem"
KEY = "tls/key.pem"
PLAIN_MODES = {CONF: 0o644, CHAIN: 0o644}


def new_secret() -> str:
    """What the stack's generated secret looks like: 32 random bytes, base64 (44 characters)."""
    return base64.b64encode(secrets.token_bytes(32)).decode()


def fake_key() -> str:
    return "-----BEGIN PRIVATE KEY-----\n" + new_secret() + "\n-----END PRIVATE KEY-----\n"


def proxy_payload(conf: str, chain: str, key: str) -> str:
    return files_payload({CONF: (conf, 0o644), CHAIN: (chain, 0o644), KEY: (key, 0o600)})


def plan_for(workdir: Path, user: str = "root", container: str = "devpi-proxy") -> HostPlan:
    return HostPlan(user=user, data_dir=str(workdir / "data"), secret_dir=str(workdir / "secret"),
                    proxy_dir=str(workdir / "proxy"), proxy_files=proxy_file_specs(PLAIN_MODES),
                    proxy_container_name=container)


def step(plan: HostPlan, name: str) -> Step:
    return {s.name: s for s in render_steps(plan)}[name]


def run(host: FakeHost, plan: HostPlan, name: str, payload: str = "", kind: str = "create") -> RemoteResult:
    command = getattr(step(plan, name), kind)
    assert command is not None
    return host.run_remote(command, payload.encode(), user=plan.user)


def ok(result: RemoteResult) -> RemoteResult:
    assert result.returncode == 0, str(result)
    return result


def failed(result: RemoteResult) -> RemoteResult:
    assert result.returncode != 0, str(result)
    return result


def meta(path: Path) -> tuple[int, int, int]:
    st = path.lstat()
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def identity(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_ino, st.st_mtime_ns


def assert_never_shown(result: RemoteResult, *contents: str) -> None:
    for content in contents:
        for shown in (content, content.strip(), base64.b64encode(content.encode()).decode()):
            assert shown not in result.output, "file content appeared in the step's output"


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    """A folder root and the sudo test user can both traverse (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="devpi-files-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------ secret

class TestSecretFile:
    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_written_0600_root_then_unchanged(self, fake_rhel_host: FakeHost, user: str) -> None:
        plan = plan_for(fake_rhel_host.workdir, user)
        folder = Path(plan.secret_dir or "")
        secret = new_secret()
        first = ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (secret, 0o600)})))
        assert f"secret: {folder}/secret: updated (written; mode 600, owner root)" in first.stdout
        assert (folder / "secret").read_text() == secret
        assert meta(folder / "secret") == (0o600, 0, 0)
        assert meta(folder) == (0o700, 0, 0)
        assert_never_shown(first, secret)
        before = identity(folder / "secret")

        second = ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (secret, 0o600)})))
        assert f"secret: {folder}/secret: unchanged" in second.stdout
        assert f"secret {folder}: nothing changed (1 file(s) as declared)" in second.stdout
        assert identity(folder / "secret") == before, "an unchanged file is not rewritten"

    def test_devpi_server_accepts_the_written_file(self, fake_rhel_host: FakeHost) -> None:
        """The file passes devpi-server 6.20.3's own --secretfile checks (mode, folder, length)."""
        from devpi_server.config import get_pluginmanager, parseoptions

        plan = plan_for(fake_rhel_host.workdir)
        secret = new_secret()
        ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (secret, 0o600)})))
        config = parseoptions(get_pluginmanager(), [
            "devpi-server", "--secretfile", f"{plan.secret_dir}/secret",
            "--serverdir", str(fake_rhel_host.workdir / "serverdir")])
        assert config.get_validated_secret() == secret.encode()

    def test_new_secret_replaces_the_file_atomically(self, fake_rhel_host: FakeHost) -> None:
        plan = plan_for(fake_rhel_host.workdir)
        folder = Path(plan.secret_dir or "")
        old, new = new_secret(), new_secret()
        ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (old, 0o600)})))
        inode = (folder / "secret").stat().st_ino
        out = ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (new, 0o600)})))
        assert f"{folder}/secret: updated (content replaced; mode 600, owner root)" in out.stdout
        assert (folder / "secret").read_text() == new
        assert (folder / "secret").stat().st_ino != inode, "replaced by a rename, not rewritten in place"
        assert sorted(p.name for p in folder.iterdir()) == ["secret"], "no temporary file left"
        assert_never_shown(out, old, new)

    def test_update_command_is_the_same_script(self, fake_rhel_host: FakeHost) -> None:
        plan = plan_for(fake_rhel_host.workdir)
        secret = new_secret()
        ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (secret, 0o600)})))
        out = ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (secret, 0o600)}), "update"))
        assert "nothing changed" in out.stdout

    def test_wrong_mode_owner_and_folder_are_fixed(self, fake_rhel_host: FakeHost) -> None:
        plan = plan_for(fake_rhel_host.workdir)
        folder = Path(plan.secret_dir or "")
        secret = new_secret()
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)
        (folder / "secret").write_text(secret)
        (folder / "secret").chmod(0o644)
        os.chown(folder / "secret", 4242, 4242)
        out = ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (secret, 0o600)}))).stdout
        assert "updated (mode/owner was 644 4242:4242; mode 600, owner root)" in out
        assert f"{folder} mode 755 -> 700" in out
        assert meta(folder / "secret") == (0o600, 0, 0)
        assert meta(folder) == (0o700, 0, 0)

    def test_a_symlink_in_place_of_the_file_is_replaced_not_followed(self, fake_rhel_host: FakeHost) -> None:
        plan = plan_for(fake_rhel_host.workdir)
        folder = Path(plan.secret_dir or "")
        folder.mkdir(mode=0o700)
        victim = fake_rhel_host.workdir / "victim"
        victim.write_text("must stay")
        (folder / "secret").symlink_to(victim)
        ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (new_secret(), 0o600)})))
        assert victim.read_text() == "must stay"
        assert not (folder / "secret").is_symlink()
        assert meta(folder / "secret") == (0o600, 0, 0)

    def test_replica_ca_bundle_lands_beside_the_secret(self, fake_rhel_host: FakeHost) -> None:
        plan = HostPlan(secret_dir=str(fake_rhel_host.workdir / "secret"), secret_ca=True)
        folder = Path(plan.secret_dir or "")
        ca, secret = "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n", new_secret()
        payload = files_payload({"ca.pem": (ca, 0o644), "secret": (secret, 0o600)})
        out = ok(run(fake_rhel_host, plan, "secret", payload)).stdout
        assert f"{folder}/ca.pem: updated (written; mode 644, owner root)" in out
        assert (folder / "ca.pem").read_text() == ca and meta(folder / "ca.pem") == (0o644, 0, 0)
        assert meta(folder / "secret") == (0o600, 0, 0)
        # a payload without the CA is refused: the step writes both or nothing
        refused = failed(run(fake_rhel_host, plan, "secret", files_payload({"secret": (secret, 0o600)})))
        assert "ca.pem: missing from the payload; nothing changed" in refused.stderr

    def test_delete_removes_the_secret_only(self, fake_rhel_host: FakeHost) -> None:
        plan = plan_for(fake_rhel_host.workdir)
        folder = Path(plan.secret_dir or "")
        data = Path(plan.data_dir)
        data.mkdir()
        (data / "packages.db").write_text("packages")
        ok(run(fake_rhel_host, plan, "secret", files_payload({"secret": (new_secret(), 0o600)})))
        out = ok(run(fake_rhel_host, plan, "secret", kind="delete")).stdout
        assert f"secret {folder}: folder kept, files removed: secret removed" in out
        assert folder.is_dir() and list(folder.iterdir()) == []
        assert (data / "packages.db").read_text() == "packages"
        again = ok(run(fake_rhel_host, plan, "secret", kind="delete")).stdout
        assert "no files left to remove; nothing changed" in again


# ------------------------------------------------------------------------------------------ payload guard

def _lines(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


GOOD = base64.b64encode(b"A" * 44).decode()
BAD_PAYLOADS = {
    "empty stdin": ("", "stdin does not start with 'devpi-registry-files 1'"),
    "no header": (_lines(f"secret\t600\t{GOOD}", PAYLOAD_END), "stdin does not start with"),
    "cut short": (_lines(PAYLOAD_HEADER, f"secret\t600\t{GOOD}"), "ends before its 'end' line"),
    "missing file": (_lines(PAYLOAD_HEADER, PAYLOAD_END), "secret: missing from the payload"),
    "unknown file": (_lines(PAYLOAD_HEADER, f"../../etc/passwd\t600\t{GOOD}", PAYLOAD_END),
                     "payload line 2 names a file this step does not write"),
    "other mode": (_lines(PAYLOAD_HEADER, f"secret\t644\t{GOOD}", PAYLOAD_END),
                   "secret: payload entry malformed (mode '644', this step writes mode 600)"),
    "extra field": (_lines(PAYLOAD_HEADER, f"secret\t600\t{GOOD}\tmore", PAYLOAD_END), "payload entry malformed"),
    "twice": (_lines(PAYLOAD_HEADER, f"secret\t600\t{GOOD}", f"secret\t600\t{GOOD}", PAYLOAD_END),
              "secret: named twice"),
    "not base64 characters": (_lines(PAYLOAD_HEADER, "secret\t600\t$(touch /tmp/x)", PAYLOAD_END),
                              "secret: content is not base64"),
    "broken base64": (_lines(PAYLOAD_HEADER, "secret\t600\tQUJD=QUJD", PAYLOAD_END),
                      "secret: content is not valid base64"),
}


class TestPayloadGuard:
    """A payload that is not exactly the step's files changes nothing on the host."""

    @pytest.mark.parametrize("label", sorted(BAD_PAYLOADS))
    def test_refused_before_anything_changes(self, fake_rhel_host: FakeHost, label: str) -> None:
        payload, message = BAD_PAYLOADS[label]
        plan = plan_for(fake_rhel_host.workdir)
        out = failed(run(fake_rhel_host, plan, "secret", payload))
        assert message in out.stderr
        assert "nothing changed" in out.stderr
        assert not Path(plan.secret_dir or "").exists(), "the folder is made only after the payload passed"
        assert GOOD not in out.output


# ------------------------------------------------------------------------------------------ proxy files

FAKE_DOCKER = r"""#!/bin/bash
# Recording fake of the docker CLI: logs "uid<TAB>args..."; the test sets the container's state.
set -eu
state=__STATE__
{ printf '%s\t' "$(id -u)" "$@"; printf '\n'; } >>"$state/calls"
case "$1 ${2:-}" in
  "container inspect")
    if [ -f "$state/running" ]; then echo true
    elif [ -f "$state/stopped" ]; then echo false
    else echo "Error: No such container: ${*: -1}" >&2; exit 1
    fi
    ;;
  "exec "*)
    if [ "${*:3}" = "nginx -t -q" ] && [ -f "$state/bad-config" ]; then
      echo 'nginx: [emerg] cannot load certificate "/etc/nginx/tls/chain.pem": PEM_read_bio_X509_AUX() failed' >&2
      exit 1
    fi
    ;;
  *) echo "fake docker: unsupported $*" >&2; exit 2 ;;
esac
"""


@dataclass
class DockerFake:
    bin_dir: Path
    state_dir: Path

    @classmethod
    def create(cls, base: Path) -> DockerFake:
        bin_dir, state_dir = base / "bin", base / "state"
        bin_dir.mkdir(parents=True)
        state_dir.mkdir()
        state_dir.chmod(0o777)
        (state_dir / "calls").write_text("")
        (state_dir / "calls").chmod(0o666)
        (bin_dir / "docker").write_text(FAKE_DOCKER.replace("__STATE__", str(state_dir)))
        (bin_dir / "docker").chmod(0o755)
        bin_dir.chmod(0o755)
        return cls(bin_dir, state_dir)

    def set_container(self, state: str) -> None:
        """'running', 'stopped' or 'absent'."""
        for name in ("running", "stopped"):
            (self.state_dir / name).unlink(missing_ok=True)
        if state != "absent":
            (self.state_dir / state).write_text("")

    def set_bad_config(self, bad: bool) -> None:
        (self.state_dir / "bad-config").unlink(missing_ok=True)
        if bad:
            (self.state_dir / "bad-config").write_text("")

    def calls(self) -> list[tuple[int, list[str]]]:
        out = []
        for line in (self.state_dir / "calls").read_text().splitlines():
            uid, *argv = line.rstrip("\t").split("\t")
            out.append((int(uid), argv))
        return out

    def argvs(self) -> list[list[str]]:
        return [argv for _, argv in self.calls()]

    def reset(self) -> None:
        (self.state_dir / "calls").write_text("")


INSPECT = ["container", "inspect", "--format", "{{.State.Running}}", "devpi-proxy"]
NGINX_TEST = ["exec", "devpi-proxy", "nginx", "-t", "-q"]
NGINX_RELOAD = ["exec", "devpi-proxy", "nginx", "-s", "reload"]


class TestProxyFiles:
    @pytest.fixture
    def docker(self, world_tmp: Path) -> DockerFake:
        return DockerFake.create(world_tmp / "docker")

    @pytest.fixture
    def host(self, fake_host_factory: FakeHostFactory, docker: DockerFake) -> FakeHost:
        return fake_host_factory(bind_mounts={docker.bin_dir: "/usr/local/sbin"}, hide=docker_binaries())

    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_files_modes_and_reload_only_when_changed_and_running(self, host: FakeHost, docker: DockerFake,
                                                                  user: str) -> None:
        plan = plan_for(host.workdir, user)
        proxy = Path(plan.proxy_dir or "")
        conf, chain, key = "server { listen 443 ssl; }\n", "-----BEGIN CERTIFICATE-----\nA\n", fake_key()
        docker.set_container("running")
        first = ok(run(host, plan, "proxy-files", proxy_payload(conf, chain, key)))
        for rel, mode in ((CONF, 0o644), (CHAIN, 0o644), (KEY, 0o600)):
            assert f"proxy-files: {proxy}/{rel}: updated (written; mode {mode:o}, owner root)" in first.stdout
            assert meta(proxy / rel) == (mode, 0, 0)
        for folder in (proxy, proxy / "conf.d", proxy / "tls"):
            assert meta(folder) == (0o700, 0, 0)
        assert (proxy / CONF).read_text() == conf
        assert (proxy / CHAIN).read_text() == chain
        assert (proxy / KEY).read_text() == key
        assert "nginx in devpi-proxy reloaded" in first.stdout
        assert docker.calls() == [(0, INSPECT), (0, NGINX_TEST), (0, NGINX_RELOAD)], "docker runs as root"
        assert not (proxy / RELOAD_PENDING).exists()
        assert_never_shown(first, key)

        docker.reset()
        second = ok(run(host, plan, "proxy-files", proxy_payload(conf, chain, key)))
        assert "nothing changed (3 file(s) as declared)" in second.stdout
        assert docker.calls() == [], "no change, no reload (not even a look at the container)"

    def test_certificate_rotation_rewrites_only_chain_and_key_and_reloads(self, host: FakeHost,
                                                                          docker: DockerFake) -> None:
        plan = plan_for(host.workdir)
        proxy = Path(plan.proxy_dir or "")
        conf = "server {}\n"
        ok(run(host, plan, "proxy-files", proxy_payload(conf, "chain-1\n", fake_key())))
        conf_id = identity(proxy / CONF)
        docker.set_container("running")
        docker.reset()
        new_key = fake_key()
        out = ok(run(host, plan, "proxy-files", proxy_payload(conf, "chain-2\n", new_key), "update"))
        assert f"{proxy}/{CONF}: unchanged" in out.stdout
        assert f"{proxy}/{CHAIN}: updated (content replaced" in out.stdout
        assert f"{proxy}/{KEY}: updated (content replaced" in out.stdout
        assert identity(proxy / CONF) == conf_id
        assert (proxy / KEY).read_text() == new_key
        assert docker.argvs() == [INSPECT, NGINX_TEST, NGINX_RELOAD]
        assert sorted(p.name for p in (proxy / "tls").iterdir()) == ["chain.pem", "key.pem"]
        assert_never_shown(out, new_key)

    @pytest.mark.parametrize("state", ["stopped", "absent"])
    def test_no_reload_when_the_container_is_not_running(self, host: FakeHost, docker: DockerFake,
                                                         state: str) -> None:
        plan = plan_for(host.workdir)
        docker.set_container(state)
        out = ok(run(host, plan, "proxy-files", proxy_payload("c\n", "x\n", fake_key())))
        assert "container devpi-proxy is not running; it reads the files when it starts" in out.stdout
        assert docker.argvs() == [INSPECT]

    def test_a_refused_config_fails_and_the_reload_stays_owed(self, host: FakeHost, docker: DockerFake) -> None:
        plan = plan_for(host.workdir)
        proxy = Path(plan.proxy_dir or "")
        payload = proxy_payload("bad\n", "x\n", fake_key())
        docker.set_container("running")
        docker.set_bad_config(True)
        out = failed(run(host, plan, "proxy-files", payload))
        assert "nginx in container devpi-proxy refuses them, so it keeps serving the previous ones" in out.stderr
        assert "PEM_read_bio_X509_AUX() failed" in out.stderr
        assert docker.argvs() == [INSPECT, NGINX_TEST]
        assert (proxy / RELOAD_PENDING).exists()

        # The engine retries the same inputs on the next `up`: the files are unchanged by then, but
        # the owed reload still happens once nginx accepts them.
        docker.set_bad_config(False)
        docker.reset()
        again = ok(run(host, plan, "proxy-files", payload))
        assert "nginx in devpi-proxy reloaded" in again.stdout
        assert docker.argvs() == [INSPECT, NGINX_TEST, NGINX_RELOAD]
        assert not (proxy / RELOAD_PENDING).exists()

    def test_delete_removes_the_files_keeps_folders_and_data(self, host: FakeHost) -> None:
        plan = plan_for(host.workdir)
        proxy = Path(plan.proxy_dir or "")
        data = Path(plan.data_dir)
        data.mkdir()
        (data / "packages.db").write_text("packages")
        ok(run(host, plan, "proxy-files", proxy_payload("c\n", "x\n", fake_key())))
        out = ok(run(host, plan, "proxy-files", kind="delete")).stdout
        assert "folder kept, files removed: conf.d/devpi.conf removed; tls/chain.pem removed; tls/key.pem removed" in out
        assert sorted(str(p.relative_to(proxy)) for p in proxy.rglob("*")) == ["conf.d", "tls"]
        assert (data / "packages.db").read_text() == "packages"

    def test_a_file_the_plan_does_not_name_is_refused(self, host: FakeHost) -> None:
        plan = plan_for(host.workdir)
        payload = files_payload({CONF: ("c", 0o644), CHAIN: ("x", 0o644), KEY: ("k", 0o600),
                                 "conf.d/extra.conf": ("evil", 0o644)})
        out = failed(run(host, plan, "proxy-files", payload))
        assert "names a file this step does not write; nothing changed" in out.stderr
        assert not Path(plan.proxy_dir or "").exists()


# ------------------------------------------------------------------------------------------ SELinux

class TestSelinuxLabels:
    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_secret_folder_gets_a_persistent_container_label(self, fake_host_factory: FakeHostFactory,
                                                            world_tmp: Path, user: str) -> None:
        fakes = SelinuxFakes.create(world_tmp / "selinux", mode="Enforcing")
        host = fake_host_factory(bind_mounts={fakes.bin_dir: "/usr/local/sbin"})
        plan = plan_for(host.workdir, user)
        folder = plan.secret_dir or ""
        payload = files_payload({"secret": (new_secret(), 0o600)})
        first = ok(run(host, plan, "secret", payload)).stdout
        spec = fcontext_spec(folder)
        assert ["semanage", "fcontext", "-a", "-t", "container_file_t", spec] in [a for _, a in fakes.calls()]
        assert all(uid == 0 for uid, argv in fakes.calls() if argv[0] != "getenforce")
        assert "added file-context rule container_file_t; relabelled " + folder in first
        assert fakes.rules() == [[spec, "container_file_t"]]
        fakes.reset_calls()
        second = ok(run(host, plan, "secret", payload)).stdout
        assert "nothing changed" in second
        assert [a for _, a in fakes.calls()] == [
            ["getenforce"], ["semanage", "fcontext", "-l", "-C"], ["restorecon", "-R", "-n", "-v", "--", folder]]

    def test_disabled_selinux_is_left_alone(self, fake_host_factory: FakeHostFactory, world_tmp: Path) -> None:
        fakes = SelinuxFakes.create(world_tmp / "selinux", mode="Disabled")
        host = fake_host_factory(bind_mounts={fakes.bin_dir: "/usr/local/sbin"})
        ok(run(host, plan_for(host.workdir), "secret", files_payload({"secret": (new_secret(), 0o600)})))
        assert [a for _, a in fakes.calls()] == [["getenforce"]]
