"""rollback through the real CLI on the rig: an update through a floating tag that moved is
undone to the old image ID (and database) even after `docker image prune -af`; an
interrupted update is completed by a rerun."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.rig import proc, registry
from tests.rig.config import KNOWN_HOSTS, REGISTRY

RB = "/var/backups/trigger/rollback"
TRIGGER_REPOS = ("triggerdotdev/trigger.dev", "triggerdotdev/supervisor")
INSPECT = "{{index .Config.Labels \"com.docker.compose.service\"}} {{.Image}}"


def images(host) -> dict:
    """service -> image ID of what runs now."""
    ids = host.compose("ps", "-a", "-q").stdout.split()
    out = host.run(f"docker inspect --format '{INSPECT}' {' '.join(ids)}").stdout
    return dict(line.split() for line in out.splitlines())


def image_present(host, image_id: str) -> bool:
    return host.run(f"docker image inspect {image_id}", check=False).returncode == 0


def states(host) -> str:
    return host.run(f"cat {RB}/*/state 2>/dev/null || true").stdout


def test_floating_tag_update_rolled_back_to_the_old_image_after_prune(v4_host, cli):
    host = v4_host
    rows = host.row_counts()
    # The installation follows the floating tag v4 (v4.5.11) like many real ones do.
    host.run("sed -i 's/^TRIGGER_IMAGE_TAG=.*/TRIGGER_IMAGE_TAG=v4/' /opt/trigger/.env")
    host.compose("up", "-d", "--quiet-pull")
    url = f"http://{host.address}:8030/healthcheck"
    proc.wait_for(lambda: proc.http_status(url) == 200, 120, f"{url} to answer 200")
    floating_env, old = host.run("cat /opt/trigger/.env").stdout, images(host)
    assert cli(host, "backup").returncode == 0
    try:
        for repo in TRIGGER_REPOS:
            registry.move_tag(repo, "v4", "v4.5.12")
        done = cli(host, "update", "--json")
        assert done.returncode == 0, done.stderr
        update = json.loads(done.stdout)["update"]
        assert update["changed"] and update["target"] == ""
        assert (update["from_version"], update["to_version"]) == ("4.5.11", "4.5.12")
        assert host.run("cat /opt/trigger/.env").stdout == floating_env
        new = images(host)
        assert new["webapp"] != old["webapp"] and new["supervisor"] != old["supervisor"]
        assert host.row_counts()["_prisma_migrations"] == rows["_prisma_migrations"] + 1

        host.run("docker image prune -af")
        assert not image_present(host, old["webapp"])
        listed = cli(host, "rollback", "--list", "--json")
        newest = json.loads(listed.stdout)["points"][0]
        assert newest["name"] == update["point"] and "webapp" in newest["missing_images"]
        refused = cli(host, "rollback")  # the database must be restored: needs --yes
        assert refused.returncode == 4 and "rerun with --yes" in refused.stderr
        assert images(host) == new

        back = cli(host, "rollback", "--yes", "--json")
        assert back.returncode == 0, back.stderr
        result = json.loads(back.stdout)["rollback"]
        assert result["point"] == update["point"] and result["db_restored"]
        assert result["version"] == "4.5.11"
    finally:
        registry.reset_floating_tags()
    assert images(host) == old  # the old image IDs, not whatever v4 points at
    assert host.row_counts() == rows
    assert host.run("cat /opt/trigger/.env").stdout == floating_env
    assert "IN_PROGRESS" not in host.run(f"ls -A {RB}").stdout


def test_interrupted_v3_update_is_completed_by_a_rerun(v3_host, cli):
    host = v3_host
    rows = host.row_counts()
    assert cli(host, "backup").returncode == 0
    argv = [str(Path(sys.executable).parent / "trigger-maint"), *host.fab_args(),
            "update", "--target", "v3.3.18"]
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
           "FABRIC_TRIGGER_REGISTRY": REGISTRY}
    client = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        proc.wait_for(lambda: "recreating" in states(host), 120, "the update to recreate",
                      interval=0.2)
    finally:
        client.kill()  # the connection is lost in the middle of the recreate
        client.wait(timeout=60)
    # the host's script notices, stops and releases the lock, leaving its marker behind
    proc.wait_for(lambda: host.run("flock -n /run/lock/trigger-maint.lock true",
                                   check=False).returncode == 0, 60, "the script to stop")
    marker = host.run(f"cat {RB}/IN_PROGRESS").stdout.strip()
    assert host.run(f"cat {RB}/{marker}/state").stdout.strip() == "recreating"

    rerun = cli(host, "update", "--target", "v3.3.18", "--json")
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)["update"]
    assert result["recovered"] == {"point": marker, "action": "completed"}
    assert result["changed"] and result["point"] == marker
    assert images(host)["webapp"] == host.run(
        "docker image inspect --format '{{.Id}}' "
        "127.0.0.1:5000/triggerdotdev/trigger.dev:v3.3.18").stdout.strip()
    assert "IN_PROGRESS" not in host.run(f"ls -A {RB}").stdout
    assert host.row_counts() == rows
