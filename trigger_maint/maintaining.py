"""The `maintain` policy: which phases run, which are skipped and why, and the exit code.

Pure: the task feeds in what each phase returned; everything here decides from records.

Exit code of a maintain run (docs/scheduling.md):
  0    every phase that ran succeeded and every checklist box is ticked
  1    a check failed or is unknown, or a checklist box is not ticked
  2    bad configuration or usage; 3 the host could not be reached
  4    a phase refused before changing anything (e.g. update without a fresh backup)
  5    a change failed (e.g. an update that was rolled back)
  130  interrupted
The worst (highest) code of any phase wins; an unticked box makes it at least 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from .errors import CHECK_FAILED, ConnectError
from .status_report import verdict
from .units import size as human_bytes
from .units import v as version
from .web import ServiceError

# The phases of one maintain run, in order; "final_status" is status measured again at the end.
# CHANGES are those that change the host: under --dry-run their scripts are only printed.
CHANGES = ("backup", "update", "cleanup", "reboot")
# Verify comes before cleanup: images are pruned only once an update has passed verify.
PHASES = ("preflight", "research", "status", "backup", "update", "verify", "cleanup", "reboot",
          "final_status")


@dataclass(frozen=True)
class Policy:
    """What the operator allowed for this run (the `maintain` flags)."""

    no_update: bool = False  # never update
    update_only_security: bool = False  # update only when an advisory affects the running version
    reboot: bool = False  # reboot when the host asks for it
    yes: bool = False  # confirm the update and the reboot without asking
    target: str | None = None  # version to update to instead of research's proposal
    ack: tuple[str, ...] = ()  # upgrade hazards acknowledged (update --ack)
    lang: str = "en"  # checklist language: en or nl
    dry_run: bool = False  # print the plan and every script, change nothing


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"  # not run; `reason` says why
    PLANNED = "planned"  # dry run: the script was printed, not run


@dataclass
class Step:
    """What one phase did in this run."""

    phase: str
    outcome: Outcome
    code: int = 0  # the phase's exit code (0 unless failed)
    reason: str = ""  # why it failed or was skipped, one line
    summary: str = ""  # what it found or did, one line
    duration: float = 0.0  # seconds
    result: object = None  # the phase's typed result (Research, Backup, ...)
    ends_run: bool = False  # nothing else can be done on the host after this failure

    @property
    def ok(self) -> bool:
        return self.outcome is Outcome.OK


@dataclass
class MaintainRun:
    """One `maintain` run on one host: the policy and every phase's step, in order."""

    host: str
    policy: Policy
    started_at: datetime
    finished_at: datetime | None = None
    steps: list[Step] = field(default_factory=list)
    complete: bool | None = None  # every checklist box ticked (None: not built yet)
    files: dict = field(default_factory=dict)  # report files written: markdown, json
    webhook: str = ""  # what the webhook call did ("" when not called)

    def step(self, phase: str) -> Step | None:
        """The step of `phase`, or None when it has not been reached."""
        return next((s for s in self.steps if s.phase == phase), None)

    def result(self, phase: str):
        """The typed result of `phase` when it succeeded, else None."""
        step = self.step(phase)
        return step.result if step is not None and step.ok else None

    @property
    def stopped(self) -> Step | None:
        """The step that ended the run early, if any."""
        return next((s for s in self.steps if s.ends_run), None)

    @property
    def exit_code(self) -> int:
        return exit_code(self)


@dataclass(frozen=True)
class Decision:
    """Whether a phase that changes the host should run, and why (not)."""

    go: bool
    reason: str
    target: str | None = None


def ends_run(phase: str, exc: BaseException) -> bool:
    """Whether `phase` failing with `exc` leaves nothing else to do on this host.

    That is the host gone (SSH), Ctrl-C, or no installation found; GitHub or the registry
    being unreachable is not: research fails, the rest of the runbook goes on.
    """
    if isinstance(exc, KeyboardInterrupt) or phase == "preflight":
        return True
    return isinstance(exc, ConnectError) and not isinstance(exc, ServiceError)


DRY_RUN = "dry run: planned, not run"


def planned(phase: str, result) -> Step:
    """The step for a phase that changes the host, under --dry-run (its script not run)."""
    summary = ""
    if phase == "update" and result is not None:
        summary = getattr(result, "summary", "") or "planned"
    elif phase == "cleanup" and result is not None:
        summary = (f"would remove {len(result.plan.items)} item(s), "
                   f"{human_bytes(result.plan.size)}")
    elif phase == "reboot" and result is not None and not result.wanted:
        return Step(phase, Outcome.OK, summary="not required", result=result)
    return Step(phase, Outcome.PLANNED, reason=DRY_RUN, summary=summary, result=result)


