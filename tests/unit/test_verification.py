import json
import re
import subprocess
from datetime import UTC, datetime
from types import SimpleNamespace

from trigger_maint.config import settings
from trigger_maint.installation import from_result
from trigger_maint.inventory import containers
from trigger_maint.layout import script_context
from trigger_maint.output import plain
from trigger_maint.render import render
from trigger_maint.verification import (
    BENIGN_PATTERN,
    ERROR_PATTERN,
    changed_at,
    describe,
    intended_version,
    restarts_check,
    services_check,
    settling,
    verify_report,
)

from .shell import assert_clean_bash

WEBAPP_IMAGE = "sha256:" + "1b" * 32
PG_IMAGE = "sha256:" + "2c" * 32


def inspect(service, n, state="running", health="healthy", restarts=0, exit_code=0,
            policy="unless-stopped", image=PG_IMAGE, ref="postgres:14", env=()):
    """One `docker inspect` object as Docker 27 prints it (the fields the tool reads)."""
    return {
        "Id": f"{n:x}" * 64,
        "Created": "2026-01-01T10:00:00.000000001Z",
        "Name": f"/trigger-{service}-1",
        "RestartCount": restarts,
        "Image": image,
        "State": {"Status": state, "Running": state == "running", "Restarting": False,
                  "ExitCode": exit_code, "StartedAt": "2026-01-01T10:00:01.123456789Z",
                  "FinishedAt": "0001-01-01T00:00:00Z",
                  **({"Health": {"Status": health, "FailingStreak": 0}} if health else {})},
        "HostConfig": {"RestartPolicy": {"Name": policy, "MaximumRetryCount": 0}},
        "Config": {"Image": ref, "Env": list(env),
                   "Labels": {"com.docker.compose.project": "trigger",
                              "com.docker.compose.service": service}},
    }


def webapp(n=1, tag="v4.5.11", **kwargs):
    return inspect("webapp", n, image=WEBAPP_IMAGE,
                   ref=f"127.0.0.1:5000/triggerdotdev/trigger.dev:{tag}",
                   env=[f"BUILD_APP_VERSION={tag}", "NODE_ENV=production"], **kwargs)


def stack(**webapp_kwargs):
    return [webapp(**webapp_kwargs), inspect("postgres", 2), inspect("redis", 3),
            inspect("electric", 4, health="")]


def result(before=None, after=None, pinned="v4.5.11", health="OK\n200", db="12\n",
           redis="PONG", logs=None, pinned_image=WEBAPP_IMAGE):
    before = stack() if before is None else before
    services = {c["Config"]["Labels"]["com.docker.compose.service"]: {"image": c["Config"]["Image"]}
                for c in before}
    services.setdefault("webapp", {"image": "triggerdotdev/trigger.dev:${TRIGGER_IMAGE_TAG}"})
    hook = next((c for c in before if "webapp" in c["Name"]), None)
    return {
        "layout": "v4", "path": "/opt/trigger", "webapp_url": "http://127.0.0.1:8030/healthcheck",
        "config": {"name": "trigger", "services": services},
        "containers": before,
        **({"webapp_container": hook, "webapp_image": {"Id": WEBAPP_IMAGE}} if hook else {}),
        "core_package": "", "pinned_tag": pinned, "pinned_image_id": pinned_image,
        "health": {"output": health, "exit": 0 if health.endswith(("200", "500")) else 7},
        "database": {"output": db, "exit": 0 if db.strip().isdigit() else 1},
        "redis": {"output": redis, "exit": 0 if redis == "PONG" else 1},
        "containers_after": stack() if after is None else after,
        "logs": logs or [],
    }


def report_for(raw, update=None, observe=10):
    s = settings({})
    inst = from_result(raw, s)
    return verify_report("h", raw, inst, intended_version(update, inst), observe)


def states(report):
    return {c.name: c.state for c in report.checks}


