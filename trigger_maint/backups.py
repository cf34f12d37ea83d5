"""Database backups on a host: what the backup folder holds, which backups count, how they
rotate, and which folder is the backup folder. Pure functions over what a script listed.

A backup made by trigger-maint is `trigger-db-<stamp>.sql.gz` (or `.sql.zst`) plus its
sidecar `trigger-db-<stamp>.json`, written last, that records how it was verified. A dump
with no sidecar was made outside trigger-maint (the runbook's nightly cron names its dumps
`trigger-db-YYYYMMDD-HHMM.sql.gz`); `backups --verify` inspects such a dump and records the
result in a sidecar of its own, after which it counts as an inspected backup.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import hostpaths, units
from .hostpaths import DUMP_RE, SIDECAR_RE, stamp_of

DEFAULT_DIR = "/var/backups/trigger"  # the backup folder when none is configured or found
# The smallest believable pg_dumpall: roles, template1 and postgres of an empty cluster
# already take more than this.
MIN_DUMP_BYTES = 1024
# A plain-text dump holds the rows without tuple headers, indexes or free space, so it can be
# much smaller than the tables on disk, but not this many times smaller.
MAX_SHRINK = 50
# Checks every backup trigger-maint made passed; --verify-restore adds RESTORE_CHECKS.
MADE_CHECKS = ("intact", "complete", "rows_match", "size_plausible")
RESTORE_CHECKS = ("restore_rows", "restore_migrations")
# Checks an inspection of a dump made elsewhere runs (no live rows to compare with).
INSPECT_CHECKS = ("intact", "complete", "size_plausible", "has_database")
LEGACY_CHECKS = {"gzip_intact": "intact"}  # names older sidecars used
MADE, EXTERNAL = "trigger-maint", "external"  # who made a dump


@dataclass(frozen=True)
class FileEntry:
    """One regular file of the backup folder."""

    name: str
    size: int
    mtime: datetime


@dataclass(frozen=True)
class Folder:
    """What the backup folder holds, as a listing script saw it."""

    dir: str
    files: tuple[FileEntry, ...]
    sidecars: dict  # sidecar name -> its text
    leftovers: tuple[str, ...] = ()  # work folders of runs that were killed
    free_bytes: int | None = None
    exists: bool = True


@dataclass(frozen=True)
class Backup:
    """One database dump in the backup folder and what is known about it."""

    name: str  # the dump's file name
    path: str
    stamp: str  # from the name: YYYYmmdd-HHMMSS (trigger-maint) or YYYYmmdd-HHMM (runbook)
    size: int  # bytes on disk
    mtime: datetime
    origin: str  # MADE or EXTERNAL
    purpose: str = ""  # trigger-maint's: backup, guard (before an update), safety
    sha256: str = ""
    finished_at: datetime | None = None
    postgres_version: str = ""
    trigger_version: str = ""
    layout: str = ""
    images: dict = field(default_factory=dict)
    row_counts: dict = field(default_factory=dict)
    databases: tuple[str, ...] = ()
    migrations: int | None = None
    checks: dict = field(default_factory=dict)
    recorded: bool = False  # a sidecar describes it (made, or inspected)
    files_archive: str = ""
    volumes: tuple[str, ...] = ()
    problems: tuple[str, ...] = ()  # why it cannot be trusted (empty: it can, or unknown)

    JSON_PROPERTIES = ("verified", "inspected", "usable", "restore_tested", "compression")

    @property
    def taken_at(self) -> datetime:
        """When the dump was finished: its record's time, else the file's."""
        return self.finished_at or self.mtime

    @property
    def inspected(self) -> bool:
        """A dump made elsewhere whose inspection passed."""
        return self.origin == EXTERNAL and self.recorded and not self.problems

    @property
    def verified(self) -> bool:
        """Made and verified by trigger-maint, and still as it was written."""
        return self.origin == MADE and self.recorded and not self.problems

    @property
    def usable(self) -> bool:
        """Verified, or inspected: a backup that counts."""
        return self.verified or self.inspected

    @property
    def known_bad(self) -> bool:
        """Checked, and found wanting (or damaged since)."""
        return bool(self.problems)

    @property
    def restore_tested(self) -> bool:
        return all(self.checks.get(check) is True for check in RESTORE_CHECKS)

    @property
    def compression(self) -> str:
        return "zstd" if self.name.endswith(".zst") else "gzip"

    def age(self, now: datetime) -> timedelta:
        return now - self.taken_at


def parse_utc(text) -> datetime | None:
    """An ISO 8601 time as a sidecar writes it ("...Z"); None when absent or bad."""
    if not isinstance(text, str) or not text:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _checks(data: dict) -> dict:
    raw = data.get("checks") if isinstance(data.get("checks"), dict) else {}
    return {LEGACY_CHECKS.get(k, k): v for k, v in raw.items()}


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _problems(data: dict, entry: FileEntry, checks: dict, origin: str) -> list[str]:
    found = []
    if data.get("size") != entry.size:
        found.append(f"the dump is {entry.size} bytes, its record says {data.get('size')}")
    failed = sorted(k for k, ok in checks.items() if ok is not True)
    if failed:
        found.append("failed checks: " + ", ".join(failed))
    wanted = MADE_CHECKS if origin == MADE else INSPECT_CHECKS
    missing = [k for k in wanted if k not in checks]
    if missing:
        found.append("not checked: " + ", ".join(missing))
    if origin == MADE and data.get("verified") is not True:
        found.append("not verified")
    mtime = data.get("mtime")
    if origin == EXTERNAL and isinstance(mtime, int) and mtime != int(entry.mtime.timestamp()):
        found.append("the file changed since it was inspected")
    return found


def from_record(entry: FileEntry, directory: str, text: str | None) -> Backup:
    """A Backup from one dump file and its sidecar's text (None: there is none)."""
    stamp = stamp_of(entry.name) or ""
    base = dict(name=entry.name, path=f"{directory.rstrip('/')}/{entry.name}", stamp=stamp,
                size=entry.size, mtime=entry.mtime)
    if text is None:
        return Backup(origin=EXTERNAL, **base)
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return Backup(origin=EXTERNAL, recorded=True, problems=(f"unreadable sidecar ({exc})",),
                      **base)
    origin = EXTERNAL if data.get("origin") == EXTERNAL else MADE
    checks = _checks(data)
    problems = _problems(data, entry, checks, origin)
    if data.get("file") != entry.name:
        problems.insert(0, f"its sidecar describes {data.get('file')!r}")
    return Backup(
        origin=origin,
        purpose=str(data.get("purpose") or ("backup" if origin == MADE else "")),
        sha256=str(data.get("sha256") or ""),
        finished_at=parse_utc(data.get("finished_at")),
        postgres_version=str(data.get("postgres_version") or ""),
        trigger_version=str(data.get("trigger_version") or ""),
        layout=str(data.get("layout") or ""),
        images=dict(data.get("images") or {}),
        row_counts=dict(data.get("row_counts") or {}),
        databases=tuple(d for d in data.get("databases") or () if isinstance(d, str)),
        migrations=_int(data.get("migrations")),
        checks=checks,
        recorded=True,
        files_archive=str(data.get("files_archive") or ""),
        volumes=tuple(v for v in data.get("volumes") or () if isinstance(v, str)),
        problems=tuple(problems),
        **base,
    )


