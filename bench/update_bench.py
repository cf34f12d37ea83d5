"""Update benchmark: how long the webapp is unavailable during `trigger-maint update`, a
successful one and two that fail, against the floor of one container recreate.

    .venv/bin/python -m tests.rig up --hosts 11
    .venv/bin/python bench/update_bench.py [--host 11] [--repeat 3]
        [--health-timeout S] [--health-fail-seconds S]

On rig host --host (the bench holds the host's lock meanwhile) a prober on this machine asks
the webapp's /healthcheck every 50 ms and records what answers, from 0.5 s before a run
until 0.5 s after it. Every run starts from a fresh v4 stack at v4.5.10 (`host.reset("v4")`),
and every update from a fresh `trigger-maint backup` (the update's gate), both outside the
measurement. Each of --repeat rounds runs, in this order:
  floor      `docker compose up -d --force-recreate --no-deps webapp` (same image), until
             /healthcheck answers 200 again
  update     `trigger-maint update --target v4.5.12 --yes` (pull, guard dump, recreate,
             migrate, health)
  failed     `trigger-maint update --target v4.5.14 --yes`: /healthcheck answers 500; known
             bad once it has answered something else than 200 for health_fail_seconds, then
             rolled back by the host to the exact old images
  migrated   `trigger-maint update --target v4.5.16 --yes`: migrates, then answers 500;
             rolled back, the database restored from the guard dump
with the settings' defaults (health_timeout 300 s, health_fail_seconds 20 s) unless
--health-timeout / --health-fail-seconds set FABRIC_TRIGGER_HEALTH_TIMEOUT /
FABRIC_TRIGGER_HEALTH_FAIL_SECONDS. A run that ends with another exit code than expected
(0 for the update, 5 for the failures) stops the bench.

It prints the Markdown tables of bench/README.md ("update"): per run the median seconds with
no answer at all, the median seconds answering anything but 200 (no answer included), the
client's wall time and the load average (mean / max of 1 s samples); then, for the updates,
the client's progress lines split the wall time: start to "recreating the services", that
to the verdict ("update to ... done: ...", or "... failed: not healthy: ..."), that to the
end (for a failed update: going back to the old images and data, health, report).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

from common import EXE, Load, cli_env, load_text, timed_run

from tests.rig import Rig


class Prober(threading.Thread):
    """Asks `url` every `interval` seconds; keeps (time, status) with 0 for no answer."""

    def __init__(self, url: str, interval: float = 0.05):
        super().__init__(daemon=True)
        self.url, self.interval = url, interval
        self.samples: list[tuple[float, int]] = []
        self.running = True

    def status(self) -> int:
        try:
            with urllib.request.urlopen(self.url, timeout=1) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code
        except OSError:
            return 0

    def run(self):
        while self.running:
            self.samples.append((time.monotonic(), self.status()))
            time.sleep(self.interval)

    def stop(self) -> tuple[float, float]:
        """(seconds with no answer, seconds not answering 200)."""
        self.running = False
        self.join()
        silent = bad = 0.0
        for (t, code), (t_next, _) in zip(self.samples, self.samples[1:], strict=False):
            silent += (t_next - t) if code == 0 else 0
            bad += (t_next - t) if code != 200 else 0
        return silent, bad


def measure(url: str, action) -> tuple[float, float, float, list[float]]:
    """(no answer, not 200, wall time of action, load samples)."""
    prober = Prober(url)
    prober.start()
    time.sleep(0.5)
    load = Load()
    started = time.perf_counter()
    action()
    wall = time.perf_counter() - started
    loads = load.stop()
    time.sleep(0.5)
    return (*prober.stop(), wall, loads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", type=int, default=11, help="rig host number (reset to v4)")
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are shown")
    parser.add_argument("--health-timeout", type=int,
                        help="FABRIC_TRIGGER_HEALTH_TIMEOUT (default: the setting's, 300)")
    parser.add_argument("--health-fail-seconds", type=int,
                        help="FABRIC_TRIGGER_HEALTH_FAIL_SECONDS (default: the setting's, 20)")
    args = parser.parse_args()
    host = Rig().host(args.host)
    if not host.is_up():
        raise SystemExit(f"rig host {args.host} is not up (python -m tests.rig up --hosts N)")
    scratch = Path(tempfile.mkdtemp(prefix="update-bench-"))
    env = cli_env(scratch)
    if args.health_timeout:
        env["FABRIC_TRIGGER_HEALTH_TIMEOUT"] = str(args.health_timeout)
    if args.health_fail_seconds:
        env["FABRIC_TRIGGER_HEALTH_FAIL_SECONDS"] = str(args.health_fail_seconds)
    timeout = args.health_timeout or 300
    fail = args.health_fail_seconds or 20
    url = f"http://{host.address}:8030/healthcheck"
    cli = [str(EXE), *host.fab_args()]

    def floor() -> None:
        host.compose("up", "-d", "--force-recreate", "--no-deps", "webapp")
        deadline = time.monotonic() + 120
        while Prober(url).status() != 200 and time.monotonic() < deadline:
            time.sleep(0.05)

    runs = {
        "one webapp recreate (the floor: `up -d --force-recreate webapp`)": (None, None),
        "update v4.5.10 -> v4.5.12 (pull, guard dump, recreate, migrate, health gate)":
            ("v4.5.12", 0),
        f"failed update to v4.5.14 (/healthcheck 500), rolled back (health_timeout {timeout}"
        f" s, health_fail_seconds {fail} s)": ("v4.5.14", 5),
        "failed update to v4.5.16 (migrates, then 500), rolled back, database restored from "
        "the guard dump": ("v4.5.16", 5),
    }
    results: dict[str, list[tuple[float, float, float]]] = {label: [] for label in runs}
    loads: dict[str, list[float]] = {label: [] for label in runs}
    phases: dict[str, list[tuple[float, float, float]]] = {}
    with host.lock():
        for r in range(args.repeat):
            for label, (target, expected) in runs.items():
                host.reset("v4")
                marks: dict[str, float] = {}
                if target is None:
                    action = floor
                else:
                    made = subprocess.run([*cli, "backup"], env=env, capture_output=True,
                                          text=True, stdin=subprocess.DEVNULL)
                    if made.returncode:
                        raise SystemExit(made.stderr)

                    def mark(at: float, line: str, marks=marks) -> None:
                        if "recreating the services" in line:
                            marks.setdefault("recreate", at)
                        elif "failed: not healthy" in line or (
                                "update to " in line and " done: " in line):
                            marks.setdefault("judged", at)

                    def action(target=target, expected=expected, marks=marks) -> None:
                        seconds, done = timed_run([*cli, "update", "--target", target, "--yes"],
                                                  env, timeout=3600, on_line=mark)
                        marks["end"] = seconds
                        if done.returncode != expected:
                            raise SystemExit(f"update to {target}: exit {done.returncode}, "
                                             f"expected {expected}\n{done.stderr}")
                silent, bad, wall, samples = measure(url, action)
                results[label].append((silent, bad, wall))
                loads[label] += samples
                if "recreate" in marks:
                    end = marks["end"]
                    judged = marks.get("judged", end)
                    phases.setdefault(label, []).append(
                        (marks["recreate"], judged - marks["recreate"], end - judged))
                print(f"round {r + 1}: {label}: no answer {silent:.1f} s, not 200 {bad:.1f} s, "
                      f"wall {wall:.1f} s, load {samples[-1]:.1f}", file=sys.stderr, flush=True)
        host.reset("v4")
    shutil.rmtree(scratch)

    def med(values) -> str:
        return f"{statistics.median(values):.1f}"

    print(f"median of {args.repeat} rounds\n")
    print("| run | no answer (s) | not 200 (s) | client wall (s) | load avg (mean / max) |")
    print("|---|---|---|---|---|")
    for label, rows in results.items():
        print(f"| {label} | {med(r[0] for r in rows)} | {med(r[1] for r in rows)} "
              f"| {med(r[2] for r in rows)} | {load_text(loads[label])} |")
    print("\n| update | start to recreate (s) | recreate to healthy / known bad (s) "
          "| then to the end (s) |\n|---|---|---|---|")
    for label, rows in phases.items():
        print(f"| {label.split(' (')[0]} | {med(r[0] for r in rows)} "
              f"| {med(r[1] for r in rows)} | {med(r[2] for r in rows)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