def test_a_healthy_stack_passes_every_check():
    report = report_for(result())
    assert report.ok, describe(report)
    assert set(states(report)) == {"services", "restarts", "healthcheck", "database", "redis",
                                   "logs", "version"}
    assert report.intended == "4.5.11" and report.running == "4.5.11"
    assert describe(report).endswith("verify: all checks passed")


def test_a_stopped_service_fails_services():
    after = stack()
    after[2] = inspect("redis", 3, state="exited", health="unhealthy", exit_code=0)
    report = report_for(result(after=after, redis="service \"redis\" is not running"))
    assert not report.ok
    assert states(report)["services"] == "fail"
    assert "redis: exited (0)" in report.failures[0].detail
    assert states(report)["redis"] == "fail"
    assert "verify FAILED: services, redis" in describe(report)


def test_a_one_shot_service_that_completed_is_fine():
    after = [*stack(), inspect("s2-init", 5, state="exited", health="", policy="no")]
    check = services_check(("electric", "postgres", "redis", "s2-init", "webapp"),
                           containers(after))
    assert check.ok, check.detail


def test_a_missing_or_unhealthy_service_fails():
    check = services_check(("postgres", "webapp", "supervisor"),
                           containers([webapp(health="unhealthy"), inspect("postgres", 2)]))
    assert check.detail == "webapp: unhealthy; supervisor: no container"


def test_a_crash_loop_fails_restarts_services_and_logs():
    crashing = dict(state="restarting", health="", exit_code=1, tag="v4.5.15")
    before = stack(restarts=3, **crashing)
    after = stack(restarts=5, **crashing)
    line = "Error: Invalid environment variables: ENCRYPTION_KEY must be 32 bytes"
    report = report_for(result(before=before, after=after, health="curl: (7) Failed to connect"
                               " to 127.0.0.1 port 8030\n000", pinned="v4.5.15",
                               logs=[{"id": "1" * 64, "since": 0, "lines": [line]}]))
    got = states(report)
    assert got["restarts"] == got["services"] == got["healthcheck"] == got["logs"] == "fail"
    assert "webapp: error" not in report.checks[-2].detail
    assert f"webapp: 1 error lines, last: {line}" == report.checks[-2].detail
    assert "no answer (curl: (7) Failed to connect" in report.checks[2].detail


def test_restart_counts_rising_or_a_new_container_fail():
    before, after = containers(stack()), containers(stack())
    assert restarts_check(before, after, 10).ok
    risen = containers([webapp(restarts=2), *stack()[1:]])
    assert restarts_check(before, risen, 10).detail == "webapp: restarted 2 times in 10 s"
    replaced = containers([webapp(n=9), *stack()[1:]])
    assert "webapp: new container" in restarts_check(before, replaced, 10).detail


def test_failing_health_endpoint():
    report = report_for(result(health="ERROR\n500"))
    assert [c.name for c in report.failures] == ["healthcheck"]
    assert report.failures[0].detail == "http://127.0.0.1:8030/healthcheck: HTTP 500 (ERROR)"


def test_database_unreadable():
    report = report_for(result(db='ERROR:  relation "_prisma_migrations" does not exist\n'
                                  'LINE 1: SELECT count(*) FROM "_prisma_migrations"'))
    assert [c.name for c in report.failures] == ["database"]


def test_version_mismatch_against_the_pin_and_against_the_update():
    report = report_for(result(pinned="v4.5.12"))
    assert report.failures[0].detail == "running v4.5.11, intended v4.5.12"
    update = SimpleNamespace(changed=True, from_version="4.5.10", to_version="4.5.12",
                             rolled_back=False)
    assert report_for(result(), update=update).failures[0].name == "version"
    back = SimpleNamespace(changed=True, from_version="4.5.11", to_version="4.5.12",
                           rolled_back=True)
    assert report_for(result(pinned="v4.5.12"), update=back).ok
    unchanged = SimpleNamespace(changed=False, from_version="4.5.11", to_version="4.5.11")
    assert report_for(result(pinned="v4.5.12"), update=unchanged).intended == "4.5.12"


