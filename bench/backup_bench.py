"""Backup benchmark: `trigger-maint backup` (gzip and zstd) next to the bare dump pipelines.

    .venv/bin/python -m tests.rig up --hosts 10
    .venv/bin/python bench/backup_bench.py [--host 10] [--gib 1] [--repeat 3]
        [--before REV ...] [--profile] [--memory]

On rig host --host (given a fresh v4 stack unless it has one; the bench holds the host's
lock meanwhile) it grows table bench_runs of database "main" to at least --gib GiB of
Trigger.dev-like rows (JSON payloads with ids, hashes and repeated keys), then runs these
steps side by side, every step once per round, --repeat rounds, each round starting one
step later than the last (so a load spike or a warm cache favours no step):
  floor           `pg_dumpall > /dev/null` on the host: what any backup must spend
  gzip -1         `pg_dumpall | gzip -1 > file` on the host: the bare pipeline
  zstd -1         `pg_dumpall | zstd -1 > file`
  backup gzip     the real `trigger-maint backup` with FABRIC_TRIGGER_BACKUP_COMPRESSION=gzip
                  (client start, SSH, preflight, dump, every check, sidecar, sync)
  backup zstd     the same with zstd
  --before REV    also both backups with templates/_dump.sh.j2 as it was at git revision REV
                  (FABRIC_TRIGGER_TEMPLATE_DIR pointed at that one file): before/after in
                  the same rounds; may be given more than once
  --profile       also, on the host with the awk program and SQL taken from the current
                  templates/_dump.sh.j2 (gzip -1): the bare pipeline plus the SHA-256 of the
                  compressed bytes; plus the fact reader as a filter; plus both (tm_dump_once
                  when the compressor runs on the host); the first one-pass shape (the reader
                  beside the pipeline, through tee and a FIFO, and the hash); the live row
                  counts (one tm_db_facts query); gzip -1 inside the database container,
                  the host decompressing the stream for the reader and hashing it
                  (tm_dump_once when the container has the compressor)
The table shows each step's median wall time, the median of its per-round ratios to the
floor and to the bare pipeline of the same compressor (the round's own runs), the median CPU
seconds it cost (common.HostCPU: the host's dockerd, containerd, sshd, database shim and
PostgreSQL, and this bench's children), the compressed size and the load average during it
(mean / max of 1 s samples). For the backups a second table splits the wall time at the
progress lines: before the dump starts, the dump, after it; a third splits each step's CPU
seconds by where they were spent. --memory adds the peak resident
memory of `trigger-maint backup` with and without `--download DIR`. It prints the Markdown
tables of bench/README.md ("backup").
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common
from common import EXE, HostCPU, Load, cli_env, load_text, timed_run

from tests.rig import Rig

ROOT = common.ROOT
TEMPLATE = ROOT / "templates" / "_dump.sh.j2"
ROW = ("json_build_object('id', 'run_' || md5(g::text), 'status', 'COMPLETED', "
       "'taskIdentifier', 'send-email', 'attempt', g % 5, 'payload', json_build_object("
       "'to', 'user' || (g % 1000) || '@example.com', 'template', 'welcome', 'token', "
       "md5((g * 7)::text) || md5((g * 13)::text)), 'output', repeat('ok ', g % 40))::text")
# Peak resident set of a command's process tree, in KiB (Linux ru_maxrss), from a fresh
# interpreter so that nothing run earlier by this bench counts.
PEAK = ("import resource, subprocess, sys; done = subprocess.run(sys.argv[1:], "
        "capture_output=True); sys.stderr.buffer.write(done.stderr); "
        "print(done.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
WORK = "/root/backup-bench"  # on the host: the bare pipelines' files, FIFOs, awk, SQL
FLOOR = "`pg_dumpall > /dev/null` (floor)"
BARE = {"gzip": "`pg_dumpall | gzip -1 > file`", "zstd": "`pg_dumpall | zstd -1 > file`"}


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


def template_parts() -> tuple[str, str]:
    """The dump reader's awk program and the live facts' SQL, as templates/_dump.sh.j2 has
    them now."""
    text = TEMPLATE.read_text()
    awk = re.search(r"TM_DUMP_AWK=\$\(cat <<'AWK'\n(.*?)\nAWK\n", text, re.S)
    sql = re.search(r"tm_sql \"\$@\" <<'SQL'\n(.*?)\nSQL\n", text, re.S)
    if not awk or not sql:
        raise SystemExit(f"{TEMPLATE}: the awk program or the facts SQL moved")
    return awk.group(1), sql.group(1)


def profile_steps(db: str, dump: str) -> dict[str, str]:
    """Where the time goes: host commands built from the template's own parts."""
    fifo = f"cd {WORK} || exit; rm -f plain packed; mkfifo plain packed || exit; "
    reader = "LC_ALL=C awk -v want=main -f dump.awk"
    passing = f"{reader} -v pass=1 -v out=facts"
    hasher = "sha256sum <packed >sha &"
    return {
        "+ SHA-256 (`gzip -1 | tee FIFO`, sha256sum)":
            f"{fifo}{hasher} {dump} | gzip -1 | tee packed >out; wait",
        "+ fact reader as a filter (`| awk | gzip -1`)":
            f"{fifo}{dump} | {passing} | gzip -1 >out",
        "+ both: tm_dump_once, the compressor on the host":
            f"{fifo}{hasher} {dump} | {passing} | gzip -1 | tee packed >out; wait",
        "+ both, the first one-pass shape (`tee FIFO` to awk beside the pipeline)":
            f"{fifo}{reader} <plain >facts & {hasher} {dump} | tee plain | gzip -1 "
            "| tee packed >out; wait",
        "live row counts (one tm_db_facts query)":
            f"docker exec -i {db} psql -X -q -At -U postgres -d main <{WORK}/facts.sql "
            ">/dev/null",
        "tm_dump_once, gzip -1 in the database container, the host `gzip -dc | awk` "
        "and SHA-256":
            f"{fifo}{hasher} gzip -dc <plain | {reader} >facts & docker exec {db} sh -c "
            "'pg_dumpall -U postgres | gzip -1' | tee plain packed >out; wait",
    }


