"""The systemd branch of a change's detaching (templates/transaction.sh.j2 `tm_detach`), with
the rig's stand-in systemd-run (tests/rig/systemd_run.py) switched on for the host: an update
and a rollback run as transient units `trigger-maint-<tx>.service` in a clean environment,
their output in runner.log, and finish when the client is killed mid-change; a change whose
runner was cut off is resumed under a fresh unit name (`-run2`, or `-run3` when systemd-run
refused `-run2` as a unit still loaded)."""

import pytest

from tests.integration.conftest import assigned_hosts
from tests.integration.test_transactions import (
    TX,
    current,
    healthy_version,
    journal,
    kill_at,
    newest_tx,
    seeded,
    settle,
    trigger_maint,
)
from tests.rig import Rig, proc, systemd
from tests.rig import rig as rig_mod


@pytest.fixture(scope="module")
def sd_host():
    """1st assigned host (only that one is started if down), locked, fresh v4 at v4.5.10,
    the stand-in systemd on; off again afterwards, whatever happens."""
    host = Rig().host(assigned_hosts()[0])
    if not host.is_up():
        with rig_mod.rig_lock():
            rig_mod.start_host(host.number)
            rig_mod.write_known_hosts()
            rig_mod.wait_host(host.number)
    with host.lock():
        try:
            host.reset("v4")
            systemd.enable(host)
            yield host
        finally:
            systemd.disable(host)


def unit_of(tx: str, run: int = 1) -> str:
    return f"trigger-maint-{tx}" + (f"-run{run}" if run > 1 else "") + ".service"


def detached(host, tx: str) -> str:
    return host.run(f"cat {TX}/{tx}/detached").stdout.strip()


def runner_log(host, tx: str) -> str:
    return host.run(f"cat {TX}/{tx}/runner.log").stdout


def runner_pid(host, tx: str) -> int:
    return int(host.run(f"cat {TX}/{tx}/pid").stdout.split()[0])


def start_event(host, unit: str) -> dict:
    return [e for e in systemd.events(host) if e["ev"] == "start" and e["unit"] == unit][-1]


def exit_event(host, unit: str) -> dict:
    return [e for e in systemd.events(host) if e["ev"] == "exit" and e["unit"] == unit][-1]


def wait_unloaded(host, unit: str) -> None:
    proc.wait_for(lambda: unit not in systemd.loaded(host), 30, f"{unit} to be collected", 0.2)


def test_update_and_rollback_run_as_units_and_finish_without_the_client(sd_host, cli):
    host = sd_host
    rows = seeded(host)
    assert cli(host, "backup").returncode == 0
    since = newest_tx(host)
    client = trigger_maint(host, "update", "--target", "v4.5.12", "--yes")
    seen = kill_at(client, "recreating the services")
    tx = newest_tx(host)
    unit = unit_of(tx)
    assert f"started on the host (systemd unit {unit})" in "".join(seen)
    # While it runs: a loaded transient unit; the runner in a session of its own, stdin
    # /dev/null, only the environment tm_detach passed plus what systemd sets.
    assert unit in systemd.loaded(host)
    pid = runner_pid(host, tx)
    env = dict(item.split("=", 1) for item in host.run(
        f"tr '\\0' '\\n' </proc/{pid}/environ").stdout.splitlines() if "=" in item)
    assert not [k for k in env if k.startswith("SSH_") or k in ("TERM", "USER", "LOGNAME",
                                                                "SHELL", "MAIL")], env
    assert {"INVOCATION_ID", "SYSTEMD_EXEC_PID", "PATH", "HOME", "LC_ALL"} <= set(env), env
    assert host.run(f"readlink /proc/{pid}/fd/0").stdout.strip() == "/dev/null"
    assert host.run(f"ps -o sid= -p {pid}").stdout.strip() == str(pid)
    event = start_event(host, unit)
    assert event["pid"] == pid
    assert event["properties"]["KillMode"] == "mixed"
    assert event["properties"]["After"] == "docker.service"
    assert event["properties"]["StandardOutput"] == f"append:{TX}/{tx}/runner.log"

    end = settle(host, since)
    assert (end["tx"], end["outcome"]) == (tx, "done"), end
    assert healthy_version(host) == "v4.5.12"
    assert detached(host, tx) == f"systemd unit {unit}"
    log = runner_log(host, tx)
    assert f"Running as unit: {unit}" in log
    assert f"runner of {tx}: pid {pid}, started" in log, log
    wait_unloaded(host, unit)  # --collect
    # The runner ended by itself and left nothing running for KillMode=mixed to kill.
    ended = exit_event(host, unit)
    assert (ended["code"], ended["status"], ended["left"]) == ("exited", 0, []), ended

    since = newest_tx(host)
    kill_at(trigger_maint(host, "rollback", "--yes"), "restoring database")
    end = settle(host, since)
    tx = end["tx"]
    assert end["outcome"] == "done", end
    assert detached(host, tx) == f"systemd unit {unit_of(tx)}"
    assert f"runner of {tx}: pid {start_event(host, unit_of(tx))['pid']}, started" in \
        runner_log(host, tx)
    assert healthy_version(host) == "v4.5.10"
    assert seeded(host) == rows
    wait_unloaded(host, unit_of(tx))
    assert exit_event(host, unit_of(tx))["left"] == []


