"""Phase 3: verified database backups, the list of them (and the inspection of dumps made
elsewhere), their download, and restore."""

from __future__ import annotations

import filecmp
import hashlib
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from .. import backups, hostpaths, units
from ..backups import Backup, Folder
from ..confirm import UNATTENDED, Confirm, from_flags
from ..errors import CHECK_FAILED, ConfigError, OperationError, UnsafeError
from ..outcomes import Planned, RestoreResult, describe_restore, restore_result
from ..output import emit, plain
from ..plans import restore_plan, tx_id
from ..scripts.backups import (
    BACKUP,
    INSPECT,
    LIST,
    BackupInputs,
    InspectInputs,
    ListInputs,
    dump_inputs,
)
from ..scripts.base import install_inputs
from .change import budgets, carry_out, prepare, raise_for, report_change, settle_earlier
from .common import check_exit, phase_task, run_preflight, session_for

WINDOW = 8 * 1024 * 1024  # bytes asked for ahead of the writer while downloading: the memory bound
CHUNK = 32 * 1024  # one SFTP read request (the largest paramiko sends)


def run_backup(session, verify_restore: bool = False, volumes: bool = False) -> Backup | None:
    """Make a verified backup on the session's host (None under --dry-run)."""
    pre = run_preflight(session)
    s = session.settings
    made = session.run(BACKUP, BackupInputs(install_inputs(s), dump_inputs(
        pre, s.backup_compression, s.dump_timeout), verify_restore, volumes),
        timeout=s.dump_timeout + 300)
    if made is not None:
        session.outcomes["backup"] = made
    return made


def list_folder(session) -> Folder:
    """The backup folder's contents (read-only)."""
    return session.run(LIST, ListInputs(run_preflight(session).backup_dir))


def run_inspect(session, which: str | bool = True) -> list[Backup]:
    """Inspect dumps made outside trigger-maint (all not yet inspected, or the one named;
    a named one is inspected again) and re-hash trigger-maint's own against their records;
    the backups afterwards, newest first."""
    pre = run_preflight(session)
    found = backups.in_folder(list_folder(session))
    if isinstance(which, str) and which:
        chosen = backups.find(found, which)
        if chosen is None:
            raise ConfigError(f"{session.label}: no backup {which!r} in {pre.backup_dir} "
                              "(`trigger-maint backups` lists them)")
        found_now = [chosen]
    else:
        found_now = [b for b in found if b.origin == backups.MADE or not b.recorded]
    external = tuple(b.name for b in found_now if b.origin == backups.EXTERNAL)
    own = tuple(b.name for b in found_now if b.origin == backups.MADE)
    s = session.settings
    done = session.run(INSPECT, InspectInputs(
        install_inputs(s), dump_inputs(pre, s.backup_compression, s.dump_timeout), external,
        {name: hostpaths.stamp_of(name) for name in external}, own),
        timeout=s.dump_timeout + 300)
    after = backups.in_folder(list_folder(session))
    if done is None:
        return after
    sha = {b.name: b.sha256 for b in found}
    changed = [name for name, digest in done.rehashed.items() if digest != sha.get(name)]
    if changed:
        raise OperationError(f"{session.label}: {', '.join(changed)} no longer match the "
                             "SHA-256 recorded when they were made (damaged or replaced)")
    return after


@dataclass(frozen=True)
class Listing:
    """The backups, and what else the folder holds."""

    dir: str
    reason: str  # why this folder
    backups: list[Backup]
    foreign: list[str]  # files that are not backups: never touched
    leftovers: list[str]  # work folders of runs that were killed
    free_bytes: int | None


def describe_listing(listing: Listing, now: datetime) -> str:
    lines = [f"{listing.dir} ({listing.reason})"]
    lines += [f"  {backups.describe(b, now)}" for b in listing.backups] or ["  no backups"]
    lines += [f"  {name}  not a backup: left alone" for name in listing.foreign]
    lines += [f"  {name}/  work folder of a killed run" for name in listing.leftovers]
    if listing.free_bytes is not None:
        lines.append(f"{units.size(listing.free_bytes)} free")
    return "\n".join(lines)


def run_restore(session, name: str | None = None,
                confirm: Confirm = UNATTENDED) -> RestoreResult | Planned:
    """Restore backup `name` (default: the newest that counts) into the live installation, as
    a transaction the host owns: safety dump first, the live databases put back on failure."""
    prep = prepare(session, "restore")
    pre, facts = prep.pre, prep.facts
    earlier = settle_earlier(session, prep, "restore")
    if earlier.journal is not None:
        return _restored(session, earlier.journal,
                         str(earlier.journal.facts.get("restored") or ""), earlier.reported)
    found = backups.in_folder(facts.folder)
    chosen = backups.find(found, name) if name else backups.newest_usable(
        found, backups.RESTORABLE)
    if chosen is None:
        if name:
            raise ConfigError(f"{session.label}: no backup {name!r} in {pre.backup_dir} "
                              "(`trigger-maint backups` lists them)")
        raise UnsafeError(f"{session.label}: no verified backup in {pre.backup_dir} to restore")
    if not chosen.usable:
        raise UnsafeError(f"{session.label}: refusing to restore {chosen.name}: "
                          f"{backups.state(chosen)}")
    now = datetime.now(UTC)
    plan = restore_plan(tx_id(now, "restore"), chosen, budgets(session.settings),
                        facts={"backup": chosen.name, "taken": backups.summary(chosen)})
    what = f"replace the live database with {chosen.name} (taken {backups.summary(chosen)})"
    done = carry_out(session, prep, plan, what, confirm, earlier)
    return done if isinstance(done, Planned) else _restored(session, done, chosen.name)


