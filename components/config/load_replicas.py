"""The ``replicas`` section and the secret ``replicaSshPrivateKeys``: each replica on its own host
(read like ``host``), apart from the primary and the other replicas, at a URL of its own."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from components.config import rules
from components.config import tls as certs
from components.config.defaults import (
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    DEFAULT_REPLICA_CONTAINER_NAME,
    DEFAULT_REPLICA_MAX_LAG,
)
from components.config.errors import ConfigError
from components.config.load_host import https_url, load_host, load_secret_dir
from components.config.model import (
    HostConfig,
    ReplicaConfig,
    ServerConfig,
    TlsConfig,
    default_server_url,
)
from components.config.reader import SECRET_PLACEHOLDER, KeyReader, key, load_list

__all__ = ["load_replicas"]


def load_replicas(values: Mapping[str, Any], host: HostConfig | None, server: ServerConfig,
                   tls: TlsConfig | None, server_url: str, *, partial: bool) -> tuple[ReplicaConfig, ...]:
    """``replicas`` and the secret ``replicaSshPrivateKeys`` (replica name -> its own SSH key)."""
    raw = values.get("replicas")
    ssh_keys = _replica_keys(values.get("replicaSshPrivateKeys"), partial=partial)
    items = load_list(raw, "replicas") if raw is not None else []
    if items and host is None:
        raise ConfigError(key("replicas"), f"{len(items)} replica(s)",
                          "need a managed `host`: a replica follows the primary this stack runs there")
    loaded: list[ReplicaConfig] = []
    occupied: list[tuple[str, str, int, str, str]] = []  # (who, address, port, container, dataDir)
    if host is not None:
        occupied.append(("the primary (host.address, server.port)", host.address.lower(), server.port,
                         server.container_name, server.data_dir))
    for i, item in enumerate(items):
        loaded.append(_load_replica(item, i, host, tls, server_url, occupied, loaded,
                                    own_key=ssh_keys is not None and _name_of(item) in ssh_keys))
    declared = {r.name for r in loaded}
    for name in ssh_keys or {}:
        if name not in declared:
            raise ConfigError(f"{key('replicaSshPrivateKeys')}.{name}", None,
                              f"names no replica (declared: {', '.join(sorted(declared)) or 'none'}): remove it "
                              "or declare the replica", secret=True)
    return tuple(loaded)


def _name_of(item: Any) -> Any:
    return item.get("name") if isinstance(item, Mapping) else None


def _replica_keys(raw: Any, *, partial: bool) -> Mapping[str, Any] | None:
    """The replica SSH keys by name; None when unknown (a stack file holding the object sealed)."""
    if raw is None:
        return {}
    if raw == SECRET_PLACEHOLDER:
        return None
    path = key("replicaSshPrivateKeys")
    if not isinstance(raw, Mapping):
        raise ConfigError(path, raw, "must be an object of replica name -> private key: "
                          "pulumi config set --secret --path 'replicaSshPrivateKeys.<name>' < KEYFILE", secret=True)
    for name, value in raw.items():
        if not partial and (not isinstance(value, str) or not value.strip()):
            raise ConfigError(f"{path}.{name}", value, "must be the replica's SSH private key (PEM text)",
                              secret=True)
    return raw


def _load_replica(item: Any, i: int, primary: HostConfig | None, tls: TlsConfig | None, server_url: str,
                  occupied: list[tuple[str, str, int, str, str]], earlier: Sequence[ReplicaConfig], *,
                  own_key: bool) -> ReplicaConfig:
    o = KeyReader(item, f"{key('replicas')}[{i}]")
    name = o.text("name", required=True)
    o.rule("name", name, rules.replica_name_problem(name))
    twin = next((j for j, r in enumerate(earlier) if r.name == name), None)
    if twin is not None:
        raise ConfigError(o.at("name"), name, f"is declared twice (also replicas[{twin}])")
    o.seen.add("host")
    host = load_host(o.value.get("host"), o.at("host"))
    if host is None:
        raise ConfigError(o.at("host"), None, "is required: the replica's own host (address, hostKey to pin)")
    port = o.number("port", DEFAULT_PORT, rules.port_problem)
    data_dir = o.folder("dataDir", DEFAULT_DATA_DIR, rules.data_dir_problem)
    container = o.text("containerName", DEFAULT_REPLICA_CONTAINER_NAME, required=True)
    o.rule("containerName", container, rules.container_name_problem(container))
    secret_dir = load_secret_dir(o, data_dir)
    max_lag = o.number("maxLag", DEFAULT_REPLICA_MAX_LAG, rules.replica_max_lag_problem)
    firewall = o.choice("firewallWhenInactive", "fail", rules.FIREWALL_CHOICES)
    _refuse_shared_host(o, (host.address.lower(), port, container, data_dir), occupied, tls, primary)
    url = _replica_url(o, host, port, tls, server_url, earlier)
    o.done()
    occupied.append((f"replicas[{i}]", host.address.lower(), port, container, data_dir))
    return ReplicaConfig(name=name, host=host, port=port, data_dir=data_dir, container_name=container, url=url,
                         primary_url=server_url, own_ssh_key=own_key, secret_dir=secret_dir, max_lag=max_lag,
                         firewall_when_inactive=firewall)


def _replica_url(o: KeyReader, host: HostConfig, port: int, tls: TlsConfig | None, server_url: str,
                 earlier: Sequence[ReplicaConfig]) -> str:
    """``url``: where clients reach the replica; with ``tls`` https on the replica's own proxy, for a
    name the certificate covers."""
    raw = o.text("url")
    if raw is None:
        url = https_url(host.address, tls.https_port) if tls is not None else default_server_url(host.address, port)
        url_key = "host.address"
    else:
        o.rule("url", raw, rules.server_url_problem(raw))
        if tls is not None and not raw.startswith("https://"):
            o.rule("url", raw, "must be an https:// URL: a TLS stack is served over https")
        url, url_key = raw.rstrip("/"), "url"
    if url == server_url:
        o.rule(url_key, url, "makes the replica's URL the primary's serverUrl: give the replica its own address")
    twin = next((j for j, r in enumerate(earlier) if r.url == url), None)
    if twin is not None:
        o.rule(url_key, url, f"makes the replica's URL that of replicas[{twin}]")
    if tls is not None and tls.certificate is not None and certs.crypto_available():
        hostname = urlsplit(url).hostname or ""
        if not certs.covers_name(tls.certificate, hostname):
            o.rule(url_key, hostname if url_key == "host.address" else url,
                   f"is not covered by tls.certificate (it covers: "
                   f"{', '.join(certs.certificate_names(tls.certificate)) or 'no subjectAltName'}): the replica's "
                   "proxy serves the same certificate; add the name to it or set url to a covered name")
    if tls is not None and port in tls.proxy_ports:
        o.rule("port", port, f"must differ from the TLS ports ({', '.join(map(str, tls.proxy_ports))}): the "
               "replica's proxy takes them on its host")
    return url


def _refuse_shared_host(o: KeyReader, me: tuple[str, int, str, str],
                        occupied: Sequence[tuple[str, str, int, str, str]], tls: TlsConfig | None,
                        primary: HostConfig | None) -> None:
    """Two devpi servers on one host need their own port, container and data folder (and with TLS
    their own host: both proxies would need the https port)."""
    address, port, container, data_dir = me
    for who, other_address, other_port, other_container, other_data in occupied:
        if other_address != address:
            continue
        if tls is not None and primary is not None and other_address == primary.address.lower():
            o.rule("host", {"address": address}, "is the primary's host: with `tls` each replica needs a host of "
                   "its own (both proxies would need the https port there)")
        if other_port == port:
            o.rule("port", port, f"is taken on {address} by {who}: give the replica another host or port")
        if other_container == container:
            o.rule("containerName", container, f"is taken on {address} by {who}")
        if rules.folders_overlap(other_data, data_dir):
            o.rule("dataDir", data_dir, f"overlaps the data folder of {who} on {address} ({other_data})")
