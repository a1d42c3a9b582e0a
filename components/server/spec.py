"""What the devpi-server container looks like, computed once as plain data.

``container_spec`` turns the server settings into a frozen ``ContainerSpec`` that both the Pulumi
component (``components.server.component.DevpiServer``) and the real-container tests (through
``docker_run_args``) use, so the tests run exactly the container the stack declares.

The facts it encodes (docs/devpi-api.md, "The jonasal/devpi-server image"; README, "The `/data` vs
`/devpi/server` correction"):

- the image (``jonasal/devpi-server``) keeps its state in ``/devpi/server``
  (``DEVPISERVER_SERVERDIR``); the deployment guide's ``./data:/data`` mount keeps nothing, so every
  package is lost when the container is recreated. The host data folder is bind-mounted at
  ``/devpi/server`` with ``:Z`` (RHEL 8 SELinux relabel);
- ``DEVPI_PASSWORD`` must be set on every start (else the entrypoint exits 1) and is read only at the
  first start (``devpi-init``). Its value never appears here: it is passed separately as a secret;
- ``DEVPISERVER_NO_ROOT_PYPI=1`` when the PyPI mirror is off (the entrypoint never passes
  ``--no-root-pypi``), which also spares the first start from indexing ~900k PyPI names;
- the image has no curl and no HEALTHCHECK: the check runs the image's own ``python``;
- the entrypoint already passes ``--host 0.0.0.0 --port 3141 --restrict-modify=root``, so extra
  server arguments must not move the port or the server directory;
- ``--secretfile``: devpi-server 6.20.3 refuses to start when the file is missing ("fatal: The given
  secret file doesn't exist", checked against the real server) and the image has no step that
  creates it. With ``secret_dir`` set, the host step that writes the stack's generated secret (mode
  600) comes first, the folder is mounted read-only at ``/devpi/secret`` and the server is started
  with ``--secretfile``: login tokens then survive restarts and work on every replica. Without it
  (``secret_dir=None``) devpi makes a random secret per start and every restart logs everyone out;
- ``network``: a user-defined Docker network the container joins under the alias ``devpi`` (the
  HTTPS proxy reaches it there; devpi is then published on 127.0.0.1 only).

Replication (docs/replicas.md, checked against devpi-server 6.20.3 itself):

- a primary that serves replicas must run with ``--role primary``: the default role ``auto`` keeps
  an initialised server ``standalone``, which answers every ``/+changelog`` request with 403
  "Replication protocol disabled" (``devpi_server.replica.PrimaryChangelogRequest.verify_primary``).
  ``serves_replicas`` adds it, only when replicas are declared;
- a replica (``primary_url`` set) must never run the image's entrypoint: on an empty folder it runs
  ``devpi-init`` as a standalone server with root's password, and devpi then refuses ever to run
  that folder as a replica ("cannot run as replica, was previously run as standalone"). Its
  entrypoint is replaced by ``REPLICA_SCRIPT``: ``devpi-init --role replica --primary-url`` only
  when the folder holds no ``.nodeinfo`` (devpi-server itself refuses to start on a folder without
  it, "contains no devpi-server data"), then ``exec devpi-server`` (PID 1, so ``docker stop``
  reaches it). A replica has no root password of its own: users, indexes and root come from the
  primary, so ``DEVPI_PASSWORD`` is not given to it;
- the replica authenticates to the primary with a key derived from the ``--secretfile`` secret
  (``Config.get_replica_secret``): a replica with another secret gets 403 on every changelog fetch.
  So replication needs ``secret_dir`` on the primary and on every replica.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

from components.config import rules
from components.config.defaults import DEFAULT_CONTAINER_NAME, DEFAULT_IMAGE
from components.config.errors import refuse_arguments
from components.config.rules import RESERVED_SERVER_ARGS, floating_tag

__all__ = [
    "CA_FILE",
    "CONTAINER_PORT",
    "DEFAULT_CONTAINER_NAME",
    "DEFAULT_IMAGE",
    "HEALTHCHECK_COMMAND",
    "NETWORK_ALIAS",
    "PASSWORD_ENV",
    "REPLICATION_ARGS",
    "REPLICA_ENTRYPOINT",
    "REPLICA_SCRIPT",
    "RESERVED_SERVER_ARGS",
    "SECRET_FILE",
    "SECRET_MOUNT",
    "SERVERDIR_ENV",
    "SERVER_DIR",
    "BindMount",
    "ContainerSettings",
    "ContainerSpec",
    "HealthCheck",
    "NetworkAttachment",
    "PortMapping",
    "RunnableSpec",
    "container_spec",
    "docker_run_args",
    "floating_tag",
    "primary_url_problem",
    "replica_argv",
    "run_flags",
]

CONTAINER_PORT = 3141
SERVER_DIR = "/devpi/server"
PASSWORD_ENV = "DEVPI_PASSWORD"  # noqa: S105 - the variable's name, not a password
NO_ROOT_PYPI_ENV = "DEVPISERVER_NO_ROOT_PYPI"
HEALTHCHECK_COMMAND = (
    "python -c \"import urllib.request; "
    "urllib.request.urlopen('http://127.0.0.1:3141/+api', timeout=4)\""
)
LABEL_PREFIX = "devpi-registry"
SECRET_MOUNT = "/devpi/secret"  # noqa: S105 - a folder, not a secret
SECRET_FILE = f"{SECRET_MOUNT}/secret"
#: the private CA a replica trusts for an https primary (written beside the secret by the host step)
CA_FILE = f"{SECRET_MOUNT}/ca.pem"
#: the name the proxy uses for devpi on the shared network
NETWORK_ALIAS = "devpi"
SERVERDIR_ENV = "DEVPISERVER_SERVERDIR"
#: what the replica container runs instead of the image's entrypoint (``sh -c REPLICA_SCRIPT
#: devpi-replica <primary-url> <devpi-server arguments>``). ``devpi-init`` runs only on a folder
#: without ``.nodeinfo`` and only as a replica; an initialised folder is started as it is, and
#: devpi-server itself refuses a folder that was ever a primary or standalone server.
REPLICA_SCRIPT = (
    'set -eu; primary="$1"; shift; dir="${DEVPISERVER_SERVERDIR:?}"; '
    'if [ ! -f "$dir/.nodeinfo" ]; then '
    'echo "devpi-replica: empty server directory $dir: devpi-init --role replica --primary-url $primary"; '
    'devpi-init --serverdir "$dir" --role replica --primary-url "$primary"; fi; '
    'exec devpi-server --serverdir "$dir" --role replica --primary-url "$primary" "$@"'
)
REPLICA_ENTRYPOINT = ("/bin/sh", "-c", REPLICA_SCRIPT, "devpi-replica")
#: options the spec sets for replication; extra server arguments must not set them
REPLICATION_ARGS = ("--role", "--primary-url", "--master-url")


class ContainerSettings(Protocol):
    """What ``container_spec`` reads; ``components.server.component.ServerArgs`` provides it."""

    @property
    def image(self) -> str: ...
    @property
    def allow_floating_tag(self) -> bool: ...
    @property
    def port(self) -> int: ...
    @property
    def bind_address(self) -> str | None: ...
    @property
    def data_dir(self) -> str: ...
    @property
    def pypi_mirror(self) -> bool: ...
    @property
    def container_name(self) -> str: ...
    @property
    def extra_server_args(self) -> Sequence[str]: ...
    @property
    def secret_dir(self) -> str | None: ...
    @property
    def network(self) -> str | None: ...
    @property
    def trust_ca_file(self) -> bool: ...
    @property
    def primary_url(self) -> str | None: ...
    @property
    def serves_replicas(self) -> bool: ...


@dataclass(frozen=True)
class PortMapping:
    """``ip:external -> internal/tcp``; ``ip=None`` publishes on every host address."""

    external: int
    internal: int = CONTAINER_PORT
    ip: str | None = None


@dataclass(frozen=True)
class BindMount:
    """A host folder bind-mounted into the container; ``selinux_relabel`` "Z" = private label."""

    host_path: str
    container_path: str
    selinux_relabel: str | None = "Z"
    read_only: bool = False


@dataclass(frozen=True)
class NetworkAttachment:
    """A user-defined Docker network the container joins, reachable there by ``aliases``."""

    name: str
    aliases: tuple[str, ...] = (NETWORK_ALIAS,)


@dataclass(frozen=True)
class HealthCheck:
    """A Docker healthcheck; durations in Docker's notation ("10s")."""

    test: tuple[str, ...]
    interval: str = "10s"
    timeout: str = "5s"
    retries: int = 3
    # First start with the PyPI mirror indexes the whole PyPI name list: give it time.
    start_period: str = "120s"


