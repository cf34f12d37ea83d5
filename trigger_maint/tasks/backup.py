"""Phase 3: verified database backups, the list of them, their download, and restore."""

from __future__ import annotations

import filecmp
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .. import backups
from ..backups import Backup
from ..errors import ConfigError, OperationError, UnsafeError
from ..output import emit
from .common import phase_task, session_for
from .preflight import run_preflight

WINDOW = 8 * 1024 * 1024  # bytes asked for ahead of the writer while downloading: the memory bound
CHUNK = 32 * 1024  # one SFTP read request (the largest paramiko sends)


@dataclass(frozen=True)
class Listing:
    """What the backup folder on a host holds."""

    dir: str
    backups: list[Backup]  # newest first
    orphans: list[str]  # dumps without a sidecar
    leftovers: list[str]  # work folders of runs that were killed
    free_bytes: int | None


@dataclass(frozen=True)
class Restore:
    """A restore: what was put in place, and the safety backup taken just before."""

    restored: Backup
    safety: Backup | None  # None under --dry-run
    left_aside: tuple[str, ...]  # previous databases that could not be dropped afterwards


def backup_context(session) -> dict:
    """What the backup and restore scripts need beyond the installation."""
    version = run_preflight(session).installation.version
    return {
        "names": backups.NAMES,
        "min_dump_bytes": backups.MIN_DUMP_BYTES,
        "max_shrink": backups.MAX_SHRINK,
        # leave the script time to clean up and report before the SSH command times out
        "dump_timeout": max(60, session.settings.command_timeout - 60),
        "trigger_version": (version.version if version else None) or "",
    }


def _made(sidecar: dict, directory: str) -> Backup:
    return backups.from_sidecar(sidecar, directory, sidecar.get("size"))


def run_backup(session, verify_restore: bool = False, volumes: bool = False) -> Backup | None:
    """Make a verified backup on the session's host (None under --dry-run)."""
    result = session.run("backup", changes=True, verify_restore=verify_restore,
                         volumes=volumes, **backup_context(session))
    if result is None:
        return None
    made = _made(result["backup"], result["dir"])
    session.results["backup"] = made
    return made


def list_backups(session) -> Listing:
    """The backup folder's contents (read-only)."""
    result = session.run("backups", names=backups.NAMES)
    sizes = result.get("files") or {}
    found = backups.listing(result.get("sidecars") or [], sizes, result["dir"])
    return Listing(dir=result["dir"], backups=found, orphans=backups.orphans(found, sizes),
                   leftovers=list(result.get("leftovers") or []),
                   free_bytes=result.get("free_bytes"))


def run_backups(session) -> list[Backup]:
    """The backups on the session's host, newest first."""
    return list_backups(session).backups


def run_restore(session, name: str | None = None, yes: bool = False) -> Restore:
    """Restore backup `name` (default: the newest trusted one) into the live installation."""
    listing = list_backups(session)
    label = session.label
    if name:
        chosen = backups.find(listing.backups, name)
        if chosen is None:
            raise ConfigError(f"{label}: no backup {name!r} in {listing.dir} "
                              "(`trigger-maint backups` lists them)")
    else:
        chosen = backups.newest_trusted(listing.backups)
        if chosen is None:
            raise UnsafeError(f"{label}: no verified backup in {listing.dir} to restore")
    if not chosen.trusted:
        reasons = "; ".join(chosen.problems) or "not verified"
        raise UnsafeError(f"{label}: refusing to restore {chosen.name}: {reasons}")
    if not yes and not session.dry_run:
        raise UnsafeError(f"{label}: restore replaces the live database with {chosen.name} "
                          f"(taken {backups.summary(chosen)}); add --yes to do it")
    result = session.run("restore", changes=True, source=chosen.name, sha256=chosen.sha256,
                         **backup_context(session))
    if result is None:
        return Restore(restored=chosen, safety=None, left_aside=())
    done = Restore(restored=chosen, safety=_made(result["safety"], listing.dir),
                   left_aside=tuple(result.get("left_aside") or ()))
    session.results["restore"] = done
    return done


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(sftp, remote: str, local: Path, sha256: str = "") -> bool:
    """Copy `remote` to `local` through SFTP with bounded memory; False if already there.

    Data goes to a hidden temporary file, is checked against `sha256` when given, and is
    linked into place; an existing file is never replaced.
    """
    size = sftp.stat(remote).st_size
    if sha256 and local.exists() and local.stat().st_size == size and _sha256(local) == sha256:
        return False
    tmp = local.with_name(f".{local.name}.partial")
    digest = hashlib.sha256()
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out, sftp.open(remote, "rb") as src:
            for start in range(0, size, WINDOW):
                end = min(start + WINDOW, size)
                chunks = [(o, min(CHUNK, end - o)) for o in range(start, end, CHUNK)]
                for block in src.readv(chunks):
                    digest.update(block)
                    out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if os.path.getsize(tmp) != size:
            raise OperationError(f"downloading {remote} ended after {os.path.getsize(tmp)} of "
                                 f"{size} bytes")
        if sha256 and digest.hexdigest() != sha256:
            raise OperationError(f"{remote} arrived with SHA-256 {digest.hexdigest()}, the "
                                 f"sidecar says {sha256}; the copy was deleted")
        try:
            os.link(tmp, local)
        except FileExistsError:
            if filecmp.cmp(tmp, local, shallow=False):
                return False
            raise OperationError(f"{local} already exists and differs from {remote}; "
                                 "not replacing it") from None
    finally:
        tmp.unlink(missing_ok=True)
    return True


