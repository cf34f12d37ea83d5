"""The decisions a change is planned from, as tables of facts -> decision: which backup
counts, the rotation, the backup folder, the rollback points kept, the update's gate, what
to do before a change, whether a cut-off change goes forward or back."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from trigger_maint import backups, points, transactions
from trigger_maint.backups import FileEntry, Folder
from trigger_maint.plans import room, update_gate
from trigger_maint.points import PointImage, RollbackPoint
from trigger_maint.transactions import TxSummary

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
DIR = "/opt/trigger/backups"


def ours(stamp: str, hours_ago: float, verified=True, size=50_000, migrations=5,
         purpose="backup"):
    """A dump trigger-maint made, with its sidecar: (files, sidecars)."""
    name = f"trigger-db-{stamp}.sql.gz"
    done = NOW - timedelta(hours=hours_ago)
    sidecar = {"file": name, "origin": "trigger-maint", "purpose": purpose, "size": size,
               "finished_at": done.strftime("%Y-%m-%dT%H:%M:%SZ"), "sha256": "ab" * 32,
               "migrations": migrations, "verified": verified,
               "checks": {"intact": True, "complete": True, "rows_match": verified,
                          "size_plausible": True}}
    files = [FileEntry(name, size, done), FileEntry(f"trigger-db-{stamp}.json", 700, done),
             FileEntry(f"trigger-files-{stamp}.tar.gz", 900, done)]
    return files, {f"trigger-db-{stamp}.json": json.dumps(sidecar)}


def cron(stamp: str, hours_ago: float, size=40_000, inspected=None):
    """A dump the runbook's cron made (no sidecar, or one from backups --verify)."""
    name = f"trigger-db-{stamp}.sql.gz"
    when = NOW - timedelta(hours=hours_ago)
    files = [FileEntry(name, size, when)]
    if inspected is None:
        return files, {}
    sidecar = {"file": name, "origin": "external", "size": size,
               "mtime": int(when.timestamp()), "finished_at": when.isoformat(),
               "migrations": 5, "checks": {"intact": inspected, "complete": True,
                                           "size_plausible": True, "has_database": True}}
    return files, {f"trigger-db-{stamp}.json": json.dumps(sidecar)}


def folder(*parts, foreign=("README.txt",)) -> Folder:
    files, sidecars = [], {}
    for f, s in parts:
        files += f
        sidecars.update(s)
    files += [FileEntry(name, 10, NOW) for name in foreign]
    return Folder(DIR, tuple(files), sidecars)


# ---- which backup counts ---------------------------------------------------------------

@pytest.mark.parametrize("parts, usable, state", [
    ([ours("20261203-100000", 2)], "trigger-db-20261203-100000.sql.gz", "verified"),
    ([ours("20261203-100000", 2, verified=False)], None, "NOT TRUSTED"),
    ([cron("20261203-0300", 9)], None, "not inspected"),
    ([cron("20261203-0300", 9, inspected=True)], "trigger-db-20261203-0300.sql.gz",
     "inspected"),
    ([cron("20261203-0300", 9, inspected=False)], None, "NOT TRUSTED"),
    ([ours("20261201-100000", 50), cron("20261203-0300", 9)],
     "trigger-db-20261201-100000.sql.gz", "not inspected"),
])
def test_which_backup_counts(parts, usable, state):
    found = backups.in_folder(folder(*parts))
    newest = backups.newest_usable(found)
    assert (newest.name if newest else None) == usable
    assert state in backups.state(found[0])


def test_a_dump_changed_after_its_record_no_longer_counts():
    files, sidecars = ours("20261203-100000", 2)
    files[0] = FileEntry(files[0].name, 49_000, files[0].mtime)
    found = backups.in_folder(Folder(DIR, tuple(files), sidecars))
    assert not found[0].usable and "49000 bytes" in found[0].problems[0]


def test_foreign_files_and_stray_sidecars_are_named_not_backups():
    f = folder(cron("20261203-0300", 9), foreign=("README.txt", "trigger-db-manual.sql.gz"))
    assert backups.foreign_files(f) == ["README.txt", "trigger-db-manual.sql.gz"]
    assert [b.name for b in backups.in_folder(f)] == ["trigger-db-20261203-0300.sql.gz"]


# ---- which folder is the backup folder --------------------------------------------------

