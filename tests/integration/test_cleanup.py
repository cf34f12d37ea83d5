"""cleanup on the rig: dangling images go but never a rollback point's, older points are
released (tags, then the point), old run containers go, backups rotate (newest 7 of 10 kept
byte-identical, and the guard dump a kept point needs; foreign files untouched), nothing at
all while a change is under way or another run holds the lock, nothing rotates after a newest
backup that failed its checks, images wait for verify after an update, and rollback still
works after a prune."""

import json
import shlex

from tests.rig.config import REGISTRY

WEBAPP = f"{REGISTRY}/triggerdotdev/trigger.dev"
BACKUPS = "/var/backups/trigger"
POINTS = f"{BACKUPS}/rollback"
TRANSACTIONS = f"{BACKUPS}/transactions"
FOREIGN = ["notes.txt", "trigger-db-manual.sql.gz", "trigger-db-20250101-000000.sql.gz.partial",
           "pg_dumpall-20250101.sql"]
STAMPS = [f"202601{day:02d}-030000" for day in range(1, 11)]  # oldest first
GUARDED = STAMPS[0]  # the guard dump of a rollback point cleanup keeps
SIDECAR = """{{"file": "trigger-db-{s}.sql.zst", "origin": "trigger-maint", "purpose": "{purpose}",
 "compression": "zstd", "started_at": "{t}:00Z", "finished_at": "{t}:05Z",
 "size": $(stat -c %s trigger-db-{s}.sql.zst),
 "sha256": "$(sha256sum trigger-db-{s}.sql.zst | cut -d' ' -f1)", "postgres_version": "14",
 "trigger_version": "4.5.10", "layout": "v4", "images": {{}}, "databases": ["main"],
 "row_counts": {{"TaskRun": 250}}, "migrations": 5, "verified": {verified},
 "checks": {{"intact": true, "complete": true, "rows_match": {verified},
 "size_plausible": true}}, "files_archive": "trigger-files-{s}.tar.gz",
 "volumes": ["trigger-volume-{s}-shared.tar.gz"]}}"""


def make_backups(host, stamps=STAMPS, unverified=(), guards=()) -> None:
    """Backup sets in the tool's format (zstd dump, sidecar, files and volume archives, each
    file's time the stamp's) and files that are not the tool's own."""
    lines = [f"mkdir -p {BACKUPS} && cd {BACKUPS}"]
    for s in stamps:
        verified = "false" if s in unverified else "true"
        when = f"{s[:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}"
        sidecar = SIDECAR.format(s=s, t=when, verified=verified,
                                 purpose="guard" if s in guards else "backup")
        lines += [f"seq 1 {2000 + int(s[6:8])} | zstd -q > trigger-db-{s}.sql.zst",
                  f"tar -czf trigger-files-{s}.tar.gz -C /opt/trigger .env",
                  f"tar -czf trigger-volume-{s}-shared.tar.gz -C /opt/trigger .env",
                  f"cat > trigger-db-{s}.json <<EOF\n{sidecar}\nEOF",
                  f"touch -d '{when}:05Z' trigger-*-{s}*"]
    lines += [f"echo keep > {name}" for name in FOREIGN]
    lines.append("find . -maxdepth 1 -type f -exec chmod 600 {} +")
    host.run("\n".join(lines))


def checksums(host) -> dict[str, str]:
    out = host.run(f"cd {BACKUPS} && sha256sum -- * 2>/dev/null || true").stdout
    return {name: digest for digest, name in (line.split(None, 1) for line in out.splitlines())}


def image_id(host, ref: str) -> str:
    return host.run(f"docker image inspect --format '{{{{.Id}}}}' {ref}").stdout.strip()


def images(host) -> set[str]:
    return set(host.run("docker images -a -q --no-trunc").stdout.split())


def make_point(host, stamp: str, ids: dict, untagged=(), guard: str = "") -> None:
    """A rollback point as an update records it: point.json, images.tsv, state done, the
    guard dump's record (when `guard` names a backup stamp) and rollback tags (but none for
    the `untagged` services)."""
    tags = {svc: f"trigger-maint/rollback:{stamp}-{svc}" for svc in ids}
    point = {"stamp": stamp, "tx": f"{stamp}-update", "created_at": "2026-01-01T03:00:00Z",
             "layout": "v4", "path": "/opt/trigger", "version": "4.5.10", "target": "4.5.11",
             "migrations": 5, "files": [".env"],
             "images": {svc: {"id": i, "ref": f"{WEBAPP}:x", "digest": "", "tag": tags[svc]}
                        for svc, i in ids.items()}}
    folder = f"{POINTS}/{stamp}"
    tsv = "".join(f"{svc}\t{i}\t{WEBAPP}:x\t\n" for svc, i in ids.items())
    host.run(f"mkdir -p {folder}/files && cp /opt/trigger/.env {folder}/files/ && "
             f"printf %s {shlex.quote(json.dumps(point))} > {folder}/point.json && "
             f"printf %s {shlex.quote(tsv)} > {folder}/images.tsv && echo done > {folder}/state")
    if guard:
        record = {"file": f"trigger-db-{guard}.sql.zst", "origin": "trigger-maint",
                  "purpose": "guard", "sha256": ""}
        host.run(f"cat > {folder}/guard.json", input=json.dumps(record))
    for svc, i in ids.items():
        if svc not in untagged:
            host.run(f"docker tag {i} {tags[svc]}")


