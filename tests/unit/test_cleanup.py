import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace

from trigger_maint.backups import human_size
from trigger_maint.cleanup import (
    Item,
    Plan,
    backup_sets,
    describe,
    image_refusal,
    outcome,
    parse_point,
    plan_backups,
    plan_cleanup,
    plan_containers,
    plan_images,
)
from trigger_maint.config import settings
from trigger_maint.layout import script_context
from trigger_maint.render import render

from .shell import assert_clean_bash

NOW = 1767268800  # 2026-01-01T12:00:00Z


def image_id(n: int) -> str:
    return "sha256:" + f"{n:02x}" * 32


def stamp(day: int) -> str:
    return f"202512{day:02d}-030000"


def backup_files(day: int, verified=True, size=52431, volumes=True) -> tuple[list, dict]:
    s = stamp(day)
    dump = f"trigger-db-{s}.sql.gz"
    files = [{"name": dump, "size": size}, {"name": f"trigger-db-{s}.json", "size": 900},
             {"name": f"trigger-files-{s}.tar.gz", "size": 4096}]
    sidecar = {"file": dump, "started_at": f"2025-12-{day:02d}T03:00:00Z",
               "finished_at": f"2025-12-{day:02d}T03:00:09Z", "size": 52431,
               "sha256": "ab" * 32, "postgres_version": "14.19", "trigger_version": "4.5.11",
               "layout": "v4", "images": {"webapp": image_id(1)},
               "row_counts": {"TaskRun": 250}, "migrations": 12, "verified": verified,
               "checks": {"gzip_intact": True, "complete": True, "rows_match": verified,
                          "size_plausible": True}, "files_archive": f"trigger-files-{s}.tar.gz",
               "volumes": []}
    if volumes:
        name = f"trigger-volume-{s}-trigger_shared.tar.gz"
        files.append({"name": name, "size": 2048})
        sidecar["volumes"] = [name]
    return files, {"name": f"trigger-db-{s}.json", "text": json.dumps(sidecar)}


FOREIGN = [{"name": "trigger-db-manual.sql.gz", "size": 10},
           {"name": "trigger-db-20251101-030000.sql.gz.partial", "size": 10},
           {"name": "trigger-notes-20251101-030000.txt", "size": 10}]


def backup_listing(days, unverified=(), sizes=None) -> dict:
    files, sidecars = list(FOREIGN), []
    for day in days:
        f, side = backup_files(day, verified=day not in unverified,
                               size=(sizes or {}).get(day, 52431))
        files += f
        sidecars.append(side)
    return {"now": NOW, "backups": files, "sidecars": sidecars}


def test_rotation_keeps_the_newest_seven_verified_sets_and_never_foreign_files():
    items, kept, refused, newest = plan_backups(backup_listing(range(1, 11)), keep=7)
    assert refused == []
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


def test_no_rotation_when_the_newest_backup_is_not_verified():
    items, kept, refused, _ = plan_backups(backup_listing(range(1, 11), unverified={10}), 7)
    assert items == [] and kept == []
    assert refused == [f"backups: not rotated (the newest backup trigger-db-{stamp(10)}.sql.gz "
                       "is not verified)"]


def test_a_dump_whose_size_differs_from_its_sidecar_is_not_verified():
    listing = backup_listing([1, 2], sizes={2: 100})
    sets = backup_sets(listing["backups"], {s["name"]: s["text"] for s in listing["sidecars"]})
    assert [(s.stamp, s.verified) for s in sets] == [(stamp(2), False), (stamp(1), True)]
    assert plan_backups(listing, 1)[0] == []


def test_unverified_sets_newer_than_the_kept_ones_stay_and_older_ones_go():
    listing = backup_listing(range(1, 7), unverified={5, 2})
    items, kept, _, _ = plan_backups(listing, keep=3)
    # newest first: 6 V, 5 U, 4 V, 3 V -> three verified kept (and 5); 2 and 1 go
    assert {i.name for i in items if i.name.endswith(".sql.gz")} == {
        f"trigger-db-{stamp(2)}.sql.gz", f"trigger-db-{stamp(1)}.sql.gz"}
    assert any("not verified" in line for line in kept)