@pytest.mark.parametrize("configured, layout, dumps, expected", [
    ("/srv/backups", "runbook", 3, "/srv/backups"),
    ("", "runbook", 0, "/opt/trigger/backups"),
    ("", "v4", 4, "/opt/trigger/backups"),
    ("", "v4", 0, backups.DEFAULT_DIR),
    ("", "v3", 0, backups.DEFAULT_DIR),
])
def test_the_backup_folder_is_found(configured, layout, dumps, expected):
    assert backups.backup_dir_for(configured, layout, "/opt/trigger", dumps)[0] == expected


# ---- rotation ----------------------------------------------------------------------------

def test_rotation_keeps_the_newest_n_of_every_dump_and_never_a_foreign_file():
    nightly = [cron(f"202611{day:02d}-0300", 24 * (30 - day) + 9) for day in range(20, 30)]
    f = folder(ours("20261203-100000", 2), *nightly)
    rotation = backups.rotation(f, keep=7)
    kept = [line.split()[1].rstrip(":") for line in rotation.kept]
    assert kept == ["20261203-100000", *(f"202611{d:02d}-0300" for d in range(29, 23, -1))]
    removed = sorted(name for s in rotation.remove for name in s.files)
    assert removed == [f"trigger-db-202611{d:02d}-0300.sql.gz" for d in range(20, 24)]
    assert rotation.inspect_first == "" and rotation.refused == ""


def test_rotation_inspects_an_unchecked_newest_first_and_stops_after_a_failed_one():
    f = folder(ours("20261201-100000", 50), cron("20261203-0300", 9))
    assert backups.rotation(f, 1).inspect_first == "trigger-db-20261203-0300.sql.gz"
    bad = folder(ours("20261201-100000", 50), cron("20261203-0300", 9, inspected=False))
    rotation = backups.rotation(bad, 1)
    assert rotation.refused.startswith("the newest backup trigger-db-20261203-0300.sql.gz")
    assert rotation.remove == ()


def test_rotation_never_removes_a_dump_a_rollback_point_needs():
    f = folder(ours("20261203-100000", 2), ours("20261202-100000", 26, purpose="guard"),
               ours("20261201-100000", 50))
    rotation = backups.rotation(f, 1, frozenset({"trigger-db-20261202-100000.sql.gz"}))
    assert [s.stamp for s in rotation.remove] == ["20261201-100000"]
    assert any("rollback point" in line for line in rotation.kept)


# ---- rollback points ---------------------------------------------------------------------

def point(name, state="done", migrations=5, guard="g.sql.gz", tx=""):
    return RollbackPoint(name, state, migrations=migrations, guard=guard, tx=tx,
                         images=(PointImage("webapp", f"sha256:{name}", True),))


@pytest.mark.parametrize("states, keep, running, expected", [
    (["done", "done", "done"], 2, "", {"3", "2"}),
    (["rolled-back", "rolled-back", "done"], 1, "", {"3", "1"}),
    (["recorded", "done", "done"], 1, "tx-1", {"3", "2", "1"}),
])
def test_the_rollback_points_kept(states, keep, running, expected):
    found = [point(str(n), state, tx=f"tx-{n}") for n, state in
             zip((3, 2, 1), states, strict=True)]
    assert points.kept(found, keep, running) == expected


@pytest.mark.parametrize("migrations_now, point_migrations, guard, db, problem", [
    (5, 5, "g", False, ""),
    (6, 5, "g", True, ""),
    (6, 5, "", True, "no dump guards it"),
    (None, 5, "g", False, "cannot count"),
    (6, None, "", False, ""),
])
def test_what_a_rollback_needs(migrations_now, point_migrations, guard, db, problem):
    need = points.needs(point("p", migrations=point_migrations, guard=guard), migrations_now)
    assert need.db_restore == db
    assert (problem in " ".join(need.problems)) if problem else not need.problems


# ---- the update's gate -------------------------------------------------------------------

GIB = 1 << 30