@dataclass(frozen=True)
class ContainerSpec:
    """The devpi-server container, minus the root password (see ``secret_env``)."""

    name: str
    image: str
    restart: str
    ports: tuple[PortMapping, ...]
    mounts: tuple[BindMount, ...]
    env: tuple[tuple[str, str], ...]
    secret_env: tuple[str, ...]
    healthcheck: HealthCheck
    command: tuple[str, ...]
    labels: tuple[tuple[str, str], ...]
    networks: tuple[NetworkAttachment, ...] = ()
    #: replaces the image's entrypoint when not empty (replicas: ``REPLICA_ENTRYPOINT``)
    entrypoint: tuple[str, ...] = ()
    log_driver: str = "json-file"
    log_opts: tuple[tuple[str, str], ...] = (("max-size", "10m"), ("max-file", "3"))

    @property
    def data_mount(self) -> BindMount:
        """The mount that holds the server state (``/devpi/server``)."""
        return next(m for m in self.mounts if m.container_path == SERVER_DIR)

    def env_list(self) -> list[str]:
        """The non-secret environment as Docker's ``K=V`` strings."""
        return [f"{k}={v}" for k, v in self.env]

    @property
    def is_replica(self) -> bool:
        """A replica container: no root password, the replica entrypoint."""
        return self.entrypoint == REPLICA_ENTRYPOINT


