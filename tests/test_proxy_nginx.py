"""The HTTPS proxy as data: the nginx site it renders, the container spec, the host files, and the
component under Pulumi mocks. Every link devpi renders becomes https (X-outside-url), plain HTTP only
redirects (or is absent), uploads have a declared limit, nothing secret is in the container, and
every bad value is refused naming its argument. (The same config runs in real nginx in
tests/test_proxy_nginx_real.py and in the container in tests/test_proxy_container_real.py.)"""

from __future__ import annotations

import hashlib
import re
import shlex
from dataclasses import replace
from typing import Any

import pulumi
import pytest

from components.config.errors import ConfigError
from components.config.model import HostConfig, ServerConfig, StackConfig, TlsConfig
from components.proxy.component import COMPONENT_TYPE, DevpiProxy, ProxyArgs
from components.proxy.nginx import NginxSite, outside_url, render_nginx_conf
from components.proxy.spec import (
    CHAIN_FILE,
    CONF_FILE,
    CONF_MOUNT,
    DIR_MODES,
    KEY_FILE,
    KEY_MODE,
    ProxySettings,
    docker_run_args,
    proxy_files,
    proxy_spec,
    reload_command,
)
from tests.mocks import MockRecorder, resolve, settle, unwrap_secret, use_mocks
from tests.tokens import CONTAINER, IMAGE

FAKE_CHAIN = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"
FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nMIGHsecretkeymaterial\n-----END PRIVATE KEY-----\n"
NAMES = ("devpi.example.com", "10.0.0.5")


def site(**changes: Any) -> NginxSite:
    return replace(NginxSite(names=NAMES), **changes)


def settings(**changes: Any) -> ProxySettings:
    return replace(ProxySettings(names=NAMES), **changes)


def directives(conf: str, name: str) -> list[str]:
    """The arguments of every ``name …;`` directive in ``conf``."""
    return [m.group(1).strip() for m in re.finditer(rf"^\s*{re.escape(name)}\s+([^;]*);", conf, re.MULTILINE)]


class TestSiteServesHttpsOnly:
    def test_https_server_with_the_certificate_folder_and_modern_tls(self) -> None:
        conf = render_nginx_conf(site())
        assert directives(conf, "listen")[0] == "443 ssl default_server"
        assert directives(conf, "ssl_certificate") == ["/etc/nginx/devpi-tls/chain.pem"]
        assert directives(conf, "ssl_certificate_key") == ["/etc/nginx/devpi-tls/key.pem"]
        assert directives(conf, "ssl_protocols") == ["TLSv1.2 TLSv1.3"]
        assert directives(conf, "server_name")[0] == '"devpi.example.com" "10.0.0.5"'
        assert "BEGIN" not in conf  # paths only, never PEM

    def test_plain_http_only_redirects_to_https(self) -> None:
        conf = render_nginx_conf(site(https_port=8443, http_port=8080))
        assert directives(conf, "listen") == ["8443 ssl default_server", "8080 default_server"]
        redirect = conf[conf.index("8080 default_server"):]
        assert directives(redirect, "return") == ["301 https://$host:8443$request_uri"]
        assert "proxy_pass" not in redirect

    def test_redirect_off_leaves_the_http_port_unused(self) -> None:
        conf = render_nginx_conf(site(http_redirect=False, http_port=8080))
        assert directives(conf, "listen") == ["443 ssl default_server"]
        assert "8080" not in conf and "return 301" not in conf

    def test_default_https_port_is_left_out_of_urls(self) -> None:
        conf = render_nginx_conf(site())
        assert directives(conf, "return") == ["301 https://$host$request_uri"]
        assert outside_url("devpi.example.com", 443) == "https://devpi.example.com"
        assert outside_url("devpi.example.com", 8443) == "https://devpi.example.com:8443"


