"""Phase 4b: back to a recorded rollback point, by image ID, with the database if needed, as
a transaction the host owns."""

from __future__ import annotations

from datetime import UTC, datetime

from .. import backups, points
from ..confirm import UNATTENDED, Confirm, from_flags
from ..errors import ConfigError, UnsafeError
from ..outcomes import Planned, RollbackResult, describe_rollback, rollback_result
from ..output import emit
from ..plans import rollback_plan, room, tx_id
from ..points import RollbackPoint
from ..updating import check_point
from .change import (
    budgets,
    carry_out,
    paths_of,
    prepare,
    raise_for,
    report_change,
    settle_earlier,
)
from .common import phase_task, session_for


def _result(session, j, point, reported=False) -> RollbackResult:
    result = rollback_result(j, point, reported)
    session.outcomes["rollback"] = result
    raise_for(session, result.exit_code, result.message, result)
    return result


def list_points(session) -> list[RollbackPoint]:
    """The rollback points on the session's host, newest first (read-only)."""
    return list(prepare(session, "rollback").facts.points)


def run_rollback(session, point=None, confirm: Confirm = UNATTENDED,
                 db: bool = False) -> RollbackResult | Planned:
    """Roll the session's host back to `point` (default: the newest completed update's).
    A database restore needs `db` (--yes). A change cut off half-way is carried back first."""
    wanted = check_point(point)
    prep = prepare(session, "rollback")
    pre, facts = prep.pre, prep.facts
    earlier = settle_earlier(session, prep, "rollback")
    if earlier.journal is not None:
        return _result(session, earlier.journal, str(earlier.journal.facts.get("point") or ""),
                       earlier.reported)
    choice = points.choose(list(facts.points), wanted)
    if choice.point is None:
        raise (ConfigError if wanted else UnsafeError)(
            f"{session.label}: {choice.problem} (`trigger-maint rollback --list` shows them)")
    target = choice.point
    need = points.needs(target, facts.migrations)
    if need.problems:
        raise UnsafeError(f"{session.label}: cannot roll back to {target.name}: "
                          f"{'; '.join(need.problems)}; nothing was changed")
    if need.db_restore and not (db or session.dry_run):
        raise UnsafeError(
            f"{session.label}: rolling back to {target.name} restores the database from its "
            f"guard dump {target.guard} (migrations {facts.migrations} -> {target.migrations}; "
            "the live one is kept as a safety backup): add --yes; nothing was changed")
    now = datetime.now(UTC)
    space = room(backups.in_folder(facts.folder), facts.cluster_bytes, facts.database_bytes,
                 facts.backup_free_bytes, facts.docker_free_bytes)
    if space.problem and need.db_restore:
        raise UnsafeError(f"{session.label}: rollback refused: {space.problem}; nothing was "
                          "changed")
    plan = rollback_plan(tx_id(now, "rollback"), paths_of(pre), target, facts.migrations,
                         space.bytes if need.db_restore else 0, need.db_restore,
                         budgets(session.settings),
                         facts={"point": target.name, "migrations": facts.migrations,
                                "to_version": target.version})
    what = f"roll back to {target.name} (v{target.version or '?'})" + (
        ", restoring the database" if need.db_restore else "")
    done = carry_out(session, prep, plan, what, confirm, earlier)
    return done if isinstance(done, Planned) else _result(session, done, target.name)


def describe_points(found: list[RollbackPoint]) -> str:
    """The points as a table for people; the default one is marked."""
    if not found:
        return "no rollback points (every update records one)"
    chosen = points.default_point(found)
    lines = []
    for p in found:
        mark = "*" if p is chosen else " "
        version = f"v{p.version}" if p.version else "unknown"
        missing = f", images gone: {', '.join(p.missing_images)}" if p.missing_images else ""
        lines.append(f"{mark} {p.name}  {p.state:<12} {version} -> {p.target or 'same tags'}"
                     f"  migrations {p.migrations if p.migrations is not None else '?'}"
                     f"  guard dump {p.guard or 'none'}{missing}")
    if chosen:
        lines.append("* = where `rollback` goes without --point")
    return "\n".join(lines)


@phase_task(help={
    "point": "the rollback point to go back to (see --list); default the newest completed "
             "update's",
    "list": "only list the rollback points",
    "yes": "do it without asking, and allow restoring the database when migrations ran "
           "since the point (the live one is saved first)",
})
def rollback(c, point=None, list=False, yes=False, dry_run=False, json=False, scripts=False):
    """Go back to a rollback point, the database too when needed.

    A transaction the host owns: files, images by ID (not by tag), and the database from
    the point's guard dump when migrations ran since."""
    session = session_for(c, dry_run, json, scripts)
    if list:
        found = list_points(session)
        emit(session, "rollback", {"points": found}, describe_points(found))
        return
    report_change(session, "rollback", lambda: run_rollback(
        session, point=point, confirm=from_flags(yes), db=yes), describe_rollback)
