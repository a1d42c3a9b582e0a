# ruff: noqa: E501  -- the embedded bash keeps each message a person reads on one line
"""Files delivered to the host on stdin: devpi's shared secret, the proxy's site, chain and key.

Content never appears in a command line or a log: the step's script (pure, rendered here) reads a
framed payload from stdin (:func:`files_payload`: a header, one ``path<TAB>mode<TAB>base64`` line
per file, ``end``), checks all of it before touching the host, and writes each file atomically.
The payload is a secret Output in the component (:mod:`components.host.component`).
"""

from __future__ import annotations

import base64
import posixpath
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.config.errors import refuse_arguments
from components.host.bash import Privilege, assign, assign_array, container_label, fcontext_spec, header, report

__all__ = [
    "CA_FILE_MODE",
    "CA_FILE_NAME",
    "PAYLOAD_END",
    "PAYLOAD_HEADER",
    "RELOAD_PENDING",
    "SECRET_FILE_MODE",
    "SECRET_FILE_NAME",
    "TLS_KEY_FILE",
    "TLS_KEY_MODE",
    "FileSpec",
    "file_mode_problem",
    "file_path_problem",
    "files_payload",
    "proxy_file_specs",
    "render_remove_files",
    "render_write_files",
    "secret_file_specs",
]

#: first line of every payload: what follows, in which version of the format
PAYLOAD_HEADER = "devpi-registry-files 1"
#: last line: a payload cut short (a dropped connection) is never taken as complete
PAYLOAD_END = "end"
#: devpi's --secretfile below ``secret_dir`` (components/server/spec.py mounts the folder read-only)
SECRET_FILE_NAME = "secret"  # noqa: S105 - the file's name, not a secret
#: devpi-server refuses a secret file readable by group or others, or in a group/world-writable folder
SECRET_FILE_MODE = 0o600
#: the private CA a replica trusts for an https primary (components/server/spec.py CA_FILE)
CA_FILE_NAME = "ca.pem"
CA_FILE_MODE = 0o644
#: the TLS private key below the proxy folder; assumed to match components/proxy/spec.py
TLS_KEY_FILE = "tls/key.pem"
TLS_KEY_MODE = 0o600
#: left in the proxy folder while a reload is owed (written, but nginx not reloaded yet)
RELOAD_PENDING = ".reload-pending"

_NAME_SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


def file_path_problem(path: object) -> str | None:
    """A file below a managed folder: relative, made of plain names (no ``.``/``..``, no hidden files)."""
    if not isinstance(path, str) or not path or path.startswith("/") or \
            not all(_NAME_SEGMENT.fullmatch(part) for part in path.split("/")):
        return ("must be a relative path of plain names (letters, digits, '_', '.', '-', not starting "
                "with '.' or '-'), such as tls/key.pem")
    return None


def file_mode_problem(mode: object) -> str | None:
    """A file mode the owner can read and only the owner can write (0600, 0644, 0400…)."""
    if isinstance(mode, bool) or not isinstance(mode, int) or not 0 <= mode <= 0o777:
        return "must be a file mode from 0o000 to 0o777"
    if mode & 0o022 or not mode & 0o400:
        return "must be readable by the owner and writable by nobody else (e.g. 0o600 or 0o644)"
    return None


@dataclass(frozen=True)
class FileSpec:
    """A file a files step writes: its path below the step's folder and its mode (owner root)."""

    path: str
    mode: int

    def __post_init__(self) -> None:
        refuse_arguments("FileSpec", [("path", self.path, file_path_problem(self.path)),
                                      ("mode", self.mode, file_mode_problem(self.mode))])


def files_payload(files: Mapping[str, tuple[str | bytes, int]]) -> str:
    """The text a files step reads on stdin: a header, one ``path<TAB>mode<TAB>base64`` line per file
    (sorted, so the same files always give the same payload and no spurious update), an end line.

    Base64 keeps any byte (newlines, tabs) inside one line, and the script decodes it with
    ``base64 -d`` from a pipe: the content is never a command-line word and never evaluated.
    """
    lines = [PAYLOAD_HEADER]
    for path in sorted(files):
        content, mode = files[path]
        FileSpec(path, mode)
        data = content.encode() if isinstance(content, str) else content
        lines.append(f"{path}\t{mode:o}\t{base64.b64encode(data).decode()}")
    lines.append(PAYLOAD_END)
    return "\n".join(lines) + "\n"


def _folders(base_dir: str, files: Sequence[FileSpec]) -> list[str]:
    """The base folder and every folder between it and the files, parents first."""
    folders = {base_dir}
    for spec in files:
        parts = spec.path.split("/")[:-1]
        folders |= {posixpath.join(base_dir, *parts[:i]) for i in range(1, len(parts) + 1)}
    return sorted(folders, key=lambda f: (f.count("/"), f))


