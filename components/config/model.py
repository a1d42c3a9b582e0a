"""The stack configuration as frozen, validated objects (built by :mod:`components.config.stack`).

One model for every reader: the Pulumi program (engine source), the dynamic providers' connection
and the ``devpi-lifecycle`` CLI (``Pulumi.<stack>.yaml`` source) all get these objects from the same
loader. Naming follows devpi: an index is ``user/name``; ``IndexConfig.owner`` is the user,
``IndexConfig.name`` the part after the slash, ``IndexConfig.full_name`` the whole ``user/name``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from components.config.defaults import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_BACKUP_KEEP,
    DEFAULT_BACKUP_SCHEDULE,
    DEFAULT_CLIENT_CA_PATH,
    DEFAULT_CONTAINER_NAME,
    DEFAULT_DATA_DIR,
    DEFAULT_HTTP_PORT,
    DEFAULT_HTTPS_PORT,
    DEFAULT_IMAGE,
    DEFAULT_MAX_UPLOAD_MB,
    DEFAULT_PORT,
    DEFAULT_PROXY_CONTAINER_NAME,
    DEFAULT_PROXY_DIR,
    DEFAULT_PROXY_IMAGE,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_REPLICA_CONTAINER_NAME,
    DEFAULT_REPLICA_MAX_LAG,
    DEFAULT_SECRET_DIR,
    DEFAULT_SSH_PORT,
)
from components.config.retention import RetentionPolicy

__all__ = [
    "BackupConfig",
    "HostConfig",
    "IndexConfig",
    "ReplicaConfig",
    "ServerConfig",
    "StackConfig",
    "TlsConfig",
    "UserConfig",
    "default_server_url",
]


def default_server_url(address: str, port: int = DEFAULT_PORT) -> str:
    """``http://<address>:<port>`` (IPv6 literals in brackets): the server URL when ``serverUrl`` is
    not set. The loader is its only caller, so the default is derived in one place."""
    host = f"[{address}]" if ":" in address and not address.startswith("[") else address
    return f"http://{host}:{port}"


@dataclass(frozen=True, kw_only=True)
class HostConfig:
    """The RHEL 8 host reached over SSH. ``host_key`` is None only with ``insecure_ignore_host_key``."""

    address: str
    port: int = DEFAULT_SSH_PORT
    user: str = "root"
    host_key: str | None = None
    insecure_ignore_host_key: bool = False
    sudo: bool = False


@dataclass(frozen=True, kw_only=True)
class ServerConfig:
    """The devpi-server container and the host resources it needs."""

    port: int = DEFAULT_PORT
    image: str = DEFAULT_IMAGE
    allow_floating_tag: bool = False
    data_dir: str = DEFAULT_DATA_DIR
    pypi_mirror: bool = False
    container_name: str = DEFAULT_CONTAINER_NAME
    firewall_when_inactive: str = "fail"
    purge_data_on_destroy: bool = False
    ready_timeout: int = DEFAULT_READY_TIMEOUT
    docker_host: str | None = None
    ssh_opts: tuple[str, ...] = ()
    #: host folder of devpi's --secretfile (``server.secretDir``; mode 600 file, mounted read-only)
    secret_dir: str = DEFAULT_SECRET_DIR


@dataclass(frozen=True, kw_only=True)
class UserConfig:
    """A devpi user; its password is the secret ``userPasswords.<name>``."""

    name: str
    email: str | None = None
    title: str | None = None
    description: str | None = None
    adopt: bool = False
    force_destroy: bool = False


@dataclass(frozen=True, kw_only=True)
class IndexConfig:
    """A devpi index ``owner/name``; ``bases`` are the effective, ordered bases sent to devpi."""

    owner: str
    name: str
    type: str = "stage"
    bases: tuple[str, ...] = ()
    cache_pypi: bool = False
    volatile: bool = True
    acl_upload: tuple[str, ...] | None = None
    acl_toxresult_upload: tuple[str, ...] | None = None
    mirror_whitelist: tuple[str, ...] | None = None
    mirror_whitelist_inheritance: str | None = None
    mirror_url: str | None = None
    mirror_web_url_fmt: str | None = None
    mirror_cache_expiry: int | None = None
    mirror_no_project_list: bool | None = None
    mirror_use_external_urls: bool | None = None
    mirror_ignore_serial_header: bool | None = None
    title: str | None = None
    description: str | None = None
    retention: RetentionPolicy | None = None
    adopt: bool = False
    force_destroy: bool = False
    allow_mirror_whitelist_star: bool = False
    allow_anonymous_upload: bool = False

    @property
    def full_name(self) -> str:
        """``owner/name``, as devpi's URLs and the stack config spell an index."""
        return f"{self.owner}/{self.name}"

    @property
    def uploaders(self) -> tuple[str, ...]:
        """Who may upload: devpi's default ``acl_upload`` is the owner."""
        return self.acl_upload if self.acl_upload is not None else (self.owner,)


@dataclass(frozen=True, kw_only=True)
class BackupConfig:
    """Scheduled backups on the host (a systemd timer), keeping the newest ``keep`` archives."""

    enabled: bool = False
    schedule: str = DEFAULT_BACKUP_SCHEDULE
    directory: str = DEFAULT_BACKUP_DIR
    keep: int = DEFAULT_BACKUP_KEEP


