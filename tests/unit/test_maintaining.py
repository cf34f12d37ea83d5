"""The maintain policy: update decision, safety gates, stop rules, step judging, exit code.

The builders here make the typed results the phases return, shaped like real runs on a v4
host going from v4.5.10 to v4.5.12; test_checklist, test_report and test_notify reuse them.
"""

from __future__ import annotations

import dataclasses
import json
import types
from datetime import UTC, datetime

import pytest

from trigger_maint import checklist as cl
from trigger_maint import config, transactions
from trigger_maint.backups import Backup
from trigger_maint.checks import CONTAINER_THRESHOLD, OK, WARN, Check, StatusReport
from trigger_maint.cleanup import CleanupResult, Item, Plan, Removal
from trigger_maint.confirm import NO_TERMINAL, UNATTENDED, Confirm
from trigger_maint.errors import ConfigError, ConnectError, OperationError, UnsafeError
from trigger_maint.installation import Installation, Preflight
from trigger_maint.inventory import RunningVersion
from trigger_maint.layout import PRESETS
from trigger_maint.maintaining import (
    DRY_RUN,
    PHASES,
    Decision,
    MaintainRun,
    Outcome,
    Policy,
    Step,
    cleanup_allowed,
    ends_run,
    exit_code,
    judge,
    planned,
    reboot_blocker,
    update_blocker,
    update_decision,
)
from trigger_maint.outcomes import Planned, UpdateResult, already, update_result
from trigger_maint.plans import update_plan
from trigger_maint.research import Advisory, Research
from trigger_maint.tasks import maintain
from trigger_maint.tasks.reboot import RebootResult
from trigger_maint.verification import Check as VerifyCheck
from trigger_maint.verification import VerifyReport
from trigger_maint.web import ServiceError

from .builders import BUDGETS, webapp

STARTED = datetime(2026, 12, 1, 4, 0, 5, tzinfo=UTC)
HOST = "127.0.0.29:2222"
ADVISORY = Advisory(id="GHSA-p28v-f755-9qrg", cve="CVE-2026-73654", severity="high",
                    summary="Secrets leak", affected=">= 3.3.8, <= 4.5.10", fixed="4.5.11",
                    url="https://github.com/advisories/GHSA-p28v-f755-9qrg")


def preflight(version="4.5.10") -> Preflight:
    rv = RunningVersion(version=version, source="BUILD_APP_VERSION",
                        image_ref="127.0.0.1:5000/triggerdotdev/trigger.dev:v4.5.10",
                        tag="v4.5.10", image_id="sha256:" + "a" * 64, digest="", pinned_tag="")
    inst = Installation(layout=PRESETS["v4"], path="/opt/trigger",
                        webapp_url="http://127.0.0.1:8030/healthcheck",
                        services=("electric", "postgres", "redis", "supervisor", "webapp"),
                        images={}, containers=(), version=rv)
    return Preflight(host=HOST, hostname="trigger-host-19", os="Debian GNU/Linux 12",
                     kernel="6.1.0", boot_id="0f1e2d3c-aaaa-bbbb-cccc-123456789abc",
                     docker_version="20.10.24", compose_version="2.26.1",
                     docker_root="/var/lib/docker", zstd=False, installation=inst,
                     install_dumps=0, backup_dir="/var/backups/trigger",
                     backup_dir_reason="the default")


def research(running="4.5.10", target="4.5.12", advisories=(), checked=True) -> Research:
    return Research(
        running=running, running_tag=f"v{running}", running_digest="", floating=False,
        latest="4.5.12" if checked else None, target=target,
        target_tag=f"v{target}" if target else "", target_digest="sha256:" + "b" * 64,
        update_available=target is not None, advisories=list(advisories),
        advisories_checked=checked, hazards=[],
        source="github" if checked else "--target")


