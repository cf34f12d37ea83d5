"""Every task's --json document against docs/json-schema.json.

Each case calls the task itself (the Fabric task object the CLI calls, phase_task's error
handling included) with `json=True`; only the phase functions that would reach a host are
replaced by results made with the builders. What the task prints on stdout is read back
line by line, one document per task and host (docs/json.md), and validated. A document
that drifts from the schema fails the case of its task."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from fabric import Config, Connection
from invoke import Exit
from jsonschema import Draft202012Validator

from trigger_maint import backups, fleet_runner
from trigger_maint import checklist as cl
from trigger_maint import report as reports
from trigger_maint.checks import StatusReport
from trigger_maint.cleanup import CleanupResult
from trigger_maint.errors import ConnectError, UnsafeError
from trigger_maint.outcomes import Planned, restore_result, rollback_result
from trigger_maint.output import Headers
from trigger_maint.remote import Session
from trigger_maint.tasks import backup as backup_tasks
from trigger_maint.tasks import cleanup as cleanup_tasks
from trigger_maint.tasks import common
from trigger_maint.tasks import fleet as fleet_tasks
from trigger_maint.tasks import maintain as maintain_tasks
from trigger_maint.tasks import preflight as preflight_tasks
from trigger_maint.tasks import reboot as reboot_tasks
from trigger_maint.tasks import report as report_tasks
from trigger_maint.tasks import research as research_tasks
from trigger_maint.tasks import rollback as rollback_tasks
from trigger_maint.tasks import status as status_tasks
from trigger_maint.tasks import update as update_tasks
from trigger_maint.tasks import verify as verify_tasks
from trigger_maint.tasks.reboot import RebootResult

from . import builders
from .test_maintaining import (
    ADVISORY,
    backup,
    cleanup,
    good_results,
    make_run,
    reboot,
    research,
    update,
    verify,
)
from .test_updating import journal, running

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "json-schema.json").read_text())
HOST = "127.0.0.29:2222"  # builders.preflight's host, and test_maintaining's
FLEET = ("root@10.0.0.1", "deploy@10.0.0.2:2222", "ops@10.0.0.3")


class Run:
    """Calls tasks as the CLI does and collects the JSON documents they print."""

    def __init__(self, monkeypatch, capsys, tmp_path):
        self.monkeypatch, self.capsys, self.tmp_path = monkeypatch, capsys, tmp_path
        self.tree = {"host_key_policy": "off", "report_dir": str(tmp_path / "reports"),
                     "cache_dir": str(tmp_path / "cache"), "domain": "trigger.example.com"}

    def patch(self, module, name: str, value) -> None:
        """Replace a phase function `module.name`: a callable, or a value it returns (an
        exception is raised)."""
        if not callable(value) or isinstance(value, type):
            result = value

            def value(*args, **kwargs):
                if isinstance(result, BaseException):
                    raise result
                return result

        self.monkeypatch.setattr(module, name, value)

    def config(self) -> Config:
        return Config(overrides={"trigger": dict(self.tree)})

    def host(self) -> Connection:
        """A task's context for one -H host."""
        return Connection("127.0.0.29", user="root", port=2222, config=self.config())

    def fleet(self, hosts=FLEET) -> fleet_runner.FleetContext:
        """A fleet task's context: every -H host at once (FleetExecutor's)."""
        context = fleet_runner.FleetContext(config=self.config())
        context.cli_hosts = tuple(hosts)
        return context

    def __call__(self, task, context=None, **kwargs) -> list[dict]:
        """Run `task` (--json) and return the documents it printed on stdout."""
        common.SESSIONS.clear()
        self.capsys.readouterr()
        try:
            task(self.host() if context is None else context, json=True, **kwargs)
        except Exit:
            pass
        out = self.capsys.readouterr().out
        return [json.loads(line) for line in out.splitlines()]