def download_backup(session, backup: Backup, folder: str) -> list[str]:
    """Copy every file of `backup` to the local `folder`; the local paths."""
    target = Path(folder).expanduser()
    target.mkdir(parents=True, exist_ok=True)
    directory = backup.path.rsplit("/", 1)[0]
    parts = [(backup.name, backup.sha256), (backup.files_archive, ""),
             *((volume, "") for volume in backup.volumes),
             (backups.name("sidecar", backup.stamp), "")]
    sftp = session.connection.sftp()
    copied = []
    for part, sha256 in parts:
        if not part:
            continue
        if not session.json_output:
            session.print(f"{session.label}: downloading {part}")
        fetch(sftp, f"{directory}/{part}", target / part, sha256)
        copied.append(str(target / part))
    return copied


def describe_made(backup: Backup) -> str:
    """The backup just made, for people."""
    checks = ", ".join(k for k, ok in backup.checks.items() if ok)
    rows = sum(v for v in backup.row_counts.values() if isinstance(v, int))
    lines = [
        f"backup      {backup.path} ({backups.human_size(backup.size)}, sha256 "
        f"{backup.sha256[:16]}...)",
        f"verified    {'yes' if backup.verified else 'NO'} ({checks})",
        f"contents    {len(backup.row_counts)} tables, {rows} rows, {backup.migrations} "
        f"migrations; PostgreSQL {backup.postgres_version}, Trigger.dev "
        f"{'v' + backup.trigger_version if backup.trigger_version else 'version unknown'}",
        f"also        {', '.join([backup.files_archive, *backup.volumes])}",
    ]
    return "\n".join(lines)


@phase_task(help={
    "verify_restore": "also restore the dump into a throwaway database and compare row counts",
    "volumes": "also archive the layout's named volumes (v4: shared, with the worker token)",
    "download": "copy the new backup into this local folder, checked against its SHA-256",
})
def backup(c, verify_restore=False, volumes=False, download=None, dry_run=False, json=False):
    """Back up the database (verified, mode 0600), .env and compose files; never a half file."""
    session = session_for(c, dry_run, json)
    made = run_backup(session, verify_restore=verify_restore, volumes=volumes)
    if made is None:
        emit(session, {"host": session.label, "dry_run": True},
             f"{session.label}: dry run, no backup made")
        return
    copied = download_backup(session, made, download) if download else []
    text = describe_made(made)
    if copied:
        text += f"\ndownloaded  {', '.join(copied)}"
    emit(session, {"host": session.label, "backup": made, "downloaded": copied}, text)


@phase_task(name="backups")
def list_task(c, dry_run=False, json=False):
    """List the backups on the host: time, size, verified or not, Trigger.dev version."""
    session = session_for(c, dry_run, json)
    found = list_backups(session)
    lines = [backups.describe(b) for b in found.backups] or [f"no backups in {found.dir}"]
    lines += [f"{name}  NO SIDECAR (interrupted run)" for name in found.orphans]
    lines += [f"{name}/  work folder of a killed run" for name in found.leftovers]
    if found.free_bytes is not None:
        lines.append(f"{backups.human_size(found.free_bytes)} free in {found.dir}")
    emit(session, {"host": session.label, **vars(found)}, "\n".join(lines))


@phase_task(help={
    "name": "the backup to restore (stamp or file name); default the newest verified one",
    "yes": "really replace the live database (a safety backup is taken first)",
})
def restore(c, name=None, yes=False, dry_run=False, json=False):
    """Restore a backup into the live database: safety backup first, put back on failure."""
    session = session_for(c, dry_run, json)
    done = run_restore(session, name=name, yes=yes)
    if done.safety is None:
        emit(session, {"host": session.label, "dry_run": True, "would_restore": done.restored},
             f"{session.label}: dry run, would restore {backups.describe(done.restored)}")
        return
    text = (f"restored    {done.restored.name}\n"
            f"safety      {done.safety.path} (the database as it was before)")
    if done.left_aside:
        text += f"\nleft aside  {', '.join(done.left_aside)} (could not drop them; drop by hand)"
    emit(session, {"host": session.label, **vars(done)}, text)
