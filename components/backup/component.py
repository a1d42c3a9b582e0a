"""``BackupSchedule``: a systemd timer on the host that backs devpi up with devpi-export, keeping
the newest N archives (scripts rendered by components.backup.scripts; why devpi-export and not a
tar of the data folder: see components/lifecycle/backup.py).

Installed with one ``pulumi_command.remote.Command``: ``create`` installs (idempotent), ``delete``
uninstalls the timer, service and script but never the archives. ``triggers`` carries the hash of
the rendered scripts, so any change re-installs; ``delete_before_replace`` makes the old uninstall
run *before* the new install (the default create-before-delete order would install the new timer
and then let the old resource's delete remove it again — the files have the same paths).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_command import remote

from components.backup.scripts import (
    BackupPlan,
    render_install_script,
    render_uninstall_script,
    script_hash,
)
from components.config.defaults import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_BACKUP_KEEP,
    DEFAULT_BACKUP_SCHEDULE,
    DEFAULT_BACKUP_UNIT,
    DEFAULT_CONTAINER_NAME,
)
from components.config.model import StackConfig

__all__ = ["BackupArgs", "BackupSchedule"]


@dataclass(frozen=True, kw_only=True)
class BackupArgs:
    """Where and how often to back up.

    ``connection``: SSH connection to the host (``remote.ConnectionArgs``, may be an Output).
    ``schedule``: systemd OnCalendar expression (``daily``, ``*-*-* 02:30:00``).
    ``backup_dir``: absolute folder on the host for ``devpi-export-*.tar.gz`` archives (mode 0700).
    ``keep``: how many archives to keep (>= 1). ``container_name``: the devpi-server container.
    ``sudo``: run the install/uninstall through ``sudo -n`` (the SSH user is not root).
    ``data_dir``: the server's data folder on the host, for the record only (named in the script):
    the backup never reads it directly — devpi-export reads it through the container, consistently.
    """

    connection: pulumi.Input[remote.ConnectionArgs]
    schedule: str = DEFAULT_BACKUP_SCHEDULE
    backup_dir: str = DEFAULT_BACKUP_DIR
    keep: int = DEFAULT_BACKUP_KEEP
    container_name: str = DEFAULT_CONTAINER_NAME
    sudo: bool = True
    unit_name: str = DEFAULT_BACKUP_UNIT
    data_dir: str | None = None

    @classmethod
    def from_config(cls, config: StackConfig, connection: pulumi.Input[remote.ConnectionArgs]) -> BackupArgs:
        """The one way from the validated stack config to the backup's arguments."""
        return cls(
            connection=connection, schedule=config.backup.schedule, backup_dir=config.backup.directory,
            keep=config.backup.keep, container_name=config.server.container_name,
            sudo=config.host.sudo if config.host else False, data_dir=config.server.data_dir,
        )

    def plan(self) -> BackupPlan:
        """The values the scripts are rendered from (``ConfigError`` naming ``BackupPlan.<argument>``
        on a value the rules refuse)."""
        return BackupPlan(backup_dir=self.backup_dir, keep=self.keep, container_name=self.container_name,
                          schedule=self.schedule, unit_name=self.unit_name, data_dir=self.data_dir)


def _as_command(script: str, sudo: bool) -> str:
    return f"{'sudo -n ' if sudo else ''}bash -c {shlex.quote(script)}"


class BackupSchedule(pulumi.ComponentResource):
    """The timer, service and script on the host; outputs the timer name and the scripts' hash."""

    timer: pulumi.Output[str]
    script_hash: pulumi.Output[str]
    backup_dir: pulumi.Output[str]

    def __init__(self, name: str, args: BackupArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        plan = args.plan()  # validate before registering anything
        super().__init__("devpi-registry:backup:BackupSchedule", name, None, opts)
        digest = script_hash(plan)
        self.install = remote.Command(
            f"{name}-install",
            connection=args.connection,
            create=_as_command(render_install_script(plan), args.sudo),
            delete=_as_command(render_uninstall_script(plan), args.sudo),
            triggers=[digest],
            opts=pulumi.ResourceOptions(parent=self, delete_before_replace=True),
        )
        self.timer = pulumi.Output.from_input(f"{plan.unit_name}.timer")
        self.script_hash = pulumi.Output.from_input(digest)
        self.backup_dir = pulumi.Output.from_input(plan.backup_dir)
        outputs: dict[str, Any] = {"timer": self.timer, "script_hash": self.script_hash,
                                   "backup_dir": self.backup_dir}
        self.register_outputs(outputs)
