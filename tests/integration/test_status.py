"""status through the real CLI on rig hosts: healthy layouts in one SSH session, then
warnings (exit 0) and failures (exit 1), each reported as the right state."""

import contextlib
import hashlib
import json
import re
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.integration.conftest import assigned_hosts

SECRET_VALUES = ("2818143646516f6fffd707b36f334bbb", "very-secure-indeed")
COUNTER = 'printf "exec\\n" >> /root/.status-test-execs\n'
# The check names status may report: a closed set (trigger_maint/checks.py NAMES).
NAMES = ("containers", "webapp", "resources", "disk", "memory", "swap", "certificate",
         "backup", "transaction", "reboot", "version", "run_containers", "docker_disk",
         "database", "replication_slots", "secrets")


def status(cli, host, *flags, env=None):
    """Run `trigger-maint status --json`; the process and the parsed document."""
    done = cli(host, "status", "--json", *flags,
               env={"FABRIC_TRIGGER_DOMAIN": host.domain, **(env or {})})
    lines = done.stdout.splitlines()
    try:
        (data,) = [json.loads(line) for line in lines]
    except ValueError:
        pytest.fail(f"not one JSON document (exit {done.returncode}): {done.stdout[-2000:]} "
                    f"{done.stderr[-2000:]}")
    assert (data["schema"], data["task"], data["host"]) == (
        "trigger-maint/1", "status", f"{host.address}:{host.port}")
    assert data["exit_code"] == done.returncode
    assert set(NAMES) >= {c["name"] for c in data["checks"]}
    return done, data


def label(c: dict) -> str:
    """A check as the status table names it: name and item."""
    return f"{c['name']} {c['item']}" if c["item"] else c["name"]


def states(data: dict) -> dict[str, str]:
    return {label(c): c["state"] for c in data["checks"]}


def not_ok(data: dict) -> dict[str, str]:
    return {name: state for name, state in states(data).items() if state != "ok"}


def check(data: dict, name: str, item: str = "") -> dict:
    return next(c for c in data["checks"] if (c["name"], c["item"]) == (name, item))


def backup_dir(host) -> str:
    """Where status looks for backups on a fresh rig host: the runbook layout's own folder,
    else the default (no trigger-db dump in /opt/trigger/backups)."""
    return "/opt/trigger/backups" if host.layout == "runbook" else "/var/backups/trigger"


