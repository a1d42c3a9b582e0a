"""The host scripts executed over real SSH against a fake RHEL 8 host (tests/fixtures/sshd.py).

Each test runs the exact command string HostSetup hands to pulumi-command (``render_steps``),
checks what changed on the host, runs it again and checks that nothing changed and the output
says so. The firewall runs against a real firewalld confined to a network namespace
(tests/fixtures/firewalld.py); SELinux cannot be enabled on this kernel, so its branch runs
against recording fakes of getenforce/semanage/restorecon/matchpathcon mounted over
``/usr/local/sbin`` (first on root's PATH and in sudo's secure_path) in the host's mount namespace.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.host.scripts import HostPlan, Step, fcontext_spec, render_steps
from tests.fixtures.firewalld import Firewalld, PrivateBus
from tests.fixtures.sshd import (
    DEBIAN_12_OS_RELEASE,
    NOSUDO_USER,
    SUDO_USER,
    FakeHost,
    FakeHostFactory,
    RemoteResult,
)
from tests.support import missing_fixture

pytestmark = [pytest.mark.sshd]

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"


def steps(plan: HostPlan) -> dict[str, Step]:
    return {s.name: s for s in render_steps(plan)}


def run(host: FakeHost, plan: HostPlan, name: str, kind: str = "create") -> RemoteResult:
    """Run one step's command string over SSH as the plan's user, exactly as HostSetup configures it."""
    command = getattr(steps(plan)[name], kind)
    assert command is not None, f"{name} has no {kind} command"
    return host.run_remote(command, user=plan.user)


def ok(result: RemoteResult) -> RemoteResult:
    assert result.returncode == 0, str(result)
    return result


def failed(result: RemoteResult) -> RemoteResult:
    assert result.returncode != 0, str(result)
    return result


def dir_state(path: Path) -> tuple[int, int, int, int, int, list[str]]:
    st = path.stat()
    return (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_ino, st.st_mtime_ns,
            sorted(p.name for p in path.iterdir()))


def docker_binaries() -> list[str]:
    found = {shutil.which("docker") or "", "/usr/bin/docker", "/usr/local/bin/docker", "/usr/sbin/docker"}
    return sorted(p for p in found if p and Path(p).exists())


def docker_engine_or_missing(request: pytest.FixtureRequest) -> Any:
    """The ``docker_engine`` fixture of tests/fixtures/docker.py, or a skip (a failure under CI)."""
    try:
        return request.getfixturevalue("docker_engine")
    except pytest.FixtureLookupError:
        missing_fixture("the docker_engine fixture (tests/fixtures/docker.py) is not available")


def docker_env(engine: Any) -> dict[str, str]:
    host = getattr(engine, "host", DEFAULT_DOCKER_HOST)
    return {} if host == DEFAULT_DOCKER_HOST else {"DOCKER_HOST": host}


# ------------------------------------------------------------------------------------------ data folder

class TestDataFolder:
    def test_first_run_creates_0700_second_run_changes_nothing(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "opt" / "local" / "devpi" / "data"
        plan = HostPlan(data_dir=str(data))
        first = ok(run(fake_rhel_host, plan, "data-dir"))
        assert f"data folder {data}: changed: created" in first.stdout
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert (data.stat().st_uid, data.stat().st_gid) == (0, 0)
        before = dir_state(data)
        second = ok(run(fake_rhel_host, plan, "data-dir"))
        assert f"data folder {data}: nothing changed (directory, mode 700, owner 0:0)" in second.stdout
        assert dir_state(data) == before

    def test_update_command_is_the_same_idempotent_script(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        plan = HostPlan(data_dir=str(data))
        ok(run(fake_rhel_host, plan, "data-dir"))
        assert "nothing changed" in ok(run(fake_rhel_host, plan, "data-dir", "update")).stdout

    def test_wrong_mode_and_owner_are_fixed_contents_untouched(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        data.mkdir(mode=0o755)
        data.chmod(0o755)
        (data / "keep.db").write_text("packages")
        os.chown(data / "keep.db", 4242, 4242)
        plan = HostPlan(data_dir=str(data), data_owner_uid=1000, data_owner_gid=1001)
        out = ok(run(fake_rhel_host, plan, "data-dir")).stdout
        assert "changed: mode 755 -> 700; owner 0:0 -> 1000:1001" in out
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert (data.stat().st_uid, data.stat().st_gid) == (1000, 1001)
        assert (data / "keep.db").read_text() == "packages"
        assert (data / "keep.db").stat().st_uid == 4242  # not chowned recursively
        assert "nothing changed" in ok(run(fake_rhel_host, plan, "data-dir")).stdout

    def test_a_file_in_the_way_is_reported_not_replaced(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        data.write_text("not a folder")
        out = failed(run(fake_rhel_host, HostPlan(data_dir=str(data)), "data-dir"))
        assert "exists but is not a directory; move it away or choose another dataDir" in out.stderr
        assert data.read_text() == "not a folder"

    def test_hostile_path_is_created_literally(self, fake_rhel_host: FakeHost) -> None:
        """The renderer quotes any path (HostPlan refuses blanks only for SELinux's sake)."""
        from components.host.scripts import Privilege, as_command, render_data_dir

        marker = fake_rhel_host.workdir / "pwned"
        hostile = fake_rhel_host.workdir / "my dir" / f"$(touch {marker})" / "`id`;x"
        command = as_command(render_data_dir(data_dir=str(hostile), uid=0, gid=0, privilege=Privilege()))
        ok(fake_rhel_host.run_remote(command))
        assert hostile.is_dir()
        assert not marker.exists()

    def test_destroy_keeps_the_data_folder(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        plan = HostPlan(data_dir=str(data))
        ok(run(fake_rhel_host, plan, "data-dir"))
        (data / "+files").mkdir()
        out = ok(run(fake_rhel_host, plan, "data-dir", "delete")).stdout
        assert "kept (purgeDataOnDestroy is false)" in out
        assert (data / "+files").is_dir()

    def test_destroy_with_purge_deletes_it_and_is_idempotent(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        plan = HostPlan(data_dir=str(data), purge_data_on_destroy=True)
        ok(run(fake_rhel_host, plan, "data-dir"))
        (data / "+files").mkdir()
        out = ok(run(fake_rhel_host, plan, "data-dir", "delete")).stdout
        assert "deleted with everything in it (purgeDataOnDestroy is true)" in out
        assert not data.exists()
        assert data.parent.is_dir()
        assert "already gone; nothing changed" in ok(run(fake_rhel_host, plan, "data-dir", "delete")).stdout

    def test_sudo_user_creates_a_root_owned_folder(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        plan = HostPlan(user=SUDO_USER, data_dir=str(data))
        assert "sudo -n" in steps(plan)["data-dir"].create
        assert "changed: created" in ok(run(fake_rhel_host, plan, "data-dir")).stdout
        assert (data.stat().st_uid, stat.S_IMODE(data.stat().st_mode)) == (0, 0o700)
        assert "nothing changed" in ok(run(fake_rhel_host, plan, "data-dir")).stdout

    def test_user_without_sudo_fails_loudly(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        out = failed(run(fake_rhel_host, HostPlan(user=NOSUDO_USER, data_dir=str(data)), "data-dir"))
        assert "a password is required" in out.stderr
        assert not data.exists()


# ------------------------------------------------------------------------------------------ firewall

@pytest.mark.firewalld
class TestFirewall:
    @pytest.fixture
    def fw_host(self, fake_host_factory: FakeHostFactory, firewalld: Firewalld) -> FakeHost:
        return fake_host_factory(bind_mounts={firewalld.bus_dir: "/run/dbus"})

    def test_scripts_reach_the_namespaced_firewalld(self, fw_host: FakeHost, firewalld: Firewalld) -> None:
        machine_rules = _machine_nft()
        out = ok(fw_host.run_remote("firewall-cmd --state")).stdout
        assert out.strip() == "running"
        ok(run(fw_host, HostPlan(port=3141), "firewall"))
        assert firewalld.nft_accepts_port(3141), firewalld.nft_ruleset()
        assert _machine_nft() == machine_rules, "the machine's own ruleset must never change"

    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_open_then_nothing_changed(self, fw_host: FakeHost, firewalld: Firewalld, user: str) -> None:
        plan = HostPlan(user=user, port=3141)
        first = ok(run(fw_host, plan, "firewall")).stdout
        assert "firewall: port 3141/tcp opened: 3141/tcp added to the permanent configuration; reloaded firewalld" in first
        assert "3141/tcp" in firewalld.permanent_ports()
        assert "3141/tcp" in firewalld.runtime_ports()
        assert "3141/tcp" in firewalld.zone_file_ports()
        assert firewalld.nft_accepts_port(3141)
        zone_file = (firewalld.config_dir / "zones" / "public.xml").read_bytes()
        rules = firewalld.nft_ruleset()
        second = ok(run(fw_host, plan, "firewall")).stdout
        assert "firewall: port 3141/tcp already open; nothing changed" in second
        assert (firewalld.config_dir / "zones" / "public.xml").read_bytes() == zone_file
        assert firewalld.nft_ruleset() == rules

    def test_permanent_rule_without_reload_is_activated(self, fw_host: FakeHost, firewalld: Firewalld) -> None:
        assert firewalld.firewall_cmd("--permanent", "--add-port=3141/tcp").returncode == 0
        assert "3141/tcp" not in firewalld.runtime_ports()
        out = ok(run(fw_host, HostPlan(), "firewall")).stdout
        assert "opened: reloaded firewalld" in out
        assert "3141/tcp" in firewalld.runtime_ports()

    def test_delete_closes_the_port_again(self, fw_host: FakeHost, firewalld: Firewalld) -> None:
        plan = HostPlan(port=8080)
        ok(run(fw_host, plan, "firewall"))
        assert "8080/tcp" in firewalld.permanent_ports()
        out = ok(run(fw_host, plan, "firewall", "delete")).stdout
        assert "firewall: port 8080/tcp closed: 8080/tcp removed from the permanent configuration; reloaded firewalld" in out
        assert "8080/tcp" not in firewalld.permanent_ports()
        assert "8080/tcp" not in firewalld.runtime_ports()
        assert "8080/tcp" not in firewalld.zone_file_ports()
        assert not firewalld.nft_accepts_port(8080)
        again = ok(run(fw_host, plan, "firewall", "delete")).stdout
        assert "firewall: port 8080/tcp already closed; nothing changed" in again

    def test_delete_leaves_other_ports_alone(self, fw_host: FakeHost, firewalld: Firewalld) -> None:
        assert firewalld.firewall_cmd("--permanent", "--add-port=9999/tcp").returncode == 0
        ok(run(fw_host, HostPlan(), "firewall"))
        ok(run(fw_host, HostPlan(), "firewall", "delete"))
        assert firewalld.permanent_ports() == ["9999/tcp"]


@pytest.mark.firewalld
class TestFirewallSwitch:
    """Turning TLS on replaces devpi's port by the proxy's ports (and back). The firewall Command is
    replaced delete-before-replace when its port set changes, so the engine runs the OLD delete
    (closing the old ports) before the NEW create: exactly that sequence runs here."""

    @pytest.fixture
    def fw_host(self, fake_host_factory: FakeHostFactory, firewalld: Firewalld) -> FakeHost:
        return fake_host_factory(bind_mounts={firewalld.bus_dir: "/run/dbus"})

    @staticmethod
    def switch(host: FakeHost, old: HostPlan, new: HostPlan) -> tuple[str, str]:
        old_step, new_step = steps(old)["firewall"], steps(new)["firewall"]
        assert old_step.delete_before_replace and old_step.trigger != new_step.trigger, \
            "a changed port set must replace the step, old delete first"
        closed = ok(host.run_remote(old_step.delete or "", user=old.user)).stdout
        opened = ok(host.run_remote(new_step.create, user=new.user)).stdout
        return closed, opened

    @staticmethod
    def open_ports(firewalld: Firewalld) -> tuple[list[str], list[str], list[str], list[int]]:
        return (sorted(firewalld.permanent_ports()), sorted(firewalld.runtime_ports()),
                sorted(firewalld.zone_file_ports()),
                [p for p in (80, 443, 3141) if firewalld.nft_accepts_port(p)])

    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_3141_to_443_and_80_and_back(self, fw_host: FakeHost, firewalld: Firewalld, user: str) -> None:
        plain = HostPlan(user=user, port=3141)
        tls = HostPlan(user=user, port=3141, ports=(443, 80))
        assert "3141/tcp opened" in ok(run(fw_host, plain, "firewall")).stdout
        assert self.open_ports(firewalld) == (["3141/tcp"], ["3141/tcp"], ["3141/tcp"], [3141])

        closed, opened = self.switch(fw_host, plain, tls)
        assert "firewall: port 3141/tcp closed: 3141/tcp removed from the permanent configuration" in closed
        assert ("firewall: ports 443/tcp, 80/tcp opened: 443/tcp added to the permanent configuration; "
                "80/tcp added to the permanent configuration; reloaded firewalld") in opened
        tls_state = (["443/tcp", "80/tcp"], ["443/tcp", "80/tcp"], ["443/tcp", "80/tcp"], [80, 443])
        assert self.open_ports(firewalld) == tls_state
        assert "firewall: ports 443/tcp, 80/tcp already open; nothing changed" in \
            ok(run(fw_host, tls, "firewall")).stdout
        assert self.open_ports(firewalld) == tls_state

        closed, opened = self.switch(fw_host, tls, plain)
        assert "firewall: ports 443/tcp, 80/tcp closed:" in closed
        assert "firewall: port 3141/tcp opened:" in opened
        assert self.open_ports(firewalld) == (["3141/tcp"], ["3141/tcp"], ["3141/tcp"], [3141])

    def test_redirect_off_closes_80_only_after_replace(self, fw_host: FakeHost, firewalld: Firewalld) -> None:
        """443+80 -> 443 alone (the http redirect switched off): the overlap is closed and reopened."""
        both, https = HostPlan(ports=(443, 80)), HostPlan(ports=(443,))
        ok(run(fw_host, both, "firewall"))
        self.switch(fw_host, both, https)
        assert self.open_ports(firewalld) == (["443/tcp"], ["443/tcp"], ["443/tcp"], [443])

    def test_one_port_open_the_other_not_is_completed(self, fw_host: FakeHost, firewalld: Firewalld) -> None:
        assert firewalld.firewall_cmd("--permanent", "--add-port=443/tcp").returncode == 0
        out = ok(run(fw_host, HostPlan(ports=(443, 80)), "firewall")).stdout
        assert "opened: 80/tcp added to the permanent configuration; reloaded firewalld" in out
        assert sorted(firewalld.runtime_ports()) == ["443/tcp", "80/tcp"]


@pytest.mark.firewalld
class TestFirewalldNotRunning:
    @pytest.fixture
    def stopped_host(self, fake_host_factory: FakeHostFactory, dbus_without_firewalld: PrivateBus) -> FakeHost:
        return fake_host_factory(bind_mounts={dbus_without_firewalld.bus_dir: "/run/dbus"})

    @pytest.mark.parametrize("kind", ["create", "delete"])
    def test_fail_policy_stops_with_a_clear_message(self, stopped_host: FakeHost, kind: str) -> None:
        out = failed(run(stopped_host, HostPlan(firewall_when_inactive="fail"), "firewall", kind))
        assert "firewall: firewalld is not running (firewall-cmd --state: not running)" in out.stderr
        assert "sudo systemctl enable --now firewalld" in out.stderr
        assert "set firewallWhenInactive to skip" in out.stderr

    @pytest.mark.parametrize(("kind", "verb"), [("create", "opened"), ("delete", "closed")])
    def test_skip_policy_logs_and_succeeds(self, stopped_host: FakeHost, kind: str, verb: str) -> None:
        out = ok(run(stopped_host, HostPlan(firewall_when_inactive="skip"), "firewall", kind)).stdout
        assert f"port 3141/tcp not {verb} (firewallWhenInactive=skip); nothing changed" in out

    def test_no_bus_at_all_counts_as_not_running(self, fake_rhel_host: FakeHost) -> None:
        out = failed(run(fake_rhel_host, HostPlan(), "firewall"))
        assert "firewall: firewalld is not running" in out.stderr


# ------------------------------------------------------------------------------------------ preflight

class TestPreflight:
    def test_unsupported_os_is_named(self, fake_debian_host: FakeHost) -> None:
        out = failed(run(fake_debian_host, HostPlan(firewall_when_inactive="skip"), "preflight"))
        assert ("os: found 'Debian GNU/Linux 12 (bookworm)' (ID=debian, VERSION_ID=12); devpi-registry "
                "supports Red Hat Enterprise Linux 8 and compatible 8.x releases (Rocky Linux, AlmaLinux, "
                "CentOS Stream, Oracle Linux)") in out.stderr

    @pytest.mark.parametrize(("os_release", "accepted"), [
        ('ID="rocky"\nVERSION_ID="8.9"\nPRETTY_NAME="Rocky Linux 8.9 (Green Obsidian)"\n', True),
        ('ID="almalinux"\nID_LIKE="rhel centos fedora"\nVERSION_ID="8.10"\nPRETTY_NAME="AlmaLinux 8.10"\n', True),
        ('ID="centos"\nVERSION_ID="8"\nPRETTY_NAME="CentOS Stream 8"\n', True),
        ('ID="ol"\nVERSION_ID="8.10"\nPRETTY_NAME="Oracle Linux Server 8.10"\n', True),
        ('ID="rhel"\nVERSION_ID="9.4"\nPRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n', False),
        ('ID="fedora"\nVERSION_ID="8"\nPRETTY_NAME="Fedora 8"\n', False),
    ], ids=["rocky8", "alma8", "stream8", "oracle8", "rhel9", "fedora8"])
    def test_os_family_and_major_version(self, fake_host_factory: FakeHostFactory, os_release: str,
                                         accepted: bool) -> None:
        host = fake_host_factory(os_release=os_release)
        out = run(host, HostPlan(firewall_when_inactive="skip"), "preflight")
        pretty = os_release.split('PRETTY_NAME="')[1].split('"')[0]
        if accepted:
            assert f"preflight: os: {pretty}" in out.stdout, str(out)
            assert "os: found" not in out.stderr
        else:
            assert f"os: found '{pretty}'" in out.stderr, str(out)

    def test_missing_docker_is_reported(self, fake_host_factory: FakeHostFactory) -> None:
        host = fake_host_factory(hide=docker_binaries())
        out = failed(run(host, HostPlan(firewall_when_inactive="skip"), "preflight"))
        assert "docker: the docker command is not installed; install Docker Engine (docker-ce" in out.stderr
        assert "preflight FAILED: 1 problem(s)" in out.stderr
        assert "preflight: os: Red Hat Enterprise Linux 8.10 (Ootpa) (ID=rhel, VERSION_ID=8.10)" in out.stdout

    def test_docker_engine_not_reachable_is_reported(self, fake_host_factory: FakeHostFactory) -> None:
        if not docker_binaries():
            missing_fixture("the docker CLI is not installed (apt-get install docker.io)")
        host = fake_host_factory(hide=["/run/docker.sock", "/var/run/docker.sock"])
        out = failed(run(host, HostPlan(firewall_when_inactive="skip"), "preflight"))
        assert "docker: the Docker engine is not running or not reachable" in out.stderr
        assert "sudo systemctl enable --now docker" in out.stderr

    def test_all_problems_are_collected(self, fake_host_factory: FakeHostFactory) -> None:
        host = fake_host_factory(os_release=DEBIAN_12_OS_RELEASE, hide=docker_binaries())
        out = failed(run(host, HostPlan(), "preflight"))
        assert "preflight FAILED: 3 problem(s) on this host must be fixed" in out.stderr
        assert "- os: found 'Debian GNU/Linux 12 (bookworm)'" in out.stderr
        assert "- docker: the docker command is not installed" in out.stderr
        assert "- firewalld: not running (firewall-cmd --state:" in out.stderr
        assert "preflight: selinux: not present" in out.stdout

    def test_user_without_sudo_is_reported(self, fake_rhel_host: FakeHost) -> None:
        out = failed(run(fake_rhel_host, HostPlan(user=NOSUDO_USER, firewall_when_inactive="skip"),
                         "preflight"))
        assert (f"sudo: user {NOSUDO_USER} cannot run root commands through 'sudo -n' "
                "(over SSH nobody can type a password)") in out.stderr
        # the other checks still ran, unprivileged, and did not repeat sudo's complaint
        assert "preflight: os: Red Hat Enterprise Linux 8.10" in out.stdout
        assert out.output.count("a password is required") == 0

    @pytest.mark.docker
    @pytest.mark.firewalld
    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_passes_on_a_good_host(self, request: pytest.FixtureRequest, fake_host_factory: FakeHostFactory,
                                   firewalld: Firewalld, user: str) -> None:
        engine = docker_engine_or_missing(request)
        host = fake_host_factory(bind_mounts={firewalld.bus_dir: "/run/dbus"}, set_env=docker_env(engine))
        plan = HostPlan(user=user)
        first = ok(run(host, plan, "preflight"))
        assert "preflight: os: Red Hat Enterprise Linux 8.10 (Ootpa) (ID=rhel, VERSION_ID=8.10)" in first.stdout
        assert f"usable by {user}" in first.stdout
        assert "preflight: firewalld: running" in first.stdout
        assert "preflight: selinux: not present" in first.stdout
        assert "preflight ok: nothing changed (this step only checks)" in first.stdout
        assert first.stderr == ""
        assert ok(run(host, plan, "preflight")).stdout == first.stdout

    @pytest.mark.docker
    def test_user_outside_the_docker_group_is_reported(self, request: pytest.FixtureRequest,
                                                       fake_host_factory: FakeHostFactory) -> None:
        engine = docker_engine_or_missing(request)
        host = fake_host_factory(set_env=docker_env(engine))
        # devpi-nosudo is not in the docker group, and has no sudo either: both are reported
        out = failed(run(host, HostPlan(user=NOSUDO_USER, firewall_when_inactive="skip"), "preflight"))
        assert "docker:" in out.stderr
        assert "sudo: user devpi-nosudo cannot run root commands" in out.stderr

    @pytest.mark.docker
    def test_selinux_enforcing_needs_docker_selinux_support(self, request: pytest.FixtureRequest,
                                                            fake_host_factory: FakeHostFactory,
                                                            world_tmp: Path) -> None:
        engine = docker_engine_or_missing(request)
        fakes = SelinuxFakes.create(world_tmp / "fakes", mode="Enforcing")
        host = fake_host_factory(bind_mounts={fakes.bin_dir: "/usr/local/sbin"}, set_env=docker_env(engine))
        out = failed(run(host, HostPlan(firewall_when_inactive="skip"), "preflight"))
        assert "preflight: selinux: Enforcing" in out.stdout
        assert ("docker: SELinux is Enforcing but Docker's SELinux support is off (no selinux in 'docker info' "
                "security options); without it the :Z mount option does nothing") in out.stderr
        assert "\"selinux-enabled\": true to /etc/docker/daemon.json" in out.stderr

    @pytest.mark.docker
    def test_selinux_configured_but_engine_not_restarted(self, request: pytest.FixtureRequest,
                                                         fake_host_factory: FakeHostFactory,
                                                         world_tmp: Path) -> None:
        engine = docker_engine_or_missing(request)
        fakes = SelinuxFakes.create(world_tmp / "fakes", mode="Enforcing")
        etc_docker = world_tmp / "etc-docker"
        etc_docker.mkdir()
        (etc_docker / "daemon.json").write_text('{\n  "selinux-enabled": true\n}\n')
        host = fake_host_factory(bind_mounts={fakes.bin_dir: "/usr/local/sbin", etc_docker: "/etc/docker"},
                                 set_env=docker_env(engine))
        out = failed(run(host, HostPlan(firewall_when_inactive="skip"), "preflight"))
        assert ("docker: /etc/docker/daemon.json sets \"selinux-enabled\": true but the running engine does "
                "not use it; restart it with 'sudo systemctl restart docker'") in out.stderr

    def test_selinux_tools_missing_are_reported(self, fake_host_factory: FakeHostFactory, world_tmp: Path) -> None:
        fakes = SelinuxFakes.create(world_tmp / "fakes", mode="Permissive",
                                    tools=("getenforce",))
        host = fake_host_factory(bind_mounts={fakes.bin_dir: "/usr/local/sbin"})
        out = failed(run(host, HostPlan(firewall_when_inactive="skip"), "preflight"))
        assert "selinux: Permissive but semanage is not installed; install policycoreutils-python-utils" \
            in out.stderr


# ------------------------------------------------------------------------------------------ SELinux

FAKE_TOOL = r"""#!/bin/bash
# Recording fake of an SELinux tool for tests: logs "uid<TAB>tool<TAB>args..." and keeps state in files.
set -eu
state=__STATE__
tool=$(basename "$0")
{ printf '%s\t' "$(id -u)" "$tool" "$@"; printf '\n'; } >>"$state/calls"
desired() { awk -F'\t' 'NR == 1 { print $2 }' "$state/rules"; }
case "$tool" in
  getenforce) cat "$state/mode" ;;
  semanage)
    [ "$1" = fcontext ] || { echo "fake semanage: unsupported $*" >&2; exit 2; }
    case "$2" in
      -l)
        echo "SELinux Local fcontext customizations"
        echo
        while IFS=$'\t' read -r spec type; do
          printf '%-50s all files          system_u:object_r:%s:s0\n' "$spec" "$type"
        done <"$state/rules"
        ;;
      -a) printf '%s\t%s\n' "$5" "$4" >>"$state/rules" ;;
      -m) printf '%s\t%s\n' "$5" "$4" >"$state/rules" ;;
      -d) : >"$state/rules" ;;
      *) echo "fake semanage: unsupported $*" >&2; exit 2 ;;
    esac
    ;;
  restorecon)
    want=$(desired); have=$(cat "$state/labelled")
    if [ -n "$want" ] && [ "$want" != "$have" ]; then
      if [ "$2" = -n ]; then
        echo "Would relabel ${*: -1} from system_u:object_r:$have:s0 to system_u:object_r:$want:s0"
      else
        printf '%s' "$want" >"$state/labelled"
        echo "Relabeled ${*: -1} from system_u:object_r:$have:s0 to system_u:object_r:$want:s0"
      fi
    fi
    ;;
  matchpathcon)
    want=$(desired); have=$(cat "$state/labelled")
    if [ "$want" = "$have" ]; then echo "${*: -1} verified."; else
      echo "${*: -1} has context $have, should be $want"; exit 1; fi
    ;;
esac
"""

ALL_TOOLS = ("getenforce", "semanage", "restorecon", "matchpathcon")


@pytest.fixture
def world_tmp() -> Iterator[Path]:
    """A temporary folder root and the sudo test user can both use (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="devpi-selinux-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@dataclass
class SelinuxFakes:
    """Fake SELinux tools with a recorded call log and a tiny state (mode, rules, current label)."""

    bin_dir: Path
    state_dir: Path

    @classmethod
    def create(cls, base: Path, *, mode: str = "Enforcing", rules: list[tuple[str, str]] | None = None,
               labelled: str = "default_t", tools: tuple[str, ...] = ALL_TOOLS) -> SelinuxFakes:
        bin_dir, state_dir = base / "bin", base / "state"
        bin_dir.mkdir(parents=True)
        state_dir.mkdir()
        state_dir.chmod(0o777)
        for name, text in {"mode": mode + "\n", "rules": "".join(f"{s}\t{t}\n" for s, t in rules or []),
                           "labelled": labelled, "calls": ""}.items():
            (state_dir / name).write_text(text)
            (state_dir / name).chmod(0o666)
        for tool in tools:
            (bin_dir / tool).write_text(FAKE_TOOL.replace("__STATE__", str(state_dir)))
            (bin_dir / tool).chmod(0o755)
        bin_dir.chmod(0o755)
        return cls(bin_dir, state_dir)

    def calls(self) -> list[tuple[int, list[str]]]:
        """Each call as (uid, [tool, args...])."""
        out = []
        for line in (self.state_dir / "calls").read_text().splitlines():
            uid, *argv = line.rstrip("\t").split("\t")
            out.append((int(uid), argv))
        return out

    def reset_calls(self) -> None:
        (self.state_dir / "calls").write_text("")

    def rules(self) -> list[list[str]]:
        return [line.split("\t") for line in (self.state_dir / "rules").read_text().splitlines()]


class TestSelinux:
    @pytest.fixture
    def fakes(self, world_tmp: Path) -> SelinuxFakes:
        return SelinuxFakes.create(world_tmp / "selinux")

    def host_with(self, factory: FakeHostFactory, fakes: SelinuxFakes) -> FakeHost:
        return factory(bind_mounts={fakes.bin_dir: "/usr/local/sbin"})

    def test_absent_selinux_is_skipped_with_a_reason(self, fake_rhel_host: FakeHost) -> None:
        data = fake_rhel_host.workdir / "data"
        out = ok(run(fake_rhel_host, HostPlan(data_dir=str(data)), "selinux")).stdout
        assert "selinux: not present on this host (no getenforce); no labels to set; nothing changed" in out

    def test_disabled_selinux_is_skipped(self, fake_host_factory: FakeHostFactory, world_tmp: Path) -> None:
        fakes = SelinuxFakes.create(world_tmp / "selinux", mode="Disabled")
        host = self.host_with(fake_host_factory, fakes)
        out = ok(run(host, HostPlan(data_dir=str(host.workdir / "data")), "selinux")).stdout
        assert "selinux: Disabled; labels are not used while SELinux is disabled; nothing changed" in out
        assert [argv for _, argv in fakes.calls()] == [["getenforce"]]

    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_enforcing_adds_rule_relabels_then_nothing_changes(self, fake_host_factory: FakeHostFactory,
                                                              fakes: SelinuxFakes, user: str) -> None:
        host = self.host_with(fake_host_factory, fakes)
        data = host.workdir / "srv" / "devpi.data"
        plan = HostPlan(user=user, data_dir=str(data))
        spec = fcontext_spec(str(data))
        assert spec == str(data).replace(".", r"\.") + "(/.*)?"
        first = ok(run(host, plan, "selinux")).stdout
        root_uid = 0
        user_uid = root_uid if user == "root" else (host.workdir / "home" / user).stat().st_uid
        assert fakes.calls() == [
            (user_uid, ["getenforce"]),
            (root_uid, ["semanage", "fcontext", "-l", "-C"]),
            (root_uid, ["semanage", "fcontext", "-a", "-t", "container_file_t", spec]),
            (root_uid, ["restorecon", "-R", "-n", "-v", "--", str(data)]),
            (root_uid, ["restorecon", "-R", "-v", "--", str(data)]),
            (root_uid, ["matchpathcon", "-V", "--", str(data)]),
        ]
        assert f"selinux (Enforcing): {data}: added file-context rule; relabelled files" in first
        assert fakes.rules() == [[spec, "container_file_t"]]
        fakes.reset_calls()
        second = ok(run(host, plan, "selinux")).stdout
        assert f"selinux (Enforcing): {data} already labelled container_file_t; nothing changed" in second
        assert [argv for _, argv in fakes.calls()] == [
            ["getenforce"],
            ["semanage", "fcontext", "-l", "-C"],
            ["restorecon", "-R", "-n", "-v", "--", str(data)],
            ["matchpathcon", "-V", "--", str(data)],
        ]

    def test_existing_rule_with_another_type_is_modified(self, fake_host_factory: FakeHostFactory,
                                                         world_tmp: Path) -> None:
        data = "/opt/local/devpi/data"
        fakes = SelinuxFakes.create(world_tmp / "selinux", mode="Permissive",
                                    rules=[(fcontext_spec(data), "var_t")], labelled="var_t")
        host = self.host_with(fake_host_factory, fakes)
        out = ok(run(host, HostPlan(data_dir=data), "selinux")).stdout
        assert ["semanage", "fcontext", "-m", "-t", "container_file_t", fcontext_spec(data)] in \
            [argv for _, argv in fakes.calls()]
        assert "changed file-context rule from system_u:object_r:var_t:s0; relabelled files" in out
        assert fakes.rules() == [[fcontext_spec(data), "container_file_t"]]

    def test_destroy_keeps_rule_unless_purge(self, fake_host_factory: FakeHostFactory,
                                             fakes: SelinuxFakes) -> None:
        host = self.host_with(fake_host_factory, fakes)
        data = str(host.workdir / "data")
        ok(run(host, HostPlan(data_dir=data), "selinux"))
        fakes.reset_calls()
        keep = ok(run(host, HostPlan(data_dir=data), "selinux", "delete")).stdout
        assert "kept, like the data folder (purgeDataOnDestroy is false)" in keep
        assert fakes.calls() == []
        purge = HostPlan(data_dir=data, purge_data_on_destroy=True)
        out = ok(run(host, purge, "selinux", "delete")).stdout
        assert f"selinux: file-context rule for {data} removed" in out
        assert ["semanage", "fcontext", "-d", fcontext_spec(data)] in [argv for _, argv in fakes.calls()]
        assert fakes.rules() == []
        assert "nothing changed" in ok(run(host, purge, "selinux", "delete")).stdout


def _machine_nft() -> str:
    proc = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=False)
    return proc.stdout


@pytest.mark.docker
@pytest.mark.firewalld
class TestWholePlan:
    """All steps as the engine runs them: create in order, again (no-op), destroy in reverse order."""

    @pytest.mark.parametrize("user", ["root", SUDO_USER])
    def test_up_up_destroy(self, request: pytest.FixtureRequest, fake_host_factory: FakeHostFactory,
                           firewalld: Firewalld, user: str) -> None:
        engine = docker_engine_or_missing(request)
        host = fake_host_factory(bind_mounts={firewalld.bus_dir: "/run/dbus"}, set_env=docker_env(engine))
        data = host.workdir / "opt" / "local" / "devpi" / "data"
        plan = HostPlan(user=user, data_dir=str(data), port=3141)
        order = [s.name for s in render_steps(plan)]
        assert order == ["preflight", "data-dir", "selinux", "firewall"]

        first = {name: ok(run(host, plan, name)).stdout for name in order}
        assert "preflight ok" in first["preflight"]
        assert "changed: created" in first["data-dir"]
        assert "selinux: not present" in first["selinux"]
        assert "3141/tcp opened" in first["firewall"]
        state = (dir_state(data), firewalld.permanent_ports(), firewalld.nft_ruleset())

        second = {name: ok(run(host, plan, name)).stdout for name in order}
        assert all("nothing changed" in out for out in second.values()), second
        assert (dir_state(data), firewalld.permanent_ports(), firewalld.nft_ruleset()) == state

        (data / "+files").mkdir()
        for name in reversed(order):
            step = steps(plan)[name]
            if step.delete is not None:
                ok(host.run_remote(step.delete, user=user))
        assert "3141/tcp" not in firewalld.permanent_ports()
        assert not firewalld.nft_accepts_port(3141)
        assert (data / "+files").is_dir(), "destroy without purge keeps the data"