def test_a_resumed_change_runs_under_a_fresh_unit_name(sd_host, cli):
    host = sd_host
    if current(host) or healthy_version(host) != "v4.5.10":
        host.reset("v4")
    assert cli(host, "backup").returncode == 0
    since = newest_tx(host)
    # Cut off just after its first change (the pin): the way back is short.
    kill_at(trigger_maint(host, "update", "--target", "v4.5.12", "--yes"), "pinned v4.5.12")
    tx = newest_tx(host)
    assert tx > since
    first = unit_of(tx)
    # The runner dies (as on an OOM kill); KillMode=mixed takes what it left with it.
    host.run(f"kill -KILL {runner_pid(host, tx)}")
    wait_unloaded(host, first)
    assert exit_event(host, first)["signal"] == 9
    assert not any(e["ev"] == "end" for e in journal(host, tx))
    assert current(host) == tx

    # A unit of that name still loaded (say a failed one nobody collected): systemd-run
    # refuses it, the resume fails without running anything and the change stays cut off.
    second, third = unit_of(tx, 2), unit_of(tx, 3)
    host.run(f"touch /run/systemd/transient/{second}")
    refused = cli(host, "update", "--target", "v4.5.12", "--yes")
    assert refused.returncode != 0
    assert f"Unit {second} was already loaded or has a fragment file." in refused.stderr, \
        refused.stderr
    assert current(host) == tx and not any(e["ev"] == "end" for e in journal(host, tx))

    # The next run resumes it under the next name.
    resumed = cli(host, "update", "--target", "v4.5.12", "--yes")
    assert f"{tx} was cut off" in resumed.stderr, resumed.stderr
    assert f"started on the host (systemd unit {third})" in resumed.stderr
    assert detached(host, tx) == f"systemd unit {third}"
    assert host.run(f"cat {TX}/{tx}/units").stdout.split() == [first, second, third]
    assert [u for u in systemd.started(host) if tx in u] == [first, third]
    end = journal(host, tx)[-1]
    assert end["ev"] == "end" and end["outcome"] in ("done", "rolled-back"), end
    log = runner_log(host, tx)
    assert f"Running as unit: {third}" in log
    assert log.count(f"runner of {tx}: pid") == 2, log
    assert current(host) == ""
    assert healthy_version(host) in ("v4.5.10", "v4.5.12")
    wait_unloaded(host, third)
    assert exit_event(host, third)["left"] == []
    host.run(f"rm -f /run/systemd/transient/{second}")  # (off removes it too)