@pytest.fixture
def run(monkeypatch, capsys, tmp_path) -> Run:
    for name in list(os.environ):
        if name.startswith("FABRIC_TRIGGER_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(Headers, "on", False)
    monkeypatch.setattr(common, "SESSIONS", {})
    # nothing is connected: every phase that would reach a host is replaced
    monkeypatch.setattr(Session, "open", lambda self: None)
    return Run(monkeypatch, capsys, tmp_path)


def status_report(**changes) -> StatusReport:
    """The status a healthy v4 host reports (every check name), research having run."""
    facts = builders.healthy(**changes)
    return builders.status_report(facts, research=research(), domain="trigger.example.com")


def preflight(run: Run) -> None:
    for module in (preflight_tasks, backup_tasks):
        run.patch(module, "run_preflight", builders.preflight())


def maintain_phases(run: Run, dry_run: bool = False, **outcomes) -> None:
    """maintain's phases replaced by good results (and `outcomes`, phase -> result)."""
    results = {**good_results(), "preflight": builders.preflight(), "status": status_report(),
               **outcomes}
    if dry_run:
        results["backup"] = None
        results["update"] = Planned("update", builders.plans()["update"],
                                    "would update v4.5.10 to v4.5.12")
    for phase in ("preflight", "research", "status", "backup", "update", "verify", "cleanup",
                  "reboot"):
        run.patch(maintain_tasks, f"run_{phase}", results[phase])


# ---- the cases: name -> (expected task names, in order; how to run it) ------------------

CASES: dict[str, tuple[list[str], Callable[[Run], list[dict]]]] = {}


def case(name: str, *tasks: str):
    def register(fn):
        CASES[name] = (list(tasks) or [name], fn)
        return fn
    return register


@case("preflight")
def _(run):
    preflight(run)
    return run(preflight_tasks.preflight)


@case("research")
def _(run):
    run.patch(research_tasks, "run_research", research())
    return run(research_tasks.research)


@case("research-advisory", "research")
def _(run):
    run.patch(research_tasks, "run_research", research(advisories=[ADVISORY]))
    return run(research_tasks.research)


@case("status")
def _(run):
    run.patch(status_tasks, "run_status", status_report())
    return run(status_tasks.status)


@case("status-report-only", "status")
def _(run):
    failing = status_report(webapp_http="500")
    assert not failing.ok
    run.patch(status_tasks, "run_status", failing)
    return run(status_tasks.status, report_only=True)


@case("backup")
def _(run):
    run.patch(backup_tasks, "run_backup", backup())
    return run(backup_tasks.backup)


@case("backup-dry-run", "backup")
def _(run):
    run.patch(backup_tasks, "run_backup", None)
    return run(backup_tasks.backup, dry_run=True)


@case("backups")
def _(run):
    preflight(run)
    run.patch(backup_tasks, "list_folder", builders.backup_folder(2, 26, 50))
    return run(backup_tasks.list_task)


@case("backups-verify", "backups")
def _(run):
    preflight(run)
    folder = builders.backup_folder(2, 26, checks={"intact": False})
    run.patch(backup_tasks, "list_folder", folder)
    run.patch(backup_tasks, "run_inspect", backups.in_folder(folder))
    return run(backup_tasks.list_task, verify=True)


@case("update")
def _(run):
    run.patch(update_tasks, "run_update", update(guard=True))
    return run(update_tasks.update, yes=True)


@case("update-rolled-back", "update")
def _(run):
    failed = update(rolled_back=True)
    assert failed.exit_code == 5
    run.patch(update_tasks, "run_update", failed)
    return run(update_tasks.update, yes=True)


@case("update-unchanged", "update")
def _(run):
    run.patch(update_tasks, "run_update", update(changed=False))
    return run(update_tasks.update, yes=True)


@case("update-dry-run", "update")
def _(run):
    run.patch(update_tasks, "run_update", Planned("update", builders.plans()["update"],
                                                  "would update v4.5.10 to v4.5.12"))
    return run(update_tasks.update, dry_run=True)


@case("rollback")
def _(run):
    done = rollback_result(journal(
        "rollback", "done", ("point", builders.POINT.name), ("db_restored", True),
        ("restored_from", builders.POINT.guard), ("safety", "trigger-db-s.sql.gz"),
        ("migrations_before", 6), ("migrations_now", 5), ("images_after", {"webapp": "sha:a"}),
        ("downtime_seconds", 12.5), running("4.5.10")), builders.POINT.name)
    run.patch(rollback_tasks, "run_rollback", done)
    return run(rollback_tasks.rollback, yes=True)


@case("rollback-dry-run", "rollback")
def _(run):
    run.patch(rollback_tasks, "run_rollback", Planned(
        "rollback", builders.plans()["rollback"], "would roll back to 20261201-040020"))
    return run(rollback_tasks.rollback, dry_run=True)


@case("rollback-list", "rollback")
def _(run):
    run.patch(rollback_tasks, "list_points", [builders.POINT])
    return run(rollback_tasks.rollback, list=True)


@case("restore")
def _(run):
    done = restore_result(journal("restore", "done", ("safety", "trigger-db-s.sql.gz"),
                                  running("4.5.10"), steps=("restore_cluster",)),
                          "trigger-db-20261201-040019.sql.gz")
    run.patch(backup_tasks, "run_restore", done)
    return run(backup_tasks.restore, yes=True)


@case("restore-rolled-back", "restore")
def _(run):
    back = restore_result(journal("restore", "rolled-back", ("changed", True),
                                  ("put_back", True), ("left_aside", ["main_tm_aside"]),
                                  running("4.5.10"), steps=("restore_cluster",),
                                  step="restore_cluster", error="psql failed"), "b")
    run.patch(backup_tasks, "run_restore", back)
    return run(backup_tasks.restore, yes=True)


@case("restore-dry-run", "restore")
def _(run):
    run.patch(backup_tasks, "run_restore", Planned("restore", builders.plans()["restore"],
                                                   "would restore"))
    return run(backup_tasks.restore, dry_run=True)


@case("cleanup")
def _(run):
    run.patch(cleanup_tasks, "run_cleanup", cleanup(images=2))
    return run(cleanup_tasks.cleanup)


@case("cleanup-plan", "cleanup")
def _(run):
    run.patch(cleanup_tasks, "run_cleanup", CleanupResult(builders.cleanup_plan(), False))
    return run(cleanup_tasks.cleanup, plan=True)


@case("verify")
def _(run):
    run.patch(verify_tasks, "run_verify", verify())
    return run(verify_tasks.verify)


@case("verify-failed", "verify")
def _(run):
    run.patch(verify_tasks, "run_verify", verify(ok=False))
    return run(verify_tasks.verify)


@case("reboot")
def _(run):
    run.patch(reboot_tasks, "run_reboot", reboot())
    return run(reboot_tasks.reboot, yes=True)


@case("reboot-not-required", "reboot")
def _(run):
    run.patch(reboot_tasks, "run_reboot", reboot(done=False, required=False))
    return run(reboot_tasks.reboot)


@case("reboot-dry-run", "reboot")
def _(run):
    run.patch(reboot_tasks, "run_reboot", RebootResult(True, True, False, "0f1e2d3c-aaaa",
                                                       reason="dry run: would reboot"))
    return run(reboot_tasks.reboot, dry_run=True)


@case("maintain")
def _(run):
    maintain_phases(run)
    return run(maintain_tasks.maintain, yes=True)


@case("maintain-dry-run", "maintain")
def _(run):
    maintain_phases(run, dry_run=True)
    return run(maintain_tasks.maintain, dry_run=True)


@case("maintain-update-failed", "maintain")
def _(run):
    maintain_phases(run, update=UnsafeError(f"{HOST}: update refused: no verified backup"))
    return run(maintain_tasks.maintain, yes=True)


@case("report")
def _(run):
    s = builders.settings(run.tree)
    for done in (make_run(), make_run(update=update(rolled_back=True))):
        reports.write(s, done, cl.build(done, s.disk_warn_percent))
    return run(report_tasks.report)


@case("report-every-host", "report")
def _(run):
    done = make_run()
    reports.write(builders.settings(run.tree), done, cl.build(done, 80))
    docs = run(report_tasks.report, run.fleet(()))
    assert docs[0]["host"] is None and len(docs[0]["runs"]) == 1
    return docs


@case("report-merge", "fleet-status", "fleet-status", "fleet-status")
def _(run):
    run.patch(fleet_tasks, "run_status", status_report())
    docs = []
    for k in (1, 2):
        docs += run(fleet_tasks.fleet_status, run.fleet(), shard=f"{k}/2")
        (run.tmp_path / f"shard-{k}.json").write_text(json.dumps(docs[-1]))
    return docs + run(report_tasks.report, run.fleet(()),
                      merge=[str(run.tmp_path / "shard-*.json")])


@case("fleet-status")
def _(run):
    def run_status(session, allow_unknown=False):
        if session.label == "10.0.0.3":
            raise ConnectError("10.0.0.3: cannot connect (Connection refused)")
        return status_report(webapp_http="500" if session.label == "10.0.0.2:2222" else "200")

    run.patch(fleet_tasks, "run_status", run_status)
    return run(fleet_tasks.fleet_status, run.fleet(), parallel=1)


@case("fleet-verify")
def _(run):
    run.patch(fleet_tasks, "run_verify", verify())
    return run(fleet_tasks.fleet_verify, run.fleet())


@case("fleet-maintain")
def _(run):
    maintain_phases(run)
    return run(fleet_tasks.fleet_maintain, run.fleet(), yes=True)


@case("fleet-maintain-dry-run", "fleet-maintain")
def _(run):
    maintain_phases(run, dry_run=True)
    return run(fleet_tasks.fleet_maintain, run.fleet(), dry_run=True)


@case("fleet-maintain-canary-failed", "fleet-maintain")
def _(run):
    maintain_phases(run, update=update(rolled_back=True))
    return run(fleet_tasks.fleet_maintain, run.fleet(), yes=True)


# the error envelope: a task that fails before it has a result

@case("error-connect", "status")
def _(run):
    run.patch(status_tasks, "run_status", ConnectError(f"{HOST}: cannot connect (refused)"))
    return run(status_tasks.status)


@case("error-refused", "update")
def _(run):
    run.patch(update_tasks, "run_update",
              UnsafeError(f"{HOST}: update refused: no verified backup; nothing was changed"))
    return run(update_tasks.update, yes=True)


@case("error-reboot-refused", "reboot")
def _(run):
    run.patch(reboot_tasks, "run_reboot", reboot(done=False))  # not confirmed: exit 4
    return run(reboot_tasks.reboot)


@case("error-no-host", "preflight")
def _(run):
    return run(preflight_tasks.preflight, fleet_runner.FleetContext(config=run.config()))


@case("error-fleet-config", "fleet-maintain")
def _(run):
    return run(fleet_tasks.fleet_maintain, run.fleet(), shard="2/2", yes=True)


# ---- the test --------------------------------------------------------------------------

def test_the_schema_is_a_valid_2020_12_schema():
    Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("name", list(CASES))
def test_every_task_document_follows_the_schema(run, name):
    tasks, make = CASES[name]
    docs = make(run)
    assert [doc.get("task") for doc in docs] == tasks, docs
    validator = Draft202012Validator(SCHEMA)
    for doc in docs:
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '(document)'}: {e.message}"
                    for e in sorted(validator.iter_errors(doc), key=str)]
        assert not problems, f"{doc['task']} document drifts from docs/json-schema.json:\n" + \
            "\n".join(problems)
        assert doc["ok"] == (doc["exit_code"] == 0) or (name == "status-report-only"
                                                        and not doc["ok"])


def test_the_cases_cover_every_task_and_the_error_envelope():
    covered = {task for tasks, _ in CASES.values() for task in tasks}
    assert covered == set(SCHEMA["properties"]["task"]["enum"])
    assert any(name.startswith("error-") for name in CASES)
    assert any(name.endswith("dry-run") for name in CASES)
