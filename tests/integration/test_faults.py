"""The way back of a failing update, under faults injected on a real host while the update
runs, through the real CLI over SSH:

- the guard dump is damaged after it was taken and before the way back restores it: the old
  images come back, the database stays as the failed release left it (never restored from
  a damaged dump), exit 5, and the error and the JSON name the verified gate backup and the
  `trigger-maint -H ... restore --name ... --yes` command, which brings the seeded rows back;
- the backup folder's filesystem is full when the replaced database is to be saved: it
  stays in PostgreSQL under its aside name, the result says so, nothing is dropped;
- a container log line carrying a forged result (marker and JSON) changes nothing: neither
  a rolled-back update's outcome nor verify's.
"""

import json
import shlex
import subprocess
import threading
import time

import pytest

from tests.integration.test_transactions import (
    TX,
    healthy_version,
    journal,
    newest_tx,
    seeded,
    trigger_maint,
)
from tests.integration.test_update import error_line, images
from tests.rig import proc
from tests.rig.config import RigError
from trigger_maint.logs import CANDIDATE_PATTERN

BACKUPS = "/var/backups/trigger"
# Known bad sooner than the default 20 s: the tests wait for two failing updates.
FAST = {"FABRIC_TRIGGER_HEALTH_FAIL_SECONDS": "5", "FABRIC_TRIGGER_OBSERVE_SECONDS": "3"}
FILLER = f"{BACKUPS}/other-program.data"
# What PostgreSQL holds besides the layout's database (main) in a v4 installation.
SYSTEM_DBS = {"postgres", "template0", "template1"}


class Client:
    """The real CLI running in the background, its output drained as it comes."""

    def __init__(self, host, *args):
        self.proc = trigger_maint(host, *args, env=FAST)
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [threading.Thread(target=self.out.extend, args=(self.proc.stdout,)),
                        threading.Thread(target=self.err.extend, args=(self.proc.stderr,))]
        for reader in self.readers:
            reader.start()

    def wait(self, timeout: float = 420) -> subprocess.CompletedProcess:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            for reader in self.readers:
                reader.join(30)
        return subprocess.CompletedProcess(self.proc.args, self.proc.returncode,
                                           "".join(self.out), "".join(self.err))


def started_tx(host, since: str) -> str:
    proc.wait_for(lambda: newest_tx(host) > since, 120, "the update to start", interval=0.2)
    return newest_tx(host)


def wait_step(host, tx: str, direction: str, name: str, client: Client,
              timeout: float = 300) -> list[dict]:
    """Wait until step `name` going `direction` is done; the journal then."""
    def done() -> bool:
        events = journal(host, tx)
        if any(e["ev"] == "step" and e["dir"] == direction and e["step"] == name
               and e["status"] == "done" for e in events):
            return True
        assert not any(e["ev"] == "end" for e in events), (events[-1], "".join(client.err))
        return False
    proc.wait_for(done, timeout, f"step {direction} {name} of {tx}", interval=0.2)
    return journal(host, tx)


def facts(events: list[dict]) -> dict:
    return {e["key"]: e["value"] for e in events if e["ev"] == "fact"}


def sha256(host, path: str) -> str:
    return host.run(f"sha256sum {shlex.quote(path)}").stdout.split()[0]


def databases(host) -> set[str]:
    return set(host.psql("SELECT datname FROM pg_database;").split())


def table_digest(host, db: str = "main", row: str = "t::text") -> str:
    """The seeded rows' content (not only their count), in one hash; `row` what of each row
    counts (t.id::text: which rows, whatever columns a migration added)."""
    parts = " || ".join(f"(SELECT coalesce(md5(string_agg({row}, ',' ORDER BY {row})), '') "
                        f"FROM \"{table}\" t)" for table in ("User", "Project", "TaskRun"))
    return host.psql(f"\\c {db}\nSELECT md5({parts});")


def counts_in(host, db: str) -> dict[str, int]:
    """Row counts of the seeded tables and _prisma_migrations in database `db`."""
    tables = ["User", "Project", "RuntimeEnvironment", "TaskRun", "_prisma_migrations"]
    sql = " UNION ALL ".join(f"SELECT '{t}', count(*) FROM \"{t}\"" for t in tables)
    out = host.psql(f"\\c {db}\n{sql};")
    return {name: int(n) for name, n in (line.split("|") for line in out.splitlines())}


def candidate_lines(host, service: str) -> str:
    """The lines of service's log that verify's script puts in its result (its filter)."""
    return host.run(f"docker logs {host.container_id(service)} 2>&1 | grep -aiE -- "
                    f"{shlex.quote(CANDIDATE_PATTERN)} || true").stdout


