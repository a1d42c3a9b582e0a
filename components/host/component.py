"""The RHEL 8 host prepared for devpi: checks, data folder, SELinux label, secret, proxy files, firewall.

``HostSetup`` runs the scripts of :mod:`components.host.scripts` over SSH, one pulumi-command
``remote.Command`` per step, each step waiting for the one before (preflight → data folder →
SELinux → [secret] → [proxy files] → firewall). It exposes the SSH ``connection`` (for other
components that run commands on the host), the ``data_dir`` and ``ready``: the resources a
container must depend on. The same component prepares the primary's host and each replica's
(:meth:`HostArgs.from_config`, :meth:`HostArgs.from_replica`).

Secrets: the private key goes into the connection only, wrapped with ``Output.secret``
(pulumi-command stores the whole connection as a secret as well). devpi's shared secret and the TLS
key travel on ``stdin`` (a secret input, base64 inside :func:`~components.host.scripts.files_payload`),
never in a command, an environment variable or ``triggers``; the scripts print paths and states only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import pulumi
from pulumi_command import remote

from components.config import rules
from components.config.defaults import (
    DEFAULT_DATA_DIR,
    DEFAULT_PORT,
    DEFAULT_PROXY_CONTAINER_NAME,
    DEFAULT_PROXY_DIR,
    DEFAULT_SECRET_DIR,
    DEFAULT_SSH_PORT,
)
from components.config.errors import refuse_arguments
from components.config.model import ReplicaConfig, StackConfig
from components.host.scripts import (
    CA_FILE_MODE,
    CA_FILE_NAME,
    SECRET_FILE_MODE,
    SECRET_FILE_NAME,
    TLS_KEY_FILE,
    TLS_KEY_MODE,
    FirewallWhenInactive,
    HostPlan,
    Step,
    files_payload,
    proxy_file_specs,
    render_steps,
)

__all__ = ["HOST_SETUP_TYPE", "HostArgs", "HostSetup", "ProxyFiles"]

HOST_SETUP_TYPE = "devpi-registry:host:HostSetup"

#: the proxy's plain files: path below ``proxy_dir`` -> (content, mode); the TLS key comes separately
ProxyFiles = Mapping[str, tuple["pulumi.Input[str]", int]]

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
    #: the ports the firewall opens; empty = ``(port,)``
    ports: tuple[int, ...] = ()
    #: devpi's shared secret (a secret Output); None = no secret step
    secret: pulumi.Input[str] | None = None
    secret_dir: str = DEFAULT_SECRET_DIR
    #: PEM of the private CA, written beside the secret as ``ca.pem`` (a replica of an https primary
    #: trusts it through REQUESTS_CA_BUNDLE); needs ``secret``
    ca_bundle: str | None = None
    #: the proxy's plain files (nginx config, certificate chain); None = no proxy-files step
    proxy_files: ProxyFiles | None = None
    #: the TLS private key (secret), written to ``<proxy_dir>/tls/key.pem`` mode 600
    tls_private_key: pulumi.Input[str] | None = None
    proxy_dir: str = DEFAULT_PROXY_DIR
    proxy_container_name: str = DEFAULT_PROXY_CONTAINER_NAME

    @classmethod
    def from_config(cls, config: StackConfig, private_key: pulumi.Input[str], *,
                    secret: pulumi.Input[str] | None = None, proxy_files: ProxyFiles | None = None,
                    tls_private_key: pulumi.Input[str] | None = None) -> HostArgs:
        """The one way from the validated stack config to the primary host's arguments.

        The firewall opens devpi's port, or with a proxied stack (TLS on a managed host) the
        proxy's ports (https, and http for the redirect) and not devpi's: devpi is then published
        on 127.0.0.1 only. ``secret``, ``proxy_files`` and ``tls_private_key`` come from the
        registry (generated secret, proxy spec, TLS key secret) and add their steps.
        """
        host = config.host
        if host is None:
            raise ValueError("the stack manages no host (its config has no `host`)")
        server = config.server
        return cls(
            address=host.address, ssh_port=host.port, user=host.user, private_key=private_key,
            host_key=host.host_key, insecure_ignore_host_key=host.insecure_ignore_host_key, sudo=host.sudo,
            data_dir=server.data_dir, port=server.port, firewall_when_inactive=server.firewall_when_inactive,
            purge_data_on_destroy=server.purge_data_on_destroy, ports=_firewall_ports(config, server.port),
            secret=secret, secret_dir=server.secret_dir, **_proxy_settings(config, proxy_files, tls_private_key),
        )

    @classmethod
    def from_replica(cls, config: StackConfig, replica: ReplicaConfig, private_key: pulumi.Input[str], *,
                     secret: pulumi.Input[str] | None = None, proxy_files: ProxyFiles | None = None,
                     tls_private_key: pulumi.Input[str] | None = None, ca_bundle: str | None = None) -> HostArgs:
        """A replica's host: its own SSH target, port, data and secret folders; the stack's purge
        policy; with a proxied stack, its own proxy (the same ports as the primary's). ``ca_bundle``:
        the private CA the replica needs to reach an https primary (written as ``<secret_dir>/ca.pem``)."""
        host = replica.host
        return cls(
            address=host.address, ssh_port=host.port, user=host.user, private_key=private_key,
            host_key=host.host_key, insecure_ignore_host_key=host.insecure_ignore_host_key, sudo=host.sudo,
            data_dir=replica.data_dir, port=replica.port, firewall_when_inactive=replica.firewall_when_inactive,
            purge_data_on_destroy=config.server.purge_data_on_destroy, ports=_firewall_ports(config, replica.port),
            secret=secret, secret_dir=replica.secret_dir, ca_bundle=ca_bundle,
            **_proxy_settings(config, proxy_files, tls_private_key),
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
            ("tls_private_key", "[secret]" if self.tls_private_key is not None else None,
             "must be given with proxy_files, and only then (the key is the proxy's)"
             if (self.proxy_files is None) != (self.tls_private_key is None) else None),
            ("ca_bundle", self.ca_bundle,
             "needs secret (the CA file is written by the secret step)"
             if self.ca_bundle is not None and self.secret is None else None),
            ("ca_bundle", self.ca_bundle,
             "must be PEM certificates" if self.ca_bundle is not None
             and "-----BEGIN CERTIFICATE-----" not in self.ca_bundle else None),
        ])
        self.plan()  # the plain settings, checked by HostPlan's guard

    def plan(self) -> HostPlan:
        """The non-secret settings the scripts are rendered from (paths and modes, never content)."""
        proxied = self.proxy_files is not None
        return HostPlan(
            user=self.user, sudo=self.sudo, sudo_command=self.sudo_command, data_dir=self.data_dir,
            port=self.port, data_owner_uid=self.data_owner_uid, data_owner_gid=self.data_owner_gid,
            firewall_when_inactive=cast(FirewallWhenInactive, self.firewall_when_inactive),
            purge_data_on_destroy=self.purge_data_on_destroy, ports=tuple(self.ports),
            secret_dir=self.secret_dir if self.secret is not None else None,
            secret_ca=self.ca_bundle is not None,
            proxy_dir=self.proxy_dir if proxied else None,
            proxy_files=proxy_file_specs({path: mode for path, (_, mode) in (self.proxy_files or {}).items()})
            if proxied else (),
            proxy_container_name=self.proxy_container_name,
        )

    def payloads(self) -> dict[str, pulumi.Output[str]]:
        """What the files steps read on stdin, by step name: secret Outputs, built inside ``apply``
        (the content is never unwrapped into a plain value outside it)."""
        out: dict[str, pulumi.Output[str]] = {}
        if self.secret is not None:
            ca = {CA_FILE_NAME: (self.ca_bundle, CA_FILE_MODE)} if self.ca_bundle is not None else {}
            out["secret"] = pulumi.Output.secret(pulumi.Output.from_input(self.secret).apply(
                lambda value: files_payload({**ca, SECRET_FILE_NAME: (value, SECRET_FILE_MODE)})))
        if self.proxy_files is not None and self.tls_private_key is not None:
            paths = sorted(self.proxy_files)
            modes = {path: self.proxy_files[path][1] for path in paths}

            def build(values: list[Any]) -> str:
                *contents, key = values
                files: dict[str, tuple[str, int]] = {p: (c, modes[p]) for p, c in zip(paths, contents, strict=True)}
                files[TLS_KEY_FILE] = (key, TLS_KEY_MODE)
                return files_payload(files)

            out["proxy-files"] = pulumi.Output.secret(pulumi.Output.all(
                *[self.proxy_files[p][0] for p in paths], self.tls_private_key).apply(build))
        return out


def _firewall_ports(config: StackConfig, devpi_port: int) -> tuple[int, ...]:
    """devpi's own port, or the proxy's ports when TLS fronts devpi (devpi is then on 127.0.0.1)."""
    if config.proxied and config.tls is not None:
        return config.tls.proxy_ports
    return (devpi_port,)


def _proxy_settings(config: StackConfig, proxy_files: ProxyFiles | None,
                    tls_private_key: pulumi.Input[str] | None) -> dict[str, Any]:
    tls = config.tls
    if tls is None:
        return {"proxy_files": proxy_files, "tls_private_key": tls_private_key}
    return {"proxy_files": proxy_files, "tls_private_key": tls_private_key, "proxy_dir": tls.proxy_dir,
            "proxy_container_name": tls.proxy_container_name}


class HostSetup(pulumi.ComponentResource):
    """Prepares the host for the devpi container; depend on ``ready`` before starting it.

    Attributes: ``connection`` (the SSH ``remote.ConnectionArgs``, private key secret, host key
    pinned: reuse it for other commands on this host), ``data_dir``, ``port`` (devpi's),
    ``ports`` (what the firewall opens), ``secret_dir`` and ``proxy_dir`` (None without their step;
    plain values, known at preview), ``steps`` (step name -> ``remote.Command``) and ``ready``
    (those Commands in order, for ``depends_on``).
    """

    connection: remote.ConnectionArgs
    data_dir: str
    port: int
    ports: tuple[int, ...]
    secret_dir: str | None
    proxy_dir: str | None
    steps: dict[str, remote.Command]
    ready: list[pulumi.Resource]

    def __init__(self, name: str, args: HostArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(HOST_SETUP_TYPE, name, None, opts)
        plan = args.plan()
        self.data_dir = plan.data_dir
        self.port = plan.port
        self.ports = plan.ports
        self.secret_dir = plan.secret_dir
        self.proxy_dir = plan.proxy_dir
        self._payloads = args.payloads()
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
            "ports": list(self.ports),
            "ready": [cmd.id for cmd in self.steps.values()],
        })

    def _command(self, name: str, step: Step, previous: pulumi.Resource | None) -> remote.Command:
        step_opts = pulumi.ResourceOptions(
            depends_on=[previous] if previous is not None else self._caller_depends_on,
            delete_before_replace=step.delete_before_replace,
            # the connection (with the private key) and stdin (secret files) are outputs too: keep
            # them secret in state
            additional_secret_outputs=["connection", "stdin"] if step.stdin else ["connection"],
        )
        extra: dict[str, Any] = {}
        if step.stdin is not None:
            # A change of the payload is an input change: pulumi-command runs `update` (the same
            # idempotent script), which rewrites only what changed and reports it.
            extra["stdin"] = self._payloads[step.stdin]
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
