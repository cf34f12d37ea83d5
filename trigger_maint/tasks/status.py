"""Phase 2: the whole health picture of a host in one SSH round trip."""

from __future__ import annotations

import sys

from invoke import Exit

from ..checks import StatusReport, evaluate, script_context
from ..errors import CHECK_FAILED
from ..output import emit
from ..status_report import text, to_json, verdict
from .common import phase_task, session_for


def run_status(session, allow_unknown: bool = False, fresh: bool = False) -> StatusReport:
    """Measure and judge `session`'s host; kept in session.results["status"].

    A later call in the same run reuses the report unless `fresh` (e.g. after an update).
    """
    cached = session.results.get("status")
    if cached is not None and not fresh:
        return cached.with_allow_unknown(allow_unknown)
    result = session.run("status", **script_context(session.settings))
    report = StatusReport(
        host=session.label,
        checks=tuple(evaluate(result, session.settings, session.results.get("research"))),
        allow_unknown=allow_unknown,
    )
    session.results["status"] = report
    return report


@phase_task(help={"allow_unknown": "exit 0 even when some check could not be measured"})
def status(c, allow_unknown=False, dry_run=False, json=False):
    """Containers, disk, memory, TLS, backups, reboot, version: a summary and every check.

    Exit code 1 when a check fails or could not be measured (unknown), unless
    --allow-unknown lets unknown pass; warnings keep exit code 0.
    """
    session = session_for(c, dry_run, json)
    report = run_status(session, allow_unknown)
    emit(session, to_json(report), text(report))
    if not report.ok:
        sys.stderr.write(f"trigger-maint: {session.label}: {verdict(report)}\n")
        raise Exit(code=CHECK_FAILED)
