"""Status checks from what the status script measured (built by hand here; recorded rig
output comes later), the parsers they use, and the script's parse of its own result."""

import json
import re
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from trigger_maint.backups import FileEntry, Folder, in_folder
from trigger_maint.checks import (
    DEFAULT_SECRETS,
    FAIL,
    NAMES,
    OK,
    UNKNOWN,
    WARN,
    Check,
    StatusReport,
    backup_check,
    certbot_checks,
    chosen_folder,
    container_check,
    container_checks,
    default_secrets_check,
    disk_checks,
    docker_disk_check,
    evaluate,
    live_certificate_check,
    memory_checks,
    parse_certbot,
    parse_df_line,
    parse_docker_created,
    parse_meminfo,
    parse_openssl_date,
    parse_size,
    postgres_checks,
    reboot_check,
    resources_check,
    run_containers_check,
    tls_target,
    transaction_check,
    version_check,
    webapp_http_check,
)
from trigger_maint.config import settings
from trigger_maint.hostpaths import HostPaths
from trigger_maint.inventory import container
from trigger_maint.scripts.base import new_marker, parse_result
from trigger_maint.scripts.status import STATUS, status_facts, status_inputs
from trigger_maint.transactions import TxSummary

from . import builders
from .builders import (
    BACKUP_DIR,
    CERTBOT,
    CERTBOT_NONE,
    CERTIFICATE,
    DF_BACKUPS,
    DF_ROOT,
    LIVE,
    MEMINFO,
    NOW,
    backup_folder,
    healthy,
    inspect,
    installation,
    stack,
    status_raw,
    webapp,
)
from .shell import assert_clean_bash

S = settings({})

# openssl s_client against a closed port (OpenSSL 3.0).
REFUSED = ("4017DFA3E67F0000:error:8000006F:system library:BIO_connect:Connection refused:"
           "../crypto/bio/bio_sock2.c:117:calling connect()\n"
           "4017DFA3E67F0000:error:10000067:BIO routines:BIO_connect:connect error:"
           "../crypto/bio/bio_sock2.c:119:\nconnect:errno=111\n")
DOMAIN = settings({"domain": "trigger.example.com"})


def states(checks: list[Check]) -> dict[str, str]:
    return {c.label: c.state for c in checks}


def not_ok(checks: list[Check]) -> dict[str, str]:
    return {c.label: c.state for c in checks if c.state != OK}


def by_label(checks: list[Check]) -> dict[str, Check]:
    return {c.label: c for c in checks}


# ---- parsers -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("255.9MB", 255_900_000), ("0B", 0), ("63B", 63), ("48.27MB", 48_270_000),
    ("9.184MiB", int(9.184 * 1024**2)), ("23.54GiB", int(23.54 * 1024**3)), ("12kB", 12_000),
    ("1.5TB", 1_500_000_000_000), ("--", None), ("", None), (None, None),
])
def test_docker_sizes(text, expected):
    assert parse_size(text) == expected


def test_df_lines():
    fs = parse_df_line("/dev/vda       270553174016 29821272064 79123021824      28% /var/backups")
    assert (fs.device, fs.size, fs.used, fs.available, fs.mount) == (
        "/dev/vda", 270553174016, 29821272064, 79123021824, "/var/backups")
    assert fs.percent == 28
    full = parse_df_line("rig-backups      524288 520192      4096     100% /var/backups/trigger")
    assert full.percent == 100 and full.mount == "/var/backups/trigger"
    spaced = parse_df_line("//nas/share 1000 500 500 50% /mnt/my backups")
    assert spaced.mount == "/mnt/my backups" and spaced.percent == 50
    assert parse_df_line("") is None and parse_df_line(None) is None
    assert parse_df_line("df: /nope: No such file or directory") is None


def test_meminfo_in_bytes():
    values = parse_meminfo(MEMINFO)
    assert values["MemTotal"] == 24684084 * 1024
    assert values["SwapTotal"] == 0
    assert values["HugePages_Total"] == 0  # a count, not kB: kept as is
    assert parse_meminfo(None) == {}


