"""The stack outputs, computed from the validated config alone (pure; no secret in any of them).

What a team pastes the day the registry exists: per index its URLs, strict and mixed ``pip.conf``
and a requirements header; a ``.pypirc`` and twine commands for uploads (always to the primary);
``devpi use`` lines; per replica its URL and the pip settings that install from it (the nearest
node). With ``tls`` every URL is https, no file trusts a host blindly, and when a private CA is
declared every file names it at ``tls.clientCaPath`` and ``caBundle`` carries its PEM (public).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from components.config.model import IndexConfig, ReplicaConfig, StackConfig
from components.registry.client_config import (
    devpi_use_command,
    index_urls,
    pip_conf,
    pypirc,
    pypirc_section_name,
    requirements_header,
    twine_command,
)

__all__ = ["IndexOutputs", "RegistryOutputs", "ReplicaOutputs", "registry_outputs"]


@dataclass(frozen=True)
class IndexOutputs:
    """How a team uses one index: where to upload and install from, and ready-to-paste files."""

    upload_url: str | None  # None for a mirror: nobody uploads to it
    simple_url: str
    volatile: bool
    bases: tuple[str, ...]
    pip_conf_strict: str
    pip_conf_mixed: str
    requirements_header: str
    devpi_use: str

    def exported(self) -> dict[str, Any]:
        """The index's entry of the ``indexes`` stack output (the names teams' scripts read)."""
        return {
            "uploadUrl": self.upload_url,
            "simpleUrl": self.simple_url,
            "volatile": self.volatile,
            "bases": list(self.bases),
            "pipConfStrict": self.pip_conf_strict,
            "pipConfMixed": self.pip_conf_mixed,
            "requirementsHeader": self.requirements_header,
            "devpiUse": self.devpi_use,
        }


@dataclass(frozen=True)
class ReplicaOutputs:
    """Installing from one replica: its URL, each index's simple URL there, a strict pip.conf."""

    url: str
    simple_urls: Mapping[str, str]
    pip_conf: str | None

    def exported(self) -> dict[str, Any]:
        out: dict[str, Any] = {"url": self.url, "simpleUrls": dict(self.simple_urls)}
        if self.pip_conf is not None:
            out["pipConf"] = self.pip_conf
        return out


@dataclass(frozen=True)
class RegistryOutputs:
    """What a team uses the day the registry exists; no secret in any of it.

    ``pip_conf`` is the strict pip.conf of the first stage index (else of the first index), or None
    when no index is declared. ``replicas`` and ``primary_url`` only when replicas are declared;
    ``ca_bundle`` only when a private CA is.
    """

    server_url: str
    indexes: Mapping[str, IndexOutputs]
    pypirc: str
    twine_commands: Mapping[str, str]
    pip_conf: str | None
    replicas: Mapping[str, ReplicaOutputs]
    ca_bundle: str | None

    def exported(self) -> dict[str, Any]:
        """The stack outputs, by their exported names."""
        out: dict[str, Any] = {
            "serverUrl": self.server_url,
            "indexes": {name: ix.exported() for name, ix in self.indexes.items()},
            "pypirc": self.pypirc,
            "twineCommands": dict(self.twine_commands),
        }
        if self.pip_conf is not None:
            out["pipConf"] = self.pip_conf
        if self.replicas:
            out["primaryUrl"] = self.server_url  # uploads and every registry change go here
            out["replicas"] = {name: r.exported() for name, r in self.replicas.items()}
        if self.ca_bundle is not None:
            out["caBundle"] = self.ca_bundle
        return out


def _index_outputs(url: str, ix: IndexConfig, ca_path: str | None) -> IndexOutputs:
    urls = index_urls(url, ix.full_name)
    return IndexOutputs(
        upload_url=urls.upload if ix.type == "stage" else None,
        simple_url=urls.simple,
        volatile=ix.volatile,
        bases=tuple(ix.bases),
        pip_conf_strict=pip_conf(url, ix.full_name, mode="strict", ca_path=ca_path),
        pip_conf_mixed=pip_conf(url, ix.full_name, mode="mixed", ca_path=ca_path),
        requirements_header=requirements_header(url, ix.full_name, ca_path=ca_path),
        devpi_use=devpi_use_command(url, ix.full_name, ca_path=ca_path),
    )


def _replica_outputs(replica: ReplicaConfig, indexes: tuple[IndexConfig, ...], first: IndexConfig | None,
                     ca_path: str | None) -> ReplicaOutputs:
    return ReplicaOutputs(
        url=replica.url,
        simple_urls={ix.full_name: index_urls(replica.url, ix.full_name).simple for ix in indexes},
        pip_conf=pip_conf(replica.url, first.full_name, mode="strict", ca_path=ca_path) if first else None,
    )


def registry_outputs(config: StackConfig) -> RegistryOutputs:
    """Pure: the URLs and client configuration of every declared index and replica."""
    url = config.server_url
    ca_path = config.tls.client_ca_path if config.tls is not None and config.ca_bundle is not None else None
    sections: dict[str, tuple[str, str]] = {}
    twine: dict[str, str] = {}
    taken: list[str] = []
    stages = [ix for ix in config.indexes if ix.type == "stage"]
    for ix in stages:  # upload targets: a .pypirc section and a twine command each
        section = pypirc_section_name(ix.full_name, taken)
        taken.append(ix.name)
        uploader = next((u for u in ix.uploaders if not u.startswith(":")), ix.owner)
        sections[section] = (ix.full_name, uploader)
        twine[ix.full_name] = twine_command(url, ix.full_name, uploader, ca_path=ca_path)
    first = next(iter(stages or config.indexes), None)
    return RegistryOutputs(
        server_url=url,
        indexes={ix.full_name: _index_outputs(url, ix, ca_path) for ix in config.indexes},
        pypirc=pypirc(url, sections, ca_path=ca_path) if sections else "",
        twine_commands=twine,
        pip_conf=pip_conf(url, first.full_name, mode="strict", ca_path=ca_path) if first is not None else None,
        replicas={r.name: _replica_outputs(r, config.indexes, first, ca_path) for r in config.replicas},
        ca_bundle=config.ca_bundle,
    )
