"""Smoke tests proving the rig behaves like real Trigger.dev servers."""

import base64
import json
import re
import ssl
import subprocess
import time
import urllib.request

import paramiko
import pytest

from tests.rig import registry
from tests.rig.config import KEY, KNOWN_HOSTS, REGISTRY
from tests.rig.proc import http_status, wait_for

SEEDED = {"User": 2, "Project": 3, "RuntimeEnvironment": 9, "TaskRun": 250}


def ssh(host, command: str) -> str:
    """Run command over SSH with the rig key and strict known_hosts."""
    client = paramiko.SSHClient()
    client.load_host_keys(str(KNOWN_HOSTS))
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(host.address, host.port, "root", key_filename=str(KEY),
                   look_for_keys=False, allow_agent=False, timeout=10)
    try:
        _, stdout, stderr = client.exec_command(command, timeout=60)
        status = stdout.channel.recv_exit_status()
        out = stdout.read().decode()
        assert status == 0, f"{command}: {status} {stderr.read().decode()}"
        return out
    finally:
        client.close()


def set_env(host, key: str, value: str) -> None:
    host.run(f"sed -i 's/^{key}=.*/{key}={value}/' /opt/trigger/.env")


def test_every_host_answers_ssh_strictly(rig_hosts):
    for host in rig_hosts:
        k = host.number
        out = ssh(host, "hostname; cat /proc/sys/kernel/random/boot_id; "
                        "docker compose version --short; getent hosts " + host.domain)
        name, boot_id, compose, hosts_line = out.splitlines()
        assert name == f"trigger-host-{k}"
        assert boot_id == host.boot_id()
        assert compose.startswith("2.")
        assert hosts_line.split()[0] == host.address


@pytest.mark.parametrize("fixture, port, user, db", [
    ("v4_host", 8030, "postgres", "main"), ("v3_host", 3040, "postgres", "postgres"),
    ("runbook_host", 3030, "trigger", "trigger")])
def test_layout_resets_healthy_and_seeded(request, fixture, port, user, db):
    host = request.getfixturevalue(fixture)
    assert http_status(f"http://{host.address}:{port}/healthcheck") == 200
    counts = host.row_counts()
    assert {k: counts[k] for k in SEEDED} == SEEDED and counts["_prisma_migrations"] == 5
    assert host.compose("exec", "-T", "redis", "redis-cli", "ping").stdout.strip() == "PONG"
    dump = host.compose("exec", "-T", "postgres", "pg_dumpall", "-U", user).stdout
    assert "-- PostgreSQL database cluster dump complete" in dump
    assert host.psql("select current_user, current_database()") == f"{user}|{db}"


def test_moved_floating_tag_leaves_old_image_dangling(v4_host):
    repo = "triggerdotdev/trigger.dev"
    set_env(v4_host, "TRIGGER_IMAGE_TAG", "latest")
    v4_host.compose("pull", "-q", "webapp")
    latest = f"{REGISTRY}/{repo}:latest"
    old = v4_host.run(f"docker image inspect -f '{{{{.Id}}}}' {latest}").stdout.strip()
    # Earlier tests may have pulled the same image under other tags (v4.5.11, v4): drop those
    # so that `latest` is the only name holding it, as on a server that pulls one tag.
    others = v4_host.run(f"docker image inspect -f '{{{{join .RepoTags \" \"}}}}' {old}").stdout
    for tag in set(others.split()) - {latest}:
        v4_host.run(f"docker rmi {tag} >/dev/null")
    before = registry.move_tag(repo, "latest", "v4.5.12")
    try:
        v4_host.compose("pull", "-q", "webapp")
    finally:
        registry.move_tag(repo, "latest", "v4.5.11")
    dangling = v4_host.run("docker images -q --no-trunc --filter dangling=true").stdout.split()
    assert before == registry.manifest(repo, "v4.5.11")[2]
    assert dangling == [old]


def test_reboot_changes_boot_id_and_containers_come_back(v4_host):
    boot_id = v4_host.boot_id()
    v4_host.require_reboot("linux-image-amd64")
    assert "linux-image-amd64" in ssh(v4_host, "cat /run/reboot-required.pkgs")
    ssh(v4_host, "reboot")
    wait_for(lambda: v4_host.boot_id() != boot_id, 60, "a new boot id")
    wait_for(lambda: v4_host.is_up(), 60, "the host to come back")
    url = f"http://{v4_host.address}:8030/healthcheck"
    wait_for(lambda: http_status(url) == 200, 60, "the webapp to come back")
    assert ssh(v4_host, "cat /proc/sys/kernel/random/boot_id").strip() != boot_id
    assert ssh(v4_host, "test -e /run/reboot-required || echo gone").strip() == "gone"


