"""The nginx site that terminates HTTPS in front of devpi-server, rendered as text (pure).

``render_nginx_conf(site)`` returns the content of one file for nginx's ``conf.d`` folder (``http``
context): one HTTPS ``server`` that proxies everything to devpi, and, when ``http_redirect`` is on,
one plain-HTTP ``server`` that only answers ``301`` to the https URL (absent when off: nothing
listens on the HTTP port). The same renderer serves the container (upstream ``devpi:3141`` on the
shared Docker network) and the real-nginx tests (upstream ``127.0.0.1:<port>``, files in a temp
folder), so the tests run the very config the stack deploys.

What the config encodes and why:

- ``X-outside-url: https://$host[:port]``: devpi-server builds every absolute link (``+simple/``
  hrefs, ``+api`` URLs, login redirects) from this header when present (devpi's own
  ``devpi-gen-config`` nginx template sets it), so clients are never sent back to plain http or to
  devpi's internal address. ``$host`` is the name the client used (lower-cased, port stripped), so a
  client using any of the certificate's names gets links under that name; the port is the stack's
  https port (left out when it is 443, as browsers and pip write it);
- ``Host: $host:$server_port``, ``X-Real-IP``, ``X-Forwarded-For``, ``X-Forwarded-Proto: https``:
  the usual proxy headers (devpi logs the real client);
- TLS 1.2 and 1.3 only, server cipher preference off and no session tickets (Mozilla's
  "intermediate" profile; ciphers are nginx's default ``HIGH:!aNULL:!MD5``). No HTTP/2: pip, twine and
  devpi-client speak HTTP/1.1 (requests has no HTTP/2), and the ``http2`` spelling changed in nginx
  1.25 (``listen … http2`` deprecated, ``http2 on`` unknown before), so leaving it out keeps one config
  valid on the pinned image and on Debian's nginx the tests run;
- uploads: ``client_max_body_size <max_upload_mb>m`` (nginx answers 413 above it, before a byte of
  the body reaches devpi; devpi-server 6.20's own ``--max-request-body-size`` defaults to 1 GiB, so a
  limit above 1024 MiB also needs that option raised), ``proxy_request_buffering off`` (a large
  wheel streams to devpi instead of being spooled to the proxy's disk first) with HTTP/1.1 to the
  upstream, and 300 s read/send timeouts (devpi hashes and stores a large upload before answering);
- the upstream is looked up at request time (``set $devpi_upstream`` + ``resolver``): with a literal
  ``proxy_pass http://devpi:3141`` nginx resolves the name once at start, refuses to start while devpi
  is absent, and keeps sending to the old address after devpi's container is replaced (an image
  upgrade gives it a new IP). In the container ``resolver`` is Docker's embedded DNS (127.0.0.11,
  present on every user-defined network); an IP-literal upstream needs none.

Every value is checked (``refuse_arguments``, with the stack's rules in ``components.config.rules``)
before it is written, and the names, the only free text, must be DNS names or IP literals (letters,
digits, ``-``, ``.``, ``:``), so nothing can close a quoted string, a directive or a block.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from components.config import rules
from components.config.defaults import DEFAULT_HTTP_PORT, DEFAULT_HTTPS_PORT, DEFAULT_MAX_UPLOAD_MB
from components.config.errors import refuse_arguments
from components.server.spec import CONTAINER_PORT, NETWORK_ALIAS

__all__ = [
    "CHAIN_NAME",
    "DOCKER_DNS",
    "KEY_NAME",
    "PROXY_TIMEOUT_SECONDS",
    "TLS_MOUNT",
    "NginxSettings",
    "NginxSite",
    "outside_url",
    "render_nginx_conf",
]

#: where the proxy container sees the certificate folder (mounted read-only)
TLS_MOUNT = "/etc/nginx/devpi-tls"
CHAIN_NAME = "chain.pem"
KEY_NAME = "key.pem"
#: Docker's embedded DNS server, on every user-defined network
DOCKER_DNS = "127.0.0.11"
#: devpi answers an upload once it has hashed and stored it: give large wheels time
PROXY_TIMEOUT_SECONDS = 300
_PATH_CHARS = re.compile(r"[A-Za-z0-9/_.+\[\]-]+")


class NginxSettings(Protocol):
    """What ``render_nginx_conf`` reads; ``NginxSite`` provides it."""

    @property
    def names(self) -> Sequence[str]: ...
    @property
    def https_port(self) -> int: ...
    @property
    def http_port(self) -> int: ...
    @property
    def http_redirect(self) -> bool: ...
    @property
    def max_upload_mb(self) -> int: ...
    @property
    def upstream_host(self) -> str: ...
    @property
    def upstream_port(self) -> int: ...
    @property
    def resolver(self) -> str | None: ...
    @property
    def listen_address(self) -> str | None: ...
    @property
    def tls_dir(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class NginxSite:
    """One proxied devpi site. Defaults are the container's: devpi at ``devpi:3141`` on the shared
    network, Docker's DNS, every address, the certificate folder mounted at ``TLS_MOUNT``."""

    names: tuple[str, ...]
    https_port: int = DEFAULT_HTTPS_PORT
    http_port: int = DEFAULT_HTTP_PORT
    http_redirect: bool = True
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    upstream_host: str = NETWORK_ALIAS
    upstream_port: int = CONTAINER_PORT
    #: DNS server for the upstream name (None: the upstream is an IP literal)
    resolver: str | None = DOCKER_DNS
    #: address nginx listens on (None: every IPv4 address, as in the container)
    listen_address: str | None = None
    tls_dir: str = TLS_MOUNT


