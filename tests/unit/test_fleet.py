"""Fleets: inventory, stages, the runner's isolation and limits, summary, report, exit code."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from fabric import Config, Connection
from invoke import Collection, task

from trigger_maint import fleet
from trigger_maint.config import settings
from trigger_maint.errors import ConfigError, ConnectError, OperationError
from trigger_maint.fleet import HostOutcome, HostResult, Member
from trigger_maint.fleet_runner import FleetContext, FleetExecutor, MemberConnection, run_fleet
from trigger_maint.program import TriggerMaint
from trigger_maint.remote import Session
from trigger_maint.tasks.fleet import EXECUTOR_HINT

ROOT = Path(__file__).resolve().parents[2]

INVENTORY = {
    "hosts": {
        "acme": {"host": "root@10.0.0.1", "domain": "trigger.acme.test"},
        "globex": {"host": "deploy@10.0.0.2:2222", "path": "/srv/trigger", "layout": "v3"},
        "initech": None,  # an ssh_config alias of the same name
        "hooli": "ops@10.0.0.4",
    },
    "groups": {"customers": ["acme", "globex"], "eu": "initech, hooli"},
}


def base(**extra):
    return settings({**INVENTORY, **extra})


def test_whole_inventory_with_each_hosts_overrides():
    members = fleet.resolve(base())
    assert [(m.name, m.host) for m in members] == [
        ("acme", "root@10.0.0.1"), ("globex", "deploy@10.0.0.2:2222"),
        ("initech", "initech"), ("hooli", "ops@10.0.0.4")]
    acme, globex, initech, _ = members
    assert acme.settings.domain == "trigger.acme.test" and acme.settings.path == "/opt/trigger"
    assert globex.settings.path == "/srv/trigger" and globex.settings.layout == "v3"
    assert globex.settings.domain == "" and initech.settings == base()


def test_hosts_from_cli_then_groups_in_order_once_each():
    members = fleet.resolve(base(), ["root@127.0.0.11:2222", "globex"], ["customers", "eu"])
    assert [m.name for m in members] == ["127.0.0.11:2222", "globex", "acme", "initech", "hooli"]
    assert members[0].host == "root@127.0.0.11:2222" and members[0].settings == base()
    assert members[1].settings.path == "/srv/trigger"  # an inventory name given with -H


@pytest.mark.parametrize(
    "tree, hosts, groups, message",
    [
        ({}, [], [], "no hosts: give -H host1,host2, --group NAME"),
        (INVENTORY, [], ["us"], "trigger.groups: no group 'us' (known: customers, eu)"),
        ({"hosts": {"a": {}}, "groups": {"g": ["a", "b"]}}, [], ["g"],
         "trigger.groups.g: b not in trigger.hosts"),
        ({"hosts": {"a": {"path": "srv"}}}, [], [], "trigger.hosts.a.path: must be an "
                                                    "absolute path"),
        ({"hosts": {"a": {"colour": "red"}}}, [], [], "trigger.hosts.a: unknown setting colour"),
        ({"hosts": {"a": {"parallel": 5}}}, [], [], "trigger.hosts.a: parallel apply to the "
                                                    "whole fleet"),
        ({"hosts": {"a": ["x"]}}, [], [], "trigger.hosts.a: expected a mapping or a host"),
        ({"hosts": {"a": {"host": 7}}}, [], [], "trigger.hosts.a.host: expected user@host"),
    ],
)
def test_bad_inventory_is_one_line_naming_the_entry(tree, hosts, groups, message):
    with pytest.raises(ConfigError) as caught:
        fleet.resolve(settings(tree), hosts, groups)
    assert str(caught.value).startswith(message)


def test_split_names():
    assert fleet.split_names("a,b c") == ["a", "b", "c"]
    assert fleet.split_names(["a,b", "c"]) == ["a", "b", "c"]
    assert fleet.split_names(None) == []


def members(n):
    return [Member(name=f"h{i}", host=f"root@127.0.0.{i}", settings=settings({}))
            for i in range(1, n + 1)]


def test_stages_canary_first_then_the_rest():
    five = members(5)
    assert fleet.stages(five, 2) == [("canary", five[:2]), ("rest", five[2:])]
    assert fleet.stages(five, None) == [("all", five)]
    assert fleet.stages(five, 5) == [("all", five)]


def outcome(name, code=0, state=None, **result):
    r = HostResult(exit_code=code, **result)
    return HostOutcome(name=name, host=name, stage="all", state=state or fleet.state_of(r),
                       result=r)


def test_exit_code_is_zero_only_when_every_host_succeeded():
    assert fleet.exit_code([outcome("a"), outcome("b")]) == 0
    assert fleet.exit_code([outcome("a"), outcome("b", 1)]) == 1
    assert fleet.exit_code([outcome("a", 5), outcome("b", 3), outcome("c", 1)]) == 5
    assert fleet.exit_code([outcome("a"), outcome("b", state=fleet.SKIPPED)]) == 1
    assert fleet.state_of(HostResult(exit_code=3)) == fleet.UNREACHABLE


def test_stop_reason_names_the_failed_canaries():
    assert fleet.stop_reason([outcome("a")]) is None
    assert fleet.stop_reason([outcome("a", 5), outcome("b")]) == \
        "rollout stopped: canary a failed"


SUMMARY = [
    outcome("acme", before="4.5.11", after="4.5.12",
            items={"backup": "ticked", "update": "ticked"}),
    outcome("globex", 5, before="4.5.11", items={"backup": "ticked", "update": "open"},
            message="update to v4.5.14 failed; rolled back to v4.5.11"),
    outcome("initech", 3, message="cannot connect (Connection refused)"),
    outcome("hooli", state=fleet.SKIPPED, message="rollout stopped: canary globex failed"),
]


def test_summary_table_has_versions_items_and_result_per_host():
    text = fleet.table(SUMMARY)
    lines = text.splitlines()
    assert lines[0].split() == ["host", "before", "after", "backup", "update", "result"]
    assert lines[1].split() == ["acme", "4.5.11", "4.5.12", "ticked", "ticked", "ok"]
    assert lines[2].split() == ["globex", "4.5.11", "-", "ticked", "open", "failed", "(5)"]
    assert lines[3].split() == ["initech", "unknown", "-", "-", "-", "unreachable", "(3)"]
    assert lines[4].split() == ["hooli", "-", "-", "-", "-", "skipped"]
    assert lines[5:] == ["globex: update to v4.5.14 failed; rolled back to v4.5.11",
                         "initech: cannot connect (Connection refused)",
                         "hooli: rollout stopped: canary globex failed"]
    assert fleet.verdict(SUMMARY, "rollout stopped: canary globex failed") == \
        "1 of 4 hosts ok; rollout stopped: canary globex failed"


def test_report_files_markdown_and_json():
    doc = fleet.document("maintain", SUMMARY, started_at="2026-01-05T10:00:00Z",
                         finished_at="2026-01-05T10:03:00Z", parallel=3, canary=1,
                         stopped=None)
    files = fleet.report_files(doc, SUMMARY, "20260105-100000")
    assert sorted(files) == ["fleet-maintain-20260105-100000.json",
                             "fleet-maintain-20260105-100000.md"]
    data = json.loads(files["fleet-maintain-20260105-100000.json"])
    assert data["exit_code"] == 5 and data["ok"] is False
    assert [h["state"] for h in data["hosts"]] == ["ok", "failed", "unreachable", "skipped"]
    assert data["hosts"][0]["items"] == {"backup": "ticked", "update": "ticked"}
    md = files["fleet-maintain-20260105-100000.md"]
    assert "| host | before | after | backup | update | result |" in md
    assert "| globex | 4.5.11 | - | ticked | open | failed (5) |" in md
    assert "- initech: cannot connect (Connection refused)" in md


# The runner, with jobs that never touch the network (the rig proves the SSH side).

@pytest.fixture
def offline(monkeypatch):
    """Sessions that never connect; the jobs only see their session."""
    monkeypatch.setattr(Session, "open", lambda self: None)
    return Config()


def test_hosts_run_in_parallel_at_most_n_at_once_and_failures_stay_with_their_host(offline):
    active, peak, lock = [0], [0], threading.Lock()
    together = threading.Barrier(3, timeout=10)  # breaks unless 3 jobs run at the same time
    seen = []

    def job(session):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            if session.label == "h2":
                raise ConnectError("h2: cannot connect (Connection refused)")
            if session.label == "h4":
                raise KeyError("bug")
            together.wait() if session.label in ("h1", "h3", "h5") else None
            return HostResult(exit_code=0, before="4.5.11")
        finally:
            with lock:
                active[0] -= 1
                seen.append(session.label)

    announced = []
    outcomes, stopped = run_fleet(offline, members(6), job, parallel=3,
                                  announce=announced.append)
    assert stopped is None and peak[0] <= 3
    assert [(o.name, o.state, o.result.exit_code) for o in outcomes] == [
        ("h1", "ok", 0), ("h2", "unreachable", 3), ("h3", "ok", 0),
        ("h4", "failed", 5), ("h5", "ok", 0), ("h6", "ok", 0)]
    assert outcomes[1].result.message == "cannot connect (Connection refused)"
    assert outcomes[3].result.message == "internal error: KeyError: 'bug'"
    assert sorted(seen) == [f"h{i}" for i in range(1, 7)]
    assert sorted(o.name for o in announced) == sorted(seen)


def test_a_failed_canary_stops_the_rollout_before_the_rest(offline):
    ran = []

    def job(session):
        ran.append(session.label)
        if session.label == "h1":
            raise OperationError("h1: update to v4.5.14 failed; rolled back to v4.5.11")
        return HostResult(exit_code=0)

    outcomes, stopped = run_fleet(offline, members(4), job, parallel=4, canary=1)
    assert ran == ["h1"]
    assert stopped == "rollout stopped: canary h1 failed"
    assert [(o.name, o.stage, o.state) for o in outcomes] == [
        ("h1", "canary", "failed"), ("h2", "rest", "skipped"), ("h3", "rest", "skipped"),
        ("h4", "rest", "skipped")]
    assert fleet.exit_code(outcomes) == 5


def test_a_good_canary_lets_the_rest_run(offline):
    outcomes, stopped = run_fleet(offline, members(3), lambda s: HostResult(exit_code=0),
                                  parallel=2, canary=1)
    assert stopped is None
    assert [(o.stage, o.state) for o in outcomes] == [("canary", "ok"), ("rest", "ok"),
                                                       ("rest", "ok")]


def test_two_names_for_one_host_keep_both_results():
    one, two = (MemberConnection(Member(name=n, host="root@10.0.0.1", settings=settings({})))
                for n in ("blue", "green"))
    assert one != two and len({one, two}) == 2
    assert Connection("root@10.0.0.1") == Connection("root@10.0.0.1")


# The executor: a fleet task runs once with every -H host; other tasks stay per host.

def test_executor_calls_fleet_tasks_once_with_all_hosts():
    calls = []

    @task
    def per_host(c):
        calls.append(("per-host", c.host))

    @task
    def fleetwide(c, parallel=None):
        calls.append(("fleet", type(c) is FleetContext, c.cli_hosts, parallel))

    fleetwide.fleet = True
    program = TriggerMaint(name="t", binary="t", namespace=Collection(per_host, fleetwide),
                           executor_class=FleetExecutor, config_class=Config)
    program.run(["t", "-H", "a,b,c", "per-host", "fleetwide", "--parallel", "2"], exit=False)
    program.run(["t", "fleetwide"], exit=False)
    program.run(["t", "-H", "a,a", "fleetwide", "fleetwide"], exit=False)
    assert calls == [("per-host", "a"), ("per-host", "b"), ("per-host", "c"),
                     ("fleet", True, ("a", "b", "c"), "2"), ("fleet", True, (), None),
                     ("fleet", True, ("a", "a"), None), ("fleet", True, ("a", "a"), None)]


# Each phase's result as a fleet row.

def test_status_row_is_the_worst_state_per_topic():
    from trigger_maint.checks import Check, StatusReport

    report = StatusReport(host="acme", checks=(
        Check("containers", "ok", "running, healthy", item="webapp"),
        Check("containers", "fail", "exited (exit code 0)", item="redis"),
        Check("webapp", "ok", "HTTP 200", item="/healthcheck"),
        Check("disk", "warn", "83%, 20 GiB free", item="/"),
        Check("disk", "ok", "40%", item="/var/lib/docker"),
        Check("certificate", "ok", "2026-03-01", item="trigger.acme.test"),
        Check("backup", "unknown"),
        Check("reboot", "ok", "not required"),
        Check("version", "ok", "v4.5.11, up to date", data={"running": "4.5.11"}),
        Check("secrets", "ok"),
    ))
    row = fleet.status_result(report)
    assert row.exit_code == 1 and row.before == "v4.5.11"
    assert row.items == {"containers": "FAIL", "disk": "WARN", "certificate": "ok",
                         "backup": "UNKNOWN", "reboot": "ok", "version": "ok", "other": "ok"}
    assert row.message.startswith("status NOT OK: 10 checks, 1 failed (containers redis); "
                                  "1 unknown (backup)")
    assert row.data is report


def test_every_check_name_has_its_topic_or_other():
    from trigger_maint.checks import NAMES

    topics = {name for _, names in fleet.STATUS_TOPICS for name in names}
    assert topics <= set(NAMES)
    assert set(NAMES) - topics == {"secrets", "run_containers"}


def test_verify_row_names_the_failed_checks():
    from trigger_maint.verification import Check, VerifyReport

    report = VerifyReport(host="acme", intended="4.5.12", running="4.5.12", checks=(
        Check("services", "ok", "6 running and healthy"),
        Check("healthcheck", "fail", "http://127.0.0.1:8030/healthcheck: HTTP 500 (ERROR)"),
    ))
    row = fleet.verify_result(report)
    assert (row.exit_code, row.before) == (1, "v4.5.12")
    assert row.items == {"services": "ok", "healthcheck": "fail"}
    assert row.message == ("verify failed: healthcheck (http://127.0.0.1:8030/healthcheck: "
                           "HTTP 500 (ERROR))")
    assert row.data["ok"] is False and row.data["checks"][1]["state"] == "fail"


def test_maintain_row_has_the_checklist_and_the_failed_phase():
    from datetime import UTC, datetime

    from trigger_maint import checklist
    from trigger_maint.maintaining import MaintainRun, Outcome, Policy, Step

    started = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    run = MaintainRun(host="acme", policy=Policy(yes=True), started_at=started,
                      finished_at=started, steps=[
                          Step("preflight", Outcome.OK),
                          Step("update", Outcome.FAILED, code=5,
                               reason="update to v4.5.14 failed; rolled back to v4.5.10")])
    built = checklist.build(run, 80)
    run.complete = built.complete
    run.files = {"markdown": "/r/acme-20260105-100000.md",
                 "json": "/r/acme-20260105-100000.json"}
    row = fleet.maintain_result(run, built)
    assert row.exit_code == 5 and row.report == run.files["markdown"]
    assert list(row.items) == list(checklist.ITEMS)
    assert row.items["update"] == "open"
    assert row.message == "update: update to v4.5.14 failed; rolled back to v4.5.10"
    assert row.data["files"] == run.files and row.data["exit_code"] == 5
    assert fleet.state_of(row) == fleet.FAILED


def test_a_maintain_row_without_a_failed_phase_names_the_open_boxes():
    from trigger_maint import checklist
    from trigger_maint.maintaining import Outcome, Policy, Step

    from .test_maintaining import make_run

    run = make_run(Policy(no_update=True),
                   update=Step("update", Outcome.SKIPPED, reason="--no-update"))
    row = fleet.maintain_result(run, checklist.build(run, 80))
    assert (row.exit_code, row.before, row.after) == (1, "v4.5.10", "v4.5.10")
    assert row.message == "open: update (v4.5.12 available, not installed: --no-update)"
    good = make_run()
    assert fleet.maintain_result(good, checklist.build(good, 80)).message == ""


def test_announcement_names_host_time_and_result():
    done = HostOutcome(name="acme", host="root@10.0.0.1", stage="canary", state="failed",
                       result=HostResult(exit_code=5, message="update failed"), seconds=41.96)
    assert fleet.announcement(done) == "acme | done in 42.0 s: failed (5): update failed"


# The command line, against ports where nothing listens (the rig proves the rest).

def cli(*args, program="trigger-maint", cwd=None, env=None):
    exe = Path(sys.executable).with_name(program)
    return subprocess.run([str(exe), *args], capture_output=True, text=True, cwd=cwd or ROOT,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_fleet_over_unreachable_hosts_names_each_host_and_exits_3():
    done = cli("-H", "root@127.0.0.1:9,root@127.0.0.2:9", "fleet-status", "--parallel", "2")
    assert done.returncode == 3, done.stderr
    table = done.stdout.splitlines()
    assert table[0].split() == ["host", "before", "after", "result"]
    assert table[1].split() == ["127.0.0.1:9", "unknown", "-", "unreachable", "(3)"]
    assert table[2].split() == ["127.0.0.2:9", "unknown", "-", "unreachable", "(3)"]
    assert table[3].startswith("127.0.0.1:9: cannot connect (")
    assert table[-1] == "0 of 2 hosts ok"
    assert "127.0.0.2:9 | done in" in done.stderr
    assert done.stderr.splitlines()[-1] == "trigger-maint: fleet status: 0 of 2 hosts ok"


def test_inventory_and_groups_from_fabric_yaml_with_json(tmp_path):
    (tmp_path / "fabric.yaml").write_text(
        "trigger:\n"
        "  hosts:\n"
        "    blue: {host: 'root@127.0.0.1:9', path: /srv/blue}\n"
        "    green: 'root@127.0.0.2:9'\n"
        "  groups:\n"
        "    colours: [green, blue]\n")
    done = cli("fleet-status", "--group", "colours", "--json", cwd=tmp_path)
    assert done.returncode == 3, done.stderr
    doc = json.loads(done.stdout)
    assert [(h["name"], h["host"], h["state"]) for h in doc["hosts"]] == [
        ("green", "root@127.0.0.2:9", "unreachable"), ("blue", "root@127.0.0.1:9", "unreachable")]
    assert doc["exit_code"] == 3 and doc["summary"] == "0 of 2 hosts ok"
    bad = cli("fleet-status", "--group", "reds", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "trigger-maint: trigger.groups: no group 'reds' (known: colours)"


def test_plain_fab_needs_the_fleet_executor_for_dash_h(tmp_path):
    args = ("-H", "root@127.0.0.1:9,root@127.0.0.2:9", "fleet-status")
    plain = cli(*args, program="fab")
    assert plain.returncode == 2
    assert plain.stderr.strip() == f"trigger-maint: {EXECUTOR_HINT}"
    config = tmp_path / "fabric.yaml"
    config.write_text("tasks:\n  executor_class: trigger_maint.fleet_runner.FleetExecutor\n")
    configured = cli("-f", str(config), *args, program="fab")
    assert configured.returncode == 3, configured.stderr
    assert configured.stdout.splitlines()[-1] == "0 of 2 hosts ok"
    # Without -H, plain fab's executor is enough: the hosts come from the inventory.
    config.write_text("trigger:\n  hosts: {blue: 'root@127.0.0.1:9'}\n  groups: {sky: [blue]}\n")
    grouped = cli("-f", str(config), "fleet-status", "--group", "sky", program="fab")
    assert grouped.returncode == 3, grouped.stderr
    assert grouped.stdout.splitlines()[-1] == "0 of 1 host ok"