def test_certificate_expiry_visible_to_certbot_and_tls(v4_host):
    v4_host.set_certificate(-3)
    assert "INVALID: EXPIRED" in ssh(v4_host, "certbot certificates 2>&1")
    v4_host.set_certificate(20)
    assert "(VALID: 19 days)" in ssh(v4_host, "certbot certificates 2>&1")
    pem = ssl.get_server_certificate((v4_host.address, 443))
    enddate = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=pem, text=True,
                             capture_output=True, check=True).stdout
    expected = time.strftime("%b %e", time.gmtime(time.time() + 20 * 86400))
    assert expected in enddate


def test_failing_versions_fail_as_described(v4_host):
    url = f"http://{v4_host.address}:8030/healthcheck"
    set_env(v4_host, "TRIGGER_IMAGE_TAG", "v4.5.16")
    v4_host.compose("up", "-d", "--quiet-pull", "webapp")
    wait_for(lambda: http_status(url) == 500, 60, "v4.5.16 to answer 500")
    assert v4_host.row_counts()["_prisma_migrations"] == 7
    set_env(v4_host, "TRIGGER_IMAGE_TAG", "v4.5.15")
    v4_host.compose("up", "-d", "--quiet-pull", "webapp")

    def restarted():
        state = json.loads(v4_host.run("docker inspect trigger-webapp-1").stdout)[0]
        return state["RestartCount"] >= 1 and state["State"]["ExitCode"] == 1

    wait_for(restarted, 60, "v4.5.15 to crash-loop")
    set_env(v4_host, "TRIGGER_IMAGE_TAG", "v4.5.14")
    v4_host.compose("up", "-d", "--quiet-pull", "webapp")
    wait_for(lambda: http_status(url) == 500, 60, "v4.5.14 to answer 500")


def test_host_helpers(v4_host):
    names = v4_host.pile_exited_containers(5, "runner")
    exited = v4_host.run("docker ps -a --filter status=exited --format '{{.Names}}'").stdout
    assert set(names) <= set(exited.split())
    v4_host.shrink_backup_fs(64)
    full = v4_host.run("head -c 100000 /dev/zero > /var/backups/trigger/x", check=False)
    assert full.returncode != 0
    v4_host.restore_backup_fs()
    v4_host.stop_sshd()
    with pytest.raises(paramiko.ssh_exception.NoValidConnectionsError):
        ssh(v4_host, "true")
    v4_host.start_sshd()
    assert ssh(v4_host, "echo ok").strip() == "ok"


def test_fake_github(github):
    fake = github(advisories=[{"ghsa_id": "GHSA-xxxx-yyyy-zzzz", "summary": "Extra",
                               "vulnerable_version_range": "< 4.5.12",
                               "patched_versions": "4.5.12"}])
    url = f"{fake.url}/repos/triggerdotdev/trigger.dev/releases?per_page=5"
    with urllib.request.urlopen(url) as resp:
        page, etag, link = json.load(resp), resp.headers["ETag"], resp.headers["Link"]
    assert [r["tag_name"] for r in page][:4] == ["v4.5.16", "v4.5.15", "v4.5.14", "v4.6.0-rc.1"]
    assert 'rel="next"' in link and "page=2" in link
    request = urllib.request.Request(url, headers={"If-None-Match": etag})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request)
    assert err.value.code == 304
    with urllib.request.urlopen(f"{fake.url}/repos/triggerdotdev/trigger.dev/"
                                "security-advisories?state=published") as resp:
        ids = [a["ghsa_id"] for a in json.load(resp)]
    assert ids[0] == "GHSA-xxxx-yyyy-zzzz" and "GHSA-p28v-f755-9qrg" in ids
    assert fake.requests() == 3


@pytest.fixture
def spare_host(rig_hosts):
    """The last assigned host, locked; the test resets it to the layout it needs."""
    host = rig_hosts[-1]
    with host.lock():
        yield host


def logs_since(host, since: str, service: str) -> str:
    """service's log lines since an RFC 3339 time (Compose 2.26 prefixes an erase-line code)."""
    text = host.compose("logs", "--no-log-prefix", "--since", since, service).stdout
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def json_levels(text: str, name: str) -> dict[str, list[str]]:
    """Messages of one service's JSON log lines by level."""
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            assert entry["name"] == name and entry["timestamp"].endswith("Z")
            found.setdefault(entry["level"], []).append(entry["message"])
    return found


