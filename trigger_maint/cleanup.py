"""Plan a cleanup from what the host listed: images, rollback tags, run containers, backups.

Pure functions. The plan names every item with its size; the apply script re-checks each
one on the host before it goes. What a rollback needs, volumes, the newest backup and files
that are not the tool's own are never planned.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from . import backups
from .backups import STAMP_RE, from_sidecar, human_size
from .inventory import parse_time
from .updating import ELIGIBLE_STATE

ROLLBACK_REPO = "trigger-maint/rollback"
# The tool's own backup files (see backups.NAMES): dump, sidecar, files and volume archives.
BACKUP_RE = re.compile(rf"^trigger-(?:db-(?P<db>{STAMP_RE})\.(?:sql\.gz|json)"
                       rf"|files-(?P<files>{STAMP_RE})\.tar\.gz"
                       rf"|volume-(?P<volume>{STAMP_RE})-[A-Za-z0-9][A-Za-z0-9_.-]*\.tar\.gz)$")
IMAGE_ID_RE = re.compile(r"(?:sha256:)?([0-9a-f]{64}|[0-9a-f]{12})\b")
TAG_STAMP_RE = re.compile(rf"^({STAMP_RE})-")
POINT_RE = re.compile(rf"^{STAMP_RE}(-\d+)?$")  # a rollback point's folder (update.sh.j2)


@dataclass(frozen=True)
class Item:
    """One thing the plan removes; `kind` is image, tag, container or backup."""

    kind: str
    name: str  # image ID, rollback tag, container name or backup file name
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
class Point:
    """A rollback point: its stamp and the image IDs and tags it names."""

    stamp: str
    image_ids: frozenset[str] = field(default_factory=frozenset)
    tags: frozenset[str] = field(default_factory=frozenset)  # tags without the repository


@dataclass(frozen=True)
class BackupSet:
    """The files of one backup stamp."""

    stamp: str
    files: dict  # name -> size
    verified: bool
    dump: str  # the dump's name ("" when the dump is missing)


def _short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def parse_point(stamp: str, text: str) -> Point:
    """A rollback point from its point.json text: every image ID and rollback tag it names.

    An unreadable point.json names nothing but still counts as a point (its stamp is kept).
    """
    try:
        data = json.loads(text or "null")
    except ValueError:
        data = None
    ids, tags = set(), set()
    for value in _strings(data):
        if value.startswith(f"{ROLLBACK_REPO}:"):
            tags.add(value.split(":", 1)[1])
        for match in IMAGE_ID_RE.finditer(value):
            ids.add(match.group(1)[:12])
    return Point(stamp=stamp, image_ids=frozenset(ids), tags=frozenset(tags))


def _tag_stamp(tag: str, stamps) -> str | None:
    for stamp in sorted(stamps, key=len, reverse=True):
        if tag.startswith(f"{stamp}-"):
            return stamp
    match = TAG_STAMP_RE.match(tag)
    return match.group(1) if match else None


def plan_images(listing: dict, keep_points: int, refusal: str | None) -> tuple[list, list, list]:
    """Dangling images and older points' rollback tags to remove; what is kept; refusals."""
    listed = [p for p in listing.get("points") or [] if POINT_RE.match(p["name"])]
    points = {p["name"]: parse_point(p["name"], p.get("point", "")) for p in listed}
    tag_ids = {t["tag"]: t["id"] for t in listing.get("rollback_tags") or []}
    stamps = set(points)
    orphans = []
    for tag in tag_ids:
        stamp = _tag_stamp(tag, points)
        if stamp is None:
            orphans.append(tag)
        else:
            stamps.add(stamp)
    in_progress = (listing.get("in_progress") or "").strip()
    kept_stamps = set(sorted(stamps, reverse=True)[:keep_points])
    kept_stamps |= {in_progress} if in_progress else set()
    # where `rollback` goes by default: the newest point of an update that completed
    done = sorted((p["name"] for p in listed
                   if (p.get("state") or "").strip() == ELIGIBLE_STATE), reverse=True)
    kept_stamps |= set(done[:1])
    kept_ids = set()
    for stamp in kept_stamps:
        point = points.get(stamp, Point(stamp))
        kept_ids |= point.image_ids
        kept_ids |= {_short(i) for t, i in tag_ids.items()
                     if t in point.tags or _tag_stamp(t, points) == stamp}
    kept = [f"rollback point {s}: kept with its images" for s in sorted(kept_stamps, reverse=True)]
    kept += [f"tag {ROLLBACK_REPO}:{t}: kept (no rollback point named)" for t in sorted(orphans)]
    if refusal:
        return [], kept, [f"images: left alone ({refusal})"]
    sizes = {_short(i["id"]): i for i in listing.get("images") or []}
    used = {_short(i) for i in listing.get("used_images") or []}
    items = []
    for tag, image_id in sorted(tag_ids.items()):
        stamp = _tag_stamp(tag, points)
        if stamp is None or stamp in kept_stamps:
            continue
        if _short(image_id) in kept_ids:
            kept.append(f"tag {ROLLBACK_REPO}:{tag}: kept (a newer rollback point needs "
                        f"image {_short(image_id)})")
            continue
        info = sizes.get(_short(image_id), {})
        only_tag = len(info.get("tags") or []) <= 1 and _short(image_id) not in used
        items.append(Item("tag", f"{ROLLBACK_REPO}:{tag}",
                          int(info.get("size") or 0) if only_tag else 0,
                          f"older rollback point {stamp} released"
                          + ("" if only_tag else " (image stays: tagged or in use)"),
                          ref=image_id))
    for image in sorted(listing.get("dangling") or [], key=lambda i: i.get("created", "")):
        short = _short(image["id"])
        if short in kept_ids:
            kept.append(f"image {short}: kept (a rollback point needs it)")
        elif short in used:
            kept.append(f"image {short}: kept (a container uses it)")
        else:
            items.append(Item("image", image["id"], int(image.get("size") or 0),
                              f"dangling, created {image.get('created', '')[:10]}"))
    return items, kept, []