def test_certbot_output():
    certs, broken = parse_certbot(CERTBOT)
    assert [c.name for c in certs] == ["old.example.com", "soon.example.com",
                                       "trigger.example.com"]
    assert certs[0].validity == "INVALID: EXPIRED"
    assert certs[1].expiry == datetime(2026, 12, 6, 4, 58, 55, tzinfo=UTC)
    assert certs[2].domains == ("trigger.example.com", "www.trigger.example.com")
    assert broken == ["/etc/letsencrypt/renewal/broken.example.com.conf"]
    assert parse_certbot(CERTBOT_NONE) == ([], [])


def test_openssl_and_docker_dates():
    assert parse_openssl_date("notAfter=Dec  6 04:58:55 2026 GMT") == datetime(
        2026, 12, 6, 4, 58, 55, tzinfo=UTC)
    assert parse_openssl_date("") is None
    assert parse_docker_created("2026-12-01 05:15:23 +0000 UTC") == datetime(
        2026, 12, 1, 5, 15, 23, tzinfo=UTC)
    assert parse_docker_created("") is None


@pytest.mark.parametrize("domain, target", [
    ("trigger.example.com", ("trigger.example.com", 443)),
    ("trigger.example.com:8443", ("trigger.example.com", 8443)),
    (" trigger.example.com ", ("trigger.example.com", 443)),
    ("", ("", 443)),
])
def test_tls_target(domain, target):
    assert tls_target(domain) == target


# ---- whole hosts, as the status script measures them ------------------------------------

def test_healthy_v4_is_all_ok_and_every_check_is_named():
    checks = evaluate(healthy(), DOMAIN)
    assert not_ok(checks) == {}
    assert {c.name for c in checks} == set(NAMES)
    assert {"containers webapp", "containers electric", "webapp /healthcheck", "disk /",
            "disk /var/backups", "certificate trigger.example.com", "memory", "swap"} \
        <= set(states(checks))
    assert by_label(checks)["version"].value == "v4.5.10"
    assert by_label(checks)["version"].data == {"running": "4.5.10", "latest": None,
                                                "update_available": None}


def test_warnings_on_v4():
    soon = {**LIVE, "certificate": CERTIFICATE.replace("Jan 30 04:58:55 2027",
                                                       "Dec  5 04:58:55 2026")}
    facts = healthy(tls=soon, certbot={"rc": 0, "out": CERTBOT.split("  Certificate Name: "
                                                                     "trigger")[0], "err": ""},
                    reboot={"required": True, "source": "/var/run/reboot-required",
                            "packages": ["libc6", "linux-image-6.1.0-28-amd64"]},
                    run_containers={"prefix": "runner-", "count": 3,
                                    "oldest_created": "2026-12-01 04:00:00 +0000 UTC"})
    checks = evaluate(facts, settings({"domain": "trigger.example.com",
                                       "run_containers_warn": 3}))
    assert not_ok(checks) == {
        "certificate trigger.example.com": WARN,
        "certificate old.example.com (certbot)": FAIL,
        "certificate soon.example.com (certbot)": WARN,
        "reboot": WARN,
        "run_containers": WARN,
    }
    found = by_label(checks)
    assert found["reboot"].detail == "asked for by libc6, linux-image-6.1.0-28-amd64"
    assert found["certificate trigger.example.com"].value.endswith("(3 days)")
    assert found["run_containers"].value == "3, oldest 1 h"
    # the same host with the default threshold: three fresh exited runners are fine
    assert states(evaluate(facts, DOMAIN))["run_containers"] == OK


