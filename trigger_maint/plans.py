"""The plans of the three changes, and the gates before them, decided in Python from facts.

Each plan is what the host's runner carries out (templates/runner.sh.j2): forward steps,
and undo steps each tied to the forward step it reverses. The update's gate decides whether
an update may start at all; nothing here talks to a host.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from . import backups, units
from .backups import Backup
from .hostpaths import HostPaths
from .points import RollbackPoint
from .transactions import Plan, Step, Undo

SAFETY_MARGIN = 1.2  # room asked for beyond the estimated size of a dump
MIN_ESTIMATE = 16 * 1024 * 1024  # the smallest dump size assumed when nothing else tells


@dataclass(frozen=True)
class Budgets:
    """Seconds each kind of step may take on the host."""

    pull: int
    dump: int
    health: int
    health_fail: int
    short: int = 120  # bookkeeping steps
    recreate: int = 600  # `docker compose up -d`: stop and start every service

    # A step's budget is the watchdog's limit on the host: where a step has a limit of its
    # own (the pull's, the dump's), the budget leaves it room to act first and clean up.
    @property
    def pull_step(self) -> int:
        return self.pull + 60

    @property
    def dump_step(self) -> int:
        """One dump or restore, then its checks and sync."""
        return self.dump + 120


@dataclass(frozen=True)
class Gate:
    """Whether an update may start: the backup that counts for it and the room it needs."""

    ok: bool
    problem: str = ""  # why not (exit 4), for people
    backup: Backup | None = None  # the newest usable backup
    room_bytes: int = 0  # free bytes the update's dumps need in the backup folder
    notes: tuple[str, ...] = ()  # what --force let pass


def dump_estimate(found: list[Backup], cluster_bytes: int | None) -> int:
    """The bytes one more dump of this database will take: the newest dump's size, else a
    third of the cluster on disk."""
    sizes = [b.size for b in backups.newest_first(found) if b.size]
    if sizes:
        return max(sizes[0], MIN_ESTIMATE)
    return max((cluster_bytes or 0) // 3, MIN_ESTIMATE)


@dataclass(frozen=True)
class Room:
    """Whether the host has room for a change's dumps and a database restore."""

    problem: str  # "" when it has
    bytes: int  # free bytes the dumps need in the backup folder


def room(found: list[Backup], cluster_bytes: int | None, database_bytes: int | None,
         backup_free: int | None, docker_free: int | None) -> Room:
    """Room in the backup folder for two dumps (an update's guard dump and a rollback's
    safety dump), and in Docker's data for a second copy of the database while a restore
    swaps it in."""
    need = int(2 * dump_estimate(found, cluster_bytes) * SAFETY_MARGIN)
    if backup_free is not None and backup_free < need:
        return Room(f"the backup folder has {units.size(backup_free)} free; a guard dump and a "
                    f"safety dump need about {units.size(need)}", need)
    need_db = int((database_bytes or 0) * SAFETY_MARGIN)
    if docker_free is not None and docker_free < need_db:
        return Room(f"Docker's data has {units.size(docker_free)} free; restoring the "
                    f"database beside the live one needs about {units.size(need_db)}", need)
    return Room("", need)


