# ruff: noqa: E501  -- the embedded bash keeps each message a person reads on one line
"""Bash scripts that prepare the RHEL 8 host, rendered by pure functions, and the plan of steps.

What every script shares is in :mod:`components.host.bash`; the steps that write files from stdin
(secret, proxy files) render in :mod:`components.host.files`. Their names are re-exported here, so
this module stays the one entry point of the host scripts.

Every script here is handed verbatim to pulumi-command (``remote.Command``), and the tests run the
very same text over a real SSH connection, so what is tested is what runs. Rules every script keeps:

* ``set -euo pipefail``, and every value from the stack config inserted with ``shlex.quote``;
* idempotent: a second run changes nothing and prints a line that says so;
* no secrets: none of these steps needs one (were one ever needed, it would go on stdin);
* works as root or as a sudo user: privileged commands go through ``as_root``, which is either a
  plain call or ``sudo -n`` (never prompting: a password prompt would hang the SSH session).

The remote user's login shell runs the command string, and that shell may not be bash, so each
script is wrapped as ``bash -c '<script>'`` by :func:`as_command`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from components.config import rules
from components.config.defaults import DEFAULT_DATA_DIR, DEFAULT_PORT, DEFAULT_PROXY_CONTAINER_NAME
from components.config.errors import refuse_arguments
from components.host.bash import (
    Privilege,
    as_command,
    assign,
    assign_array,
    container_label,
    fcontext_spec,
    header,
    report,
    script_hash,
)
from components.host.files import (
    CA_FILE_MODE,
    CA_FILE_NAME,
    PAYLOAD_END,
    PAYLOAD_HEADER,
    RELOAD_PENDING,
    SECRET_FILE_MODE,
    SECRET_FILE_NAME,
    TLS_KEY_FILE,
    TLS_KEY_MODE,
    FileSpec,
    file_mode_problem,
    file_path_problem,
    files_payload,
    proxy_file_specs,
    render_remove_files,
    render_write_files,
    secret_file_specs,
)

__all__ = [
    "CA_FILE_MODE",
    "CA_FILE_NAME",
    "DEFAULT_DATA_DIR",
    "PAYLOAD_END",
    "PAYLOAD_HEADER",
    "RELOAD_PENDING",
    "SECRET_FILE_MODE",
    "SECRET_FILE_NAME",
    "SUPPORTED_OS",
    "TLS_KEY_FILE",
    "TLS_KEY_MODE",
    "FileSpec",
    "FirewallWhenInactive",
    "HostPlan",
    "Privilege",
    "Step",
    "as_command",
    "fcontext_spec",
    "file_mode_problem",
    "file_path_problem",
    "files_payload",
    "proxy_file_specs",
    "render_data_dir",
    "render_data_dir_delete",
    "render_firewall",
    "render_firewall_delete",
    "render_preflight",
    "render_remove_files",
    "render_selinux",
    "render_selinux_delete",
    "render_steps",
    "render_write_files",
    "script_hash",
    "secret_file_specs",
]

FirewallWhenInactive = Literal["fail", "skip"]

#: os-release IDs accepted as "RHEL 8 or compatible", with the names shown in messages.
SUPPORTED_OS = {
    "rhel": "Red Hat Enterprise Linux",
    "rocky": "Rocky Linux",
    "almalinux": "AlmaLinux",
    "centos": "CentOS Stream",
    "ol": "Oracle Linux",
}

# --------------------------------------------------------------------------------------------- preflight

def render_preflight(*, user: str, privilege: Privilege, firewall_when_inactive: FirewallWhenInactive) -> str:
    """Check the host before changing anything; print every problem found, exit 1 if there is one.

    Checks: RHEL 8 or compatible, sudo without password (when used), Docker installed, running and
    usable by the SSH user, firewalld state, SELinux mode and, when SELinux is enforcing, Docker's
    SELinux support (without it the ``:Z`` mount option silently does nothing).
    """
    supported = " ".join(sorted(SUPPORTED_OS))
    supported_names = ", ".join(SUPPORTED_OS[k] for k in ("rocky", "almalinux", "centos", "ol"))
    sudo_check = ""
    if privilege.sudo:
        sudo_check = f"""{assign("sudo_cmd", privilege.sudo_command)}if as_root true 2>/dev/null; then
  fact "privileges: $ssh_user runs root commands through $sudo_cmd"
