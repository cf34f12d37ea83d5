"""Fleet benchmark: `fleet-status` on 1, 3 and 10 rig hosts, serial against --parallel N.

    .venv/bin/python -m tests.rig up --hosts 27        # hosts 20-27 for the 10-host row
    .venv/bin/python bench/fleet_bench.py --hosts 1,2,3,20,21,22,23,24,25,26 --repeat 3

Each host must be up; one without an installation gets a fresh v4 stack first. For every
fleet size it times the real `trigger-maint` (wall clock, median of --repeat runs):
  single   `trigger-maint -H h status --json` on each host alone; the slowest one
  serial   `trigger-maint -H h1,...,hN fleet-status --parallel 1`
  parallel `trigger-maint -H h1,...,hN fleet-status --parallel N`
and prints the Markdown table of bench/README.md ("fleet"), with the CPU time trigger-maint
itself used in the parallel run. A run in which any host was unreachable is an error, not a
number.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rig import Rig  # noqa: E402
from tests.rig.config import KEY, KNOWN_HOSTS, REGISTRY  # noqa: E402

EXE = Path(sys.executable).with_name("trigger-maint")


def timed(args: list[str], env: dict) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall-clock seconds of one trigger-maint run, the CPU seconds trigger-maint itself used
    (user + system, on this machine), and the run."""
    cpu = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([str(EXE), "-i", str(KEY), *args], capture_output=True, text=True,
                          env=env, stdin=subprocess.DEVNULL, timeout=900)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return seconds, after.ru_utime + after.ru_stime - cpu.ru_utime - cpu.ru_stime, done


def checked_fleet(args: list[str], env: dict, count: int) -> tuple[float, float]:
    """Time a fleet-status run (wall, client CPU) and make sure every host was reached."""
    seconds, cpu, done = timed([*args, "--json"], env)
    try:
        hosts = json.loads(done.stdout)["hosts"]
    except (ValueError, KeyError):
        raise SystemExit(f"no fleet document: {done.stderr[-2000:]}") from None
    unreachable = [h["name"] for h in hosts if h["state"] == "unreachable"]
    if len(hosts) != count or unreachable:
        raise SystemExit(f"hosts not reached: {unreachable or hosts}")
    return seconds, cpu


def median(run, repeat: int) -> tuple[float, ...]:
    """The median of each number `run` returns, over `repeat` runs."""
    runs = [run() for _ in range(repeat)]
    return tuple(statistics.median(values) for values in zip(*runs, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", default="1,2,3,20,21,22,23,24,25,26",
                        help="rig host numbers; the sizes take the first 1, 3, 10")
    parser.add_argument("--sizes", default="1,3,10")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    numbers = [int(n) for n in args.hosts.split(",")]
    sizes = [int(n) for n in args.sizes.split(",") if int(n) <= len(numbers)]
    rig = Rig()
    hosts = [rig.host(k) for k in numbers]
    down = [h.number for h in hosts if not h.is_up()]
    if down:
        raise SystemExit(f"rig hosts not up: {down} (python -m tests.rig up --hosts N)")
    for host in hosts:
        if host.layout is None:
            with host.lock():
                host.reset("v4")
    scratch = tempfile.mkdtemp(prefix="fleet-bench-")
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
           "FABRIC_TRIGGER_REGISTRY": REGISTRY, "FABRIC_TRIGGER_GITHUB_API": "http://127.0.0.1:9",
           "FABRIC_TRIGGER_CACHE_DIR": f"{scratch}/cache",
           "FABRIC_TRIGGER_REPORT_DIR": f"{scratch}/reports"}
    address = {h.number: f"root@{h.address}:{h.port}" for h in hosts}
    single = {}
    for host in hosts[:max(sizes)]:
        single[host.number] = median(
            lambda h=host: timed(["-H", address[h.number], "status", "--json"], env)[:1],
            args.repeat)[0]
    print(f"cores: {os.cpu_count()}, repeat: {args.repeat} (median), "
          f"load average before: {os.getloadavg()[0]:.0f}\n")
    print("| hosts | slowest single host (s) | serial `--parallel 1` (s) "
          "| `--parallel N` (s) | parallel / slowest single | trigger-maint CPU (s) |")
    print("|---|---|---|---|---|---|")
    for size in sizes:
        chosen = numbers[:size]
        target = ["-H", ",".join(address[k] for k in chosen), "fleet-status"]
        (serial, _), (parallel, cpu) = (
            median(lambda n=n, t=target, s=size: checked_fleet([*t, "--parallel", str(n)], env, s),
                   args.repeat)
            for n in (1, size))
        slowest = max(single[k] for k in chosen)
        print(f"| {size} | {slowest:.2f} | {serial:.2f} | {parallel:.2f} "
              f"| {parallel / slowest:.2f} | {cpu:.2f} |", flush=True)


if __name__ == "__main__":
    main()
