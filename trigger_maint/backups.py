"""Database backups on a host: names, the sidecar JSON, ordering and what makes one trusted.

A backup is `trigger-db-<stamp>.sql.gz` plus its sidecar `trigger-db-<stamp>.json`, written
last: a dump without a sidecar is an interrupted run and is never trusted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime

STAMP_FORMAT = "%Y%m%d-%H%M%S"
STAMP_RE = r"\d{8}-\d{6}"
# (prefix, suffix) of every file a backup consists of; the scripts build names from these.
NAMES = {
    "dump": ("trigger-db-", ".sql.gz"),
    "sidecar": ("trigger-db-", ".json"),
    "files": ("trigger-files-", ".tar.gz"),
    "volume": ("trigger-volume-", ".tar.gz"),  # trigger-volume-<stamp>-<volume>.tar.gz
}
DUMP_RE = re.compile(rf"^trigger-db-({STAMP_RE})\.sql\.gz$")
SIDECAR_RE = re.compile(rf"^trigger-db-({STAMP_RE})\.json$")

# The smallest believable pg_dumpall: roles, template1 and postgres of an empty cluster
# already take more than this.
MIN_DUMP_BYTES = 1024
# A plain-text dump holds the rows without tuple headers, indexes or free space, so it can be
# much smaller than the tables on disk, but not this many times smaller.
MAX_SHRINK = 50
# Checks every verified backup passed; --verify-restore adds RESTORE_CHECKS.
BASIC_CHECKS = ("gzip_intact", "complete", "rows_match", "size_plausible")
RESTORE_CHECKS = ("restore_rows", "restore_migrations")


def name(kind: str, stamp: str, volume: str = "") -> str:
    """The file name of one part of the backup taken at `stamp`."""
    prefix, suffix = NAMES[kind]
    return f"{prefix}{stamp}{'-' + volume if volume else ''}{suffix}"


def stamp_of(text: str) -> str | None:
    """The stamp a user meant: a stamp, a dump name or a sidecar name (None if neither)."""
    text = text.strip().rsplit("/", 1)[-1]
    if re.fullmatch(STAMP_RE, text):
        return text
    match = DUMP_RE.match(text) or SIDECAR_RE.match(text)
    return match.group(1) if match else None


def size_plausible(dump_bytes: int, table_bytes: int) -> bool:
    """Whether an uncompressed dump of `dump_bytes` can hold tables of `table_bytes` on disk."""
    return dump_bytes >= MIN_DUMP_BYTES and dump_bytes * MAX_SHRINK >= table_bytes


def parse_utc(text: str | None) -> datetime | None:
    """An ISO 8601 time as the sidecar writes it ("...Z"); None when absent or bad."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass(frozen=True)
class Backup:
    """One backup as its sidecar describes it, and whether the host still holds it intact."""

    name: str  # the dump's file name
    path: str  # the dump's path on the host
    stamp: str
    size: int
    sha256: str
    started_at: datetime | None
    finished_at: datetime | None
    postgres_version: str
    trigger_version: str
    layout: str
    images: dict
    row_counts: dict
    migrations: int | None
    verified: bool
    checks: dict
    files_archive: str
    volumes: tuple[str, ...]
    problems: tuple[str, ...] = field(default=())  # why it cannot be trusted; empty = fine

    @property
    def trusted(self) -> bool:
        """Verified when made, and still on the host as it was written."""
        return self.verified and not self.problems

    @property
    def restore_tested(self) -> bool:
        return all(self.checks.get(check) is True for check in RESTORE_CHECKS)


