"""Phase 4b: back to a recorded rollback point, by image ID, with the database if needed."""

from __future__ import annotations

from ..output import emit
from ..updating import (
    RollbackPoint,
    RollbackResult,
    check_point,
    default_point,
    rollback_points,
    rollback_result,
)
from .backup import backup_context
from .common import phase_task, session_for


def list_points(session) -> list[RollbackPoint]:
    """The rollback points on the session's host, newest first (read-only)."""
    return rollback_points(session.run("rollback-points"))


def run_rollback(session, point=None, yes=False) -> RollbackResult | None:
    """Roll the session's host back to `point` (default: the interrupted update's, else the
    newest completed update's). A database restore needs `yes`. None under --dry-run."""
    result = session.run("rollback", changes=True, point=check_point(point), yes=yes,
                         **backup_context(session))
    if result is None:
        return None
    done = rollback_result(result)
    session.results["rollback"] = done
    session.results.pop("preflight", None)  # the running version changed
    return done


def describe_points(points: list[RollbackPoint]) -> str:
    """The points as a table for people; the default one is marked."""
    if not points:
        return "no rollback points (every update records one)"
    chosen = default_point(points)
    lines = []
    for p in points:
        mark = "*" if p is chosen else " "
        version = f"v{p.version}" if p.version else "unknown"
        missing = f", images gone: {', '.join(p.missing_images)}" if p.missing_images else ""
        lines.append(f"{mark} {p.name}  {p.state:<12} {version} -> {p.target or 'same tags'}"
                     f"  migrations {p.migrations if p.migrations is not None else '?'}"
                     f"  backup {p.backup or 'none'}{missing}"
                     + ("  (interrupted)" if p.in_progress else ""))
    if chosen:
        lines.append("* = where `rollback` goes without --point")
    return "\n".join(lines)


def describe(r: RollbackResult) -> str:
    """The rollback's outcome for people."""
    lines = [f"rolled back to {r.point}: v{r.version or '?'} runs "
             f"(webapp not answering for {r.downtime_seconds} s)"]
    if r.db_restored:
        lines.append(f"database restored ({r.migrations_before} -> {r.migrations_after} "
                     f"migrations); safety backup {r.safety_backup}")
    return "\n".join(lines)


@phase_task(help={
    "point": "the rollback point to go back to (see --list); default the interrupted "
             "update's, else the newest completed update's",
    "list": "only list the rollback points",
    "yes": "allow restoring the database when migrations ran since the point (a safety "
           "backup is taken first)",
})
def rollback(c, point=None, list=False, yes=False, dry_run=False, json=False):
    """Go back to a rollback point: files, images by ID (not by tag), database if needed."""
    session = session_for(c, dry_run, json)
    if list:
        points = list_points(session)
        emit(session, {"host": session.label, "points": points}, describe_points(points))
        return
    done = run_rollback(session, point=point, yes=yes)
    if done is None:
        emit(session, {"host": session.label, "dry_run": True},
             f"{session.label}: dry run, nothing rolled back")
        return
    emit(session, {"host": session.label, "rollback": done}, describe(done))