def in_folder(folder: Folder) -> list[Backup]:
    """Every dump of the folder, newest first."""
    found = []
    for entry in folder.files:
        if DUMP_RE.match(entry.name):
            sidecar = hostpaths.sidecar_name(stamp_of(entry.name))
            found.append(from_record(entry, folder.dir, folder.sidecars.get(sidecar)))
    return newest_first(found)


def stray_sidecars(folder: Folder) -> list[str]:
    """Sidecars whose dump is gone."""
    dumps = {stamp_of(e.name) for e in folder.files if DUMP_RE.match(e.name)}
    return sorted(n for n in folder.sidecars if SIDECAR_RE.match(n) and stamp_of(n) not in dumps)


def foreign_files(folder: Folder) -> list[str]:
    """Files that are not trigger-maint's nor the runbook's: never touched."""
    return sorted(e.name for e in folder.files if not stamp_of(e.name))


def newest_first(found: list[Backup]) -> list[Backup]:
    """Backups by the time they were taken, newest first."""
    return sorted(found, key=lambda b: (b.taken_at, b.stamp), reverse=True)


RESTORABLE = ("backup", "guard", "")  # what a restore takes by default (not safety dumps)


def newest_usable(found: list[Backup], purposes: tuple[str, ...] | None = None) -> Backup | None:
    """The newest backup that counts (verified or inspected, intact), of `purposes` when
    given (a safety dump holds a replaced database beside the live one)."""
    return next((b for b in newest_first(found) if b.usable
                 and (purposes is None or b.purpose in purposes)), None)


def find(found: list[Backup], wanted: str) -> Backup | None:
    """The backup a user named by stamp, dump name or sidecar name."""
    text = wanted.strip().rsplit("/", 1)[-1]
    stamp = text if DUMP_RE.match(hostpaths.dump_name(text)) else stamp_of(text)
    return next((b for b in found if stamp and b.stamp == stamp), None)


