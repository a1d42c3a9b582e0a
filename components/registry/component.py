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

Every part is built from the validated config objects (:mod:`components.config.model`) by one
function: ``HostArgs.from_config``, ``ServerArgs.from_config``, ``BackupArgs.from_config``,
:func:`~components.registry.inputs.index_inputs`, :func:`~components.registry.inputs.user_inputs`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pulumi

from components.config.defaults import PYPI_MIRROR
from components.config.model import IndexConfig, StackConfig
from components.providers.index import DevpiIndex
from components.providers.latch import InitialValue
from components.providers.root import DevpiRoot, RootInputs
from components.providers.user import DevpiUser
from components.registry.client_config import (
    index_urls,
    pip_conf,
    pypirc,
    pypirc_section_name,
    requirements_header,
    twine_command,
)
from components.registry.inputs import index_inputs, user_inputs

if TYPE_CHECKING:
    from components.backup.component import BackupSchedule
    from components.host.component import HostSetup
    from components.server.component import DevpiServer

__all__ = ["DevpiRegistry", "IndexOutputs", "RegistryOutputs", "RegistrySecrets", "registry_outputs"]


@dataclass(frozen=True)
class RegistrySecrets:
    """The stack's secrets as Pulumi secret Outputs (never unwrapped by the program)."""

    root_password: pulumi.Output[str]
    user_passwords: Mapping[str, pulumi.Output[str]]
    ssh_private_key: pulumi.Output[str] | None = None


# ------------------------------------------------------------------------------------------ outputs
@dataclass(frozen=True)
class IndexOutputs:
    """How a team uses one index: where to upload and install from, and ready-to-paste files."""

    upload_url: str | None  # None for a mirror: nobody uploads to it
    simple_url: str
    volatile: bool
    bases: tuple[str, ...]
    pip_conf_strict: str
    pip_conf_mixed: str
    requirements_header: str

    def exported(self) -> dict[str, Any]:
        """The index's entry of the ``indexes`` stack output (the names teams' scripts read)."""
        return {
            "uploadUrl": self.upload_url,
            "simpleUrl": self.simple_url,
            "volatile": self.volatile,
            "bases": list(self.bases),
            "pipConfStrict": self.pip_conf_strict,
            "pipConfMixed": self.pip_conf_mixed,
            "requirementsHeader": self.requirements_header,
        }


@dataclass(frozen=True)
class RegistryOutputs:
    """What a team uses the day the registry exists; no secret in any of it.

    ``pip_conf`` is the strict pip.conf of the first stage index (else of the first index), or None
    when no index is declared.
    """

    server_url: str
    indexes: Mapping[str, IndexOutputs]
    pypirc: str
    twine_commands: Mapping[str, str]
    pip_conf: str | None

    def exported(self) -> dict[str, Any]:
        """The stack outputs, by their exported names (``pipConf`` only when there is an index)."""
        out: dict[str, Any] = {
            "serverUrl": self.server_url,
            "indexes": {name: ix.exported() for name, ix in self.indexes.items()},
            "pypirc": self.pypirc,
            "twineCommands": dict(self.twine_commands),
        }
        if self.pip_conf is not None:
            out["pipConf"] = self.pip_conf
        return out


def _index_outputs(url: str, ix: IndexConfig) -> IndexOutputs:
    urls = index_urls(url, ix.full_name)
    return IndexOutputs(
        upload_url=urls.upload if ix.type == "stage" else None,
        simple_url=urls.simple,
        volatile=ix.volatile,
        bases=tuple(ix.bases),
        pip_conf_strict=pip_conf(url, ix.full_name, mode="strict"),
        pip_conf_mixed=pip_conf(url, ix.full_name, mode="mixed"),
        requirements_header=requirements_header(url, ix.full_name),
    )


def registry_outputs(config: StackConfig) -> RegistryOutputs:
    """Pure: the URLs and client configuration of every declared index (no secrets in any of it)."""
    url = config.server_url
    sections: dict[str, tuple[str, str]] = {}
    twine: dict[str, str] = {}
    taken: list[str] = []
    stages = [ix for ix in config.indexes if ix.type == "stage"]
    for ix in stages:  # upload targets: a .pypirc section and a twine command each
        section = pypirc_section_name(ix.full_name, taken)
        taken.append(ix.name)
        uploader = next((u for u in ix.uploaders if not u.startswith(":")), ix.owner)
        sections[section] = (ix.full_name, uploader)
        twine[ix.full_name] = twine_command(url, ix.full_name, uploader)
    first = next(iter(stages or config.indexes), None)
    return RegistryOutputs(
        server_url=url,
        indexes={ix.full_name: _index_outputs(url, ix) for ix in config.indexes},
        pypirc=pypirc(url, sections) if sections else "",
        twine_commands=twine,
        pip_conf=pip_conf(url, first.full_name, mode="strict") if first is not None else None,
    )


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
        self.host, self.server = self._host_and_server(secrets, initial.value)
        self.root = self._root(secrets, initial.value)
        self.users = self._users(secrets)
        self.indexes = self._indexes()
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
        host = HostSetup(f"{self.prefix}-host", HostArgs.from_config(self.config, secrets.ssh_private_key),
                         opts=self._child())
        server = DevpiServer(f"{self.prefix}-server", ServerArgs.from_config(self.config, initial_password),
                             opts=self._child(host))
        return host, server

    def _root(self, secrets: RegistrySecrets, initial_password: pulumi.Output[Any]) -> DevpiRoot:
        """The readiness gate and root's password (re-runs its wait when the container is replaced)."""
        inputs = RootInputs(
            password=secrets.root_password,
            initial_password=initial_password,
            server_id=self.server.container_id if self.server is not None else None,
            ready_timeout=self.config.server.ready_timeout,
            url=self.config.server_url,
        )
        return DevpiRoot(f"{self.prefix}-root", inputs, opts=self._child(self.server))

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
