"""verify on the rig: a healthy stack passes, right after a full restart too, whatever its
services logged while they started; a new error logged once healthy fails it; a stopped
service, a version that is not the pinned one, a failing health endpoint and a crash loop
each fail it, naming the failure."""

import json

from tests.rig.proc import http_status, wait_for

FAST = {"FABRIC_TRIGGER_OBSERVE_SECONDS": "3"}


def verify(cli, host):
    run = cli(host, "verify", "--json", env=FAST)
    report = json.loads(run.stdout)
    return run, report, {c["name"]: c["state"] for c in report["checks"]}


def healthy(host) -> None:
    """Wait for every container's health check to pass, as a settled stack's would."""
    wait_for(host.all_healthy, 120, "every container healthy", 0.5)


def set_pin(host, tag: str) -> None:
    host.run(f"sed -i 's/^TRIGGER_IMAGE_TAG=.*/TRIGGER_IMAGE_TAG={tag}/' /opt/trigger/.env")


def test_start_up_noise_passes_a_new_error_while_healthy_fails(cli, v4_host):
    host = v4_host
    host.compose("restart")  # every service logs its start-up warnings and errors again
    healthy(host)
    noise = host.run("docker logs $(docker ps -q -f label=com.docker.compose.service=webapp) "
                     "2>&1").stdout + host.run(
        "docker logs $(docker ps -q -f label=com.docker.compose.service=electric) 2>&1").stdout
    assert '"level":"error"' in noise and "[error]" in noise  # the rig is as noisy as reality
    run, report, states = verify(cli, host)
    assert run.returncode == 0, run.stderr
    assert states["logs"] == "ok"

    line = host.log_error("webapp", "Unhandled error in the run engine: relation is locked")
    run, report, states = verify(cli, host)
    assert run.returncode == 1
    assert [n for n, s in states.items() if s != "ok"] == ["logs"]
    assert "webapp: 1 error line since healthy" in run.stderr and "run engine" in run.stderr
    assert line.startswith("{")  # in the service's own format


def test_healthy_then_a_stopped_service_then_a_version_mismatch(cli, v4_host):
    counts = v4_host.row_counts()
    healthy(v4_host)
    run, report, states = verify(cli, v4_host)
    assert run.returncode == 0, run.stderr
    assert report["ok"] is True
    assert set(states.values()) == {"ok"} and len(states) == 7
    assert report["intended"] == report["running"] == "4.5.10"

    v4_host.compose("stop", "redis")
    run, report, states = verify(cli, v4_host)
    assert run.returncode == 1
    assert states["services"] == states["redis"] == "fail"
    assert states["database"] == states["version"] == "ok"
    assert "verify failed: services (redis: exited" in run.stderr
    errors = [line for line in run.stderr.splitlines() if line.startswith("trigger-maint:")]
    assert len(errors) == 1 and "redis (PING failed" in errors[0]  # one line, every failure

    v4_host.compose("start", "redis")
    healthy(v4_host)
    set_pin(v4_host, "v4.5.11")  # pinned, not yet applied: the running version is not it
    run, report, states = verify(cli, v4_host)
    assert run.returncode == 1, run.stdout
    assert [n for n, s in states.items() if s != "ok"] == ["version"]
    assert "version (running v4.5.10, intended v4.5.11)" in run.stderr
    assert v4_host.row_counts() == counts


def test_failing_health_endpoint_then_a_crash_loop(cli, v4_host):
    counts = v4_host.row_counts()
    set_pin(v4_host, "v4.5.14")  # answers /healthcheck with 500
    v4_host.compose("up", "-d", "--quiet-pull", "webapp")
    url = f"http://{v4_host.address}:8030/healthcheck"
    wait_for(lambda: http_status(url) == 500, 120, f"{url} to answer 500")
    run, report, states = verify(cli, v4_host)
    assert run.returncode == 1
    assert states["healthcheck"] == "fail" and states["version"] == "ok"
    assert "HTTP 500 (ERROR)" in run.stderr

    set_pin(v4_host, "v4.5.15")  # exits at start: a crash loop under restart: unless-stopped
    v4_host.compose("up", "-d", "--quiet-pull", "--no-deps", "webapp")
    run, report, states = verify(cli, v4_host)
    assert run.returncode == 1
    assert states["restarts"] == states["services"] == states["healthcheck"] == "fail"
    assert "ENCRYPTION_KEY must be 32 bytes" in run.stderr  # why it crashed
    assert states["database"] == states["redis"] == "ok"
    assert v4_host.row_counts()["TaskRun"] == counts["TaskRun"]
