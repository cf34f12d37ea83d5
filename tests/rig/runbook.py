"""A host kept by the runbook until now: its cron's nightly dumps in /opt/trigger/backups, a
foreign file beside them, and the broken dumps such a folder collects."""

import datetime as dt
import re
import shlex

FOLDER = "/opt/trigger/backups"
CRON_NAME = "trigger-db-backup"
CRONTAB = (
    "# Nightly database dump (ops runbook, \"Backups\"). Keep the last two weeks; older\n"
    "# dumps are deleted by hand when the disk fills up.\n"
    "SHELL=/bin/bash\n"
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    "0 3 * * * root docker exec trigger-postgres pg_dumpall -U trigger | gzip > "
    "/opt/trigger/backups/trigger-db-$(date +\\%Y\\%m\\%d-\\%H\\%M).sql.gz\n")
README = """Nightly dumps of the Trigger.dev database, made at 03:00 by
/etc/cron.d/trigger-db-backup.

Restore into a fresh database container:
  gunzip -c trigger-db-YYYYMMDD-HHMM.sql.gz |
    docker exec -i trigger-postgres psql -U trigger postgres

Delete old dumps by hand when the disk fills up; keep at least the last week.
"""
NOT_A_DUMP = "Error response from daemon: No such container: trigger-postgres\n"
STAMP = re.compile(r"(\d{8})-(\d{4})")


def dump_name(night: dt.datetime) -> str:
    """The cron's file name for a dump made at night."""
    return f"trigger-db-{night:%Y%m%d-%H%M}.sql.gz"


def nights(count: int, gap_after: int, gap_days: int, now: dt.datetime | None = None
           ) -> list[dt.datetime]:
    """03:00 (local time, as cron) of the last `count` nights, oldest first; the nights after
    the newest `gap_after` lie `gap_days` further back."""
    now = now or dt.datetime.now()
    last = now.replace(hour=3, minute=0, second=0, microsecond=0)
    if last > now:
        last -= dt.timedelta(days=1)
    back = [i if i < gap_after else i + gap_days for i in range(count)]
    return sorted(last - dt.timedelta(days=d) for d in back)


def mtime_of(name: str) -> float | None:
    """When the cron would have finished the dump called name (7 s after its stamp)."""
    match = STAMP.search(name)
    if not match:
        return None
    stamp = dt.datetime.strptime("".join(match.groups()), "%Y%m%d%H%M")
    return stamp.timestamp() + 7


def dump_script(container: str, user: str, tmp: str) -> str:
    """Shell that writes one real gzip'ed pg_dumpall of the database to tmp."""
    return (f"set -eu; mkdir -p {shlex.quote(tmp.rsplit('/', 1)[0])}; docker exec "
            f"{shlex.quote(container)} pg_dumpall -U {shlex.quote(user)} | gzip > "
            f"{shlex.quote(tmp)}\n")


def copies_script(tmp: str, folder: str, files: dict[str, float]) -> str:
    """Shell that copies tmp to folder/name with mtime for each of files, then removes tmp."""
    lines = []
    for name, mtime in files.items():
        target = shlex.quote(f"{folder}/{name}")
        lines.append(f"cp {shlex.quote(tmp)} {target} && touch -d @{mtime:.0f} {target}")
    return "\n".join([*lines, f"rm -f {shlex.quote(tmp)}", ""])


def truncate_script(tmp: str, target: str, mtime: float) -> str:
    """Shell that keeps the first half of tmp as target (a dump cut off mid-write)."""
    quoted = shlex.quote(target)
    return (f"head -c $(( $(stat -c %s {shlex.quote(tmp)}) / 2 )) {shlex.quote(tmp)} > {quoted}"
            f" && touch -d @{mtime:.0f} {quoted} && rm -f {shlex.quote(tmp)}\n")
