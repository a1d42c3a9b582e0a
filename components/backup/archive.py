"""The backup archive contract, stated once: what the host's timer (bash, ``scripts.py``) writes and
what ``devpi-lifecycle backup/restore`` (Python) write and read. No Pulumi imports (the CLI uses it).

An archive is ``devpi-export-YYYYMMDDTHHMMSSZ.tar.gz`` (UTC; the names sort by time) holding one
folder ``export/`` with devpi-export's dump; it is complete only when ``export/dataindex.json`` is in
it. Archives are written as ``<name>.partial`` and renamed when complete.
"""

from __future__ import annotations

import re
from datetime import datetime

__all__ = ["ARCHIVE_GLOB", "ARCHIVE_PREFIX", "ARCHIVE_RE", "COMPLETE_MEMBER", "DUMP_FOLDER", "PARTIAL_SUFFIX",
           "STAMP_FORMAT", "archive_name"]

ARCHIVE_PREFIX = "devpi-export-"
ARCHIVE_SUFFIX = ".tar.gz"
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"  # the same format for Python's strftime and date(1)
ARCHIVE_GLOB = f"{ARCHIVE_PREFIX}*{ARCHIVE_SUFFIX}"
ARCHIVE_RE = re.compile(rf"^{re.escape(ARCHIVE_PREFIX)}\d{{8}}T\d{{6}}Z{re.escape(ARCHIVE_SUFFIX)}$")
DUMP_FOLDER = "export"
COMPLETE_MEMBER = f"{DUMP_FOLDER}/dataindex.json"
PARTIAL_SUFFIX = ".partial"


def archive_name(when: datetime) -> str:
    """The archive's file name for a backup taken at ``when`` (UTC)."""
    return f"{ARCHIVE_PREFIX}{when:{STAMP_FORMAT}}{ARCHIVE_SUFFIX}"
