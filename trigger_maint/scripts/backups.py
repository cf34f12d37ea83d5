"""The backup scripts: make a verified backup, list the backup folder, inspect dumps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import backups, hostpaths
from ..backups import Backup, FileEntry, Folder
from ..installation import Preflight
from .base import InstallInputs, Script, field


@dataclass(frozen=True)
class DumpInputs:
    """What the dump library (templates/_dump.sh.j2) needs."""

    backup_dir: str
    compression: str  # gzip or zstd
    dump_timeout: int
    trigger_version: str  # recorded in the sidecar
    volumes: tuple[str, ...]  # the layout's named volumes (backed up on request)
    project: str  # compose project, to find those volumes
    names: dict  # hostpaths.NAMES
    min_dump_bytes: int = backups.MIN_DUMP_BYTES
    max_shrink: int = backups.MAX_SHRINK


def compression_for(setting: str, host_has_zstd: bool) -> str:
    """gzip or zstd: zstd when allowed and the host has it (auto), or when asked for."""
    if setting == "zstd" or (setting == "auto" and host_has_zstd):
        return "zstd"
    return "gzip"


def dump_inputs(pre: Preflight, compression_setting: str, dump_timeout: int) -> DumpInputs:
    """The dump inputs for the host preflight found."""
    layout = pre.installation.layout
    return DumpInputs(
        backup_dir=pre.backup_dir,
        compression=compression_for(compression_setting, pre.zstd),
        dump_timeout=dump_timeout,
        trigger_version=pre.installation.running or "",
        volumes=layout.volumes,
        project=layout.project,
        names=dict(hostpaths.NAMES),
    )


@dataclass(frozen=True)
class BackupInputs:
    install: InstallInputs
    dump: DumpInputs
    verify_restore: bool
    volumes: bool


def made_backup(sidecar_text: str, directory: str) -> Backup:
    """The Backup a script just made, from its sidecar."""
    data = json.loads(sidecar_text) if isinstance(sidecar_text, str) else sidecar_text
    entry = FileEntry(str(data.get("file") or ""), field(data, "size", int, 0),
                      backups.parse_utc(data.get("finished_at")) or datetime.now(UTC))
    return backups.from_record(entry, directory, json.dumps(data))


BACKUP = Script("backup", BackupInputs,
                lambda raw, inputs: made_backup(raw["backup"], raw["dir"]),
                requires=("backup", "dir"), changes=True)


@dataclass(frozen=True)
class ListInputs:
    backup_dir: str
    sidecar_pattern: str = hostpaths.SIDECAR


def folder(raw: dict, directory: str) -> Folder:
    """A Folder from the listing part of a script's result (templates/_folder.sh.j2)."""
    files = tuple(FileEntry(f["name"], int(f.get("size") or 0),
                            datetime.fromtimestamp(int(f.get("mtime") or 0), UTC))
                  for f in raw.get("files") or [] if isinstance(f, dict) and f.get("name"))
    sidecars = {s["name"]: s.get("text", "") for s in raw.get("sidecars") or []
                if isinstance(s, dict) and s.get("name")}
    return Folder(dir=directory, files=files, sidecars=sidecars,
                  leftovers=tuple(raw.get("leftovers") or ()),
                  free_bytes=field(raw, "free_bytes", int), exists=raw.get("exists", True) is True)


LIST = Script("backups", ListInputs, lambda raw, inputs: folder(raw, inputs.backup_dir),
              requires=("dir", "files", "sidecars"))


@dataclass(frozen=True)
class InspectInputs:
    install: InstallInputs
    dump: DumpInputs
    external: tuple[str, ...]  # dumps made elsewhere to inspect
    stamps: dict  # dump name -> stamp (their sidecars' names)
    own: tuple[str, ...]  # trigger-maint's dumps to re-hash


@dataclass(frozen=True)
class Inspection:
    """What backups --verify found: sidecars written, and own dumps' SHA-256 now."""

    inspected: dict  # dump name -> sidecar text written
    rehashed: dict  # dump name -> SHA-256 now


def inspection(raw: dict, inputs) -> Inspection:
    return Inspection(
        inspected={i["name"]: i.get("sidecar", "") for i in raw.get("inspected") or []},
        rehashed={i["name"]: i.get("sha256", "") for i in raw.get("rehashed") or []})


INSPECT = Script("backups-verify", InspectInputs, inspection,
                 requires=("inspected", "rehashed"), changes=True)
