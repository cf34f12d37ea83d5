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


def status(cli, host, *flags, env=None):
    """Run `trigger-maint status --json`; the process and the parsed report."""
    done = cli(host, "status", "--json", *flags,
               env={"FABRIC_TRIGGER_DOMAIN": host.domain, **(env or {})})
    try:
        data = json.loads(done.stdout)
    except ValueError:
        pytest.fail(f"no JSON report (exit {done.returncode}): {done.stderr[-2000:]}")
    return done, data


def states(data: dict) -> dict[str, str]:
    return {c["name"]: c["state"] for c in data["checks"]}


def not_ok(data: dict) -> dict[str, str]:
    return {name: state for name, state in states(data).items() if state != "ok"}


def check(data: dict, name: str) -> dict:
    return next(c for c in data["checks"] if c["name"] == name)


def write_backup(host, hours_ago: float, size: int = 2048) -> str:
    """A backup as the backup phase leaves it: dump (0600) + sidecar, finished hours ago."""
    finished = datetime.now(UTC) - timedelta(hours=hours_ago)
    stamp = finished.strftime("%Y%m%d-%H%M%S")
    base = f"/var/backups/trigger/trigger-db-{stamp}"
    sidecar = {
        "file": f"trigger-db-{stamp}.sql.gz",
        "started_at": (finished - timedelta(seconds=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "finished_at": finished.strftime("%Y-%m-%dT%H:%M:%SZ"), "size": "@SIZE@",
        "sha256": "", "postgres_version": "14", "trigger_version": host.version.lstrip("v"),
        "layout": host.layout, "images": {}, "row_counts": {}, "migrations": 0,
        "verified": True, "checks": {"gzip": True}, "files_archive": "", "volumes": []}
    host.run(f"mkdir -p /var/backups/trigger && head -c {size} /dev/urandom > {base}.sql.gz && "
             f"chmod 600 {base}.sql.gz && "
             f"sed \"s/\\\"@SIZE@\\\"/$(stat -c %s {base}.sql.gz)/\" > {base}.json",
             input=json.dumps(sidecar))
    return stamp


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
    services = [n for n in states(data) if n.startswith("container ")]
    assert data["summary"]["containers"] == f"{len(services)} of {len(services)} ok"
    assert check(data, "version")["value"] == host.version
    assert check(data, f"certificate {host.domain}")["value"].endswith("(59 days)")
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
    assert found == {"reboot": "warn", "exited run containers": "warn",
                     f"certificate {host.domain}": "warn",
                     f"certificate {host.domain} (certbot)": "warn"}
    assert check(data, "reboot")["detail"] == "asked for by libc6, linux-image-6.1.0-28-amd64"
    assert check(data, "exited run containers")["value"].startswith("3, oldest")
    # 5 days from the moment it was made: 4 or 5 whole days left, by when status looks.
    assert re.search(r"\((4|5) days\)$", check(data, f"certificate {host.domain}")["value"])
    assert data["summary"]["reboot needed"] == "yes"

    # Failures exit 1: a stopped service, a full backup filesystem holding only an old
    # backup, an expired certificate, an interrupted update, published default secrets.
    host.compose("stop", "redis")
    host.shrink_backup_fs(512)
    write_backup(host, hours_ago=30, size=500 * 1024)
    host.set_certificate(-2)
    host.run("mkdir -p /var/backups/trigger/rollback && "
             "echo 20261130-101010 > /var/backups/trigger/rollback/IN_PROGRESS && "
             f"printf 'SESSION_SECRET={SECRET_VALUES[0]}\\n"
             f"DOCKER_REGISTRY_PASSWORD={SECRET_VALUES[1]}\\n' >> /opt/trigger/.env")
    backups, rows = file_digests(host, "/var/backups/trigger"), host.row_counts()
    env_before = hashlib.sha256((host.dir / "opt/trigger/.env").read_bytes()).hexdigest()
    done, data = status(cli, host, "--allow-unknown")
    assert done.returncode == 1
    assert not_ok(data) == {
        "container redis": "fail", "disk /var/backups/trigger": "fail",
        f"certificate {host.domain}": "fail", f"certificate {host.domain} (certbot)": "fail",
        "backup": "fail", "interrupted update": "fail", "default secrets": "fail",
        "reboot": "warn"}
    assert check(data, "default secrets")["value"] == "SESSION_SECRET, DOCKER_REGISTRY_PASSWORD"
    assert not any(value in done.stdout + done.stderr for value in SECRET_VALUES)
    assert check(data, "backup")["detail"] == "older than 26 h"
    assert check(data, "container redis")["value"].startswith("exited")
    assert done.stderr.strip().splitlines()[-1].startswith(
        f"trigger-maint: {host.address}:{host.port}: status NOT OK")
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
    assert not_ok(data) == {"container coordinator": "fail", "backup": "fail",
                            "exited run containers": "warn"}
    assert check(data, "backup")["value"] == "none"
    assert check(data, "exited run containers")["detail"].startswith("task-run*")
    assert data["summary"]["containers"].startswith("4 of 5 ok; coordinator exited")


def test_runbook_healthy_then_unhealthy_webapp(runbook_host, cli):
    host = runbook_host
    data = assert_healthy_in_one_session(cli, host)
    done = cli(host, "status", env={"FABRIC_TRIGGER_DOMAIN": host.domain})
    assert done.returncode == 1  # the certificate is self-signed without the trust above
    assert done.stdout.startswith("containers        3 of 3 ok\n")
    assert "\nSTATE  CHECK" in done.stdout and "not trusted: 18" in done.stdout
    assert done.stdout.rstrip().endswith(f"{len(data['checks'])} checks, 1 failed "
                                         f"(certificate {host.domain})")
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
    assert not_ok(data) == {"container webapp": "fail", "webapp /healthcheck": "fail"}
    assert check(data, "container webapp")["value"].startswith("running, unhealthy")
    assert check(data, "webapp /healthcheck")["value"] == "HTTP 500"


def test_crash_looping_webapp(crash_looping_v4, cli):
    host = crash_looping_v4
    done, data = status(cli, host, env={"FABRIC_TRIGGER_DOMAIN": ""})
    assert done.returncode == 1
    webapp = check(data, "container webapp")
    assert webapp["state"] == "fail"
    assert webapp["value"].startswith("restarting") or "crash loop" in webapp["detail"]
    assert check(data, "webapp /healthcheck")["state"] == "fail"
    assert check(data, "version")["value"] == "v4.5.15"
    assert check(data, "backup")["value"] == "none"