class TestDevpiIsToldItsOutsideUrl:
    def test_proxy_headers(self) -> None:
        headers = directives(render_nginx_conf(site(https_port=8443)), "proxy_set_header")
        assert 'X-outside-url "https://$host:8443"' in headers
        assert "Host $host:$server_port" in headers
        assert "X-Real-IP $remote_addr" in headers
        assert "X-Forwarded-Proto https" in headers

    def test_upstream_is_devpi_on_the_shared_network_resolved_per_request(self) -> None:
        conf = render_nginx_conf(site())
        assert directives(conf, "set") == ['$devpi_upstream "http://devpi:3141"']
        assert directives(conf, "proxy_pass") == ["$devpi_upstream"]
        assert directives(conf, "resolver") == ["127.0.0.11 valid=10s ipv6=off"]

    def test_ip_upstream_needs_no_resolver(self) -> None:
        conf = render_nginx_conf(site(upstream_host="127.0.0.1", upstream_port=31410, resolver=None,
                                      listen_address="127.0.0.1", tls_dir="/tmp/x/tls"))
        assert directives(conf, "set") == ['$devpi_upstream "http://127.0.0.1:31410"']
        assert directives(conf, "resolver") == []
        assert directives(conf, "listen")[0] == "127.0.0.1:443 ssl default_server"
        assert directives(conf, "ssl_certificate") == ["/tmp/x/tls/chain.pem"]


class TestUploads:
    def test_limit_streaming_and_timeouts(self) -> None:
        conf = render_nginx_conf(site(max_upload_mb=700))
        assert directives(conf, "client_max_body_size") == ["700m"]
        assert directives(conf, "proxy_request_buffering") == ["off"]
        assert directives(conf, "proxy_read_timeout") == ["300s"]
        assert directives(conf, "proxy_http_version") == ["1.1"]

    def test_default_limit_fits_large_wheels(self) -> None:
        assert directives(render_nginx_conf(site()), "client_max_body_size") == ["512m"]


class TestSiteGuard:
    @pytest.mark.parametrize(("changes", "argument"), [
        ({"names": ()}, "names"),
        ({"names": ('evil.example.com"; } server { listen 81',)}, "names"),
        ({"names": ("a.example.com;",)}, "names"),
        ({"names": ("*.example.com",)}, "names"),
        ({"names": ("a b",)}, "names"),
        ({"names": ("Dup.example.com", "dup.example.com")}, "names"),
        ({"https_port": 0}, "https_port"),
        ({"http_port": 70000}, "http_port"),
        ({"http_port": 443}, "http_port"),
        ({"max_upload_mb": 0}, "max_upload_mb"),
        ({"max_upload_mb": True}, "max_upload_mb"),
        ({"max_upload_mb": 10**6}, "max_upload_mb"),
        ({"upstream_host": "devpi;"}, "upstream_host"),
        ({"resolver": "dns.example.com"}, "resolver"),
        ({"listen_address": "localhost"}, "listen_address"),
        ({"tls_dir": "/etc/nginx/tls dir"}, "tls_dir"),
        ({"tls_dir": "relative/tls"}, "tls_dir"),
        ({"tls_dir": "/etc/nginx/tls;"}, "tls_dir"),
    ])
    def test_refused_naming_the_argument(self, changes: dict[str, Any], argument: str) -> None:
        with pytest.raises(ConfigError, match=rf"^NginxSite\.{argument}: "):
            render_nginx_conf(site(**changes))

    def test_same_port_is_fine_without_redirect(self) -> None:
        assert render_nginx_conf(site(http_port=443, http_redirect=False))

    def test_ipv6_names_and_upstream(self) -> None:
        conf = render_nginx_conf(site(names=("::1",), upstream_host="::1", resolver=None, listen_address="::1"))
        assert directives(conf, "set") == ['$devpi_upstream "http://[::1]:3141"']
        assert directives(conf, "listen")[0] == "[::1]:443 ssl default_server"


