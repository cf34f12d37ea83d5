"""Phase 5: prune dangling images and old run containers, release old rollback points, rotate
backups; never a volume, never what a rollback needs, never the newest backup."""

from __future__ import annotations

from ..cleanup import CleanupResult, describe, image_refusal, outcome, plan_cleanup
from ..output import emit, plain
from .common import phase_task, session_for


def run_cleanup(session, plan_only: bool = False) -> CleanupResult:
    """Plan from one listing, then (unless only planning) remove exactly the plan."""
    listing = session.run("cleanup-list")
    refusal = image_refusal(session.results.get("update"), session.results.get("verify"),
                            (listing.get("in_progress") or "").strip())
    plan = plan_cleanup(listing, session.settings, refusal)
    applied = None
    if plan.items and not plan_only:
        applied = session.run("cleanup", changes=True, plan=plan)
    result = outcome(plan, applied, applied=not plan_only and not session.dry_run)
    session.results["cleanup"] = result
    return result


@phase_task(help={"plan": "list what would go, with sizes, and change nothing"})
def cleanup(c, plan=False, dry_run=False, json=False):
    """Prune dangling images and old run containers, rotate backups (keep the newest N)."""
    session = session_for(c, dry_run, json)
    result = run_cleanup(session, plan_only=plan)
    emit(session, plain(result), describe(result))