def write_backup(host, hours_ago: float, size: int = 2048) -> str:
    """A backup as the backup phase leaves it: dump (0600, zstd as on hosts that have it) +
    sidecar, verified, finished hours ago."""
    finished = datetime.now(UTC) - timedelta(hours=hours_ago)
    stamp = finished.strftime("%Y%m%d-%H%M%S")
    folder = backup_dir(host)
    base = f"{folder}/trigger-db-{stamp}"
    sidecar = {
        "file": f"trigger-db-{stamp}.sql.zst", "origin": "trigger-maint", "purpose": "backup",
        "compression": "zstd",
        "started_at": (finished - timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": finished.strftime("%Y-%m-%dT%H:%M:%SZ"), "size": "@SIZE@",
        "sha256": "", "postgres_version": "14", "trigger_version": host.version.lstrip("v"),
        "layout": host.layout, "images": {}, "databases": ["main"], "row_counts": {},
        "migrations": 0, "verified": True,
        "checks": {"intact": True, "complete": True, "rows_match": True,
                   "size_plausible": True},
        "files_archive": "", "volumes": []}
    host.run(f"mkdir -p {folder} && head -c {size} /dev/urandom > {base}.sql.zst && "
             f"chmod 600 {base}.sql.zst && "
             f"sed \"s/\\\"@SIZE@\\\"/$(stat -c %s {base}.sql.zst)/\" > {base}.json",
             input=json.dumps(sidecar))
    return stamp


def cut_off_update(host, tx: str) -> None:
    """An update transaction whose runner died after it began (the host went down): CURRENT
    names it, its journal has no end, no runner lives."""
    root = f"{backup_dir(host)}/transactions"
    begin = json.dumps({"t": int(time.time()) - 600, "ev": "begin", "tx": tx,
                        "kind": "update", "pid": 999999})
    host.run(f"mkdir -p {root}/{tx} && cat > {root}/{tx}/journal.jsonl && "
             f"echo 999999 > {root}/{tx}/pid && echo {tx} > {root}/CURRENT",
             input=begin + "\n")


@contextlib.contextmanager
def trusted_certificate(host):
    """Let the host trust the certificate it serves (inside its own mount namespace only),
    as it would trust a publicly issued one; the rig's certificates are self-signed."""
    bundle = "/etc/ssl/certs/ca-certificates.crt"
    host.run(f"[ -f /run/status-test-ca.crt ] || cp {bundle} /run/status-test-ca.crt; "
             f"cat /run/status-test-ca.crt /etc/letsencrypt/live/{host.domain}/cert.pem "
             f"> /run/status-test-trust.crt; findmnt -n {bundle} >/dev/null || "
             f"mount --bind /run/status-test-trust.crt {bundle}")
    try:
        yield
    finally:
        host.run(f"umount {bundle} 2>/dev/null || true")


@contextlib.contextmanager
def ssh_sessions(host):
    """Counts SSH logins (sshd's log) and commands run (bash reads ~/.bashrc for them)."""
    bashrc = host.dir / "root" / ".bashrc"
    execs = host.dir / "root" / ".status-test-execs"
    log = host.dir / "sshd.log"
    execs.unlink(missing_ok=True)
    before = log.read_text().count("Accepted publickey")
    bashrc.write_text(COUNTER)
    counts = {}
    try:
        yield counts
    finally:
        bashrc.unlink(missing_ok=True)
        counts["logins"] = log.read_text().count("Accepted publickey") - before
        counts["commands"] = len(execs.read_text().splitlines()) if execs.exists() else 0
        execs.unlink(missing_ok=True)


def file_digests(host, folder: str) -> dict[str, str]:
    out = host.run(f"cd {folder} && find . -type f -exec sha256sum {{}} + | sort").stdout
    return dict(reversed(line.split(maxsplit=1)) for line in out.splitlines())


def wait_until_healthy(host, seconds: float = 90) -> None:
    """Until every container of the stack runs and passes its healthcheck (if it has one):
    the rig's reset waits for the webapp's answer, not for Docker's health verdicts."""
    probe = ("docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}"
             "{{else}}healthy{{end}}' $(docker ps -aq --filter label=com.docker.compose.project)")
    deadline = time.monotonic() + seconds
    while set(host.run(probe).stdout.split("\n")) - {"running healthy", ""}:
        assert time.monotonic() < deadline, host.run(probe.replace("{{.State.Status}}",
                                                                   "{{.Name}} {{.State.Status}}"))
        time.sleep(0.5)


def assert_healthy_in_one_session(cli, host):
    write_backup(host, hours_ago=1)
    wait_until_healthy(host)
    with trusted_certificate(host), ssh_sessions(host) as sessions:
        done, data = status(cli, host)
    assert done.returncode == 0, (done.stderr, not_ok(data))
    assert not_ok(data) == {}
    assert data["ok"] is True and data["worst"] == "ok"
    assert sessions == {"logins": 1, "commands": 1}
    services = [c["item"] for c in data["checks"] if c["name"] == "containers"]
    assert data["summary"]["Containers"] == f"{len(services)} of {len(services)} ok"
    assert data["summary"]["Version"] == host.version
    assert check(data, "version")["data"]["running"] == host.version.lstrip("v")
    certificate = check(data, "certificate", host.domain)
    assert certificate["value"].endswith("(59 days)") and certificate["data"]["days_left"] == 59
    assert check(data, "backup")["data"]["origin"] == "trigger-maint"
    assert data["backup_dir"] == backup_dir(host)
    return data


@pytest.fixture
def crash_looping_v4(rig):
    """The v4 host at v4.5.15, whose webapp crashes at start, after its first restarts."""
    host = rig.host(assigned_hosts()[0])
    with host.lock():
        host.reset("v4", "v4.5.15", wait=False)
        deadline = time.monotonic() + 60
        while int(host.run("docker inspect -f '{{.RestartCount}}' trigger-webapp-1").stdout) < 2:
            assert time.monotonic() < deadline, "webapp never restarted"
            time.sleep(0.5)
        yield host


def test_v4_healthy_then_warnings_then_failures(v4_host, cli):
    host = v4_host
    assert_healthy_in_one_session(cli, host)

    # Warnings keep exit 0: reboot required, exited runners piling up, a certificate
    # expiring in 5 days, disks over a (configured) warning threshold.
    host.require_reboot("linux-image-6.1.0-28-amd64", "libc6")
    host.pile_exited_containers(3, "runner")
    host.set_certificate(5)
    with trusted_certificate(host):
        done, data = status(cli, host, env={"FABRIC_TRIGGER_RUN_CONTAINERS_WARN": "3",
                                            "FABRIC_TRIGGER_DISK_WARN_PERCENT": "1"})
    assert done.returncode == 0, done.stderr
    found = not_ok(data)
    disks = {name for name in found if name.startswith("disk ")}
    assert disks and all(found.pop(name) == "warn" for name in disks)
    assert found == {"reboot": "warn", "run_containers": "warn",
                     f"certificate {host.domain}": "warn",
                     f"certificate {host.domain} (certbot)": "warn"}
    assert all(check(data, "disk", name[5:])["data"]["percent"] >= 1 for name in disks)
    assert check(data, "reboot")["detail"] == "asked for by libc6, linux-image-6.1.0-28-amd64"
    assert check(data, "run_containers")["value"].startswith("3, oldest")
    assert check(data, "run_containers")["data"]["count"] == 3
    # 5 days from the moment it was made: 4 or 5 whole days left, by when status looks.
    certificate = check(data, "certificate", host.domain)
    assert re.search(r"\((4|5) days\)$", certificate["value"])
    assert certificate["data"]["days_left"] in (4, 5)
    assert data["summary"]["Reboot needed"] == "yes"

    # Failures exit 1: a stopped service, a full backup filesystem holding only an old
    # backup, an expired certificate, an interrupted update, published default secrets.
    host.compose("stop", "redis")
    host.shrink_backup_fs(512)
    cut_off_update(host, "20261130-101010-update")
    write_backup(host, hours_ago=30, size=488 * 1024)  # and the 4 KiB files of the update
    host.set_certificate(-2)
    host.run(f"printf 'SESSION_SECRET={SECRET_VALUES[0]}\\n"
             f"DOCKER_REGISTRY_PASSWORD={SECRET_VALUES[1]}\\n' >> /opt/trigger/.env")
    backups, rows = file_digests(host, "/var/backups/trigger"), host.row_counts()
    env_before = hashlib.sha256((host.dir / "opt/trigger/.env").read_bytes()).hexdigest()
    done, data = status(cli, host, "--allow-unknown")
    assert done.returncode == 1
    assert not_ok(data) == {
        "containers redis": "fail", "disk /var/backups/trigger": "fail",
        f"certificate {host.domain}": "fail", f"certificate {host.domain} (certbot)": "fail",
        "backup": "fail", "transaction": "fail", "secrets": "fail",
        "reboot": "warn"}
    assert check(data, "secrets")["value"] == "SESSION_SECRET, DOCKER_REGISTRY_PASSWORD"
    assert check(data, "secrets")["data"]["default_keys"] == ["SESSION_SECRET",
                                                              "DOCKER_REGISTRY_PASSWORD"]
    assert not any(value in done.stdout + done.stderr for value in SECRET_VALUES)
    assert check(data, "backup")["detail"].startswith("older than 26 h")
    assert check(data, "backup")["data"]["count"] == 1
    assert check(data, "transaction")["value"] == "update 20261130-101010-update cut off"
    assert check(data, "disk", "/var/backups/trigger")["data"]["percent"] >= 95
    assert check(data, "containers", "redis")["value"].startswith("exited")
    assert check(data, "certificate", host.domain)["data"]["days_left"] < 0
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"trigger-maint: {host.address}:{host.port}: status NOT OK")
    assert data["ok"] is False and data["worst"] == "fail"
    # --report-only lets chained tasks run: exit 0, and the document still says not ok.
    reported, again = status(cli, host, "--allow-unknown", "--report-only")
    assert reported.returncode == 0, reported.stderr
    assert again["ok"] is False and not_ok(again) == not_ok(data)
    # status only reads: backups, data and .env are as they were
    assert file_digests(host, "/var/backups/trigger") == backups
    assert host.row_counts() == rows
    assert hashlib.sha256((host.dir / "opt/trigger/.env").read_bytes()).hexdigest() == env_before