def cut_off_change(host, tx: str) -> None:
    """A change the host began and never ended (its runner is gone): CURRENT names it."""
    begin = json.dumps({"t": 1767236400, "ev": "begin", "tx": tx, "kind": "update",
                        "pid": 999999})
    host.run(f"mkdir -p {TRANSACTIONS}/{tx} && cat > {TRANSACTIONS}/{tx}/journal.jsonl && "
             f"echo {tx} > {TRANSACTIONS}/CURRENT", input=begin + "\n")


def dangle(host, version: str) -> str:
    """Leave the image of webapp:version untagged, as a pull of a moved floating tag does
    (through a scratch tag: the host's registry tags keep naming what the registry has)."""
    scratch = "rig-scratch/dangle:moved"
    host.run(f"docker pull -q {WEBAPP}:{version} >/dev/null && "
             f"docker pull -q {WEBAPP}:v4.5.12 >/dev/null")
    old = image_id(host, f"{WEBAPP}:{version}")
    host.run(f"docker tag {WEBAPP}:{version} {scratch} && docker rmi {WEBAPP}:{version} && "
             f"docker tag {WEBAPP}:v4.5.12 {scratch} && docker rmi {scratch}")
    assert old in host.run("docker images -q --no-trunc -f dangling=true").stdout.split()
    return old


def test_cleanup_plans_then_prunes_keeping_what_rollback_needs(cli, v4_host):
    h = v4_host
    counts = h.row_counts()
    h.run(f"docker pull -q {WEBAPP}:v4.5.11 >/dev/null")
    needed_dangling = dangle(h, "v4.5.14")  # a kept point names it
    loose = dangle(h, "v4.5.16")  # nothing needs it
    old, mid, new = "20251201-030000", "20251215-030000", "20260101-030000"
    released = image_id(h, f"{WEBAPP}:v4.5.11")
    make_point(h, old, {"webapp": released}, guard=STAMPS[1])
    # Only the rollback tag holds it now (earlier tests may have pulled it as v4 or latest).
    h.run(f"docker image inspect -f '{{{{join .RepoTags \"\\n\"}}}}' {released}"
          " | grep -v '^trigger-maint/rollback:' | xargs -r docker rmi >/dev/null")
    make_point(h, mid, {"webapp": image_id(h, f"{WEBAPP}:v4.5.12"),
                        "supervisor": needed_dangling}, untagged={"supervisor"}, guard=GUARDED)
    make_point(h, new, {"webapp": image_id(h, f"{WEBAPP}:v4.5.10")})
    piled = h.pile_exited_containers(3, "runner")
    h.pile_exited_containers(2, "other")
    make_backups(h, guards={GUARDED, STAMPS[1]})
    volumes = h.run("docker volume ls -q").stdout
    before_files, before_images = checksums(h), images(h)

    plan = cli(h, "cleanup", "--plan", "--json")
    assert plan.returncode == 0, plan.stderr
    doc = json.loads(plan.stdout)
    assert (doc["task"], doc["ok"], doc["applied"], doc["removed"]) == ("cleanup", True, False,
                                                                       [])
    listed = doc["plan"]
    planned = {(i["kind"], i["name"]) for i in listed["items"]}
    assert f"image {needed_dangling[7:19]}: kept (a rollback point needs it)" in listed["kept"]
    assert f"backup {GUARDED}: kept (a rollback point or a running change needs it)" in \
        listed["kept"]
    # The three oldest sets go, but the guard dump of kept point `mid`; the one of released
    # point `old` goes with it.
    gone_sets = STAMPS[1:3]
    assert planned == (
        {("image", loose), ("tag", f"trigger-maint/rollback:{old}-webapp"), ("point", old)}
        | {("backup", n) for n in before_files if any(s in n for s in gone_sets)
           and n not in FOREIGN})
    assert len([p for p in planned if p[0] == "backup"]) == 2 * 4
    dry = cli(h, "cleanup", "--dry-run", "--scripts")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove  image     {loose}" in dry.stdout
    assert f"would remove  point     {old}" in dry.stdout
    assert "# ---- " in dry.stderr and "(would run, changes the host)" in dry.stderr
    assert checksums(h) == before_files and images(h) == before_images

    run = cli(h, "cleanup", "--json", env={"FABRIC_TRIGGER_RUN_CONTAINER_MAX_AGE_HOURS": "0"})
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["applied"] is True and result["ok"] is True
    removed = {(r["item"]["kind"], r["item"]["name"]) for r in result["removed"]}
    assert removed == planned | {("container", n) for n in piled}
    assert result["left"] == []
    assert result["freed_bytes"] == sum(r["item"]["size"] for r in result["removed"]) > 0
    after_images = images(h)
    assert loose not in after_images and released not in after_images
    assert needed_dangling in after_images
    tags = h.run("docker images --format '{{.Tag}}' trigger-maint/rollback").stdout.split()
    assert sorted(tags) == [f"{mid}-webapp", f"{new}-webapp"]
    assert h.run(f"ls {POINTS}").stdout.split() == [mid, new]
    names = h.run("docker ps -a --format '{{.Names}}'").stdout.split()
    assert not set(piled) & set(names)
    assert len([n for n in names if n.startswith("other-")]) == 2
    assert h.run("docker volume ls -q").stdout == volumes
    after_files = checksums(h)
    kept = {n: d for n, d in before_files.items() if not any(s in n for s in gone_sets)
            or n in FOREIGN}
    assert after_files == kept
    dumps = [n for n in after_files if n.endswith(".sql.zst") and n not in FOREIGN]
    assert len(dumps) == 7 + 1  # the newest seven, and the guard dump kept point `mid` needs

    # A change under way (here one whose runner was cut off): nothing at all goes.
    make_backups(h, ["20260111-030000", "20260112-030000"], unverified={"20260112-030000"})
    loose = dangle(h, "v4.5.16")
    tx = "20260112-040000-update"
    cut_off_change(h, tx)
    before_files = checksums(h)
    run = cli(h, "cleanup")
    assert run.returncode == 0, run.stderr
    assert f"images: left alone (change {tx} is under way" in run.stdout
    assert f"backups: not rotated (change {tx} is under way)" in run.stdout
    assert checksums(h) == before_files and loose in images(h)
    assert h.run(f"ls {POINTS}").stdout.split() == [mid, new]

    # Another run holds the host's lock: exit 4, nothing goes.
    h.run(f"rm -r {TRANSACTIONS} && (flock /run/lock/trigger-maint.lock sleep 60 "
          ">/dev/null 2>&1 & echo $! > /run/holder) && sleep 0.3")
    try:
        busy = cli(h, "cleanup")
    finally:
        h.run("pkill -P $(cat /run/holder) sleep; rm -f /run/holder")
    assert busy.returncode == 4, busy.stdout
    assert "another trigger-maint run is working on this host" in busy.stderr
    assert loose in images(h) and checksums(h) == before_files

    # A newest backup that failed verification stops the rotation (older verified sets
    # would otherwise go); images are pruned all the same.
    run = cli(h, "cleanup")
    assert run.returncode == 0, run.stderr
    assert ("backups: not rotated (the newest backup trigger-db-20260112-030000.sql.zst "
            "failed its checks") in run.stdout
    assert f"removed       image     {loose}" in run.stdout
    assert checksums(h) == before_files and loose not in images(h)
    assert h.row_counts() == counts