def status(**states) -> StatusReport:
    """A healthy v4 host's status after the update; `states` replaces checks by label:
    {label: (state, value[, data])}."""
    cert = {"source": "live", "expires": "2027-02-01T04:58:55+00:00", "days_left": 62}
    checks = [
        Check("containers", OK, "running, healthy, up 3 d, 0 restarts", CONTAINER_THRESHOLD,
              item="postgres", data={"service": "postgres", "state": "running"}),
        Check("containers", OK, "running, healthy, up 3 d, 0 restarts", CONTAINER_THRESHOLD,
              item="webapp", data={"service": "webapp", "state": "running"}),
        Check("webapp", OK, "HTTP 200", "HTTP 200", item="/healthcheck"),
        Check("resources", WARN, "CPU max webapp 1.0%"),
        Check("disk", OK, "43% used, 10.0 GiB free", "warn 80%, fail 95%", item="/",
              data={"mount": "/", "percent": 43}),
        Check("memory", OK, "40% used"),
        Check("certificate", OK, "valid until 2027-02-01 (62 days)", item="trigger.test",
              data=cert),
        Check("certificate", OK, "valid until 2027-02-01 (62 days)",
              item="trigger.test (certbot)", data={**cert, "source": "certbot"}),
        Check("backup", OK, "2026-12-01 04:01 UTC, 1 min ago, 1.2 MiB, verified"),
        Check("reboot", OK, "not required", data={"required": False, "packages": []}),
        Check("version", OK, "v4.5.12, up to date", data={
            "running": "4.5.12", "latest": "4.5.12", "update_available": False}),
    ]
    for label, (state, value, *data) in states.items():
        name, _, item = label.partition(" ")
        before = next((c for c in checks if c.label == label), None)
        checks = [c for c in checks if c.label != label] + [Check(
            name, state, value, item=item,
            data=data[0] if data else (before.data if before else {}))]
    return StatusReport(host=HOST, checks=tuple(checks))


REBOOT_NEEDED = ("warn", "required", {"required": True, "packages": ["linux-image-amd64"]})


def backup(verified=True) -> Backup:
    return Backup(name="trigger-db-20261201-040010.sql.gz",
                  path="/var/backups/trigger/trigger-db-20261201-040010.sql.gz",
                  stamp="20261201-040010", size=1_258_291, mtime=STARTED,
                  origin="trigger-maint", purpose="backup", sha256="c" * 64,
                  finished_at=STARTED, postgres_version="15.8", trigger_version="4.5.10",
                  layout="v4", row_counts={"User": 3}, migrations=12, recorded=True,
                  checks={"intact": True, "complete": True, "rows_match": verified,
                          "size_plausible": True},
                  problems=() if verified else ("failed checks: rows_match",))


def change_journal(outcome="done", version="4.5.12", error="", step="", **facts) -> list[str]:
    """The journal of an update that ended with `outcome`, `version` running after it."""
    tx = "20261201-040020-update"
    events = [{"ev": "begin", "tx": tx, "kind": "update"},
              {"ev": "step", "dir": "forward", "n": 1, "step": "recreate", "status": "start"},
              {"ev": "fact", "key": "changed", "value": True},
              {"ev": "fact", "key": "point", "value": "20261201-040020"},
              {"ev": "fact", "key": "target", "value": "v4.5.12"},
              {"ev": "fact", "key": "webapp_container", "value": webapp(tag=f"v{version}")},
              *({"ev": "fact", "key": k, "value": v} for k, v in facts.items()),
              {"ev": "end", "tx": tx, "outcome": outcome, "step": step, "error": error}]
    begin = int(STARTED.replace(second=20).timestamp())  # the rollback point's time
    return [json.dumps({"t": begin + 10 * n, **e}) for n, e in enumerate(events)]


def update(changed=True, rolled_back=False, to="4.5.12", guard=False) -> UpdateResult:
    """What an update did: changed to `to`, rolled back, or nothing to change."""
    if not changed and not rolled_back:
        return already("4.5.10", "v4.5.10")
    facts = {"guard": {"file": "trigger-db-20261201-040019.sql.gz", "sha256": "ab" * 32,
                       "finished_at": "2026-12-01T04:00:19Z"}} if guard else {}
    j = transactions.journal(
        change_journal("rolled-back", "4.5.10", "health not reached within 300 s",
                       "wait_healthy", **facts) if rolled_back else
        change_journal(version=to, **facts))
    return update_result(j, "4.5.10", f"v{to}", "trigger-db-20261201-040010.sql.gz")


def cleanup(images=1, refused=()) -> CleanupResult:
    removed = tuple(Removal(Item("image", f"sha256:{n:064x}", 300 * 1024 * 1024, "dangling"),
                            True) for n in range(images))
    plan = Plan(items=tuple(r.item for r in removed), kept=(), refused=tuple(refused))
    return CleanupResult(plan, True, removed, (), sum(r.item.size for r in removed))