def test_failures_on_v3():
    v3 = [inspect("webapp", 1, health="", ref="ghcr.io/triggerdotdev/trigger.dev:v3"),
          inspect("postgres", 2), inspect("redis", 3, health=""),
          inspect("coordinator", 4, state="exited", health="", exit_code=0),
          inspect("docker-provider", 5, health="")]
    expired = {**LIVE, "verify": "10 (certificate has expired)",
               "certificate": CERTIFICATE.replace("Jan 30 04:58:55 2027",
                                                  "Nov 29 04:58:55 2026")}
    facts = builders.status_facts(
        raw=status_raw(
            tls=expired, certbot={"rc": 0, "out": CERTBOT.split("  Certificate Name: soon")[0],
                                  "err": ""},
            disks={"root": {"path": "/", "df": DF_ROOT},
                   "backups0": {"path": BACKUP_DIR, "df": "rig-backups 524288 520192 4096 "
                                                         "100% /var/backups/trigger"}},
            run_containers={"prefix": "task-run", "count": 0, "oldest_created": ""},
            default_secrets=["SESSION_SECRET", "CLICKHOUSE_PASSWORD"]),
        folders=(backup_folder(50),), containers=v3, layout="v3",
        tx=TxSummary(current="20261130-101010-update", running=False,
                     newest="20261130-101010-update", kind="update"),
        core_package=json.dumps({"name": "@trigger.dev/core", "version": "3.3.17"}))
    checks = evaluate(facts, DOMAIN)
    assert not_ok(checks) == {
        "containers coordinator": FAIL,
        "disk /var/backups/trigger": FAIL,
        "certificate trigger.example.com": FAIL,
        "certificate old.example.com (certbot)": FAIL,
        "backup": FAIL,
        "transaction": FAIL,
        "secrets": FAIL,
    }
    found = by_label(checks)
    assert found["secrets"].value == "SESSION_SECRET, CLICKHOUSE_PASSWORD"
    assert found["secrets"].data == {"default_keys": ["SESSION_SECRET", "CLICKHOUSE_PASSWORD"]}
    assert found["backup"].detail.startswith("older than 26 h; ")
    assert found["transaction"].value == "update 20261130-101010-update cut off"
    assert found["run_containers"].detail == "exited, prefix task-run"
    assert found["version"].value == "v3.3.17" and "package.json" in found["version"].detail


def test_crash_loop_on_v4():
    looping = stack(state="restarting", health="", restarts=6, exit_code=1)
    facts = builders.status_facts(raw=status_raw(webapp_http="000", postgres=""),
                                  containers=looping)
    found = by_label(evaluate(facts, S))
    assert found["containers webapp"].state == FAIL
    assert found["containers webapp"].value == "restarting, 6 restarts"
    assert found["webapp /healthcheck"].value == "no answer"
    assert found["backup"].value == "none"
    # postgres was still starting: what psql could not answer is unknown, not ok
    assert found["database"].state == UNKNOWN
    assert found["replication_slots"].state == UNKNOWN


def test_unhealthy_webapp_on_the_runbook_layout():
    runbook = [inspect("webapp", 1, health="unhealthy",
                       ref="127.0.0.1:5000/triggerdotdev/trigger.dev:v4.5.10",
                       env=["BUILD_APP_VERSION=v4.5.10"]),
               inspect("postgres", 2), inspect("redis", 3, health="")]
    facts = builders.status_facts(raw=status_raw(webapp_http="500"), containers=runbook,
                                  layout="runbook",
                                  webapp_url="http://127.0.0.1:3030/healthcheck")
    checks = evaluate(facts, S)
    assert not_ok(checks) == {"containers webapp": FAIL, "webapp /healthcheck": FAIL,
                              "backup": FAIL}
    found = by_label(checks)
    assert found["containers webapp"].value.startswith("running, unhealthy")
    assert found["webapp /healthcheck"].value == "HTTP 500"
    assert found["webapp /healthcheck"].data == {
        "url": "http://127.0.0.1:3030/healthcheck", "http_status": 500}
    assert found["containers redis"].detail == "no healthcheck defined"


def test_nothing_measured_is_unknown_never_ok():
    raw = {key: None for key in status_raw()}
    raw.update(tls={"host": "trigger.example.com", "verify": "", "certificate": "",
                    "error": ""})
    facts = builders.status_facts(raw=raw, config=None, containers=[],
                                  webapp_container=None)
    found = states(evaluate(facts, DOMAIN))
    assert {label for label, state in found.items() if state == OK} == {"transaction"}
    assert found["certificate trigger.example.com"] == UNKNOWN
    assert found["containers"] == UNKNOWN and found["version"] == UNKNOWN
    assert found["backup"] == FAIL  # measured: no dump at all


# ---- single checks --------------------------------------------------------------------

def _container(**state):
    raw = webapp()
    raw["State"].update(state.pop("State", {}))
    raw.update(state)
    return container(raw)