def test_full_restart_logs_startup_noise_in_each_format(v4_host):
    since = v4_host.run("date -u +%Y-%m-%dT%H:%M:%S.%NZ").stdout.strip()
    v4_host.compose("restart")
    wait_for(v4_host.all_healthy, 120, "the stack to be healthy again", 0.5)
    webapp = logs_since(v4_host, since, "webapp")
    levels = json_levels(webapp, "webapp")
    assert "Failed to connect to database" in levels["error"] and len(levels["warn"]) >= 2
    assert "Error: P1001: Can't reach database server at `" in webapp
    supervisor = json_levels(logs_since(v4_host, since, "supervisor"), "supervisor")
    assert "Failed to connect to platform" in supervisor["error"] and supervisor["warn"]
    electric = logs_since(v4_host, since, "electric")
    assert " [error] Postgrex.Protocol (#PID<" in electric and " [warning] " in electric
    assert "# WARNING " in logs_since(v4_host, since, "redis")
    line = v4_host.log_error("webapp", "Unhandled error in the run engine")
    assert logs_since(v4_host, since, "webapp").splitlines()[-1] == line
    assert json.loads(line)["level"] == "error"


def test_runbook_backups_as_the_cron_left_them(spare_host):
    spare_host.reset("runbook")
    names = spare_host.runbook_backups(nights=5, gap_after=3, gap_days=21)
    cut, fake = "trigger-db-20260101-0300.sql.gz", "trigger-db-20260102-0300.sql.gz"
    spare_host.add_truncated_dump(cut)
    spare_host.add_fake_dump(fake)
    files = spare_host.backup_files()
    assert set(files) == {*names, "README.txt", cut, fake}
    assert files[names[0]] * 0.4 < files[cut] < files[names[0]] * 0.6
    folder = "/opt/trigger/backups"
    stamps = spare_host.run(f"cd {folder} && stat -c '%n %y' {' '.join([*names, cut])}").stdout
    for line in stamps.splitlines():
        name, day, clock = line.split()[:3]
        assert name[11:19] == day.replace("-", "") and clock.startswith("03:00:")
    days = [time.mktime(time.strptime(n[11:19], "%Y%m%d")) / 86400 for n in names]
    assert days[2] - days[1] > 20 and days[-1] - days[2] < 3
    dump = spare_host.run(f"zcat {folder}/{names[-1]}").stdout
    assert "cluster dump complete" in dump and '"TaskRun"' in dump
    assert spare_host.run(f"gzip -t {folder}/{cut}", check=False).returncode
    assert "Error response" in spare_host.run(f"zcat {folder}/{fake}").stdout
    assert "pg_dumpall -U trigger" in spare_host.run("cat /etc/cron.d/trigger-db-backup").stdout


UPSTREAM_SERVICES = {"webapp", "postgres", "redis", "electric", "clickhouse", "registry", "minio",
                     "s2-init", "s2", "supervisor", "docker-proxy"}


def test_upstream_layout_resets_healthy_on_loopback(spare_host):
    host = spare_host
    host.reset("upstream")
    assert http_status(f"http://{host.address}:8030/healthcheck") == 200
    counts = host.row_counts()
    assert {k: counts[k] for k in SEEDED} == SEEDED and counts["_prisma_migrations"] == 5
    assert host.psql("select current_user, current_database()") == "postgres|main"
    listing = host.compose("ps", "-a", "--format", "json").stdout
    rows = [json.loads(line) for line in listing.splitlines()]
    assert {r["Service"] for r in rows} == UPSTREAM_SERVICES
    assert {r["Name"] for r in rows} == {f"trigger-{s}-1" for s in UPSTREAM_SERVICES}
    assert host.run("readlink /opt/trigger/webapp/.env /opt/trigger/worker/.env").stdout.split() \
        == ["../.env", "../.env"]
    inspect = json.loads(host.run("docker inspect $(docker ps -aq)").stdout)
    assert {c["HostConfig"]["NetworkMode"] for c in inspect} == {"host"}
    assert all(c["Config"]["Image"].startswith(f"{REGISTRY}/") for c in inspect)
    assert host.run("docker network ls --format '{{.Driver}}'").stdout.split() == ["host", "null"]
    hosts = host.compose("exec", "-T", "webapp", "getent", "hosts", "postgres").stdout.split()
    assert hosts[0] == f"127.100.{host.number}.2"
    assert host.compose("exec", "-T", "redis", "redis-cli", "ping").stdout.strip() == "PONG"
    assert_registry_asks_for_the_htpasswd_user(host)
    assert "Failed to connect to platform" in host.compose("logs", "supervisor").stdout


def assert_registry_asks_for_the_htpasswd_user(host):
    url = f"http://127.100.{host.number}.6:5000/v2/"
    assert http_status(url) == 401
    env = dict(line.split("=", 1) for line in host.run("grep = /opt/trigger/.env").stdout.split())
    login = base64.b64encode(f"registry-user:{env['DOCKER_REGISTRY_PASSWORD']}".encode())
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {login.decode()}"})
    with urllib.request.urlopen(request) as resp:
        assert resp.status == 200
