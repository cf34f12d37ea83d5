"""Plan a cleanup from what the host listed: images, rollback points and their tags, run
containers, backups.

Pure functions. The plan names every item with its size; the apply script re-checks each
one on the host before it goes. What a rollback needs (points.kept), volumes, the newest
backup and files that are not backups are never planned; which backups go is
backups.rotation's decision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from . import backups, points, units
from .backups import Folder
from .hostpaths import ROLLBACK_REPO
from .inventory import parse_time
from .points import RollbackPoint
from .transactions import TxSummary

IMAGE_ID_RE = re.compile(r"(?:sha256:)?([0-9a-f]{64}|[0-9a-f]{12})\b")


@dataclass(frozen=True)
class Item:
    """One thing the plan removes; `kind` is image, tag, point, container or backup."""

    kind: str
    name: str  # image ID, rollback tag, point name, container name or backup file name
    size: int  # bytes (an image's size; shared layers may free less)
    detail: str  # why it goes, for people
    ref: str = ""  # what the apply script re-checks: the tag's image ID, the container's ID
    check: str = ""  # the container's FinishedAt as listed


@dataclass(frozen=True)
class Plan:
    """What a cleanup would remove, what it keeps on purpose and what it refuses to touch."""

    items: tuple[Item, ...]
    kept: tuple[str, ...]  # one line per thing kept on purpose
    refused: tuple[str, ...]  # one line per category left alone, with the reason
    newest_backup: str = ""  # the newest dump when listed; rotation stops if another appears
    inspect_first: str = ""  # a dump made elsewhere, newest: inspected before any rotation

    def of(self, kind: str) -> list[Item]:
        return [item for item in self.items if item.kind == kind]

    @property
    def size(self) -> int:
        return sum(item.size for item in self.items)


@dataclass(frozen=True)
class Removal:
    """What the apply script did with one planned item."""

    item: Item
    done: bool
    reason: str = ""  # why it was left (gone, changed, in use, docker's message)


@dataclass(frozen=True)
class CleanupResult:
    """The plan and, when applied, what was removed, what was left and the bytes freed."""

    plan: Plan
    applied: bool
    removed: tuple[Removal, ...] = ()
    left: tuple[Removal, ...] = ()
    freed_bytes: int = 0


@dataclass(frozen=True)
class Listing:
    """What cleanup-list reported."""

    now: datetime
    dangling: tuple[dict, ...]  # {id, size, tags, created}
    rollback_tags: dict  # tag (without the repository) -> image ID
    images: dict  # short image ID -> {id, size, tags}
    used_images: frozenset[str]  # short IDs of images some container uses
    run_containers: tuple[dict, ...]
    points: tuple[RollbackPoint, ...]
    folder: Folder
    transactions: TxSummary


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def plan_images(listing: Listing, keep_points: int, refusal: str | None) -> tuple[list, list,
                                                                                   list]:
    """Older rollback points (their folders and tags) and dangling images to remove; what is
    kept; refusals. Never a point points.kept keeps, nor an image such a point needs."""
    all_points = list(listing.points)
    kept_names = points.kept(all_points, keep_points, listing.transactions.current)
    kept_ids = {short(i.id) for p in all_points if p.name in kept_names for i in p.images}
    by_point = {p.name: p for p in all_points}
    kept = [f"rollback point {name}: kept with its images"
            for name in sorted(kept_names, reverse=True)]
    orphans = [t for t in listing.rollback_tags if not _point_of(t, by_point)]
    kept += [f"tag {ROLLBACK_REPO}:{t}: kept (no rollback point names it)" for t in
             sorted(orphans)]
    if refusal:
        return [], kept, [f"images: left alone ({refusal})"]
    items = []
    for tag, image_id in sorted(listing.rollback_tags.items()):
        point = _point_of(tag, by_point)
        if point is None or point.name in kept_names:
            continue
        if short(image_id) in kept_ids:
            kept.append(f"tag {ROLLBACK_REPO}:{tag}: kept (a kept rollback point needs image "
                        f"{short(image_id)})")
            continue
        info = listing.images.get(short(image_id), {})
        only_tag = len(info.get("tags") or []) <= 1 and short(image_id) not in listing.used_images
        items.append(Item("tag", f"{ROLLBACK_REPO}:{tag}",
                          int(info.get("size") or 0) if only_tag else 0,
                          f"older rollback point {point.name} released"
                          + ("" if only_tag else " (image stays: tagged or in use)"),
                          ref=image_id))
    items += [Item("point", p.name, 0, f"older rollback point ({p.state})")
              for p in all_points if p.name not in kept_names]
    for image in sorted(listing.dangling, key=lambda i: i.get("created", "")):
        image_short = short(image["id"])
        if image_short in kept_ids:
            kept.append(f"image {image_short}: kept (a rollback point needs it)")
        elif image_short in listing.used_images:
            kept.append(f"image {image_short}: kept (a container uses it)")
        else:
            items.append(Item("image", image["id"], int(image.get("size") or 0),
                              f"dangling, created {image.get('created', '')[:10]}"))
    return items, kept, []


def _point_of(tag: str, by_point: dict) -> RollbackPoint | None:
    """The point a rollback tag (<point>-<service>) belongs to: the longest name that fits."""
    for name in sorted(by_point, key=len, reverse=True):
        if tag.startswith(f"{name}-"):
            return by_point[name]
    return None


def plan_containers(listing: Listing, max_age_hours: int) -> list[Item]:
    """Exited run containers (the layout's prefix) that finished more than the age ago."""
    cutoff = listing.now - timedelta(hours=max_age_hours)
    items = []
    for raw in listing.run_containers:
        if raw.get("compose_project"):  # a stack's container is never a run container
            continue
        finished = parse_time(raw.get("finished_at"))
        if finished is None or finished > cutoff:
            continue
        hours = int((listing.now - finished).total_seconds() // 3600)
        items.append(Item("container", raw["name"].lstrip("/"), int(raw.get("size") or 0),
                          f"exited {hours} h ago", ref=raw["id"],
                          check=raw.get("finished_at", "")))
    return sorted(items, key=lambda i: i.check)


def protected_dumps(listing: Listing, keep_points: int) -> frozenset[str]:
    """Dumps rotation must not remove: the guard dumps of the points cleanup keeps."""
    kept = points.kept(list(listing.points), keep_points, listing.transactions.current)
    return frozenset(p.guard for p in listing.points if p.name in kept and p.guard)


def plan_backups(listing: Listing, keep: int, keep_points: int) -> tuple[list, list, list, str,
                                                                          str]:
    """Backup sets rotation removes; kept; refusals; the newest dump; a dump to inspect
    before rotating (the newest, made elsewhere and not yet checked)."""
    if listing.transactions.current:
        return [], [], [f"backups: not rotated (change {listing.transactions.current} is under "
                        "way)"], "", ""
    rotation = backups.rotation(listing.folder, keep, protected_dumps(listing, keep_points))
    if rotation.refused:
        return [], [], [f"backups: not rotated ({rotation.refused})"], rotation.newest, ""
    items = []
    for backup_set in rotation.remove:
        state = (backups.state(backup_set.backup) if backup_set.backup else "archives only")
        for name in sorted(backup_set.files,
                           key=lambda n: (backups.removal_order(n), n)):
            items.append(Item("backup", name, backup_set.files[name],
                              f"backup {backup_set.stamp} ({state})"))
    return items, list(rotation.kept), [], rotation.newest, rotation.inspect_first


def image_refusal(update, verify, in_progress: str) -> str | None:
    """Why images must stay now: a change under way, or an update of this run that has not
    passed verify yet."""
    if in_progress:
        return f"change {in_progress} is under way; let it finish"
    if update is not None and getattr(update, "changed", False) and \
            not getattr(verify, "ok", False):
        return "the update of this run has not passed verify yet; run verify first"
    return None


def plan_cleanup(listing: Listing, keep_backups: int, keep_points: int, run_max_age_hours: int,
                 refusal: str | None = None) -> Plan:
    """The whole plan from the listing."""
    image_items, image_kept, image_refused = plan_images(listing, keep_points, refusal)
    containers = plan_containers(listing, run_max_age_hours)
    backup_items, backup_kept, backup_refused, newest, inspect = plan_backups(
        listing, keep_backups, keep_points)
    return Plan(items=tuple(image_items + containers + backup_items),
                kept=tuple(image_kept + backup_kept),
                refused=tuple(image_refused + backup_refused), newest_backup=newest,
                inspect_first=inspect)


def outcome(plan: Plan, actions: list | None, applied: bool) -> CleanupResult:
    """The cleanup's result from the apply script's actions (None: it did not run)."""
    if not applied:
        return CleanupResult(plan, applied=False)
    by_key = {(a.get("kind"), a.get("name")): a for a in actions or []}
    removed, left = [], []
    for item in plan.items:
        action = by_key.get((item.kind, item.name))
        if action is None:
            left.append(Removal(item, False, "not reached"))
        elif action.get("done"):
            removed.append(Removal(item, True))
        else:
            left.append(Removal(item, False, action.get("reason", "")))
    return CleanupResult(plan, True, tuple(removed), tuple(left),
                         sum(r.item.size for r in removed))


def describe(result: CleanupResult) -> str:
    """The plan or the outcome for people."""
    plan = result.plan
    lines = []
    verb = "removed" if result.applied else "would remove"
    shown = [r.item for r in result.removed] if result.applied else list(plan.items)
    if plan.inspect_first:
        lines.append(f"{'inspect':13} backup    {plan.inspect_first} (the newest, made outside "
                     "trigger-maint: checked before anything rotates)")
    for item in shown:
        lines.append(f"{verb:13} {item.kind:9} {item.name}  {units.size(item.size)}  "
                     f"({item.detail})")
    for removal in result.left:
        lines.append(f"{'left':13} {removal.item.kind:9} {removal.item.name}  ({removal.reason})")
    lines += [f"{'kept':13} {line}" for line in plan.kept]
    lines += [f"{'refused':13} {line}" for line in plan.refused]
    if result.applied:
        lines.append(f"freed {units.size(result.freed_bytes)} "
                     f"({len(result.removed)} removed, {len(result.left)} left)")
    else:
        lines.append(f"plan: {len(plan.items)} items, {units.size(plan.size)}; nothing changed")
    return "\n".join(lines)


def host_now(raw: dict) -> datetime:
    """The host's clock as the listing reported it (ages are measured on the host)."""
    return datetime.fromtimestamp(int(raw.get("now") or 0), UTC)


def kept_image_ids(listing: Listing, keep_points: int) -> tuple[str, ...]:
    """Short IDs of every image a kept rollback point names (the apply script re-checks)."""
    kept = points.kept(list(listing.points), keep_points, listing.transactions.current)
    return tuple(sorted({short(i.id) for p in listing.points if p.name in kept
                         for i in p.images}))
