"""update through the real CLI on the rig: the backup gate, a failed pull, a good update,
failing ones rolled back as soon as they are known bad (not after health_timeout) to the
exact old images (and, after migrations, the database), and the runbook layout's image
line."""

import json
import time

RB = "/var/backups/trigger/rollback"
SEEDED = ("User", "Project", "RuntimeEnvironment", "TaskRun")
INSPECT = ("{{index .Config.Labels \"com.docker.compose.service\"}} {{.Image}} {{.Id}} "
           "{{.State.StartedAt}}")


def containers(host) -> dict:
    """service -> (image ID, container ID, started at) of what runs now."""
    ids = host.compose("ps", "-a", "-q").stdout.split()
    out = host.run(f"docker inspect --format '{INSPECT}' {' '.join(ids)}").stdout
    return {svc: (image, cid, started) for svc, image, cid, started in
            (line.split() for line in out.splitlines())}


def images(host) -> dict:
    return {svc: image for svc, (image, _, _) in containers(host).items()}


def registry_image(host, repo: str, tag: str) -> str:
    return host.run(f"docker image inspect --format '{{{{.Id}}}}' "
                    f"127.0.0.1:5000/{repo}:{tag}").stdout.strip()


def read(host, path: str) -> str:
    return host.run(f"cat {path}").stdout


def points(host) -> dict[str, str]:
    """The rollback points and their states."""
    out = host.run(f"cd {RB} 2>/dev/null && for p in *; do [ -d \"$p\" ] && "
                   "echo \"$p $(cat $p/state)\"; done || true").stdout
    return dict(line.split() for line in out.splitlines())


def changed_lines(before: str, after: str) -> list[tuple[str, str]]:
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    assert len(old) == len(new)
    return [(a, b) for a, b in zip(old, new, strict=True) if a != b]


def error_line(done) -> str:
    lines = [line for line in done.stderr.splitlines() if line.startswith("trigger-maint: ")]
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_v4_gate_pull_failure_update_and_automatic_rollbacks(v4_host, cli):
    host = v4_host
    env = read(host, "/opt/trigger/.env")
    before, rows = containers(host), host.row_counts()

    refused = cli(host, "update", "--target", "v4.5.12", "--yes")
    assert refused.returncode == 4, refused.stderr
    assert "no verified or inspected backup" in error_line(refused)
    assert containers(host) == before and read(host, "/opt/trigger/.env") == env
    assert points(host) == {}

    assert cli(host, "backup").returncode == 0
    unconfirmed = cli(host, "update", "--target", "v4.5.12")  # no terminal, no --yes
    assert unconfirmed.returncode == 4 and "add --yes" in error_line(unconfirmed)
    assert containers(host) == before and points(host) == {}
    missing = cli(host, "update", "--target", "v4.5.13", "--yes")
    assert missing.returncode == 5, missing.stderr
    assert "pulling the images failed" in error_line(missing)
    assert "nothing was stopped" in error_line(missing)
    assert containers(host) == before  # same containers, never restarted
    assert read(host, "/opt/trigger/.env") == env
    assert list(points(host).values()) == ["rolled-back"]

    done = cli(host, "update", "--target", "v4.5.12", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["changed"], result["from_version"], result["to_version"]) == (
        True, "4.5.10", "4.5.12")
    assert result["point"] and not result["rolled_back"]
    assert result["guard"]["name"].startswith("trigger-db-")
    assert changed_lines(env, read(host, "/opt/trigger/.env")) == [
        ("TRIGGER_IMAGE_TAG=v4.5.10\n", "TRIGGER_IMAGE_TAG=v4.5.12\n")]
    assert host.run("stat -c %a /opt/trigger/.env").stdout.strip() == "600"
    migrated = host.row_counts()
    assert migrated["_prisma_migrations"] == rows["_prisma_migrations"] + 1
    assert {t: migrated[t] for t in SEEDED} == {t: rows[t] for t in SEEDED}
    updated = images(host)
    assert updated["webapp"] == registry_image(host, "triggerdotdev/trigger.dev", "v4.5.12")
    assert updated["webapp"] != before["webapp"][0]
    assert points(host)[result["point"]] == "done"

    assert cli(host, "backup").returncode == 0  # the gate wants the migrated database backed up
    env = read(host, "/opt/trigger/.env")
    started = time.monotonic()
    failed = cli(host, "update", "--target", "v4.5.14", "--yes")  # /healthcheck answers 500
    took = time.monotonic() - started
    assert failed.returncode == 5, failed.stderr
    assert "rolled back: v4.5.12 runs" in error_line(failed)
    assert took < 150, took  # known bad within health_fail_seconds, not health_timeout (300 s)
    assert "last log lines of webapp:" in failed.stdout
    assert "\x1b" not in failed.stdout
    assert images(host) == updated  # the exact image IDs from before
    assert read(host, "/opt/trigger/.env") == env
    assert host.row_counts() == migrated
    assert host.run("ls /var/backups/trigger/transactions/CURRENT", check=False).returncode

    # v4.5.16 migrates the database, then fails: the guard dump taken right before comes back
    failed = cli(host, "update", "--target", "v4.5.16", "--yes", "--json")
    assert failed.returncode == 5, failed.stderr
    doc = json.loads(failed.stdout)
    assert doc["rolled_back"] and doc["db_restored"] and doc["exit_code"] == 5
    assert doc["restored_from"] == doc["guard"]["name"]
    assert doc["safety_backup"].startswith("trigger-db-")  # the failed release's data, kept
    assert host.row_counts() == migrated  # migration count and rows as before
    assert images(host) == updated
    assert read(host, "/opt/trigger/.env") == env


def test_runbook_layout_pins_the_webapp_image_line(runbook_host, cli):
    host = runbook_host
    compose = read(host, "/opt/trigger/docker-compose.yml")
    rows = host.row_counts()
    assert cli(host, "backup").returncode == 0
    done = cli(host, "update", "--target", "v4.5.12", "--yes")
    assert done.returncode == 0, done.stderr
    assert "updated     v4.5.10 -> v4.5.12" in done.stdout
    assert changed_lines(compose, read(host, "/opt/trigger/docker-compose.yml")) == [
        ("    image: 127.0.0.1:5000/triggerdotdev/trigger.dev:v4.5.10\n",
         "    image: 127.0.0.1:5000/triggerdotdev/trigger.dev:v4.5.12\n")]
    assert images(host)["webapp"] == registry_image(host, "triggerdotdev/trigger.dev", "v4.5.12")
    assert host.run("docker inspect --format '{{.State.Health.Status}}' trigger-webapp"
                    ).stdout.strip() == "healthy"
    after = host.row_counts()
    assert after["_prisma_migrations"] == rows["_prisma_migrations"] + 1
    assert {t: after[t] for t in SEEDED} == {t: rows[t] for t in SEEDED}
