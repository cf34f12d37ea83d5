"""Rollback points: what an update recorded before it changed anything, which point
`rollback` goes to, and which points (and so which images and guard dumps) must be kept.
Pure functions over what the host listed.

A point is <backup_dir>/rollback/<stamp>/: point.json, images.tsv (service, image ID,
reference, repo digest), files/ (copies of .env and the compose files), guard.json (the dump
taken right before the change) and state (recorded, done or rolled-back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from .hostpaths import POINT_RE, rollback_tag

DONE = "done"  # an update that completed: `rollback` without --point goes there


@dataclass(frozen=True)
class PointImage:
    service: str
    id: str
    present: bool  # still on the host (else it is pulled by digest)


@dataclass(frozen=True)
class RollbackPoint:
    """One recorded rollback point on the host."""

    name: str  # YYYYmmdd-HHMMSS[-N]
    state: str  # recorded, done, rolled-back
    created_at: str = ""
    tx: str = ""  # the transaction that recorded it
    version: str | None = None  # what ran when it was recorded
    target: str = ""  # what the update installed ("" = current tags pulled)
    migrations: int | None = None
    images: tuple[PointImage, ...] = ()
    guard: str = ""  # the guard dump's file name ("" when none was taken)
    guard_sha256: str = ""
    readable: bool = True

    @property
    def missing_images(self) -> list[str]:
        return [i.service for i in self.images if not i.present]

    @property
    def tags(self) -> list[str]:
        """The local tags that keep its images."""
        return [rollback_tag(self.name, i.service) for i in self.images]


def _json(text: str):
    try:
        value = json.loads(text or "null")
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse(items: list) -> list[RollbackPoint]:
    """The points a script listed ({name, state, point, guard, images}), newest first."""
    points = []
    for item in items or []:
        if not isinstance(item, dict) or not POINT_RE.match(str(item.get("name") or "")):
            continue
        record = _json(item.get("point", ""))
        guard = _json(item.get("guard", "")) or {}
        images = tuple(PointImage(str(i.get("service") or ""), str(i.get("id") or ""),
                                  i.get("present") is True)
                       for i in item.get("images") or [] if isinstance(i, dict))
        migrations = (record or {}).get("migrations")
        points.append(RollbackPoint(
            name=item["name"],
            state=str(item.get("state") or "unknown").strip(),
            created_at=str((record or {}).get("created_at") or ""),
            tx=str((record or {}).get("tx") or ""),
            version=(record or {}).get("version") or None,
            target=str((record or {}).get("target") or ""),
            migrations=migrations if isinstance(migrations, int) else None,
            images=images,
            guard=str(guard.get("file") or ""),
            guard_sha256=str(guard.get("sha256") or ""),
            readable=record is not None,
        ))
    return sorted(points, key=lambda p: p.name, reverse=True)


def default_point(points: list[RollbackPoint]) -> RollbackPoint | None:
    """Where `rollback` goes without --point: the newest point of an update that completed."""
    return next((p for p in points if p.state == DONE), None)


def kept(points: list[RollbackPoint], keep: int, running: str = "") -> set[str]:
    """The points whose images and guard dumps must stay: the newest `keep`, the one
    `rollback` would go to, and the one of a change under way (`running`, a tx id)."""
    names = {p.name for p in points[:keep]}
    default = default_point(points)
    if default is not None:
        names.add(default.name)
    names |= {p.name for p in points if running and p.tx == running}
    return names


@dataclass(frozen=True)
class PointChoice:
    """The point a rollback goes to, or why there is none."""

    point: RollbackPoint | None
    problem: str = ""


def choose(points: list[RollbackPoint], wanted: str = "") -> PointChoice:
    """The point named by --point, else the default one."""
    if wanted:
        found = next((p for p in points if p.name == wanted), None)
        return PointChoice(found, "" if found else f"no rollback point {wanted}")
    chosen = default_point(points)
    return PointChoice(chosen, "" if chosen else "no rollback point of a completed update "
                                                 "(every update records one)")


def free_name(points: list[RollbackPoint], now: datetime) -> str:
    """A name for a new point: the UTC time, with -2, -3... when taken."""
    base = now.strftime("%Y%m%d-%H%M%S")
    taken = {p.name for p in points}
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}-{n}"
    return name


@dataclass(frozen=True)
class Needs:
    """What a rollback to a point needs, decided from the facts."""

    db_restore: bool  # migrations ran since the point: the database goes back too
    problems: tuple[str, ...] = field(default=())  # why it cannot be done


def needs(point: RollbackPoint, migrations_now: int | None) -> Needs:
    """Whether going back to `point` restores the database, and what stands in the way."""
    problems = []
    if not point.readable:
        problems.append(f"rollback point {point.name} is unreadable")
    if point.migrations is None:
        return Needs(False, tuple(problems))
    if migrations_now is None:
        problems.append("cannot count the database's migrations (is the database running?)")
        return Needs(False, tuple(problems))
    db = migrations_now > point.migrations
    if db and not point.guard:
        problems.append(f"migrations ran since rollback point {point.name} "
                        f"({point.migrations} -> {migrations_now}) and no dump guards it")
    return Needs(db, tuple(problems))
