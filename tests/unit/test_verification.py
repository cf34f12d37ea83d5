"""verify: the post-change checks from what the verify script measured, and the scripts of
verify and reboot."""

import json
import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest

from trigger_maint.config import settings
from trigger_maint.inventory import containers
from trigger_maint.layout import candidates
from trigger_maint.logs import CANDIDATE_PATTERN
from trigger_maint.output import plain
from trigger_maint.scripts.base import install_inputs, new_marker
from trigger_maint.scripts.reboot import BOOT_ID, REBOOT, BootInputs, RebootInputs
from trigger_maint.scripts.verify import VERIFY, VerifyInputs, verify_facts
from trigger_maint.verification import (
    changed_at,
    describe,
    intended_version,
    pinned_version,
    restarts_check,
    services_check,
    settling,
    verify_report,
)

from .builders import NOW, WEBAPP_IMAGE, inspect, install_result, installation, stack, webapp
from .shell import assert_clean_bash

INPUTS = VerifyInputs(install_inputs(settings({})), 10)


def result(before=None, after=None, pinned="v4.5.10", health="OK\n200", db="12\n",
           redis="PONG", logs=None, pinned_image=WEBAPP_IMAGE, **install):
    """What the verify script reports: the installation as first sampled, the probes, the
    containers after the window and their candidate log lines."""
    raw = install_result(stack() if before is None else before, pinned_tag=pinned, **install)
    raw["config"]["services"].setdefault(
        "webapp", {"image": "triggerdotdev/trigger.dev:${TRIGGER_IMAGE_TAG}"})
    return {
        **raw, "now": int(NOW.timestamp()), "pinned_image_id": pinned_image,
        "pinned_ref": f"127.0.0.1:5000/triggerdotdev/trigger.dev:{pinned}",
        "health": {"output": health, "exit": 0 if health.endswith(("200", "500")) else 7},
        "database": {"output": db, "exit": 0 if db.strip().isdigit() else 1},
        "redis": {"output": redis, "exit": 0 if redis == "PONG" else 1},
        "containers_after": stack() if after is None else after,
        "logs": logs or [],
    }


def report_for(raw, update=None, observe=10):
    facts = verify_facts(raw, INPUTS)
    return verify_report("h", facts, intended_version(update, facts.installation), observe,
                         changed_at(update))


def states(report):
    return {c.name: c.state for c in report.checks}


def test_the_scripts_result_becomes_verify_facts():
    facts = verify_facts(result(), INPUTS)
    assert facts.now == NOW and facts.installation.running == "4.5.10"
    assert facts.installation.layout is INPUTS.install.layouts[0]
    without_clock = verify_facts({**result(), "now": None}, INPUTS)
    assert without_clock.now.tzinfo is UTC


def test_a_healthy_stack_passes_every_check():
    report = report_for(result())
    assert report.ok, describe(report)
    assert set(states(report)) == {"services", "restarts", "healthcheck", "database", "redis",
                                   "logs", "version"}
    assert report.intended == "4.5.10" and report.running == "4.5.10"
    assert describe(report).endswith("verify: all checks passed")


def test_a_stopped_service_fails_services_and_names_its_last_error():
    after = stack()
    after[1] = inspect("postgres", 2, state="exited", health="unhealthy", exit_code=1)
    line = ("2026-12-01T04:59:00.000000000Z 2026-12-01 04:59:00.000 UTC [1] FATAL:  data "
            'directory "/var/lib/postgresql/data" has invalid permissions')
    report = report_for(result(after=after, db='service "postgres" is not running',
                               logs=[{"id": "2" * 64, "lines": [line]}]))
    assert not report.ok
    assert states(report)["services"] == "fail"
    assert report.failures[0].detail == (
        'postgres: exited (1) (last error: 2026-12-01 04:59:00.000 UTC [1] FATAL:  data '
        'directory "/var/lib/postgresql/data" has invalid permissions)')
    assert states(report)["database"] == "fail"
    assert "verify FAILED: services, database" in describe(report)


def test_a_one_shot_service_that_completed_is_fine():
    after = [*stack(), inspect("s2-init", 6, state="exited", health="", policy="no")]
    check = services_check(("electric", "postgres", "redis", "s2-init", "supervisor", "webapp"),
                           containers(after))
    assert check.ok, check.detail
    restarted = [*stack(), inspect("s2-init", 6, state="exited", health="", exit_code=0)]
    assert not services_check(("s2-init",), containers(restarted)).ok  # unless-stopped


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
                               logs=[{"id": "1" * 64,
                                      "lines": [f"2026-12-01T04:59:58.5Z {line}"]}]))
    got = states(report)
    assert got["restarts"] == got["services"] == got["healthcheck"] == got["logs"] == "fail"
    logs = next(c for c in report.checks if c.name == "logs")
    assert logs.detail == f"webapp: 1 error line since healthy, last: {line}"
    health = next(c for c in report.checks if c.name == "healthcheck")
    assert "no answer (curl: (7) Failed to connect" in health.detail
    assert "webapp: restarting (last error: Error: Invalid environment" in report.checks[0].detail