def test_container_states():
    started = datetime.fromisoformat(webapp()["State"]["StartedAt"][:19] + "+00:00")
    check = container_check(_container(), "webapp", False, started + timedelta(hours=2,
                                                                               seconds=1))
    assert (check.state, check.value) == (OK, "running, healthy, up 2 h, 0 restarts")
    assert (check.name, check.item, check.data["restarts"]) == ("containers", "webapp", 0)
    recent = container_check(_container(RestartCount=3), "webapp", False,
                             started + timedelta(seconds=30))
    assert recent.state == FAIL and "crash loop" in recent.detail
    settled = container_check(_container(RestartCount=1), "webapp", False,
                              started + timedelta(days=2))
    assert settled.state == WARN
    starting = _container(State={"Health": {"Status": "starting"}})
    assert container_check(starting, "webapp", False, started + timedelta(hours=1)).state == WARN
    stopped = _container(State={"Status": "exited", "Running": False, "ExitCode": 0})
    assert container_check(stopped, "webapp", False, started).state == FAIL
    assert container_check(stopped, "s2-init", True, started).state == OK
    failed_init = _container(State={"Status": "exited", "Running": False, "ExitCode": 1})
    assert container_check(failed_init, "s2-init", True, started).state == FAIL


def test_missing_one_shot_and_extra_services():
    found = [c for c in stack() if c["Config"]["Labels"]["com.docker.compose.service"] != "redis"]
    orphan = inspect("old-worker", 9)
    config = builders.compose_config(
        stack(), **{"s2-init": {"image": "busybox:1.37"},
                    "s2": {"image": "s2:1", "depends_on": {"s2-init": {
                        "condition": "service_completed_successfully", "required": True}}}})
    checks = container_checks(installation([*found, orphan], config=config), NOW)
    found_states = not_ok(checks)
    assert found_states["containers redis"] == FAIL
    assert found_states["containers s2"] == FAIL and found_states["containers s2-init"] == FAIL
    assert found_states["containers undeclared"] == WARN
    assert by_label(checks)["containers undeclared"].data == {"services": ["old-worker"]}
    done = [*found, inspect("s2-init", 8, state="exited", health="", exit_code=0)]
    assert by_label(container_checks(installation(done, config=config), NOW))[
        "containers s2-init"].value == "completed"
    (nothing_declared,) = container_checks(installation(config={}), NOW)
    assert (nothing_declared.label, nothing_declared.state) == ("containers undeclared", WARN)


def test_compose_config_failing_is_unknown():
    (check,) = container_checks(replace(installation(), config=None), NOW)
    assert (check.state, check.detail) == (UNKNOWN, "`docker compose config` failed")


def test_disk_thresholds_come_from_settings():
    disks = {"root": {"path": "/", "df": DF_ROOT},
             "docker": {"path": "/var/lib/docker", "df": DF_BACKUPS}}
    assert {c.state for c in disk_checks(disks, S)} == {OK}
    warn = settings({"disk_warn_percent": 1})
    assert {c.state for c in disk_checks(disks, warn)} == {WARN}
    fail = settings({"disk_warn_percent": 1, "disk_fail_percent": 20})
    assert {c.state for c in disk_checks(disks, fail)} == {FAIL}
    shared = {"root": disks["root"], "docker": {**disks["docker"], "df": DF_ROOT}}
    (merged,) = disk_checks(shared, S)
    assert merged.label == "disk /" and merged.detail == "holds /, Docker data /var/lib/docker"
    assert merged.data["percent"] == 43 and merged.data["holds"] == [
        "/", "Docker data /var/lib/docker"]
    (blind,) = disk_checks({"root": {"path": "/", "df": ""}}, S)
    assert (blind.state, blind.item) == (UNKNOWN, "/")
    assert disk_checks(None, S)[0].state == UNKNOWN


def test_memory_and_swap():
    meminfo = "MemTotal: 1000 kB\nMemAvailable: 50 kB\nSwapTotal: 100 kB\nSwapFree: 10 kB\n"
    memory, swap = memory_checks(meminfo)
    assert (memory.state, swap.state) == (WARN, WARN)
    memory, _ = memory_checks("MemTotal: 1000 kB\nMemAvailable: 10 kB\n")
    assert memory.state == FAIL
    assert memory_checks("MemTotal: 1000 kB\n")[0].state == UNKNOWN


def test_resources_name_containers_near_their_memory_limit():
    inst = installation()
    busy = [{"ID": "111111111111", "CPUPerc": "250.00%", "MemUsage": "1.9GiB / 2GiB",
             "MemPerc": "95.00%"}]
    check = resources_check(busy, inst)
    assert check.state == WARN and check.detail.startswith("near memory limit: webapp")
    assert resources_check(None, inst).detail == "docker stats gave no answer"
    stopped = installation([webapp(state="exited")])
    assert resources_check([], stopped).detail == "no running container to measure"


