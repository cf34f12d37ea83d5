"""Cleanup: the plan from one listing (images, rollback points and their tags, run
containers, backups), what was done with it, and the scripts that list and apply it."""

import json
import re
import subprocess
from dataclasses import replace
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from trigger_maint import hostpaths
from trigger_maint.backups import FileEntry, Folder, backup_sets
from trigger_maint.cleanup import (
    Item,
    Listing,
    Plan,
    describe,
    image_refusal,
    kept_image_ids,
    outcome,
    plan_backups,
    plan_cleanup,
    plan_containers,
    plan_images,
    protected_dumps,
)
from trigger_maint.config import settings
from trigger_maint.hostpaths import HostPaths
from trigger_maint.scripts.base import install_inputs, new_marker
from trigger_maint.scripts.cleanup import APPLY, LIST, ApplyInputs, ListInputs, listing
from trigger_maint.transactions import TxSummary

from .builders import dump
from .shell import assert_clean_bash

NOW = 1767268800  # 2026-01-01T12:00:00Z
DIR = "/var/backups/trigger"
PATHS = HostPaths(DIR)
INPUTS = ListInputs(install_inputs(settings({})), PATHS)


def image_id(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


def stamp(day: int) -> str:
    return f"202512{day:02d}-030000"


def backup_files(day: int, verified=True, size=52431, volumes=True) -> tuple[list, dict]:
    """One backup set as cleanup-list reports it: its files and its sidecar."""
    s = stamp(day)
    dump_name = f"trigger-db-{s}.sql.gz"
    mtime = int(datetime(2025, 12, day, 3, 0, 9, tzinfo=UTC).timestamp())
    files = [{"name": dump_name, "size": size, "mtime": mtime},
             {"name": f"trigger-db-{s}.json", "size": 900, "mtime": mtime},
             {"name": f"trigger-files-{s}.tar.gz", "size": 4096, "mtime": mtime}]
    sidecar = {"file": dump_name, "origin": "trigger-maint", "purpose": "backup",
               "started_at": f"2025-12-{day:02d}T03:00:00Z",
               "finished_at": f"2025-12-{day:02d}T03:00:09Z", "size": 52431,
               "sha256": "ab" * 32, "postgres_version": "14.19", "trigger_version": "4.5.11",
               "layout": "v4", "images": {"webapp": image_id(1)},
               "row_counts": {"TaskRun": 250}, "migrations": 12, "verified": verified,
               "checks": {"intact": True, "complete": True, "rows_match": verified,
                          "size_plausible": True}, "files_archive": f"trigger-files-{s}.tar.gz",
               "volumes": []}
    if volumes:
        name = f"trigger-volume-{s}-trigger_shared.tar.gz"
        files.append({"name": name, "size": 2048, "mtime": mtime})
        sidecar["volumes"] = [name]
    return files, {"name": f"trigger-db-{s}.json", "text": json.dumps(sidecar)}


FOREIGN = [{"name": "trigger-db-manual.sql.gz", "size": 10, "mtime": NOW},
           {"name": "trigger-db-20251101-030000.sql.gz.partial", "size": 10, "mtime": NOW},
           {"name": "trigger-notes-20251101-030000.txt", "size": 10, "mtime": NOW}]


def backup_raw(days, unverified=(), sizes=None) -> dict:
    files, sidecars = list(FOREIGN), []
    for day in days:
        f, side = backup_files(day, verified=day not in unverified,
                               size=(sizes or {}).get(day, 52431))
        files += f
        sidecars.append(side)
    return {"files": files, "sidecars": sidecars, "dir": DIR, "exists": True}


def point_raw(name: str, ids: dict, state="done", tx="", guard="") -> dict:
    """One rollback point as templates/_points.sh.j2 lists it."""
    record = {"stamp": name, "tx": tx, "created_at": "2025-12-01T03:00:00Z",
              "version": "4.5.11", "target": "v4.5.12", "migrations": 12,
              "files": [".env", "webapp/docker-compose.yml"]}
    return {"name": name, "state": state + "\n", "point": json.dumps(record),
            "guard": json.dumps({"file": guard, "sha256": "cd" * 32}) if guard else "",
            "images": [{"service": svc, "id": i, "present": True} for svc, i in ids.items()]}


POINTS = {stamp(1): {"webapp": image_id(1), "postgres": image_id(9)},
          stamp(2): {"webapp": image_id(2), "postgres": image_id(9)},
          stamp(3): {"webapp": image_id(3), "postgres": image_id(9)}}


def image_raw(states=("done", "done", "done"), current="") -> dict:
    tags = [{"tag": f"{s}-{svc}", "id": i} for s, ids in POINTS.items() for svc, i in ids.items()]
    return {
        "now": NOW,
        "points": [point_raw(s, ids, state, tx=f"tx-{n}") for n, ((s, ids), state) in
                   enumerate(zip(POINTS.items(), states, strict=True), 1)],
        "rollback_tags": tags + [{"tag": "manual-webapp", "id": image_id(7)}],
        "images": [{"id": image_id(n), "size": n * 1000, "created": "2025-11-01T00:00:00Z",
                    "tags": [f"trigger-maint/rollback:{stamp(n)}-webapp"]} for n in (1, 2, 3)],
        "dangling": [
            {"id": image_id(4), "size": 4000, "tags": [], "created": "2025-11-04T00:00:00Z"},
            {"id": image_id(5), "size": 5000, "tags": [], "created": "2025-11-05T00:00:00Z"},
            {"id": image_id(3), "size": 3000, "tags": [], "created": "2025-11-03T00:00:00Z"},
        ],
        "used_images": [image_id(5), image_id(9)],
        "run_containers": [],
        "transactions": {"current": current, "alive": bool(current), "newest": current,
                         "first": "", "last": "", "seen": True},
        "files": [], "sidecars": [],
    }


def listed(**raw) -> Listing:
    """What cleanup-list reported, read by its script's parse."""
    return listing({"now": NOW, "dangling": [], "points": [], "files": [], **raw}, INPUTS)


# ---- backups ------------------------------------------------------------------------

def test_rotation_keeps_the_newest_seven_sets_and_never_foreign_files():
    items, kept, refused, newest, inspect = plan_backups(listed(**backup_raw(range(1, 11))), 7, 2)
    assert (refused, inspect) == ([], "")
    assert newest == f"trigger-db-{stamp(10)}.sql.gz"
    assert len(kept) == 7
    gone = [item.name for item in items]
    assert {re.search(r"\d{8}-\d{6}", name)[0] for name in gone} == {stamp(1), stamp(2), stamp(3)}
    assert len(gone) == 3 * 4
    # archives first, the dump, then the sidecar last: a cut-off run leaves a described set
    assert gone[:4] == [f"trigger-files-{stamp(3)}.tar.gz",
                        f"trigger-volume-{stamp(3)}-trigger_shared.tar.gz",
                        f"trigger-db-{stamp(3)}.sql.gz", f"trigger-db-{stamp(3)}.json"]
    assert not set(gone) & {f["name"] for f in FOREIGN}
    assert sum(i.size for i in items) == 3 * (52431 + 900 + 4096 + 2048)
    assert items[0].detail == f"backup {stamp(3)} (verified)"


def test_no_rotation_when_the_newest_backup_failed_its_checks():
    items, kept, refused, newest, _ = plan_backups(
        listed(**backup_raw(range(1, 11), unverified={10})), 7, 2)
    assert items == [] and kept == []
    assert refused == [f"backups: not rotated (the newest backup trigger-db-{stamp(10)}.sql.gz "
                       "failed its checks (failed checks: rows_match; not verified))"]
    assert newest == f"trigger-db-{stamp(10)}.sql.gz"


def test_a_dump_whose_size_differs_from_its_sidecar_is_not_trusted():
    found = listed(**backup_raw([1, 2], sizes={2: 100}))
    sets = backup_sets(found.folder)
    assert [(s.stamp, s.backup.usable) for s in sets] == [(stamp(2), False), (stamp(1), True)]
    assert plan_backups(found, 1, 2)[0] == []


def test_a_newest_dump_made_elsewhere_is_inspected_before_anything_rotates():
    raw = backup_raw(range(1, 4))
    raw["files"].append({"name": "trigger-db-20251204-0300.sql.gz", "size": 50000,
                         "mtime": int(datetime(2025, 12, 4, 3, 0, tzinfo=UTC).timestamp())})
    items, _, refused, newest, inspect = plan_backups(listed(**raw), 2, 2)
    assert refused == [] and newest == inspect == "trigger-db-20251204-0300.sql.gz"
    assert {i.name for i in items if ".sql." in i.name} == {f"trigger-db-{stamp(1)}.sql.gz",
                                                            f"trigger-db-{stamp(2)}.sql.gz"}


def test_only_the_tools_own_names_belong_to_a_set_whatever_the_sidecar_says():
    files, side = backup_files(1)
    meta = json.loads(side["text"])
    odd = ["../etc/passwd", "notes.txt", "trigger-volume-x-20251201-030000.tar.gz",
           f"trigger-db-{stamp(1)}.sql.gz.bak", f"trigger-volume-{stamp(1)}-.tar.gz"]
    meta["volumes"] = odd
    files += [{"name": n, "size": 1, "mtime": NOW} for n in odd[1:]]
    sets = backup_sets(listed(files=files, sidecars=[{"name": side["name"],
                                                      "text": json.dumps(meta)}]).folder)
    assert set(sets[0].files) == {f"trigger-db-{stamp(1)}.sql.gz", f"trigger-db-{stamp(1)}.json",
                                  f"trigger-files-{stamp(1)}.tar.gz",
                                  f"trigger-volume-{stamp(1)}-trigger_shared.tar.gz"}
    assert len(sets) == 1


def test_no_backups_no_plan():
    assert plan_backups(listed(files=FOREIGN), 7, 2) == ([], [], [], "", "")


def test_no_rotation_while_a_change_is_under_way():
    found = replace(listed(**backup_raw(range(1, 11))), transactions=TxSummary(current="tx-9"))
    assert plan_backups(found, 7, 2) == (
        [], [], ["backups: not rotated (change tx-9 is under way)"], "", "")


def test_the_guard_dump_of_a_kept_rollback_point_is_not_rotated():
    raw = backup_raw(range(1, 11))
    guard = f"trigger-db-{stamp(2)}.sql.gz"
    raw["points"] = [point_raw("20251202-030010", {"webapp": image_id(1)}, guard=guard)]
    found = listed(**raw)
    assert protected_dumps(found, 2) == frozenset({guard})
    items, kept, *_ = plan_backups(found, 7, 2)
    assert not any(stamp(2) in item.name for item in items)
    assert f"backup {stamp(2)}: kept (a rollback point or a running change needs it)" in kept


# ---- images, rollback points and their tags ------------------------------------------

def test_the_listing_reads_points_tags_and_images():
    raw = image_raw()
    raw["points"].append({"name": "lost+found", "point": ""})  # not a point: ignored
    raw["points"].append(point_raw("20251204-030000", {}) | {"point": "{broken"})
    found = listed(**raw)
    assert [p.name for p in found.points] == ["20251204-030000", stamp(3), stamp(2), stamp(1)]
    broken, newest = found.points[:2]
    assert not broken.readable and newest.readable and newest.state == "done"
    assert newest.images[0].id == image_id(3) and newest.tags == [
        f"trigger-maint/rollback:{stamp(3)}-webapp", f"trigger-maint/rollback:{stamp(3)}-postgres"]
    assert found.rollback_tags[f"{stamp(1)}-webapp"] == image_id(1)
    assert found.used_images == frozenset({image_id(5)[7:19], image_id(9)[7:19]})
    assert found.now == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def test_images_keep_the_newest_points_and_release_older_tags():
    items, kept, refused = plan_images(listed(**image_raw()), keep_points=2, refusal=None)
    assert refused == []
    by_kind = {(i.kind, i.name) for i in items}
    assert ("image", image_id(4)) in by_kind
    assert ("image", image_id(5)) not in by_kind  # a container uses it
    assert ("image", image_id(3)) not in by_kind  # the newest point needs it
    assert ("tag", f"trigger-maint/rollback:{stamp(1)}-webapp") in by_kind
    assert ("point", stamp(1)) in by_kind
    # postgres image 9 is also named by the kept points: its old tag stays
    assert ("tag", f"trigger-maint/rollback:{stamp(1)}-postgres") not in by_kind
    assert not any(stamp(2) in name or stamp(3) in name for _, name in by_kind)
    assert "tag trigger-maint/rollback:manual-webapp: kept (no rollback point names it)" in kept
    assert f"image {image_id(3)[7:19]}: kept (a rollback point needs it)" in kept
    released = next(i for i in items if i.name.endswith(f"{stamp(1)}-webapp"))
    assert released.ref == image_id(1) and released.size == 1000
    assert kept_image_ids(listed(**image_raw()), 2) == (image_id(2)[7:19], image_id(3)[7:19],
                                                         image_id(9)[7:19])


def test_a_change_under_way_keeps_its_point_and_refusals_leave_images_alone():
    found = listed(**image_raw(current="tx-1"))  # the oldest point's change
    items, kept, _ = plan_images(found, keep_points=1, refusal=None)
    assert not any(stamp(1) in i.name for i in items)
    items, _, refused = plan_images(found, keep_points=1, refusal="busy")
    assert items == [] and refused == ["images: left alone (busy)"]


def test_the_point_rollback_goes_to_by_default_is_kept_beyond_the_newest():
    found = listed(**image_raw(states=("done", "rolled-back", "rolled-back")))
    items, kept, _ = plan_images(found, keep_points=1, refusal=None)
    assert not any(stamp(1) in i.name for i in items)
    assert [i.name for i in items if i.kind == "tag"] == [
        f"trigger-maint/rollback:{stamp(2)}-webapp"]
    assert f"rollback point {stamp(1)}: kept with its images" in kept


def test_image_refusal():
    update = SimpleNamespace(changed=True, to_version="4.5.12")
    assert image_refusal(None, None, "") is None
    assert image_refusal(None, None, "tx-1") == "change tx-1 is under way; let it finish"
    assert "verify" in image_refusal(update, None, "")
    assert "verify" in image_refusal(update, SimpleNamespace(ok=False), "")
    assert image_refusal(update, SimpleNamespace(ok=True), "") is None
    assert image_refusal(SimpleNamespace(changed=False), None, "") is None


# ---- run containers -------------------------------------------------------------------

def run_container(name, finished, project=None, size=120):
    return {"id": "c" * 60 + name[-4:], "name": "/" + name, "finished_at": finished,
            "size": size, "compose_project": project}


def test_containers_older_than_the_age_go_and_stack_containers_never():
    found = listed(run_containers=[
        run_container("runner-cm1a2b3c", "2025-12-30T11:59:59.123456789Z"),
        run_container("runner-cm4d5e6f", "2026-01-01T11:00:00.5Z"),
        run_container("runner-webapp", "2025-12-01T00:00:00Z", project="trigger"),
        run_container("runner-never", "0001-01-01T00:00:00Z"),
    ])
    items = plan_containers(found, 24)
    assert [(i.name, i.detail, i.check) for i in items] == [
        ("runner-cm1a2b3c", "exited 48 h ago", "2025-12-30T11:59:59.123456789Z")]
    assert items[0].ref == "c" * 60 + "2b3c"


# ---- the whole plan, and what was done ------------------------------------------------

def test_plan_outcome_and_freed_bytes():
    raw = {**image_raw(), **backup_raw(range(1, 10))}
    plan = plan_cleanup(listed(**raw), 7, 2, 24)
    assert plan.newest_backup == f"trigger-db-{stamp(9)}.sql.gz"
    assert len(plan.of("backup")) == 2 * 4
    actions = ([{"kind": i.kind, "name": i.name, "done": True} for i in plan.items[2:]]
               + [{"kind": plan.items[0].kind, "name": plan.items[0].name, "done": False,
                   "reason": "in use"}])
    result = outcome(plan, actions, applied=True)
    assert result.freed_bytes == plan.size - plan.items[0].size - plan.items[1].size
    assert [(r.item.name, r.reason) for r in result.left] == [
        (plan.items[0].name, "in use"), (plan.items[1].name, "not reached")]
    text = describe(result)
    assert "freed" in text and f"left          {plan.items[0].kind}" in text
    planned = describe(outcome(plan, None, applied=False))
    assert "would remove  backup" in planned and "nothing changed" in planned
    assert "51.2 KiB" in planned
    assert outcome(plan, None, applied=False).removed == ()


def test_the_plan_says_it_inspects_a_dump_made_elsewhere_first():
    plan = Plan(items=(), kept=(), refused=(), inspect_first="trigger-db-20251204-0300.sql.gz")
    assert describe(outcome(plan, None, applied=False)).startswith(
        "inspect       backup    trigger-db-20251204-0300.sql.gz (the newest")


# ---- the scripts ------------------------------------------------------------------------

HOSTILE = "trigger-db-20251201-030000.sql.gz'; rm -rf / #"


TRIG_GER = HostPaths("/var/backups/trig ger")


def apply_script() -> str:
    """The apply script of a plan naming one item of each kind (a hostile backup name)."""
    plan = Plan(items=(Item("image", image_id(4), 1, "dangling"),
                       Item("tag", f"trigger-maint/rollback:{stamp(1)}-webapp", 1, "old",
                            ref=image_id(1)),
                       Item("point", stamp(1), 0, "older rollback point (done)"),
                       Item("container", "runner-x", 1, "old", ref="c" * 64,
                            check="2025-12-30T11:59:59.1Z"),
                       Item("backup", HOSTILE, 7, "old")),
                kept=(), refused=(), newest_backup=f"trigger-db-{stamp(9)}.sql.gz")
    return APPLY.render(ApplyInputs(install_inputs(settings({})), dump(TRIG_GER.backup_dir),
                                    TRIG_GER, plan, (image_id(2)[7:19], image_id(3)[7:19])),
                        new_marker())


def test_scripts_render_clean_bash():
    assert_clean_bash(LIST.render(ListInputs(install_inputs(settings({})), TRIG_GER),
                                  new_marker()))
    assert_clean_bash(apply_script())


def test_the_apply_script_quotes_every_name_and_removes_only_the_plan():
    script = apply_script()
    assert "\ntm_lock\n" in script
    assert "tm_rm_backup 'trigger-db-20251201-030000.sql.gz'\"'\"'; rm -rf / #' 7" in script
    assert f"tm_rm_point {stamp(1)}\n" in script
    assert f"TM_KEPT_IDS=({image_id(2)[7:19]} {image_id(3)[7:19]})" in script
    assert "TM_RB='/var/backups/trig ger/rollback'" in script
    assert f"grep -E -- '{hostpaths.DUMP}'" in script
    # never a volume, never a prune: only the planned items, each by name
    assert "docker volume rm" not in script and "prune" not in script
    assert " -v " not in script.split("tm_rm_container()")[1].split("}")[0]


@pytest.fixture(scope="module")
def empty_apply() -> str:
    """The apply script of an empty plan, told to keep images 2 and 3."""
    plan = Plan(items=(), kept=(), refused=())
    return APPLY.render(ApplyInputs(install_inputs(settings({})), dump(DIR), PATHS, plan,
                                    (image_id(2)[7:19], image_id(3)[7:19])), new_marker())


def test_an_empty_plan_is_clean_bash_that_removes_nothing(empty_apply):
    assert_clean_bash(empty_apply)
    assert not re.search(r"^tm_(rm|release)_\w+ ", empty_apply, re.M)


@pytest.fixture(scope="module")
def kept_image_helper(empty_apply) -> str:
    """tm_kept_image of an apply script told to keep images 2 and 3."""
    script = empty_apply
    helper = re.search(r"^tm_kept_image\(\) \{.*?^\}$", script, re.S | re.M).group(0)
    kept_ids = next(line for line in script.splitlines() if line.startswith("TM_KEPT_IDS="))
    return f"{kept_ids}\n{helper}\n"


@pytest.mark.parametrize("image, kept", [(image_id(2), True), ("sha256:" + "ff" * 32, False),
                                         (image_id(3)[7:19], True)])
def test_the_apply_script_recognizes_a_kept_image_by_its_short_id(kept_image_helper, image,
                                                                   kept):
    done = subprocess.run(["bash", "-c", f"{kept_image_helper}tm_kept_image {image}"])
    assert (done.returncode == 0) == kept


def test_every_kept_points_images_reach_the_apply_script():
    found = listed(**{**image_raw(), "files": [{"name": "README", "size": 1, "mtime": NOW}]})
    assert isinstance(found.folder, Folder) and found.folder.files == (
        FileEntry("README", 1, datetime.fromtimestamp(NOW, UTC)),)
    assert kept_image_ids(found, 3) == tuple(sorted({image_id(n)[7:19] for n in (1, 2, 3, 9)}))