else
  problem "sudo: user $ssh_user cannot run root commands through '$sudo_cmd' (over SSH nobody can type a password); allow it without a password (NOPASSWD in /etc/sudoers.d) or connect as root"
  # go on without privileges, so the other checks still report what they can
  as_root() {{ "$@"; }}
fi
"""
    fw_inactive = (
        'problem "firewalld: not running (firewall-cmd --state: $fw_state); start it with'
        " 'sudo systemctl enable --now firewalld', or set firewallWhenInactive to skip if you"
        ' manage the firewall yourself"'
        if firewall_when_inactive == "fail"
        else 'fact "firewalld: not running ($fw_state); the devpi port will NOT be opened'
        ' (firewallWhenInactive=skip)"'
    )
    return header("preflight", privilege) + f"""{assign("ssh_user", user)}{assign("supported_ids", supported)}problems=()
facts=()
problem() {{ problems+=("$1"); }}
fact() {{ facts+=("$1"); }}
{sudo_check}
# --- operating system: RHEL 8 or a compatible rebuild
if [ -r /etc/os-release ]; then
  # read in a subshell: the file is meant to be sourced, but its variables must not leak into ours
  # shellcheck source=/dev/null
  os_info=$(. /etc/os-release && printf '%s\\n' "${{ID:-}}" "${{ID_LIKE:-}}" "${{VERSION_ID:-}}" "${{PRETTY_NAME:-${{NAME:-unknown}}}}")
  {{ IFS= read -r os_id; IFS= read -r os_like; IFS= read -r os_version; IFS= read -r os_name; }} <<<"$os_info"
  os_family_ok=no
  for candidate in $supported_ids; do
    if [ "$os_id" = "$candidate" ]; then os_family_ok=yes; fi
  done
  case " $os_like " in *" rhel "*) os_family_ok=yes ;; esac
  if [ "$os_family_ok" = yes ] && [ "${{os_version%%.*}}" = 8 ]; then
    fact "os: $os_name (ID=$os_id, VERSION_ID=$os_version)"
  else
    problem "os: found '$os_name' (ID=$os_id, VERSION_ID=$os_version); devpi-registry supports Red Hat Enterprise Linux 8 and compatible 8.x releases ({supported_names})"
  fi
else
  problem "os: /etc/os-release is missing, cannot tell the operating system; devpi-registry supports Red Hat Enterprise Linux 8 and compatible 8.x releases"
fi

# --- Docker engine: installed, running, usable by the SSH user without sudo
docker_ok=no
# bash's command -v falls back to a non-executable match, hence the -x test
docker_path=$(command -v docker 2>/dev/null || true)
if [ -z "$docker_path" ] || [ ! -x "$docker_path" ]; then
  problem "docker: the docker command is not installed; install Docker Engine (docker-ce from download.docker.com; RHEL's podman-docker is not enough) and run 'sudo systemctl enable --now docker'"
elif docker_version=$(docker version --format '{{{{.Server.Version}}}}' 2>&1); then
  docker_ok=yes
  fact "docker: engine $docker_version, usable by $ssh_user"
elif as_root docker version --format '{{{{.Server.Version}}}}' >/dev/null 2>&1; then
  problem "docker: the engine runs, but user $ssh_user cannot use it ($(printf '%s' "$docker_version" | head -n 1)); add the user to the docker group ('sudo usermod -aG docker $ssh_user') and reconnect"
else
  problem "docker: the Docker engine is not running or not reachable ($(printf '%s' "$docker_version" | head -n 1)); start it with 'sudo systemctl enable --now docker'"
fi

