"""backup, backups and restore through the real CLI on rig hosts.

Every failure path also proves that nothing was lost: the earlier backups are byte-identical
(SHA-256 of every file in the backup folder) and the database rows are unchanged.
"""

import contextlib
import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.rig import proc
from tests.rig.config import KNOWN_HOSTS, REGISTRY

MARKER = "-- PostgreSQL database cluster dump complete"
ALL_CHECKS = {"intact", "complete", "rows_match", "size_plausible", "restore_rows",
              "restore_migrations"}


def backup_dir(host) -> str:
    """The folder trigger-maint finds: the runbook's own, else /var/backups/trigger."""
    return "/opt/trigger/backups" if host.layout == "runbook" else "/var/backups/trigger"


def _fresh(host, layout):
    with host.lock():
        host.reset(layout)
        yield host


@pytest.fixture(scope="module")
def v4(rig_hosts):
    """The 1st assigned host with a fresh v4 installation, shared by this module's tests."""
    yield from _fresh(rig_hosts[0], "v4")


@pytest.fixture(scope="module")
def runbook(rig_hosts):
    """The 3rd assigned host with a fresh runbook installation (database user trigger)."""
    if len(rig_hosts) < 3:
        pytest.skip("needs 3 rig hosts")
    yield from _fresh(rig_hosts[2], "runbook")


