"""Backup benchmark: `trigger-maint backup` against the physical floor, and download memory.

    .venv/bin/python -m tests.rig up --hosts 8
    .venv/bin/python bench/backup_bench.py --host 8 --gib 1

On rig host --host (given a fresh v4 stack unless it has one; the bench owns it meanwhile)
it grows the database "main" to at least --gib GiB of Trigger.dev-like rows (JSON payloads
with ids, hashes and repeated keys), then times on the host, in --repeat rounds (median):
  floor         `pg_dumpall > /dev/null`: what any backup must at least spend
  gzip -1 ...   `pg_dumpall | COMPRESSOR > file`, for the candidate compressors, with size
  backup        the real `trigger-maint backup` (dump, verification, sidecar, archives)
and the peak resident memory of `trigger-maint backup --download DIR` (the dump streamed
over SFTP in bounded windows, checked against its SHA-256) next to `trigger-maint backup`
without a download. It prints the Markdown table of bench/README.md ("backup").
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
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
BACKUP = "`trigger-maint backup` (dump, gzip -1, every check, sidecar)"
COMPRESSORS = ["gzip -1", "gzip -6", "zstd -1 -q", "zstd -3 -q"]
ROW = ("json_build_object('id', 'run_' || md5(g::text), 'status', 'COMPLETED', "
       "'taskIdentifier', 'send-email', 'attempt', g % 5, 'payload', json_build_object("
       "'to', 'user' || (g % 1000) || '@example.com', 'template', 'welcome', 'token', "
       "md5((g * 7)::text) || md5((g * 13)::text)), 'output', repeat('ok ', g % 40))::text")
# Peak resident set of a command's process tree, in KiB (Linux ru_maxrss), from a fresh
# interpreter so that nothing run earlier by this bench counts.
PEAK = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], "
        "capture_output=True); sys.stderr.buffer.write(done.stderr); "
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def grow(host, gib: float) -> int:
    """Add rows to "main" until its size reaches `gib` GiB; the size in bytes."""
    def size() -> int:
        return int(host.psql("SELECT pg_database_size('main')"))

    host.psql("CREATE TABLE IF NOT EXISTS bench_runs (id bigint PRIMARY KEY, body jsonb)")
    while size() < gib * 2**30:
        start = int(host.psql("SELECT coalesce(max(id), 0) + 1 FROM bench_runs"))
        host.psql(f"INSERT INTO bench_runs SELECT g, {ROW}::jsonb "
                  f"FROM generate_series({start}, {start + 499_999}) g")
    return size()


def on_host(host, command: str) -> tuple[float, str]:
    """Seconds `command` takes on the host, and what it printed."""
    started = time.perf_counter()
    done = host.run(f"bash -o pipefail -c {shlex.quote(command)}", timeout=3600)
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", type=int, default=8, help="rig host number (reset to v4)")
    parser.add_argument("--gib", type=float, default=1.0, help="database size to reach")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; the median is shown")
    args = parser.parse_args()
    host = Rig().host(args.host)
    if not host.is_up():
        raise SystemExit(f"rig host {args.host} is not up (python -m tests.rig up --hosts N)")
    scratch = Path(tempfile.mkdtemp(prefix="backup-bench-"))
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
           "FABRIC_TRIGGER_REGISTRY": REGISTRY, "FABRIC_TRIGGER_GITHUB_API": "http://127.0.0.1:9",
           "FABRIC_TRIGGER_CACHE_DIR": f"{scratch}/cache",
           "FABRIC_TRIGGER_REPORT_DIR": f"{scratch}/reports"}
    cli = [str(EXE), "-H", f"root@{host.address}:{host.port}", "-i", str(KEY)]
    with host.lock():
        if host.layout != "v4":
            host.reset("v4")
        db_bytes = grow(host, args.gib)
        db = host.compose("ps", "-q", "postgres").stdout.strip()
        dump = f"docker exec {db} pg_dumpall -U postgres"
        steps = {"`pg_dumpall > /dev/null` (floor)": f"{dump} > /dev/null"}
        steps.update({f"`pg_dumpall | {c.removesuffix(' -q')}`":
                      f"{dump} | {c} > /root/bench.out; stat -c %s /root/bench.out"
                      for c in COMPRESSORS})
        times: dict[str, list[float]] = {label: [] for label in [*steps, BACKUP]}
        sizes: dict[str, int] = {}
        for _ in range(args.repeat):  # rounds, so that a load spike hits every step alike
            for label, command in steps.items():
                seconds, out = on_host(host, command)
                times[label].append(seconds)
                if out:
                    sizes[label] = int(out)
            started = time.perf_counter()
            done = subprocess.run([*cli, "backup", "--json"], env=env, capture_output=True,
                                  text=True, timeout=3600)
            times[BACKUP].append(time.perf_counter() - started)
            if done.returncode:
                raise SystemExit(done.stderr)
            sizes[BACKUP] = json.loads(done.stdout)["backup"]["size"]
            host.run("rm -f /root/bench.out /var/backups/trigger/trigger-*")
        peaks = {}
        for label, extra in (("backup", []), ("backup --download", ["--download",
                                                                    str(scratch / "dl")])):
            run = subprocess.run([sys.executable, "-c", PEAK, *cli, "backup", *extra], env=env,
                                 capture_output=True, text=True, timeout=3600)
            code, peak = run.stdout.split()
            if code != "0":
                raise SystemExit(run.stderr)
            peaks[label] = int(peak)
        host.run("rm -f /var/backups/trigger/trigger-*")
    shutil.rmtree(scratch)
    rows = [(label, statistics.median(values), sizes.get(label))
            for label, values in times.items()]
    floor = rows[0][1]
    print(f"database main: {db_bytes / 2**30:.2f} GiB on disk; cores: {os.cpu_count()}; "
          f"median of {args.repeat}; load average after: {os.getloadavg()[0]:.0f}\n")
    print("| step | seconds | x floor | compressed size |")
    print("|---|---|---|---|")
    for label, seconds, size in rows:
        print(f"| {label} | {seconds:.1f} | {seconds / floor:.2f} | "
              f"{'' if size is None else f'{size / 2**20:.0f} MiB'} |")
    print("\n| run | peak RSS of trigger-maint (MiB) |\n|---|---|")
    for label, peak in peaks.items():
        print(f"| `{label}` | {peak / 1024:.0f} |")


if __name__ == "__main__":
    main()