# --- firewalld
if command -v firewall-cmd >/dev/null 2>&1; then
  fw_state=$(as_root firewall-cmd --state 2>&1 | head -n 1) || true
else
  fw_state="firewall-cmd not installed"
fi
if [ "$fw_state" = running ]; then
  fact "firewalld: running"
else
  {fw_inactive}
fi

# --- SELinux, and Docker's SELinux support when it is enforcing
if command -v getenforce >/dev/null 2>&1; then
  selinux_mode=$(getenforce 2>&1 || true)
else
  selinux_mode="not present"
fi
fact "selinux: $selinux_mode"
case "$selinux_mode" in
  Enforcing|Permissive)
    for tool in semanage restorecon; do
      if ! command -v "$tool" >/dev/null 2>&1; then
        problem "selinux: $selinux_mode but $tool is not installed; install policycoreutils-python-utils"
      fi
    done
    ;;
esac
if [ "$selinux_mode" = Enforcing ] && [ "$docker_ok" = yes ]; then
  if docker info --format '{{{{range .SecurityOptions}}}}{{{{println .}}}}{{{{end}}}}' 2>/dev/null | grep -q selinux; then
    fact "docker: SELinux support enabled"
  elif as_root cat /etc/docker/daemon.json 2>/dev/null | grep -Eq '"selinux-enabled"[[:space:]]*:[[:space:]]*true'; then
    problem "docker: /etc/docker/daemon.json sets \\"selinux-enabled\\": true but the running engine does not use it; restart it with 'sudo systemctl restart docker'"
  else
    problem "docker: SELinux is Enforcing but Docker's SELinux support is off (no selinux in 'docker info' security options); without it the :Z mount option does nothing and containers run unconfined; add \\"selinux-enabled\\": true to /etc/docker/daemon.json and run 'sudo systemctl restart docker'"
  fi
fi

for f in "${{facts[@]}}"; do
  echo "preflight: $f"
done
if [ "${{#problems[@]}}" -gt 0 ]; then
  echo "preflight FAILED: ${{#problems[@]}} problem(s) on this host must be fixed before devpi can be deployed:" >&2
  for p in "${{problems[@]}}"; do
    echo "  - $p" >&2
  done
  exit 1
fi
echo "preflight ok: nothing changed (this step only checks)"
"""


# --------------------------------------------------------------------------------------------- data folder

def render_data_dir(*, data_dir: str, uid: int, gid: int, privilege: Privilege) -> str:
    """Create the data folder (mode 0700, owned by ``uid:gid``) or fix its mode and owner; never deletes.

    Only the folder itself is chmod/chowned, not its contents: those belong to devpi-server inside
    the container and a recursive chown could break a running server.
    """
    return header("data folder", privilege) + f"""{assign("dir", data_dir)}{assign("owner", f"{uid}:{gid}")}changes=()
if as_root test -e "$dir" && ! as_root test -d "$dir"; then
  echo "data folder: $dir exists but is not a directory; move it away or choose another dataDir" >&2
  exit 1
fi
if ! as_root test -d "$dir"; then
  as_root mkdir -p -- "$dir"
  changes+=("created")
fi
mode=$(as_root stat -L -c %a -- "$dir")
if [ "$mode" != 700 ]; then
  as_root chmod 0700 -- "$dir"
  changes+=("mode $mode -> 700")
fi
current_owner=$(as_root stat -L -c %u:%g -- "$dir")
if [ "$current_owner" != "$owner" ]; then
  as_root chown -- "$owner" "$dir"
  changes+=("owner $current_owner -> $owner")
fi
""" + report("data folder $dir: nothing changed (directory, mode 700, owner $owner)", "data folder $dir: changed: ")


def render_data_dir_delete(*, data_dir: str, purge: bool, privilege: Privilege) -> str:
    """On destroy: keep the data folder (default), or delete it when ``purgeDataOnDestroy`` is set."""
    if not purge:
        return header("data folder (destroy)", privilege) + f"""{assign("dir", data_dir)}echo "data folder $dir: kept (purgeDataOnDestroy is false); the packages in it survive destroy"
