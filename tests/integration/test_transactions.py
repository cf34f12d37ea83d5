"""Changes are transactions the host owns: the client is killed (SIGKILL) at many points of an
update to a healthy release, of an update to a failing release and of a rollback with a
database restore. After each, with no rerun, the host ends healthy on the version the plan
intended (new, or old with its data), rows intact, no lock held, a journal saying what
happened; a rerun then reports that state instead of redoing it. Also: a link that goes
silent (traffic stopped, not closed) is noticed within the link timeout and the client
reattaches."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.rig import proc
from tests.rig.config import KNOWN_HOSTS, REGISTRY

TX = "/var/backups/trigger/transactions"
SEEDED = ("User", "Project", "RuntimeEnvironment", "TaskRun")
# Progress lines that mark a point of the update; the client is killed right after one.
UPDATE_POINTS = ("started on the host", "pulling images", "guard dump: dumping",
                 "recreating the services", "waiting:")
ROLLBACK_POINTS = ("started on the host", "restored .env", "restoring database",
                   "recreating the services", "waiting:")


def trigger_maint(host, *args, env=None) -> subprocess.Popen:
    """The real CLI, reading its progress (stderr) as it comes."""
    argv = [str(Path(sys.executable).parent / "trigger-maint"), *host.fab_args(), *args]
    full = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
            "FABRIC_TRIGGER_REGISTRY": REGISTRY, "FABRIC_TRIGGER_GITHUB_API": "http://127.0.0.1:9",
            **(env or {})}
    return subprocess.Popen(argv, env=full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def kill_at(client: subprocess.Popen, phrase: str, timeout: float = 240) -> list[str]:
    """Read the client's progress until a line holds `phrase`, then SIGKILL it."""
    seen = []
    deadline = time.monotonic() + timeout
    for line in client.stderr:
        seen.append(line)
        if phrase in line or time.monotonic() > deadline:
            break
    client.send_signal(signal.SIGKILL)
    client.wait(timeout=30)
    assert any(phrase in line for line in seen), "".join(seen)
    return seen


def current(host) -> str:
    return host.run(f"cat {TX}/CURRENT 2>/dev/null || true").stdout.strip()


def journal(host, tx: str) -> list[dict]:
    lines = host.run(f"cat {TX}/{tx}/journal.jsonl").stdout.splitlines()
    return [json.loads(line) for line in lines]


def newest_tx(host) -> str:
    return host.run(f"ls -1 {TX} | grep -E -- '-(update|rollback|restore)$' | sort | tail -n 1"
                    ).stdout.strip()


def settle(host, since: str) -> dict:
    """Wait for the host to end the transaction that started after `since` by itself; its
    end event."""
    proc.wait_for(lambda: newest_tx(host) > since, 60, "the change to start", interval=0.2)
    tx = newest_tx(host)
    proc.wait_for(lambda: any(e["ev"] == "end" for e in journal(host, tx)), 400,
                  f"the host to end {tx}", interval=0.5)
    assert current(host) == ""
    # The runner writes its end, then exits; once it is gone nothing may hold the host lock.
    pid = host.run(f"cat {TX}/{tx}/pid").stdout.strip()
    proc.wait_for(lambda: host.run(f"kill -0 {pid}", check=False).returncode != 0, 30,
                  f"the runner of {tx} to exit", interval=0.2)
    assert host.run("flock -n /run/lock/trigger-maint.lock true", check=False).returncode == 0
    return journal(host, tx)[-1]


def healthy_version(host) -> str:
    """Every container healthy (the rig's own view) and the version the webapp reports."""
    proc.wait_for(host.all_healthy, 120, "every container to be healthy", interval=0.5)
    return host.run("docker exec $(docker ps -q -f label=com.docker.compose.service=webapp) "
                    "sh -c 'echo $BUILD_APP_VERSION'").stdout.strip()


def seeded(host) -> dict:
    counts = host.row_counts()
    return {table: counts[table] for table in (*SEEDED, "_prisma_migrations")}