def from_sidecar(data: dict, directory: str, on_disk: int | None = None,
                 problems: tuple[str, ...] = ()) -> Backup:
    """A Backup from sidecar JSON; `on_disk` is the dump's size on the host (None = gone)."""
    file = str(data.get("file") or "")
    stamp = stamp_of(file) or ""
    checks = data.get("checks") if isinstance(data.get("checks"), dict) else {}
    found = list(problems)
    if not stamp:
        found.append(f"sidecar names no backup file ({file!r})")
    size = data.get("size") if isinstance(data.get("size"), int) else 0
    if on_disk is None:
        found.append("the dump file is missing")
    elif on_disk != size:
        found.append(f"the dump is {on_disk} bytes, the sidecar says {size}")
    failed = sorted(k for k, ok in checks.items() if ok is not True)
    if failed:
        found.append("failed checks: " + ", ".join(failed))
    missing = [k for k in BASIC_CHECKS if k not in checks]
    if missing:
        found.append("not checked: " + ", ".join(missing))
    migrations = data.get("migrations")
    return Backup(
        name=file,
        path=f"{directory.rstrip('/')}/{file}",
        stamp=stamp,
        size=size,
        sha256=str(data.get("sha256") or ""),
        started_at=parse_utc(data.get("started_at")),
        finished_at=parse_utc(data.get("finished_at")),
        postgres_version=str(data.get("postgres_version") or ""),
        trigger_version=str(data.get("trigger_version") or ""),
        layout=str(data.get("layout") or ""),
        images=dict(data.get("images") or {}),
        row_counts=dict(data.get("row_counts") or {}),
        migrations=migrations if isinstance(migrations, int) else None,
        verified=data.get("verified") is True,
        checks=dict(checks),
        files_archive=str(data.get("files_archive") or ""),
        volumes=tuple(data.get("volumes") or ()),
        problems=tuple(found),
    )


def listing(sidecars: list[dict], sizes: dict, directory: str) -> list[Backup]:
    """Backups from the `backups` script's result, newest first.

    `sidecars` holds each sidecar's name and text, `sizes` every file in the folder with its
    size. A sidecar that does not parse still shows up, as untrusted.
    """
    found = []
    for entry in sidecars:
        stamp = stamp_of(entry.get("sidecar", "")) or ""
        if not stamp:
            continue
        problems: tuple[str, ...] = ()
        try:
            data = json.loads(entry.get("text") or "")
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            data, problems = {"file": name("dump", stamp)}, (f"unreadable sidecar ({exc})",)
        if stamp_of(str(data.get("file") or "")) != stamp:
            problems += (f"{entry['sidecar']} describes {data.get('file')!r}",)
            data = {"file": name("dump", stamp)}
        found.append(from_sidecar(data, directory, sizes.get(data.get("file")), problems))
    return newest_first(found)


def orphans(backups: list[Backup], sizes: dict) -> list[str]:
    """Dumps in the folder that no sidecar describes (a run cut off before it finished)."""
    described = {b.name for b in backups}
    return sorted(f for f in sizes if DUMP_RE.match(f) and f not in described)


def newest_first(backups: list[Backup]) -> list[Backup]:
    """Backups sorted by their stamp (names sort by time), newest first."""
    return sorted(backups, key=lambda b: b.stamp, reverse=True)


def newest_trusted(backups: list[Backup]) -> Backup | None:
    """The newest backup that was verified and is still intact on the host."""
    return next((b for b in newest_first(backups) if b.trusted), None)


def find(backups: list[Backup], wanted: str) -> Backup | None:
    """The backup a user named by stamp, dump name or sidecar name."""
    stamp = stamp_of(wanted)
    return next((b for b in backups if stamp and b.stamp == stamp), None)


def human_size(size: int) -> str:
    """Bytes as people read them: 512 B, 3.4 MB, 1.2 GB."""
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def summary(backup: Backup) -> str:
    """When it was taken, its size and the Trigger.dev version it belongs to."""
    when = backup.finished_at.strftime("%Y-%m-%d %H:%M:%S UTC") if backup.finished_at else "?"
    version = f"v{backup.trigger_version}" if backup.trigger_version else "version unknown"
    return f"{when}, {human_size(backup.size)}, {version}"


def describe(backup: Backup) -> str:
    """One line per backup for people: name, time, size, version, verified or not."""
    if backup.trusted:
        state = "verified, restore-tested" if backup.restore_tested else "verified"
    else:
        state = "NOT TRUSTED: " + ("; ".join(backup.problems) or "not verified")
    return f"{backup.name}  {summary(backup)}  {state}"