"""
    return header("data folder (destroy, purge)", privilege) + f"""{assign("dir", data_dir)}if as_root test -e "$dir"; then
  as_root rm -rf --one-file-system -- "$dir"
  echo "data folder $dir: deleted with everything in it (purgeDataOnDestroy is true)"
else
  echo "data folder $dir: already gone; nothing changed"
fi
"""


# --------------------------------------------------------------------------------------------- SELinux

_SELINUX_PROLOGUE = """if ! command -v getenforce >/dev/null 2>&1; then
  echo "selinux: not present on this host (no getenforce); no labels to set; nothing changed"
  exit 0
fi
selinux_mode=$(getenforce)
case "$selinux_mode" in
  Enforcing|Permissive) ;;
  *)
    echo "selinux: $selinux_mode; labels are not used while SELinux is disabled; nothing changed"
    exit 0
    ;;
esac
"""


def render_selinux(*, data_dir: str, privilege: Privilege) -> str:
    """Give the data folder a persistent ``container_file_t`` label, so the container may use it.

    A ``semanage fcontext`` rule survives reboots and full relabels (``chcon`` does not); the rule
    is added (``-a``) or modified (``-m``) only when needed, and ``restorecon`` runs only when a
    dry run shows files to relabel. Skipped with a reason when SELinux is absent or disabled.
    """
    return header("selinux", privilege) + f"""{assign("dir", data_dir)}{assign("spec", fcontext_spec(data_dir))}{_SELINUX_PROLOGUE}changes=()
{container_label(added="added file-context rule", relabelled="relabelled files")}as_root matchpathcon -V -- "$dir"
""" + report("selinux ($selinux_mode): $dir already labelled container_file_t; nothing changed", "selinux ($selinux_mode): $dir: ")


def render_selinux_delete(*, data_dir: str, purge: bool, privilege: Privilege) -> str:
    """On destroy: keep the label rule while the data is kept; remove the rule when purging."""
    if not purge:
        return header("selinux (destroy)", privilege) + f"""{assign("dir", data_dir)}echo "selinux: file-context rule for $dir kept, like the data folder (purgeDataOnDestroy is false)"
"""
    return header("selinux (destroy, purge)", privilege) + f"""{assign("dir", data_dir)}{assign("spec", fcontext_spec(data_dir))}{_SELINUX_PROLOGUE}current=$(as_root semanage fcontext -l -C | SPEC="$spec" awk '$1 == ENVIRON["SPEC"] {{ print $NF }}')
if [ -n "$current" ]; then
  as_root semanage fcontext -d "$spec"
  echo "selinux: file-context rule for $dir removed"
else
  echo "selinux: no file-context rule for $dir; nothing changed"
fi
"""


# --------------------------------------------------------------------------------------------- firewall

def _port_words(ports: Sequence[int]) -> tuple[str, str]:
    """``("port_specs=(443/tcp 80/tcp)\n", "ports 443/tcp, 80/tcp")``: the array the loops walk, and
    the words for messages."""
    specs = [f"{p}/tcp" for p in ports]
    text = ("port " if len(specs) == 1 else "ports ") + ", ".join(specs)
    return assign_array("port_specs", specs), text


def _firewall_inactive(when_inactive: FirewallWhenInactive, action: str) -> str:
    if when_inactive == "fail":
        return f"""  echo "firewall: firewalld is not running (firewall-cmd --state: $fw_state), so $ports_text cannot be {action}; start it with 'sudo systemctl enable --now firewalld', or set firewallWhenInactive to skip if you manage the firewall yourself" >&2
  exit 1"""
    return f"""  echo "firewall: firewalld is not running ($fw_state); $ports_text not {action} (firewallWhenInactive=skip); nothing changed"
  exit 0"""


def _firewall_ports(port: int | None, ports: Sequence[int]) -> tuple[int, ...]:
    """The renderers take ``ports`` (a set of ports) or, as before, one ``port``."""
    chosen = tuple(ports) if ports else ((port,) if port is not None else ())
    if not chosen:
        raise ValueError("the firewall step needs at least one port")
    return chosen


def _firewall_prologue(ports: Sequence[int], when_inactive: FirewallWhenInactive, action: str) -> str:
    specs, text = _port_words(ports)
    return f"""{specs}{assign("ports_text", text)}if command -v firewall-cmd >/dev/null 2>&1; then
  fw_state=$(as_root firewall-cmd --state 2>&1 | head -n 1) || true