def judge(phase: str, result) -> Step:
    """The step for `phase` from the typed result it returned (it did not raise)."""
    outcome, code, summary, reason = Outcome.OK, 0, "", ""
    if phase == "preflight":
        inst = result.installation
        running = version(getattr(inst.version, "version", None)) or "unknown version"
        summary = f"{inst.layout.name} layout at {inst.path}, {running}"
    elif phase == "research":
        summary = research_summary(result)
    elif phase in ("status", "final_status"):
        summary = verdict(result)
        if phase == "final_status" and not result.ok:
            outcome, code, reason = Outcome.FAILED, CHECK_FAILED, summary
    elif phase == "backup":
        summary = f"{result.name}, {human_bytes(result.size)}, {result.compression}"
        if not result.verified:
            outcome, code = Outcome.FAILED, CHECK_FAILED
            reason = f"{result.name} did not pass verification"
        else:
            summary += ", verified"
    elif phase == "update":
        summary = (f"{version(result.from_version)} -> {version(result.to_version)}"
                   if result.changed else result.message or "nothing to change")
        if result.changed and result.guard is not None:
            summary += f"; guard dump {result.guard.name} ({result.guard.window} at risk)"
        if result.exit_code:
            outcome, code = Outcome.FAILED, result.exit_code
            reason = result.message
    elif phase == "cleanup":
        summary = (f"{len(result.removed)} removed, {human_bytes(result.freed_bytes)} freed"
                   + (f", {len(result.left)} left" if result.left else ""))
    elif phase == "verify":
        failed = [c.name for c in result.checks if state_of(c) not in ("ok", "warn")]
        summary = f"{len(result.checks)} checks" + (", all ok" if not failed else "")
        if not result.ok:
            outcome, code = Outcome.FAILED, CHECK_FAILED
            reason = "failed: " + (", ".join(failed) or "see the report")
    elif phase == "reboot":
        if result.done:
            summary = f"rebooted, boot id {result.old_boot_id[:8]} -> {result.new_boot_id[:8]}"
            after = result.verify
            if after is not None and not after.ok:
                outcome, code = Outcome.FAILED, CHECK_FAILED
                reason = "verify after the reboot failed: " + ", ".join(
                    c.name for c in after.failures)
        elif result.wanted:
            outcome, reason = Outcome.SKIPPED, result.reason
        else:
            summary = "not required"
    return Step(phase, outcome, code=code, reason=reason, summary=summary, result=result)


def research_summary(r) -> str:
    """Research in one line: running, newest, advisories."""
    parts = [f"running {version(r.running) or 'unknown'}"]
    if r.update_available and r.target:
        parts.append(f"update available: {version(r.target)}")
    elif r.latest:
        parts.append(f"newest {version(r.latest)}")
    if not r.advisories_checked:
        parts.append("advisories not checked")
    else:
        parts.append(f"{len(r.advisories)} advisory(ies) affect it" if r.advisories
                     else "no advisory affects it")
    return ", ".join(parts)


def state_of(check) -> str:
    """A check's state as text (ok, warn, fail, unknown), enum or not."""
    return str(getattr(check.state, "value", check.state))


def update_decision(research, policy: Policy) -> Decision:
    """Whether to update, to what, and why, from research's result (None when it failed)."""
    if policy.no_update:
        return Decision(False, "--no-update")
    if research is None:
        if policy.target:
            return Decision(True, f"--target {policy.target}", policy.target)
        return Decision(False, "research did not complete: no version to update to")
    running = version(research.running)
    if policy.target:
        if research.running and version(policy.target) == running:
            return Decision(False, f"already on {version(policy.target)}")
        return Decision(True, f"--target {policy.target}", policy.target)
    if not research.update_available or not research.target:
        return Decision(False, f"up to date ({running or 'version unknown'})")
    if policy.update_only_security and not research.advisories:
        return Decision(False, f"{version(research.target)} is available but no advisory affects "
                               f"{running} (--update-only-security)")
    why = f"{running} -> {version(research.target)}"
    if research.advisories:
        why += f" (fixes {len(research.advisories)} advisory(ies))"
    return Decision(True, why, research.target)


def update_blocker(run: MaintainRun) -> str | None:
    """Why updating now would be unsafe, or None: only after THIS run's verified backup."""
    backup = run.step("backup")
    if backup is None:
        return "no backup was made in this run"
    if backup.outcome is Outcome.PLANNED:
        return None
    if not backup.ok or not getattr(backup.result, "verified", False):
        return "no verified backup from this run (" + (backup.reason or "not verified") + ")"
    return None


def cleanup_allowed(run: MaintainRun) -> Decision:
    """Cleanup only when no update is unverified and no update or rollback failed.

    After a failed update (rolled back or not) the images are what a manual rollback needs;
    after a failed backup nothing is deleted either.
    """
    update = run.step("update")
    if update is not None and update.outcome is Outcome.FAILED:
        return Decision(False, "the update failed; images kept for a rollback")
    if update is not None and update.ok and getattr(update.result, "changed", False):
        verify = run.step("verify")
        if verify is None or not verify.ok:
            return Decision(False, "the update has not passed verify; images kept")
    backup = run.step("backup")
    if backup is not None and backup.outcome is Outcome.FAILED:
        return Decision(False, "the backup failed; nothing is deleted without a fresh backup")
    return Decision(True, "")


def reboot_blocker(run: MaintainRun) -> str | None:
    """Why a reboot must not happen now, or None."""
    for phase, why in (("update", "the update failed"), ("verify", "verify failed")):
        step = run.step(phase)
        if step is not None and step.outcome is Outcome.FAILED:
            return why
    return None


def exit_code(run: MaintainRun) -> int:
    """The run's exit code: the worst phase code; at least 1 when a checklist box is unticked.

    A dry run changes nothing and ticks nothing, so only its failed phases count.
    """
    code = max((s.code for s in run.steps if s.outcome is Outcome.FAILED), default=0)
    if not run.policy.dry_run and not run.complete:
        code = max(code, CHECK_FAILED)
    return code