def test_v3_healthy_then_stopped_service_and_no_backup(v3_host, cli):
    host = v3_host
    assert_healthy_in_one_session(cli, host)
    host.compose("stop", "coordinator")
    host.run("rm -f /var/backups/trigger/trigger-db-*")
    host.pile_exited_containers(2, "task-run")
    done, data = status(cli, host, env={"FABRIC_TRIGGER_RUN_CONTAINERS_WARN": "2",
                                        "FABRIC_TRIGGER_DOMAIN": ""})
    assert done.returncode == 1
    assert not_ok(data) == {"containers coordinator": "fail", "backup": "fail",
                            "run_containers": "warn"}
    assert check(data, "backup")["value"] == "none"
    assert check(data, "backup")["data"]["count"] == 0
    assert "task-run*" in check(data, "run_containers")["detail"]
    assert data["summary"]["Containers"].startswith("4 of 5 ok; coordinator exited")


def test_runbook_healthy_then_unhealthy_webapp(runbook_host, cli):
    host = runbook_host
    data = assert_healthy_in_one_session(cli, host)
    done = cli(host, "status", env={"FABRIC_TRIGGER_DOMAIN": host.domain})
    assert done.returncode == 1  # the certificate is self-signed without the trust above
    assert re.search(r"^Containers: +3 of 3 ok$", done.stdout, re.MULTILINE), done.stdout
    assert "\nSTATE  CHECK" in done.stdout and "not trusted: 18" in done.stdout
    assert done.stdout.rstrip().endswith(f"status NOT OK: {len(data['checks'])} checks, "
                                         f"1 failed (certificate {host.domain})")
    # v4.5.14 answers /healthcheck with 500: Docker marks it unhealthy
    host.run("sed -i 's/trigger.dev:v4.5.10/trigger.dev:v4.5.14/' /opt/trigger/docker-compose.yml"
             " && cd /opt/trigger && docker compose up -d --quiet-pull webapp")
    deadline = time.monotonic() + 90
    while host.run("docker inspect -f '{{.State.Health.Status}}' trigger-webapp"
                   ).stdout.strip() != "unhealthy":
        assert time.monotonic() < deadline, "webapp never became unhealthy"
        time.sleep(0.5)
    done, data = status(cli, host, env={"FABRIC_TRIGGER_DOMAIN": ""})
    assert done.returncode == 1
    assert not_ok(data) == {"containers webapp": "fail", "webapp /healthcheck": "fail"}
    assert check(data, "containers", "webapp")["value"].startswith("running, unhealthy")
    assert check(data, "webapp", "/healthcheck")["value"] == "HTTP 500"
    assert check(data, "webapp", "/healthcheck")["data"]["http_status"] == 500


def test_crash_looping_webapp(crash_looping_v4, cli):
    host = crash_looping_v4
    done, data = status(cli, host, env={"FABRIC_TRIGGER_DOMAIN": ""})
    assert done.returncode == 1
    webapp = check(data, "containers", "webapp")
    assert webapp["state"] == "fail"
    assert webapp["value"].startswith("restarting") or "crash loop" in webapp["detail"]
    assert webapp["data"]["restarts"] >= 2
    assert check(data, "webapp", "/healthcheck")["state"] == "fail"
    assert check(data, "version")["data"]["running"] == "4.5.15"
    assert check(data, "backup")["value"] == "none"
