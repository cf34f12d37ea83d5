"""The maintain policy: update decision, safety gates, stop rules, step judging, exit code.

The builders here make the typed results the phases return, shaped like real runs on a v4
host going from v4.5.10 to v4.5.12; test_checklist, test_report and test_notify reuse them.
"""

from __future__ import annotations

import dataclasses
import io
import types
from datetime import UTC, datetime

import pytest

from trigger_maint import config
from trigger_maint.backups import Backup
from trigger_maint.checks import Check, StatusReport
from trigger_maint.cleanup import CleanupResult, Item, Plan, Removal
from trigger_maint.errors import ConfigError, ConnectError, OperationError, UnsafeError
from trigger_maint.installation import Installation
from trigger_maint.inventory import RunningVersion
from trigger_maint.layout import PRESETS
from trigger_maint.maintaining import (
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
from trigger_maint.research import Advisory, Research
from trigger_maint.tasks import maintain
from trigger_maint.tasks.preflight import Preflight
from trigger_maint.tasks.reboot import RebootResult
from trigger_maint.updating import UpdateResult
from trigger_maint.verification import Check as VerifyCheck
from trigger_maint.verification import VerifyReport
from trigger_maint.web import ServiceError

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
                     docker_root="/var/lib/docker", installation=inst)


def research(running="4.5.10", target="4.5.12", advisories=(), checked=True) -> Research:
    return Research(
        running=running, running_tag=f"v{running}", running_digest="", floating=False,
        latest="4.5.12" if checked else None, target=target,
        target_tag=f"v{target}" if target else "", target_digest="sha256:" + "b" * 64,
        update_available=target is not None, advisories=list(advisories),
        advisories_checked=checked, hazards=[],
        source="github" if checked else "--target")


def status(**states) -> StatusReport:
    """A healthy v4 host's status; `states` replaces checks by name: {name: (state, value)}."""
    checks = [
        Check("container postgres", "ok", "running, healthy, up 3 d, 0 restarts"),
        Check("container webapp", "ok", "running, healthy, up 3 d, 0 restarts"),
        Check("webapp /healthcheck", "ok", "HTTP 200"),
        Check("container resources", "warn", "CPU max webapp 1.0%"),
        Check("disk /", "ok", "43% used, 10.0 GiB free", "warn 80%, fail 95%"),
        Check("memory", "ok", "40% used"),
        Check("certificate trigger.test", "ok", "valid until 2027-02-01 (62 d)"),
        Check("certificate trigger.test (certbot)", "ok", "valid until 2027-02-01 (62 d)"),
        Check("backup", "ok", "2026-12-01 04:01 UTC, 1 min ago, 1.2 MiB, verified"),
        Check("reboot", "ok", "not required"),
        Check("version", "ok", "v4.5.12, up to date"),
    ]
    for name, (state, value) in states.items():
        checks = [c for c in checks if c.name != name] + [Check(name, state, value)]
    return StatusReport(host=HOST, checks=tuple(checks))


def backup(verified=True) -> Backup:
    return Backup(name="trigger-db-20261201-040010.sql.gz",
                  path="/var/backups/trigger/trigger-db-20261201-040010.sql.gz",
                  stamp="20261201-040010", size=1_258_291, sha256="c" * 64,
                  started_at=STARTED, finished_at=STARTED, postgres_version="15.8",
                  trigger_version="4.5.10", layout="v4", images={}, row_counts={"User": 3},
                  migrations=12, verified=verified, checks={"gzip": verified}, files_archive="",
                  volumes=())


def update(changed=True, rolled_back=False, to="4.5.12") -> UpdateResult:
    return UpdateResult(changed=changed, from_version="4.5.10",
                        to_version=to if changed and not rolled_back else "4.5.10",
                        rolled_back=rolled_back, point="20261201-040020",
                        message="health not reached; rolled back" if rolled_back else "")


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
                        reason="" if done else "a reboot is required but not allowed: "
                                               "pass --reboot or --yes",
                        verify=verify(verified) if done else None)


