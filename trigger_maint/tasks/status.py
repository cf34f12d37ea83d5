"""Phase 2: the whole health picture of a host in one SSH round trip."""

from __future__ import annotations

import shutil
import sys

from ..checks import StatusReport, chosen_folder, evaluate
from ..errors import CHECK_FAILED
from ..output import emit
from ..scripts.status import STATUS, status_inputs
from ..status_report import colour_wanted, text, to_json, verdict
from .common import check_exit, phase_task, session_for


def run_status(session, allow_unknown: bool = False) -> StatusReport:
    """Measure and judge `session`'s host (once until a change makes it stale)."""
    cached = session.facts.get("status")
    if cached is not None:
        return cached.with_allow_unknown(allow_unknown)
    s = session.settings
    facts = session.run(STATUS, status_inputs(s))
    chosen = chosen_folder(facts, s.backup_dir)
    report = StatusReport(
        host=session.label,
        checks=tuple(evaluate(facts, s, session.outcomes.get("research"))),
        allow_unknown=allow_unknown,
        backup_dir=chosen.paths.backup_dir,
    )
    session.facts["status"] = report
    return report


def show(session, report: StatusReport) -> str:
    """The status text for the session's output (terminal width, colour when wanted)."""
    stream = sys.stderr if session.json_output else sys.stdout
    width = shutil.get_terminal_size((100, 24)).columns
    return text(report, session.settings.lang, width, colour_wanted(stream))


@phase_task(help={"allow_unknown": "exit 0 even when some check could not be measured",
                  "report_only": "report every check but exit 0, so chained tasks still run "
                                 "(the JSON document keeps ok false)"})
def status(c, allow_unknown=False, report_only=False, dry_run=False, json=False,
           scripts=False):
    """The summary and every check of the host, in one round trip.

    Containers, disk, memory, certificates, backups, changes, reboot, version.

    Exit code 1 when a check fails or could not be measured (unknown), unless
    --allow-unknown lets unknown pass; warnings keep exit code 0.
    """
    session = session_for(c, dry_run, json, scripts)
    report = run_status(session, allow_unknown)
    code = 0 if report.ok or report_only else CHECK_FAILED
    emit(session, "status", to_json(report), show(session, report), exit_code=code,
         ok=report.ok)
    check_exit(session, code, verdict(report))
