"""The preflight script: the host, Docker, Compose, the installation and its backup folder."""

from __future__ import annotations

from dataclasses import dataclass

from .. import hostpaths
from ..backups import backup_dir_for
from ..installation import Preflight, from_result
from .base import InstallInputs, Script, field


@dataclass(frozen=True)
class PreflightInputs:
    install: InstallInputs
    host: str  # how messages name the host
    backup_dir: str  # configured ("" = find it)
    dump_pattern: str = hostpaths.DUMP
    install_backups: str = hostpaths.INSTALL_BACKUPS


def preflight(raw: dict, inputs: PreflightInputs) -> Preflight:
    installation = from_result(raw, inputs.install.layouts)
    dumps = field(raw, "install_dumps", int, 0)
    directory, why = backup_dir_for(inputs.backup_dir, installation.layout.name,
                                    installation.path, dumps)
    return Preflight(
        host=inputs.host,
        hostname=str(raw.get("hostname") or ""),
        os=str(raw.get("os") or ""),
        kernel=str(raw.get("kernel") or ""),
        boot_id=str(raw.get("boot_id") or ""),
        docker_version=str(raw.get("docker_version") or ""),
        compose_version=str(raw.get("compose_version") or ""),
        docker_root=str(raw.get("docker_root") or ""),
        zstd=raw.get("zstd") is True,
        installation=installation,
        install_dumps=dumps,
        backup_dir=directory,
        backup_dir_reason=why,
    )


PREFLIGHT = Script("preflight", PreflightInputs, preflight,
                   requires=("layout", "path", "docker_version", "compose_version"))
