"""The RHEL 8 host prepared for devpi: checks, data folder, SELinux label, firewall port.

``HostSetup`` runs the scripts of :mod:`components.host.scripts` over SSH, one pulumi-command
``remote.Command`` per step, each step waiting for the one before (preflight → data folder →
SELinux → firewall). It exposes the SSH ``connection`` (for other components that run commands on
the host), the ``data_dir`` and ``ready``: the resources a container must depend on.

Secrets: the private key goes into the connection only, wrapped with ``Output.secret``
(pulumi-command stores the whole connection as a secret as well). No script receives it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
from pulumi_command import remote

from components.config import rules
from components.config.defaults import DEFAULT_DATA_DIR, DEFAULT_PORT, DEFAULT_SSH_PORT
from components.config.errors import refuse_arguments
from components.config.model import StackConfig
from components.host.scripts import FirewallWhenInactive, HostPlan, Step, render_steps

__all__ = ["HOST_SETUP_TYPE", "HostArgs", "HostSetup"]

HOST_SETUP_TYPE = "devpi-registry:host:HostSetup"

@dataclass(frozen=True, kw_only=True)
class HostArgs:
    """How to reach the host and how to prepare it; build it with :meth:`from_config`.

    ``host_key`` is the host's public key line as in ``known_hosts`` without the host name
    (``ssh-ed25519 AAAA…``, e.g. from ``ssh-keyscan -t ed25519 HOST``): it is required, because
    pulumi-command does not verify the host at all without it — unless ``insecure_ignore_host_key``
    says explicitly that the host is not to be verified (the stack's ``host.insecureIgnoreHostKey``).
    """

    address: pulumi.Input[str]
    private_key: pulumi.Input[str]
    #: required unless ``insecure_ignore_host_key``
    host_key: pulumi.Input[str] | None
    insecure_ignore_host_key: bool = False
    user: str = "root"
    ssh_port: int = DEFAULT_SSH_PORT
    #: None = sudo exactly when ``user`` is not root
    sudo: bool | None = None
    sudo_command: str = "sudo -n"
    data_dir: str = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    data_owner_uid: int = 0
    data_owner_gid: int = 0
    #: 'fail' or 'skip'
    firewall_when_inactive: str = "fail"
    purge_data_on_destroy: bool = False
    dial_error_limit: int = 10
    per_dial_timeout: int = 15

    @classmethod
    def from_config(cls, config: StackConfig, private_key: pulumi.Input[str]) -> HostArgs:
        """The one way from the validated stack config to the host's arguments."""
        host = config.host
        if host is None:
            raise ValueError("the stack manages no host (its config has no `host`)")
        server = config.server
        return cls(
            address=host.address, ssh_port=host.port, user=host.user, private_key=private_key,
            host_key=host.host_key, insecure_ignore_host_key=host.insecure_ignore_host_key, sudo=host.sudo,
            data_dir=server.data_dir, port=server.port, firewall_when_inactive=server.firewall_when_inactive,
            purge_data_on_destroy=server.purge_data_on_destroy,
        )

    def __post_init__(self) -> None:
        # The stack-config loader applied these rules already, naming the config keys; this guard
        # runs the same rules (components.config.rules) for any other caller and names the argument.
        missing_key = self.host_key is None or self.host_key == ""
        refuse_arguments("HostArgs", [
            ("ssh_port", self.ssh_port, rules.port_problem(self.ssh_port)),
            ("host_key", self.host_key,
             "is required so the SSH connection is verified (or set insecure_ignore_host_key); get it with "
             "'ssh-keyscan -t ed25519 HOST' and keep the part after the host name"
             if missing_key and not self.insecure_ignore_host_key else None),
            ("host_key", self.host_key,
             rules.host_key_problem(self.host_key) if isinstance(self.host_key, str) and not missing_key else None),
            ("address", self.address,
             rules.host_address_problem(self.address) if isinstance(self.address, str) else None),
        ])
        self.plan()  # the plain settings, checked by HostPlan's guard

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
