"""Update benchmark: how long the webapp is unavailable during `trigger-maint update` and
during its automatic rollback, against the floor of one container recreate.

    .venv/bin/python -m tests.rig up --hosts 11
    .venv/bin/python bench/update_bench.py --host 11

On rig host --host (reset to a fresh v4 stack at v4.5.10; the bench owns the host while it
runs) a prober on this machine asks the webapp's /healthcheck every 50 ms and records what
answers. It measures:
  floor      `docker compose up -d --force-recreate --no-deps webapp` (same image)
  update     `trigger-maint update --target v4.5.12` (pull, recreate, migrate, health)
  failed     `trigger-maint update --target v4.5.14` (never healthy: waits
             --health-timeout seconds, then rolls back by itself to the exact old images)
and prints the Markdown table of bench/README.md ("update"): seconds with no answer at
all, and seconds answering anything but 200.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.rig import Rig  # noqa: E402
from tests.rig.config import KNOWN_HOSTS, REGISTRY  # noqa: E402

EXE = Path(sys.executable).with_name("trigger-maint")


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


def measure(url: str, action) -> tuple[float, float]:
    prober = Prober(url)
    prober.start()
    time.sleep(0.5)
    action()
    time.sleep(0.5)
    return prober.stop()


def cli(host, *args, env=None) -> subprocess.CompletedProcess:
    full = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
            "FABRIC_TRIGGER_REGISTRY": REGISTRY, **(env or {})}
    return subprocess.run([str(EXE), *host.fab_args(), *args], env=full, text=True,
                          capture_output=True, stdin=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", type=int, required=True)
    parser.add_argument("--health-timeout", type=int, default=45)
    args = parser.parse_args()
    host = Rig().host(args.host)
    url = f"http://{host.address}:8030/healthcheck"
    rows = []
    with host.lock():
        host.reset("v4")

        def floor():
            host.compose("up", "-d", "--force-recreate", "--no-deps", "webapp")
            deadline = time.monotonic() + 120
            while Prober(url).status() != 200 and time.monotonic() < deadline:
                time.sleep(0.05)

        rows.append(("one webapp recreate (floor)", *measure(url, floor)))
        assert cli(host, "backup").returncode == 0

        def update():
            done = cli(host, "update", "--target", "v4.5.12")
            assert done.returncode == 0, done.stderr

        rows.append(("update v4.5.10 -> v4.5.12", *measure(url, update)))
        assert cli(host, "backup").returncode == 0

        def failed():
            done = cli(host, "update", "--target", "v4.5.14",
                       env={"FABRIC_TRIGGER_HEALTH_TIMEOUT": str(args.health_timeout)})
            assert done.returncode == 5, done.stderr

        rows.append((f"failed update v4.5.14, rolled back (health timeout "
                     f"{args.health_timeout} s)", *measure(url, failed)))
    print("| run | no answer (s) | not 200 (s) |\n|---|---|---|")
    for name, silent, bad in rows:
        print(f"| {name} | {silent:.1f} | {bad:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
