"""Phase 6: the post-change checks: services, restarts, health, database, Redis, logs, version."""

from __future__ import annotations

from invoke import Exit

from ..errors import CHECK_FAILED
from ..installation import from_result
from ..output import emit, plain
from ..verification import (
    BENIGN_PATTERN,
    ERROR_PATTERN,
    LOG_MARGIN_SECONDS,
    VerifyReport,
    changed_at,
    describe,
    intended_version,
    verify_report,
)
from .common import phase_task, session_for


def run_verify(session) -> VerifyReport:
    """Verify `session`'s host now (always fresh); the report is kept for later phases."""
    update = session.results.get("update")
    result = session.run("verify", error_pattern=ERROR_PATTERN, benign_pattern=BENIGN_PATTERN,
                         changed_at=changed_at(update), log_margin=LOG_MARGIN_SECONDS,
                         timeout=session.settings.observe_seconds + 180)
    installation = from_result(result, session.settings)
    report = verify_report(session.label, result, installation,
                           intended_version(update, installation),
                           session.settings.observe_seconds)
    session.results["verify"] = report
    return report


def finish(session, report: VerifyReport, what: str = "verify") -> None:
    """Exit 1 naming every failed check (the report itself is already shown)."""
    if not report.ok:
        names = "; ".join(f"{c.name} ({c.detail})" for c in report.failures)
        raise Exit(f"trigger-maint: {session.label}: {what} failed: {names}", code=CHECK_FAILED)


@phase_task(help={"observe_seconds": "seconds to watch restart counts (default 10)"})
def verify(c, observe_seconds=None, dry_run=False, json=False):
    """Check every service is up and healthy, /healthcheck, database, Redis, logs, version."""
    session = session_for(c, dry_run, json, observe_seconds=observe_seconds)
    report = run_verify(session)
    emit(session, {**plain(report), "ok": report.ok}, describe(report))
    finish(session, report)