def test_lines_before_the_service_became_healthy_or_known_noise_do_not_count():
    noise = "2026-12-01T03:00:30.000000000Z 2026-12-01 03:00:30.123 UTC [51] FATAL:  the " \
            "database system is starting up"
    early = "2026-12-01T03:00:40.000000000Z Error: P1001: Can't reach database server"
    late_noise = "2026-12-01T04:30:00.000000000Z 2026-12-01 04:30:00.123 UTC [60] FATAL:  the " \
                 "database system is starting up"
    report = report_for(result(logs=[{"id": "2" * 64, "lines": [noise, late_noise]},
                                     {"id": "1" * 64, "lines": [early]}]))
    assert states(report)["logs"] == "ok", describe(report)


def test_after_a_change_only_lines_since_the_change_count():
    line = "2026-12-01T04:00:10.000000000Z Error: boom"
    bad = report_for(result(logs=[{"id": "1" * 64, "lines": [line]}]))
    assert states(bad)["logs"] == "fail"
    update = SimpleNamespace(changed=True, point="20261201-043000", from_version="4.5.9",
                             to_version="4.5.10", rolled_back=False)
    assert states(report_for(result(logs=[{"id": "1" * 64, "lines": [line]}]), update))[
        "logs"] == "ok"


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
    assert report.failures[0].detail == "running v4.5.10, intended v4.5.12"
    update = SimpleNamespace(changed=True, from_version="4.5.9", to_version="4.5.12",
                             rolled_back=False, point="20261201-040020")
    assert report_for(result(), update=update).failures[0].name == "version"
    back = SimpleNamespace(changed=True, from_version="4.5.10", to_version="4.5.12",
                           rolled_back=True, point="20261201-040020")
    assert report_for(result(pinned="v4.5.12"), update=back).ok
    unchanged = SimpleNamespace(changed=False, from_version="4.5.10", to_version="4.5.10")
    assert report_for(result(pinned="v4.5.12"), update=unchanged).intended == "4.5.12"


def test_the_pin_of_an_image_layout_is_the_webapps_image_tag():
    runbook = installation([webapp(tag="v4.5.11")], layout="runbook", pinned_tag="")
    assert pinned_version(runbook) == "v4.5.11"
    v4 = installation(pinned_tag="v4.5.12")
    assert pinned_version(v4) == "v4.5.12"


def test_a_floating_pin_compares_image_ids():
    assert report_for(result(pinned="v4")).ok
    report = report_for(result(pinned="latest", pinned_image="sha256:" + "ff" * 32))
    assert report.failures[0].name == "version"
    assert "'latest' names sha256:ffffffffffff" in report.failures[0].detail


def test_no_pin_at_all_is_unknown_and_fails():
    raw = result(pinned="")
    raw["config"]["services"]["webapp"]["image"] = "127.0.0.1:5000/triggerdotdev/trigger.dev"
    report = report_for(raw)
    assert report.failures[0].state == "unknown" and not report.ok


def test_changed_at_is_when_the_updates_rollback_point_was_recorded():
    when = datetime(2026, 1, 1, 10, 0, 5, tzinfo=UTC)
    assert changed_at(None) is None
    assert changed_at(SimpleNamespace(changed=True, point="20260101-100005")) == when
    assert changed_at(SimpleNamespace(changed=True, point="20260101-100005-2")) == when
    assert changed_at(SimpleNamespace(changed=False, point="20260101-100005")) is None
    assert changed_at(SimpleNamespace(changed=True, point="")) is None


def test_settling_waits_for_starting_and_restarting_containers():
    assert settling(containers(stack())) == []
    assert settling(containers([webapp(health="starting"), inspect("redis", 3, state="exited"),
                                inspect("postgres", 2, state="restarting")])) \
        == ["trigger-postgres-1", "trigger-webapp-1"]


@pytest.mark.parametrize("layout", ["auto", "v4", "runbook"])
def test_scripts_render_clean(layout):
    install = install_inputs(settings({"layout": layout}))
    script = VERIFY.render(VerifyInputs(install, 10), new_marker())
    assert_clean_bash(script)
    assert "TM_OBSERVE=10\n" in script
    assert f"grep -aiE -- '{CANDIDATE_PATTERN}'" in script and "tail -n 200" in script
    assert_clean_bash(BOOT_ID.render(BootInputs(install), new_marker()))
    forced = REBOOT.render(RebootInputs("0f3c", True), new_marker())
    asked = REBOOT.render(RebootInputs("0f3c", False), new_marker())
    assert_clean_bash(forced)
    assert_clean_bash(asked)
    assert "reboot-required" in asked and "reboot-required" not in forced
    assert re.search(r"setsid nohup bash -c 'sleep 1; exec reboot'.*9>&- &", asked)
    assert "TM_BOOT_ID\" = 0f3c ]" in asked


def test_a_configured_layout_is_the_only_candidate():
    assert [layout.name for layout in candidates(settings({"layout": "runbook"}))] == ["runbook"]


def test_report_is_json_ready():
    data = plain(report_for(result()))
    assert json.loads(json.dumps(data))["checks"][0]["name"] == "services"
