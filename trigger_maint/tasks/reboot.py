"""Reboot when the host requires it and the operator allows it, wait for it, then verify."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..confirm import UNATTENDED, Confirm, from_flags
from ..errors import CHECK_FAILED, ConnectError, OperationError, UnsafeError
from ..output import emit, plain
from ..scripts.base import install_inputs
from ..scripts.reboot import BOOT_ID, REBOOT, Boot, BootInputs, RebootInputs
from ..verification import VerifyReport, settling
from ..verification import describe as describe_verify
from .common import check_exit, phase_task, session_for
from .verify import failure, run_verify

POLL_SECONDS = 2  # pause between attempts to reach a rebooting host


@dataclass(frozen=True)
class RebootResult:
    """Whether a reboot was required and done, the boot ids, and verify afterwards."""

    required: bool  # /var/run/reboot-required exists
    wanted: bool  # required or forced
    done: bool
    old_boot_id: str
    new_boot_id: str = ""
    reason: str = ""  # why no reboot was done
    verify: VerifyReport | None = None


def probe(session, remaining: float) -> Boot | None:
    """The boot-id script's result, or None while the host cannot be reached."""
    session.connection.connect_timeout = max(1, min(session.settings.connect_timeout,
                                                    int(remaining)))
    try:
        return session.run(BOOT_ID, BootInputs(install_inputs(session.settings)),
                           timeout=max(5, min(60, int(remaining))))
    except (ConnectError, OperationError):
        session.close()
        return None
    finally:
        session.connection.connect_timeout = session.settings.connect_timeout


def wait_for_new_boot(session, old_boot_id: str) -> str:
    """Poll until the host answers with another boot id (reboot_timeout); the new id."""
    limit = session.settings.reboot_timeout
    deadline = time.monotonic() + limit
    last = "the host still answered with the old boot id"
    while (remaining := deadline - time.monotonic()) > 0:
        found = probe(session, remaining)
        if found is not None and found.boot_id != old_boot_id:
            return found.boot_id
        last = "SSH did not answer" if found is None else \
            "the host still answered with the old boot id"
        session.close()
        time.sleep(POLL_SECONDS)
    error = ConnectError if last == "SSH did not answer" else OperationError
    raise error(f"{session.label}: did not come back with a new boot id within {limit} s "
                f"({last}); check the host's console")


def wait_for_containers(session) -> None:
    """Poll until Docker answers and no container is still starting (health_timeout);
    then verify tells what did not come back."""
    deadline = time.monotonic() + session.settings.health_timeout
    while (remaining := deadline - time.monotonic()) > 0:
        found = probe(session, remaining)
        if found and found.docker_up and not settling(list(found.containers)):
            return
        time.sleep(POLL_SECONDS)


def _reboot(session, old: str, required: bool, force: bool, confirm: Confirm) -> RebootResult:
    wanted = required or force
    if not wanted:
        return RebootResult(False, False, False, old, reason="no reboot required")
    if not session.dry_run:
        ok, why = confirm.allows(f"{session.label}: reboot now?")
        if not ok:
            return RebootResult(required, True, False, old,
                                reason=("a reboot is required but " if required else "")
                                + f"not allowed: {why.removesuffix(' (add --yes)')}; "
                                "pass --reboot or --yes")
    if session.run(REBOOT, RebootInputs(old, force)) is None:
        return RebootResult(required, True, False, old, reason="dry run: would reboot")
    session.print(f"{session.label}: rebooting; waiting up to "
                  f"{session.settings.reboot_timeout} s for it to come back")
    session.close()
    new = wait_for_new_boot(session, old)
    wait_for_containers(session)
    return RebootResult(required, True, True, old, new, verify=run_verify(session))


def run_reboot(session, force: bool = False, confirm: Confirm = UNATTENDED) -> RebootResult:
    """Reboot if required (or forced) and confirmed, wait for the new boot, then verify."""
    state = session.run(BOOT_ID, BootInputs(install_inputs(session.settings)))
    result = _reboot(session, state.boot_id, state.reboot_required, force, confirm)
    session.outcomes["reboot"] = result
    return result


def describe(result: RebootResult) -> str:
    """The reboot for people."""
    if not result.done:
        return f"reboot: not done ({result.reason})"
    lines = [f"rebooted: boot id {result.old_boot_id[:8]} -> {result.new_boot_id[:8]}"]
    if result.verify is not None:
        lines.append(describe_verify(result.verify))
    return "\n".join(lines)


@phase_task(help={"force": "reboot even when /var/run/reboot-required is absent",
                  "reboot": "allow the reboot (needed when not asked at a terminal)",
                  "yes": "same as --reboot"})
def reboot(c, force=False, reboot=False, yes=False, dry_run=False, json=False, scripts=False):
    """Reboot when required and allowed, then verify.

    Waits for the new boot id and the containers, then runs verify."""
    session = session_for(c, dry_run, json, scripts)
    result = run_reboot(session, force=force, confirm=from_flags(reboot or yes))
    if result.wanted and not result.done and not session.dry_run:
        raise UnsafeError(f"{session.label}: {result.reason}")
    code = CHECK_FAILED if result.verify is not None and not result.verify.ok else 0
    emit(session, "reboot", plain(result), describe(result), exit_code=code)
    if result.verify is not None:
        check_exit(session, code, failure(result.verify, "verify after reboot"))
