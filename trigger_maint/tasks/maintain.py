"""The whole runbook on one host, ending with the monthly checklist."""

from __future__ import annotations

import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

from .. import checklist as cl
from .. import notify, report
from ..checklist import Checklist
from ..confirm import Confirm, from_flags
from ..errors import INTERRUPTED, MaintError, OperationError
from ..maintaining import (
    CHANGES,
    PHASES,
    MaintainRun,
    Outcome,
    Policy,
    Step,
    cleanup_allowed,
    ends_run,
    judge,
    planned,
    reboot_blocker,
    update_blocker,
    update_decision,
)
from ..outcomes import ChangeResult
from ..output import document, print_json
from .backup import run_backup
from .cleanup import run_cleanup
from .common import check_exit, phase_task, run_preflight, session_for
from .reboot import run_reboot
from .research import run_research
from .status import run_status
from .update import run_update
from .verify import run_verify


def _phase(session, run: MaintainRun, phase: str, action) -> Step:
    """Run one phase, time it and record what it did; a failure is recorded, not raised."""
    started = time.monotonic()
    session.note(f"== {phase}")
    try:
        result = action()
    except (MaintError, KeyboardInterrupt) as exc:
        message = "interrupted" if isinstance(exc, KeyboardInterrupt) else \
            str(exc).removeprefix(f"{session.label}: ")
        code = INTERRUPTED if isinstance(exc, KeyboardInterrupt) else exc.exit_code
        result = getattr(exc, "result", None)
        step = Step(phase, Outcome.FAILED, code=code, reason=message,
                    result=result if isinstance(result, ChangeResult) else None,
                    ends_run=ends_run(phase, exc))
    except Exception as exc:  # noqa: BLE001 - a bug in a phase: stop safely, still report
        traceback.print_exc()
        step = Step(phase, Outcome.FAILED, code=OperationError.exit_code, ends_run=True,
                    reason=f"internal error: {type(exc).__name__}: {exc}")
    else:
        step = planned(phase, result) if session.dry_run and phase in CHANGES else \
            judge(phase, result)
    step.duration = time.monotonic() - started
    session.note(f"== {phase}: {step.outcome.value} in {step.duration:.1f} s"
                 + (f" ({step.reason})" if step.reason and not step.ok else ""))
    run.steps.append(step)
    return step


def _skip(session, run: MaintainRun, phase: str, reason: str) -> None:
    session.note(f"== {phase}: skipped ({reason})")
    run.steps.append(Step(phase, Outcome.SKIPPED, reason=reason))


def _backup(session):
    """This run's backup: one made earlier in the same command (`backup maintain`) counts."""
    return session.outcomes.get("backup") or run_backup(session)


def _update(session, run: MaintainRun, policy: Policy, confirm: Confirm) -> None:
    decision = update_decision(run.result("research"), policy)
    if not decision.go:
        return _skip(session, run, "update", decision.reason)
    blocker = update_blocker(run)
    if blocker:
        return _skip(session, run, "update", blocker)
    if not policy.dry_run:
        ok, why = confirm.allows(f"{session.label}: update {decision.reason}?")
        if not ok:
            return _skip(session, run, "update", why)
    _phase(session, run, "update",
           lambda: run_update(session, target=decision.target, ack=policy.ack,
                              confirm=Confirm(yes=True)))


def _reboot(session, run: MaintainRun, policy: Policy, confirm: Confirm) -> None:
    status = run.result("status")
    reboot = status.first("reboot") if status is not None else None
    if reboot is not None and reboot.state == "ok":
        return _skip(session, run, "reboot", "not required")
    blocker = reboot_blocker(run)
    if blocker:
        return _skip(session, run, "reboot", f"not while {blocker}")
    allowed = Confirm(yes=True) if policy.reboot else confirm
    _phase(session, run, "reboot", lambda: run_reboot(session, confirm=allowed))


def _cleanup(session, run: MaintainRun, policy: Policy, confirm: Confirm) -> None:
    allowed = cleanup_allowed(run)
    if not allowed.go:
        return _skip(session, run, "cleanup", allowed.reason)
    _phase(session, run, "cleanup", lambda: run_cleanup(session))


def _final_status(session, run: MaintainRun, policy: Policy, confirm: Confirm) -> None:
    if policy.dry_run:  # nothing changed: it would measure what status just measured
        return _skip(session, run, "final_status", "dry run: nothing changed since status")
    _phase(session, run, "final_status", lambda: run_status(session))