@pytest.mark.parametrize("parts, migrations, free, force, ok, why", [
    ([ours("20261203-110000", 0.5)], 5, 100 * GIB, False, True, ""),
    ([ours("20261203-080000", 4)], 5, 100 * GIB, False, False, "minutes old"),
    ([ours("20261203-080000", 4)], 5, 100 * GIB, True, True, ""),
    ([ours("20261203-110000", 0.5)], 6, 100 * GIB, False, False, "holds 5 migrations"),
    ([cron("20261203-1130", 0.5, inspected=True)], 5, 100 * GIB, False, True, ""),
    ([cron("20261203-1130", 0.5)], 5, 100 * GIB, False, False, "no verified or inspected"),
    ([ours("20261203-110000", 0.5)], None, 100 * GIB, True, False, "cannot count"),
    ([ours("20261203-110000", 0.5, size=GIB)], 5, GIB, True, False, "backup folder has"),
])
def test_the_update_gate(parts, migrations, free, force, ok, why):
    found = backups.in_folder(folder(*parts))
    space = room(found, 3 * GIB, GIB, free, 100 * GIB)
    gate = update_gate(found, migrations, space, NOW, timedelta(minutes=120), force)
    assert gate.ok == ok and why in gate.problem
    if ok:
        assert gate.room_bytes >= 2 * found[0].size


def test_a_restore_needs_room_beside_the_live_database():
    assert "Docker's data" in room([], 3 * GIB, 2 * GIB, 100 * GIB, GIB).problem


# ---- before a change, and after one was cut off -----------------------------------------

@pytest.mark.parametrize("tx, kind, action", [
    (TxSummary(), "update", transactions.START),
    (TxSummary(current="t1", running=True, newest="t1", kind="update"), "update",
     transactions.ATTACH),
    (TxSummary(current="t1", running=False, newest="t1", kind="update"), "rollback",
     transactions.RESUME),
    (TxSummary(newest="t1", kind="update", outcome="rolled-back", seen=False), "update",
     transactions.REPORT),
    (TxSummary(newest="t1", kind="update", outcome="rolled-back", seen=True), "update",
     transactions.START),
    (TxSummary(newest="t1", kind="restore", outcome="done", seen=False), "update",
     transactions.START),
])
def test_before_a_change(tx, kind, action):
    assert transactions.before_change(tx, kind).action == action


def journal(*steps, changed=True):
    lines = [json.dumps({"t": 1, "ev": "begin", "tx": "t1", "kind": "update"})]
    if changed:
        lines.append(json.dumps({"t": 2, "ev": "fact", "key": "changed", "value": True}))
    for n, (name, status) in enumerate(steps, 1):
        lines.append(json.dumps({"t": 3, "ev": "step", "dir": "forward", "n": n, "step": name,
                                 "status": "start"}))
        if status != "start":
            lines.append(json.dumps({"t": 4, "ev": "step", "dir": "forward", "n": n,
                                     "step": name, "status": status}))
    return transactions.journal(lines)


@pytest.mark.parametrize("record, healthy, direction", [
    (journal(("record_point", "done"), ("pull", "start"), changed=False), True,
     transactions.ABANDON),
    (journal(("pin", "done"), ("pull", "start")), True, transactions.BACK),
    (journal(("pin", "done"), ("recreate", "done"), ("wait_healthy", "start")), True,
     transactions.FORWARD),
    (journal(("pin", "done"), ("recreate", "done"), ("wait_healthy", "start")), False,
     transactions.BACK),
    (journal(("pin", "done"), ("recreate", "start")), True, transactions.BACK),
])
def test_a_cut_off_change_goes_forward_or_back(record, healthy, direction):
    assert transactions.resume_direction(record, healthy, ("wait_healthy", "finish")) == \
        direction


def test_the_journal_reads_back_steps_facts_and_the_end_even_after_a_torn_line():
    lines = [json.dumps({"t": 1.5, "ev": "begin", "tx": "t1", "kind": "update"}),
             json.dumps({"t": 2, "ev": "step", "dir": "forward", "n": 1, "step": "pull",
                         "status": "start"}),
             json.dumps({"t": 9, "ev": "step", "dir": "forward", "n": 1, "step": "pull",
                         "status": "failed", "error": "no such image"}),
             json.dumps({"t": 9, "ev": "fact", "key": "images_after", "value": {"w": "x"}}),
             '{"t": 10, "ev": "st',
             json.dumps({"t": 11, "ev": "end", "tx": "t1", "outcome": "failed",
                         "step": "pull", "error": "no such image"})]
    j = transactions.journal(lines)
    assert (j.tx, j.kind, j.outcome, j.exit_code, j.failed_step) == ("t1", "update", "failed",
                                                                     5, "pull")
    assert j.steps[0].status == "failed" and j.steps[0].error == "no such image"
    assert (j.steps[0].ended_at - j.steps[0].started_at).total_seconds() == 7
    assert j.facts == {"images_after": {"w": "x"}} and not j.changed
