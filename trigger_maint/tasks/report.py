"""`report`: the last maintain runs from the local history (no connection is made), or with
`--merge` the fleet reports of a sharded run joined into one."""

from __future__ import annotations

import glob
import os

from .. import fleet
from .. import report as reports
from ..config import from_context
from ..errors import ConfigError
from ..fleet_runner import read_report, write_report
from ..output import document, print_json
from ..remote import host_label
from .common import phase_task
from .fleet import show


@phase_task(help={
    "last": "how many runs to show (default 5; 0 = all)",
    "merge": "a shard's fleet report (file or glob, quoted; repeatable): merge every shard's "
             "into one fleet report, written to trigger.report_dir",
}, iterable=["merge"])
def report(c, last=5, merge=None, dry_run=False, json=False):
    """The last maintain runs, from the local history; or the fleet reports of every shard
    of a run merged into one (--merge).

    For the host (-H), or for every host without -H: time, exit code, version change,
    checklist boxes ticked and the report file.

    With --merge (no -H): the fleet reports (or --json documents) of the N shards of one
    fleet run become one fleet report, printed and written like a fleet run's; the exit
    code is then the fleet's. Files of different tasks or fleets, a shard missing or given
    twice, or a host in two shards end with one line and exit 2.
    """
    s = from_context(c)
    if merge:
        merge_reports(c, s, merge, dry_run=dry_run, json=json)
        return
    host = host_label(c) if getattr(c, "host", None) else None
    entries = reports.history(s, host=host, last=int(last))
    if json:
        print_json(document("report", host, 0, {"report_dir": s.local_path("report_dir"),
                                                "runs": entries}))
    else:
        print(reports.describe(entries, host, s.local_path("report_dir")))


def report_paths(patterns) -> list[str]:
    """The files named by --merge values: each a path or a glob pattern, once each."""
    paths: list[str] = []
    for pattern in patterns:
        matched = sorted(glob.glob(os.path.expanduser(pattern))) or [pattern]
        paths += [path for path in matched if path not in paths]
    return paths


def merge_reports(c, s, patterns, *, dry_run: bool, json: bool) -> None:
    """`report --merge`: read, merge, write (not under --dry-run) and show."""
    if getattr(c, "host", None):
        raise ConfigError("report --merge takes no -H: the hosts are in the fleet reports")
    loaded = [(path, read_report(path)) for path in report_paths(patterns)]
    doc, outcomes = fleet.merge(loaded)
    paths = []
    if not dry_run:
        stamp = doc["started_at"].replace("-", "").replace(":", "").replace("T", "-")[:15]
        paths = write_report(s.local_path("report_dir"),
                             fleet.report_files(doc, outcomes, stamp, merged=True))
        doc["files"] = paths
    show(doc, outcomes, paths, json)