# What each phase of maintaining.PHASES does: fn(session, run, policy, confirm).
PLAN = {
    "preflight": lambda s, r, p, c: _phase(s, r, "preflight", lambda: run_preflight(s)),
    "research": lambda s, r, p, c: _phase(s, r, "research",
                                          lambda: run_research(s, target=p.target)),
    "status": lambda s, r, p, c: _phase(s, r, "status", lambda: run_status(s)),
    "backup": lambda s, r, p, c: _phase(s, r, "backup", lambda: _backup(s)),
    "update": _update,
    "verify": lambda s, r, p, c: _phase(s, r, "verify", lambda: run_verify(s)),
    "cleanup": _cleanup,
    "reboot": _reboot,
    "final_status": _final_status,
}


@dataclass(frozen=True)
class Maintained:
    """A maintain run and its checklist."""

    run: MaintainRun
    checklist: Checklist


def run_maintain(session, policy: Policy, confirm: Confirm) -> Maintained:
    """Every phase in order on `session`'s host, then the checklist: printed, written to the
    report folder and sent to the webhook. Failures are recorded in the run, not raised."""
    run = MaintainRun(host=session.label, policy=policy, started_at=datetime.now(UTC))
    for phase in PHASES:
        stopped = run.stopped
        if stopped is not None:
            _skip(session, run, phase, f"stopped: {stopped.phase} failed")
        else:
            PLAN[phase](session, run, policy, confirm)
    run.finished_at = datetime.now(UTC)
    checklist = cl.build(run, session.settings.disk_warn_percent)
    run.complete = checklist.complete
    _finish(session, run, checklist)
    return Maintained(run, checklist)


def _finish(session, run: MaintainRun, checklist: Checklist) -> None:
    """Write the reports, call the webhook, show the checklist (or the JSON document)."""
    if not run.policy.dry_run:
        try:
            run.files = report.write(session.settings, run, checklist)
        except OSError as exc:
            sys.stderr.write(f"trigger-maint: {session.label}: warning: report not written "
                             f"({exc})\n")
        run.webhook = notify.notify(session.settings, run, checklist, run.files)
    if session.json_output:
        print_json(document("maintain", session.label, run.exit_code,
                            {**cl.document(run, checklist), "files": run.files,
                             "webhook": run.webhook}))
    else:
        session.print(cl.text(run, checklist))
        if run.files:
            session.print(f"report: {run.files['markdown']}")
    if run.webhook.startswith("failed"):
        sys.stderr.write(f"trigger-maint: {session.label}: warning: {run.webhook}; "
                         "the exit code does not change\n")


@phase_task(help={
    "no_update": "never update, even when a newer version is found",
    "update_only_security": "update only when an advisory affects the running version",
    "reboot": "reboot when the host asks for it (/var/run/reboot-required)",
    "yes": "confirm the update and the reboot without asking (cron, CI)",
    "target": "update to this version (vX.Y.Z) instead of the newest; GitHub is not asked",
    "ack": "acknowledge an upgrade hazard research named (repeatable), as update --ack",
    "lang": "language of the checklist and summary: en or nl",
}, iterable=["ack"])
def maintain(c, no_update=False, update_only_security=False, reboot=False, yes=False,
             target=None, ack=None, lang=None, dry_run=False, json=False, scripts=False):
    """The whole runbook, ending with the monthly checklist.

    preflight, research, status, backup, update (when allowed), verify, cleanup, reboot
    (when required and allowed), status; then the checklist, a report and the webhook.

    Without a terminal nothing is asked: the update and the reboot need --yes (or --reboot).
    Exit code: the worst phase's (4 refused, 5 a change failed and was rolled back, ...),
    and at least 1 when a checklist box is not ticked. See docs/scheduling.md.
    """
    session = session_for(c, dry_run, json, scripts, lang=lang)
    policy = Policy(no_update=no_update, update_only_security=update_only_security,
                    reboot=reboot, yes=yes, target=target, ack=tuple(ack or ()),
                    lang=session.settings.lang, dry_run=session.dry_run)
    done = run_maintain(session, policy, from_flags(yes))
    check_exit(session, done.run.exit_code, f"maintain: {cl.verdict(done.run, done.checklist)}")
