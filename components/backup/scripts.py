"""Pure renderers for the scheduled backup on the host: a bash script, a systemd service and timer,
and the install/uninstall scripts that ``BackupSchedule`` runs over SSH.

Why devpi-export inside the running container (and not a tar of the data folder): devpi-export
dumps one consistent snapshot (a keyfs read transaction pinned at one serial) while the server keeps
serving, whereas a tar of ``/devpi/server`` taken while the server writes can catch sqlite mid-write
and disagree with ``+files``. See components/lifecycle/backup.py for what was read and tried.
The export folder lives in the container's ``/tmp`` (never inside the bind-mounted data folder) and
is streamed out as tar.gz through ``docker exec`` stdout; the archive is checked for
``export/dataindex.json`` and renamed into place only when complete. Only the newest ``keep``
archives (``components/backup/archive.py``) are kept; uninstall removes the timer, never the archives.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
from dataclasses import dataclass

from components.backup.archive import (
    ARCHIVE_GLOB,
    ARCHIVE_PREFIX,
    ARCHIVE_SUFFIX,
    COMPLETE_MEMBER,
    DUMP_FOLDER,
    PARTIAL_SUFFIX,
    STAMP_FORMAT,
)
from components.config import rules
from components.config.defaults import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_BACKUP_KEEP,
    DEFAULT_BACKUP_SCHEDULE,
    DEFAULT_BACKUP_UNIT,
    DEFAULT_CONTAINER_NAME,
)
from components.config.errors import refuse_arguments

__all__ = [
    "BackupPlan",
    "render_backup_script",
    "render_install_script",
    "render_service",
    "render_timer",
    "render_uninstall_script",
    "script_hash",
]

@dataclass(frozen=True, kw_only=True)
class BackupPlan:
    """Validated plain values the renderers need (the component builds it from BackupArgs)."""

    backup_dir: str = DEFAULT_BACKUP_DIR
    keep: int = DEFAULT_BACKUP_KEEP
    container_name: str = DEFAULT_CONTAINER_NAME
    schedule: str = DEFAULT_BACKUP_SCHEDULE
    unit_name: str = DEFAULT_BACKUP_UNIT
    data_dir: str | None = None

    def __post_init__(self) -> None:
        # The stack-config loader applied these rules already, naming the config keys; this guard
        # runs the same rules (components.config.rules) for any other caller and names the argument.
        refuse_arguments("BackupPlan", [
            ("backup_dir", self.backup_dir, rules.backup_dir_problem(self.backup_dir)),
            ("keep", self.keep, rules.backup_keep_problem(self.keep)),
            ("container_name", self.container_name, rules.container_name_problem(self.container_name)),
            ("schedule", self.schedule, rules.backup_schedule_problem(self.schedule)),
            ("data_dir", self.data_dir,
             rules.data_dir_problem(self.data_dir) if self.data_dir is not None else None),
            ("unit_name", self.unit_name, rules.unit_name_problem(self.unit_name)),
        ])

    @property
    def script_path(self) -> str:
        return f"/usr/local/sbin/{self.unit_name}"

    @property
    def service_path(self) -> str:
        return f"/etc/systemd/system/{self.unit_name}.service"

    @property
    def timer_path(self) -> str:
        return f"/etc/systemd/system/{self.unit_name}.timer"


def render_backup_script(plan: BackupPlan) -> str:
    q = shlex.quote
    return f"""#!/usr/bin/env bash
# devpi-registry backup: devpi-export inside the running container {plan.container_name}
# (a consistent snapshot at one serial, safe while the server runs), streamed out as tar.gz.
# Data folder on the host: {plan.data_dir or "(not recorded)"} — never read directly (not safe live).
set -euo pipefail
umask 077

BACKUP_DIR={q(plan.backup_dir)}
KEEP={plan.keep}
CONTAINER={q(plan.container_name)}

