"""Phase 6: the post-change checks: services, restarts, health, database, Redis, logs, version."""

from __future__ import annotations

from ..errors import CHECK_FAILED
from ..output import emit, plain
from ..scripts.base import install_inputs
from ..scripts.verify import VERIFY, VerifyInputs
from ..verification import VerifyReport, changed_at, describe, intended_version, verify_report
from .common import check_exit, phase_task, session_for


def run_verify(session) -> VerifyReport:
    """Verify `session`'s host now (always fresh); the report is kept for later phases."""
    s = session.settings
    update = session.outcomes.get("update")
    facts = session.run(VERIFY, VerifyInputs(install_inputs(s), s.observe_seconds),
                        timeout=s.observe_seconds + 180)
    report = verify_report(session.label, facts, intended_version(update, facts.installation),
                           s.observe_seconds, changed_at(update))
    session.outcomes["verify"] = report
    return report


def failure(report: VerifyReport, what: str = "verify") -> str:
    """One line naming every failed check."""
    names = "; ".join(f"{c.name} ({c.detail})" for c in report.failures)
    return f"{what} failed: {names}"


@phase_task(help={"observe_seconds": "seconds to watch restart counts (default 10)"})
def verify(c, observe_seconds=None, dry_run=False, json=False, scripts=False):
    """Check the installation after a change.

    Every service up and healthy, /healthcheck, database, Redis, error logs since the
    services became healthy, the intended version."""
    session = session_for(c, dry_run, json, scripts, observe_seconds=observe_seconds)
    report = run_verify(session)
    code = 0 if report.ok else CHECK_FAILED
    emit(session, "verify", plain(report), describe(report),
         exit_code=code)
    check_exit(session, code, failure(report))