def test_client_killed_anywhere_the_host_finishes_update_and_rollback(v4_host, cli):
    host = v4_host
    rows = seeded(host)
    for n, phrase in enumerate(UPDATE_POINTS):
        assert cli(host, "backup").returncode == 0
        since = newest_tx(host)
        kill_at(trigger_maint(host, "update", "--target", "v4.5.12", "--yes"), phrase)
        end = settle(host, since)
        assert end["outcome"] == "done", end
        assert healthy_version(host) == "v4.5.12"
        assert seeded(host) == {**rows, "_prisma_migrations": rows["_prisma_migrations"] + 1}
        rerun = cli(host, "update", "--target", "v4.5.12", "--yes", "--json")
        assert rerun.returncode == 0, rerun.stderr
        doc = json.loads(rerun.stdout)
        assert doc["reported"] and doc["tx"] == end["tx"], doc
        assert doc["to_version"] == "4.5.12"

        rollback_phrase = ROLLBACK_POINTS[n % len(ROLLBACK_POINTS)]
        since = newest_tx(host)
        kill_at(trigger_maint(host, "rollback", "--yes"), rollback_phrase)
        end = settle(host, since)
        assert end["outcome"] == "done", end
        assert healthy_version(host) == "v4.5.10"
        assert seeded(host) == rows  # the old data, from the guard dump
        rerun = cli(host, "rollback", "--yes", "--json")
        assert rerun.returncode == 0 and json.loads(rerun.stdout)["reported"], rerun.stderr


@pytest.mark.parametrize("phrase", ["recreating the services", "going back",
                                    "restoring database"])
def test_client_killed_during_a_failing_update_the_host_rolls_back_with_the_data(
        v4_host, cli, phrase):
    host = v4_host
    rows = seeded(host)
    env_file = host.run("cat /opt/trigger/.env").stdout
    assert cli(host, "backup").returncode == 0
    since = newest_tx(host)
    kill_at(trigger_maint(host, "update", "--target", "v4.5.16", "--yes"), phrase)
    end = settle(host, since)
    assert end["outcome"] == "rolled-back" and end["step"] == "wait_healthy", end
    assert healthy_version(host) == "v4.5.10"
    assert seeded(host) == rows
    assert host.run("cat /opt/trigger/.env").stdout == env_file
    facts = {e["key"]: e["value"] for e in journal(host, end["tx"]) if e["ev"] == "fact"}
    assert facts["db_restored"] is True and facts["safety"].startswith("trigger-db-")
    rerun = cli(host, "update", "--target", "v4.5.16", "--yes")
    assert rerun.returncode == 5, rerun.stderr
    assert "rolled back: v4.5.10 runs" in rerun.stderr
    assert "ended while no client was connected" in rerun.stdout
    assert host.run(f"ls {TX} | grep -c update").stdout.strip() == "1"  # not redone


def test_a_silent_link_is_noticed_and_the_client_reattaches(v4_host, cli):
    host = v4_host
    assert cli(host, "backup").returncode == 0
    client = trigger_maint(host, "update", "--target", "v4.5.12", "--yes",
                           env={"FABRIC_TRIGGER_LINK_TIMEOUT": "10"})
    seen = []
    for line in client.stderr:
        seen.append(line)
        if "started on the host" in line:
            break
    # Freeze the sshd processes serving this client: the TCP connection stays open, nothing
    # more comes through it.
    sessions = host.run("for p in $(pgrep -P \"$(cat /run/sshd.pid)\"); do echo $p; "
                        "pgrep -P $p || true; done").stdout.split()
    assert sessions, "".join(seen)
    host.run(f"kill -STOP {' '.join(sessions)}")
    try:
        out, err = client.communicate(timeout=300)
    finally:
        host.run(f"kill -CONT {' '.join(sessions)} 2>/dev/null; kill {' '.join(sessions)} "
                 "2>/dev/null || true", check=False)
    err = "".join(seen) + err
    assert client.returncode == 0, err
    assert "no sign of life from the host for 10 s" in err and "reconnecting" in err
    assert "updated     v4.5.10 -> v4.5.12" in out
    assert healthy_version(host) == "v4.5.12"
