"""reboot on the rig: nothing without /var/run/reboot-required; asked at a terminal (no is
no), refused without a terminal unless --reboot/--yes; otherwise the stand-in reboot is
waited for (new boot id), the containers come back by their restart policy and verify
passes; a host that does not come back is a clear error in time."""

import json
import os
import pty
import subprocess
import sys

from tests.rig.config import KNOWN_HOSTS
from tests.rig.proc import wait_for

FAST = {"FABRIC_TRIGGER_OBSERVE_SECONDS": "3"}
# A `reboot` that takes the host's sshd down and never brings it back.
NEVER_BACK = """#!/bin/sh
exec curl -sf --unix-socket /run/rig/control.sock -X POST http://rig/stop-sshd -o /dev/null
"""


def at_terminal(host, *args, answer: str) -> subprocess.CompletedProcess:
    """trigger-maint with a terminal on stdin that answers its question with `answer`."""
    exe = os.path.join(os.path.dirname(sys.executable), "trigger-maint")
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS)}
    main, terminal = pty.openpty()
    try:
        os.write(main, answer.encode() + b"\n")
        return subprocess.run([exe, *host.fab_args(), *args], stdin=terminal, env=env,
                              capture_output=True, text=True, timeout=120)
    finally:
        os.close(terminal)
        os.close(main)


def test_reboot_only_when_required_and_allowed_then_verified(cli, v4_host):
    h = v4_host
    counts = h.row_counts()
    boot = h.boot_id()
    run = cli(h, "reboot", "--yes", env=FAST)
    assert run.returncode == 0, run.stderr
    assert "reboot: not done (no reboot required)" in run.stdout
    assert h.boot_id() == boot

    h.require_reboot("linux-image-6.1.0-31-amd64")
    refused = cli(h, "reboot", env=FAST)  # not a terminal, not allowed
    assert refused.returncode == 4
    assert "a reboot is required but not allowed" in refused.stderr
    assert "no terminal to ask" in refused.stderr and "--yes" in refused.stderr
    declined = at_terminal(h, "reboot", answer="n")  # asked, and no is no
    assert declined.returncode == 4, declined.stderr
    assert "reboot now? [y/N]" in declined.stderr
    assert "a reboot is required but not allowed" in declined.stderr
    assert "declined at the prompt" in declined.stderr
    dry = cli(h, "reboot", "--reboot", "--dry-run", env=FAST)
    assert dry.returncode == 0 and "dry run: would reboot" in dry.stdout
    assert h.boot_id() == boot

    run = cli(h, "reboot", "--reboot", "--json", env=FAST)
    assert run.returncode == 0, run.stderr
    (result,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert (result["task"], result["ok"], result["exit_code"]) == ("reboot", True, 0)
    assert result["done"] is True and result["required"] is True
    assert result["old_boot_id"] == boot
    assert result["new_boot_id"] == h.boot_id() != boot
    assert {c["state"] for c in result["verify"]["checks"]} == {"ok"}
    assert h.run("test -e /run/reboot-required", check=False).returncode == 1
    assert h.row_counts() == counts


def test_a_host_that_does_not_come_back_is_a_clear_error(cli, v4_host):
    h = v4_host
    original = h.run("cat /usr/sbin/reboot").stdout
    h.run("cat > /usr/sbin/reboot", input=NEVER_BACK)
    try:
        h.require_reboot()
        run = cli(h, "reboot", "--yes",
                  env={**FAST, "FABRIC_TRIGGER_REBOOT_TIMEOUT": "12",
                       "FABRIC_TRIGGER_CONNECT_TIMEOUT": "3"}, timeout=120)
    finally:
        h.run("cat > /usr/sbin/reboot", input=original)
        h.start_sshd()
    assert run.returncode == 3, run.stderr
    assert run.stderr.strip().endswith(
        "did not come back with a new boot id within 12 s (SSH did not answer); "
        "check the host's console")
    wait_for(lambda: h.is_up(), 30, "sshd back")
