"""Phase 5: prune dangling images and old run containers, release old rollback points, rotate
backups; never a volume, never what a rollback needs, never the newest backup."""

from __future__ import annotations

from .. import hostpaths
from ..cleanup import CleanupResult, describe, image_refusal, kept_image_ids, outcome, plan_cleanup
from ..output import emit, plain
from ..scripts.backups import dump_inputs
from ..scripts.cleanup import APPLY, LIST, ApplyInputs, ListInputs
from .change import found_install, paths_of
from .common import phase_task, run_preflight, session_for


def run_cleanup(session, plan_only: bool = False) -> CleanupResult:
    """Plan from one listing, then (unless only planning) remove exactly the plan."""
    s = session.settings
    pre = run_preflight(session)
    listing = session.run(LIST, ListInputs(found_install(pre), paths_of(pre)))
    refusal = image_refusal(session.outcomes.get("update"), session.outcomes.get("verify"),
                            listing.transactions.current)
    plan = plan_cleanup(listing, s.backups_keep, s.rollback_points_keep,
                        s.run_container_max_age_hours, refusal)
    actions = None
    if (plan.items or plan.inspect_first) and not plan_only:
        actions = session.run(APPLY, ApplyInputs(
            found_install(pre), dump_inputs(pre, s.backup_compression, s.dump_timeout),
            paths_of(pre), plan, kept_image_ids(listing, s.rollback_points_keep),
            hostpaths.stamp_of(plan.inspect_first) or ""), timeout=s.dump_timeout + 300)
    result = outcome(plan, actions, applied=not plan_only and not session.dry_run)
    session.outcomes["cleanup"] = result
    return result


@phase_task(help={"plan": "list what would go, with sizes, and change nothing"})
def cleanup(c, plan=False, dry_run=False, json=False, scripts=False):
    """Prune images, old run containers and rollback points; rotate backups.

    Never a volume, never what a kept rollback point needs; rotation keeps the newest
    trigger.backups_keep dumps, whoever made them, never the newest."""
    session = session_for(c, dry_run, json, scripts)
    result = run_cleanup(session, plan_only=plan)
    emit(session, "cleanup", plain(result), describe(result))