def _ip(value: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value) if isinstance(value, str) else None
    except ValueError:
        return None


def _names_problem(names: object) -> str | None:
    if isinstance(names, str) or not isinstance(names, Sequence) or not names:
        return "must be a non-empty list of names"
    for name in names:
        problem = rules.tls_name_problem(name)
        if problem:
            return problem
    if len({str(n).lower() for n in names}) != len(names):
        return "must not repeat a name"
    return None


def _host_problem(value: object) -> str | None:
    return None if _ip(value) is not None else rules.tls_name_problem(value)


def _optional_ip_problem(value: object) -> str | None:
    if value is None or _ip(value) is not None:
        return None
    return "must be an IP address (or None)"


def _tls_dir_problem(value: object) -> str | None:
    if not isinstance(value, str) or not value.startswith("/") or not _PATH_CHARS.fullmatch(value):
        return "must be an absolute path of letters, digits and / _ . + - [ ]"
    if posixpath.normpath(value) != value:
        return "must be a normalised path (no trailing '/', '..' or '//')"
    return None


def _ports_problem(settings: NginxSettings) -> str | None:
    if settings.http_redirect and settings.http_port == settings.https_port:
        return "must differ from https_port while http_redirect is on"
    return None


def _check(settings: NginxSettings) -> None:
    refuse_arguments(type(settings).__name__, [
        ("names", list(settings.names), _names_problem(settings.names)),
        ("https_port", settings.https_port, rules.port_problem(settings.https_port)),
        ("http_port", settings.http_port, rules.port_problem(settings.http_port)),
        ("http_port", settings.http_port, _ports_problem(settings)),
        ("http_redirect", settings.http_redirect,
         None if isinstance(settings.http_redirect, bool) else "must be true or false"),
        ("max_upload_mb", settings.max_upload_mb, rules.max_upload_problem(settings.max_upload_mb)),
        ("upstream_host", settings.upstream_host, _host_problem(settings.upstream_host)),
        ("upstream_port", settings.upstream_port, rules.port_problem(settings.upstream_port)),
        ("resolver", settings.resolver, _optional_ip_problem(settings.resolver)),
        ("listen_address", settings.listen_address, _optional_ip_problem(settings.listen_address)),
        ("tls_dir", settings.tls_dir, _tls_dir_problem(settings.tls_dir)),
    ])