def primary_url_problem(url: str) -> str | None:
    """What is wrong with a replica's ``primary_url``, or None (devpi refuses credentials in it)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http(s)://host[:port][/path] URL"
    if parts.username or parts.password:
        return "must not carry credentials (devpi-server refuses basic authorization in the primary URL)"
    if parts.query or parts.fragment or any(c.isspace() for c in url):
        return "must not have a query, a fragment or spaces"
    return None


def _replication_args_problem(args: Sequence[str]) -> str | None:
    for arg in args:
        option = arg.split("=", 1)[0]
        if option in REPLICATION_ARGS:
            return f"must not set {option}: the stack sets the replication role and the primary URL"
    return None


def _check(settings: ContainerSettings) -> None:
    """The stack-config loader applied these rules already, naming the config keys; this guard runs
    the same rules (components.config.rules) for any other caller and names the argument."""
    refuse_arguments(type(settings).__name__, [
        ("image", settings.image, rules.image_problem(settings.image, allowed=settings.allow_floating_tag)),
        ("port", settings.port, rules.port_problem(settings.port)),
        ("data_dir", settings.data_dir, rules.data_dir_problem(settings.data_dir)),
        ("container_name", settings.container_name, rules.container_name_problem(settings.container_name)),
        ("extra_server_args", list(settings.extra_server_args),
         rules.server_args_problem(settings.extra_server_args)),
        ("secret_dir", settings.secret_dir,
         rules.data_dir_problem(settings.secret_dir) if settings.secret_dir is not None else None),
        ("extra_server_args", list(settings.extra_server_args),
         _replication_args_problem(settings.extra_server_args)),
        ("primary_url", settings.primary_url,
         primary_url_problem(settings.primary_url) if settings.primary_url is not None else None),
        # replication authenticates with a key derived from the shared --secretfile
        ("secret_dir", settings.secret_dir,
         "must be set for a replica or a primary serving replicas (replication authenticates with the "
         "shared --secretfile)" if settings.secret_dir is None and
         (settings.primary_url is not None or settings.serves_replicas) else None),
        ("serves_replicas", settings.serves_replicas,
         "a replica cannot serve replicas" if settings.serves_replicas and settings.primary_url else None),
    ])


def container_spec(settings: ContainerSettings) -> ContainerSpec:
    """The container for ``settings``; raises ``ConfigError`` naming the argument and value it refuses."""
    _check(settings)
    if settings.primary_url is not None:
        return _replica_spec(settings, settings.primary_url)
    env: list[tuple[str, str]] = []
    if not settings.pypi_mirror:
        env.append((NO_ROOT_PYPI_ENV, "1"))
    data_dir = settings.data_dir  # normalised: the rule refuses any other spelling
    mounts = [BindMount(host_path=data_dir, container_path=SERVER_DIR, selinux_relabel="Z")]
    command = list(settings.extra_server_args)
    if settings.secret_dir is not None:
        mounts.append(BindMount(host_path=settings.secret_dir, container_path=SECRET_MOUNT,
                                selinux_relabel="Z", read_only=True))
        command = ["--secretfile", SECRET_FILE, *command]
    if settings.serves_replicas:
        command = ["--role", "primary", *command]
    return ContainerSpec(
        name=settings.container_name,
        image=settings.image,
        restart="always",
        ports=(PortMapping(external=settings.port, internal=CONTAINER_PORT, ip=settings.bind_address),),
        mounts=tuple(mounts),
        env=tuple(env),
        secret_env=(PASSWORD_ENV,),
        healthcheck=HealthCheck(test=("CMD-SHELL", HEALTHCHECK_COMMAND)),
        command=tuple(command),
        labels=(
            (f"{LABEL_PREFIX}.managed-by", "devpi-registry"),
            (f"{LABEL_PREFIX}.server-dir", SERVER_DIR),
        ),
        networks=(NetworkAttachment(settings.network),) if settings.network else (),
    )


def _replica_spec(settings: ContainerSettings, primary_url: str) -> ContainerSpec:
    """A replica of ``primary_url``: the replica entrypoint, the shared secret, no root password."""
    assert settings.secret_dir is not None, "checked by _check"
    mounts = (
        BindMount(host_path=settings.data_dir, container_path=SERVER_DIR, selinux_relabel="Z"),
        BindMount(host_path=settings.secret_dir, container_path=SECRET_MOUNT, selinux_relabel="Z", read_only=True),
    )
    command = (primary_url, "--host", "0.0.0.0", "--port", str(CONTAINER_PORT),  # noqa: S104 - inside the container
               "--restrict-modify", "root", "--secretfile", SECRET_FILE, *settings.extra_server_args)
    return ContainerSpec(
        name=settings.container_name,
        image=settings.image,
        restart="always",
        ports=(PortMapping(external=settings.port, internal=CONTAINER_PORT, ip=settings.bind_address),),
        mounts=mounts,
        # explicit, so the script does not depend on the image's ENV (it is the image's value); an
        # https primary with a private CA is trusted through requests' REQUESTS_CA_BUNDLE
        env=((SERVERDIR_ENV, SERVER_DIR),
             *((("REQUESTS_CA_BUNDLE", CA_FILE),) if settings.trust_ca_file else ())),
        secret_env=(),
        # the first sync of a big primary happens after the port opens: /+api answers meanwhile
        healthcheck=HealthCheck(test=("CMD-SHELL", HEALTHCHECK_COMMAND)),
        command=command,
        labels=(
            (f"{LABEL_PREFIX}.managed-by", "devpi-registry"),
            (f"{LABEL_PREFIX}.server-dir", SERVER_DIR),
            (f"{LABEL_PREFIX}.role", "replica"),
        ),
        networks=(NetworkAttachment(settings.network),) if settings.network else (),
        entrypoint=REPLICA_ENTRYPOINT,
    )


def replica_argv(spec: ContainerSpec) -> list[str]:
    """The process a replica container runs (entrypoint + command), for tests that run it directly."""
    if not spec.is_replica:
        raise ValueError(f"{spec.name} is not a replica container")
    return [*spec.entrypoint, *spec.command]


def _private_env_file(spec: ContainerSpec, password_env_file: str | os.PathLike[str] | None) -> Path | None:
    """The env file carrying the secret environment, checked private; None when the spec needs none."""
    if not spec.secret_env and password_env_file is None:
        return None
    if password_env_file is None:
        raise ValueError(f"{spec.name} needs {', '.join(spec.secret_env)} from a private env file")
    path = Path(password_env_file)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} holds the root password and must be private (chmod 600), "
                         f"has mode {stat.filemode(mode)}")
    return path


class RunnableSpec(Protocol):
    """What every container spec of the stack (devpi, the proxy) has in common."""

    @property
    def restart(self) -> str: ...
    @property
    def ports(self) -> tuple[PortMapping, ...]: ...
    @property
    def mounts(self) -> tuple[BindMount, ...]: ...
    @property
    def networks(self) -> tuple[NetworkAttachment, ...]: ...
    @property
    def healthcheck(self) -> HealthCheck: ...
    @property
    def labels(self) -> tuple[tuple[str, str], ...]: ...
    @property
    def log_driver(self) -> str: ...
    @property
    def log_opts(self) -> tuple[tuple[str, str], ...]: ...


def run_flags(spec: RunnableSpec) -> list[str]:
    """The ``docker run`` flags for ports, mounts, networks, healthcheck, labels and logging: the
    part of the argv every container spec shares (each spec adds its own name, env and command)."""
    argv: list[str] = []
    for port in spec.ports:
        host = ""
        if port.ip:
            host = f"[{port.ip}]:" if ":" in port.ip else f"{port.ip}:"
        argv += ["--publish", f"{host}{port.external}:{port.internal}/tcp"]
    for mount in spec.mounts:
        options = ["ro" if mount.read_only else "rw"]
        if mount.selinux_relabel:
            options.append(mount.selinux_relabel)
        argv += ["--volume", f"{mount.host_path}:{mount.container_path}:{','.join(options)}"]
    for net in spec.networks:
        argv += ["--network", net.name]
        for alias in net.aliases:
            argv += ["--network-alias", alias]
    hc = spec.healthcheck
    if hc.test[0] != "CMD-SHELL":
        raise ValueError(f"docker run only takes shell healthchecks, got {hc.test[0]}")
    argv += ["--health-cmd", hc.test[1], "--health-interval", hc.interval, "--health-timeout", hc.timeout,
             "--health-retries", str(hc.retries), "--health-start-period", hc.start_period]
    argv += [word for key, value in spec.labels for word in ("--label", f"{key}={value}")]
    argv += ["--log-driver", spec.log_driver]
    for key, value in spec.log_opts:
        argv += ["--log-opt", f"{key}={value}"]
    return argv


def docker_run_args(spec: ContainerSpec, password_env_file: str | os.PathLike[str] | None = None) -> list[str]:
    """``docker run`` argv equivalent to the container the component declares (for tests and humans).

    Secret environment (``DEVPI_PASSWORD=…``) comes from ``password_env_file``, which must exist and
    be readable by its owner only: the password never appears in the argv. A spec without secret
    environment (a replica) needs none.
    """
    path = _private_env_file(spec, password_env_file)
    argv = ["docker", "run", "--detach", "--name", spec.name, "--restart", spec.restart]
    if spec.entrypoint:
        # docker run takes one entrypoint word; the rest of it goes before the command
        argv += ["--entrypoint", spec.entrypoint[0]]
    argv += run_flags(spec)
    for item in spec.env_list():
        argv += ["--env", item]
    if path is not None:
        argv += ["--env-file", str(path)]
    argv.append(spec.image)
    argv += [*spec.entrypoint[1:], *spec.command]
    return argv