class TestContainerSpec:
    def test_ports_on_every_address_same_numbers_inside(self) -> None:
        spec = proxy_spec(settings(https_port=8443, http_port=8080))
        assert [(p.ip, p.external, p.internal) for p in spec.ports] == [(None, 8443, 8443), (None, 8080, 8080)]
        assert [p.external for p in proxy_spec(settings(http_redirect=False)).ports] == [443]

    def test_folders_mounted_read_only_with_private_selinux_label(self) -> None:
        spec = proxy_spec(settings(proxy_dir="/srv/devpi/proxy"))
        assert [(m.host_path, m.container_path, m.read_only, m.selinux_relabel) for m in spec.mounts] == [
            ("/srv/devpi/proxy/conf.d", CONF_MOUNT, True, "Z"),
            ("/srv/devpi/proxy/tls", "/etc/nginx/devpi-tls", True, "Z"),
        ]

    def test_network_restart_health_and_nothing_secret(self) -> None:
        spec = proxy_spec(settings(network="devpi-net"))
        assert [(n.name, n.aliases) for n in spec.networks] == [("devpi-net", ())]
        assert spec.restart == "always"
        assert spec.env == () and spec.command == ()
        assert spec.healthcheck.test[0] == "CMD-SHELL" and "https://127.0.0.1:443/+api" in spec.healthcheck.test[1]
        assert spec.stop_signal == "SIGQUIT"

    def test_config_hash_label_follows_the_nginx_site(self) -> None:
        spec = proxy_spec(settings())
        conf = proxy_files(settings(), FAKE_CHAIN)[CONF_FILE][0]
        assert dict(spec.labels)["devpi-registry.config-hash"] == hashlib.sha256(conf.encode()).hexdigest()
        assert proxy_spec(settings(max_upload_mb=100)).config_hash != spec.config_hash
        # the image or container name are container inputs of their own, not part of the site
        assert proxy_spec(settings(container_name="other")).config_hash == spec.config_hash

    def test_docker_run_args(self) -> None:
        spec = proxy_spec(settings(network="devpi-net", bind_address="127.0.0.1", https_port=8443, http_port=8080))
        argv = docker_run_args(spec)
        line = shlex.join(argv)
        assert "--publish 127.0.0.1:8443:8443/tcp" in line and "--publish 127.0.0.1:8080:8080/tcp" in line
        assert f"--volume /opt/local/devpi/proxy/conf.d:{CONF_MOUNT}:ro,Z" in line
        assert "--network devpi-net" in line and "--network-alias" not in line
        assert "--env" not in argv and "--stop-signal SIGQUIT" in line
        assert argv[-1] == "nginx:1.28.0"
        assert reload_command(spec) == ["docker", "exec", "devpi-proxy", "nginx", "-s", "reload"]

    @pytest.mark.parametrize(("changes", "argument"), [
        ({"image": "nginx:latest"}, "image"),
        ({"image": "nginx"}, "image"),
        ({"proxy_dir": "/etc"}, "proxy_dir"),
        ({"proxy_dir": "/opt/local/devpi/a:b"}, "proxy_dir"),
        ({"container_name": "-bad"}, "container_name"),
        ({"network": "bad net"}, "network"),
        ({"names": ("bad name",)}, "names"),
    ])
    def test_guard(self, changes: dict[str, Any], argument: str) -> None:
        with pytest.raises(ConfigError, match=rf"^(ProxySettings|NginxSite)\.{argument}: "):
            proxy_spec(settings(**changes))

    def test_floating_tag_with_opt_out(self) -> None:
        assert proxy_spec(settings(image="nginx:1.28", allow_floating_tag=True)).image == "nginx:1.28"


