# ruff: noqa: E501  -- the embedded bash keeps each message a person reads on one line
"""Bash scripts that prepare the RHEL 8 host, rendered by pure functions.

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

import hashlib
import re
import shlex
from dataclasses import dataclass
from typing import Literal

from components.config import rules
from components.config.defaults import DEFAULT_DATA_DIR, DEFAULT_PORT
from components.config.errors import refuse_arguments

__all__ = [
    "DEFAULT_DATA_DIR",
    "SUPPORTED_OS",
    "FirewallWhenInactive",
    "HostPlan",
    "Privilege",
    "Step",
    "as_command",
    "fcontext_spec",
    "render_data_dir",
    "render_data_dir_delete",
    "render_firewall",
    "render_firewall_delete",
    "render_preflight",
    "render_selinux",
    "render_selinux_delete",
    "render_steps",
    "script_hash",
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

_REGEX_SPECIAL = re.compile(r"([\\.^$*+?()\[\]{}|])")


@dataclass(frozen=True, kw_only=True)
class Privilege:
    """How privileged commands run: directly (SSH user is root) or through a sudo prefix."""

    sudo: bool = False
    sudo_command: str = "sudo -n"

    def as_root_function(self) -> str:
        """The bash ``as_root`` helper every script defines."""
        if not self.sudo:
            return 'as_root() { "$@"; }'
        refuse_arguments("Privilege", [("sudo_command", self.sudo_command,
                                        rules.sudo_command_problem(self.sudo_command))])
        words = shlex.split(self.sudo_command)
        return "as_root() { " + " ".join(shlex.quote(w) for w in words) + ' "$@"; }'


def _header(step: str, privilege: Privilege) -> str:
    # sbin folders appended (not prepended) so getenforce/semanage/restorecon are found for a sudo
    # user whose PATH lacks them, while anything earlier on PATH still wins.
    return (
        "# devpi-registry host step: " + step + " (rendered by components/host/scripts.py)\n"
        "set -euo pipefail\n"
        'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"\n'
        "export PATH\n"
        + privilege.as_root_function() + "\n"
    )


def _assign(name: str, value: str) -> str:
    """``name='value'``: a config value as one literal shell word (never expanded)."""
    line = f"{name}={shlex.quote(value)}\n"
    if "$" in value or "`" in value:
        # shellcheck would suspect a forgotten expansion; here the literal text is the point
        return "# shellcheck disable=SC2016\n" + line
    return line


def _report(unchanged: str, changed: str) -> str:
    """The closing lines every step shares: say "nothing changed" on an idempotent re-run, else list
    the ``changes`` array the script collected after the ``changed`` prefix (both are shell text)."""
    return (
        'if [ "${#changes[@]}" -eq 0 ]; then\n'
        f'  echo "{unchanged}"\n'
        "else\n"
        "  summary=$(printf '%s; ' \"${changes[@]}\")\n"
        f'  echo "{changed}${{summary%; }}"\n'
        "fi\n"
    )


def as_command(script: str) -> str:
    """The command string for pulumi-command: ``bash -c '<script>'``, whatever the login shell is."""
    return "bash -c " + shlex.quote(script)


def script_hash(*scripts: str) -> str:
    """A stable digest of rendered scripts, used as ``triggers`` so a changed script re-runs."""
    digest = hashlib.sha256()
    for script in scripts:
        digest.update(script.encode())
        digest.update(b"\0")
    return digest.hexdigest()


def fcontext_spec(data_dir: str) -> str:
    """The SELinux file-context regex for the folder and everything below it.

    ``semanage fcontext`` takes a regular expression, so characters like ``.`` in the path are
    escaped; ``(/.*)?`` makes the rule cover the folder's contents too.
    """
    return _REGEX_SPECIAL.sub(r"\\\1", data_dir) + "(/.*)?"


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
        sudo_check = f"""{_assign("sudo_cmd", privilege.sudo_command)}if as_root true 2>/dev/null; then
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
    return _header("preflight", privilege) + f"""{_assign("ssh_user", user)}{_assign("supported_ids", supported)}problems=()
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
    return _header("data folder", privilege) + f"""{_assign("dir", data_dir)}{_assign("owner", f"{uid}:{gid}")}changes=()
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
""" + _report("data folder $dir: nothing changed (directory, mode 700, owner $owner)", "data folder $dir: changed: ")


def render_data_dir_delete(*, data_dir: str, purge: bool, privilege: Privilege) -> str:
    """On destroy: keep the data folder (default), or delete it when ``purgeDataOnDestroy`` is set."""
    if not purge:
        return _header("data folder (destroy)", privilege) + f"""{_assign("dir", data_dir)}echo "data folder $dir: kept (purgeDataOnDestroy is false); the packages in it survive destroy"