def test_after_an_update_prune_waits_for_verify_and_rollback_still_works(cli, v4_host):
    h = v4_host
    counts, env = h.row_counts(), h.run("cat /opt/trigger/.env").stdout
    old_webapp = image_id(h, f"{WEBAPP}:v4.5.10")
    assert cli(h, "backup").returncode == 0
    loose = dangle(h, "v4.5.16")
    # one run: update, cleanup (refused: not verified), verify, cleanup (prunes)
    run = cli(h, "update", "--target", "v4.5.11", "--yes", "cleanup", "verify", "cleanup",
              env={"FABRIC_TRIGGER_OBSERVE_SECONDS": "3"})
    assert run.returncode == 0, run.stderr
    first, second = run.stdout.split("verify: all checks passed")
    assert "images: left alone (the update of this run has not passed verify yet" in first
    assert f"removed       image     {loose}" in second
    assert loose not in images(h)
    point = h.run(f"ls {POINTS}").stdout.split()[0]
    h.run(f"docker rmi {WEBAPP}:v4.5.10 >/dev/null")  # only the rollback tag holds it now
    again = cli(h, "cleanup", "--json")
    assert again.returncode == 0, again.stderr
    assert old_webapp in images(h)
    kept = json.loads(again.stdout)["plan"]["kept"]
    assert f"rollback point {point}: kept with its images" in kept
    guard = json.loads(h.run(f"cat {POINTS}/{point}/guard.json").stdout)["file"]
    assert guard in checksums(h)  # the guard dump the update took stays with its point

    back = cli(h, "rollback", "--yes")
    assert back.returncode == 0, back.stderr
    verified = cli(h, "verify", env={"FABRIC_TRIGGER_OBSERVE_SECONDS": "3"})
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "v4.5.10 as intended" in verified.stdout
    assert h.run("cat /opt/trigger/.env").stdout == env
    assert h.row_counts() == counts