else
  fw_state="firewall-cmd not installed"
fi
if [ "$fw_state" != running ]; then
{_firewall_inactive(when_inactive, action)}
fi
"""


def render_firewall(*, port: int | None = None, ports: Sequence[int] = (), when_inactive: FirewallWhenInactive,
                    privilege: Privilege) -> str:
    """Open the given ports in firewalld's default zone, permanently and at runtime, only if needed.

    With TLS these are the proxy's ports (443, and 80 for the redirect), otherwise devpi's port.
    """
    chosen = _firewall_ports(port, ports)
    return header("firewall", privilege) + _firewall_prologue(chosen, when_inactive, "opened") + """changes=()
for port_spec in "${port_specs[@]}"; do
  if ! as_root firewall-cmd --permanent --query-port="$port_spec" >/dev/null; then
    as_root firewall-cmd --permanent --add-port="$port_spec" >/dev/null
    changes+=("$port_spec added to the permanent configuration")
  fi
done
# A permanent rule that is not active yet (added without reload) needs a reload too.
reload=no
if [ "${#changes[@]}" -gt 0 ]; then reload=yes; fi
for port_spec in "${port_specs[@]}"; do
  if ! as_root firewall-cmd --query-port="$port_spec" >/dev/null; then reload=yes; fi
done
if [ "$reload" = yes ]; then
  as_root firewall-cmd --reload >/dev/null
  changes+=("reloaded firewalld")
fi
""" + report("firewall: $ports_text already open; nothing changed", "firewall: $ports_text opened: ")


def render_firewall_delete(*, port: int | None = None, ports: Sequence[int] = (),
                           when_inactive: FirewallWhenInactive, privilege: Privilege) -> str:
    """Close the ports again (the inverse of :func:`render_firewall`), only those still open.

    Runs on destroy, and before the new ports are opened when the set changes (the step is replaced
    delete-before-replace): switching to TLS closes 3141, switching back closes 443 and 80.
    """
    chosen = _firewall_ports(port, ports)
    return header("firewall (destroy)", privilege) + _firewall_prologue(chosen, when_inactive, "closed") + """changes=()
for port_spec in "${port_specs[@]}"; do
  if as_root firewall-cmd --permanent --query-port="$port_spec" >/dev/null; then
    as_root firewall-cmd --permanent --remove-port="$port_spec" >/dev/null
    changes+=("$port_spec removed from the permanent configuration")
  fi
done
reload=no
if [ "${#changes[@]}" -gt 0 ]; then reload=yes; fi
for port_spec in "${port_specs[@]}"; do
  if as_root firewall-cmd --query-port="$port_spec" >/dev/null; then reload=yes; fi
done
if [ "$reload" = yes ]; then
  as_root firewall-cmd --reload >/dev/null
  changes+=("reloaded firewalld")
