"""``DevpiRegistry``: the whole registry of one environment as one component.

Wiring, in dependency order (each arrow is a Pulumi dependency, so ``pulumi up`` creates in this
order and ``pulumi destroy`` deletes in reverse):

    GeneratedSecret (devpi's shared --secretfile, made once)                [only with `host`]
    HostSetup (preflight -> data folder -> SELinux -> secret [-> proxy files] -> firewall) [`host`]
      -> DevpiServer (container, data at /devpi/server with :Z)           [only with `host`]
        [-> DevpiProxy (nginx terminating HTTPS; devpi on 127.0.0.1 only)]  [only with `tls`]
          -> DevpiRoot (waits for /+api, proves or rotates root's password)
            -> DevpiUser (one per declared user)
              -> DevpiIndex (bases before the indexes inheriting them)
            -> DevpiReplica (one per declared replica: its host, container, proxy, readiness)
    BackupSchedule (systemd timer on the host)                              [only with `backup`]

Without ``host`` the component manages only the registry objects of an existing server
(``serverUrl``) — how a registry made by hand is brought under the stack (with ``adopt: true``).

Every part is built from the validated config objects (:mod:`components.config.model`) by one
function: ``HostArgs.from_config``, ``ServerArgs.from_config``, ``BackupArgs.from_config``,
:func:`~components.registry.inputs.index_inputs`, :func:`~components.registry.inputs.user_inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pulumi

from components.config.defaults import PYPI_MIRROR
from components.config.model import StackConfig
from components.providers.index import DevpiIndex
from components.providers.latch import InitialValue
from components.providers.root import DevpiRoot, RootInputs
from components.providers.secret import GeneratedSecret
from components.providers.user import DevpiUser
from components.registry.inputs import index_inputs, user_inputs
from components.registry.outputs import IndexOutputs, RegistryOutputs, ReplicaOutputs, registry_outputs

if TYPE_CHECKING:
    from components.backup.component import BackupSchedule
    from components.host.component import HostSetup
    from components.proxy.component import DevpiProxy
    from components.replica.component import DevpiReplica
    from components.server.component import DevpiServer

__all__ = ["DevpiRegistry", "IndexOutputs", "RegistryOutputs", "RegistrySecrets", "ReplicaOutputs",
           "registry_outputs"]


@dataclass(frozen=True)
class RegistrySecrets:
    """The stack's secrets as Pulumi secret Outputs (never unwrapped by the program)."""

    root_password: pulumi.Output[str]
    user_passwords: Mapping[str, pulumi.Output[str]]
    ssh_private_key: pulumi.Output[str] | None = None
    #: the proxy's TLS private key (stacks with `tls` and a managed host)
    tls_private_key: pulumi.Output[str] | None = None
    #: replica name -> its own SSH key (replicas without one use ``ssh_private_key``)
    replica_ssh_keys: Mapping[str, pulumi.Output[str]] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------- component