def good_results() -> dict:
    return {"preflight": preflight(), "research": research(), "status": status(),
            "backup": backup(), "update": update(), "verify": verify(), "cleanup": cleanup(),
            "reboot": reboot(done=False, required=False), "final_status": status()}


def make_run(policy: Policy | None = None, **replace) -> MaintainRun:
    """A run whose phases returned `good_results()`, with `replace`: phase -> result or Step."""
    run = MaintainRun(host=HOST, policy=policy or Policy(yes=True), started_at=STARTED,
                      finished_at=STARTED.replace(minute=3))
    results = {**good_results(), **replace}
    for phase in PHASES:
        value = results[phase]
        step = value if isinstance(value, Step) else judge(phase, value)
        step.duration = 1.5
        run.steps.append(step)
    return run


def failed(phase: str, exc: Exception) -> Step:
    return Step(phase, Outcome.FAILED, code=exc.exit_code, reason=str(exc),
                ends_run=ends_run(phase, exc))


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
    assert judge("cleanup", cleanup(images=2)).summary == "2 removed, 600.0 MiB freed"
    before = judge("status", status(**{"backup": ("fail", "none")}))
    assert before.ok and "1 failed (backup)" in before.summary  # measured before the backup
    after = judge("final_status", status(**{"container webapp": ("fail", "exited (1)")}))
    assert (after.outcome, after.code) == (Outcome.FAILED, 1)
    unverified = judge("backup", backup(verified=False))
    assert (unverified.outcome, unverified.code) == (Outcome.FAILED, 1)
    rolled = judge("update", update(rolled_back=True))
    assert (rolled.outcome, rolled.code) == (Outcome.FAILED, 5)
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

class Boxes:
    def __init__(self, complete: bool):
        self.complete = complete


def test_exit_code_is_the_worst_phase_and_at_least_1_with_an_open_box():
    run = make_run()
    run.checklist = Boxes(complete=True)
    assert exit_code(run) == 0 == run.exit_code
    run.checklist = Boxes(complete=False)
    assert exit_code(run) == 1
    worst = make_run(update=failed("update", OperationError("rolled back")),
                     final_status=status(**{"disk /": ("fail", "97% used")}))
    worst.checklist = Boxes(complete=False)
    assert exit_code(worst) == 5
    interrupted = make_run(verify=Step("verify", Outcome.FAILED, code=130, reason="interrupted",
                                       ends_run=True))
    interrupted.checklist = Boxes(complete=False)
    assert exit_code(interrupted) == 130


def test_a_dry_run_counts_only_failed_phases():
    run = make_run(dataclasses.replace(Policy(), dry_run=True),
                   backup=Step("backup", Outcome.PLANNED), update=Step("update", Outcome.PLANNED))
    run.checklist = Boxes(complete=False)
    assert exit_code(run) == 0
    run.steps.append(failed("research", ServiceError("GitHub: no answer")))
    assert exit_code(run) == 3


def test_planned_steps_of_a_dry_run():
    planned_update = update(changed=False)
    planned_update = dataclasses.replace(planned_update, target="v4.5.12", to_version=None)
    assert planned("update", planned_update).summary == "would update v4.5.10 to v4.5.12"
    assert planned("update", planned_update).outcome is Outcome.PLANNED
    listed = dataclasses.replace(cleanup(images=2), applied=False, removed=())
    assert planned("cleanup", listed).summary == "would remove 2 item(s), 600.0 MiB"
    assert planned("backup", None).reason == "dry run: script printed, not run"
    assert planned("reboot", reboot(done=False, required=False)).outcome is Outcome.OK


# ---- run_maintain's order and gates, with the phases stubbed ------------------------------

class FakeSession:
    """What run_maintain uses of a Session: label, flags, results, settings, print."""

    def __init__(self, tmp_path, dry_run=False):
        self.label, self.dry_run, self.json_output, self.results = HOST, dry_run, False, {}
        self.settings = config.settings({"report_dir": str(tmp_path)})
        self.printed = []

    def print(self, text=""):
        self.printed.append(text)