def _restored(session, j, name, reported=False) -> RestoreResult:
    result = restore_result(j, name, reported)
    session.outcomes["restore"] = result
    raise_for(session, result.exit_code, result.message, result)
    return result


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch(sftp, remote: str, local: Path, sha256: str = "", progress=None) -> bool:
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
                if progress is not None:
                    progress(end, size)
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
             (hostpaths.sidecar_name(backup.stamp), "")]
    sftp = session.connection.sftp()
    copied = []
    for part, sha256 in parts:
        if not part:
            continue
        session.note(f"downloading {part}")
        fetch(sftp, f"{directory}/{part}", target / part, sha256, Pace(session, part))
        copied.append(str(target / part))
    return copied


class Pace:
    """Download progress at a steady pace: bytes, share and rate every few seconds."""

    EVERY = 5.0  # seconds between lines

    def __init__(self, session, name: str):
        self.session, self.name = session, name
        self.started = self.last = time.monotonic()

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.last < self.EVERY and done < total:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-6)
        self.session.note(f"{self.name}: {units.size(done)} of {units.size(total)} "
                          f"({done * 100 // max(total, 1)}%, {units.size(rate)}/s)")


def describe_made(backup: Backup) -> str:
    """The backup just made, for people."""
    checks = ", ".join(k for k, ok in backup.checks.items() if ok)
    rows = sum(v for v in backup.row_counts.values() if isinstance(v, int))
    return "\n".join([
        f"backup      {backup.path} ({units.size(backup.size)}, {backup.compression}, "
        f"sha256 {backup.sha256[:16]}...)",
        f"verified    {'yes' if backup.verified else 'NO'} ({checks})",
        f"contents    {len(backup.row_counts)} tables, {rows} rows, {backup.migrations} "
        f"migrations; PostgreSQL {backup.postgres_version}, Trigger.dev "
        f"{units.v(backup.trigger_version) or 'version unknown'}",
        f"also        {', '.join([backup.files_archive, *backup.volumes])}",
    ])


@phase_task(help={
    "verify_restore": "also restore the dump into a throwaway database and compare row counts",
    "volumes": "also archive the layout's named volumes (v4: shared, with the worker token)",
    "download": "copy the new backup into this local folder, checked against its SHA-256",
})
def backup(c, verify_restore=False, volumes=False, download=None, dry_run=False, json=False,
           scripts=False):
    """Back up the database, .env and compose files, verified in one pass.

    Mode 0600, never a half file; zstd when the host has it (trigger.backup_compression).
    """
    session = session_for(c, dry_run, json, scripts)
    made = run_backup(session, verify_restore=verify_restore, volumes=volumes)
    if made is None:
        emit(session, "backup", {"dry_run": True}, f"{session.label}: dry run, no backup made")
        return
    copied = download_backup(session, made, download) if download else []
    text = describe_made(made) + (f"\ndownloaded  {', '.join(copied)}" if copied else "")
    emit(session, "backup", {"backup": made, "downloaded": copied}, text)


@phase_task(name="backups", optional=["verify"], help={
    "verify": "inspect dumps made outside trigger-maint (all not yet inspected, or the one "
              "named) and record each result in a sidecar; re-hash trigger-maint's own",
})
def list_task(c, verify=None, dry_run=False, json=False, scripts=False):
    """List the backups, whoever made them; --verify inspects them.

    Each dump with its time, age, size and whether it was verified (made by trigger-maint)
    or inspected (made elsewhere, e.g. the runbook's cron). Exit 1 when --verify finds one
    that fails its checks."""
    session = session_for(c, dry_run, json, scripts)
    pre = run_preflight(session)
    if verify:
        found = run_inspect(session, verify)
        folder = list_folder(session)
    else:
        folder = list_folder(session)
        found = backups.in_folder(folder)
    listing = Listing(pre.backup_dir, pre.backup_dir_reason, found, backups.foreign_files(folder),
                      list(folder.leftovers), folder.free_bytes)
    bad = [b.name for b in found if b.known_bad]
    code = CHECK_FAILED if verify and bad else 0
    emit(session, "backups", plain(listing), describe_listing(listing, datetime.now(UTC)),
         exit_code=code)
    check_exit(session, code, f"failed their checks: {', '.join(bad)}")


@phase_task(help={
    "name": "the backup to restore (stamp or file name); default the newest that counts",
    "yes": "do it without asking (a safety backup is taken first)",
})
def restore(c, name=None, yes=False, dry_run=False, json=False, scripts=False):
    """Restore a backup into the live database.

    A transaction the host owns: safety backup first, the live databases put back on
    failure."""
    session = session_for(c, dry_run, json, scripts)
    report_change(session, "restore", lambda: run_restore(session, name=name,
                                                          confirm=from_flags(yes)),
                  describe_restore)