def verify(ok=True) -> VerifyReport:
    checks = (VerifyCheck("services", "ok", "5 running"),
              VerifyCheck("healthcheck", "ok" if ok else "fail", "HTTP 200" if ok else "HTTP 500"))
    return VerifyReport(host=HOST, checks=checks, intended="4.5.12", running="4.5.12")


def reboot(done=True, required=True, verified=True) -> RebootResult:
    return RebootResult(required=required, wanted=required, done=done,
                        old_boot_id="0f1e2d3c-aaaa", new_boot_id="9a8b7c6d-bbbb" if done else "",
                        reason="" if done else "a reboot is required but not allowed "
                                               "(not confirmed: no terminal to ask (add --yes): "
                                               "pass --reboot or --yes)",
                        verify=verify(verified) if done else None)


def good_results() -> dict:
    return {"preflight": preflight(), "research": research(), "status": status(),
            "backup": backup(), "update": update(), "verify": verify(), "cleanup": cleanup(),
            "reboot": reboot(done=False, required=False), "final_status": status()}


def make_run(policy: Policy | None = None, **replace) -> MaintainRun:
    """A finished run whose phases returned `good_results()`, with `replace`: phase ->
    result or Step; `complete` set from its checklist, as run_maintain sets it."""
    run = MaintainRun(host=HOST, policy=policy or Policy(yes=True), started_at=STARTED,
                      finished_at=STARTED.replace(minute=3))
    results = {**good_results(), **replace}
    for phase in PHASES:
        value = results[phase]
        step = value if isinstance(value, Step) else judge(phase, value)
        step.duration = 1.5
        run.steps.append(step)
    run.complete = cl.build(run, 80).complete
    return run


def failed(phase: str, exc: Exception) -> Step:
    return Step(phase, Outcome.FAILED, code=exc.exit_code, reason=str(exc),
                result=getattr(exc, "result", None), ends_run=ends_run(phase, exc))


# ---- update decision ---------------------------------------------------------------

@pytest.mark.parametrize("policy, found, go, target, why", [
    (Policy(), research(), True, "4.5.12", "v4.5.10 -> v4.5.12"),
    (Policy(no_update=True), research(), False, None, "--no-update"),
    (Policy(), research(target=None), False, None, "up to date (v4.5.10)"),
    (Policy(), None, False, None, "research did not complete"),
    (Policy(target="v4.5.14"), None, True, "v4.5.14", "--target v4.5.14"),
    (Policy(target="v4.5.14"), research(target="4.5.14", checked=False), True, "v4.5.14",
     "--target"),
    (Policy(target="4.5.10"), research(target=None, checked=False), False, None,
     "already on v4.5.10"),
    (Policy(update_only_security=True), research(), False, None, "no advisory affects v4.5.10"),
    (Policy(update_only_security=True), research(advisories=[ADVISORY]), True, "4.5.12",
     "fixes 1 advisory"),
])
def test_update_decision(policy, found, go, target, why):
    decision = update_decision(found, policy)
    assert (decision.go, decision.target) == (go, target)
    assert why in decision.reason


def test_no_update_wins_over_a_target():
    assert not update_decision(research(), Policy(no_update=True, target="v4.5.12")).go


# ---- safety gates --------------------------------------------------------------------

def test_update_needs_this_runs_verified_backup():
    run = make_run()
    assert update_blocker(run) is None
    unverified = make_run(backup=backup(verified=False))
    assert "no verified backup from this run" in update_blocker(unverified)
    refused = make_run(backup=failed("backup", UnsafeError("backup folder too small")))
    assert "backup folder too small" in update_blocker(refused)
    run.steps = [s for s in run.steps if s.phase != "backup"]
    assert update_blocker(run) == "no backup was made in this run"


def test_a_dry_run_plans_the_update_after_a_planned_backup():
    run = make_run(Policy(dry_run=True), backup=Step("backup", Outcome.PLANNED))
    assert update_blocker(run) is None


