"""The devpi-server container on the RHEL 8 host, as one Pulumi component.

``DevpiServer`` owns three children: a Docker provider that reaches the host's engine over SSH, the
pulled image, and the container described by ``components.server.spec``. Host preparation (data
folder, firewall, SELinux) belongs to other resources; pass them as ``depends_on`` in ``opts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_docker as docker

from components.config.defaults import (
    DEFAULT_CONTAINER_NAME,
    DEFAULT_DATA_DIR,
    DEFAULT_IMAGE,
    DEFAULT_READY_TIMEOUT,
    LOOPBACK,
    PROXY_NETWORK,
)
from components.config.model import ReplicaConfig, StackConfig
from components.server.spec import CONTAINER_PORT, PASSWORD_ENV, ContainerSpec, RunnableSpec, container_spec

__all__ = ["DEFAULT_DATA_DIR", "DevpiServer", "ServerArgs", "container_inputs"]

COMPONENT_TYPE = "devpi-registry:server:DevpiServer"


@dataclass(frozen=True, kw_only=True)
class ServerArgs:
    """Settings of the devpi-server container.

    ``docker_host``: the host's engine, e.g. ``ssh://deploy@10.0.0.5:22`` (the local ``ssh`` binary
    and the remote ``docker system dial-stdio`` carry the API; keys come from the agent,
    ``~/.ssh/config`` or ``-i`` in ``ssh_opts``). ``initial_root_password``: root's password for the
    first start only (a secret Input; see ``DevpiServer``; the stack-config loader checked it against
    the image's rule, ``components.config.rules.root_password_problem``). ``bind_address``: host address the port
    is published on (None: every address, as the deployment guide does). ``wait_healthy``: ``pulumi
    up`` waits up to ``ready_timeout`` seconds for the healthcheck to pass before dependents run.
    """

    docker_host: str
    #: None only for a replica (it has no root of its own: root comes from the primary)
    initial_root_password: pulumi.Input[str] | None = None
    ssh_opts: Sequence[str] = ()
    image: str = DEFAULT_IMAGE
    allow_floating_tag: bool = False
    port: int = CONTAINER_PORT
    bind_address: str | None = None
    data_dir: str = DEFAULT_DATA_DIR
    pypi_mirror: bool = False
    container_name: str = DEFAULT_CONTAINER_NAME
    extra_server_args: Sequence[str] = ()
    #: host folder of the shared --secretfile (written by the host step); None = no secret file
    secret_dir: str | None = None
    #: the Docker network shared with the HTTPS proxy (None = no proxy)
    network: str | None = None
    #: the primary a replica follows (its URL as seen from the replica host); None = a primary
    primary_url: str | None = None
    #: a primary with replicas: runs ``--role primary`` (else devpi refuses replication)
    serves_replicas: bool = False
    #: a replica trusting the private CA at ``<secret_dir>/ca.pem`` (an https primary)
    trust_ca_file: bool = False
    wait_healthy: bool = True
    ready_timeout: int = DEFAULT_READY_TIMEOUT

    @classmethod
    def from_config(cls, config: StackConfig, initial_root_password: pulumi.Input[str]) -> ServerArgs:
        """The one way from the validated stack config to the container's arguments."""
        docker_host = config.docker_host
        if docker_host is None:
            raise ValueError("the stack manages no container (its config has neither `host` nor server.dockerHost)")
        server = config.server
        return cls(
            docker_host=docker_host, ssh_opts=list(server.ssh_opts), image=server.image,
            allow_floating_tag=server.allow_floating_tag, port=server.port, data_dir=server.data_dir,
            initial_root_password=initial_root_password, pypi_mirror=server.pypi_mirror,
            container_name=server.container_name, ready_timeout=server.ready_timeout,
            # Replication needs --role primary (docs/replicas.md). The shared secret file is always
            # used on a managed host: login tokens survive restarts and work on every replica.
            serves_replicas=bool(config.replicas),
            secret_dir=server.secret_dir,
            # Behind the HTTPS proxy devpi joins the proxy's network and is published on loopback only.
            network=PROXY_NETWORK if config.proxied else None,
            bind_address=LOOPBACK if config.proxied else None,
        )

    @classmethod
    def from_replica(cls, config: StackConfig, replica: ReplicaConfig) -> ServerArgs:
        """A replica's container: on the replica's host, the primary's image, no root password.

        The engine is reached like the primary's (``ssh://user@address:port``, the stack's SSH
        options); name, port, data and secret folders come from the replica's entry.
        """
        host = replica.host
        address = f"[{host.address}]" if ":" in host.address and not host.address.startswith("[") else host.address
        server = config.server
        return cls(
            docker_host=f"ssh://{host.user}@{address}:{host.port}", ssh_opts=list(server.ssh_opts),
            image=server.image, allow_floating_tag=server.allow_floating_tag, port=replica.port,
            data_dir=replica.data_dir, container_name=replica.container_name, secret_dir=replica.secret_dir,
            primary_url=replica.primary_url, ready_timeout=server.ready_timeout,
            trust_ca_file=config.ca_bundle is not None and replica.primary_url.startswith("https://"),
            network=PROXY_NETWORK if config.proxied else None,
            bind_address=LOOPBACK if config.proxied else None,
        )


def container_inputs(spec: RunnableSpec, network: pulumi.Input[str] | None, *, wait: bool,
                     timeout: int) -> dict[str, Any]:
    """The ``docker.Container`` inputs every container of the stack (devpi, the proxy) shares:
    restart policy, ports, mounts, networks, healthcheck, labels, logging and the healthy wait.

    ``network``: the network resource's name Output for the spec's attachments, so Pulumi creates
    the network before the container (None: the spec's names as they are)."""
    hc = spec.healthcheck
    return {
        "restart": spec.restart,
        "must_run": True,
        "ports": [docker.ContainerPortArgs(internal=p.internal, external=p.external, ip=p.ip, protocol="tcp")
                  for p in spec.ports],
        "volumes": [docker.ContainerVolumeArgs(host_path=m.host_path, container_path=m.container_path,
                                               selinux_relabel=m.selinux_relabel, read_only=m.read_only)
                    for m in spec.mounts],
        "networks_advanced": [docker.ContainerNetworksAdvancedArgs(
            name=network if network is not None else n.name, aliases=list(n.aliases) or None)
            for n in spec.networks] or None,
        "healthcheck": docker.ContainerHealthcheckArgs(
            tests=list(hc.test), interval=hc.interval, timeout=hc.timeout, retries=hc.retries,
            start_period=hc.start_period),
        "labels": [docker.ContainerLabelArgs(label=k, value=v) for k, v in spec.labels],
        "log_driver": spec.log_driver,
        "log_opts": dict(spec.log_opts),
        "wait": wait,
        "wait_timeout": timeout if wait else None,
    }


def _password_env(password: str) -> str:
    """``DEVPI_PASSWORD=…`` for the container.

    The value was checked against the image's needs (non-empty, no leading ``-``: see
    ``components.config.rules.root_password_problem``) when the stack config was loaded, where the
    raw secret is at hand; nothing is validated here, inside an Output, where an error would surface
    late and nested (and as "Future exception was never retrieved" noise).
    """
    return f"{PASSWORD_ENV}={password}"


class DevpiServer(pulumi.ComponentResource):
    """devpi-server in Docker on the host, with its state in the host's data folder.

    Lifecycle facts the rest of the stack relies on:

    - **Upgrades replace the container and keep the data.** A new ``image`` (and any change of env,
      ports, mounts, labels or command) replaces the container; the Docker provider forces
      delete-before-replace, so the fixed container name works, with a short downtime. The packages
      survive because the host data folder is mounted at ``/devpi/server``, where the image keeps
      its state (the deployment guide's ``/data`` mount loses everything at this point). The old
      container is force-removed (SIGKILL); that is safe for devpi's SQLite state (tested in
      ``tests/test_container_real.py``), and a graceful stop would not help: the image's entrypoint
      shell is PID 1 without ``exec`` and ignores SIGTERM, so ``docker stop`` just waits 10 s.
    - **``DEVPI_PASSWORD`` is only read at the first start** (``devpi-init`` on an empty folder); the
      image still requires it on every start. Later root password changes are made over the API by
      another resource, so pass a latched initial password here: changing this input would only
      replace the container, never change root's password. The value goes into ``envs`` as a
      secret and ``envs`` is listed in ``additional_secret_outputs``, so the state never holds it
      in plain text. It is visible to ``docker inspect`` on the host (the image contract).
    - **A replica** (``args.primary_url`` set, see ``ServerArgs.from_replica``) gets no
      ``DEVPI_PASSWORD`` and its entrypoint is replaced (``entrypoints``): it initialises an empty
      folder as a replica of the primary and never as a second primary (docs/replicas.md).
    - The container runs with ``restart=always``, a healthcheck using the image's own ``python``
      (the image has no curl), and ``DEVPISERVER_NO_ROOT_PYPI=1`` unless the PyPI mirror is wanted.
    """

    container: docker.Container
    container_id: pulumi.Output[str]
    container_name: pulumi.Output[str]
    image: pulumi.Output[str]
    image_id: pulumi.Output[str]
    provider: docker.Provider
    remote_image: docker.RemoteImage
    spec: ContainerSpec
    #: the user-defined network shared with the HTTPS proxy (None without ``args.network``)
    network: docker.Network | None

    def __init__(self, name: str, args: ServerArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Validate before registering anything: a bad setting fails the preview with its key and value.
        spec = container_spec(args)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.spec = spec
        # Children wait for the host steps the caller depends on (data folder, firewall, SELinux).
        depends_on = opts.depends_on if opts is not None else None

        self.provider = docker.Provider(
            f"{name}-docker",
            host=args.docker_host,
            ssh_opts=list(args.ssh_opts) or None,
            opts=pulumi.ResourceOptions(parent=self),
        )
        on_host = pulumi.ResourceOptions(parent=self, provider=self.provider, depends_on=depends_on)

        # keep_locally: deleting or upgrading must not remove the image the running container uses.
        self.remote_image = docker.RemoteImage(
            f"{name}-image",
            name=spec.image,
            keep_locally=True,
            opts=on_host,
        )

        # The network the HTTPS proxy shares with devpi; the container attaches through its name
        # Output, so Pulumi creates the network first and deletes it last.
        self.network = None
        if args.network is not None:
            self.network = docker.Network(f"{name}-network", name=args.network, driver="bridge", opts=on_host)
        network_name: pulumi.Input[str] | None = self.network.name if self.network is not None else None

        envs: list[pulumi.Input[str]] = list(spec.env_list())
        if spec.secret_env:
            if args.initial_root_password is None:
                raise ValueError(f"{name}: a primary needs initial_root_password (DEVPI_PASSWORD)")
            # Still a secret after apply (apply on a secret Output yields a secret Output).
            envs.append(pulumi.Output.secret(args.initial_root_password).apply(_password_env))
        self.container = docker.Container(
            f"{name}-container",
            name=spec.name,
            # The image id: a re-pulled or upgraded image replaces the container.
            image=self.remote_image.image_id,
            envs=envs,
            # a replica runs devpi-init as a replica and devpi-server itself, never the image's entrypoint
            entrypoints=list(spec.entrypoint) or None,
            command=list(spec.command) or None,
            **container_inputs(spec, network_name, wait=args.wait_healthy, timeout=args.ready_timeout),
            opts=pulumi.ResourceOptions.merge(on_host, pulumi.ResourceOptions(
                # envs carries DEVPI_PASSWORD: keep the whole list secret in the state.
                additional_secret_outputs=["envs"] if spec.secret_env else None,
            )),
        )

        self.container_id = self.container.id
        self.container_name = self.container.name
        self.image = pulumi.Output.from_input(spec.image)
        self.image_id = self.remote_image.image_id
        self.register_outputs({
            "container_id": self.container_id,
            "container_name": self.container_name,
            "image": self.image,
            "image_id": self.image_id,
        })