@pytest.mark.parametrize("code, state, value", [
    ("200", OK, "HTTP 200"), ("500", FAIL, "HTTP 500"), ("000", FAIL, "no answer"),
    ("", UNKNOWN, ""), (None, UNKNOWN, "")])
def test_webapp_healthcheck(code, state, value):
    check = webapp_http_check(code, "http://127.0.0.1:8030/healthcheck")
    assert (check.state, check.value, check.item) == (state, value, "/healthcheck")


def test_live_certificate():
    s = DOMAIN
    now = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
    good = {"verify": "0 (ok)", "error": "DONE",
            "certificate": "notAfter=Jan 30 05:14:15 2027 GMT\nsubject=CN = trigger.example.com"
                           "\nissuer=C = US, O = Let's Encrypt, CN = R11"}
    ok = live_certificate_check(good, "trigger.example.com", s, now)
    assert ok.state == OK and ok.data == {"source": "live", "expires": "2027-01-30T05:14:15+00:00",
                                          "days_left": 60}
    soon = live_certificate_check(good, "trigger.example.com", s, datetime(2027, 1, 25, tzinfo=UTC))
    assert (soon.state, soon.value) == (WARN, "valid until 2027-01-30 (5 days)")
    expired = live_certificate_check({**good, "verify": "10 (certificate has expired)"},
                                     "trigger.example.com", s, datetime(2027, 2, 2, tzinfo=UTC))
    assert (expired.state, expired.value) == (FAIL, "expired on 2027-01-30 (3 days ago)")
    untrusted = live_certificate_check({**good, "verify": "18 (self-signed certificate)"},
                                       "trigger.example.com", s, now)
    assert untrusted.state == FAIL and "self-signed" in untrusted.detail
    wrong_name = live_certificate_check({**good, "verify": "62 (hostname mismatch)"},
                                        "trigger.example.com", s, now)
    assert wrong_name.state == FAIL
    refused = live_certificate_check({"verify": "", "certificate": "", "error": REFUSED},
                                     "trigger.example.com", s, now)
    assert refused.state == UNKNOWN and refused.detail.endswith("Connection refused")


def test_certbot_certificates():
    found = certbot_checks({"rc": 0, "out": CERTBOT, "err": ""}, S, NOW)
    assert [(c.label, c.state) for c in found] == [
        ("certificate old.example.com (certbot)", FAIL),
        ("certificate soon.example.com (certbot)", WARN),
        ("certificate trigger.example.com (certbot)", OK),
        ("certificate certbot", UNKNOWN),
    ]
    assert certbot_checks(None, S, NOW) == []  # not installed: not a failure
    assert certbot_checks({"rc": 0, "out": CERTBOT_NONE, "err": ""}, S, NOW) == []
    broken = certbot_checks({"rc": 1, "out": "", "err": "Another instance is running"}, S, NOW)
    assert broken[0].state == UNKNOWN


def cron_dump(hours_ago: float, **inspection) -> Folder:
    """A dump the runbook's cron made, inspected (`inspection` its checks) or not."""
    when = NOW - timedelta(hours=hours_ago)
    name = f"trigger-db-{when:%Y%m%d-%H%M}.sql.gz"
    sidecars = {}
    if inspection:
        sidecars[name.replace(".sql.gz", ".json")] = json.dumps({
            "file": name, "origin": "external", "size": 9000, "mtime": int(when.timestamp()),
            "finished_at": when.isoformat(), "checks": inspection})
    return Folder(BACKUP_DIR, (FileEntry(name, 9000, when),), sidecars)


GOOD_INSPECTION = {"intact": True, "complete": True, "size_plausible": True,
                   "has_database": True}


