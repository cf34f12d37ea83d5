"""Reboot when the host requires it and the operator allows it, wait for it, then verify."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

from ..errors import ConnectError, OperationError, UnsafeError
from ..inventory import containers
from ..output import emit, plain
from ..verification import VerifyReport, settling
from ..verification import describe as describe_verify
from .common import phase_task, session_for
from .verify import finish, run_verify

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


def ask(label: str) -> bool:
    """Ask the operator at a terminal; anything but yes is no."""
    sys.stderr.write(f"{label}: reboot now? [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def probe(session, remaining: float) -> dict | None:
    """The boot-id script's result, or None while the host cannot be reached."""
    session.connection.connect_timeout = max(1, min(session.settings.connect_timeout,
                                                    int(remaining)))
    try:
        return session.run("boot-id", timeout=max(5, min(60, int(remaining))))
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
        if found is not None and found["boot_id"] != old_boot_id:
            return found["boot_id"]
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
        if found and found.get("docker_up") and not settling(containers(found.get("containers"))):
            return
        time.sleep(POLL_SECONDS)


def _reboot(session, old: str, required: bool, force: bool, allowed: bool) -> RebootResult:
    wanted = required or force
    if not wanted:
        return RebootResult(False, False, False, old, reason="no reboot required")
    if not (allowed or session.dry_run or (sys.stdin.isatty() and ask(session.label))):
        return RebootResult(required, True, False, old,
                            reason=("a reboot is required but " if required else "")
                            + "not allowed: pass --reboot or --yes")
    if session.run("reboot", changes=True, boot_id=old, force=force) is None:
        return RebootResult(required, True, False, old, reason="dry run: would reboot")
    session.print(f"{session.label}: rebooting; waiting up to "
                  f"{session.settings.reboot_timeout} s for it to come back")
    session.close()
    new = wait_for_new_boot(session, old)
    wait_for_containers(session)
    return RebootResult(required, True, True, old, new, verify=run_verify(session))


def run_reboot(session, force: bool = False, allowed: bool = False) -> RebootResult:
    """Reboot if required (or forced) and allowed, wait for the new boot, then verify."""
    state = session.run("boot-id")
    result = _reboot(session, state["boot_id"], bool(state.get("reboot_required")), force,
                     allowed)
    session.results["reboot"] = result
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
def reboot(c, force=False, reboot=False, yes=False, dry_run=False, json=False):
    """Reboot when required and allowed, wait for the new boot id, then run verify."""
    session = session_for(c, dry_run, json)
    result = run_reboot(session, force=force, allowed=reboot or yes)
    if result.wanted and not result.done and not session.dry_run:
        raise UnsafeError(f"{session.label}: {result.reason}")
    emit(session, plain(result), describe(result))
    if result.verify is not None:
        finish(session, result.verify, "verify after reboot")
