"""A stand-in systemd on a rig host, switchable: on, /run/systemd/system exists in the host's
view and /usr/sbin/systemd-run is the stand-in (systemd_run.py); off, both are gone (the
machine's own /usr/bin/systemd-run then finds no systemd, as on a host without it)."""

import json

from .config import RIG_SRC

STANDIN = RIG_SRC / "systemd_run.py"
TARGET = "/usr/sbin/systemd-run"
RECORD = "rig/systemd-units.jsonl"  # under the host's /run


def enable(host) -> None:
    host.run(f"cat > {TARGET}.tmp && chmod 0755 {TARGET}.tmp && mv -f {TARGET}.tmp {TARGET} "
             "&& mkdir -p /run/systemd/system /run/systemd/transient",
             input=STANDIN.read_text())


def disable(host) -> None:
    """Stand-in and /run/systemd/system gone, with the transient unit files (units still
    running go on; their records stay in the events)."""
    host.run(f"rm -f {TARGET} {TARGET}.tmp && rm -rf /run/systemd/system /run/systemd/transient")


def enabled(host) -> bool:
    return host.run(f"test -d /run/systemd/system && test -x {TARGET}",
                    check=False).returncode == 0


def events(host) -> list[dict]:
    """Every start and exit the stand-in recorded on host, oldest first."""
    try:
        text = (host.dir / "run" / RECORD).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def started(host) -> list[str]:
    """Names of the units the stand-in started on host, oldest first."""
    return [e["unit"] for e in events(host) if e["ev"] == "start"]


def loaded(host) -> list[str]:
    """Units loaded now (running, or failed and not collected): /run/systemd/transient."""
    out = host.run("ls -1 /run/systemd/transient 2>/dev/null || true").stdout
    return sorted(name for name in out.split() if not name.startswith("."))