@pytest.mark.parametrize("folder, setting, state, words", [
    (backup_folder(2), {}, OK, "verified"),
    (Folder(BACKUP_DIR, (), {}), {}, FAIL, "no trigger-db dump in /var/backups/trigger"),
    (backup_folder(50), {}, FAIL, "older than 26 h"),
    (backup_folder(50), {"backup_max_age_hours": 72}, OK, "verified"),
    (backup_folder(2, verified=False, checks={"intact": True, "complete": True,
                                              "rows_match": False, "size_plausible": True}),
     {}, FAIL, "failed checks: rows_match"),
    (backup_folder(2, size=100), {}, FAIL, "its record says 100"),
    (cron_dump(9), {}, WARN, "not inspected"),
    (cron_dump(9, **GOOD_INSPECTION), {}, OK, "inspected"),
    (cron_dump(9, **{**GOOD_INSPECTION, "intact": False}), {}, FAIL, "failed checks: intact"),
])
def test_backup_states(folder, setting, state, words):
    check = backup_check(in_folder(folder), BACKUP_DIR, settings(setting), NOW)
    assert check.state == state
    assert words in check.value + "; " + check.detail


def test_a_garbled_sidecar_fails_the_backup_check():
    folder = backup_folder(2)
    garbled = replace(folder, sidecars={name: "{not json" for name in folder.sidecars})
    check = backup_check(in_folder(garbled), BACKUP_DIR, S, NOW)
    assert check.state == FAIL and "unreadable sidecar" in check.detail


def test_the_newest_backup_counts_whoever_made_it():
    both = Folder(BACKUP_DIR, backup_folder(30).files + cron_dump(9).files,
                  backup_folder(30).sidecars)
    check = backup_check(in_folder(both), BACKUP_DIR, S, NOW)
    assert check.state == WARN and check.data["origin"] == "external"
    assert check.data["count"] == 2 and check.data["usable"] is False


@pytest.mark.parametrize("tx, state, value", [
    (TxSummary(), OK, "none running"),
    (TxSummary(current="t1", running=True, newest="t1", kind="update"), WARN,
     "update t1 running"),
    (TxSummary(current="t1", running=False, newest="t1", kind="rollback"), FAIL,
     "rollback t1 cut off"),
    (TxSummary(newest="t1", kind="update", outcome="rolled-back", seen=False), WARN,
     "update t1 rolled-back"),
    (TxSummary(newest="t1", kind="restore", outcome="failed", seen=False), FAIL,
     "restore t1 failed"),
    (TxSummary(newest="t1", kind="update", outcome="failed", seen=True), OK, "none running"),
    (TxSummary(newest="t1", kind="update", outcome="done", seen=False), OK, "none running"),
])
def test_transactions(tx, state, value):
    check = transaction_check(tx)
    assert (check.state, check.value) == (state, value)


@pytest.mark.parametrize("reboot, state, required", [
    ({"required": False, "source": "/var/run/reboot-required", "packages": []}, OK, False),
    ({"required": True, "source": "needs-restarting", "packages": []}, WARN, True),
    (None, UNKNOWN, None),
])
def test_reboot(reboot, state, required):
    check = reboot_check(reboot)
    assert (check.state, check.data["required"]) == (state, required)


def test_version_and_research():
    inst = installation()
    newer = SimpleNamespace(update_available=True, target="4.5.12", latest="4.5.12")
    assert version_check(inst, newer).state == WARN
    assert version_check(inst, newer).value == "v4.5.10, v4.5.12 available"
    assert version_check(inst, newer).data == {"running": "4.5.10", "latest": "4.5.12",
                                               "update_available": True}
    current = SimpleNamespace(update_available=False, target=None, latest="4.5.10")
    assert version_check(inst, current).value == "v4.5.10, up to date"
    blind = replace(inst, version=replace(inst.version, version=None))
    assert version_check(blind).state == UNKNOWN


def test_run_containers():
    s = settings({"run_containers_warn": 10, "run_container_max_age_hours": 24})
    fresh = {"prefix": "runner-", "count": 3, "oldest_created": "2026-12-01 04:00:00 +0000 UTC"}
    assert run_containers_check(fresh, s, NOW).state == OK
    assert run_containers_check({**fresh, "count": 10}, s, NOW).state == WARN
    stale = {**fresh, "oldest_created": "2026-11-29 04:00:00 +0000 UTC"}
    assert run_containers_check(stale, s, NOW).state == WARN
    assert run_containers_check(None, s, NOW).state == UNKNOWN


def test_docker_disk_usage():
    check = docker_disk_check([{"Type": "Images", "Size": "4GB", "Reclaimable": "1GB (25%)"},
                               {"Type": "Local Volumes", "Size": "2GB", "Reclaimable": "0B"}])
    assert check.data == {"total_bytes": 6_000_000_000, "reclaimable_bytes": 1_000_000_000}
    assert check.detail == "images 953.7 MiB"
    assert docker_disk_check(None).state == UNKNOWN