def test_a_floating_pin_compares_image_ids():
    assert report_for(result(pinned="v4")).ok
    report = report_for(result(pinned="latest", pinned_image="sha256:" + "ff" * 32))
    assert report.failures[0].name == "version"
    assert "'latest' names sha256:ffffffffffff" in report.failures[0].detail


def test_no_pin_at_all_is_unknown_and_fails():
    raw = result(pinned="")
    raw["config"]["services"]["webapp"]["image"] = "127.0.0.1:5000/triggerdotdev/trigger.dev"
    report = report_for(raw)
    assert report.failures[0].state == "unknown"


def test_changed_at_is_when_the_updates_rollback_point_was_recorded():
    when = datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC)
    assert changed_at(None) == 0
    assert changed_at(SimpleNamespace(changed=True, point="20260101-100005")) \
        == int(when.timestamp())
    assert changed_at(SimpleNamespace(changed=True, point="20260101-100005-2")) \
        == int(when.timestamp())
    assert changed_at(SimpleNamespace(changed=False, point="20260101-100005")) == 0
    assert changed_at(SimpleNamespace(changed=True, point="")) == 0


def test_settling_waits_for_starting_and_restarting_containers():
    assert settling(containers(stack())) == []
    assert settling(containers([webapp(health="starting"), inspect("redis", 3, state="exited"),
                                inspect("postgres", 2, state="restarting")])) \
        == ["trigger-postgres-1", "trigger-webapp-1"]


def grep(pattern, lines, invert=False):
    found = subprocess.run(["grep", "-aE" + ("v" if invert else ""), pattern],
                           input="\n".join(lines), capture_output=True, text=True)
    return found.stdout.splitlines()


def test_error_pattern_matches_error_lines_only():
    lines = ["Error: P1001: Can't reach database server", "2026-01-01 FATAL:  role x",
             '{"level":"error","msg":"boom"}', "panic: runtime error",
             "TypeError: Cannot read properties of undefined", "ERROR", "fatal",
             # stack frames, words that merely contain "error", configuration names
             "    at Object.<anonymous> (/app/server.js:1:1)",
             '    self.reply(200 if ok else 500, "OK" if ok else "ERROR")',
             "0 errors found", "ERROR_REPORTING=off", "terror", "Errored", "",
             "No pending migrations to apply."]
    assert grep(ERROR_PATTERN, lines) == lines[:7]


def test_benign_lines_are_dropped():
    lines = ["2026-12-01 05:17:14.791 UTC [51] FATAL:  the database system is starting up",
             "BrokenPipeError: [Errno 32] Broken pipe", "Error: read ECONNRESET",
             "2026-12-01 05:20:51.266 UTC [568] FATAL:  connection to client lost",
             "2026-12-01 05:38:58.131 UTC [60] FATAL:  canceling authentication due to timeout",
             "2026-12-01 FATAL:  password authentication failed for user \"postgres\""]
    assert grep(BENIGN_PATTERN, grep(ERROR_PATTERN, lines), invert=True) == lines[5:]


def test_scripts_render_clean():
    for layout in ("auto", "v4", "runbook"):
        ctx = script_context(settings({"layout": layout}))
        script = render("verify", error_pattern=ERROR_PATTERN, benign_pattern=BENIGN_PATTERN,
                        changed_at=1767261600, log_margin=5, **ctx)
        assert_clean_bash(script)
        assert "TM_CHANGED_AT=1767261600" in script
        assert_clean_bash(render("boot-id", **ctx))
        forced = render("reboot", boot_id="0f3c", force=True, **ctx)
        asked = render("reboot", boot_id="0f3c", force=False, **ctx)
        assert_clean_bash(forced)
        assert_clean_bash(asked)
        assert "reboot-required" in asked and "reboot-required" not in forced
        assert re.search(r"setsid nohup bash -c 'sleep 1; exec reboot'.*9>&- &", asked)


def test_report_is_json_ready():
    data = plain(report_for(result()))
    assert json.loads(json.dumps(data))["checks"][0]["name"] == "services"
