"""What the benchmarks share: the rig's environment for trigger-maint, the load average
sampled while a step runs, and the CPU a step costs one rig host.

The machine's two cores are shared with other people's test runs, so wall times move with
their load. CPU seconds do not (much): `HostCPU` adds up what the host's own processes used
(its dockerd and containerd, the sshd that runs trigger-maint's scripts, with every session
it reaped, the database container's shim and PostgreSQL, with every process they reaped)
and what this bench's own children used (trigger-maint, nsenter and what runs under it).
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.rig.config import KNOWN_HOSTS, REGISTRY  # noqa: E402

EXE = Path(sys.executable).with_name("trigger-maint")
TICK = os.sysconf("SC_CLK_TCK")


def cli_env(scratch: Path, **extra: str) -> dict[str, str]:
    """The environment the integration tests give trigger-maint against the rig."""
    return {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
            "FABRIC_TRIGGER_REGISTRY": REGISTRY,
            "FABRIC_TRIGGER_GITHUB_API": "http://127.0.0.1:9",
            "FABRIC_TRIGGER_CACHE_DIR": f"{scratch}/cache",
            "FABRIC_TRIGGER_REPORT_DIR": f"{scratch}/reports", **extra}


class Load:
    """The 1-minute load average, sampled every second from start to stop."""

    def __init__(self):
        self.samples = [os.getloadavg()[0]]
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(1):
            self.samples.append(os.getloadavg()[0])

    def stop(self) -> list[float]:
        self.done.set()
        self.thread.join()
        self.samples.append(os.getloadavg()[0])
        return self.samples


def load_text(samples: list[float]) -> str:
    """"mean / max" of load samples."""
    return f"{statistics.fmean(samples):.1f} / {max(samples):.1f}" if samples else ""


def _cpu_seconds(pid: int) -> float:
    """utime + stime + cutime + cstime of a process, in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICK


class HostCPU:
    """CPU seconds a step costs rig host `host` (see the module's text). `db` is the full id
    of the database container, whose shim and PostgreSQL are counted."""

    def __init__(self, host, db: str):
        hostd = int((host.dir / "hostd.pid").read_text())
        table = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True,
                               text=True, check=True).stdout
        rows = [line.split(None, 2) for line in table.splitlines() if line.strip()]
        children: dict[int, list[tuple[int, str]]] = {}
        for pid, ppid, args in (r + [""] * (3 - len(r)) for r in rows):
            children.setdefault(int(ppid), []).append((int(pid), args))

        def child(parent: int, prefix: str) -> int:
            return next(p for p, a in children.get(parent, []) if a.startswith(prefix))

        dockerd = child(hostd, "dockerd")
        shim = next(int(pid) for pid, _, args in rows if f"-id {db}" in args)
        self.pids = {"dockerd": dockerd, "containerd": child(dockerd, "containerd"),
                     "sshd": child(hostd, "sshd"), "db shim": shim,
                     "postgres": child(shim, "postgres")}

    def _now(self) -> dict[str, float]:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        now = {name: _cpu_seconds(pid) for name, pid in self.pids.items()}
        now["local"] = usage.ru_utime + usage.ru_stime
        return now

    def start(self) -> None:
        self._start = self._now()

    def stop(self) -> dict[str, float]:
        """Seconds of CPU per part since start(); "total" is their sum."""
        end = self._now()
        parts = {name: end[name] - self._start[name] for name in end}
        parts["total"] = sum(parts.values())
        return parts


def timed_run(argv: list[str], env: dict, timeout: float = 3600,
              on_line=None) -> tuple[float, subprocess.CompletedProcess]:
    """Run argv (stdin closed); its wall time and result. `on_line(seconds, line)` sees each
    stderr line as it arrives, with the seconds since the start."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, text=True, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)
    reader.start()
    err = []
    for line in proc.stderr:
        err.append(line)
        if on_line:
            on_line(time.perf_counter() - started, line)
    code = proc.wait(timeout=timeout)
    reader.join()
    seconds = time.perf_counter() - started
    return seconds, subprocess.CompletedProcess(argv, code, "".join(out), "".join(err))
