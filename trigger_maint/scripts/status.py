"""The status script: every measurement of one host in one round trip."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from .. import backups, hostpaths, transactions
from ..checks import DEFAULT_SECRETS, BackupFolder, StatusFacts, tls_target
from ..config import Settings
from ..hostpaths import HostPaths
from ..installation import from_result
from .backups import folder
from .base import InstallInputs, Script, install_inputs


@dataclass(frozen=True)
class StatusInputs:
    install: InstallInputs
    folders: tuple[HostPaths, ...]  # candidate backup folders (see backups.backup_dir_for)
    tls_host: str  # "" = no live certificate check
    tls_port: int
    default_secrets: tuple  # (key, shell globs of published defaults)
    sidecar_pattern: str = hostpaths.SIDECAR
    tx_pattern: str = hostpaths.TRANSACTION


def status_inputs(s: Settings) -> StatusInputs:
    """The status inputs: the configured backup folder, else the two it may be."""
    if s.backup_dir:
        dirs = (s.backup_dir,)
    else:
        dirs = (hostpaths.install_backup_dir(s.path), backups.DEFAULT_DIR)
    host, port = tls_target(s.domain)
    return StatusInputs(install=install_inputs(s), folders=tuple(HostPaths(d) for d in dirs),
                        tls_host=host, tls_port=port, default_secrets=DEFAULT_SECRETS)


def status_facts(raw: dict, inputs: StatusInputs) -> StatusFacts:
    measured = {f.get("dir"): f for f in raw.get("folders") or [] if isinstance(f, dict)}
    folders = tuple(BackupFolder(paths, folder(measured.get(paths.backup_dir) or {},
                                               paths.backup_dir),
                                 transactions.summary((measured.get(paths.backup_dir) or {})
                                                      .get("transactions")))
                    for paths in inputs.folders)
    now = datetime.fromtimestamp(raw["now"], UTC) if isinstance(raw.get("now"), int) \
        else datetime.now(UTC)
    return StatusFacts(now=now, installation=from_result(raw, inputs.install.layouts), raw=raw,
                       folders=folders)


STATUS = Script("status", StatusInputs, status_facts, requires=("now", "layout", "folders"))