class DevpiRegistry(pulumi.ComponentResource):
    """One environment's devpi registry: host, container, root account, users and indexes."""

    server_url: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        config: StackConfig,
        secrets: RegistrySecrets,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("devpi-registry:registry:DevpiRegistry", name, None, opts)
        self.config = config
        self.prefix = name  # child names: f"{prefix}-<part>"
        # DEVPI_PASSWORD is read by the image at first initialisation only. Latching its first value
        # keeps the container's environment stable when rootPassword rotates: rotation happens
        # over the API (DevpiRoot), with no container replacement and no downtime.
        initial = InitialValue(f"{name}-initial-root-password", value=secrets.root_password,
                               opts=pulumi.ResourceOptions(parent=self))
        self.shared_secret = (GeneratedSecret(f"{name}-shared-secret", purpose="devpi-secretfile",
                                              opts=pulumi.ResourceOptions(parent=self))
                              if config.host is not None else None)
        self.host, self.server = self._host_and_server(secrets, initial.value)
        self.proxy = self._proxy()
        self.root = self._root(secrets, initial.value)
        self.users = self._users(secrets)
        self.indexes = self._indexes()
        self.replicas = self._replicas(secrets)
        self.backup = self._backup()
        self.outputs = registry_outputs(config)
        # Expose the URL only once the server answered and root's password is proven.
        self.server_url = self.root.url.apply(lambda _: config.server_url)
        self.register_outputs(self.exports())

    def exports(self) -> dict[str, Any]:
        """The stack outputs: :meth:`RegistryOutputs.exported`, with ``serverUrl`` known only once
        devpi answered and root's password is proven."""
        return {**self.outputs.exported(), "serverUrl": self.server_url}

    def _child(self, *depends_on: pulumi.Resource | None) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self, depends_on=[d for d in depends_on if d is not None])

    def _host_and_server(self, secrets: RegistrySecrets, initial_password: pulumi.Output[Any]
                         ) -> tuple[HostSetup | None, DevpiServer | None]:
        """The host steps and the container, when the stack manages the host."""
        if self.config.host is None:
            return None, None
        from components.host.component import HostArgs, HostSetup
        from components.server.component import DevpiServer, ServerArgs

        if secrets.ssh_private_key is None:
            raise ValueError("an SSH private key is required when the host is managed")
        assert self.shared_secret is not None, "made whenever the host is managed"
        files, key = self._proxy_files(secrets)
        host = HostSetup(f"{self.prefix}-host",
                         HostArgs.from_config(self.config, secrets.ssh_private_key, secret=self.shared_secret.value,
                                              proxy_files=files, tls_private_key=key),
                         opts=self._child())
        server = DevpiServer(f"{self.prefix}-server", ServerArgs.from_config(self.config, initial_password),
                             opts=self._child(host))
        return host, server

    def _proxy_files(self, secrets: RegistrySecrets) -> tuple[dict[str, tuple[str, int]] | None,
                                                             pulumi.Output[str] | None]:
        """The proxy's files (config, certificate chain) and its key, when the stack serves HTTPS."""
        if not self.config.proxied:
            return None, None
        from components.proxy.component import proxy_settings
        from components.proxy.spec import proxy_files

        tls = self.config.tls
        assert tls is not None and tls.certificate is not None, "proxied implies both"
        if secrets.tls_private_key is None:
            raise ValueError("the TLS private key (tlsPrivateKey) is required with `tls` and `host`")
        return proxy_files(proxy_settings(self.config), tls.certificate), secrets.tls_private_key

    def _proxy(self) -> DevpiProxy | None:
        """nginx terminating HTTPS in front of devpi, after the host wrote its files."""
        if not self.config.proxied or self.host is None or self.server is None:
            return None
        from components.proxy.component import DevpiProxy, ProxyArgs

        assert self.server.network is not None, "a proxied server joins the proxy network"
        return DevpiProxy(f"{self.prefix}-proxy",
                          ProxyArgs.from_config(self.config, self.server.provider, self.server.network),
                          opts=self._child(*self.host.ready, self.server))

    def _replicas(self, secrets: RegistrySecrets) -> dict[str, DevpiReplica]:
        """One replica per declared entry, each started once the primary answers (root is proven)."""
        if not self.config.replicas:
            return {}
        from components.replica.component import DevpiReplica, ReplicaSecrets

        assert self.shared_secret is not None and secrets.ssh_private_key is not None, "replicas need `host`"
        return {
            r.name: DevpiReplica(
                f"{self.prefix}-replica-{r.name}", self.config, r,
                ReplicaSecrets(ssh_private_key=secrets.replica_ssh_keys.get(r.name, secrets.ssh_private_key),
                               shared_secret=self.shared_secret.value, tls_private_key=secrets.tls_private_key),
                primary_ready=[self.root], opts=self._child())
            for r in self.config.replicas
        }

    def _root(self, secrets: RegistrySecrets, initial_password: pulumi.Output[Any]) -> DevpiRoot:
        """The readiness gate and root's password (re-runs its wait when the container is replaced)."""
        inputs = RootInputs(
            password=secrets.root_password,
            initial_password=initial_password,
            server_id=self.server.container_id if self.server is not None else None,
            ready_timeout=self.config.server.ready_timeout,
            url=self.config.server_url,
        )
        return DevpiRoot(f"{self.prefix}-root", inputs, opts=self._child(self.server, self.proxy))

    def _users(self, secrets: RegistrySecrets) -> dict[str, DevpiUser]:
        return {
            user.name: DevpiUser(f"{self.prefix}-user-{user.name}",
                                 user_inputs(user, secrets.user_passwords[user.name]),
                                 opts=self._child(self.root))
            for user in self.config.users
        }

    def _indexes(self) -> dict[str, DevpiIndex]:
        """Every index, bases first; its owner and its declared bases are Pulumi dependencies
        (creation order, and deletion in reverse: an index is deleted before the bases it inherits)."""
        indexes: dict[str, DevpiIndex] = {}
        for ix in self.config.indexes_in_creation_order():
            # Bases are sent as plain "user/index" strings (known at preview, so diffs stay readable);
            # the declared ones are also dependencies: created first, deleted last.
            assert all(b in indexes or b == PYPI_MIRROR for b in ix.bases), "config validated bases"
            bases = [indexes[base] for base in ix.bases if base in indexes]
            indexes[ix.full_name] = DevpiIndex(f"{self.prefix}-index-{ix.owner}-{ix.name}", index_inputs(ix),
                                               opts=self._child(self.root, self.users.get(ix.owner), *bases))
        return indexes

    def _backup(self) -> BackupSchedule | None:
        """The backup timer on the host, when backups are enabled (they need the host and container)."""
        if not self.config.backup.enabled or self.host is None or self.server is None:
            return None
        from components.backup.component import BackupArgs, BackupSchedule

        return BackupSchedule(f"{self.prefix}-backup", BackupArgs.from_config(self.config, self.host.connection),
                              opts=self._child(self.server))
