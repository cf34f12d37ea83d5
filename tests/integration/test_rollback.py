"""rollback through the real CLI on the rig: an update through a floating tag that moved is
undone to the old image ID (and database) even after `docker image prune -af`; a v3 update
whose client dies is finished by the host itself, and a rerun reports it."""

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.rig import proc, registry
from tests.rig.config import KNOWN_HOSTS, REGISTRY

TX = "/var/backups/trigger/transactions"
TRIGGER_REPOS = ("triggerdotdev/trigger.dev", "triggerdotdev/supervisor")
INSPECT = "{{index .Config.Labels \"com.docker.compose.service\"}} {{.Image}}"


def images(host) -> dict:
    """service -> image ID of what runs now."""
    ids = host.compose("ps", "-a", "-q").stdout.split()
    out = host.run(f"docker inspect --format '{INSPECT}' {' '.join(ids)}").stdout
    return dict(line.split() for line in out.splitlines())


def image_present(host, image_id: str) -> bool:
    return host.run(f"docker image inspect {image_id}", check=False).returncode == 0


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
        done = cli(host, "update", "--yes", "--json")
        assert done.returncode == 0, done.stderr
        update = json.loads(done.stdout)
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
        assert newest["name"] == update["point"]
        assert {i["service"]: i["present"] for i in newest["images"]}["webapp"] is False
        refused = cli(host, "rollback")  # the database must be restored: needs --yes
        assert refused.returncode == 4 and "add --yes" in refused.stderr
        assert images(host) == new

        back = cli(host, "rollback", "--yes", "--json")
        assert back.returncode == 0, back.stderr
        result = json.loads(back.stdout)
        assert result["point"] == update["point"] and result["db_restored"]
        assert result["version"] == "4.5.11"
    finally:
        registry.reset_floating_tags()
    assert images(host) == old  # the old image IDs, not whatever v4 points at
    assert host.row_counts() == rows
    assert host.run("cat /opt/trigger/.env").stdout == floating_env


def test_v3_update_whose_client_dies_is_finished_by_the_host(v3_host, cli):
    host = v3_host
    rows = host.row_counts()
    assert cli(host, "backup").returncode == 0
    argv = [str(Path(sys.executable).parent / "trigger-maint"), *host.fab_args(),
            "update", "--target", "v3.3.18", "--yes"]
    env = {**os.environ, "FABRIC_TRIGGER_KNOWN_HOSTS": str(KNOWN_HOSTS),
           "FABRIC_TRIGGER_REGISTRY": REGISTRY}
    client = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, text=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for line in client.stderr:
            if "recreating the services" in line:
                break
    finally:
        client.kill()  # the connection is lost in the middle of the recreate
        client.wait(timeout=60)
    proc.wait_for(lambda: host.run(f"cat {TX}/CURRENT", check=False).returncode, 300,
                  "the host to finish the update", interval=0.5)
    assert host.run("flock -n /run/lock/trigger-maint.lock true", check=False).returncode == 0
    assert images(host)["webapp"] == host.run(
        "docker image inspect --format '{{.Id}}' "
        "127.0.0.1:5000/triggerdotdev/trigger.dev:v3.3.18").stdout.strip()

    rerun = cli(host, "update", "--target", "v3.3.18", "--yes", "--json")
    assert rerun.returncode == 0, rerun.stderr
    result = json.loads(rerun.stdout)
    assert result["reported"] and result["changed"] and result["to_version"] == "3.3.18"
    assert host.row_counts() == rows
