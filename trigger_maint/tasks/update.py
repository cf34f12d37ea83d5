"""Phase 4: update to the target, gated on a fresh verified backup, rolled back on failure."""

from __future__ import annotations

from ..errors import OperationError, UnsafeError
from ..layout import candidates
from ..output import emit
from ..updating import (
    UpdateResult,
    check_direction,
    check_hazards,
    choose_target,
    hazards_for,
    pin_context,
    update_result,
)
from .backup import backup_context
from .common import phase_task, session_for
from .preflight import run_preflight


def run_update(session, target=None, force=False, ack=()) -> UpdateResult:
    """Update the session's host to `target` (default: research's target; none: pull the
    current tags). Raises UnsafeError when refused, OperationError when it failed (after
    rolling back by itself)."""
    research = session.results.get("research")
    tag = choose_target(target, research)
    version = run_preflight(session).installation.version
    running = version.version if version else None
    try:
        check_direction(running, tag)
        check_hazards(hazards_for(running, tag, research), ack)
    except UnsafeError as exc:
        raise UnsafeError(f"{session.label}: {exc}") from None
    try:
        result = session.run("update", changes=True, force=force, from_version=running or "",
                             **backup_context(session),
                             **pin_context(candidates(session.settings), tag))
    except OperationError as exc:
        if getattr(exc, "result", None):
            session.results["update"] = update_result(exc.result, running)
        raise
    if result is None:  # dry run
        planned = UpdateResult(changed=False, from_version=running, to_version=None,
                               rolled_back=False, point="", target=tag or "")
        session.results["update"] = planned
        return planned
    done = update_result(result, running)
    session.results["update"] = done
    if done.changed:  # what preflight saw is gone; later phases must look again
        session.results.pop("preflight", None)
    return done


def _version(text: str | None) -> str:
    return f"v{text}" if text else "unknown version"


def describe(r: UpdateResult, dry_run: bool = False) -> str:
    """The update's outcome for people."""
    target = r.target or "the current image tags"
    if dry_run:
        return f"dry run: would update {_version(r.from_version)} to {target}"
    lines = []
    if r.recovered:
        lines.append(f"interrupted update {r.recovered.get('point')}: "
                     f"{r.recovered.get('action')}")
    if not r.changed:
        lines.append(f"up to date: {_version(r.to_version)} runs, the images did not change")
        return "\n".join(lines)
    lines.append(f"updated     {_version(r.from_version)} -> {_version(r.to_version)}")
    lines += [f"pinned      {c.file}: {c.after}" for c in r.pin_changes]
    lines.append(f"downtime    {r.downtime_seconds} s (webapp not answering 200)")
    if r.migrations_after != r.migrations_before:
        lines.append(f"migrations  {r.migrations_before} -> {r.migrations_after}")
    lines.append(f"rollback    point {r.point}, guarded by {r.backup or 'no backup (--force)'}"
                 f" (`trigger-maint rollback` goes back)")
    return "\n".join(lines)


@phase_task(iterable=["ack"], help={
    "target": "version to install (e.g. v4.5.12); default research's target, else pull the "
              "current tags",
    "force": "go on without a verified backup younger than "
             "trigger.update_backup_max_age_minutes",
    "ack": "acknowledge an upgrade hazard research reported (repeat for each)",
})
def update(c, target=None, force=False, ack=None, dry_run=False, json=False):
    """Update Trigger.dev: backup gate, rollback point, pull, recreate, health; rolls back
    by itself when health is not reached (exit 5)."""
    session = session_for(c, dry_run, json)
    done = run_update(session, target=target, force=force, ack=tuple(ack or ()))
    emit(session, {"host": session.label, "dry_run": session.dry_run, "update": done},
         describe(done, session.dry_run))