@pytest.fixture
def phases(monkeypatch):
    """Stub every run_* that maintain calls; `.calls` records them in order, `.outcomes`
    replaces what one returns (an exception is raised)."""
    recorder = types.SimpleNamespace(calls=[], outcomes={})
    results = good_results()

    def stub(name):
        def run(session, *args, **kwargs):
            recorder.calls.append((name, kwargs))
            outcome = recorder.outcomes.get(name, results[name])
            if isinstance(outcome, BaseException):
                raise outcome
            return None if session.dry_run and name == "backup" else outcome
        return run

    for name in ("preflight", "research", "backup", "update", "verify", "cleanup", "reboot"):
        monkeypatch.setattr(maintain, f"run_{name}", stub(name))
    statuses = iter([results["status"], results["final_status"]])

    def run_status(session, fresh=False):
        recorder.calls.append(("status", {"fresh": fresh}))
        return next(statuses)

    monkeypatch.setattr(maintain, "run_status", run_status)
    monkeypatch.setattr(maintain.sys, "stdin", io.StringIO())  # not a terminal
    return recorder


def called(phases) -> list[str]:
    return [name for name, _ in phases.calls]


def test_maintain_runs_every_phase_once_in_order(tmp_path, phases):
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True))
    assert called(phases) == ["preflight", "research", "status", "backup", "update", "verify",
                              "cleanup", "status"]  # reboot: status says not required
    assert dict(phases.calls)["update"] == {"target": "4.5.12", "ack": ()}
    assert phases.calls[-1] == ("status", {"fresh": True})
    assert run.exit_code == 0 and run.files["json"].startswith(str(tmp_path))


def test_without_a_terminal_the_update_needs_yes(tmp_path, phases):
    run = maintain.run_maintain(FakeSession(tmp_path), Policy())
    assert "update" not in called(phases)
    assert run.step("update").reason == "not confirmed: no terminal to ask (use --yes)"
    assert run.exit_code == 1


def test_a_backup_made_earlier_in_the_same_command_is_reused(tmp_path, phases):
    session = FakeSession(tmp_path)
    session.results["backup"] = backup()
    maintain.run_maintain(session, Policy(yes=True))
    assert "backup" not in called(phases) and "update" in called(phases)


def test_a_failed_backup_stops_update_and_cleanup_but_not_the_checks(tmp_path, phases):
    phases.outcomes["backup"] = UnsafeError(f"{HOST}: not enough space in /var/backups/trigger")
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True))
    assert called(phases) == ["preflight", "research", "status", "backup", "verify", "status"]
    assert run.step("backup").reason == "not enough space in /var/backups/trigger"
    assert run.step("update").reason.startswith("no verified backup from this run")
    assert run.exit_code == 4


def test_a_rolled_back_update_skips_cleanup_and_reboot(tmp_path, phases):
    phases.outcomes["update"] = OperationError(f"{HOST}: not healthy; rolled back")
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True, reboot=True))
    assert called(phases) == ["preflight", "research", "status", "backup", "update", "verify",
                              "status"]
    assert run.exit_code == 5


def test_a_lost_host_or_a_bug_stops_the_run_and_is_still_reported(tmp_path, phases, capsys):
    phases.outcomes["verify"] = ConnectError(f"{HOST}: cannot connect (Connection refused)")
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True))
    assert called(phases)[-1] == "verify" and run.exit_code == 3
    assert run.step("final_status").reason == "stopped: verify failed"
    phases.calls.clear()
    phases.outcomes["verify"] = KeyError("boom")
    run = maintain.run_maintain(FakeSession(tmp_path), Policy(yes=True))
    assert run.step("verify").reason == "internal error: KeyError: 'boom'"
    assert run.exit_code == 5 and "Traceback" in capsys.readouterr().err
    assert len(list(tmp_path.glob("*.json"))) == 2


def test_a_dry_run_plans_and_writes_nothing(tmp_path, phases):
    session = FakeSession(tmp_path / "reports", dry_run=True)
    run = maintain.run_maintain(session, Policy(dry_run=True))
    assert run.step("backup").outcome is Outcome.PLANNED
    assert "update" in called(phases)  # printed by update under --dry-run
    assert run.files == {} and not (tmp_path / "reports").exists()
    assert "Plan (dry run)" in session.printed[-1]