def test_cleanup_waits_for_a_verified_update_and_never_follows_a_failed_one():
    assert cleanup_allowed(make_run()).go
    rolled_back = make_run(update=failed("update", OperationError(
        "health not reached; rolled back to v4.5.10")))
    decision = cleanup_allowed(rolled_back)
    assert decision == Decision(False, "the update failed; images kept for a rollback")
    assert not cleanup_allowed(make_run(update=update(rolled_back=True))).go
    unverified = make_run(verify=verify(ok=False))
    assert "has not passed verify" in cleanup_allowed(unverified).reason
    # No update this run: a failing verify does not hold images (nothing to roll back to).
    assert cleanup_allowed(make_run(update=Step("update", Outcome.SKIPPED, reason="--no-update"),
                                    verify=verify(ok=False))).go
    assert cleanup_allowed(make_run(update=update(changed=False), verify=verify(ok=False))).go
    no_backup = make_run(backup=failed("backup", OperationError("pg_dumpall failed")),
                         update=Step("update", Outcome.SKIPPED))
    assert "backup failed" in cleanup_allowed(no_backup).reason


def test_no_reboot_after_a_failed_update_or_verify():
    assert reboot_blocker(make_run()) is None
    assert reboot_blocker(make_run(update=failed("update", OperationError("x")))) == \
        "the update failed"
    assert reboot_blocker(make_run(verify=verify(ok=False))) == "verify failed"


@pytest.mark.parametrize("phase, exc, stops", [
    ("preflight", ConfigError("no installation found"), True),
    ("backup", ConnectError("cannot connect"), True),
    ("research", ServiceError("GitHub: no answer within 20 s"), False),
    ("update", OperationError("rolled back"), False),
    ("update", UnsafeError("hazard"), False),
    ("update", ConfigError("--target: bad"), False),
    ("status", KeyboardInterrupt(), True),
])
def test_what_ends_a_run(phase, exc, stops):
    assert ends_run(phase, exc) is stops


def test_a_run_is_stopped_by_the_first_step_that_ends_it():
    run = make_run(backup=failed("backup", ConnectError("host gone")))
    assert run.stopped.phase == "backup"
    assert make_run().stopped is None


# ---- judging what a phase returned ---------------------------------------------------

def test_judge_summaries_and_failures():
    assert judge("preflight", preflight()).summary == "v4 layout at /opt/trigger, v4.5.10"
    assert judge("research", research(advisories=[ADVISORY])).summary == (
        "running v4.5.10, update available: v4.5.12, 1 advisory(ies) affect it")
    assert judge("update", update()).summary == "v4.5.10 -> v4.5.12"
    assert judge("update", update(guard=True)).summary == (
        "v4.5.10 -> v4.5.12; guard dump trigger-db-20261201-040019.sql.gz (writes of the last "
        "11 s before the change at risk)")
    assert judge("update", update(changed=False)).summary == \
        "nothing to change: v4.5.10 runs already"
    assert judge("cleanup", cleanup(images=2)).summary == "2 removed, 600.0 MiB freed"
    assert judge("backup", backup()).summary == \
        "trigger-db-20261201-040010.sql.gz, 1.2 MiB, gzip, verified"
    before = judge("status", status(backup=("fail", "none")))
    assert before.ok and "1 failed (backup)" in before.summary  # measured before the backup
    after = judge("final_status", status(**{"containers webapp": ("fail", "exited (1)")}))
    assert (after.outcome, after.code) == (Outcome.FAILED, 1)
    unverified = judge("backup", backup(verified=False))
    assert (unverified.outcome, unverified.code) == (Outcome.FAILED, 1)
    rolled = judge("update", update(rolled_back=True))
    assert (rolled.outcome, rolled.code) == (Outcome.FAILED, 5)
    assert rolled.reason == ("update to v4.5.12 failed at wait_healthy: health not reached "
                             "within 300 s; rolled back: v4.5.10 runs")
    bad = judge("verify", verify(ok=False))
    assert (bad.outcome, bad.code, bad.reason) == (Outcome.FAILED, 1, "failed: healthcheck")


def test_judge_reboot():
    assert judge("reboot", reboot(done=False, required=False)).summary == "not required"
    refused = judge("reboot", reboot(done=False))
    assert refused.outcome is Outcome.SKIPPED and "pass --reboot" in refused.reason
    done = judge("reboot", reboot())
    assert done.ok and done.summary == "rebooted, boot id 0f1e2d3c -> 9a8b7c6d"
    broken = judge("reboot", reboot(verified=False))
    assert broken.code == 1 and "verify after the reboot failed: healthcheck" in broken.reason


