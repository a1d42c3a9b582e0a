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
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from components.config import rules
from components.config.defaults import DEFAULT_CONTAINER_NAME, DEFAULT_IMAGE
from components.config.errors import refuse_arguments
from components.config.rules import RESERVED_SERVER_ARGS, floating_tag

__all__ = [
    "CONTAINER_PORT",
    "DEFAULT_CONTAINER_NAME",
    "DEFAULT_IMAGE",
    "HEALTHCHECK_COMMAND",
    "PASSWORD_ENV",
    "RESERVED_SERVER_ARGS",
    "SERVER_DIR",
    "BindMount",
    "ContainerSettings",
    "ContainerSpec",
    "HealthCheck",
    "NetworkAttachment",
    "SECRET_FILE",
    "SECRET_MOUNT",
    "NETWORK_ALIAS",
    "PortMapping",
    "container_spec",
    "docker_run_args",
    "floating_tag",
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
SECRET_MOUNT = "/devpi/secret"
SECRET_FILE = f"{SECRET_MOUNT}/secret"
#: the name the proxy uses for devpi on the shared network
NETWORK_ALIAS = "devpi"


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
    log_driver: str = "json-file"
    log_opts: tuple[tuple[str, str], ...] = (("max-size", "10m"), ("max-file", "3"))

    @property
    def data_mount(self) -> BindMount:
        """The mount that holds the server state (``/devpi/server``)."""
        return next(m for m in self.mounts if m.container_path == SERVER_DIR)

    def env_list(self) -> list[str]:
        """The non-secret environment as Docker's ``K=V`` strings."""
        return [f"{k}={v}" for k, v in self.env]


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
    ])


def container_spec(settings: ContainerSettings) -> ContainerSpec:
    """The container for ``settings``; raises ``ConfigError`` naming the argument and value it refuses."""
    _check(settings)
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


def docker_run_args(spec: ContainerSpec, password_env_file: str | os.PathLike[str]) -> list[str]:
    """``docker run`` argv equivalent to the container the component declares (for tests and humans).

    Secret environment (``DEVPI_PASSWORD=…``) comes from ``password_env_file``, which must exist and
    be readable by its owner only: the password never appears in the argv.
    """
    path = Path(password_env_file)
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ValueError(f"{path} holds the root password and must be private (chmod 600), "
                         f"has mode {stat.filemode(mode)}")
    argv = ["docker", "run", "--detach", "--name", spec.name, "--restart", spec.restart]
    for port in spec.ports:
        host = f"{port.ip}:" if port.ip else ""
        if port.ip and ":" in port.ip:
            host = f"[{port.ip}]:"
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
    for item in spec.env_list():
        argv += ["--env", item]
    argv += ["--env-file", str(path)]
    hc = spec.healthcheck
    if hc.test[0] != "CMD-SHELL":
        raise ValueError(f"docker run only takes shell healthchecks, got {hc.test[0]}")
    argv += ["--health-cmd", hc.test[1], "--health-interval", hc.interval, "--health-timeout", hc.timeout,
             "--health-retries", str(hc.retries), "--health-start-period", hc.start_period]
    for key, value in spec.labels:
        argv += ["--label", f"{key}={value}"]
    argv += ["--log-driver", spec.log_driver]
    for key, value in spec.log_opts:
        argv += ["--log-opt", f"{key}={value}"]
    argv.append(spec.image)
    argv += list(spec.command)
    return argv
