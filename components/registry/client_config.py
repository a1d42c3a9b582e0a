"""Pure renderers for what a team pastes into its machines the day the registry exists.

pip in *strict* mode reads only the private index (and whatever it inherits through its bases).
*Mixed* mode adds the private index as an extra index next to PyPI: pip then takes the highest
version from either, so a public package with a private package's name wins — dependency
confusion. We render it because teams ask for it, with that warning in the file.

No renderer takes a password: uploads read it from ``TWINE_PASSWORD`` (or a keyring), so none of
these texts is secret and none puts a secret on a command line.

HTTPS: an https server needs no ``trusted-host``. When its certificate comes from a private CA, each
renderer takes ``ca_path`` — where the client machines keep that CA's PEM (``tls.clientCaPath``) — and
names it the way each tool reads it: pip's ``cert``/``--cert``, twine's ``--cert`` and ``.pypirc``
``ca_cert``, devpi-client's ``REQUESTS_CA_BUNDLE`` (devpi-client 7.3 has no CA option; it verifies
through requests, which reads that variable). Plain-http output is unchanged.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = [
    "IndexUrls",
    "devpi_use_command",
    "index_urls",
    "pip_conf",
    "pypirc",
    "pypirc_section_name",
    "requirements_header",
    "twine_command",
]

PYPI_SIMPLE = "https://pypi.org/simple/"


@dataclass(frozen=True)
class IndexUrls:
    """Where to upload to and install from one index."""

    index: str
    upload: str
    simple: str


def index_urls(server_url: str, index: str) -> IndexUrls:
    base = server_url.rstrip("/")
    return IndexUrls(index=index, upload=f"{base}/{index}/", simple=f"{base}/{index}/+simple/")


def _trusted_host(server_url: str) -> str | None:
    """pip refuses plain-HTTP indexes unless the host is trusted; HTTPS needs no exception."""
    parts = urlsplit(server_url)
    return parts.hostname if parts.scheme == "http" else None


def pip_conf(server_url: str, index: str, *, mode: str = "strict", ca_path: str | None = None) -> str:
    """A complete ``pip.conf`` (``pip config`` format) for one index, strict or mixed."""
    urls = index_urls(server_url, index)
    host = _trusted_host(server_url)
    lines = ["[global]"]
    if mode == "strict":
        lines.insert(0, f"# strict: install only from {index} (and its bases); nothing else is consulted")
        lines.append(f"index-url = {urls.simple}")
    elif mode == "mixed":
        lines.insert(0, f"# mixed: PyPI plus {index}. WARNING: pip takes the highest version from either index,")
        lines.insert(1, "# so a public package named like a private one wins (dependency confusion).")
        lines.insert(2, "# Give private nightlies versions PyPI cannot have (e.g. 1.2.0.dev20260416).")
        lines.append(f"index-url = {PYPI_SIMPLE}")
        lines.append(f"extra-index-url = {urls.simple}")
    else:
        raise ValueError(f"pip_conf mode must be 'strict' or 'mixed', got {mode!r}")
    if host:
        lines.append(f"trusted-host = {host}")
    if ca_path:
        lines.append(f"cert = {ca_path}")
    return "\n".join(lines) + "\n"


def requirements_header(server_url: str, index: str, *, ca_path: str | None = None) -> str:
    """Lines to put at the top of ``requirements.txt`` so ``pip install -r`` uses the index (strict)."""
    urls = index_urls(server_url, index)
    lines = [f"--index-url {urls.simple}"]
    host = _trusted_host(server_url)
    if host:
        lines.append(f"--trusted-host {host}")
    if ca_path:
        lines.append(f"--cert {ca_path}")
    return "\n".join(lines) + "\n"


def pypirc_section_name(index: str, taken: Iterable[str] = ()) -> str:
    """``build_bot/nightly`` -> ``nightly``, or ``build_bot-nightly`` when another index has that name."""
    owner, _, name = index.partition("/")
    return f"{owner}-{name}" if name in set(taken) else name


def pypirc(server_url: str, uploads: Mapping[str, tuple[str, str]], *, ca_path: str | None = None) -> str:
    """A ``~/.pypirc`` with one section per upload target: ``section -> (index, user)``; with
    ``ca_path`` each section names the CA as ``ca_cert`` (twine's key for ``--cert``).

    The password is deliberately absent: twine reads ``TWINE_PASSWORD`` or the keyring.
    """
    lines = ["[distutils]", "index-servers ="]
    lines += [f"    {section}" for section in uploads]
    for section, (index, user) in uploads.items():
        lines += ["", f"[{section}]", f"repository = {index_urls(server_url, index).upload}", f"username = {user}"]
        if ca_path:
            lines.append(f"ca_cert = {ca_path}")
    return "\n".join(lines) + "\n"


def twine_command(server_url: str, index: str, user: str, *, ca_path: str | None = None) -> str:
    """The upload command. twine prompts for the password (or reads it from the keyring or the CI's
    ``TWINE_PASSWORD`` secret); it is never part of the command line."""
    url = index_urls(server_url, index).upload
    cert = f" --cert {shlex.quote(ca_path)}" if ca_path else ""
    return f"twine upload --repository-url {shlex.quote(url)}{cert} -u {shlex.quote(user)} dist/*"


def devpi_use_command(server_url: str, index: str, *, ca_path: str | None = None) -> str:
    """devpi-client's ``devpi use`` line for one index. With a private CA it first exports
    ``REQUESTS_CA_BUNDLE`` for the shell: devpi-client verifies through requests, and every later
    ``devpi login``/``upload`` in that shell needs the same trust (``devpi use`` does not store it)."""
    use = f"devpi use {shlex.quote(index_urls(server_url, index).upload.rstrip('/'))}"
    return f"export REQUESTS_CA_BUNDLE={shlex.quote(ca_path)} && {use}" if ca_path else use