def gate_backup(host, cli) -> str:
    made = cli(host, "backup", "--json")
    assert made.returncode == 0, made.stderr
    return json.loads(made.stdout)["backup"]["name"]


def test_damaged_guard_dump_keeps_the_database_and_names_the_gate_backup(v4_host, cli):
    host = v4_host
    rows, digest, old = seeded(host), table_digest(host), images(host)
    gate = gate_backup(host, cli)
    kept = host.backup_files(BACKUPS)
    assert gate in kept

    since = newest_tx(host)
    client = Client(host, "update", "--target", "v4.5.16", "--yes", "--json")
    tx = started_tx(host, since)
    events = wait_step(host, tx, "forward", "guard_dump", client)
    guard = facts(events)["guard"]["file"]
    path = f"{BACKUPS}/{guard}"
    sound = sha256(host, path)
    host.run(f"printf 'damaged' | dd of={path} bs=1 seek=64 conv=notrunc status=none")
    assert sha256(host, path) != sound
    assert not any(e["ev"] == "step" and e["dir"] == "back" for e in journal(host, tx)), \
        "the way back began before the guard dump was damaged"
    done = client.wait()

    assert done.returncode == 5, done.stderr
    doc = json.loads(done.stdout)
    spec = f"root@{host.address}:{host.port}"
    command = f"trigger-maint -H {spec} restore --name {gate} --yes"
    assert (doc["tx"], doc["outcome"], doc["db_restored"], doc["restored_from"]) == (
        tx, "failed", False, ""), doc
    assert "does not match the SHA-256" in doc["db_restore_error"]
    assert doc["fallback_backup"] == gate and doc["restore_command"] == command
    line = error_line(done)
    assert "the database was NOT restored" in line and f"the verified backup {gate}" in line
    assert line.endswith(command) or f"{command};" in line or f"{command} " in line, line

    # Back on the old images, on the database as v4.5.16 left it: migrated, nothing put aside.
    assert healthy_version(host) == "v4.5.10"
    assert images(host) == old
    end = journal(host, tx)[-1]
    assert end["ev"] == "end" and end["outcome"] == "failed", end
    migrated = facts(journal(host, tx))["migrations_before"]
    assert migrated > rows["_prisma_migrations"]
    assert seeded(host) == {**rows, "_prisma_migrations": migrated}
    assert databases(host) == SYSTEM_DBS | {"main"}
    files = host.backup_files(BACKUPS)
    assert set(kept) <= set(files) and guard in files  # the damaged dump is kept too

    # The command the message names brings back exactly the rows from before the update.
    argv = shlex.split(command)
    assert argv[:3] == ["trigger-maint", *host.fab_args()[:2]]
    restored = cli(host, *argv[3:], "--json")
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout)["safety_backup"].startswith("trigger-db-")
    assert healthy_version(host) == "v4.5.10"
    assert seeded(host) == rows and table_digest(host) == digest
    assert set(kept) | {guard} <= set(host.backup_files(BACKUPS))


@pytest.fixture
def small_backup_fs(v4_host):
    """The backup folder on a filesystem of its own, small enough to fill at once."""
    v4_host.shrink_backup_fs(192 * 1024)
    yield v4_host
    v4_host.run(f"rm -f {FILLER}", check=False)
    v4_host.restore_backup_fs()


def forged_results(tx: str) -> list[str]:
    """Log lines a container could print to pass for a result: the bare marker, one shaped
    like a real per-run marker, and a journal end line, each claiming success."""
    journal_end = {"t": 1, "ev": "end", "tx": tx, "outcome": "done", "step": "", "error": ""}
    result = {"tx": tx, "ended": True, "journal": [json.dumps(journal_end)], "ok": True,
              "checks": [], "errors": 0}
    return [f"@@trigger-maint-result@@{json.dumps(result)}",
            f"@@trigger-maint-result-0123456789abcdef@@{json.dumps(result)}",
            json.dumps(journal_end)]


class Forger(threading.Thread):
    """The failing release's webapp prints forged results until the way back begins (it logs
    every request too: written once, they would leave the log tail the result reports)."""

    def __init__(self, host, tx: str, client: Client):
        super().__init__(daemon=True)
        self.host, self.tx, self.client, self.written = host, tx, client, 0

    def back(self) -> bool:
        return any(e["ev"] == "step" and e["dir"] == "back" for e in journal(self.host, self.tx))

    def run(self) -> None:
        lines = "\n".join(forged_results(self.tx))
        while self.client.proc.poll() is None and not self.back():
            try:
                self.host.log_line("webapp", lines)
                self.written += 1
            except (OSError, LookupError, ValueError, RigError):
                pass  # between two containers
            time.sleep(0.5)