"""
    return _header("data folder (destroy, purge)", privilege) + f"""{_assign("dir", data_dir)}if as_root test -e "$dir"; then
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
    return _header("selinux", privilege) + f"""{_assign("dir", data_dir)}{_assign("spec", fcontext_spec(data_dir))}{_SELINUX_PROLOGUE}changes=()
current=$(as_root semanage fcontext -l -C | SPEC="$spec" awk '$1 == ENVIRON["SPEC"] {{ print $NF }}')
case "$current" in
  *:container_file_t:*) ;;
  "")
    as_root semanage fcontext -a -t container_file_t "$spec"
    changes+=("added file-context rule")
    ;;
  *)
    as_root semanage fcontext -m -t container_file_t "$spec"
    changes+=("changed file-context rule from $current")
    ;;
esac
pending=$(as_root restorecon -R -n -v -- "$dir")
if [ -n "$pending" ]; then
  as_root restorecon -R -v -- "$dir"
  changes+=("relabelled files")
fi
as_root matchpathcon -V -- "$dir"
""" + _report("selinux ($selinux_mode): $dir already labelled container_file_t; nothing changed", "selinux ($selinux_mode): $dir: ")


def render_selinux_delete(*, data_dir: str, purge: bool, privilege: Privilege) -> str:
    """On destroy: keep the label rule while the data is kept; remove the rule when purging."""
    if not purge:
        return _header("selinux (destroy)", privilege) + f"""{_assign("dir", data_dir)}echo "selinux: file-context rule for $dir kept, like the data folder (purgeDataOnDestroy is false)"
"""
    return _header("selinux (destroy, purge)", privilege) + f"""{_assign("dir", data_dir)}{_assign("spec", fcontext_spec(data_dir))}{_SELINUX_PROLOGUE}current=$(as_root semanage fcontext -l -C | SPEC="$spec" awk '$1 == ENVIRON["SPEC"] {{ print $NF }}')
if [ -n "$current" ]; then
  as_root semanage fcontext -d "$spec"
  echo "selinux: file-context rule for $dir removed"
else
  echo "selinux: no file-context rule for $dir; nothing changed"
fi
"""


# --------------------------------------------------------------------------------------------- firewall

def _firewall_inactive(when_inactive: FirewallWhenInactive, action: str) -> str:
    if when_inactive == "fail":
        return f"""  echo "firewall: firewalld is not running (firewall-cmd --state: $fw_state), so port $port_spec cannot be {action}; start it with 'sudo systemctl enable --now firewalld', or set firewallWhenInactive to skip if you manage the firewall yourself" >&2
  exit 1"""
    return f"""  echo "firewall: firewalld is not running ($fw_state); port $port_spec not {action} (firewallWhenInactive=skip); nothing changed"
  exit 0"""


def _firewall_prologue(port: int, when_inactive: FirewallWhenInactive, action: str) -> str:
    return f"""{_assign("port_spec", f"{port}/tcp")}if command -v firewall-cmd >/dev/null 2>&1; then
  fw_state=$(as_root firewall-cmd --state 2>&1 | head -n 1) || true
else
  fw_state="firewall-cmd not installed"
fi
if [ "$fw_state" != running ]; then
{_firewall_inactive(when_inactive, action)}
fi
"""