# ---- exit code -----------------------------------------------------------------------

def test_exit_code_is_the_worst_phase_and_at_least_1_with_an_open_box():
    run = make_run()
    assert run.complete and exit_code(run) == 0 == run.exit_code
    run.complete = False
    assert exit_code(run) == 1
    run.complete = None  # the checklist was never built
    assert exit_code(run) == 1
    worst = make_run(update=failed("update", OperationError("rolled back")),
                     final_status=status(**{"disk /": ("fail", "97% used")}))
    assert exit_code(worst) == 5
    interrupted = make_run(verify=Step("verify", Outcome.FAILED, code=130, reason="interrupted",
                                       ends_run=True))
    assert exit_code(interrupted) == 130


def test_a_dry_run_counts_only_failed_phases():
    run = make_run(dataclasses.replace(Policy(), dry_run=True),
                   backup=Step("backup", Outcome.PLANNED), update=Step("update", Outcome.PLANNED))
    run.complete = False
    assert exit_code(run) == 0
    run.steps.append(failed("research", ServiceError("GitHub: no answer")))
    assert exit_code(run) == 3


def test_planned_steps_of_a_dry_run():
    plan = update_plan("20261201-040020-update", preflight_paths(), "20261201-040020", "v4.5.12",
                       "4.5.10", (), 12, 10**8, BUDGETS, {})
    would = Planned("update", plan, "would update v4.5.10 to v4.5.12")
    assert planned("update", would).summary == "would update v4.5.10 to v4.5.12"
    assert planned("update", would).outcome is Outcome.PLANNED
    listed = dataclasses.replace(cleanup(images=2), applied=False, removed=())
    assert planned("cleanup", listed).summary == "would remove 2 item(s), 600.0 MiB"
    assert planned("backup", None).reason == DRY_RUN == "dry run: planned, not run"
    assert planned("reboot", reboot(done=False, required=False)).outcome is Outcome.OK
    assert planned("reboot", reboot(done=False)).outcome is Outcome.PLANNED


def preflight_paths():
    from trigger_maint.hostpaths import HostPaths

    return HostPaths(preflight().backup_dir)


# ---- run_maintain's order and gates, with the phases stubbed ------------------------------

class FakeSession:
    """What run_maintain uses of a Session: label, flags, outcomes, settings, note, print."""

    def __init__(self, tmp_path, dry_run=False):
        self.label, self.dry_run, self.json_output = HOST, dry_run, False
        self.settings = config.settings({"report_dir": str(tmp_path)})
        self.outcomes, self.printed, self.notes = {}, [], []

    def print(self, text=""):
        self.printed.append(text)

    def note(self, text):
        self.notes.append(text)


@pytest.fixture
def phases(monkeypatch):
    """Stub every run_* that maintain calls; `.calls` records them in order with their
    keyword arguments, `.outcomes` replaces what one returns (an exception is raised)."""
    recorder = types.SimpleNamespace(calls=[], outcomes={})
    results = good_results()

    def stub(name):
        def run(session, *args, **kwargs):
            recorder.calls.append((name, kwargs))
            outcome = recorder.outcomes.get(name, results[name])
            if isinstance(outcome, BaseException):
                raise outcome
            if session.dry_run and name == "backup":
                return None
            if session.dry_run and name == "update":
                return Planned("update", None, "would update v4.5.10 to v4.5.12")
            return outcome
        return run

    for name in ("preflight", "research", "backup", "update", "verify", "cleanup", "reboot"):
        monkeypatch.setattr(maintain, f"run_{name}", stub(name))

    def run_status(session):
        recorder.calls.append(("status", {}))
        measured = [name for name, _ in recorder.calls].count("status")
        return recorder.outcomes.get("status", results["status"]) if measured == 1 else \
            recorder.outcomes.get("final_status", results["final_status"])

    monkeypatch.setattr(maintain, "run_status", run_status)
    return recorder


def called(phases) -> list[str]:
    return [name for name, _ in phases.calls]


