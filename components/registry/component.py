"""``DevpiRegistry``: the whole registry of one environment as one component.

Wiring, in dependency order (each arrow is a Pulumi dependency, so ``pulumi up`` creates in this
order and ``pulumi destroy`` deletes in reverse):

    HostSetup (preflight -> data folder -> SELinux label -> firewall)      [only with `host`]
      -> DevpiServer (container, data at /devpi/server with :Z)           [only with `host`]
        -> DevpiRoot (waits for /+api, proves or rotates root's password)
          -> DevpiUser (one per declared user)
            -> DevpiIndex (bases before the indexes inheriting them)
    BackupSchedule (systemd timer on the host)                              [only with `backup`]

Without ``host`` the component manages only the registry objects of an existing server
(``serverUrl``) — how a registry made by hand is brought under the stack (with ``adopt: true``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi

from components.config.stack import PYPI_MIRROR, IndexConfig, StackConfig
from components.providers.index import DevpiIndex
from components.providers.latch import InitialValue
from components.providers.root import DevpiRoot
from components.providers.user import DevpiUser
from components.registry.client_config import (
    index_urls,
    pip_conf,
    pypirc,
    pypirc_section_name,
    requirements_header,
    twine_command,
)

__all__ = ["DevpiRegistry", "RegistrySecrets", "registry_outputs"]


@dataclass(frozen=True)
class RegistrySecrets:
    """The stack's secrets as Pulumi secret Outputs (never unwrapped by the program)."""

    root_password: pulumi.Output[str]
    user_passwords: Mapping[str, pulumi.Output[str]]
    ssh_private_key: pulumi.Output[str] | None = None


def registry_outputs(config: StackConfig) -> dict[str, Any]:
    """Pure: the URLs and client configuration a team uses the same day (no secrets in any of it)."""
    url = config.server_url
    indexes: dict[str, Any] = {}
    sections: dict[str, tuple[str, str]] = {}
    twine: dict[str, str] = {}
    taken: list[str] = []
    for ix in config.indexes:
        urls = index_urls(url, ix.full_name)
        indexes[ix.full_name] = {
            "uploadUrl": urls.upload if ix.type == "stage" else None,
            "simpleUrl": urls.simple,
            "volatile": ix.volatile,
            "bases": list(ix.bases),
            "pipConfStrict": pip_conf(url, ix.full_name, mode="strict"),
            "pipConfMixed": pip_conf(url, ix.full_name, mode="mixed"),
            "requirementsHeader": requirements_header(url, ix.full_name),
        }
        if ix.type != "stage":
            continue
        section = pypirc_section_name(ix.full_name, taken)
        taken.append(ix.name)
        uploader = next((u for u in ix.uploaders if not u.startswith(":")), ix.owner)
        sections[section] = (ix.full_name, uploader)
        twine[ix.full_name] = twine_command(url, ix.full_name, uploader)
    return {
        "serverUrl": url,
        "indexes": indexes,
        "pypirc": pypirc(url, sections) if sections else "",
        "twineCommands": twine,
    }


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
        child = pulumi.ResourceOptions(parent=self)

        self.host = None
        self.server = None
        server_id: pulumi.Input[str] | None = None
        # DEVPI_PASSWORD is read by the image at first initialisation only. Latching its first value
        # keeps the container's environment stable when rootPassword rotates: rotation happens
        # over the API (DevpiRoot), with no container replacement and no downtime.
        initial = InitialValue(f"{name}-initial-root-password", value=secrets.root_password, opts=child)
        if config.host is not None:
            from components.host.component import HostArgs, HostSetup
            from components.server.component import DevpiServer, ServerArgs

            if secrets.ssh_private_key is None:
                raise ValueError("an SSH private key is required when the host is managed")
            self.host = HostSetup(
                f"{name}-host",
                HostArgs(
                    address=config.host.address,
                    ssh_port=config.host.port,
                    user=config.host.user,
                    private_key=secrets.ssh_private_key,
                    host_key=config.host.host_key,
                    sudo=config.host.sudo,
                    data_dir=config.server.data_dir,
                    port=config.server.port,
                    firewall_when_inactive=config.server.firewall_when_inactive,
                    purge_data_on_destroy=config.server.purge_data_on_destroy,
                ),
                opts=child,
            )
            docker_host = config.docker_host
            assert docker_host is not None
            self.server = DevpiServer(
                f"{name}-server",
                ServerArgs(
                    docker_host=docker_host,
                    ssh_opts=list(config.server.ssh_opts),
                    image=config.server.image,
                    allow_floating_tag=config.server.allow_floating_tag,
                    port=config.server.port,
                    data_dir=config.server.data_dir,
                    initial_root_password=initial.value,
                    pypi_mirror=config.server.pypi_mirror,
                    container_name=config.server.container_name,
                    ready_timeout=config.server.ready_timeout,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.host]),
            )
            server_id = self.server.container_id

        self.root = DevpiRoot(
            f"{name}-root",
            password=secrets.root_password,
            initial_password=initial.value,
            server_id=server_id,
            ready_timeout=config.server.ready_timeout,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.server] if self.server else []),
        )
        after_root = pulumi.ResourceOptions(parent=self, depends_on=[self.root])

        self.users: dict[str, DevpiUser] = {}
        for user in config.users:
            self.users[user.name] = DevpiUser(
                f"{name}-user-{user.name}",
                name=user.name,
                password=secrets.user_passwords[user.name],
                email=user.email,
                title=user.title,
                description=user.description,
                adopt=user.adopt,
                force_destroy=user.force_destroy,
                opts=after_root,
            )

        self.indexes: dict[str, DevpiIndex] = {}
        for ix in config.indexes_in_creation_order():
            self.indexes[ix.full_name] = self._index(name, ix)

        self.backup = None
        if config.backup.enabled and self.host is not None and self.server is not None:
            from components.backup.component import BackupArgs, BackupSchedule

            self.backup = BackupSchedule(
                f"{name}-backup",
                BackupArgs(
                    connection=self.host.connection,
                    schedule=config.backup.schedule,
                    backup_dir=config.backup.directory,
                    keep=config.backup.keep,
                    container_name=config.server.container_name,
                    sudo=config.host.sudo if config.host else False,
                    data_dir=config.server.data_dir,
                ),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.server]),
            )

        outputs = registry_outputs(config)
        # Expose the URL only once the server answered and root's password is proven.
        self.server_url = self.root.url.apply(lambda _: config.server_url)
        self.outputs = outputs
        self.register_outputs({"serverUrl": self.server_url, **{k: v for k, v in outputs.items() if k != "serverUrl"}})

    def _index(self, name: str, ix: IndexConfig) -> DevpiIndex:
        """One index; its owner and its declared bases are Pulumi dependencies (creation order,
        and deletion in reverse: an index is deleted before the bases it inherits)."""
        depends: list[pulumi.Resource] = [self.root]
        if ix.owner in self.users:
            depends.append(self.users[ix.owner])
        # Bases are sent as plain "user/index" strings (known at preview, so diffs stay readable);
        # the declared ones are also dependencies: created first, deleted last.
        depends += [self.indexes[base] for base in ix.bases if base in self.indexes]
        assert all(b in self.indexes or b == PYPI_MIRROR for b in ix.bases), "config validated bases"
        return DevpiIndex(
            f"{name}-index-{ix.owner}-{ix.name}",
            owner=ix.owner,
            name=ix.name,
            bases=list(ix.bases),
            **ix.resource_inputs(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends),
        )