def backup_dir_for(configured: str, layout: str, path: str, install_dumps: int) -> tuple[str, str]:
    """The backup folder and why: the configured one; the runbook layout's <path>/backups;
    <path>/backups when it holds trigger-db dumps; else DEFAULT_DIR."""
    if configured:
        return configured, "configured (trigger.backup_dir)"
    own = hostpaths.install_backup_dir(path)
    if layout == "runbook":
        return own, "the runbook's backup folder"
    if install_dumps:
        return own, f"found {install_dumps} trigger-db dump(s) there"
    return DEFAULT_DIR, "the default"


# ---- rotation -------------------------------------------------------------------------

@dataclass(frozen=True)
class BackupSet:
    """The files of one backup: its dump, sidecar and archives (all share the stamp)."""

    stamp: str
    files: dict  # name -> size
    backup: Backup | None  # None: archives whose dump is gone


@dataclass(frozen=True)
class Rotation:
    """What rotation removes and keeps, and why it may not go on."""

    remove: tuple[BackupSet, ...]
    kept: tuple[str, ...]  # one line per set kept, with the reason
    refused: str = ""  # why nothing is rotated ("" = it may)
    inspect_first: str = ""  # the newest dump, not yet checked: inspect before rotating
    newest: str = ""  # the newest dump when listed: rotation stops if another appears


def backup_sets(folder: Folder) -> list[BackupSet]:
    """Every backup set of the folder, newest first; foreign files belong to none."""
    dumps = {b.stamp: b for b in in_folder(folder)}
    by_stamp: dict[str, dict] = {}
    for entry in folder.files:
        stamp = stamp_of(entry.name)
        if stamp:
            by_stamp.setdefault(stamp, {})[entry.name] = entry.size
    sets = [BackupSet(stamp, files, dumps.get(stamp)) for stamp, files in by_stamp.items()]
    far_past = datetime.min.replace(tzinfo=UTC)
    return sorted(sets, key=lambda s: (s.backup.taken_at if s.backup else far_past, s.stamp),
                  reverse=True)


def rotation(folder: Folder, keep: int, protected: frozenset[str] = frozenset()) -> Rotation:
    """Keep the newest `keep` dumps of the folder whoever made them; never the newest, never
    after a newest that failed its checks, never a dump in `protected` (a rollback point or
    a running transaction needs it); foreign files are never part of a set."""
    sets = backup_sets(folder)
    with_dump = [s for s in sets if s.backup is not None]
    if not with_dump:
        return Rotation((), ())
    newest = with_dump[0].backup
    if newest.known_bad:
        return Rotation((), (), refused=f"the newest backup {newest.name} failed its checks "
                                        f"({'; '.join(newest.problems)})", newest=newest.name)
    inspect_first = "" if newest.usable else newest.name
    kept_stamps = {s.stamp for s in with_dump[:keep]}
    kept, remove = [], []
    for backup_set in sets:
        reason = ""
        if backup_set.stamp in kept_stamps:
            reason = f"among the newest {keep}"
        elif set(backup_set.files) & protected:
            reason = "a rollback point or a running change needs it"
        elif backup_set.backup is None and stamp_time(backup_set.stamp) > newest.taken_at:
            reason = "newer than the newest dump"
        if reason:
            kept.append(f"backup {backup_set.stamp}: kept ({reason})")
        else:
            remove.append(backup_set)
    return Rotation(tuple(remove), tuple(kept), inspect_first=inspect_first, newest=newest.name)


def stamp_time(stamp: str) -> datetime:
    """The UTC time a stamp names (the runbook's stamps have no seconds)."""
    return datetime.strptime(stamp.ljust(15, "0"), hostpaths.STAMP_FORMAT).replace(tzinfo=UTC)


def removal_order(name: str) -> int:
    """Archives first, then the dump, the sidecar last: a cut-off run leaves a described set."""
    return 2 if name.endswith(".json") else 1 if ".sql." in name else 0


# ---- words ------------------------------------------------------------------------------

def state(backup: Backup) -> str:
    """Whether it counts, in a few words."""
    if backup.verified:
        return "verified, restore-tested" if backup.restore_tested else "verified"
    if backup.inspected:
        return "made outside trigger-maint, inspected"
    if backup.known_bad:
        return "NOT TRUSTED: " + "; ".join(backup.problems)
    return "made outside trigger-maint, not inspected (backups --verify)"


def summary(backup: Backup) -> str:
    """When it was taken, its size and the Trigger.dev version it belongs to."""
    when = backup.taken_at.strftime("%Y-%m-%d %H:%M UTC")
    version = f", v{backup.trigger_version}" if backup.trigger_version else ""
    return f"{when}, {units.size(backup.size)}{version}"


def describe(backup: Backup, now: datetime) -> str:
    """One line per backup for people: name, time, age, size, version, whether it counts."""
    purpose = f" ({backup.purpose})" if backup.purpose not in ("", "backup") else ""
    age = units.duration(backup.age(now).total_seconds())
    return f"{backup.name}{purpose}  {summary(backup)}, {age} ago  {state(backup)}"