def on_host(host, command: str) -> tuple[float, str]:
    """Seconds `command` takes on the host, and what it printed."""
    started = time.perf_counter()
    done = host.run(f"bash -o pipefail -c {shlex.quote(command)}", timeout=3600)
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", type=int, default=10, help="rig host number (reset to v4)")
    parser.add_argument("--gib", type=float, default=1.0, help="database size to reach")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are shown")
    parser.add_argument("--before", metavar="REV", action="append", default=[],
                        help="also time both backups with _dump.sh.j2 of git revision REV")
    parser.add_argument("--profile", action="store_true",
                        help="also time the parts of the one-pass dump (gzip -1)")
    parser.add_argument("--memory", action="store_true",
                        help="also measure the peak memory of backup and backup --download")
    args = parser.parse_args()
    host = Rig().host(args.host)
    if not host.is_up():
        raise SystemExit(f"rig host {args.host} is not up (python -m tests.rig up --hosts N)")
    scratch = Path(tempfile.mkdtemp(prefix="backup-bench-"))
    env = cli_env(scratch)
    cli = [str(EXE), *host.fab_args()]
    backups = {"gzip": "`trigger-maint backup`, gzip", "zstd": "`trigger-maint backup`, zstd"}
    variants = {label: {"FABRIC_TRIGGER_BACKUP_COMPRESSION": c} for c, label in backups.items()}
    for n, rev in enumerate(args.before):
        old = scratch / f"before-{n}"
        old.mkdir()
        (old / "_dump.sh.j2").write_text(subprocess.run(
            ["git", "-C", str(ROOT), "show", f"{rev}:templates/_dump.sh.j2"],
            capture_output=True, text=True, check=True).stdout)
        for c in ("gzip", "zstd"):
            variants[f"`trigger-maint backup`, {c}, _dump.sh.j2 of {rev}"] = {
                "FABRIC_TRIGGER_BACKUP_COMPRESSION": c,
                "FABRIC_TRIGGER_TEMPLATE_DIR": str(old)}
    awk, sql = template_parts()
    with host.lock():
        if host.layout != "v4":
            host.reset("v4")
        db_bytes = grow(host, args.gib)
        db = host.compose("ps", "-q", "--no-trunc", "postgres").stdout.strip()
        host.run(f"mkdir -p {WORK} && cat >{WORK}/dump.awk", input=awk + "\n")
        host.run(f"cat >{WORK}/facts.sql", input=sql + "\n")
        dump = f"docker exec {db[:12]} pg_dumpall -U postgres"
        steps = {FLOOR: f"{dump} > /dev/null",
                 BARE["gzip"]: f"{dump} | gzip -1 > {WORK}/out; stat -c %s {WORK}/out",
                 BARE["zstd"]: f"{dump} | zstd -q -1 > {WORK}/out; stat -c %s {WORK}/out"}
        if args.profile:
            steps.update(profile_steps(db[:12], dump))
        order = [*steps, *variants]
        meter = HostCPU(host, db)
        times: dict[str, list[float]] = {label: [] for label in order}
        cpu: dict[str, list[float]] = {label: [] for label in order}
        parts: dict[str, list[dict[str, float]]] = {label: [] for label in order}
        loads: dict[str, list[float]] = {label: [] for label in order}
        split: dict[str, list[tuple[float, float, float]]] = {label: [] for label in variants}
        sizes: dict[str, int] = {}
        print(f"database main: {db_bytes / 2**30:.2f} GiB on disk; cores: {os.cpu_count()}; "
              f"{args.repeat} rounds of {len(order)} steps; load average before: "
              f"{os.getloadavg()[0]:.1f}", file=sys.stderr, flush=True)
        for r in range(args.repeat):
            for label in order[r % len(order):] + order[:r % len(order)]:
                load = Load()
                meter.start()
                if label in steps:
                    seconds, out = on_host(host, steps[label])
                    if out:
                        sizes[label] = int(out)
                else:
                    marks: dict[str, float] = {}

                    def mark(at: float, line: str, marks=marks) -> None:
                        if "dumping database cluster" in line:
                            marks.setdefault("dump", at)
                        elif "written and verified" in line:
                            marks.setdefault("dumped", at)

                    seconds, done = timed_run([*cli, "backup", "--json"],
                                              {**env, **variants[label]}, on_line=mark)
                    if done.returncode:
                        raise SystemExit(done.stderr)
                    made = json.loads(done.stdout)["backup"]
                    assert made["checks"] == dict.fromkeys(
                        ["intact", "complete", "rows_match", "size_plausible"], True), made
                    sizes[label] = made["size"]
                    split[label].append((marks["dump"], marks["dumped"] - marks["dump"],
                                         seconds - marks["dumped"]))
                    host.run("rm -f /var/backups/trigger/trigger-*")
                parts[label].append(meter.stop())
                cpu[label].append(parts[label][-1]["total"])
                times[label].append(seconds)
                loads[label] += load.stop()
                print(f"round {r + 1}: {label}: {seconds:.2f} s, CPU {cpu[label][-1]:.1f} s, "
                      f"load {loads[label][-1]:.1f}", file=sys.stderr, flush=True)
        host.run(f"rm -f {WORK}/out {WORK}/plain {WORK}/packed")
        peaks = {}
        if args.memory:
            for label, extra in (("backup", []), ("backup --download",
                                                  ["--download", str(scratch / "dl")])):
                run = subprocess.run([sys.executable, "-c", PEAK, *cli, "backup", *extra],
                                     env=env, capture_output=True, text=True, timeout=3600)
                code, peak = run.stdout.split()
                if code != "0":
                    raise SystemExit(run.stderr)
                peaks[label] = int(peak)
            host.run("rm -f /var/backups/trigger/trigger-*")
    shutil.rmtree(scratch)

    def ratio(label: str, base: str) -> float:
        return statistics.median(a / b for a, b in zip(times[label], times[base], strict=True))

    def bare_of(label: str) -> str | None:
        if label in variants:
            return BARE[variants[label]["FABRIC_TRIGGER_BACKUP_COMPRESSION"]]
        if label in steps and label not in (FLOOR, *BARE.values()):
            return BARE["gzip"]  # the profile steps are all gzip -1
        return None

    print(f"database main: {db_bytes / 2**30:.2f} GiB on disk; cores: {os.cpu_count()}; "
          f"median of {args.repeat} rounds\n")
    print("| step | seconds | x floor | x bare pipeline | CPU (s) | compressed size "
          "| load avg (mean / max) |")
    print("|---|---|---|---|---|---|---|")
    for label in order:
        base = bare_of(label)
        size = sizes.get(label)
        print(f"| {label} | {statistics.median(times[label]):.1f} | {ratio(label, FLOOR):.2f} "
              f"| {'' if base is None else f'{ratio(label, base):.2f}'} "
              f"| {statistics.median(cpu[label]):.1f} "
              f"| {'' if size is None else f'{size / 2**20:.0f} MiB'} "
              f"| {load_text(loads[label])} |")
    print("\n| run | before the dump (s) | dump and checks (s) | after (s) |\n|---|---|---|---|")
    for label, marks in split.items():
        print(f"| {label} | " + " | ".join(
            f"{statistics.median(m[i] for m in marks):.1f}" for i in range(3)) + " |")
    print("\n| step | Docker: dockerd, containerd | database container: pg_dumpall and what "
          "runs beside it | PostgreSQL | sshd: trigger-maint's scripts | local: docker CLI, "
          "pipelines, trigger-maint | total |\n|---|---|---|---|---|---|---|")
    for label in order:
        def part(*names: str, label=label) -> str:
            return f"{statistics.median(sum(p[n] for n in names) for p in parts[label]):.1f}"
        print(f"| {label} | {part('dockerd', 'containerd')} | {part('db shim')} "
              f"| {part('postgres')} | {part('sshd')} | {part('local')} | {part('total')} |")
    if peaks:
        print("\n| run | peak RSS of trigger-maint (MiB) |\n|---|---|")
        for label, peak in peaks.items():
            print(f"| `{label}` | {peak / 1024:.0f} |")


if __name__ == "__main__":
    main()
