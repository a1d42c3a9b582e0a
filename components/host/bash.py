
"""What every host script shares: the header (strict mode, PATH, the ``as_root`` helper), literal
shell assignments, the closing report, and how a script becomes a pulumi-command string.

Values from the stack config only ever enter a script through :func:`assign` / :func:`assign_array`
(``shlex.quote``: one literal word, never expanded).
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from components.config import rules
from components.config.errors import refuse_arguments

__all__ = [
    "Privilege",
    "as_command",
    "assign",
    "assign_array",
    "container_label",
    "fcontext_spec",
    "header",
    "report",
    "script_hash",
]

REGEX_SPECIAL = re.compile(r"([\\.^$*+?()\[\]{}|])")


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


def header(step: str, privilege: Privilege) -> str:
    # sbin folders appended (not prepended) so getenforce/semanage/restorecon are found for a sudo
    # user whose PATH lacks them, while anything earlier on PATH still wins.
    return (
        "# devpi-registry host step: " + step + " (rendered by components/host/)\n"
        "set -euo pipefail\n"
        'PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"\n'
        "export PATH\n"
        + privilege.as_root_function() + "\n"
    )


def assign(name: str, value: str) -> str:
    """``name='value'``: a config value as one literal shell word (never expanded)."""
    line = f"{name}={shlex.quote(value)}\n"
    if "$" in value or "`" in value:
        # shellcheck would suspect a forgotten expansion; here the literal text is the point
        return "# shellcheck disable=SC2016\n" + line
    return line


def assign_array(name: str, values: Sequence[str]) -> str:
    """``name=('a' 'b')``: a bash array of literal words (each quoted, never expanded)."""
    line = f"{name}=(" + " ".join(shlex.quote(v) for v in values) + ")\n"
    if any("$" in v or "`" in v for v in values):
        return "# shellcheck disable=SC2016\n" + line
    return line


def report(unchanged: str, changed: str) -> str:
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
    return REGEX_SPECIAL.sub(r"\\\1", data_dir) + "(/.*)?"


def container_label(*, added: str, relabelled: str, quiet: bool = False) -> str:
    """The bash that gives ``$dir`` (regex ``$spec``) a persistent ``container_file_t`` label, so a
    container may use it: the ``semanage fcontext`` rule is added (``-a``) or modified (``-m``) only
    when needed, ``restorecon`` runs only when a dry run shows files to relabel, and each change is
    appended to ``changes`` (``added`` / ``relabelled``: those entries). The caller has checked that
    SELinux is in use. ``quiet``: restorecon's list of relabelled files is not printed."""
    shown = " >/dev/null" if quiet else ""
    return f"""current=$(as_root semanage fcontext -l -C | SPEC="$spec" awk '$1 == ENVIRON["SPEC"] {{ print $NF }}')
case "$current" in
  *:container_file_t:*) ;;
  "")
    as_root semanage fcontext -a -t container_file_t "$spec"
    changes+=("{added}")
    ;;
  *)
    as_root semanage fcontext -m -t container_file_t "$spec"
    changes+=("changed file-context rule from $current")
    ;;
esac
pending=$(as_root restorecon -R -n -v -- "$dir")
if [ -n "$pending" ]; then
  as_root restorecon -R -v -- "$dir"{shown}
  changes+=("{relabelled}")
fi
"""