def test_replication_slots():
    text = json.dumps({"size": 8068455, "slots": [
        {"name": "electric_slot_default", "type": "logical", "active": False,
         "retained": 3 * 1024**3}]})
    database, slots = postgres_checks(text)
    assert database.value == "7.7 MiB"
    assert slots.state == WARN and "electric_slot_default inactive 3.0 GiB" in slots.detail
    assert [c.state for c in postgres_checks("")] == [UNKNOWN, UNKNOWN]


def test_default_secrets_names_only():
    check = default_secrets_check(["POSTGRES_PASSWORD"], "1")
    assert (check.state, check.value) == (FAIL, "POSTGRES_PASSWORD")
    assert "ALLOW_INSECURE_DEFAULT_SECRETS" in check.detail
    assert default_secrets_check([], "").state == OK
    assert default_secrets_check(None, "").state == UNKNOWN


def test_unknown_counts_against_ok_unless_allowed():
    checks = (Check("containers", OK), Check("disk", WARN), Check("backup", UNKNOWN))
    report = StatusReport("h", checks)
    assert (report.ok, report.worst) == (False, UNKNOWN)
    assert report.with_allow_unknown(True).ok
    assert not StatusReport("h", checks + (Check("reboot", FAIL),), allow_unknown=True).ok
    assert StatusReport("h", (Check("containers", OK), Check("disk", WARN))).ok
    assert not StatusReport("h", ()).ok
    assert report.first("disk") is checks[1] and report.named("version") == []


# ---- which backup folder, and which disk -----------------------------------------------------

@pytest.mark.parametrize("configured, layout, dumps_in_own, expected", [
    ("/srv/backups", "v4", False, "/srv/backups"),
    ("", "runbook", False, "/opt/trigger/backups"),
    ("", "v4", True, "/opt/trigger/backups"),
    ("", "v4", False, "/var/backups/trigger"),
])
def test_the_backup_folder_status_judges(configured, layout, dumps_in_own, expected):
    own = backup_folder(2, directory="/opt/trigger/backups") if dumps_in_own else \
        Folder("/opt/trigger/backups", (), {})
    candidates = (Folder(configured, (), {}),) if configured else (own, Folder(BACKUP_DIR, (), {}))
    containers = None if layout == "v4" else [inspect("webapp", 1), inspect("postgres", 2)]
    facts = builders.status_facts(folders=candidates, layout=layout, containers=containers)
    assert chosen_folder(facts, configured).paths.backup_dir == expected


def test_only_the_chosen_backup_folders_disk_is_judged():
    raw = status_raw(disks={
        "root": {"path": "/", "df": DF_ROOT},
        "backups0": {"path": "/opt/trigger/backups", "df": DF_ROOT},
        "backups1": {"path": BACKUP_DIR, "df": DF_BACKUPS}})
    facts = builders.status_facts(raw=raw, folders=(Folder("/opt/trigger/backups", (), {}),
                                                    backup_folder(2)))
    disks = [c for c in evaluate(facts, settings({"backup_dir": ""})) if c.name == "disk"]
    assert [(c.item, c.detail) for c in disks] == [
        ("/", "holds /"), ("/var/backups", "holds backups /var/backups/trigger")]


# ---- the script -----------------------------------------------------------------------------

HOSTILE_DOMAIN = "x$(touch /tmp/pwned).example.com"


def _script(tree: dict, marker: str = "") -> str:
    return STATUS.render(status_inputs(settings(tree)), marker or new_marker())


@pytest.mark.parametrize("tree", [{}, {"layout": "v3"}, {"layout": "runbook"},
                                  {"domain": "trigger.example.com:8443"},
                                  {"domain": HOSTILE_DOMAIN}])
def test_script_renders_clean_bash(tree):
    assert_clean_bash(_script(tree))


@pytest.mark.parametrize("tree", [{}, {"layout": "v3"}, {"layout": "runbook"},
                                  {"domain": "trigger.example.com:8443"}])
def test_script_measures_every_check(tree):
    script = _script(tree)
    assert script.splitlines()[1] == "set -euo pipefail"
    assert "docker stats --no-stream --format '{{json .}}'" in script
    assert ("-connect \"$TM_TLS_HOST:8443\"" in script) == ("domain" in tree)