def update_gate(found: list[Backup], migrations: int | None, space: Room, now: datetime,
                max_age: timedelta, force: bool) -> Gate:
    """An update needs, before anything changes: a verified (or inspected) backup younger
    than `max_age` holding the database's current migrations (--force lets this pass), and
    room for its dumps (see `room`)."""
    if migrations is None:
        return Gate(False, "cannot count the database's migrations (is the database running?)")
    if space.problem:
        return Gate(False, space.problem, room_bytes=space.bytes)
    newest = backups.newest_usable(found)
    problem = ""
    if newest is None:
        problem = "no verified or inspected backup"
    elif newest.age(now) > max_age:
        minutes = int(newest.age(now).total_seconds() // 60)
        problem = (f"the newest verified backup {newest.name} is {minutes} minutes old "
                   f"(the limit is {int(max_age.total_seconds() // 60)})")
    elif newest.migrations is not None and newest.migrations != migrations:
        problem = (f"the newest verified backup {newest.name} holds {newest.migrations} "
                   f"migrations, the database {migrations}")
    if problem and not force:
        return Gate(False, problem + "; run `trigger-maint backup` first (or --force)", newest,
                    space.bytes)
    return Gate(True, "", newest, space.bytes, (f"--force: {problem}",) if problem else ())


def _health(b: Budgets) -> tuple[str, ...]:
    return (str(b.health), str(b.health_fail))


def update_plan(tx: str, paths: HostPaths, point: str, target: str, from_version: str,
                pin: tuple[str, ...], migrations: int, room: int, b: Budgets,
                facts: dict, fallback: Backup | None = None) -> Plan:
    """Record a rollback point, pin the target, pull, take the guard dump, recreate, wait for
    health; on failure after the first change: files, tags, the database (when migrations
    ran), the old images, health. `pin` is the pin step's arguments ("" target: none).

    `fallback` is the verified backup the gate accepted: when the guard dump cannot be
    restored (damaged, missing), the way back goes on to the old images with the database
    left as it is, and names `fallback` (checked against its SHA-256) to restore by hand."""
    d = paths.point(point)
    keep = (fallback.name, fallback.sha256) if fallback is not None and fallback.sha256 \
        else ()
    forward = [
        Step("recheck", (str(migrations), str(room)), says="check the database and the room "
             "for dumps are as planned", budget=b.short),
        Step("record_point", (d, target, from_version), says=f"record rollback point {point}: "
             ".env, compose files, every service's image ID", budget=b.short),
    ]
    if target:
        forward.append(Step("pin", pin, change=True, says=f"pin {target} in "
                            f"{', '.join(pin[5:])}", budget=b.short))
    forward += [
        Step("pull", change=True, says="pull the images (nothing is stopped)",
             budget=b.pull_step),
        Step("compare", (d,), says="stop here if nothing would change", budget=b.short),
        Step("guard_dump", (d,), says="guard dump: a verified dump of the database right "
             "before the change", budget=b.dump_step),
        Step("recreate", change=True, says="recreate the services on the new images",
             budget=b.recreate),
        Step("wait_healthy", _health(b), says="wait for health: every service up, "
             "/healthcheck 200; a crash, a restart, Docker's unhealthy or a failing "
             f"/healthcheck for {b.health_fail} s is known bad at once", budget=b.health + 30),
        Step("finish", (d,), says="mark the rollback point as a completed update",
             budget=b.short),
    ]
    n = {s.name: i for i, s in enumerate(forward, 1)}
    back = []
    if target:
        back.append(Undo(n["pin"], "restore_files", (d,), "put .env and the compose files "
                         "back", b.short))
    back += [
        Undo(n["pull"], "retag", (d,), "point the image tags at the old images again",
             b.short),
        Undo(n["recreate"], "restore_db", (d, *keep), "when migrations ran: restore the "
             "database from the guard dump (checked against its SHA-256), the live one kept "
             "aside; a damaged guard dump is not restored (the database stays as it is, the "
             "old images come back all the same)", b.dump_step),
        Undo(n["recreate"], "recreate", (), "recreate the services on the old images",
             b.recreate),
        Undo(n["recreate"], "wait_healthy", _health(b), "wait for health", b.health + 30),
        Undo(n["recreate"], "check_images", (d,), "check every service runs its old image ID",
             b.short),
        Undo(n["record_point"], "mark", (d, "rolled-back"), "mark the point rolled back",
             b.short),
        Undo(n["recreate"], "save_aside", (), "save the failed release's database as a "
             "safety backup, then drop it (kept in PostgreSQL when it cannot be saved)",
             b.dump_step),
    ]
    return Plan("update", tx, tuple(forward), tuple(back), facts)


def rollback_plan(tx: str, paths: HostPaths, point: RollbackPoint, migrations: int,
                  room: int, db_restore: bool, b: Budgets, facts: dict) -> Plan:
    """Back to `point`: its images (pulled by digest when pruned), files, tags, the database
    when migrations ran since (from the point's guard dump), health, the old image IDs."""
    d = paths.point(point.name)
    forward = [
        Step("recheck", (str(migrations), str(room)), says="check the database and the room "
             "for dumps are as planned", budget=b.short),
        Step("point_images", (d,), says=f"make sure the images of point {point.name} are on "
             "the host (pulled by digest when pruned)", budget=b.pull_step),
        Step("restore_files", (d,), change=True, says="put .env and the compose files back",
             budget=b.short),
        Step("retag", (d,), change=True, says="point the image tags at the point's images",
             budget=b.short),
    ]
    if db_restore:
        forward.append(Step("restore_db", (d,), change=True, says="restore the database from "
                            f"the guard dump {point.guard} (checked against its SHA-256); the "
                            "live one kept aside", budget=b.dump_step))
    forward += [
        Step("recreate", change=True, says="recreate the services on the point's images",
             budget=b.recreate),
        Step("wait_healthy", _health(b), says="wait for health", budget=b.health + 30),
        Step("check_images", (d,), says="check every service runs the point's image ID",
             budget=b.short),
        Step("mark", (d, "rolled-back"), says="mark the point rolled back", budget=b.short),
    ]
    if db_restore:
        forward.append(Step("save_aside", says="save the replaced database as a safety backup, "
                            "then drop it", budget=b.dump_step))
    return Plan("rollback", tx, tuple(forward), (), facts)


def restore_plan(tx: str, backup: Backup, b: Budgets, facts: dict) -> Plan:
    """Stop what uses the database, take a safety dump, restore with the live databases kept
    aside, start, wait for health; on failure the databases go back and the services start."""
    forward = (
        Step("check_backup", (backup.name, backup.sha256), says=f"check {backup.name} against "
             "its SHA-256, complete, holding the database", budget=b.dump_step),
        Step("stop_services", change=True, says="stop every service but the database and "
             "Redis", budget=b.recreate),
        Step("safety_dump", says="safety dump of the live database", budget=b.dump_step),
        Step("restore_cluster", (backup.name,), says=f"restore {backup.name}, the live "
             "databases renamed aside", budget=b.dump_step),
        Step("start_services", says="start the stopped services", budget=b.recreate),
        Step("wait_healthy", _health(b), says="wait for health", budget=b.health + 30),
        Step("drop_aside", says="drop the databases kept aside", budget=b.short),
    )
    back = (
        Undo(4, "put_back", (), "drop the restored databases, rename the kept ones back",
             b.short),
        Undo(2, "start_services", (), "start the stopped services", b.recreate),
        Undo(2, "wait_healthy", _health(b), "wait for health", b.health + 30),
    )
    return Plan("restore", tx, forward, back, facts)


def tx_id(now: datetime, kind: str) -> str:
    """A transaction's id: UTC time and kind."""
    return f"{now.strftime('%Y%m%d-%H%M%S')}-{kind}"