_LABEL_FOLDER = """if command -v getenforce >/dev/null 2>&1; then
  selinux_mode=$(getenforce)
else
  selinux_mode="not present"
fi
case "$selinux_mode" in
  Enforcing|Permissive)
""" + textwrap.indent(container_label(added="added file-context rule container_file_t", relabelled="relabelled $dir",
                                      quiet=True), "    ") + """    ;;
esac
"""

_READ_PAYLOAD = """fail() {
  echo "$step: $1" >&2
  exit 1
}
# Read and check the whole payload before touching anything: a payload cut short, or one not meant
# for this step, changes nothing. Only paths and modes are ever printed, never content.
declare -A content=()
header=""
IFS= read -r header || true
if [ "$header" != "$payload_header" ]; then
  fail "stdin does not start with '$payload_header' (no payload was sent?); nothing changed"
fi
complete=no
line_no=1
while IFS=$'\\t' read -r rel mode data rest; do
  line_no=$((line_no + 1))
  if [ "$rel" = "$payload_end" ] && [ -z "$mode" ]; then
    complete=yes
    break
  fi
  expected=""
  for i in "${!want_paths[@]}"; do
    if [ "${want_paths[$i]}" = "$rel" ]; then expected=${want_modes[$i]}; fi
  done
  if [ -z "$expected" ]; then
    fail "payload line $line_no names a file this step does not write; nothing changed"
  fi
  if [ "$mode" != "$expected" ] || [ -n "$rest" ]; then
    fail "$rel: payload entry malformed (mode '$mode', this step writes mode $expected); nothing changed"
  fi
  case "$data" in
    *[!A-Za-z0-9+/=]*) fail "$rel: content is not base64; nothing changed" ;;
  esac
  if [ -n "${content[$rel]+set}" ]; then
    fail "$rel: named twice in the payload; nothing changed"
  fi
  content[$rel]=$data
done
if [ "$complete" != yes ]; then
  fail "the payload ends before its '$payload_end' line (connection cut?); nothing changed"
fi
declare -A sums=()
for rel in "${want_paths[@]}"; do
  if [ -z "${content[$rel]+set}" ]; then
    fail "$rel: missing from the payload; nothing changed"
  fi
  if ! sum=$(printf '%s' "${content[$rel]}" | base64 -d 2>/dev/null | sha256sum); then
    fail "$rel: content is not valid base64; nothing changed"
  fi
  sums[$rel]=${sum%% *}
done
"""

_MAKE_FOLDERS = """for folder in "${folders[@]}"; do
  if as_root test -e "$folder" && ! as_root test -d "$folder"; then
    fail "$folder exists but is not a directory; move it away"
  fi
  if ! as_root test -d "$folder"; then
    as_root mkdir -p -- "$folder"
    changes+=("created $folder")
  fi
  mode=$(as_root stat -L -c %a -- "$folder")
  if [ "$mode" != 700 ]; then
    as_root chmod 0700 -- "$folder"
    changes+=("$folder mode $mode -> 700")
  fi
  owner=$(as_root stat -L -c %u:%g -- "$folder")
  if [ "$owner" != 0:0 ]; then
    as_root chown 0:0 -- "$folder"
    changes+=("$folder owner $owner -> 0:0")
  fi
done
"""

_WRITE_FILES = """# Each file: unchanged when content (sha256), mode and owner match; else a temporary file in the same
# folder gets owner and mode first, then the content, then replaces the file in one rename.
tmp=""
cleanup() {
  if [ -n "$tmp" ]; then as_root rm -f -- "$tmp"; fi
}
trap cleanup EXIT
files_changed=no
for i in "${!want_paths[@]}"; do
  rel=${want_paths[$i]}
  mode=${want_modes[$i]}
  target="$dir/$rel"
  have_sum=""
  have_meta=""
  if as_root test -f "$target" && ! as_root test -L "$target"; then
    have_sum=$(as_root sha256sum -- "$target")
    have_sum=${have_sum%% *}
    have_meta=$(as_root stat -c '%a %u:%g' -- "$target")
  fi
  if [ "$have_sum" = "${sums[$rel]}" ] && [ "$have_meta" = "$mode 0:0" ]; then
    echo "$step: $target: unchanged"
    continue
  fi
  if [ -z "$have_sum" ]; then
    what="written"
  elif [ "$have_sum" = "${sums[$rel]}" ]; then
    what="mode/owner was $have_meta"
  else
    what="content replaced"
  fi
  tmp=$(as_root mktemp "${target%/*}/.${target##*/}.XXXXXX")
  as_root chown 0:0 -- "$tmp"
  as_root chmod "$mode" -- "$tmp"
  printf '%s' "${content[$rel]}" | base64 -d | as_root tee -- "$tmp" >/dev/null
  as_root sync -- "$tmp"
  as_root mv -f -T -- "$tmp" "$target"
  tmp=""
  # shellcheck disable=SC2034  # read by the reload block (proxy files only)
  files_changed=yes
  echo "$step: $target: updated ($what; mode $mode, owner root)"
  changes+=("$rel updated")
done
"""

