"""The HTTPS reverse proxy (nginx) in front of devpi-server on the host, as one Pulumi component.

``DevpiProxy`` owns two children on the caller's Docker provider: the pulled proxy image and the
container described by ``components.proxy.spec``, joined to the Docker network it shares with devpi
(the registry component creates the network and passes it). The host files it mounts
(``proxy_files`` plus the key at ``KEY_FILE``) are written by the host step: pass that step in
``opts.depends_on`` so the files exist before the container starts.

Lifecycle facts the rest of the stack relies on:

- **Certificate rotation does not restart anything.** The certificate and key are files in the
  mounted ``tls`` folder, not container inputs: changing the secret re-runs the host step, which
  rewrites them and runs ``nginx -s reload`` in this container (``reload_command``). devpi is not
  touched and the proxy keeps serving (old workers finish their requests).
- **A changed nginx site replaces the container** (the ``config-hash`` label is a container input),
  so names, ports or the upload limit take effect on ``pulumi up``; replacing the proxy is a
  second-long gap and leaves devpi running.
- **Nothing secret reaches the container or the state**: no environment, no command, labels that
  hash the nginx config only.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import pulumi
import pulumi_docker as docker

from components.config.defaults import DEFAULT_READY_TIMEOUT, PROXY_NETWORK
from components.config.model import ReplicaConfig, StackConfig
from components.proxy.spec import ProxySettings, ProxySpec, proxy_spec
from components.server.component import container_inputs

__all__ = ["COMPONENT_TYPE", "DevpiProxy", "ProxyArgs", "proxy_settings"]

COMPONENT_TYPE = "devpi-registry:proxy:DevpiProxy"


@dataclass(frozen=True, kw_only=True)
class ProxyArgs:
    """Settings of the proxy container, the engine it runs on and the network it shares with devpi.

    ``provider``: the Docker provider of the host (``DevpiServer.provider``). ``network``: the
    user-defined network devpi joins under the alias ``devpi``; the container attaches to
    ``network.name``, so Pulumi creates the network first. ``wait_healthy``: ``pulumi up`` waits up
    to ``ready_timeout`` seconds for the healthcheck (an https request through to devpi's ``/+api``).
    """

    settings: ProxySettings
    provider: docker.Provider
    network: docker.Network
    wait_healthy: bool = True
    ready_timeout: int = DEFAULT_READY_TIMEOUT

    @classmethod
    def from_config(cls, config: StackConfig, provider: docker.Provider, network: docker.Network, *,
                    replica: ReplicaConfig | None = None) -> ProxyArgs:
        """The one way from the validated stack config (a stack with ``tls`` and a managed host) to
        the proxy's arguments: the primary's proxy, or ``replica``'s (same certificate and settings,
        served under the replica's name)."""
        return cls(settings=proxy_settings(config, replica), provider=provider, network=network,
                   ready_timeout=config.server.ready_timeout)


def proxy_settings(config: StackConfig, replica: ReplicaConfig | None = None) -> ProxySettings:
    """The proxy of the primary (or of ``replica``) as the stack config declares it; the host step
    writes :func:`~components.proxy.spec.proxy_files` of these settings."""
    tls = config.tls
    if tls is None or not config.proxied:
        raise ValueError("the stack runs no HTTPS proxy (it needs `tls` with a certificate and a managed host)")
    names = tuple(tls.names)
    if replica is not None:
        host = urlsplit(replica.url).hostname or replica.host.address
        names = (host, *(n for n in names if n != host))
    return ProxySettings(
        names=names, image=tls.proxy_image, allow_floating_tag=tls.allow_floating_proxy_tag,
        container_name=tls.proxy_container_name, proxy_dir=tls.proxy_dir, https_port=tls.https_port,
        http_port=tls.http_port, http_redirect=tls.http_redirect, max_upload_mb=tls.max_upload_mb,
        network=PROXY_NETWORK,
    )


class DevpiProxy(pulumi.ComponentResource):
    """nginx terminating HTTPS for devpi on the host; see the module docstring for its lifecycle."""

    container: docker.Container
    container_id: pulumi.Output[str]
    container_name: pulumi.Output[str]
    config_hash: pulumi.Output[str]
    image_id: pulumi.Output[str]
    remote_image: docker.RemoteImage
    spec: ProxySpec

    def __init__(self, name: str, args: ProxyArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        # Validate before registering anything: a bad setting fails the preview with its argument.
        spec = proxy_spec(args.settings)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self.spec = spec
        # Children wait for the host step that writes the config, certificate and key.
        depends_on = opts.depends_on if opts is not None else None
        on_host = pulumi.ResourceOptions(parent=self, provider=args.provider, depends_on=depends_on)

        # keep_locally: replacing the proxy must not remove the image a running container uses.
        self.remote_image = docker.RemoteImage(f"{name}-image", name=spec.image, keep_locally=True, opts=on_host)

        self.container = docker.Container(
            f"{name}-container",
            name=spec.name,
            image=self.remote_image.image_id,
            stop_signal=spec.stop_signal,
            # The network resource's name: Pulumi orders the network before the container.
            **container_inputs(spec, args.network.name, wait=args.wait_healthy, timeout=args.ready_timeout),
            opts=on_host,
        )

        self.container_id = self.container.id
        self.container_name = self.container.name
        self.config_hash = pulumi.Output.from_input(spec.config_hash)
        self.image_id = self.remote_image.image_id
        self.register_outputs({
            "container_id": self.container_id,
            "container_name": self.container_name,
            "config_hash": self.config_hash,
            "image_id": self.image_id,
        })