def _host_port(host: str, port: int) -> str:
    """``host:port`` with IPv6 literals in brackets."""
    return f"[{host}]:{port}" if _ip(host) is not None and ":" in host else f"{host}:{port}"


def _listen(address: str | None, port: int) -> str:
    return str(port) if address is None else _host_port(address, port)


def _port_suffix(port: int) -> str:
    return "" if port == DEFAULT_HTTPS_PORT else f":{port}"


def outside_url(host: str, https_port: int) -> str:
    """The URL devpi renders its links under for a client that used ``host``."""
    return f"https://{host}{_port_suffix(https_port)}"


def _quoted(names: Sequence[str]) -> str:
    # Checked names contain no quote, blank, ';' or brace; quoting keeps the directive unambiguous.
    return " ".join(f'"{n}"' for n in names)


def _https_server(s: NginxSettings) -> list[str]:
    upstream = f"http://{_host_port(s.upstream_host, s.upstream_port)}"
    resolver = [f"    resolver {s.resolver} valid=10s ipv6=off;", "    resolver_timeout 5s;"] if s.resolver else []
    t = PROXY_TIMEOUT_SECONDS
    return [
        "server {",
        f"    listen {_listen(s.listen_address, s.https_port)} ssl default_server;",
        f"    server_name {_quoted(s.names)};",
        "",
        f"    ssl_certificate     {s.tls_dir}/{CHAIN_NAME};",
        f"    ssl_certificate_key {s.tls_dir}/{KEY_NAME};",
        "    ssl_protocols TLSv1.2 TLSv1.3;",
        "    ssl_prefer_server_ciphers off;",
        "    ssl_session_cache shared:devpi_tls:10m;",
        "    ssl_session_timeout 1d;",
        "    ssl_session_tickets off;",
        "",
        f"    client_max_body_size {s.max_upload_mb}m;",
        f"    client_body_timeout {t}s;",
        "    proxy_request_buffering off;",
        "    proxy_http_version 1.1;",
        f"    proxy_read_timeout {t}s;",
        f"    proxy_send_timeout {t}s;",
        "",
        "    gzip on;",
        "    gzip_min_length 2000;",
        "    gzip_proxied any;",
        "    gzip_types application/json application/vnd.pypi.simple.v1+json text/css text/plain;",
        "",
        *resolver,
        f'    set $devpi_upstream "{upstream}";',
        "",
        "    location / {",
        "        proxy_pass $devpi_upstream;",
        "        proxy_set_header Host $host:$server_port;",
        f'        proxy_set_header X-outside-url "https://$host{_port_suffix(s.https_port)}";',
        "        proxy_set_header X-Real-IP $remote_addr;",
        "        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "        proxy_set_header X-Forwarded-Proto https;",
        '        proxy_set_header Connection "";',
        "    }",
        "}",
    ]


def _redirect_server(s: NginxSettings) -> list[str]:
    return [
        "server {",
        f"    listen {_listen(s.listen_address, s.http_port)} default_server;",
        f"    server_name {_quoted(s.names)};",
        f"    return 301 https://$host{_port_suffix(s.https_port)}$request_uri;",
        "}",
    ]


def render_nginx_conf(settings: NginxSettings) -> str:
    """The ``conf.d`` file for ``settings``; raises ``ConfigError`` naming the argument it refuses."""
    _check(settings)
    lines = [
        "# devpi-registry: HTTPS reverse proxy in front of devpi-server (generated: edits are overwritten)",
        "",
        *_https_server(settings),
    ]
    if settings.http_redirect:
        lines += ["", "# plain HTTP only redirects to https", *_redirect_server(settings)]
    return "\n".join(lines) + "\n"
