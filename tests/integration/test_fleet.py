"""Fleets on three rig hosts: status on all in parallel (from -H and from the inventory),
maintain with one host broken and one unreachable, and a failing canary that stops the
rollout with the other hosts untouched."""

import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.integration.conftest import assigned_hosts
from tests.rig import proc
from tests.rig.layouts import LAYOUTS as RIG_LAYOUTS

FAST = {"FABRIC_TRIGGER_OBSERVE_SECONDS": "3", "FABRIC_TRIGGER_HEALTH_TIMEOUT": "30",
        # the rig shares the machine's disk, whose use is not the test's business
        "FABRIC_TRIGGER_DISK_WARN_PERCENT": "99", "FABRIC_TRIGGER_DISK_FAIL_PERCENT": "100"}
LAYOUTS = (("v4", "v4.5.12"), ("v3", None), ("runbook", None))  # v4.5.12: newest with an image
LAYOUT_PORTS = {name: layout.web_port for name, layout in RIG_LAYOUTS.items()}
# status's check names (a closed set): fleet-status's columns are named after them
CHECK_NAMES = ("containers", "webapp", "resources", "disk", "memory", "swap", "certificate",
               "backup", "transaction", "reboot", "version", "run_containers", "docker_disk",
               "database", "replication_slots", "secrets")


class Fleet:
    """Several rig hosts as the `cli` fixture's host: -H a,b,c (or no -H at all)."""

    def __init__(self, hosts, with_h=True):
        self.hosts = hosts
        self.with_h = with_h

    def fab_args(self) -> list[str]:
        names = ",".join(address(h) for h in self.hosts)
        return (["-H", names] if self.with_h else []) + ["-i", self.hosts[0].key]


def address(host) -> str:
    return f"root@{host.address}:{host.port}"


def label(host) -> str:
    return f"{host.address}:{host.port}"


@pytest.fixture(scope="module")
def trio(rig):
    """The first three assigned hosts, locked for the module, reset once (in parallel)."""
    numbers = assigned_hosts()
    if len(numbers) < 3:
        pytest.skip("needs 3 rig hosts")
    hosts = [rig.host(k) for k in numbers[:3]]
    with ExitStack() as stack:
        for host in hosts:
            stack.enter_context(host.lock())
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda h, spec: h.reset(*spec), hosts, LAYOUTS))
        yield hosts


def fleet_doc(run, task: str) -> dict:
    """The one JSON document a fleet run prints under --json."""
    assert run.stdout, run.stderr
    (doc,) = [json.loads(line) for line in run.stdout.splitlines()]
    assert (doc["schema"], doc["task"], doc["host"]) == ("trigger-maint/1", task, None)
    assert doc["ok"] is (doc["exit_code"] == 0)
    return doc


def containers(host) -> str:
    """Every container with its image and start time: any recreate or restart changes it."""
    return host.run("docker ps -aq | xargs -r docker inspect --format "
                    "'{{.Name}} {{.Image}} {{.State.Status}} {{.State.StartedAt}}' | sort").stdout


def backups(host) -> str:
    """The host's backup folder (the runbook layout's own, else the default) as listed."""
    folder = "/opt/trigger/backups" if host.layout == "runbook" else "/var/backups/trigger"
    return host.run(f"ls -laR {folder} 2>/dev/null || true").stdout


def restart_webapp(host) -> None:
    """A fresh webapp log: under heavy load the stand-in logs tracebacks of health probes
    that gave up, which verify rightly counts as errors."""
    host.compose("restart", "webapp")
    url = f"http://{host.address}:{LAYOUT_PORTS[host.layout]}/healthcheck"
    proc.wait_for(lambda: proc.http_status(url) == 200, 120, f"{url} to answer 200")


def assert_prefixed(stderr: str, names) -> None:
    """Every line on stderr names its host (or is trigger-maint's own final line)."""
    for line in stderr.splitlines():
        assert line.startswith(tuple(f"{n} | " for n in names)) or \
            line.startswith("trigger-maint: fleet "), line