stamp="$(date -u +{STAMP_FORMAT})"
final="${{BACKUP_DIR}}/{ARCHIVE_PREFIX}${{stamp}}{ARCHIVE_SUFFIX}"
partial="${{final}}{PARTIAL_SUFFIX}"
mkdir -p -- "$BACKUP_DIR"
trap 'rm -f -- "$partial"' EXIT

# Inside the container: export into its /tmp (never the bind-mounted data folder), tar to stdout.
# shellcheck disable=SC2016
docker exec "$CONTAINER" sh -c 'set -e
d=$(mktemp -d /tmp/devpi-export.XXXXXX)
trap "rm -rf \\"\\$d\\"" EXIT
devpi-export "$d/{DUMP_FOLDER}" >&2
tar -C "$d" -czf - {DUMP_FOLDER}' > "$partial"

# complete only if the dump's index is in it
tar -tzf "$partial" {COMPLETE_MEMBER} > /dev/null
mv -- "$partial" "$final"
trap - EXIT

# keep the newest $KEEP archives (names sort by time); nothing else in the folder is touched
find "$BACKUP_DIR" -maxdepth 1 -type f -name '{ARCHIVE_GLOB}' -printf '%f\\n' \\
  | sort -r | tail -n "+$((KEEP + 1))" \\
  | while IFS= read -r old; do rm -f -- "${{BACKUP_DIR:?}}/${{old}}"; done

echo "devpi backup written: $final"
"""


def render_service(plan: BackupPlan) -> str:
    return f"""[Unit]
Description=devpi-registry backup (devpi-export of container {plan.container_name})
Wants=docker.service
After=docker.service

[Service]
Type=oneshot
ExecStart={plan.script_path}
Nice=10
IOSchedulingClass=best-effort
IOSchedulingPriority=7
"""


def render_timer(plan: BackupPlan) -> str:
    return f"""[Unit]
Description=devpi-registry backup schedule ({plan.schedule})

[Timer]
OnCalendar={plan.schedule}
Persistent=true
RandomizedDelaySec=300

[Install]
WantedBy=timers.target
"""


def _write_file(path: str, content: str, mode: str) -> str:
    encoded = base64.b64encode(content.encode()).decode()
    q = shlex.quote
    return (f"base64 -d > {q(path + '.new')} <<'DEVPI_REGISTRY_EOF'\n{encoded}\nDEVPI_REGISTRY_EOF\n"
            f"chmod {mode} {q(path + '.new')}\nmv -f {q(path + '.new')} {q(path)}\n")


def render_install_script(plan: BackupPlan) -> str:
    """Idempotent: validates the calendar, writes the three files atomically, enables the timer."""
    q = shlex.quote
    return (
        "#!/usr/bin/env bash\nset -euo pipefail\numask 022\n"
        f"systemd-analyze calendar {q(plan.schedule)} > /dev/null\n"
        f"install -d -m 0700 {q(plan.backup_dir)}\n"
        + _write_file(plan.script_path, render_backup_script(plan), "0755")
        + _write_file(plan.service_path, render_service(plan), "0644")
        + _write_file(plan.timer_path, render_timer(plan), "0644")
        + "systemctl daemon-reload\n"
        f"systemctl enable --now {q(plan.unit_name + '.timer')}\n"
    )


def render_uninstall_script(plan: BackupPlan) -> str:
    """Removes timer, service and script; the archives in the backup folder are kept on purpose."""
    q = shlex.quote
    return (
        "#!/usr/bin/env bash\nset -euo pipefail\n"
        f"systemctl disable --now {q(plan.unit_name + '.timer')} 2> /dev/null || true\n"
        f"rm -f -- {q(plan.timer_path)} {q(plan.service_path)} {q(plan.script_path)}\n"
        "systemctl daemon-reload\n"
        f"# archives in {plan.backup_dir} are deliberately left in place\n"
    )


def script_hash(plan: BackupPlan) -> str:
    """sha256 over everything installed: the ``triggers`` value that re-installs on any change."""
    h = hashlib.sha256()
    for part in (render_install_script(plan), render_uninstall_script(plan)):
        h.update(part.encode())
    return h.hexdigest()