def test_maintain_runs_every_phase_once_in_order(tmp_path, phases):
    done = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True), Confirm(yes=True))
    run = done.run
    assert called(phases) == ["preflight", "research", "status", "backup", "update", "verify",
                              "cleanup", "status"]  # reboot: status says not required
    assert run.step("reboot").reason == "not required"
    update_kwargs = dict(phases.calls)["update"]
    assert (update_kwargs["target"], update_kwargs["ack"]) == ("4.5.12", ())
    assert update_kwargs["confirm"].yes  # confirmed once, by maintain
    assert run.exit_code == 0 and run.complete and done.checklist.complete
    assert run.files["json"].startswith(str(tmp_path))


def test_without_a_terminal_the_update_needs_yes(tmp_path, phases):
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(), UNATTENDED).run
    assert "update" not in called(phases)
    assert run.step("update").reason == NO_TERMINAL
    assert run.exit_code == 1


def test_the_operator_is_asked_once_for_the_update(tmp_path, phases):
    asked = []
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(),
                                Confirm(ask=lambda q: asked.append(q) or False)).run
    assert asked == [f"{HOST}: update v4.5.10 -> v4.5.12?"]
    assert run.step("update").reason == "declined at the prompt"


def test_a_backup_made_earlier_in_the_same_command_is_reused(tmp_path, phases):
    session = FakeSession(tmp_path)
    session.outcomes["backup"] = backup()
    maintain.run_maintain(session, Policy(yes=True), Confirm(yes=True))
    assert "backup" not in called(phases) and "update" in called(phases)


def test_a_failed_backup_stops_update_and_cleanup_but_not_the_checks(tmp_path, phases):
    phases.outcomes["backup"] = UnsafeError(f"{HOST}: not enough space in /var/backups/trigger")
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True), Confirm(yes=True)).run
    assert called(phases) == ["preflight", "research", "status", "backup", "verify", "status"]
    assert run.step("backup").reason == "not enough space in /var/backups/trigger"
    assert run.step("update").reason.startswith("no verified backup from this run")
    assert run.step("cleanup").reason.startswith("the backup failed")
    assert run.exit_code == 4


def test_a_rolled_back_update_skips_cleanup_and_reboot(tmp_path, phases):
    error = OperationError(f"{HOST}: update failed at wait_healthy; rolled back: v4.5.10 runs")
    error.result = update(rolled_back=True)
    phases.outcomes["update"] = error
    phases.outcomes["status"] = status(reboot=REBOOT_NEEDED)
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True, reboot=True),
                                Confirm(yes=True)).run
    assert called(phases) == ["preflight", "research", "status", "backup", "update", "verify",
                              "status"]
    assert run.step("update").result.rolled_back
    assert run.step("reboot").reason == "not while the update failed"
    assert run.exit_code == 5


def test_reboot_needs_the_reboot_flag_or_a_confirmation(tmp_path, phases):
    phases.outcomes["status"] = status(reboot=REBOOT_NEEDED)
    maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True, reboot=True), UNATTENDED)
    assert dict(phases.calls)["reboot"]["confirm"].yes
    phases.calls.clear()
    maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True), UNATTENDED)
    assert dict(phases.calls)["reboot"]["confirm"] is UNATTENDED


def test_a_lost_host_or_a_bug_stops_the_run_and_is_still_reported(tmp_path, phases, capsys):
    phases.outcomes["verify"] = ConnectError(f"{HOST}: cannot connect (Connection refused)")
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True), Confirm(yes=True)).run
    assert called(phases)[-1] == "verify" and run.exit_code == 3
    assert run.step("final_status").reason == "stopped: verify failed"
    phases.calls.clear()
    phases.outcomes["verify"] = KeyError("boom")
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True), Confirm(yes=True)).run
    assert run.step("verify").reason == "internal error: KeyError: 'boom'"
    assert run.exit_code == 5 and "Traceback" in capsys.readouterr().err
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_a_dry_run_plans_and_writes_nothing(tmp_path, phases):
    session = FakeSession(tmp_path / "reports", dry_run=True)
    run = maintain.run_maintain(session, Policy(dry_run=True), UNATTENDED).run
    assert run.step("backup").outcome is Outcome.PLANNED
    assert run.step("update").summary == "would update v4.5.10 to v4.5.12"
    assert "update" in called(phases)  # planned: nothing asked, nothing changed
    assert run.step("final_status").outcome is Outcome.SKIPPED
    assert run.files == {} and not (tmp_path / "reports").exists()
    assert "Plan (dry run)" in session.printed[-1]