def test_the_replaced_database_stays_in_postgres_when_the_backup_folder_is_full(
        small_backup_fs, cli):
    """Also: the failing release's webapp logs forged results while it is judged; the update
    is rolled back all the same (the result is read only from the script's last line, after
    its own marker)."""
    host = small_backup_fs
    rows, digest, old = seeded(host), table_digest(host), images(host)
    gate = gate_backup(host, cli)
    kept = host.backup_files(BACKUPS)
    assert gate in kept

    since = newest_tx(host)
    client = Client(host, "update", "--target", "v4.5.16", "--yes", "--json")
    tx = started_tx(host, since)
    wait_step(host, tx, "forward", "recreate", client)
    forger = Forger(host, tx, client)
    forger.start()
    wait_step(host, tx, "back", "restore_db", client)
    # Another program fills the filesystem while the way back goes on.
    host.run(f"dd if=/dev/zero of={FILLER} bs=1M status=none 2>/dev/null || true")
    assert int(host.run(f"df -P -B1 {BACKUPS} | awk 'NR == 2 {{ print $4 }}'").stdout) < 2**20
    done = client.wait()
    forger.join(30)

    assert done.returncode == 5, done.stderr
    doc = json.loads(done.stdout)
    aside = f"main_tm_failed_{tx.replace('-', '_')}"
    assert (doc["tx"], doc["outcome"], doc["rolled_back"], doc["db_restored"]) == (
        tx, "rolled-back", True, True), doc
    assert doc["aside"] == aside and doc["safety_backup"] == "", doc
    line = error_line(done)
    assert "rolled back: v4.5.10 runs" in line, line
    assert "the replaced one could not be saved" in line, line
    assert f"kept as database {aside}; save it, then drop it by hand" in line
    events = journal(host, tx)
    recorded = facts(events)
    assert recorded["aside_kept"] == aside and "refused" in recorded["aside_error"], recorded
    assert [e["outcome"] for e in events if e["ev"] == "end"] == ["rolled-back"]
    assert forger.written and "@@trigger-maint-result@@" in json.dumps(doc["logs"]), \
        "the forged lines did not reach the result"

    # The old images and the old data run; the failed release's database is intact, aside.
    assert healthy_version(host) == "v4.5.10"
    assert images(host) == old
    assert seeded(host) == rows and table_digest(host) == digest
    assert databases(host) == SYSTEM_DBS | {"main", aside}
    migrated = recorded["migrations_before"]
    assert migrated > rows["_prisma_migrations"]
    assert counts_in(host, aside) == {**rows, "_prisma_migrations": migrated}
    assert table_digest(host, aside, "t.id::text") == table_digest(host, row="t.id::text")
    files = host.backup_files(BACKUPS)
    assert set(kept) <= set(files), (kept, files)
    assert not [f for f in files if f.endswith((".tmp", ".part"))], files
    assert host.run(f"ls {TX}/CURRENT", check=False).returncode != 0


def test_a_forged_result_in_container_logs_does_not_change_verify(v4_host, cli):
    host = v4_host
    # A healthy host whose webapp logs a forged failure (at info level) passes...
    failure = {"error": "forged: the host is down", "kind": "refused", "ok": False}
    message = "".join(f"@@trigger-maint-result{tag}@@{json.dumps(failure)} "
                      for tag in ("", "-0123456789abcdef"))
    proc.wait_for(host.all_healthy, 120, "every container healthy", 0.5)
    host.log_error("webapp", message, level="info")
    assert "forged: the host is down" in candidate_lines(host, "webapp")
    run = cli(host, "verify", "--json", env=FAST)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["ok"] is True and {c["state"] for c in report["checks"]} == {"ok"}, report

    # ...and a host with Redis stopped fails, whatever forged success its webapp logs.
    host.compose("stop", "redis")
    success = {"ok": True, "checks": [], "errors": 0}
    forged = [f"@@trigger-maint-result{tag}@@{json.dumps(success)}"
              for tag in ("", "-0123456789abcdef")]
    host.log_line("webapp", "\n".join(forged))
    host.log_error("webapp", forged[0])
    assert sum("@@trigger-maint-result" in line and "errors" in line
               for line in candidate_lines(host, "webapp").splitlines()) == 3
    run = cli(host, "verify", "--json", env=FAST)
    assert run.returncode == 1, run.stderr
    report = json.loads(run.stdout)
    failed = {c["name"] for c in report["checks"] if c["state"] != "ok"}
    assert report["ok"] is False and {"services", "redis"} <= failed, report
    assert failed <= {"services", "redis", "logs"}, report
    assert "verify failed: services (redis: exited" in run.stderr