def test_status_looks_at_the_configured_folder_else_at_both_candidates():
    configured = status_inputs(settings({"backup_dir": "/srv/backups"}))
    assert [p.backup_dir for p in configured.folders] == ["/srv/backups"]
    found = status_inputs(settings({"path": "/srv/trigger"}))
    assert [p.backup_dir for p in found.folders] == ["/srv/trigger/backups", BACKUP_DIR]
    assert found.tls_host == "" and found.default_secrets == DEFAULT_SECRETS


def test_domain_is_data_not_code():
    hostile = HOSTILE_DOMAIN
    script = _script({"domain": hostile})
    line = next(x for x in script.splitlines() if x.startswith("TM_TLS_HOST="))
    shown = subprocess.run(["bash", "-c", line + '\nprintf %s "$TM_TLS_HOST"'],
                           capture_output=True, text=True)
    assert shown.stdout == hostile


def test_default_secret_scan_reports_names_never_values(tmp_path):
    """The .env scan of the rendered script, run on a sample .env: names out, values not."""
    mark = new_marker()
    script = _script({}, mark)  # clean bash: test_script_renders_clean_bash
    lib = script[:script.index("# status: read-only")]
    scan = script[script.index("# .env keys still"):script.index("wait \"${TM_JOBS[@]}\"")]
    (tmp_path / ".env").write_text(
        "# comment\n"
        "SESSION_SECRET=secret # used to encrypt session cookies\n"
        'MAGIC_LINK_SECRET="44da78b7bbb0dfe709cf38931d25dcdd"\n'
        "  ENCRYPTION_KEY='f686147ab967943ebbe9ed3b496e465a'   \n"
        "export POSTGRES_PASSWORD=unsafe-postgres-pw\n"
        "DATABASE_URL=postgresql://postgres:unsafe-postgres-pw@postgres:5432/main?schema=public\n"
        "CLICKHOUSE_URL=http://default:password@clickhouse:8123?secure=false\n"
        "CLICKHOUSE_PASSWORD=password2\n"
        "MANAGED_WORKER_SECRET=447c29678f9eaf289e9c4b70d3dd8a7f\n"
        "MANAGED_WORKER_SECRET=fresh-and-random\n"
        "DOCKER_REGISTRY_PASSWORD=very-secure-indeed\n"
        "ALLOW_INSECURE_DEFAULT_SECRETS=1\n")
    done = subprocess.run(["bash", "-c", f"{lib}\nTM_PATH={tmp_path}\n{scan}\ntm_emit"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    result = parse_result(done.stdout, mark)
    assert result["default_secrets"] == [
        "SESSION_SECRET", "MAGIC_LINK_SECRET", "ENCRYPTION_KEY", "POSTGRES_PASSWORD",
        "DATABASE_URL", "CLICKHOUSE_URL", "DOCKER_REGISTRY_PASSWORD"]
    assert result["insecure_secrets_allowed"] == "1"
    assert not re.search(r"unsafe-postgres-pw|44da78b7|very-secure", done.stdout)
    assert {key for key, _ in DEFAULT_SECRETS} >= set(result["default_secrets"])


def test_the_scripts_result_becomes_status_facts():
    inputs = status_inputs(settings({"backup_dir": "", "path": "/opt/trigger"}))
    folder = backup_folder(2, directory="/opt/trigger/backups")
    raw = {**builders.install_result(), **status_raw(), "now": int(NOW.timestamp()), "folders": [
        {"dir": "/opt/trigger/backups", "exists": True,
         "files": [{"name": f.name, "size": f.size, "mtime": int(f.mtime.timestamp())}
                   for f in folder.files],
         "sidecars": [{"name": n, "text": t} for n, t in folder.sidecars.items()],
         "leftovers": [], "transactions": {"current": "", "alive": False, "newest": "",
                                           "first": "", "last": "", "seen": True}}]}
    facts = status_facts(raw, inputs)
    assert facts.now == NOW and facts.installation.running == "4.5.10"
    own, default = facts.folders
    assert (own.paths, default.paths) == (HostPaths("/opt/trigger/backups"),
                                          HostPaths(BACKUP_DIR))
    assert [b.name for b in in_folder(own.folder)] == [b.name for b in in_folder(folder)]
    assert default.folder.files == () and default.transactions == TxSummary()
    assert chosen_folder(facts, "") is own