@dataclass(frozen=True, kw_only=True)
class TlsConfig:
    """HTTPS in front of devpi (stack key ``tls``); absent = plain HTTP (a lab).

    With a managed ``host``: a reverse-proxy container (nginx) terminates TLS with ``certificate``
    (PEM chain, leaf first; plain config) and the secret ``tlsPrivateKey``; devpi is then published
    on 127.0.0.1 only. ``names`` are the names clients use (the first one makes the default
    ``serverUrl``), all covered by the certificate. For a registry-only stack (no ``host``) only
    ``caBundle`` is meaningful: the https server exists already and the stack just trusts it.
    ``ca_bundle``: PEM of the private CA clients need (None = a publicly trusted certificate).
    ``not_after``: the certificate's expiry as an ISO 8601 UTC string (None without certificate),
    so the program can warn without parsing PEM again.
    """

    certificate: str | None = None
    names: tuple[str, ...] = ()
    ca_bundle: str | None = None
    https_port: int = DEFAULT_HTTPS_PORT
    #: port 80 answers with a redirect to https; False = nothing listens on it
    http_redirect: bool = True
    http_port: int = DEFAULT_HTTP_PORT
    proxy_image: str = DEFAULT_PROXY_IMAGE
    allow_floating_proxy_tag: bool = False
    proxy_container_name: str = DEFAULT_PROXY_CONTAINER_NAME
    proxy_dir: str = DEFAULT_PROXY_DIR
    max_upload_mb: int = DEFAULT_MAX_UPLOAD_MB
    client_ca_path: str = DEFAULT_CLIENT_CA_PATH
    not_after: str | None = None

    @property
    def proxy_ports(self) -> tuple[int, ...]:
        """The ports the proxy publishes and the firewall opens."""
        return (self.https_port, self.http_port) if self.http_redirect else (self.https_port,)


@dataclass(frozen=True, kw_only=True)
class ReplicaConfig:
    """A devpi replica (stack key ``replicas[i]``) on its own host, following the primary.

    ``name``: short DNS-label-like name, unique (resource names, outputs). ``host``: reached over
    SSH like the primary's; its private key is ``replicaSshPrivateKeys.<name>`` when set, else the
    stack's ``sshPrivateKey`` (``own_ssh_key`` says which). ``url``: where clients reach this replica
    (default ``http(s)://<host.address>:<port>``, https on the TLS port when ``tls`` is set).
    ``primary_url``: where the replica reaches the primary (the stack's ``serverUrl``).
    """

    name: str
    host: HostConfig
    port: int = DEFAULT_PORT
    data_dir: str = DEFAULT_DATA_DIR
    container_name: str = DEFAULT_REPLICA_CONTAINER_NAME
    url: str
    primary_url: str
    own_ssh_key: bool = False
    secret_dir: str = DEFAULT_SECRET_DIR
    max_lag: int = DEFAULT_REPLICA_MAX_LAG
    firewall_when_inactive: str = "fail"


@dataclass(frozen=True, kw_only=True)
class StackConfig:
    """Everything the program, the providers and the CLI need, validated.

    ``host`` is None when only registry objects are managed. ``server_url`` is always set when the
    config came from the engine; read from a stack file for the CLI it is ``""`` when the file names
    no server (the CLI then needs ``--url``).
    """

    host: HostConfig | None
    server: ServerConfig
    server_url: str
    users: tuple[UserConfig, ...] = ()
    indexes: tuple[IndexConfig, ...] = ()
    backup: BackupConfig = field(default_factory=BackupConfig)
    tls: TlsConfig | None = None
    replicas: tuple[ReplicaConfig, ...] = ()

    @property
    def proxied(self) -> bool:
        """A managed host with TLS: the proxy container fronts devpi."""
        return self.tls is not None and self.tls.certificate is not None and self.host is not None

    @property
    def ca_bundle(self) -> str | None:
        """PEM the clients (providers, lifecycle tool, pip, twine) must trust, or None."""
        return self.tls.ca_bundle if self.tls is not None else None

    @property
    def docker_host(self) -> str | None:
        if self.server.docker_host:
            return self.server.docker_host
        if self.host is None:
            return None
        return f"ssh://{self.host.user}@{self.host.address}:{self.host.port}"

    @property
    def user_names(self) -> tuple[str, ...]:
        return tuple(u.name for u in self.users)

    def index(self, full_name: str) -> IndexConfig:
        return next(i for i in self.indexes if i.full_name == full_name)

    def find_index(self, full_name: str) -> IndexConfig | None:
        """The declared index ``full_name``, or None."""
        return next((i for i in self.indexes if i.full_name == full_name), None)

    def indexes_in_creation_order(self) -> list[IndexConfig]:
        """Bases before the indexes that inherit them (validated acyclic)."""
        order: list[IndexConfig] = []
        done: set[str] = set()
        by_name = {i.full_name: i for i in self.indexes}

        def visit(ix: IndexConfig) -> None:
            if ix.full_name in done:
                return
            for base in ix.bases:
                if base in by_name:
                    visit(by_name[base])
            done.add(ix.full_name)
            order.append(ix)

        for ix in self.indexes:
            visit(ix)
        return order