def start_cli(host, tmp_path, *args) -> subprocess.Popen:
    """The real trigger-maint in the background, with the rig's environment."""
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
           "FABRIC_TRIGGER_REGISTRY": REGISTRY, "FABRIC_TRIGGER_GITHUB_API": "http://127.0.0.1:9",
           "FABRIC_TRIGGER_CACHE_DIR": str(tmp_path / "cache"),
           "FABRIC_TRIGGER_REPORT_DIR": str(tmp_path / "reports")}
    exe = Path(sys.executable).parent / "trigger-maint"
    return subprocess.Popen([str(exe), *host.fab_args(), *args], env=env, text=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def folder(host) -> dict[str, str]:
    """SHA-256 of every entry in the backup folder, hidden ones included ("dir" for folders)."""
    out = host.run(f"cd {backup_dir(host)} 2>/dev/null || exit 0; for f in * .[!.]*; do "
                   '[ -e "$f" ] || continue; if [ -d "$f" ]; then echo "dir  $f"; '
                   'else sha256sum -- "$f"; fi; done').stdout
    return {name: digest for digest, name in (line.split("  ", 1) for line in out.splitlines())}


def db_container(host) -> str:
    return host.compose("ps", "-a", "-q", "postgres").stdout.strip()


def sql(host, text: str) -> str:
    """SQL as the layout's database user in the postgres container, whatever state it is in."""
    return host.psql(text)


def wait_db(host) -> None:
    """Until the database answers again (after it was stopped or killed)."""
    proc.wait_for(lambda: host.run(f"docker exec {db_container(host)} pg_isready -q",
                                   check=False).returncode == 0, 120, "postgres to answer")


def dump_sessions(host) -> int:
    """Sessions of a trigger-maint pg_dumpall that wait for a lock."""
    return int(sql(host, "SELECT count(*) FROM pg_stat_activity WHERE application_name "
                         "LIKE 'trigger-maint-%' AND wait_event_type = 'Lock'"))


@contextlib.contextmanager
def table_locked(host):
    """A session holding an exclusive lock on a table of database "postgres": pg_dumpall has
    dumped roles and template1 and waits there, mid-dump (the live row counts of "main" that
    the backup takes do not wait)."""
    db = db_container(host)
    host.run(f"docker exec {db} psql -U postgres -d postgres -qc "
             "'CREATE TABLE IF NOT EXISTS rig_blocker (x int)'")
    host.run(f"docker exec -d -e PGAPPNAME=rig-lock {db} psql -U postgres -d postgres -c "
             "'BEGIN; LOCK TABLE rig_blocker IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(600)'")
    proc.wait_for(lambda: sql(host, "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a "
                                    "USING (pid) WHERE a.application_name = 'rig-lock' "
                                    "AND l.mode = 'AccessExclusiveLock'") != "0", 60,
                  "the table lock", 0.2)
    try:
        yield
    finally:
        host.run(f"docker exec {db_container(host)} psql -U postgres -d postgres -Atc \"SELECT "
                 "pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
                 "'rig-lock'\"", check=False)


def assert_nothing_lost(host, before: dict, rows: dict) -> None:
    assert folder(host) == before
    assert host.row_counts() == rows


def one_line(stderr: str) -> str:
    """The single `trigger-maint:` error line (progress lines are `host | ...`)."""
    errors = [line for line in stderr.splitlines() if line.startswith("trigger-maint:")]
    assert len(errors) == 1, stderr
    return errors[0]


def test_v4_backup_is_verified_complete_listed_and_downloaded(v4, cli, tmp_path):
    done = cli(v4, "backup", "--verify-restore", "--volumes", "--download", tmp_path / "dl",
               "--json")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)["backup"]
    stamp = made["stamp"]
    assert made["name"] == f"trigger-db-{stamp}.sql.zst" and made["compression"] == "zstd"
    assert made["verified"] is True and made["problems"] == []
    assert made["checks"] == dict.fromkeys(ALL_CHECKS, True)
    rows = v4.row_counts()
    assert {t: made["row_counts"][t] for t in rows} == rows
    assert made["migrations"] == rows["_prisma_migrations"] == 5
    assert (made["layout"], made["trigger_version"]) == ("v4", "4.5.10")
    assert made["postgres_version"].startswith("15.")
    running = v4.run("docker inspect --format '{{index .Config.Labels "
                     "\"com.docker.compose.service\"}} {{.Image}}' $(docker ps -aq)").stdout
    assert made["images"] == dict(line.split() for line in running.splitlines())

    names = {made["name"], f"trigger-db-{stamp}.json", made["files_archive"], *made["volumes"]}
    assert made["volumes"] == [f"trigger-volume-{stamp}-shared.tar.gz"]
    modes = v4.run(f"cd {backup_dir(v4)} && stat -c '%n %a' * .[!.]* 2>/dev/null; true").stdout
    assert dict(line.split() for line in modes.splitlines()) == dict.fromkeys(names, "600")
    on_host = folder(v4)
    assert on_host[made["name"]] == made["sha256"]
    sidecar = json.loads(v4.run(f"cat {backup_dir(v4)}/trigger-db-{stamp}.json").stdout)
    assert set(sidecar) == {"file", "origin", "purpose", "compression", "started_at",
                            "finished_at", "size", "sha256", "uncompressed_bytes",
                            "postgres_version", "trigger_version", "layout", "images",
                            "databases", "row_counts", "migrations", "verified", "checks",
                            "files_archive", "volumes"}
    assert (sidecar["origin"], sidecar["purpose"]) == ("trigger-maint", "backup")
    assert sidecar["databases"] == ["main", "postgres", "template1"]
    assert sidecar["file"] == made["name"] and sidecar["finished_at"].endswith("Z")
    archive = v4.run(f"tar -tzf {backup_dir(v4)}/{made['files_archive']}").stdout.split()
    assert sorted(archive) == [".env", "webapp/docker-compose.yml", "worker/docker-compose.yml"]
    token = v4.run(f"tar -xzOf {backup_dir(v4)}/{made['volumes'][0]} ./worker_token").stdout
    assert token == v4.run("cat $(docker volume inspect --format '{{.Mountpoint}}' "
                           "trigger_shared)/worker_token").stdout
    assert v4.run("docker ps -aq --filter label=trigger-maint=verify-restore").stdout == ""

    local = tmp_path / "dl" / made["name"]
    assert hashlib.sha256(local.read_bytes()).hexdigest() == made["sha256"]
    assert local.stat().st_mode & 0o777 == 0o600
    plain_sql = subprocess.run(["zstd", "-q", "-dc", str(local)], capture_output=True,
                               check=True).stdout
    assert plain_sql.decode().rstrip().endswith(MARKER + "\n--")
    assert len(plain_sql) == made_sidecar_bytes(v4, stamp)
    assert sorted(p.name for p in (tmp_path / "dl").iterdir()) == sorted(names)

    listed = cli(v4, "backups", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    assert [b["name"] for b in found["backups"]] == [made["name"]]
    assert found["backups"][0]["problems"] == [] and found["leftovers"] == []
    text = cli(v4, "backups").stdout
    assert made["name"] in text and "verified, restore-tested" in text and "v4.5.10" in text


@pytest.fixture
def baseline(v4, cli):
    """The backup folder (with at least one backup) and the rows before a failure path."""
    if not folder(v4):  # gzip where the host has no zstd, or when configured so
        made = cli(v4, "backup", "--json", env={"FABRIC_TRIGGER_BACKUP_COMPRESSION": "gzip"})
        assert made.returncode == 0, made.stderr
        assert json.loads(made.stdout)["backup"]["name"].endswith(".sql.gz")
    return folder(v4), v4.row_counts()


def test_v4_second_backup_is_refused_and_killed_postgres_leaves_nothing(v4, cli, tmp_path,
                                                                         baseline):
    with table_locked(v4):
        first = start_cli(v4, tmp_path, "backup")
        proc.wait_for(lambda: dump_sessions(v4), 300, "the dump to wait for the lock", 0.5)
        second = cli(v4, "backup")
        assert second.returncode == 4
        assert "another trigger-maint run is working on this host" in one_line(second.stderr)
        v4.run(f"docker kill {db_container(v4)}")
        _, stderr = first.communicate(timeout=300)
    assert first.returncode == 5, stderr
    assert "pg_dumpall exited with" in one_line(stderr)
    v4.compose("start", "postgres")
    wait_db(v4)
    assert_nothing_lost(v4, *baseline)


def test_v4_ctrl_c_mid_dump_exits_130_and_leaves_nothing(v4, tmp_path, baseline):
    with table_locked(v4):
        running = start_cli(v4, tmp_path, "backup")
        proc.wait_for(lambda: dump_sessions(v4), 300, "the dump to wait for the lock", 0.5)
        running.send_signal(signal.SIGINT)
        try:
            _, stderr = running.communicate(timeout=60)
        finally:
            running.kill()
        assert running.returncode == 130, stderr
        assert "interrupted" in one_line(stderr)
        # the host's script cleans up and ends the dump inside the container
        proc.wait_for(lambda: folder(v4) == baseline[0], 60, "the partial files to go", 0.5)
        proc.wait_for(lambda: sql(v4, "SELECT count(*) FROM pg_stat_activity WHERE "
                                      "application_name LIKE 'trigger-maint-%'") == "0",
                      60, "the dump to stop", 0.5)
    assert_nothing_lost(v4, *baseline)


def test_v4_missing_container_wrong_user_and_full_disk_leave_nothing(v4, cli, tmp_path,
                                                                     baseline):
    v4.compose("stop", "postgres")
    try:
        missing = cli(v4, "backup")
    finally:
        v4.compose("start", "postgres")
        wait_db(v4)
    assert missing.returncode == 5
    assert "the database container (service postgres" in one_line(missing.stderr)
    assert_nothing_lost(v4, *baseline)

    # the runbook layout forced onto the v4 files: database user "trigger" does not exist
    (tmp_path / "cwd" / "fabric.yaml").write_text(
        "trigger:\n  layout: runbook\n  compose_files: [webapp/docker-compose.yml, "
        "worker/docker-compose.yml]\n")
    wrong = cli(v4, "backup")
    (tmp_path / "cwd" / "fabric.yaml").unlink()
    assert wrong.returncode == 5
    assert 'role "trigger" does not exist' in one_line(wrong.stderr)
    assert_nothing_lost(v4, *baseline)

    v4.shrink_backup_fs(1024)
    try:
        full = cli(v4, "backup")
        assert full.returncode == 4
        assert "free" in one_line(full.stderr) and "nothing was written" in full.stderr
        assert folder(v4) == {}
    finally:
        v4.restore_backup_fs()
    assert_nothing_lost(v4, *baseline)


def made_sidecar_bytes(host, stamp: str) -> int:
    sidecar = json.loads(host.run(f"cat {backup_dir(host)}/trigger-db-{stamp}.json").stdout)
    return sidecar["uncompressed_bytes"]


def broken_copy(host, made: dict, stamp: str) -> str:
    """A backup whose dump stops with an error halfway through the trigger database; its
    sidecar matches it, so restore gets past every check before the dump fails."""
    folder_ = backup_dir(host)
    src, dst = f"{folder_}/{made['name']}", f"{folder_}/trigger-db-{stamp}.sql.zst"
    host.run(f"zstd -q -dc {src} | sed '/^COPY public.\"TaskRun\"/i SELECT 1/0;' "
             f"| zstd -q -1 -c > {dst}")
    digest, size = host.run(f"sha256sum {dst} | cut -d' ' -f1; stat -c %s {dst}").stdout.split()
    sidecar = json.loads(host.run(f"cat {folder_}/trigger-db-{made['stamp']}.json").stdout)
    sidecar.update(file=f"trigger-db-{stamp}.sql.zst", sha256=digest, size=int(size))
    host.run(f"cat > {folder_}/trigger-db-{stamp}.json", input=json.dumps(sidecar))
    return f"trigger-db-{stamp}.sql.zst"


def test_runbook_restore_round_trip_and_failed_restore_puts_database_back(runbook, cli):
    done = cli(runbook, "backup", "--verify-restore", "--json")
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)["backup"]
    rows = runbook.row_counts()
    assert made["verified"] and made["checks"] == dict.fromkeys(ALL_CHECKS, True)
    assert made["layout"] == "runbook" and {t: made["row_counts"][t] for t in rows} == rows
    assert made["images"].keys() == {"postgres", "redis", "webapp"}

    sql(runbook, 'DELETE FROM "TaskRun" WHERE id IN (SELECT id FROM "TaskRun" LIMIT 100)')
    deleted = runbook.row_counts()
    assert deleted["TaskRun"] == rows["TaskRun"] - 100

    refused = cli(runbook, "restore")
    assert refused.returncode == 4 and "--yes" in one_line(refused.stderr)
    assert runbook.row_counts() == deleted

    broken = broken_copy(runbook, made, "20000101-000000")
    before = folder(runbook)
    failed = cli(runbook, "restore", "--name", broken, "--yes")
    assert failed.returncode == 5
    line = one_line(failed.stderr)
    assert "division by zero" in line and "the previous databases were put back" in line
    assert runbook.row_counts() == deleted
    after_failure = folder(runbook)
    assert {k: v for k, v in after_failure.items() if k in before} == before
    web = f"http://{runbook.address}:3030/healthcheck"
    proc.wait_for(lambda: proc.http_status(web) == 200, 120, "the webapp after the failed restore")

    restored = cli(runbook, "restore", "--name", made["name"], "--yes", "--json")
    assert restored.returncode == 0, restored.stderr
    result = json.loads(restored.stdout)
    assert runbook.row_counts() == rows
    listed = {b["name"]: b for b in json.loads(cli(runbook, "backups", "--json").stdout)[
        "backups"]}
    safety = listed[result["safety_backup"]]
    assert safety["row_counts"]["TaskRun"] == deleted["TaskRun"]
    assert safety["verified"] is True and safety["purpose"] == "safety"
    assert result["left_aside"] == []
    assert proc.http_status(web) == 200
    assert sql(runbook, "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database") \
        == "postgres,template0,template1,trigger"
    final = folder(runbook)
    assert {k: v for k, v in final.items() if k in after_failure} == after_failure
    assert final[made["name"]] == made["sha256"]
