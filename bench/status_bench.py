"""Status benchmark: the runbook's six status commands, one SSH login each, next to one
`trigger-maint status --json` on the same host.

    .venv/bin/python -m tests.rig up --hosts 12
    .venv/bin/python bench/status_bench.py [--host 12] [--repeat 7]

On rig host --host (reset to a fresh v4 stack at the start, one `trigger-maint backup` made
so that the backup folder holds a backup, that folder taken from a first status; the bench
holds the host's lock meanwhile) it runs, alternating, --repeat rounds of:
  runbook         the six status commands of a hand runbook for a Trigger.dev Docker host,
                  each as its own `ssh host 'command'` with the system ssh client (the rig's
                  key with -i, its known_hosts, BatchMode=yes, StrictHostKeyChecking=yes),
                  one after the other as an operator pastes them: `docker ps -a`
                  (containers), `df -h` (disk), `free -h` (memory), `certbot certificates`
                  (TLS), `ls -lt <backup folder> | head` (last backup, the folder
                  trigger-maint uses), `cat /var/run/reboot-required 2>/dev/null` (reboot)
  trigger-maint   `trigger-maint status --json` (exit 0, or 1 when a check fails: either is
                  a measurement; anything else stops the bench)
Each round's order alternates (runbook first in odd rounds). It counts the SSH logins of
each run in the host's sshd log (tests/rig: hosts/K/sshd.log, one "Accepted publickey" line
per login; expected: 6 for the runbook, 1 for trigger-maint, whose status runs no
preflight). It prints the Markdown tables of bench/README.md ("status"): per run the median
wall time, the logins, what it gives (outputs to read, or the checks of the JSON document),
the median CPU seconds (common.HostCPU: the host's sshd with its sessions, dockerd,
containerd, database shim and PostgreSQL, and the local ssh clients or trigger-maint) and
the load average (mean / max of 1 s samples); the median of the per-round ratio runbook /
trigger-maint; then the median wall time of each runbook command.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import EXE, HostCPU, Load, cli_env, load_text, timed_run

from tests.rig import Rig

RUNBOOK = "the runbook's six commands, six `ssh host 'cmd'` logins"
TOOL = "`trigger-maint status --json`, one login"


def runbook_commands(backup_dir: str) -> list[str]:
    return ["docker ps -a", "df -h", "free -h", "certbot certificates",
            f"ls -lt {backup_dir} | head", "cat /var/run/reboot-required 2>/dev/null"]


def logins(host) -> int:
    """Logins the host's sshd has accepted so far."""
    return (host.dir / "sshd.log").read_text(errors="replace").count("Accepted publickey")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", type=int, default=12, help="rig host number (reset to v4)")
    parser.add_argument("--repeat", type=int, default=7, help="rounds; medians are shown")
    args = parser.parse_args()
    host = Rig().host(args.host)
    if not host.is_up():
        raise SystemExit(f"rig host {args.host} is not up (python -m tests.rig up --hosts N)")
    scratch = Path(tempfile.mkdtemp(prefix="status-bench-"))
    env = cli_env(scratch)
    ssh = ["ssh", "-p", str(host.port), "-i", host.key, "-o", "BatchMode=yes",
           "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={host.known_hosts}",
           "-o", "IdentitiesOnly=yes", "-F", "/dev/null", f"root@{host.address}"]
    tool = [str(EXE), *host.fab_args(), "status", "--json"]
    with host.lock():
        host.reset("v4")
        made = subprocess.run([str(EXE), *host.fab_args(), "backup", "--json"], env=env,
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if made.returncode:
            raise SystemExit(made.stderr)
        _, first = timed_run(tool, env, timeout=300)
        backup_dir = json.loads(first.stdout)["backup_dir"]
        commands = runbook_commands(backup_dir)
        per_command: dict[str, list[float]] = {command: [] for command in commands}
        meter = HostCPU(host, host.compose("ps", "-q", "--no-trunc", "postgres").stdout.strip())

        def runbook() -> None:
            for command in commands:
                started = time.perf_counter()
                done = subprocess.run([*ssh, command], capture_output=True, text=True,
                                      stdin=subprocess.DEVNULL, timeout=300)
                # `cat` of a missing reboot-required exits 1: that is the answer "no"
                if done.returncode and not command.startswith("cat "):
                    raise SystemExit(f"ssh {command!r}: {done.returncode} {done.stderr}")
                per_command[command].append(time.perf_counter() - started)

        checks = set()

        def trigger_maint() -> None:
            _, done = timed_run(tool, env, timeout=300)
            if done.returncode not in (0, 1):
                raise SystemExit(done.stderr)
            checks.add(len(json.loads(done.stdout)["checks"]))

        runs = {RUNBOOK: runbook, TOOL: trigger_maint}
        times = {label: [] for label in runs}
        cpu = {label: [] for label in runs}
        sessions = {label: [] for label in runs}
        loads = {label: [] for label in runs}
        for r in range(args.repeat):
            for label in (list(runs) if r % 2 == 0 else list(runs)[::-1]):
                load, before = Load(), logins(host)
                meter.start()
                started = time.perf_counter()
                runs[label]()
                times[label].append(time.perf_counter() - started)
                cpu[label].append(meter.stop()["total"])
                time.sleep(0.5)  # let sshd write its log line
                sessions[label].append(logins(host) - before)
                loads[label] += load.stop()
                print(f"round {r + 1}: {label}: {times[label][-1]:.2f} s, "
                      f"{sessions[label][-1]} logins", file=sys.stderr, flush=True)
        host.run(f"rm -f {backup_dir}/trigger-*")
    shutil.rmtree(scratch)
    ratio = statistics.median(a / b for a, b in zip(times[RUNBOOK], times[TOOL], strict=True))
    print(f"host {args.host} (v4), backup folder {backup_dir}; median of {args.repeat} "
          f"rounds; runbook / trigger-maint per round: {ratio:.2f}\n")
    print("| run | wall (s) | SSH logins | what it gives | CPU (s) | load avg (mean / max) |")
    print("|---|---|---|---|---|---|")
    gives = {RUNBOOK: f"{len(commands)} outputs to read",
             TOOL: f"{', '.join(map(str, sorted(checks)))} checks, judged"}
    for label in runs:
        counted = sorted(set(sessions[label]))
        print(f"| {label} | {statistics.median(times[label]):.2f} "
              f"| {', '.join(map(str, counted))} | {gives[label]} "
              f"| {statistics.median(cpu[label]):.2f} | {load_text(loads[label])} |")
    print("\n| runbook command (its own login) | wall (s) |\n|---|---|")
    for command, seconds in per_command.items():
        print(f"| `{command}` | {statistics.median(seconds):.2f} |")

if __name__ == "__main__":
    main()