class TestHostFiles:
    def test_files_modes_and_no_key(self) -> None:
        files = proxy_files(settings(), FAKE_CHAIN)
        assert set(files) == {CONF_FILE, CHAIN_FILE} and KEY_FILE not in files
        assert files[CHAIN_FILE] == (FAKE_CHAIN, 0o644)
        assert files[CONF_FILE][1] == 0o644 and "server {" in files[CONF_FILE][0]
        assert KEY_FILE == "tls/key.pem" and KEY_MODE == 0o600
        assert DIR_MODES == {"conf.d": 0o755, "tls": 0o700}
        assert {p.split("/")[0] for p in (*files, KEY_FILE)} == set(DIR_MODES)

    def test_chain_with_a_private_key_is_refused_without_showing_it(self) -> None:
        with pytest.raises(ConfigError, match="must not contain a private key") as info:
            proxy_files(settings(), FAKE_CHAIN + FAKE_KEY)
        assert "secretkeymaterial" not in str(info.value)

    def test_chain_must_be_pem(self) -> None:
        with pytest.raises(ConfigError, match=r"^proxy_files\.chain_pem: must be PEM"):
            proxy_files(settings(), "not a certificate")


def stack_config(**tls: Any) -> StackConfig:
    return StackConfig(
        host=HostConfig(address="10.0.0.5", host_key="ssh-ed25519 AAAA"), server=ServerConfig(),
        server_url="https://devpi.example.com",
        tls=TlsConfig(certificate=FAKE_CHAIN, names=NAMES, **tls),
    )


class TestFromConfig:
    def test_settings_follow_the_tls_config(self) -> None:
        rec = MockRecorder()
        with use_mocks(rec):
            provider = pulumi.ProviderResource("docker", "p", {})
            args = ProxyArgs.from_config(stack_config(https_port=8443, http_redirect=False, max_upload_mb=64,
                                                      proxy_image="nginx:1.28.1"), provider, None)  # type: ignore[arg-type]
        s = args.settings
        assert (s.names, s.https_port, s.http_redirect, s.max_upload_mb, s.image) == (
            NAMES, 8443, False, 64, "nginx:1.28.1")
        assert s.proxy_dir == "/opt/local/devpi/proxy" and s.container_name == "devpi-proxy"

    def test_stack_without_tls_has_no_proxy(self) -> None:
        config = replace(stack_config(), tls=None)
        with pytest.raises(ValueError, match="no HTTPS proxy"):
            ProxyArgs.from_config(config, None, None)  # type: ignore[arg-type]


class TestComponentUnderMocks:
    def deploy(self) -> MockRecorder:
        import pulumi_docker as docker

        rec = MockRecorder()
        with use_mocks(rec):
            provider = docker.Provider("host-docker", host="ssh://deploy@10.0.0.5:22")
            network = docker.Network("devpi-net", name="devpi-registry", opts=pulumi.ResourceOptions(provider=provider))
            step = pulumi.CustomResource("command:remote:Command", "proxy-files", {"create": "write"})
            proxy = DevpiProxy("proxy", ProxyArgs.from_config(stack_config(), provider, network),
                               pulumi.ResourceOptions(depends_on=[step]))
            settle()
            assert resolve(proxy.config_hash) == proxy.spec.config_hash
        return rec

    def test_container_inputs(self) -> None:
        rec = self.deploy()
        assert rec.one(IMAGE).inputs["keepLocally"] is True
        container = rec.one(CONTAINER)
        inputs = {k: unwrap_secret(v)[0] for k, v in container.inputs.items()}
        assert inputs["networksAdvanced"] == [{"name": "devpi-registry"}]
        assert [(v["containerPath"], v["readOnly"], v["selinuxRelabel"]) for v in inputs["volumes"]] == [
            (CONF_MOUNT, True, "Z"), ("/etc/nginx/devpi-tls", True, "Z")]
        assert sorted(p["external"] for p in inputs["ports"]) == [80, 443]
        assert inputs["restart"] == "always" and inputs["wait"] is True and inputs["stopSignal"] == "SIGQUIT"
        assert "envs" not in inputs and "command" not in inputs
        assert "BEGIN" not in repr(inputs)
        assert rec.depends_on(container) >= {"proxy-files"}
        assert rec.by_urn(container.parent_urn or "").typ == COMPONENT_TYPE