fi
""" + report("firewall: $ports_text already closed; nothing changed", "firewall: $ports_text closed: ")


# --------------------------------------------------------------------------------------------- the plan

@dataclass(frozen=True, kw_only=True)
class Step:
    """One host step as pulumi-command runs it: command strings plus how changes are applied."""

    name: str
    create: str
    delete: str | None
    #: hash for ``triggers`` (a change replaces the Command, so it runs again); None = no triggers
    trigger: str | None
    #: run the old ``delete`` before the new ``create`` when replaced
    delete_before_replace: bool = False
    #: the command run on an in-place update (pulumi-command falls back to ``create``)
    update: str | None = None
    #: which payload the component sends on stdin (``"secret"``, ``"proxy-files"``), or None
    stdin: str | None = None


@dataclass(frozen=True, kw_only=True)
class HostPlan:
    """The plain (non-secret, known at preview) settings the host scripts are rendered from.

    Build it from the validated stack config through ``HostArgs.from_config(...).plan()``.
    """

    user: str = "root"
    sudo: bool | None = None
    sudo_command: str = "sudo -n"
    data_dir: str = DEFAULT_DATA_DIR
    port: int = DEFAULT_PORT
    data_owner_uid: int = 0
    data_owner_gid: int = 0
    firewall_when_inactive: FirewallWhenInactive = "fail"
    purge_data_on_destroy: bool = False
    #: the ports the firewall opens; empty = ``(port,)``. With TLS: the proxy's ports, not ``port``
    ports: tuple[int, ...] = ()
    #: folder of devpi's secret file; None = no secret step
    secret_dir: str | None = None
    #: the secret step also writes the private CA bundle (``ca.pem``, for a replica of an https primary)
    secret_ca: bool = False
    #: folder of the proxy's files; None = no proxy-files step
    proxy_dir: str | None = None
    #: the proxy's files (the TLS key included) below ``proxy_dir``
    proxy_files: tuple[FileSpec, ...] = ()
    proxy_container_name: str = DEFAULT_PROXY_CONTAINER_NAME

    def __post_init__(self) -> None:
        # The firewall's port set: ``ports`` when given, else the one devpi port (callers that know
        # only ``port`` keep working); always a tuple, so equal plans compare equal.
        object.__setattr__(self, "ports", tuple(self.ports) if self.ports else (self.port,))
        object.__setattr__(self, "proxy_files", tuple(self.proxy_files))
        # The stack-config loader already applied these rules (naming the config keys); this guard
        # runs the same rules for any other caller and names the argument.
        refuse_arguments("HostPlan", [
            ("user", self.user, rules.unix_user_problem(self.user)),
            ("data_dir", self.data_dir, rules.data_dir_problem(self.data_dir)),
            ("port", self.port, rules.port_problem(self.port)),
            *[("ports", self.ports, rules.port_problem(p)) for p in self.ports],
            ("ports", self.ports,
             "must not name a port twice" if len(set(self.ports)) != len(self.ports) else None),
            ("secret_dir", self.secret_dir,
             rules.data_dir_problem(self.secret_dir) if self.secret_dir is not None else None),
            ("proxy_dir", self.proxy_dir,
             rules.data_dir_problem(self.proxy_dir) if self.proxy_dir is not None else None),
            ("secret_dir", self.secret_dir, _same_folder(self.secret_dir, self.data_dir, "data_dir")),
            ("proxy_dir", self.proxy_dir, _same_folder(self.proxy_dir, self.data_dir, "data_dir")
             or _same_folder(self.proxy_dir, self.secret_dir, "secret_dir")),
            ("proxy_files", self.proxy_files,
             "must name the proxy's files when proxy_dir is set (and only then)"
             if (self.proxy_dir is None) != (not self.proxy_files) else None),
            ("proxy_files", self.proxy_files,
             "must not name a file twice"
             if len({f.path for f in self.proxy_files}) != len(self.proxy_files) else None),
            ("proxy_container_name", self.proxy_container_name,
             rules.container_name_problem(self.proxy_container_name)),
            ("data_owner_uid", self.data_owner_uid, rules.owner_id_problem(self.data_owner_uid)),
            ("data_owner_gid", self.data_owner_gid, rules.owner_id_problem(self.data_owner_gid)),
            ("firewall_when_inactive", self.firewall_when_inactive,
             rules.firewall_problem(self.firewall_when_inactive)),
            ("sudo_command", self.sudo_command,
             rules.sudo_command_problem(self.sudo_command) if self.use_sudo else None),
        ])

    @property
    def use_sudo(self) -> bool:
        """Sudo is used when asked for, or by default whenever the SSH user is not root."""
        return self.user != "root" if self.sudo is None else self.sudo

    @property
    def privilege(self) -> Privilege:
        return Privilege(sudo=self.use_sudo, sudo_command=self.sudo_command)


def _same_folder(folder: str | None, other: str | None, other_name: str) -> str | None:
    if folder is not None and folder == other:
        return f"must be a folder of its own, not the same as {other_name}"
    return None


def render_steps(plan: HostPlan) -> list[Step]:
    """All host steps in order (preflight, data folder, SELinux, [secret], [proxy files], firewall).

    Change handling per step (pulumi-command runs ``update``, else ``create``, again when an input
    such as ``stdin`` changes, and a change of ``triggers`` replaces the Command):

    * preflight: triggers on its script, no delete;
    * data folder: **never replaced**. A replace runs the old ``delete`` too, and with
      ``purgeDataOnDestroy`` that would wipe the packages on any script change; a changed script
      re-runs as an in-place update instead (``update`` = the create script);
    * SELinux and firewall: triggers on their scripts with delete-before-replace, so the old rule is
      removed before the new one is added (create-then-delete would remove a port just re-added).
      The firewall script names its port set, so switching 3141 to 443+80 closes 3141 first;
    * secret and proxy files: the content comes on ``stdin`` (a secret input), so new content is an
      update that runs ``update`` = the create script (certificate rotation, no replace, no restart);
      triggers only on the scripts (paths, modes), with delete-before-replace so the old files go
      first. No secret and no hash of one is in ``triggers`` or in a command.
    """
    priv = plan.privilege
    preflight = render_preflight(user=plan.user, privilege=priv,
                                 firewall_when_inactive=plan.firewall_when_inactive)
    data_create = render_data_dir(data_dir=plan.data_dir, uid=plan.data_owner_uid,
                                  gid=plan.data_owner_gid, privilege=priv)
    data_delete = render_data_dir_delete(data_dir=plan.data_dir, purge=plan.purge_data_on_destroy,
                                         privilege=priv)
    se_create = render_selinux(data_dir=plan.data_dir, privilege=priv)
    se_delete = render_selinux_delete(data_dir=plan.data_dir, purge=plan.purge_data_on_destroy,
                                      privilege=priv)
    fw_create = render_firewall(ports=plan.ports, when_inactive=plan.firewall_when_inactive, privilege=priv)
    fw_delete = render_firewall_delete(ports=plan.ports, when_inactive=plan.firewall_when_inactive,
                                       privilege=priv)
    steps = [
        Step(name="preflight", create=as_command(preflight), delete=None, trigger=script_hash(preflight)),
        Step(name="data-dir", create=as_command(data_create), delete=as_command(data_delete),
             trigger=None, update=as_command(data_create)),
        Step(name="selinux", create=as_command(se_create), delete=as_command(se_delete),
             trigger=script_hash(se_create, se_delete), delete_before_replace=True),
    ]
    if plan.secret_dir is not None:
        secret_files = secret_file_specs(ca_bundle=plan.secret_ca)
        steps.append(_files_step("secret", render_write_files(
            step="secret", base_dir=plan.secret_dir, files=secret_files, privilege=priv,
        ), render_remove_files(step="secret", base_dir=plan.secret_dir, files=secret_files, privilege=priv)))
    if plan.proxy_dir is not None:
        steps.append(_files_step("proxy-files", render_write_files(
            step="proxy-files", base_dir=plan.proxy_dir, files=plan.proxy_files, privilege=priv,
            reload_container=plan.proxy_container_name,
        ), render_remove_files(step="proxy-files", base_dir=plan.proxy_dir, files=plan.proxy_files,
                               privilege=priv, reload_marker=True)))
    steps.append(Step(name="firewall", create=as_command(fw_create), delete=as_command(fw_delete),
                      trigger=script_hash(fw_create, fw_delete), delete_before_replace=True))
    return steps


def _files_step(name: str, create: str, delete: str) -> Step:
    return Step(name=name, create=as_command(create), delete=as_command(delete),
                trigger=script_hash(create, delete), delete_before_replace=True,
                update=as_command(create), stdin=name)