def plan_containers(listing: dict, max_age_hours: int, now: datetime) -> list[Item]:
    """Exited run containers (the layout's prefix) that finished more than the age ago."""
    cutoff = now - timedelta(hours=max_age_hours)
    items = []
    for raw in listing.get("run_containers") or []:
        if raw.get("compose_project"):  # a stack's container is never a run container
            continue
        finished = parse_time(raw.get("finished_at"))
        if finished is None or finished > cutoff:
            continue
        hours = int((now - finished).total_seconds() // 3600)
        items.append(Item("container", raw["name"].lstrip("/"), int(raw.get("size") or 0),
                          f"exited {hours} h ago", ref=raw["id"],
                          check=raw.get("finished_at", "")))
    return sorted(items, key=lambda i: i.check)


def backup_stamp(file_name: str) -> str | None:
    """The stamp of one of the tool's own backup files; None for any other name."""
    match = BACKUP_RE.match(file_name)
    return (match["db"] or match["files"] or match["volume"]) if match else None


def backup_sets(files: list, sidecars: dict) -> list[BackupSet]:
    """The tool's backup sets, newest first, from the listed files and sidecar texts.

    A set counts as verified when its backup is trusted (backups.from_sidecar: verified when
    made, every check passed, the dump still the size the sidecar recorded). Files whose
    names are not the tool's own belong to no set.
    """
    by_stamp: dict[str, dict] = {}
    for entry in files:
        stamp = backup_stamp(entry["name"])
        if stamp:
            by_stamp.setdefault(stamp, {})[entry["name"]] = int(entry.get("size") or 0)
    sets = []
    for stamp, members in by_stamp.items():
        dump = backups.name("dump", stamp)
        try:
            meta = json.loads(sidecars.get(backups.name("sidecar", stamp)) or "null")
        except ValueError:
            meta = None
        verified = isinstance(meta, dict) and meta.get("file") == dump and from_sidecar(
            meta, "", members.get(dump)).trusted
        sets.append(BackupSet(stamp, members, verified, dump if dump in members else ""))
    return sorted(sets, key=lambda s: s.stamp, reverse=True)


def _removal_order(name: str) -> int:
    """Archives first, then the dump, the sidecar last: a cut-off run leaves a described set."""
    return 2 if name.endswith(".json") else 1 if name.endswith(".sql.gz") else 0


def plan_backups(listing: dict, keep: int) -> tuple[list, list, list, str]:
    """Backup sets older than the newest `keep` verified ones; kept; refusals; newest dump."""
    sets = backup_sets(listing.get("backups") or [],
                       {s["name"]: s.get("text", "") for s in listing.get("sidecars") or []})
    dumps = [s for s in sets if s.dump]
    if not dumps:
        return [], [], [], ""
    newest = dumps[0]
    if not newest.verified:
        return [], [], [f"backups: not rotated (the newest backup {newest.dump} is not verified)"
                         ], newest.dump
    kept, verified = [], 0
    items = []
    for backup in sets:
        if verified < keep or backup.stamp >= newest.stamp:
            kept.append(f"backup {backup.stamp}: kept"
                        + ("" if backup.verified else " (not verified; newer than the kept)"))
            verified += backup.verified
            continue
        for name in sorted(backup.files, key=lambda n: (_removal_order(n), n)):
            items.append(Item("backup", name, backup.files[name],
                              f"backup {backup.stamp}"
                              + (", verified" if backup.verified else ", not verified")))
    return items, kept, [], newest.dump


def image_refusal(update, verify, in_progress: str) -> str | None:
    """Why images must stay now: an update in progress, or one that is not verified yet."""
    if in_progress:
        return f"an update is in progress (rollback point {in_progress}); finish or roll back"
    if update is not None and getattr(update, "changed", True) and not getattr(verify, "ok", False):
        return "the update of this run has not passed verify yet; run verify first"
    return None


def host_now(listing: dict) -> datetime:
    """The host's clock as the listing reported it (ages are measured on the host)."""
    return datetime.fromtimestamp(int(listing.get("now") or 0), UTC)


def plan_cleanup(listing: dict, settings, refusal: str | None = None) -> Plan:
    """The whole plan from the listing script's result."""
    image_items, image_kept, image_refused = plan_images(
        listing, settings.rollback_points_keep, refusal)
    containers = plan_containers(listing, settings.run_container_max_age_hours,
                                 host_now(listing))
    backup_items, backup_kept, backup_refused, newest = plan_backups(
        listing, settings.backups_keep)
    return Plan(items=tuple(image_items + containers + backup_items),
                kept=tuple(image_kept + backup_kept),
                refused=tuple(image_refused + backup_refused), newest_backup=newest)


def outcome(plan: Plan, result: dict | None, applied: bool) -> CleanupResult:
    """The cleanup's result from the apply script's report (None: it did not run)."""
    if not applied:
        return CleanupResult(plan, applied=False)
    by_key = {(a.get("kind"), a.get("name")): a for a in (result or {}).get("actions") or []}
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
    for item in shown:
        lines.append(f"{verb:13} {item.kind:9} {item.name}  {human_size(item.size)}  "
                     f"({item.detail})")
    for removal in result.left:
        lines.append(f"{'left':13} {removal.item.kind:9} {removal.item.name}  ({removal.reason})")
    lines += [f"{'kept':13} {line}" for line in plan.kept]
    lines += [f"{'refused':13} {line}" for line in plan.refused]
    if result.applied:
        lines.append(f"freed {human_size(result.freed_bytes)} "
                     f"({len(result.removed)} removed, {len(result.left)} left)")
    else:
        lines.append(f"plan: {len(plan.items)} items, {human_size(plan.size)}; nothing changed")
    return "\n".join(lines)
