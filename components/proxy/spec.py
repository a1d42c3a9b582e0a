"""What the HTTPS proxy container and its host files look like, computed once as plain data.

``proxy_spec`` turns the proxy settings into a frozen ``ProxySpec`` that both the Pulumi component
(``components.proxy.component.DevpiProxy``) and the real-container tests (through
``docker_run_args``) use; ``proxy_files`` lists the host files the host step writes. The container
types (``PortMapping``, ``BindMount``, ``NetworkAttachment``, ``HealthCheck``) are the devpi
container's (``components.server.spec``).

The host folder (``proxy_dir``, default /opt/local/devpi/proxy)::

    <proxy_dir>/conf.d/devpi.conf   the rendered nginx site (0644)   -> /etc/nginx/conf.d (ro, Z)
    <proxy_dir>/tls/chain.pem       certificate chain, leaf first    -> /etc/nginx/devpi-tls (ro, Z)
    <proxy_dir>/tls/key.pem         private key, 0600 root (KEY_FILE; written by the host step from
                                    the secret, never by this module)

Why these choices:

- **folders, not files, are mounted.** A bind-mounted *file* pins the inode it had when the
  container started: a host step that replaces the file (write + rename, the only way to never
  expose half a key) would leave nginx reading the old certificate for ever. A mounted folder shows
  the new file, so rotation is "rewrite the files, ``nginx -s reload``" — no container restart and
  devpi is not touched. Mounting ``conf.d`` whole also hides the image's own ``default.conf`` (a
  welcome page on port 80 that would otherwise be served next to the redirect); the official
  image's entrypoint skips its IPv6 and template steps when that file is absent or read-only;
- **SELinux "Z"** (private label) on both folders: only this container reads them. Docker relabels
  at container start; files the host step creates *inside* the folder later inherit its type, which
  is why the host step writes temp files in the same folder and renames them (a file moved in from
  /tmp would keep ``tmp_t`` and be refused);
- **nothing secret in the container**: the key is only a file on the host; the spec carries no
  environment, no command, and its labels hold a hash of the *nginx config* (``config-hash``: a
  changed site re-creates the container, which then reads it), never of the key or certificate —
  so a certificate rotation changes no container input;
- **ports published on every address** (the proxy is what clients reach; the firewall opens these
  instead of devpi's) and nginx listens on the same port numbers inside the container, so
  ``$server_port`` and the redirect's target are the outside ones;
- **healthcheck** through the proxy to devpi's ``/+api`` with the image's curl (the official image
  ships curl): healthy means a client can be served. ``-k`` because the check talks to 127.0.0.1,
  which need not be a certificate name; the certificate itself is validated at preview.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from components.config import rules
from components.config.defaults import (
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PROXY_CONTAINER_NAME,
    DEFAULT_PROXY_DIR,
    DEFAULT_PROXY_IMAGE,
    PROXY_NETWORK,
)
from components.config.errors import refuse_arguments
from components.proxy.nginx import CHAIN_NAME, KEY_NAME, TLS_MOUNT, NginxSite, render_nginx_conf
from components.server.spec import (
    LABEL_PREFIX,
    BindMount,
    HealthCheck,
    NetworkAttachment,
    PortMapping,
    run_flags,
)

__all__ = [
    "CHAIN_FILE",
    "CONF_DIR",
    "CONF_FILE",
    "CONF_MOUNT",
    "DIR_MODES",
    "KEY_FILE",
    "KEY_MODE",
    "PROXY_NETWORK",
    "TLS_DIR",
    "ProxySettings",
    "ProxySpec",
    "docker_run_args",
    "nginx_site",
    "proxy_files",
    "proxy_spec",
    "reload_command",
]

#: host sub-folders of ``proxy_dir`` and where the container sees them
CONF_DIR = "conf.d"
TLS_DIR = "tls"
CONF_MOUNT = "/etc/nginx/conf.d"
#: files relative to ``proxy_dir``
CONF_FILE = f"{CONF_DIR}/devpi.conf"
CHAIN_FILE = f"{TLS_DIR}/{CHAIN_NAME}"
#: the private key, relative to ``proxy_dir``: written by the host step from the secret, mode 600
KEY_FILE = f"{TLS_DIR}/{KEY_NAME}"
KEY_MODE = 0o600
#: modes of the sub-folders the host step creates (the key's folder is root's alone)
DIR_MODES = {CONF_DIR: 0o755, TLS_DIR: 0o700}
#: the user-defined Docker network devpi and the proxy share (the registry creates it)
_PEM_CERT = "-----BEGIN CERTIFICATE-----"


@dataclass(frozen=True, kw_only=True)
class ProxySettings:
    """The proxy's settings (``ProxyArgs.from_config`` fills them from the stack's ``tls``)."""

    names: tuple[str, ...]
    image: str = DEFAULT_PROXY_IMAGE
    allow_floating_tag: bool = False
    container_name: str = DEFAULT_PROXY_CONTAINER_NAME
    proxy_dir: str = DEFAULT_PROXY_DIR
    https_port: int = DEFAULT_HTTPS_PORT
    http_port: int = DEFAULT_HTTP_PORT
    http_redirect: bool = True
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    network: str = PROXY_NETWORK
    #: host address the ports are published on (None: every address)
    bind_address: str | None = None


@dataclass(frozen=True)
class ProxySpec:
    """The nginx proxy container: no environment, no command, nothing secret."""

    name: str
    image: str
    restart: str
    ports: tuple[PortMapping, ...]
    mounts: tuple[BindMount, ...]
    networks: tuple[NetworkAttachment, ...]
    healthcheck: HealthCheck
    labels: tuple[tuple[str, str], ...]
    config_hash: str
    #: nginx's graceful stop (the official image's STOPSIGNAL, declared here for any image)
    stop_signal: str = "SIGQUIT"
    log_driver: str = "json-file"
    log_opts: tuple[tuple[str, str], ...] = (("max-size", "10m"), ("max-file", "3"))
    #: always empty: the official image's own entrypoint and CMD (nginx in the foreground)
    env: tuple[tuple[str, str], ...] = ()
    command: tuple[str, ...] = ()


def _check(settings: ProxySettings) -> None:
    """The loader ran the same rules naming config keys; this guard names the argument."""
    refuse_arguments(type(settings).__name__, [
        ("image", settings.image,
         rules.image_problem(settings.image, allowed=settings.allow_floating_tag, example=DEFAULT_PROXY_IMAGE)),
        ("container_name", settings.container_name, rules.container_name_problem(settings.container_name)),
        ("proxy_dir", settings.proxy_dir, rules.proxy_dir_problem(settings.proxy_dir)),
        ("network", settings.network, rules.container_name_problem(settings.network)),
    ])


def nginx_site(settings: ProxySettings) -> NginxSite:
    """The nginx site inside the container: devpi at ``devpi:3141`` on the shared network."""
    return NginxSite(names=tuple(settings.names), https_port=settings.https_port, http_port=settings.http_port,
                     http_redirect=settings.http_redirect, max_upload_mb=settings.max_upload_mb)


def _config_hash(conf: str) -> str:
    return hashlib.sha256(conf.encode()).hexdigest()


def _health_command(https_port: int) -> str:
    return f"curl -fsS -k -o /dev/null --max-time 4 https://127.0.0.1:{https_port}/+api"


def proxy_spec(settings: ProxySettings) -> ProxySpec:
    """The container for ``settings``; raises ``ConfigError`` naming the argument and value it refuses."""
    _check(settings)
    conf = render_nginx_conf(nginx_site(settings))  # checks names, ports and the upload size
    ports = [PortMapping(external=settings.https_port, internal=settings.https_port, ip=settings.bind_address)]
    if settings.http_redirect:
        ports.append(PortMapping(external=settings.http_port, internal=settings.http_port, ip=settings.bind_address))
    digest = _config_hash(conf)
    return ProxySpec(
        name=settings.container_name,
        image=settings.image,
        restart="always",
        ports=tuple(ports),
        mounts=(
            BindMount(f"{settings.proxy_dir}/{CONF_DIR}", CONF_MOUNT, selinux_relabel="Z", read_only=True),
            BindMount(f"{settings.proxy_dir}/{TLS_DIR}", TLS_MOUNT, selinux_relabel="Z", read_only=True),
        ),
        networks=(NetworkAttachment(settings.network, aliases=()),),
        healthcheck=HealthCheck(test=("CMD-SHELL", _health_command(settings.https_port)), interval="10s",
                                timeout="5s", retries=3, start_period="10s"),
        labels=(
            (f"{LABEL_PREFIX}.managed-by", "devpi-registry"),
            (f"{LABEL_PREFIX}.role", "https-proxy"),
            (f"{LABEL_PREFIX}.config-hash", digest),
        ),
        config_hash=digest,
    )


def proxy_files(settings: ProxySettings, chain_pem: str) -> dict[str, tuple[str, int]]:
    """``relative path -> (content, mode)`` of the files under ``proxy_dir``, the key excepted.

    The host step writes these plus ``KEY_FILE`` (mode ``KEY_MODE``) from the secret, in the
    sub-folders of ``DIR_MODES``. ``chain_pem`` must be PEM certificates only: a private key pasted
    into the (plain) certificate config is refused here instead of being published world-readable.
    """
    problem = None
    if not isinstance(chain_pem, str) or _PEM_CERT not in chain_pem:
        problem = "must be PEM certificates (leaf first)"
    elif "PRIVATE KEY" in chain_pem:
        problem = "must not contain a private key (the key is the secret tlsPrivateKey)"
    if problem:
        # Never echo the value: it may hold key material.
        refuse_arguments("proxy_files", [("chain_pem", "[not shown]", problem)])
    text = chain_pem if chain_pem.endswith("\n") else chain_pem + "\n"
    return {
        CONF_FILE: (render_nginx_conf(nginx_site(settings)), 0o644),
        CHAIN_FILE: (text, 0o644),
    }


def reload_command(spec: ProxySpec) -> list[str]:
    """What the host step runs after rewriting the files: nginx re-reads config and certificate,
    old workers finish their requests, devpi is not touched."""
    return ["docker", "exec", spec.name, "nginx", "-s", "reload"]


def docker_run_args(spec: ProxySpec) -> list[str]:
    """``docker run`` argv equivalent to the container the component declares (for tests and humans)."""
    argv = ["docker", "run", "--detach", "--name", spec.name, "--restart", spec.restart,
            "--stop-signal", spec.stop_signal]
    argv += run_flags(spec)
    argv.append(spec.image)
    argv += list(spec.command)
    return argv