def test_status_on_three_hosts_from_dash_h_and_from_the_inventory(trio, cli, tmp_path):
    run = cli(Fleet(trio), "fleet-status", "--parallel", "3", "--json", env=FAST)
    doc = fleet_doc(run, "fleet-status")
    names = [label(h) for h in trio]
    assert [h["name"] for h in doc["hosts"]] == names
    assert [h["before"] for h in doc["hosts"]] == ["v4.5.12", "v3.3.17", "v4.5.10"]
    # fresh stacks have no backup yet: status fails on that everywhere
    assert [h["items"]["backup"] for h in doc["hosts"]] == ["FAIL"] * 3
    assert all(h["message"].startswith("status NOT OK: ") for h in doc["hosts"])
    assert [h["exit_code"] for h in doc["hosts"]] == [1, 1, 1]
    assert run.returncode == doc["exit_code"] == 1
    assert doc["parallel"] == 3 and doc["canary"] is None
    assert_prefixed(run.stderr, names)
    assert run.stderr.splitlines()[-1] == "trigger-maint: fleet status: 0 of 3 hosts ok"

    # The same hosts by inventory name, each with its overrides: the third one's path is wrong.
    (tmp_path / "cwd" / "fabric.yaml").write_text(json.dumps({"trigger": {
        "hosts": {"blue": {"host": address(trio[0])}, "green": address(trio[1]),
                  "red": {"host": address(trio[2]), "path": "/srv/nowhere"}},
        "groups": {"rgb": ["red", "green", "blue"]},
    }}))
    run = cli(Fleet(trio, with_h=False), "fleet-status", "--group", "rgb", "--parallel", "2",
              env=FAST)
    assert run.returncode == 2, run.stderr  # the worst: red's configuration
    lines = run.stdout.splitlines()
    header = lines[0].split()
    assert header[:3] == ["host", "before", "after"] and header[-1] == "result"
    assert "backup" in header and set(header[3:-1]) <= set(CHECK_NAMES) | {"other"}
    rows = {line.split()[0]: line.split() for line in lines[1:4]}
    assert list(rows) == ["red", "green", "blue"]
    assert rows["red"][1:3] == ["unknown", "-"] and rows["red"][-2:] == ["failed", "(2)"]
    assert rows["green"][1] == "v3.3.17" and rows["blue"][1] == "v4.5.12"
    assert any(line.startswith("red: ") and "/srv/nowhere" in line for line in lines)
    assert lines[-1] == "0 of 3 hosts ok"
    assert_prefixed(run.stderr, ["red", "green", "blue"])


def test_maintain_reports_a_broken_and_an_unreachable_host_while_the_other_completes(
        trio, cli, github, tmp_path):
    good, broken, gone = trio
    restart_webapp(good)
    broken.compose("stop", "redis")
    counts = [h.row_counts() for h in trio]
    untouched = containers(gone), backups(gone)
    gone.stop_sshd()
    try:
        run = cli(Fleet(trio), "fleet-maintain", "--yes", "--no-update", "--parallel", "3",
                  "--json", env=FAST)
    finally:
        gone.start_sshd()
    doc = fleet_doc(run, "fleet-maintain")
    assert run.returncode == doc["exit_code"] == 3, run.stderr
    states = [(h["state"], h["exit_code"]) for h in doc["hosts"]]
    assert states == [("ok", 0), ("failed", 1), ("unreachable", 3)], doc["hosts"]
    first, second, third = doc["hosts"]
    assert first["before"] == first["after"] == "v4.5.12"
    assert set(first["items"].values()) == {"ok"}
    assert second["items"]["containers"] == "open" and "redis" in second["message"]
    assert third["message"].startswith("cannot connect")
    assert doc["summary"] == "1 of 3 hosts ok"

    # Per-host reports of the two reachable hosts, and the fleet's own report beside them.
    reports = tmp_path / "reports"
    assert Path(first["report"]).parent == reports and Path(first["report"]).exists()
    assert Path(second["report"]).exists() and third["report"] is None
    fleet_md = [p.name for p in reports.glob("fleet-maintain-*.md")]
    assert len(fleet_md) == 1 and f"{reports / fleet_md[0]}" in doc["files"]
    saved = json.loads((reports / fleet_md[0]).with_suffix(".json").read_text())
    assert saved["hosts"][2]["state"] == "unreachable"

    # Nothing lost anywhere; the unreachable host was not touched at all.
    assert [h.row_counts() for h in trio] == counts
    assert "trigger-db-" in backups(good)
    assert (containers(gone), backups(gone)) == untouched

    # fleet-verify names the service that is still down, on its host only.
    run = cli(Fleet(trio[:2]), "fleet-verify", "--parallel", "2", env=FAST)
    assert run.returncode == 1, run.stderr
    lines = run.stdout.splitlines()
    assert lines[1].split()[0] == label(good) and lines[1].split()[-1] == "ok"
    assert lines[2].split()[0] == label(broken) and lines[2].split()[-2:] == ["failed", "(1)"]
    assert lines[3].startswith(f"{label(broken)}: verify failed: ") and "redis" in lines[3]


def test_a_failing_canary_stops_the_rollout_and_leaves_the_others_untouched(
        trio, cli, github, tmp_path):
    canary, *others = trio
    counts = [h.row_counts() for h in trio]
    before = [(containers(h), backups(h)) for h in others]
    run = cli(Fleet(trio), "fleet-maintain", "--yes", "--target", "v4.5.14", "--canary", "1",
              "--parallel", "3", "--json", env=FAST)
    doc = fleet_doc(run, "fleet-maintain")
    assert run.returncode == doc["exit_code"] == 5, run.stderr
    assert [(h["stage"], h["state"]) for h in doc["hosts"]] == [
        ("canary", "failed"), ("rest", "skipped"), ("rest", "skipped")]
    assert doc["stopped"] == f"rollout stopped: canary {label(canary)} failed"
    first = doc["hosts"][0]
    assert first["before"] == first["after"] == "v4.5.12"  # rolled back
    assert "v4.5.14" in first["message"] and first["items"]["update"] == "open"
    assert canary.row_counts() == counts[0]
    assert [(containers(h), backups(h)) for h in others] == before
    assert [h.row_counts() for h in others] == counts[1:]
    assert run.stderr.splitlines()[-1] == (
        f"trigger-maint: fleet maintain: 0 of 3 hosts ok; rollout stopped: canary "
        f"{label(canary)} failed")
