"""Phase 4: update to the target, gated on a fresh verified backup, as a transaction the host
carries to its end: healthy on the new version, or rolled back by itself."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .. import backups, points
from ..confirm import UNATTENDED, Confirm, from_flags
from ..errors import UnsafeError
from ..inventory import normalize_version
from ..outcomes import Planned, UpdateResult, already, describe_update, update_result
from ..plans import room, tx_id, update_gate, update_plan
from ..units import v
from ..updating import check_direction, check_hazards, choose_target, hazards_for, pin_args
from .change import (
    budgets,
    carry_out,
    host_spec,
    paths_of,
    prepare,
    raise_for,
    report_change,
    settle_earlier,
)
from .common import phase_task, session_for


def _result(session, j, running, tag, backup="", reported=False) -> UpdateResult:
    result = update_result(j, running, tag, backup, reported, host_spec(session))
    session.outcomes["update"] = result
    raise_for(session, result.exit_code, result.message, result)
    return result


def run_update(session, target=None, force=False, ack=(),
               confirm: Confirm = UNATTENDED) -> UpdateResult | Planned:
    """Update the session's host to `target` (default: research's target; none: pull the
    current tags). UnsafeError (exit 4) when refused before any change, OperationError
    (exit 5) when it failed after one (the host rolled back by itself)."""
    tag = choose_target(target, session.outcomes.get("research"))
    prep = prepare(session, "update")
    pre, facts = prep.pre, prep.facts
    running = pre.installation.running
    earlier = settle_earlier(session, prep, "update")
    if earlier.journal is not None:
        j = earlier.journal
        return _result(session, j, j.facts.get("from_version") or running,
                       j.facts.get("target") or "", reported=earlier.reported)
    if tag and running and normalize_version(tag) == running:
        done = already(running, tag)
        session.outcomes["update"] = done
        return done
    try:
        check_direction(running, tag)
        check_hazards(hazards_for(running, tag, session.outcomes.get("research")), ack)
    except UnsafeError as exc:
        raise UnsafeError(f"{session.label}: {exc}") from None
    s = session.settings
    now = datetime.now(UTC)
    found = backups.in_folder(facts.folder)
    space = room(found, facts.cluster_bytes, facts.database_bytes, facts.backup_free_bytes,
                 facts.docker_free_bytes)
    gate = update_gate(found, facts.migrations, space, now,
                       timedelta(minutes=s.update_backup_max_age_minutes), force)
    if not gate.ok and not session.dry_run:
        raise UnsafeError(f"{session.label}: update refused: {gate.problem}; nothing was "
                          "changed")
    if not gate.ok:  # a dry run shows the plan all the same (maintain's backup comes first)
        session.note(f"a real run would refuse the update now: {gate.problem}")
    for note in gate.notes:
        session.note(note)
    layout = pre.installation.layout
    plan = update_plan(
        tx_id(now, "update"), paths_of(pre), points.free_name(list(facts.points), now),
        tag or "", running or "", pin_args(layout, tag) if tag else (), facts.migrations,
        gate.room_bytes, budgets(s),
        facts={"from_version": running, "target": tag, "gate_backup": getattr(
            gate.backup, "name", ""), "migrations": facts.migrations}, fallback=gate.backup)
    wanted = f"update {v(running) or 'the installation'} to {tag or 'the current image tags'}"
    done = carry_out(session, prep, plan, wanted, confirm, earlier)
    return done if isinstance(done, Planned) else _result(
        session, done, running, tag or "", getattr(gate.backup, "name", ""))


@phase_task(iterable=["ack"], help={
    "target": "version to install (e.g. v4.5.12); default research's target, else pull the "
              "current tags",
    "force": "go on without a verified backup younger than "
             "trigger.update_backup_max_age_minutes",
    "ack": "acknowledge an upgrade hazard research reported (repeat for each)",
    "yes": "do it without asking (needed when there is no terminal: cron, CI)",
})
def update(c, target=None, force=False, ack=None, yes=False, dry_run=False, json=False,
           scripts=False):
    """Update Trigger.dev; the host rolls back by itself on failure.

    A transaction the host owns: backup gate, rollback point, pin, pull, guard dump,
    recreate, health; a failure after the first change rolls back (exit 5)."""
    session = session_for(c, dry_run, json, scripts)
    report_change(session, "update", lambda: run_update(
        session, target=target, force=force, ack=tuple(ack or ()), confirm=from_flags(yes)),
        describe_update)
