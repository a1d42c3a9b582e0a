"""The ``host`` and ``server`` sections (a replica's ``host`` reads the same way) and the server URL
derived from them (https on the proxy's port when the stack has ``tls``)."""

from __future__ import annotations

from typing import Any

from components.config import rules
from components.config.defaults import (
    DEFAULT_CONTAINER_NAME,
    DEFAULT_DATA_DIR,
    DEFAULT_IMAGE,
    DEFAULT_PORT,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_SECRET_DIR,
    DEFAULT_SSH_PORT,
)
from components.config.errors import ConfigError
from components.config.model import (
    HostConfig,
    ServerConfig,
    TlsConfig,
    default_server_url,
)
from components.config.reader import KeyReader, key, refuse

__all__ = ["https_url", "load_host", "load_secret_dir", "load_server", "load_server_url"]


def load_host(raw: Any, path: str | None = None) -> HostConfig | None:
    """The top-level ``host`` (the primary) or, at ``path``, a replica's host: the same keys and rules."""
    if raw is None:
        return None
    o = KeyReader(raw, path or key("host"))
    address = o.text("address", required=True)
    o.rule("address", address, rules.host_address_problem(address))
    port = o.number("port", DEFAULT_SSH_PORT, rules.port_problem)
    user = o.text("user", "root", required=True)
    o.rule("user", user, rules.unix_user_problem(user))
    host_key = o.text("hostKey")
    insecure = o.flag("insecureIgnoreHostKey", False)
    if host_key is None and not insecure:
        raise ConfigError(
            o.at("hostKey"), None,
            "is required: pin the host's SSH key (e.g. the output of `ssh-keyscan -t ed25519 HOST`, "
            "without the host name) or set insecureIgnoreHostKey: true explicitly",
        )
    if host_key is not None:
        o.rule("hostKey", host_key, rules.host_key_problem(host_key))
    sudo = o.flag("sudo", user != "root")
    o.done()
    return HostConfig(address=address, port=port, user=user, host_key=host_key,
                      insecure_ignore_host_key=insecure and host_key is None, sudo=sudo)


def load_server(raw: Any) -> ServerConfig:
    o = KeyReader(raw if raw is not None else {}, key("server"))
    port = o.number("port", DEFAULT_PORT, rules.port_problem)
    image = o.text("image", DEFAULT_IMAGE, required=True)
    allow_floating = o.flag("allowFloatingTag", False)
    o.rule("image", image, rules.image_problem(image, allowed=allow_floating),
           opt_out="server.allowFloatingTag: true")
    data_dir = o.folder("dataDir", DEFAULT_DATA_DIR, rules.data_dir_problem)
    pypi = o.flag("pypiMirror", False)
    container_name = o.text("containerName", DEFAULT_CONTAINER_NAME, required=True)
    o.rule("containerName", container_name, rules.container_name_problem(container_name))
    firewall = o.choice("firewallWhenInactive", "fail", rules.FIREWALL_CHOICES)
    purge = o.flag("purgeDataOnDestroy", False)
    ready = o.number("readyTimeout", DEFAULT_READY_TIMEOUT, rules.ready_timeout_problem)
    docker_host = o.text("dockerHost")
    if docker_host is not None:
        o.rule("dockerHost", docker_host, rules.docker_host_problem(docker_host))
    ssh_opts = o.texts("sshOpts", ()) or ()
    secret_dir = load_secret_dir(o, data_dir)
    o.done()
    return ServerConfig(port=port, image=image, allow_floating_tag=allow_floating, data_dir=data_dir,
                        pypi_mirror=pypi, container_name=container_name, firewall_when_inactive=firewall,
                        purge_data_on_destroy=purge, ready_timeout=ready, docker_host=docker_host,
                        ssh_opts=ssh_opts, secret_dir=secret_dir)


def load_secret_dir(o: KeyReader, data_dir: str) -> str:
    """``secretDir`` (devpi's --secretfile folder): folder rules like ``dataDir``, and apart from it —
    the data folder goes into every backup archive, the secret must not."""
    secret_dir = o.folder("secretDir", DEFAULT_SECRET_DIR, rules.secret_dir_problem)
    if rules.folders_overlap(secret_dir, data_dir):
        o.rule("secretDir", secret_dir, f"must be a folder apart from dataDir ({data_dir}): the data folder "
               "goes into every backup archive, devpi's secret must not")
    return secret_dir


def load_server_url(raw: Any, host: HostConfig | None, server: ServerConfig, tls: TlsConfig | None = None,
                     *, required: bool) -> str:
    if raw is None or raw == "":
        if host is not None and tls is not None and tls.names:
            return https_url(tls.names[0], tls.https_port)
        if host is not None:
            return default_server_url(host.address, server.port)
        if not required:
            return ""
        raise ConfigError(key("serverUrl"), None,
                          "is required when no `host` is configured (the devpi server to manage)")
    refuse(key("serverUrl"), raw, rules.server_url_problem(raw))
    if tls is not None and not str(raw).startswith("https://"):
        hint = " (remove serverUrl to use the default https://<tls.names[0]>)" if host is not None else ""
        raise ConfigError(key("serverUrl"), raw, f"must be an https:// URL: a TLS stack is served over https{hint}")
    return str(raw).rstrip("/")


def https_url(address: str, port: int) -> str:
    """``https://<address>`` with ``:<port>`` unless 443 (IPv6 literals in brackets)."""
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"https://{host}" if port == 443 else f"https://{host}:{port}"