def render_firewall(*, port: int, when_inactive: FirewallWhenInactive, privilege: Privilege) -> str:
    """Open the devpi port in firewalld's default zone, permanently and at runtime, only if needed."""
    return _header("firewall", privilege) + _firewall_prologue(port, when_inactive, "opened") + """changes=()
if ! as_root firewall-cmd --permanent --query-port="$port_spec" >/dev/null; then
  as_root firewall-cmd --permanent --add-port="$port_spec" >/dev/null
  changes+=("added to the permanent configuration")
fi
# A permanent rule that is not active yet (added without reload) needs a reload too.
if [ "${#changes[@]}" -gt 0 ] || ! as_root firewall-cmd --query-port="$port_spec" >/dev/null; then
  as_root firewall-cmd --reload >/dev/null
  changes+=("reloaded firewalld")
fi
""" + _report("firewall: port $port_spec already open; nothing changed", "firewall: port $port_spec opened: ")


def render_firewall_delete(*, port: int, when_inactive: FirewallWhenInactive, privilege: Privilege) -> str:
    """Close the devpi port again (the inverse of :func:`render_firewall`), only if it is open."""
    return _header("firewall (destroy)", privilege) + _firewall_prologue(port, when_inactive, "closed") + """changes=()
if as_root firewall-cmd --permanent --query-port="$port_spec" >/dev/null; then
  as_root firewall-cmd --permanent --remove-port="$port_spec" >/dev/null
  changes+=("removed from the permanent configuration")
fi
if [ "${#changes[@]}" -gt 0 ] || as_root firewall-cmd --query-port="$port_spec" >/dev/null; then
  as_root firewall-cmd --reload >/dev/null
  changes+=("reloaded firewalld")
fi
""" + _report("firewall: port $port_spec already closed; nothing changed", "firewall: port $port_spec closed: ")


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

    def __post_init__(self) -> None:
        # The stack-config loader already applied these rules (naming the config keys); this guard
        # runs the same rules for any other caller and names the argument.
        refuse_arguments("HostPlan", [
            ("user", self.user, rules.unix_user_problem(self.user)),
            ("data_dir", self.data_dir, rules.data_dir_problem(self.data_dir)),
            ("port", self.port, rules.port_problem(self.port)),
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


def render_steps(plan: HostPlan) -> list[Step]:
    """All host steps in order (preflight, data folder, SELinux, firewall) as command strings.

    Change handling per step (pulumi-command runs ``create`` again on an update, and a change of
    ``triggers`` replaces the Command):

    * preflight: triggers on its script, no delete;
    * data folder: **never replaced**. A replace runs the old ``delete`` too, and with
      ``purgeDataOnDestroy`` that would wipe the packages on any script change; a changed script
      re-runs as an in-place update instead (``update`` = the create script);
    * SELinux and firewall: triggers on their scripts with delete-before-replace, so the old rule is
      removed before the new one is added (create-then-delete would remove a port just re-added).
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
    fw_create = render_firewall(port=plan.port, when_inactive=plan.firewall_when_inactive, privilege=priv)
    fw_delete = render_firewall_delete(port=plan.port, when_inactive=plan.firewall_when_inactive,
                                       privilege=priv)
    return [
        Step(name="preflight", create=as_command(preflight), delete=None, trigger=script_hash(preflight)),
        Step(name="data-dir", create=as_command(data_create), delete=as_command(data_delete),
             trigger=None, update=as_command(data_create)),
        Step(name="selinux", create=as_command(se_create), delete=as_command(se_delete),
             trigger=script_hash(se_create, se_delete), delete_before_replace=True),
        Step(name="firewall", create=as_command(fw_create), delete=as_command(fw_delete),
             trigger=script_hash(fw_create, fw_delete), delete_before_replace=True),
    ]