def test_only_the_tools_own_names_belong_to_a_set_whatever_the_sidecar_says():
    files, side = backup_files(1)
    meta = json.loads(side["text"])
    odd = ["../etc/passwd", "notes.txt", "trigger-volume-x-20251201-030000.tar.gz",
           f"trigger-db-{stamp(1)}.sql.gz.bak", f"trigger-volume-{stamp(1)}-.tar.gz"]
    meta["volumes"] = odd
    files += [{"name": n, "size": 1} for n in odd[1:]]
    sets = backup_sets(files, {side["name"]: json.dumps(meta)})
    assert set(sets[0].files) == {f"trigger-db-{stamp(1)}.sql.gz", f"trigger-db-{stamp(1)}.json",
                                  f"trigger-files-{stamp(1)}.tar.gz",
                                  f"trigger-volume-{stamp(1)}-trigger_shared.tar.gz"}
    assert len(sets) == 1


def test_no_backups_no_plan():
    assert plan_backups({"backups": FOREIGN, "sidecars": []}, 7) == ([], [], [], "")


def point_text(s: str, ids: dict) -> str:
    return json.dumps({"stamp": s, "created_at": "2025-12-01T03:00:00Z",
                       "images": {svc: {"id": i, "tag": f"trigger-maint/rollback:{s}-{svc}"}
                                  for svc, i in ids.items()},
                       "files": [".env", "webapp/docker-compose.yml"]})


def image_listing() -> dict:
    points = {stamp(1): {"webapp": image_id(1), "postgres": image_id(9)},
              stamp(2): {"webapp": image_id(2), "postgres": image_id(9)},
              stamp(3): {"webapp": image_id(3), "postgres": image_id(9)}}
    tags = [{"tag": f"{s}-{svc}", "id": i} for s, ids in points.items() for svc, i in ids.items()]
    return {
        "now": NOW,
        "points": [{"name": s, "point": point_text(s, ids)} for s, ids in points.items()],
        "rollback_tags": tags + [{"tag": "manual-webapp", "id": image_id(7)}],
        "images": [{"id": image_id(n), "size": n * 1000, "created": "2025-11-01T00:00:00Z",
                    "tags": [f"trigger-maint/rollback:{stamp(n)}-webapp"]} for n in (1, 2, 3)],
        "dangling": [
            {"id": image_id(4), "size": 4000, "tags": [], "created": "2025-11-04T00:00:00Z"},
            {"id": image_id(5), "size": 5000, "tags": [], "created": "2025-11-05T00:00:00Z"},
            {"id": image_id(3), "size": 3000, "tags": [], "created": "2025-11-03T00:00:00Z"},
        ],
        "used_images": [image_id(5), image_id(9)],
        "in_progress": "",
    }


def test_images_keep_the_newest_points_and_release_older_tags():
    listing = image_listing()
    listing["points"].append({"name": "lost+found", "point": ""})  # not a point: ignored
    items, kept, refused = plan_images(listing, keep_points=2, refusal=None)
    assert refused == []
    by_kind = {(i.kind, i.name) for i in items}
    assert ("image", image_id(4)) in by_kind
    assert ("image", image_id(5)) not in by_kind  # a container uses it
    assert ("image", image_id(3)) not in by_kind  # the newest point needs it
    assert ("tag", f"trigger-maint/rollback:{stamp(1)}-webapp") in by_kind
    # postgres image 9 is also named by the kept points: its old tag stays
    assert ("tag", f"trigger-maint/rollback:{stamp(1)}-postgres") not in by_kind
    assert not any(stamp(2) in name or stamp(3) in name for _, name in by_kind)
    assert "tag trigger-maint/rollback:manual-webapp: kept (no rollback point named)" in kept
    released = next(i for i in items if i.name.endswith(f"{stamp(1)}-webapp"))
    assert released.ref == image_id(1) and released.size == 1000


def test_an_update_in_progress_keeps_its_point_and_refusals_leave_images_alone():
    listing = image_listing()
    listing["in_progress"] = stamp(1)
    items, kept, _ = plan_images(listing, keep_points=1, refusal=None)
    assert not any(stamp(1) in i.name for i in items)
    items, _, refused = plan_images(listing, keep_points=1, refusal="busy")
    assert items == [] and refused == ["images: left alone (busy)"]


