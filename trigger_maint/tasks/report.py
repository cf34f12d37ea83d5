"""`report`: the last maintain runs from the local history (no connection is made)."""

from __future__ import annotations

from .. import report as reports
from ..config import from_context
from ..output import print_json
from ..remote import host_label
from .common import phase_task


@phase_task(help={"last": "how many runs to show (default 5; 0 = all)"})
def report(c, last=5, dry_run=False, json=False):
    """The last maintain runs, from the local history.

    For the host (-H), or for every host without -H: time, exit code, version change,
    checklist boxes ticked and the report file."""
    s = from_context(c)
    host = host_label(c) if getattr(c, "host", None) else None
    entries = reports.history(s, host=host, last=int(last))
    if json:
        print_json({"host": host, "report_dir": s.local_path("report_dir"), "runs": entries})
    else:
        print(reports.describe(entries, host, s.local_path("report_dir")))
