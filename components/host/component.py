"""The RHEL 8 host prepared for devpi: checks, data folder, SELinux label, firewall port.

``HostSetup`` runs the scripts of :mod:`components.host.scripts` over SSH, one pulumi-command
``remote.Command`` per step, each step waiting for the one before (preflight → data folder →
SELinux → firewall). It exposes the SSH ``connection`` (for other components that run commands on
the host), the ``data_dir`` and ``ready``: the resources a container must depend on.

Secrets: the private key goes into the connection only, wrapped with ``Output.secret``
(pulumi-command stores the whole connection as a secret as well). No script receives it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

import pulumi
from pulumi_command import remote

from components.config.errors import ConfigError
from components.host.scripts import DEFAULT_DATA_DIR, FirewallWhenInactive, HostPlan, Step, render_steps

__all__ = ["HOST_SETUP_TYPE", "HostArgs", "HostSetup"]

HOST_SETUP_TYPE = "devpi-registry:host:HostSetup"

_HOST_KEY_RE = re.compile(r"^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|rsa-sha2-(256|512)|ssh-rsa) "
                          r"[A-Za-z0-9+/]+={0,3}( .*)?$")


@dataclass(frozen=True, kw_only=True)
class HostArgs:
    """How to reach the host and how to prepare it.

    ``host_key`` is the host's public key line as in ``known_hosts`` without the host name
    (``ssh-ed25519 AAAA…``, e.g. from ``ssh-keyscan -t ed25519 HOST``): it is required, because
    pulumi-command does not verify the host at all without it.
    """

    address: pulumi.Input[str]
    private_key: pulumi.Input[str]
    #: required; Optional only so a missing config value gets the ConfigError below, not a TypeError
    host_key: pulumi.Input[str] | None
    user: str = "root"
    ssh_port: int = 22
    #: None = sudo exactly when ``user`` is not root
    sudo: bool | None = None
    sudo_command: str = "sudo -n"
    data_dir: str = DEFAULT_DATA_DIR
    port: int = 3141
    data_owner_uid: int = 0
    data_owner_gid: int = 0
    #: 'fail' or 'skip' (checked with the other settings in ``plan()``)
    firewall_when_inactive: str = "fail"
    purge_data_on_destroy: bool = False
    dial_error_limit: int = 10
    per_dial_timeout: int = 15

    def __post_init__(self) -> None:
        if isinstance(self.ssh_port, bool) or not isinstance(self.ssh_port, int) \
                or not 1 <= self.ssh_port <= 65535:
            raise ConfigError("host.sshPort", self.ssh_port, "must be a TCP port number from 1 to 65535")
        if self.host_key is None or self.host_key == "":
            raise ConfigError("host.hostKey", self.host_key,
                              "is required so the SSH connection is verified; get it with "
                              "'ssh-keyscan -t ed25519 HOST' and keep the part after the host name")
        if isinstance(self.host_key, str) and not _HOST_KEY_RE.match(self.host_key.strip()):
            raise ConfigError("host.hostKey", self.host_key,
                              "must be a public key line such as 'ssh-ed25519 AAAAC3Nza…'")
        if isinstance(self.address, str) and not self.address.strip():
            raise ConfigError("host.address", self.address, "must name the host (DNS name or IP)")
        self.plan()  # validates the plain settings now, with the key paths in the message

    def plan(self) -> HostPlan:
        """The non-secret settings the scripts are rendered from."""
        return HostPlan(
            user=self.user, sudo=self.sudo, sudo_command=self.sudo_command, data_dir=self.data_dir,
            port=self.port, data_owner_uid=self.data_owner_uid, data_owner_gid=self.data_owner_gid,
            firewall_when_inactive=cast(FirewallWhenInactive, self.firewall_when_inactive),
            purge_data_on_destroy=self.purge_data_on_destroy,
        )


class HostSetup(pulumi.ComponentResource):
    """Prepares the host for the devpi container; depend on ``ready`` before starting it.

    Attributes: ``connection`` (the SSH ``remote.ConnectionArgs``, private key secret, host key
    pinned: reuse it for other commands on this host), ``data_dir`` and ``port`` (plain values,
    known at preview), ``steps`` (step name -> ``remote.Command``) and ``ready`` (those Commands in
    order, for ``depends_on``).
    """

    connection: remote.ConnectionArgs
    data_dir: str
    port: int
    steps: dict[str, remote.Command]
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(HOST_SETUP_TYPE, name, None, opts)
        plan = args.plan()
        self.data_dir = plan.data_dir
        self.port = plan.port
        self.connection = remote.ConnectionArgs(
            host=args.address,
            port=float(args.ssh_port),
            user=args.user,
            private_key=pulumi.Output.secret(args.private_key),
            host_key=args.host_key,
            dial_error_limit=args.dial_error_limit,
            per_dial_timeout=args.per_dial_timeout,
        )
        # Children inherit provider and aliases through parent=self; an explicit depends_on given
        # to the component is passed to the first step, so nothing runs on the host before it.
        self._caller_depends_on = opts.depends_on if opts is not None else None
        self.steps = {}
        previous: pulumi.Resource | None = None
        for step in render_steps(plan):
            previous = self.steps[step.name] = self._command(name, step, previous)
        self.ready = list(self.steps.values())
        self.register_outputs({
            "dataDir": self.data_dir,
            "port": self.port,
            "ready": [cmd.id for cmd in self.steps.values()],
        })

    def _command(self, name: str, step: Step, previous: pulumi.Resource | None) -> remote.Command:
        step_opts = pulumi.ResourceOptions(
            depends_on=[previous] if previous is not None else self._caller_depends_on,
            delete_before_replace=step.delete_before_replace,
            # the connection (with the private key) is an output too: keep it secret in state
            additional_secret_outputs=["connection"],
        )
        extra: dict[str, Any] = {}
        if step.trigger is not None:
            extra["triggers"] = [step.trigger]
        if step.update is not None:
            extra["update"] = step.update
        if step.delete is not None:
            extra["delete"] = step.delete
        return remote.Command(
            f"{name}-{step.name}",
            connection=self.connection,
            create=step.create,
            # the scripts print only paths, ports and states: showing them helps whoever runs `up`
            logging=remote.Logging.STDOUT_AND_STDERR,
            # PULUMI_COMMAND_STDOUT would be sent with SSH Setenv, which stock sshd refuses (warning)
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(parent=self).merge(step_opts),
            **extra,
        )
