"""Controller benchmark: what one trigger-maint process costs per host, at 1, 10 and 50+ SSH
endpoints.

    .venv/bin/python -m tests.rig up --hosts 9
    .venv/bin/python bench/controller_bench.py --hosts 7,8,9 --sizes 1,10,60

Each rig host gets extra sshd endpoints (tests/rig/endpoints.py: one more sshd per host on
ports 2300, 2301, ...; every endpoint reaches the same host, its Docker engine and its
installation), enough for the largest size. Endpoints are taken round robin over the hosts.
Then, for each size N (and each --parallel P of --runs), it runs the real
`trigger-maint -H e1,...,eN fleet-status --parallel P --json` once and measures the
trigger-maint process: CPU seconds (user + system, from os.wait4), peak resident memory
(ru_maxrss), peak thread count (/proc/<pid>/status, sampled every 20 ms) and wall time. A
run in which any endpoint was not reached is an error, not a number.

Connection set-up is measured apart, with paramiko as trigger-maint uses it (the rig's key,
known_hosts, RejectPolicy): TCP connect, key exchange and public-key authentication to every
endpoint, one after the other (latency) and all at once (what N threads of one process get).
Last, what waiting costs: 10 remote `sleep 20` at once through Fabric's Connection.run, the
client CPU per second of a running remote command.

The load average is sampled every second: this machine's cores are shared with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import paramiko

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rig import Rig, endpoints  # noqa: E402
from tests.rig.config import KEY, REGISTRY  # noqa: E402

EXE = Path(sys.executable).with_name("trigger-maint")
MIB = 1024


class Sampler:
    """Peak threads and resident memory of one process, and the load average, sampled in a
    thread until stopped."""

    def __init__(self, pid: int | None, interval: float = 0.02):
        self.pid, self.interval = pid, interval
        self.threads = self.rss_kib = 0
        self.loads: list[float] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        last_load = 0.0
        while not self.done.is_set():
            if self.pid:
                try:
                    status = Path(f"/proc/{self.pid}/status").read_text()
                except OSError:
                    status = ""
                for line in status.splitlines():
                    key, _, value = line.partition(":")
                    if key == "Threads":
                        self.threads = max(self.threads, int(value))
                    elif key == "VmRSS":
                        self.rss_kib = max(self.rss_kib, int(value.split()[0]))
            if time.monotonic() - last_load >= 1:
                self.loads.append(os.getloadavg()[0])
                last_load = time.monotonic()
            self.done.wait(self.interval)

    def stop(self) -> Sampler:
        self.done.set()
        self.thread.join()
        self.loads.append(os.getloadavg()[0])
        return self


def fleet_run(targets: list[str], parallel: int, env: dict) -> dict:
    """One measured `fleet-status` run over `targets`."""
    argv = [str(EXE), "-i", str(KEY), "-H", ",".join(targets), "fleet-status",
            "--parallel", str(parallel), "--json"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        child = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
        sampler = Sampler(child.pid)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        sampler.stop()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    try:
        hosts = json.loads(stdout)["hosts"]
    except (ValueError, KeyError):
        raise SystemExit(f"no fleet document (exit {child.returncode}): {stderr[-2000:]}") \
            from None
    unreachable = [h["name"] for h in hosts if h["state"] == "unreachable"]
    if len(hosts) != len(targets) or unreachable:
        raise SystemExit(f"endpoints not reached: {unreachable or len(hosts)}: "
                         f"{[h['message'] for h in hosts if h['state'] == 'unreachable'][:3]}")
    return {"hosts": len(targets), "parallel": parallel, "wall": wall,
            "cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / MIB,
            "threads": sampler.threads, "load_max": max(sampler.loads),
            "load_mean": statistics.mean(sampler.loads)}


def startup(env: dict) -> dict:
    """The fixed cost: `trigger-maint --list` (interpreter, Fabric, the task namespace)."""
    child = subprocess.Popen([str(EXE), "--list"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    _, _, usage = os.wait4(child.pid, 0)
    child.returncode = 0
    return {"cpu": usage.ru_utime + usage.ru_stime, "rss_mib": usage.ru_maxrss / MIB}


def handshake(target: str, known_hosts: str) -> float:
    """Seconds to connect and authenticate to user@address:port, as trigger-maint does."""
    user, _, rest = target.partition("@")
    address, _, port = rest.rpartition(":")
    client = paramiko.SSHClient()
    client.load_host_keys(known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    started = time.perf_counter()
    client.connect(address, int(port), username=user, key_filename=str(KEY),
                   look_for_keys=False, allow_agent=False, timeout=60, banner_timeout=60,
                   auth_timeout=60)
    seconds = time.perf_counter() - started
    client.close()
    return seconds


def connections(targets: list[str], known_hosts: str) -> list[dict]:
    """Handshakes to every target one after the other, then all at once."""
    rows = []
    for mode in ("one after the other", "all at once"):
        sampler = Sampler(None)
        cpu, started = time.process_time(), time.perf_counter()
        if mode == "all at once":
            with ThreadPoolExecutor(len(targets)) as pool:
                times = list(pool.map(lambda t: handshake(t, known_hosts), targets))
        else:
            times = [handshake(t, known_hosts) for t in targets]
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        sampler.stop()
        times.sort()
        rows.append({"mode": mode, "n": len(targets), "wall": wall, "cpu": cpu,
                     "median": statistics.median(times),
                     "p90": times[int(0.9 * (len(times) - 1))], "max": times[-1],
                     "load_max": max(sampler.loads)})
    return rows


def waiting(targets: list[str], seconds: int) -> dict:
    """Client CPU while remote commands run: `sleep S` on each target at once, through
    Fabric's Connection.run as trigger-maint's scripts go (Invoke's runner polls the command
    every 10 ms while it runs)."""
    from fabric import Connection

    def one(target: str) -> None:
        with Connection(target, connect_kwargs={"key_filename": str(KEY),
                                                "look_for_keys": False,
                                                "allow_agent": False}) as c:
            c.open()
            cpu_ready.wait()
            c.run(f"sleep {seconds}", hide=True, in_stream=False, pty=False)

    cpu_ready = threading.Event()
    with ThreadPoolExecutor(len(targets)) as pool:
        futures = [pool.submit(one, t) for t in targets]
        time.sleep(2)  # connected by now; their handshakes are not counted
        cpu, started = time.process_time(), time.perf_counter()
        cpu_ready.set()
        for future in futures:
            future.result()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"n": len(targets), "seconds": seconds, "wall": wall, "cpu": cpu,
            "per_second": cpu / (len(targets) * seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", default="7,8,9", help="rig host numbers")
    parser.add_argument("--sizes", default="1,10,60", help="endpoint counts")
    parser.add_argument("--runs", default="",
                        help="extra SIZE:PARALLEL runs (default: each size at --parallel "
                             "SIZE, and the largest at --parallel 10 too)")
    args = parser.parse_args()
    numbers = [int(n) for n in args.hosts.split(",")]
    sizes = [int(n) for n in args.sizes.split(",")]
    runs = [(n, min(n, 64)) for n in sizes]  # trigger.parallel allows 1-64
    extra = args.runs.split(",") if args.runs else [f"{max(sizes)}:10"]
    runs += [tuple(int(x) for x in run.split(":")) for run in extra]
    rig = Rig()
    hosts = [rig.host(k) for k in numbers]
    down = [h.number for h in hosts if not h.is_up()]
    if down:
        raise SystemExit(f"rig hosts not up: {down} (python -m tests.rig up --hosts N)")
    scratch = tempfile.mkdtemp(prefix="controller-bench-")
    with ExitStack() as stack:
        for host in hosts:
            stack.enter_context(host.lock())
            if host.layout is None:
                host.reset("v4")
        per_host = -(-max(sizes) // len(hosts))  # the rig's own sshd on :2222 is one of them
        lists = [[f"root@{h.address}:{h.port}"] + (endpoints.start(h, per_host - 1)
                                                   if per_host > 1 else []) for h in hosts]
        for host in hosts:
            stack.callback(endpoints.stop, host)
        targets = [t for group in zip(*lists, strict=True) for t in group]
        known_hosts = str(endpoints.KNOWN_HOSTS_FILE)
        env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": known_hosts,
               "FABRIC_TRIGGER_REGISTRY": REGISTRY,
               "FABRIC_TRIGGER_GITHUB_API": "http://127.0.0.1:9",
               "FABRIC_TRIGGER_CACHE_DIR": f"{scratch}/cache",
               "FABRIC_TRIGGER_REPORT_DIR": f"{scratch}/reports"}
        began = time.monotonic()
        print(f"cores: {os.cpu_count()}, rig hosts {numbers}, {len(targets)} endpoints, "
              f"load average before: {os.getloadavg()[0]:.1f}\n", flush=True)
        base = startup(env)
        results = [fleet_run(targets[:n], p, env) for n, p in runs]
        links = connections(targets[:max(sizes)], known_hosts)
        idle = waiting(targets[:10], 20)
    print("| endpoints | `--parallel` | wall (s) | client CPU (s) | CPU per endpoint (s) "
          "| peak RSS (MiB) | peak threads | load avg (mean / max) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| 0 (`trigger-maint --list`) | | | {base['cpu']:.2f} | | {base['rss_mib']:.0f} | | |")
    for r in results:
        print(f"| {r['hosts']} | {r['parallel']} | {r['wall']:.1f} | {r['cpu']:.2f} "
              f"| {r['cpu'] / r['hosts']:.3f} | {r['rss_mib']:.0f} | {r['threads']} "
              f"| {r['load_mean']:.1f} / {r['load_max']:.1f} |")
    small = next(r for r in results if r["hosts"] == min(sizes))
    for r in results:
        if r["hosts"] > small["hosts"]:
            span = r["hosts"] - small["hosts"]
            print(f"\nmarginal per endpoint, {small['hosts']} -> {r['hosts']} at --parallel "
                  f"{r['parallel']}: CPU {(r['cpu'] - small['cpu']) / span:.3f} s, RSS "
                  f"{(r['rss_mib'] - small['rss_mib']) / span:.2f} MiB, threads "
                  f"{(r['threads'] - small['threads']) / span:.2f}")
    print("\n| handshakes | mode | wall (s) | per connection: median / p90 / max (ms) "
          "| client CPU per connection (ms) | load avg max |")
    print("|---|---|---|---|---|---|")
    for c in links:
        print(f"| {c['n']} | {c['mode']} | {c['wall']:.2f} | {c['median'] * 1000:.0f} / "
              f"{c['p90'] * 1000:.0f} / {c['max'] * 1000:.0f} | {c['cpu'] / c['n'] * 1000:.1f} "
              f"| {c['load_max']:.1f} |")
    print(f"\n{idle['n']} remote `sleep {idle['seconds']}` at once: client CPU "
          f"{idle['cpu']:.2f} s in {idle['wall']:.1f} s, {idle['per_second'] * 1000:.1f} ms "
          "per second of a running remote command")
    print(f"\nwhole bench: {time.monotonic() - began:.0f} s, load average after: "
          f"{os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