_RELOAD = """# Certificate rotation without restarting devpi: a running proxy re-reads its files on reload. The
# marker keeps a reload owed when this run fails after writing (the next run then sees no change).
marker="$dir/$reload_marker"
if [ "$files_changed" = yes ] || as_root test -e "$marker"; then
  running=$(as_root docker container inspect --format '{{.State.Running}}' "$container" 2>/dev/null || true)
  if [ "$running" = true ]; then
    as_root touch -- "$marker"
    if ! check=$(as_root docker exec "$container" nginx -t -q 2>&1); then
      echo "$step: the files are written but nginx in container $container refuses them, so it keeps serving the previous ones: $check" >&2
      exit 1
    fi
    as_root docker exec "$container" nginx -s reload >/dev/null
    as_root rm -f -- "$marker"
    changes+=("nginx in $container reloaded")
  else
    as_root rm -f -- "$marker"
    echo "$step: container $container is not running; it reads the files when it starts"
  fi
fi
"""


def render_write_files(*, step: str, base_dir: str, files: Sequence[FileSpec], privilege: Privilege,
                       reload_container: str | None = None) -> str:
    """Write ``files`` below ``base_dir`` from the payload on stdin (see :func:`files_payload`).

    Folders are mode 0700, owner root, labelled ``container_file_t`` (a persistent ``semanage
    fcontext`` rule, as for the data folder) when SELinux is on; files are owner root with their
    mode, written atomically, and reported one by one as "unchanged" or "updated" — never their
    content. With ``reload_container``: when a file changed and that container runs, ``nginx -t``
    then ``nginx -s reload`` inside it.
    """
    if not files:
        raise ValueError("a files step needs at least one file")
    return header(step, privilege) + (
        assign("step", step) + assign("dir", base_dir) + assign("spec", fcontext_spec(base_dir))
        + assign("payload_header", PAYLOAD_HEADER) + assign("payload_end", PAYLOAD_END)
        + assign_array("want_paths", [f.path for f in files])
        + assign_array("want_modes", [f"{f.mode:o}" for f in files])
        + assign_array("folders", _folders(base_dir, files))
        + (assign("container", reload_container) + assign("reload_marker", RELOAD_PENDING)
           if reload_container is not None else "")
        + "changes=()\n" + _READ_PAYLOAD + _MAKE_FOLDERS + _LABEL_FOLDER + _WRITE_FILES
        + (_RELOAD if reload_container is not None else "")
        + report(f"$step $dir: nothing changed ({len(files)} file(s) as declared)", "$step $dir: changed: ")
    )


def render_remove_files(*, step: str, base_dir: str, files: Sequence[FileSpec], privilege: Privilege,
                        reload_marker: bool = False) -> str:
    """On destroy (or before a replace): remove exactly the step's files; folders and the data stay."""
    names = [f.path for f in files] + ([RELOAD_PENDING] if reload_marker else [])
    return header(f"{step} (destroy)", privilege) + (
        assign("step", step) + assign("dir", base_dir) + assign_array("want_paths", names)
        + """changes=()
for rel in "${want_paths[@]}"; do
  target="$dir/$rel"
  if as_root test -e "$target" || as_root test -L "$target"; then
    as_root rm -f -- "$target"
    changes+=("$rel removed")
  fi
done
""" + report("$step $dir: no files left to remove; nothing changed (folder kept)",
              "$step $dir: folder kept, files removed: ")
    )


def secret_file_specs(*, ca_bundle: bool = False) -> tuple[FileSpec, ...]:
    """The secret step's files: devpi's secret, and the private CA bundle when a replica needs it."""
    ca = (FileSpec(CA_FILE_NAME, CA_FILE_MODE),) if ca_bundle else ()
    return (*ca, FileSpec(SECRET_FILE_NAME, SECRET_FILE_MODE))


def proxy_file_specs(modes: Mapping[str, int], key_path: str = TLS_KEY_FILE) -> tuple[FileSpec, ...]:
    """The proxy's files as the plan names them: the plain files' paths and modes, plus the key."""
    if key_path in modes:
        raise ValueError(f"{key_path} is the TLS key's path: the key comes separately, as a secret")
    specs = [FileSpec(path, mode) for path, mode in modes.items()] + [FileSpec(key_path, TLS_KEY_MODE)]
    return tuple(sorted(specs, key=lambda f: f.path))
