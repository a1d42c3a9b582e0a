"""``DevpiReplica``: one devpi replica on its own host, as one Pulumi component.

Children, in dependency order (each arrow a Pulumi dependency):

    HostSetup (preflight -> data folder -> SELinux -> shared secret [-> proxy files] -> firewall)
      -> DevpiServer in replica mode (devpi-init --role replica on an empty folder, never a primary)
        [-> DevpiProxy: HTTPS in front of the replica, same certificate and settings as the primary's]
          -> DevpiReplicaReady (answers as a replica of *this* primary, lag within ``maxLag``)

The caller passes the primary's readiness gate as ``primary_ready``: a replica's container starts
only once the primary answers, so its first sync has a primary to talk to. Registry objects (users,
indexes) are never sent to a replica; devpi relays any write a client sends it to the primary.

Removing a replica from the config deletes this component: the container is removed, the firewall
port closed and the secret file removed; the data folder stays unless ``server.purgeDataOnDestroy``
(the host step's rule, as for the primary).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi

from components.config.model import ReplicaConfig, StackConfig
from components.host.component import HostArgs, HostSetup
from components.providers.replica import DevpiReplicaReady
from components.proxy.component import DevpiProxy, ProxyArgs, proxy_settings
from components.proxy.spec import proxy_files
from components.server.component import DevpiServer, ServerArgs

__all__ = ["COMPONENT_TYPE", "DevpiReplica", "ReplicaSecrets"]

COMPONENT_TYPE = "devpi-registry:replica:DevpiReplica"


@dataclass(frozen=True)
class ReplicaSecrets:
    """What a replica host needs that is secret: its SSH key, devpi's shared secret, the TLS key."""

    ssh_private_key: pulumi.Input[str]
    shared_secret: pulumi.Input[str]
    tls_private_key: pulumi.Input[str] | None = None


class DevpiReplica(pulumi.ComponentResource):
    """A replica of the stack's primary; ``ready`` is its readiness gate (a dynamic resource)."""

    host: HostSetup
    server: DevpiServer
    proxy: DevpiProxy | None
    ready: DevpiReplicaReady
    url: str

    def __init__(self, name: str, config: StackConfig, replica: ReplicaConfig, secrets: ReplicaSecrets, *,
                 primary_ready: Sequence[pulumi.Resource] = (), opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.url = replica.url
        files = None
        if config.proxied:
            assert config.tls is not None and config.tls.certificate is not None, "proxied implies both"
            files = proxy_files(proxy_settings(config, replica), config.tls.certificate)
        self.host = HostSetup(
            f"{name}-host",
            HostArgs.from_replica(config, replica, secrets.ssh_private_key, secret=secrets.shared_secret,
                                  ca_bundle=config.ca_bundle, proxy_files=files,
                                  tls_private_key=secrets.tls_private_key if files is not None else None),
            opts=pulumi.ResourceOptions(parent=self),
        )
        after = [*self.host.ready, *primary_ready]
        self.server = DevpiServer(f"{name}-server", ServerArgs.from_replica(config, replica),
                                  opts=pulumi.ResourceOptions(parent=self, depends_on=after))
        self.proxy = None
        gate_after: list[pulumi.Resource] = [self.server]
        if config.proxied:
            assert self.server.network is not None, "a proxied replica joins the proxy network"
            self.proxy = DevpiProxy(
                f"{name}-proxy",
                ProxyArgs.from_config(config, self.server.provider, self.server.network, replica=replica),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*self.host.ready, self.server]))
            gate_after.append(self.proxy)
        self.ready = DevpiReplicaReady(
            f"{name}-ready", replica_url=replica.url, primary_url=replica.primary_url, max_lag=replica.max_lag,
            ready_timeout=config.server.ready_timeout, server_id=self.server.container_id,
            ca_bundle=config.ca_bundle, opts=pulumi.ResourceOptions(parent=self, depends_on=gate_after))
        self.register_outputs({"url": self.url, "serial": self.ready.serial})
