"""Every path and file name trigger-maint uses on a host, in one place.

Scripts receive these as constants; none of them builds a name or a folder of its own.
The patterns are POSIX EREs that Python's `re` reads the same way, so the host's
re-checks and Python's listings agree by construction.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

LOCK_FILE = "/run/lock/trigger-maint.lock"  # the per-host lock of every changing script
STAMP_FORMAT = "%Y%m%d-%H%M%S"  # UTC time in the names trigger-maint gives
STAMP = "[0-9]{8}-[0-9]{6}"
# The runbook's cron names its dumps to the minute: trigger-db-YYYYMMDD-HHMM.sql.gz.
DUMP_STAMP = "[0-9]{8}-[0-9]{4}([0-9]{2})?"
COMPRESSIONS = {"gzip": "gz", "zstd": "zst"}  # backup_compression -> dump file extension
DUMP = f"^trigger-db-({DUMP_STAMP})\\.sql\\.(gz|zst)$"
SIDECAR = f"^trigger-db-({DUMP_STAMP})\\.json$"
FILES = f"^trigger-files-({STAMP})\\.tar\\.gz$"
VOLUME = f"^trigger-volume-({STAMP})-[A-Za-z0-9][A-Za-z0-9_.-]*\\.tar\\.gz$"
# Every file of a backup set: dump, sidecar, files archive, volume archives.
BACKUP_FILE = f"^trigger-(db|files|volume)-({DUMP_STAMP})(-[A-Za-z0-9][A-Za-z0-9_.-]*)?" \
              "\\.(sql\\.gz|sql\\.zst|json|tar\\.gz)$"
POINT = f"^{STAMP}(-[0-9]+)?$"  # a rollback point's folder
TRANSACTION = f"^{STAMP}-(update|rollback|restore)$"  # a transaction's folder
ROLLBACK_REPO = "trigger-maint/rollback"  # local tags that keep a rollback point's images
INSTALL_BACKUPS = "backups"  # the runbook's backup folder, inside the installation's folder

DUMP_RE, SIDECAR_RE, BACKUP_FILE_RE = re.compile(DUMP), re.compile(SIDECAR), re.compile(BACKUP_FILE)
POINT_RE, TRANSACTION_RE = re.compile(POINT), re.compile(TRANSACTION)


# How the files of a backup are named; the scripts fill in the same templates.
NAMES = {
    "dump": "trigger-db-@STAMP@.sql.@EXT@",
    "sidecar": "trigger-db-@STAMP@.json",
    "files": "trigger-files-@STAMP@.tar.gz",
    "volume": "trigger-volume-@STAMP@-@VOLUME@.tar.gz",
}


def name(kind: str, stamp: str, compression: str = "gzip", volume: str = "") -> str:
    """The file name of one part (dump, sidecar, files, volume) of the backup at `stamp`."""
    return (NAMES[kind].replace("@STAMP@", stamp).replace("@EXT@", COMPRESSIONS[compression])
            .replace("@VOLUME@", volume))


def dump_name(stamp: str, compression: str = "gzip") -> str:
    return name("dump", stamp, compression)


def sidecar_name(stamp: str) -> str:
    return name("sidecar", stamp)


def install_backup_dir(path: str) -> str:
    """The backup folder inside an installation's folder (the runbook's; also found)."""
    return f"{path.rstrip('/')}/{INSTALL_BACKUPS}"


def stamp_of(name: str) -> str | None:
    """The stamp of a backup file name (dump, sidecar, archive); None for any other name."""
    match = BACKUP_FILE_RE.match(name)
    return match.group(2) if match else None


def rollback_tag(point: str, service: str) -> str:
    """The local tag that keeps one service's image of a rollback point."""
    return f"{ROLLBACK_REPO}:{point}-{service}"


@dataclass(frozen=True)
class HostPaths:
    """The folders of one host, all under its backup folder."""

    backup_dir: str

    @property
    def rollback(self) -> str:
        """Rollback points: <stamp>/point.json, images.tsv, files/, state."""
        return f"{self.backup_dir}/rollback"

    @property
    def transactions(self) -> str:
        """Transactions: <id>/plan.json, runner.sh, journal.jsonl, progress.log; CURRENT."""
        return f"{self.backup_dir}/transactions"

    def point(self, name: str) -> str:
        return f"{self.rollback}/{name}"

    def transaction(self, tx: str) -> str:
        return f"{self.transactions}/{tx}"

    def file(self, name: str) -> str:
        return f"{self.backup_dir}/{name}"
