"""Every value rule of the stack, in one place: pure functions ``value -> problem sentence | None``.

The stack-config loader (:mod:`components.config.stack`) calls these and prefixes the key path
(``devpi-registry:server.dataDir: …``); the dynamic providers' ``check()`` call the same functions
and name their property; the components (``HostPlan``, ``ContainerSpec``, ``BackupPlan``) call them
as a last guard naming their argument. So a value is accepted or refused the same way everywhere.

Conventions:

* a function returns ``None`` when the value is fine, else one sentence starting with a verb
  ("must be…", "is a system folder…") that reads well after a key or property name, and never
  contains a key path or a secret;
* rules with an explicit opt-out take ``allowed=`` (the opt-out's value) and do **not** name the
  opt-out: each caller appends it in its own vocabulary (``allowMirrorWhitelistStar: true`` in the
  stack config, ``allow_mirror_whitelist_star=True`` on a resource);
* no Pulumi, no network, no I/O: the module is safe to import anywhere (the CLI included).

Decisions taken here, once:

* **folders** (``server.dataDir``, ``backup.directory``): absolute, normalised (no trailing ``/``,
  ``..`` or ``//``), no control characters, and not one of :data:`SYSTEM_FOLDERS` (one set for
  both) — the data folder gets a recursive SELinux relabel and may be purged, the backup folder gets
  ``install -d -m 0700``; either would damage a system folder. The data folder, being labelled and
  mounted, also has no blanks, ``:`` or ``,``;
* **image**: a version tag or a digest; a floating tag (``latest``, ``6``, ``6.19``, ``6-alpine``…,
  or no tag at all, which Docker reads as ``latest``) only with the opt-out;
* **SSH host key**: a public key line ``TYPE BASE64 [comment]`` whose TYPE is one of
  :data:`HOST_KEY_TYPES`. ``rsa-sha2-256``/``rsa-sha2-512`` are *signature* algorithm names, not key
  types: an RSA host key line always starts with ``ssh-rsa`` (that is what ``ssh-keyscan`` prints and
  what pulumi-command parses), so those are refused with that explanation;
* **mirror whitelist** ``*``: refused without the opt-out **whether or not the index has bases**.
  Without bases it is harmless today, but it is a latent dependency-confusion switch that turns on
  the day a base (``cachePypi``) is added, and a rule without conditions is one users can predict;
* **anonymous upload** (``:ANONYMOUS:`` in ``acl_upload``) and a **volatile index named like a
  stable one** are refused without their opt-outs.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import posixpath
import re
import shlex
from collections.abc import Sequence
from urllib.parse import urlsplit

from components.config.defaults import (
    DEFAULT_BACKUP_DIR,
    DEFAULT_DATA_DIR,
    DEFAULT_IMAGE,
    DEFAULT_PROXY_DIR,
    DEFAULT_SECRET_DIR,
    PYPI_MIRROR,
)
from components.devpi.names import index_name_problem, index_spec_problem, user_name_problem

__all__ = [
    "FIREWALL_CHOICES",
    "HOST_KEY_TYPES",
    "RESERVED_SERVER_ARGS",
    "SYSTEM_FOLDERS",
    "anonymous_upload_problem",
    "backup_dir_problem",
    "backup_keep_problem",
    "backup_schedule_problem",
    "base_problem",
    "bases_problem",
    "cache_expiry_problem",
    "cache_pypi_problem",
    "client_ca_path_problem",
    "container_name_problem",
    "data_dir_problem",
    "docker_host_problem",
    "firewall_problem",
    "floating_tag",
    "folders_overlap",
    "glob_problem",
    "host_address_problem",
    "host_key_problem",
    "image_problem",
    "index_declaration_problem",
    "index_name_problem",
    "index_problem",
    "max_upload_problem",
    "mirror_url_problem",
    "mirror_whitelist_problem",
    "owner_id_problem",
    "port_problem",
    "proxy_dir_problem",
    "ready_timeout_problem",
    "replica_max_lag_problem",
    "replica_name_problem",
    "retention_count_problem",
    "retention_policy_problem",
    "root_password_problem",
    "secret_dir_problem",
    "server_args_problem",
    "server_url_problem",
    "stable_name",
    "sudo_command_problem",
    "tls_name_problem",
    "unit_name_problem",
    "unix_user_problem",
    "user_name_problem",
    "user_problem",
    "volatile_problem",
    "whole_number_problem",
]


def whole_number_problem(value: object, lo: int, hi: int) -> str | None:
    """A whole number (not a bool) from ``lo`` to ``hi`` inclusive."""
    if isinstance(value, bool) or not isinstance(value, int):
        return "must be a whole number"
    if not lo <= value <= hi:
        return f"must be between {lo} and {hi}"
    return None


# ------------------------------------------------------------------------------------------ folders
#: Folders that must never be the data or backup folder: the data folder gets a recursive SELinux
#: relabel (``(/.*)?``) and may be purged on destroy; the backup folder is created mode 0700. Docker
#: itself warns about ``:Z`` on /home and /usr. A folder *below* these is fine.
SYSTEM_FOLDERS = frozenset({
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/media", "/mnt", "/opt",
    "/opt/local", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/local",
    "/var", "/var/lib", "/var/lib/docker",
})


def _folder_problem(path: object, example: str, *, mounted: bool) -> str | None:
    if not isinstance(path, str) or not path.startswith("/"):
        return f"must be an absolute path such as {example}"
    # On the normalised spelling, so `//`, `/etc/.` or `/var/lib/` get the reason that matters.
    if "/" + posixpath.normpath(path).lstrip("/") in SYSTEM_FOLDERS:
        return (f"is a system folder (it would be relabelled, chmod-ed or purged as a whole); "
                f"use a folder of its own below it, e.g. {example}")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "must not contain blanks or control characters" if mounted else "must not contain control characters"
    if mounted and any(c.isspace() for c in path):
        # SELinux file-context rules are whitespace-separated: a blank in the path cannot be labelled.
        return "must not contain blanks or control characters"
    if mounted and (":" in path or "," in path):
        return "must not contain ':' or ',' (they split Docker's volume syntax)"
    normal = "/" + posixpath.normpath(path).lstrip("/")
    if normal != path:
        return f"must be a normalised path (did you mean {normal}?)"
    return None


def data_dir_problem(path: object) -> str | None:
    """The host folder bind-mounted at ``/devpi/server``: absolute, normalised, not a system folder
    (see :data:`SYSTEM_FOLDERS`), and without blanks, control characters, ``:`` or ``,`` (an SELinux
    file-context rule is whitespace-separated; Docker's volume syntax splits on ``:`` and ``,``)."""
    return _folder_problem(path, DEFAULT_DATA_DIR, mounted=True)


def proxy_dir_problem(path: object) -> str | None:
    """The host folder of the TLS proxy's config, chain and key: the rules of :func:`data_dir_problem`
    (it is labelled and mounted too)."""
    return _folder_problem(path, DEFAULT_PROXY_DIR, mounted=True)


def secret_dir_problem(path: object) -> str | None:
    """The host folder of devpi's ``--secretfile``: the rules of :func:`data_dir_problem` (labelled
    and mounted read-only)."""
    return _folder_problem(path, DEFAULT_SECRET_DIR, mounted=True)


def backup_dir_problem(path: object) -> str | None:
    """The host folder for backup archives: absolute, normalised, not a system folder, no control
    characters (blanks are fine: it is neither labelled nor mounted, and the scripts quote it)."""
    return _folder_problem(path, DEFAULT_BACKUP_DIR, mounted=False)


# --------------------------------------------------------------------------------------------- image
# Tags that upstream moves: latest*, a major or major.minor version (6, 6.20, 6-alpine, 6.20-alpine).
_FLOATING = re.compile(r"latest(-.*)?|\d+(\.\d+)?(-.*)?")


def floating_tag(image: str) -> str | None:
    """The tag of ``image`` if upstream may move it (``latest``, ``6``, ``6.19``, no tag at all), else
    None. A digest (``repo@sha256:…``) or a full version tag (``6.20.3``) is pinned."""
    if "@" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    tag = last.rpartition(":")[2] if ":" in last else ""
    if not tag:
        return "latest"  # Docker's implicit tag
    return tag if _FLOATING.fullmatch(tag) else None


def image_problem(image: object, *, allowed: bool = False, example: str = DEFAULT_IMAGE) -> str | None:
    """An image reference pinned to a version tag or a digest; a floating tag only when ``allowed``
    (the opt-out, appended by the caller). ``example`` is the pinned reference the message suggests."""
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        return f"must be an image reference without spaces, such as {example}"
    tag = floating_tag(image)
    if tag is None or allowed:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return (f"has no version tag, so Docker pulls the floating tag 'latest', which upstream moves: "
                f"pin a version tag ({example}) or a digest")
    return (f"uses the floating tag {tag!r}, which upstream moves: every pull may change the server under "
            f"you. Pin a version ({example}) or a digest")


#: options the image's entrypoint sets itself; repeating them would move the port or the state out
#: of the mount (and a secret file the image does not create stops the server)
RESERVED_SERVER_ARGS = ("--host", "--port", "--serverdir", "--restrict-modify", "--secretfile")


def server_args_problem(args: Sequence[str]) -> str | None:
    """Extra devpi-server arguments must not set what the image's entrypoint sets."""
    for arg in args:
        option = arg.split("=", 1)[0]
        if option in RESERVED_SERVER_ARGS:
            return (f"must not set {option}: the image's entrypoint sets host, port and restrict-modify, "
                    "the server directory is /devpi/server, and a secret file the image does not create "
                    "stops the server")
    return None


_CONTAINER_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")


def container_name_problem(name: object) -> str | None:
    """A Docker container name."""
    if not isinstance(name, str) or not _CONTAINER_NAME.fullmatch(name):
        return "must be a valid Docker container name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
    return None


def port_problem(port: object) -> str | None:
    """A TCP port number, 1 to 65535."""
    return whole_number_problem(port, 1, 65535)


def ready_timeout_problem(seconds: object) -> str | None:
    """How long ``pulumi up`` waits for the server: 5 seconds to an hour."""
    return whole_number_problem(seconds, 5, 3600)


FIREWALL_CHOICES = ("fail", "skip")


def firewall_problem(value: object) -> str | None:
    """What to do when firewalld is not running: ``fail`` or ``skip``."""
    return None if value in FIREWALL_CHOICES else f"must be one of {', '.join(FIREWALL_CHOICES)}"


def docker_host_problem(url: object) -> str | None:
    """A Docker engine address: ``ssh://``, ``tcp://`` or ``unix://``."""
    if not isinstance(url, str) or not re.match(r"^(ssh|tcp|unix)://", url):
        return "must start with ssh://, tcp:// or unix://"
    return None


def root_password_problem(password: object) -> str | None:
    """root's password as the image needs it: non-empty and not starting with ``-``.

    The entrypoint runs ``devpi-init --root-passwd "$DEVPI_PASSWORD"`` at the first start: an empty
    value exits 1 and a value starting with ``-`` is read as an option by argparse, so the container
    would crash-loop. The sentence never contains the value.
    """
    if not isinstance(password, str) or not password:
        return "must not be empty: the image refuses to start without it"
    if password.startswith("-"):
        return ("must not start with '-' (the image passes it to devpi-init as a command-line argument, "
                "which then fails at the first start)")
    return None


# ---------------------------------------------------------------------------------------------- host
def host_address_problem(address: object) -> str | None:
    """A host name or IP address (no blanks, ``/`` or ``@``)."""
    if not isinstance(address, str) or not address or any(c.isspace() or c in "/@" for c in address):
        return "must be a host name or IP address (no blanks, '/' or '@')"
    return None


_UNIX_USER = re.compile(r"[a-z_][a-z0-9_.-]{0,31}\$?")


def unix_user_problem(user: object) -> str | None:
    """The SSH user: a POSIX user name (lower case, at most 32 characters)."""
    if not isinstance(user, str) or not _UNIX_USER.fullmatch(user):
        return "must be a valid Unix user name such as 'root' or 'deploy'"
    return None


#: host key types accepted for ``host.hostKey`` (what ``ssh-keyscan`` prints and pulumi-command parses)
HOST_KEY_TYPES = ("ssh-ed25519", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384", "ecdsa-sha2-nistp521",
                  "ssh-rsa")
_SIGNATURE_ALGORITHMS = ("rsa-sha2-256", "rsa-sha2-512")
_KEY_LINE = re.compile(r"(?P<type>\S+) (?P<data>[A-Za-z0-9+/]+={0,3})( \S.*)?")


def _blob_type(data: str) -> str | None:
    """The key type written inside the base64 key data, or None when it does not decode cleanly."""
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    size = int.from_bytes(blob[:4], "big")
    if len(blob) < 4 + size or size > 64:
        return None
    try:
        return blob[4:4 + size].decode("ascii")
    except UnicodeDecodeError:
        return None


def host_key_problem(line: object) -> str | None:
    """A pinned SSH host key line ``TYPE BASE64 [comment]`` with TYPE in :data:`HOST_KEY_TYPES`.

    ``rsa-sha2-256``/``rsa-sha2-512`` are refused with the fix (they name signature algorithms; the
    RSA key line starts with ``ssh-rsa``), as is key data whose embedded type contradicts TYPE.
    """
    usage = (f"must be a public key line such as 'ssh-ed25519 AAAAC3Nza…' (key type and base64 key, as "
             f"`ssh-keyscan -t ed25519 HOST` prints them after the host name); key types: "
             f"{', '.join(HOST_KEY_TYPES)}")
    if not isinstance(line, str):
        return usage
    m = _KEY_LINE.fullmatch(line.strip())
    if m is None:
        return usage
    typ = m.group("type")
    if typ in _SIGNATURE_ALGORITHMS:
        return (f"starts with {typ!r}, a signature algorithm, not a key type: an RSA host key line starts "
                f"with 'ssh-rsa' (`ssh-keyscan -t rsa HOST` prints it)")
    if typ not in HOST_KEY_TYPES:
        return usage
    inner = _blob_type(m.group("data"))
    if inner is not None and inner != typ:
        return f"says {typ!r} but its key data is a {inner!r} key: copy the whole line from ssh-keyscan"
    return None


def sudo_command_problem(command: object) -> str | None:
    """The command that prefixes privileged steps (``sudo -n``): at least one word."""
    if not isinstance(command, str):
        return "must name a command, such as 'sudo -n'"
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    return None if words else "must name a command, such as 'sudo -n'"


def owner_id_problem(value: object) -> str | None:
    """A numeric user or group id for the data folder's owner (0 = root, as the devpi image runs)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**31:
        return "must be a numeric id >= 0 (0 = root, as the devpi image runs)"
    return None


# -------------------------------------------------------------------------------------------- backup
_CALENDAR = re.compile(r"[A-Za-z0-9*:/,.~ -]+")


def backup_schedule_problem(schedule: object) -> str | None:
    """A systemd ``OnCalendar`` expression (letters, digits, blanks and ``*:/,.~-`` only; the host
    checks the meaning with ``systemd-analyze calendar``)."""
    if not isinstance(schedule, str) or not schedule.strip() or not _CALENDAR.fullmatch(schedule):
        return "must be a systemd OnCalendar expression such as 'daily' or '*-*-* 02:30:00'"
    return None


def backup_keep_problem(keep: object) -> str | None:
    """How many archives to keep: 1 to 1000."""
    return whole_number_problem(keep, 1, 1000)


def unit_name_problem(name: object) -> str | None:
    """A plain systemd unit name (no folder, no suffix)."""
    if not isinstance(name, str) or not _CONTAINER_NAME.fullmatch(name):
        return "must be a plain systemd unit name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)"
    return None


# -------------------------------------------------------------------------------------- users, indexes
def user_problem(name: object) -> str | None:
    """A devpi user the stack may declare: a name devpi accepts, and not ``root`` (root belongs to the
    stack itself: its password is the stack's root password). Use :func:`user_name_problem` for an
    index owner, which may be root."""
    problem = user_name_problem(name)
    if problem is None and name == "root":
        return "root is managed by the stack itself (its root password); do not declare it"
    return problem


def index_problem(spec: object) -> str | None:
    """A full index name ``user/name`` as devpi accepts it (both parts; reserved names refused).
    For the short part alone use :func:`index_name_problem`, for the owner :func:`user_name_problem`."""
    problem = index_spec_problem(spec)
    if problem == "must have the form 'user/index'":
        return f"{problem} (e.g. build_bot/nightly)"
    return problem


def index_declaration_problem(spec: object) -> str | None:
    """An index the stack may declare: :func:`index_problem`, and not root/pypi (the server creates
    that one itself when the PyPI mirror is on)."""
    problem = index_problem(spec)
    if problem is None and spec == PYPI_MIRROR:
        return f"{PYPI_MIRROR} is created by the server itself (the PyPI mirror setting); do not declare it"
    return problem


def base_problem(spec: object, base: object) -> str | None:
    """One base of index ``spec``: a valid ``user/name`` that is not ``spec`` itself."""
    problem = index_problem(base)
    if problem is None and base == spec:
        return "an index cannot inherit itself"
    return problem


def bases_problem(bases: Sequence[object]) -> str | None:
    """The list of bases as a whole: no base twice (each base: :func:`base_problem`)."""
    seen = [b for b in bases if isinstance(b, str)]
    return "lists a base twice" if len(set(seen)) != len(seen) else None


_STABLE_NAME = re.compile(r"(^|[-_.])(stable|release|releases|prod|production)([-_.]|$)")


def stable_name(name: str) -> bool:
    """True when an index name (short or ``user/name``) reads like a stable/release/prod index."""
    return bool(_STABLE_NAME.search(name.rsplit("/", 1)[-1]))


def volatile_problem(spec: str, *, volatile: bool, index_type: str = "stage",
                     allowed: bool = False) -> str | None:
    """A stage index named like a stable one (``stable``, ``release``, ``prod``…) must not be volatile,
    or released versions could be overwritten; ``allowed`` is the opt-out."""
    if volatile and index_type == "stage" and stable_name(spec) and not allowed:
        return (f"index {spec} is named like a stable index but would be volatile (versions could be "
                "overwritten): make it non-volatile")
    return None


def mirror_whitelist_problem(whitelist: Sequence[object] | None, *, allowed: bool = False) -> str | None:
    """``*`` in ``mirror_whitelist`` needs the opt-out ``allowed``, with or without bases (see the
    module docstring: a latent dependency-confusion switch is refused as firmly as an active one)."""
    if whitelist and "*" in whitelist and not allowed:
        return ("contains '*', which trusts every PyPI release over private ones (dependency confusion): "
                "every project name, including names you publish privately, is also served from the "
                "mirrors; list the project names instead")
    return None


def anonymous_upload_problem(acl_upload: Sequence[object] | None, *, allowed: bool = False) -> str | None:
    """``:ANONYMOUS:`` (any case) in ``acl_upload`` needs the opt-out ``allowed``."""
    if acl_upload and not allowed and any(isinstance(a, str) and a.upper() == ":ANONYMOUS:" for a in acl_upload):
        return "lets anyone upload without logging in (:ANONYMOUS:)"
    return None


def mirror_url_problem(url: object, *, index_type: str) -> str | None:
    """``mirror_url``: required on a mirror (devpi accepts a mirror without it, then fails every
    request and crashes on its next start), absent on a stage, and an http(s) URL."""
    if index_type == "mirror" and url is None:
        return ("is required for a mirror index (devpi accepts a mirror without it, then fails every "
                "request and crashes on its next start)")
    if index_type == "stage" and url is not None:
        return "only applies to mirror indexes"
    if url is not None and (not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https")):
        return "must be an http(s) URL"
    return None


STAGE_ONLY_KEYS = ("bases", "aclUpload", "aclToxresultUpload", "mirrorWhitelist", "mirrorWhitelistInheritance")
MIRROR_ONLY_KEYS = ("mirrorWebUrlFmt", "mirrorCacheExpiry", "mirrorNoProjectList", "mirrorUseExternalUrls",
                    "mirrorIgnoreSerialHeader")


def index_type_key_problem(key: str, *, index_type: str) -> str | None:
    """A stack-config key of an index that belongs to the other index type: devpi silently drops the
    stage keys on a mirror (drift forever) and refuses mirror keys on a stage. (``mirrorUrl`` has
    its own rule, :func:`mirror_url_problem`.)"""
    if index_type == "mirror" and key in STAGE_ONLY_KEYS:
        return "does not apply to a mirror index (devpi silently drops it)"
    if index_type == "stage" and key in MIRROR_ONLY_KEYS:
        return "only applies to mirror indexes (type: mirror)"
    return None


def cache_pypi_problem(*, pypi_mirror: bool, index_type: str) -> str | None:
    """Inheriting root/pypi needs the server's PyPI mirror, and only a stage index has bases."""
    if not pypi_mirror:
        return "needs the server's PyPI mirror (root/pypi does not exist on this server)"
    if index_type != "stage":
        return "only stage indexes inherit bases"
    return None


def cache_expiry_problem(seconds: object) -> str | None:
    """A mirror's cache expiry in seconds: 0 or more."""
    return whole_number_problem(seconds, 0, 10**8)


# ----------------------------------------------------------------------------------------- retention
def retention_count_problem(value: object) -> str | None:
    """``keepLast`` / ``maxAgeDays``: a whole number >= 0."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "must be a whole number >= 0"
    return None


def retention_policy_problem(keep_last: object, max_age_days: object) -> str | None:
    """A policy must bound removal by ``keepLast`` and/or ``maxAgeDays``."""
    if keep_last is None and max_age_days is None:
        return "set keepLast and/or maxAgeDays: a policy with neither would remove every matching version"
    return None


def glob_problem(glob: object) -> str | None:
    """A project name glob of ``include`` / ``exclude``."""
    if not isinstance(glob, str) or not glob.strip():
        return "must be a non-empty project name glob"
    return None


# ---------------------------------------------------------------------------------------- server URL
def server_url_problem(url: object) -> str | None:
    """The URL through which Pulumi reaches devpi: the server's root.

    ``http(s)://host[:port]`` without credentials, query or fragment. A path is accepted only as an
    explicit URL prefix (devpi behind a reverse proxy at a path), written as a folder with a trailing
    ``/`` (``https://host/devpi/``), and none of its segments may start with ``+`` (devpi's own
    routes: ``+simple``, ``+api``, ``+f``...).

    Why the trailing slash decides: devpi's URLs of a user (``/build_bot``), an index
    (``/build_bot/nightly``, as the manual procedure prints it) and a project are exactly "segments
    without a trailing slash", and a prefix such as ``/devpi`` is indistinguishable from the user
    ``devpi``. Reading such a URL as the server made every lookup answer 404, which the providers
    took as "deleted" (refresh dropped everything, destroy deleted nothing). So an ambiguous path is
    refused with the fix, instead of guessed; the slash costs a real prefix one character. The
    client additionally proves at run time that the URL answers like devpi's root (``/+api``).
    """
    parts = urlsplit(str(url))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username or parts.password:
        return "must be http(s)://host[:port] without credentials"
    if parts.query or parts.fragment:
        return "must not carry a ?query or #fragment; use the server's root URL"
    return _server_url_path_problem(parts.path)


def _server_url_path_problem(path: str) -> str | None:
    if path in ("", "/"):
        return None
    segments = [s for s in path.split("/") if s]
    if any(s.startswith("+") for s in segments):
        return ("points inside devpi (a path segment starting with '+' is one of devpi's own routes, such as "
                "an index's +simple/ URL for pip); set it to the server's root URL, e.g. http://host:3141")
    if path.endswith("/"):
        return None
    kind = {1: "a devpi user", 2: "a devpi index (user/index)",
            3: "a devpi project page (user/index/project)"}.get(len(segments), "a page inside devpi")
    return (f"has a path that looks like the URL of {kind}, not of the server: set it to the server's root URL "
            "without that path (e.g. http://host:3141). If devpi really runs behind a reverse proxy at this "
            "path, end the URL with '/' to say so (e.g. https://host/devpi/)")


# --------------------------------------------------------------------------------- TLS and replicas
# (the certificate rules need `cryptography` and live in components.config.tls)
def folders_overlap(a: str, b: str) -> bool:
    """Whether two normalised host folders are the same or one lies inside the other: one folder's
    recursive SELinux relabel, purge or backup would then reach into the other."""
    return a == b or a.startswith(b.rstrip("/") + "/") or b.startswith(a.rstrip("/") + "/")


_DNS_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def tls_name_problem(name: object) -> str | None:
    """A name clients use to reach the server over https: a DNS name or an IP address (no wildcard:
    a wildcard belongs in the certificate, clients always type a real name)."""
    if not isinstance(name, str) or not name:
        return "must be a DNS name or an IP address, such as devpi.example.internal"
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        return None
    if name.startswith("*."):
        return ("is a wildcard: list the names clients really use (the certificate may be a wildcard one "
                "that covers them)")
    labels = name.lower().removesuffix(".").split(".")
    if len(name) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        return "must be a DNS name (letters, digits and '-' between dots) or an IP address"
    return None


def max_upload_problem(megabytes: object) -> str | None:
    """The proxy's largest accepted upload in MiB (nginx ``client_max_body_size``): 1 to 1024, since
    devpi-server 6.20 itself refuses bodies over 1 GiB (its ``--max-request-body-size`` default)."""
    problem = whole_number_problem(megabytes, 1, 1024)
    return f"{problem} (devpi-server refuses request bodies over 1 GiB)" if problem else None


def client_ca_path_problem(path: object) -> str | None:
    """Where clients keep the private CA file (written into pip.conf and twine commands): an absolute,
    normalised file path without control characters."""
    if not isinstance(path, str) or not path.startswith("/") or path.endswith("/"):
        return "must be the absolute path of a file, such as /etc/pki/ca-trust/source/anchors/devpi-ca.pem"
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        return "must not contain control characters"
    normal = "/" + posixpath.normpath(path).lstrip("/")
    if normal != path:
        return f"must be a normalised path (did you mean {normal}?)"
    return None


_REPLICA_NAME = re.compile(r"[a-z][a-z0-9-]{0,30}")


def replica_name_problem(name: object) -> str | None:
    """A replica's short name (resource names, outputs): lower-case letter, then letters, digits, '-'."""
    if not isinstance(name, str) or not _REPLICA_NAME.fullmatch(name):
        return "must be a short name: a lower-case letter, then up to 30 lower-case letters, digits or '-'"
    return None


def replica_max_lag_problem(serials: object) -> str | None:
    """How many serials a ready replica may be behind its primary: 0 to 100000."""
    return whole_number_problem(serials, 0, 100000)