def test_the_point_rollback_goes_to_by_default_is_kept_beyond_the_newest():
    listing = image_listing()
    listing["points"][0]["state"] = "done"  # stamp(1); stamps 2 and 3 were rolled back
    for point in listing["points"][1:]:
        point["state"] = "rolled-back"
    items, kept, _ = plan_images(listing, keep_points=1, refusal=None)
    assert not any(stamp(1) in i.name for i in items)
    assert [i.name for i in items if i.kind == "tag"] == [
        f"trigger-maint/rollback:{stamp(2)}-webapp"]
    assert f"rollback point {stamp(1)}: kept with its images" in kept


def test_parse_point_finds_ids_and_tags_whatever_the_shape():
    point = parse_point("s", json.dumps({"services": [{"image_id": image_id(1)},
                                                      {"image": image_id(2)[7:19]}],
                                         "tags": ["trigger-maint/rollback:s-webapp"]}))
    assert point.image_ids == {image_id(1)[7:19], image_id(2)[7:19]}
    assert point.tags == {"s-webapp"}
    assert parse_point("s", "{broken").image_ids == frozenset()


def test_image_refusal():
    update = SimpleNamespace(changed=True, to_version="4.5.12")
    assert image_refusal(None, None, "") is None
    assert "in progress" in image_refusal(None, None, stamp(1))
    assert "verify" in image_refusal(update, None, "")
    assert "verify" in image_refusal(update, SimpleNamespace(ok=False), "")
    assert image_refusal(update, SimpleNamespace(ok=True), "") is None
    assert image_refusal(SimpleNamespace(changed=False), None, "") is None


def run_container(name, finished, project=None, size=120):
    return {"id": "c" * 60 + name[-4:], "name": "/" + name, "finished_at": finished,
            "size": size, "compose_project": project}


def test_containers_older_than_the_age_go_and_stack_containers_never():
    listing = {"run_containers": [
        run_container("runner-cm1a2b3c", "2025-12-30T11:59:59.123456789Z"),
        run_container("runner-cm4d5e6f", "2026-01-01T11:00:00.5Z"),
        run_container("runner-webapp", "2025-12-01T00:00:00Z", project="trigger"),
        run_container("runner-never", "0001-01-01T00:00:00Z"),
    ]}
    items = plan_containers(listing, 24, datetime.fromtimestamp(NOW, UTC))
    assert [(i.name, i.detail, i.check) for i in items] == [
        ("runner-cm1a2b3c", "exited 48 h ago", "2025-12-30T11:59:59.123456789Z")]


def test_plan_outcome_and_freed_bytes():
    listing = {**image_listing(), **backup_listing(range(1, 10)), "run_containers": []}
    plan = plan_cleanup(listing, settings({}))
    assert plan.newest_backup == f"trigger-db-{stamp(9)}.sql.gz"
    assert len(plan.of("backup")) == 2 * 4
    report = {"actions": [{"kind": i.kind, "name": i.name, "done": True} for i in plan.items[1:]]
              + [{"kind": plan.items[0].kind, "name": plan.items[0].name, "done": False,
                  "reason": "in use"}]}
    result = outcome(plan, report, applied=True)
    assert result.freed_bytes == plan.size - plan.items[0].size
    assert result.left[0].reason == "in use"
    assert "freed" in describe(result)
    planned = describe(outcome(plan, None, applied=False))
    assert "would remove  backup" in planned and "nothing changed" in planned
    assert human_size(52431) in planned


HOSTILE = "trigger-db-20251201-030000.sql.gz'; rm -rf / #"


def test_scripts_render_clean_and_quote_every_name():
    s = settings({"backup_dir": "/var/backups/trig ger"})
    assert_clean_bash(render("cleanup-list", **script_context(s)))
    plan = Plan(items=(Item("image", image_id(4), 1, "dangling"),
                       Item("tag", f"trigger-maint/rollback:{stamp(1)}-webapp", 1, "old",
                            ref=image_id(1)),
                       Item("container", "runner-x", 1, "old", ref="c" * 64,
                            check="2025-12-30T11:59:59.1Z"),
                       Item("backup", HOSTILE, 7, "old")),
                kept=(), refused=(), newest_backup=f"trigger-db-{stamp(9)}.sql.gz")
    script = render("cleanup", plan=plan, **script_context(s))
    assert_clean_bash(script)
    assert "tm_lock" in script
    assert "tm_rm_backup 'trigger-db-20251201-030000.sql.gz'\"'\"'; rm -rf / #' 7" in script
    assert "docker volume" not in script and "prune" not in script
    assert " -v " not in script.split("tm_rm_container()")[1].split("}")[0]
