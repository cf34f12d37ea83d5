"""cleanup on the rig: dangling images go but never a rollback point's, older points are
released, old run containers go, backups rotate (newest 7 of 10 kept byte-identical, foreign
files untouched), nothing rotates when the newest backup is not verified, images wait for
verify after an update, and rollback still works after a prune."""

import json

from tests.rig.config import REGISTRY

WEBAPP = f"{REGISTRY}/triggerdotdev/trigger.dev"
BACKUPS = "/var/backups/trigger"
POINTS = f"{BACKUPS}/rollback"
FOREIGN = ["notes.txt", "trigger-db-manual.sql.gz", "trigger-db-20250101-000000.sql.gz.partial",
           "pg_dumpall-20250101.sql"]
STAMPS = [f"202601{day:02d}-030000" for day in range(1, 11)]  # oldest first
SIDECAR = """{{"file": "trigger-db-{s}.sql.gz", "started_at": "2026-01-01T03:00:00Z",
 "finished_at": "2026-01-01T03:00:05Z", "size": $(stat -c %s trigger-db-{s}.sql.gz),
 "sha256": "$(sha256sum trigger-db-{s}.sql.gz | cut -d' ' -f1)", "postgres_version": "14",
 "trigger_version": "4.5.10", "layout": "v4", "images": {{}}, "row_counts": {{"TaskRun": 250}},
 "migrations": 5, "verified": {verified}, "checks": {{"gzip_intact": true, "complete": true,
 "rows_match": {verified}, "size_plausible": true}},
 "files_archive": "trigger-files-{s}.tar.gz", "volumes": ["trigger-volume-{s}-shared.tar.gz"]}}"""


def make_backups(host, stamps=STAMPS, unverified=()) -> None:
    """Backup sets in the tool's format (dump, sidecar, files and volume archives) and
    files that are not the tool's own."""
    lines = [f"mkdir -p {BACKUPS} && cd {BACKUPS}"]
    for s in stamps:
        verified = "false" if s in unverified else "true"
        lines += [f"seq 1 {2000 + int(s[6:8])} | gzip > trigger-db-{s}.sql.gz",
                  f"tar -czf trigger-files-{s}.tar.gz -C /opt/trigger .env",
                  f"tar -czf trigger-volume-{s}-shared.tar.gz -C /opt/trigger .env",
                  f"cat > trigger-db-{s}.json <<EOF\n{SIDECAR.format(s=s, verified=verified)}\nEOF"]
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


