"""The ``tls`` section and the secret ``tlsPrivateKey``: the proxy's settings on a managed host, or
just the CA a registry-only stack trusts; the certificate checks themselves are in
:mod:`components.config.tls`."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping
from typing import Any

from components.config import rules
from components.config import tls as certs
from components.config.defaults import (
    DEFAULT_CLIENT_CA_PATH,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PROXY_CONTAINER_NAME,
    DEFAULT_PROXY_DIR,
    DEFAULT_PROXY_IMAGE,
)
from components.config.errors import ConfigError
from components.config.model import (
    HostConfig,
    ServerConfig,
    TlsConfig,
)
from components.config.reader import SECRET_PLACEHOLDER, KeyReader, hidden, key, refuse

__all__ = ["load_tls"]


#: ``tls`` keys that configure the proxy the stack runs on ``host`` (meaningless without one)
_PROXY_KEYS = ("certificate", "names", "httpsPort", "httpRedirect", "httpPort", "proxyImage",
               "allowFloatingProxyTag", "proxyContainerName", "proxyDir", "maxUploadMb")
_NO_PROXY = ("is for the HTTPS proxy, which is managed only with `host`; a registry-only stack "
             "(serverUrl without host) takes only caBundle and clientCaPath in `tls`")


def _pem_error(path: str, value: Any, problem: str) -> ConfigError:
    """A problem with a PEM value: shown by its shape only, masked when it holds key material."""
    return ConfigError(path, certs.pem_summary(value), problem,
                       secret=isinstance(value, str) and "PRIVATE KEY" in value)


def load_tls(values: Mapping[str, Any], host: HostConfig | None, server: ServerConfig, *,
              partial: bool) -> TlsConfig | None:
    """``tls`` and the secret ``tlsPrivateKey``. The PEM checks need ``cryptography`` (the ``stack``
    extra); a partial load (the CLI) without it skips them and leaves ``not_after`` unknown."""
    raw, private_key = values.get("tls"), values.get("tlsPrivateKey")
    if raw is None:
        if private_key is not None:
            raise ConfigError(key("tlsPrivateKey"), private_key,
                              "is set but `tls` is not: add tls (certificate, names) or remove the key", secret=True)
        return None
    o = KeyReader(raw, key("tls"))
    checks = not partial or certs.crypto_available()
    ca_bundle = o.text("caBundle")
    if ca_bundle is not None and checks and (problem := certs.ca_bundle_problem(ca_bundle)):
        raise _pem_error(o.at("caBundle"), ca_bundle, problem)
    client_ca_path = o.text("clientCaPath", DEFAULT_CLIENT_CA_PATH, required=True)
    o.rule("clientCaPath", client_ca_path, rules.client_ca_path_problem(client_ca_path))
    if host is None:
        for name in _PROXY_KEYS:
            if o.has(name):
                raise ConfigError(o.at(name), certs.pem_summary(o.value[name]) if name == "certificate"
                                  else o.value[name], _NO_PROXY, secret=hidden(name, o.value[name]))
        if private_key is not None:
            raise ConfigError(key("tlsPrivateKey"), private_key, _NO_PROXY, secret=True)
        o.done()
        return TlsConfig(ca_bundle=ca_bundle, client_ca_path=client_ca_path)
    tls = _load_proxy(o, server, ca_bundle=ca_bundle, client_ca_path=client_ca_path, checks=checks)
    o.done()
    if not partial and not private_key:
        raise ConfigError(key("tlsPrivateKey"), None, "is required with `tls` and `host` (the proxy's key): "
                          "pulumi config set --secret tlsPrivateKey < key.pem")
    if checks and tls.certificate is not None:
        _check_certificate(tls, private_key if private_key != SECRET_PLACEHOLDER else None)
        return dataclasses.replace(tls, not_after=certs.certificate_not_after(tls.certificate))
    return tls


def _load_proxy(o: KeyReader, server: ServerConfig, *, ca_bundle: str | None, client_ca_path: str,
                checks: bool) -> TlsConfig:
    """The proxy keys of ``tls`` on a managed host (value rules; the certificate is checked after)."""
    certificate = o.text("certificate")
    if certificate is None:
        raise ConfigError(o.at("certificate"), None, "is required with `host` (the proxy serves it): "
                          "pulumi config set --path tls.certificate < chain.pem (server certificate first)")
    if checks and (problem := certs.certificate_chain_problem(certificate)):
        raise _pem_error(o.at("certificate"), certificate, problem)
    names = o.texts("names") or ()
    if not names:
        raise ConfigError(o.at("names"), list(names), "is required with `host`: the names clients use to reach "
                          "the registry (the first one makes the default serverUrl)")
    for j, name in enumerate(names):
        refuse(f"{o.at('names')}[{j}]", name, rules.tls_name_problem(name))
        if name.lower() in (n.lower() for n in names[:j]):
            raise ConfigError(f"{o.at('names')}[{j}]", name, "is listed twice")
    https_port = o.number("httpsPort", DEFAULT_HTTPS_PORT, rules.port_problem)
    redirect = o.flag("httpRedirect", True)
    http_port = o.number("httpPort", DEFAULT_HTTP_PORT, rules.port_problem)
    if redirect and http_port == https_port:
        o.rule("httpPort", http_port, "must differ from httpsPort (the redirect and https cannot share a port)",
               fix="pick another port, or set httpRedirect: false")
    for port_key, port in (("httpsPort", https_port), ("httpPort", http_port if redirect else None)):
        if port == server.port:
            o.rule(port_key, port, f"must differ from server.port ({server.port}): devpi still binds that port "
                   "on the host (published on 127.0.0.1 only, behind the proxy)")
    image = o.text("proxyImage", DEFAULT_PROXY_IMAGE, required=True)
    allow_floating = o.flag("allowFloatingProxyTag", False)
    o.rule("proxyImage", image, rules.image_problem(image, allowed=allow_floating, example=DEFAULT_PROXY_IMAGE),
           opt_out="tls.allowFloatingProxyTag: true")
    container = o.text("proxyContainerName", DEFAULT_PROXY_CONTAINER_NAME, required=True)
    o.rule("proxyContainerName", container, rules.container_name_problem(container))
    if container == server.container_name:
        o.rule("proxyContainerName", container, "must differ from server.containerName (both run on the host)")
    proxy_dir = o.folder("proxyDir", DEFAULT_PROXY_DIR, rules.proxy_dir_problem)
    for other_key, other in (("server.dataDir", server.data_dir), ("server.secretDir", server.secret_dir)):
        if rules.folders_overlap(proxy_dir, other):
            o.rule("proxyDir", proxy_dir, f"must be a folder apart from {other_key} ({other}): each folder gets "
                   "its own SELinux label and owner, and one inside the other would relabel both")
    max_upload = o.number("maxUploadMb", DEFAULT_MAX_UPLOAD_MB, rules.max_upload_problem)
    return TlsConfig(certificate=certificate, names=names, ca_bundle=ca_bundle, https_port=https_port,
                     http_redirect=redirect, http_port=http_port, proxy_image=image,
                     allow_floating_proxy_tag=allow_floating, proxy_container_name=container,
                     proxy_dir=proxy_dir, max_upload_mb=max_upload, client_ca_path=client_ca_path)


def _check_certificate(tls: TlsConfig, private_key: Any) -> None:
    """What makes the proxy start and clients accept it: the key (never shown) fits the certificate,
    which covers every name, is valid now, and leads to ``caBundle`` when one is declared."""
    chain = tls.certificate
    if chain is None:
        return
    if private_key is not None:
        problem = certs.private_key_problem(private_key) or certs.key_match_problem(chain, private_key)
        refuse(key("tlsPrivateKey"), private_key, problem, secret=True)
    refuse(key("tls.names"), list(tls.names), certs.names_coverage_problem(chain, tls.names))
    if problem := certs.validity_problem(chain, dt.datetime.now(dt.UTC)):
        raise _pem_error(key("tls.certificate"), chain, problem)
    if tls.ca_bundle is not None and (problem := certs.chain_trust_problem(chain, tls.ca_bundle)):
        raise _pem_error(key("tls.certificate"), chain, problem)