def make_point(host, stamp: str, ids: dict, untagged=()) -> None:
    """A rollback point as update records it: point.json, state, and rollback tags (but
    none for the `untagged` services)."""
    point = {"stamp": stamp, "created_at": "2026-01-01T03:00:00Z", "version": "4.5.10",
             "target": "4.5.11", "backup": "", "migrations": 5,
             "images": {svc: {"id": i, "ref": f"{WEBAPP}:x"} for svc, i in ids.items()}}
    host.run(f"mkdir -p {POINTS}/{stamp} && cat > {POINTS}/{stamp}/point.json && "
             f"echo done > {POINTS}/{stamp}/state", input=json.dumps(point))
    for svc, i in ids.items():
        if svc not in untagged:
            host.run(f"docker tag {i} trigger-maint/rollback:{stamp}-{svc}")


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
    make_point(h, old, {"webapp": released})
    # Only the rollback tag holds it now (earlier tests may have pulled it as v4 or latest).
    h.run(f"docker image inspect -f '{{{{join .RepoTags \"\\n\"}}}}' {released}"
          " | grep -v '^trigger-maint/rollback:' | xargs -r docker rmi >/dev/null")
    make_point(h, mid, {"webapp": image_id(h, f"{WEBAPP}:v4.5.12"),
                        "supervisor": needed_dangling}, untagged={"supervisor"})
    make_point(h, new, {"webapp": image_id(h, f"{WEBAPP}:v4.5.10")})
    piled = h.pile_exited_containers(3, "runner")
    h.pile_exited_containers(2, "other")
    make_backups(h)
    volumes = h.run("docker volume ls -q").stdout
    before_files, before_images = checksums(h), images(h)

    plan = cli(h, "cleanup", "--plan", "--json")
    assert plan.returncode == 0, plan.stderr
    listed = json.loads(plan.stdout)["plan"]
    planned = {(i["kind"], i["name"]) for i in listed["items"]}
    assert f"image {needed_dangling[7:19]}: kept (a rollback point needs it)" in listed["kept"]
    gone_sets = STAMPS[:3]
    assert planned == (
        {("image", loose), ("tag", f"trigger-maint/rollback:{old}-webapp")}
        | {("backup", n) for n in before_files if any(s in n for s in gone_sets)
           and n not in FOREIGN})
    assert len([p for p in planned if p[0] == "backup"]) == 3 * 4
    dry = cli(h, "cleanup", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would remove  image     {loose}" in dry.stdout
    assert "# ---- " in dry.stdout and "(would run, changes the host)" in dry.stdout
    assert checksums(h) == before_files and images(h) == before_images

    run = cli(h, "cleanup", "--json", env={"FABRIC_TRIGGER_RUN_CONTAINER_MAX_AGE_HOURS": "0"})
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    removed = {(r["item"]["kind"], r["item"]["name"]) for r in result["removed"]}
    assert removed == planned | {("container", n) for n in piled}
    assert result["left"] == []
    assert result["freed_bytes"] == sum(r["item"]["size"] for r in result["removed"]) > 0
    after_images = images(h)
    assert loose not in after_images and released not in after_images
    assert needed_dangling in after_images
    tags = h.run("docker images --format '{{.Tag}}' trigger-maint/rollback").stdout.split()
    assert sorted(tags) == [f"{mid}-webapp", f"{new}-webapp"]
    names = h.run("docker ps -a --format '{{.Names}}'").stdout.split()
    assert not set(piled) & set(names)
    assert len([n for n in names if n.startswith("other-")]) == 2
    assert h.run("docker volume ls -q").stdout == volumes
    after_files = checksums(h)
    kept = {n: d for n, d in before_files.items() if not any(s in n for s in gone_sets)
            or n in FOREIGN}
    assert after_files == kept
    assert len([n for n in after_files if n.endswith(".sql.gz") and n not in FOREIGN]) == 7

    # A newer backup that failed verification stops the rotation (8 verified sets would
    # otherwise lose one); an update in progress stops image pruning.
    make_backups(h, ["20260111-030000", "20260112-030000"], unverified={"20260112-030000"})
    loose = dangle(h, "v4.5.16")
    h.run(f"echo {new} > {POINTS}/IN_PROGRESS")
    before_files = checksums(h)
    run = cli(h, "cleanup")
    assert run.returncode == 0, run.stderr
    assert "the newest backup trigger-db-20260112-030000.sql.gz is not verified" in run.stdout
    assert "images: left alone (an update is in progress" in run.stdout
    assert checksums(h) == before_files and loose in images(h)

    h.run(f"rm {POINTS}/IN_PROGRESS && (flock /run/lock/trigger-maint.lock sleep 60 "
          ">/dev/null 2>&1 & echo $! > /run/holder) && sleep 0.3")
    try:
        busy = cli(h, "cleanup")
    finally:
        h.run("pkill -P $(cat /run/holder) sleep; rm -f /run/holder")
    assert busy.returncode == 4, busy.stdout
    assert "another trigger-maint run is working on this host" in busy.stderr
    assert loose in images(h) and checksums(h) == before_files
    assert h.row_counts() == counts


def test_after_an_update_prune_waits_for_verify_and_rollback_still_works(cli, v4_host):
    h = v4_host
    counts, env = h.row_counts(), h.run("cat /opt/trigger/.env").stdout
    old_webapp = image_id(h, f"{WEBAPP}:v4.5.10")
    assert cli(h, "backup").returncode == 0
    loose = dangle(h, "v4.5.16")
    # one run: update, cleanup (refused: not verified), verify, cleanup (prunes)
    run = cli(h, "update", "--target", "v4.5.11", "cleanup", "verify", "cleanup",
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

    back = cli(h, "rollback", "--yes")
    assert back.returncode == 0, back.stderr
    verified = cli(h, "verify", env={"FABRIC_TRIGGER_OBSERVE_SECONDS": "3"})
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "v4.5.10 as intended" in verified.stdout
    assert h.run("cat /opt/trigger/.env").stdout == env
    assert h.row_counts() == counts
