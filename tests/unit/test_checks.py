"""Status checks from raw script results captured on the rig, and their parsers."""

import json
import re
import subprocess
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from trigger_maint.checks import (
    DEFAULT_SECRETS,
    FAIL,
    OK,
    UNKNOWN,
    WARN,
    Check,
    StatusReport,
    backup_check,
    certbot_checks,
    container_check,
    default_secrets_check,
    disk_checks,
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
    run_containers_check,
    script_context,
    tls_target,
    version_check,
)
from trigger_maint.config import settings
from trigger_maint.installation import from_result
from trigger_maint.inventory import container
from trigger_maint.layout import script_context as layout_context
from trigger_maint.render import render

from .shell import assert_clean_bash

DATA = Path(__file__).parent / "data" / "status"
NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)
S = settings({})

# `certbot certificates` (certbot 2.1.0) with an expired, a nearly expired and a fine
# certificate, and one renewal configuration it could not read.
CERTBOT = """
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
Found the following certs:
  Certificate Name: old.example.com
    Serial Number: 60064b1e174d51d2fcfccb18426ea8a0aa3692fa
    Key Type: ECDSA
    Domains: old.example.com www.old.example.com
    Expiry Date: 2026-11-28 04:58:55+00:00 (INVALID: EXPIRED)
    Certificate Path: /etc/letsencrypt/live/old.example.com/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/old.example.com/privkey.pem
  Certificate Name: soon.example.com
    Serial Number: 192fab66c2803076090ade3a6b49873493870945
    Key Type: ECDSA
    Domains: soon.example.com www.soon.example.com
    Expiry Date: 2026-12-06 04:58:55+00:00 (VALID: 4 days)
    Certificate Path: /etc/letsencrypt/live/soon.example.com/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/soon.example.com/privkey.pem
  Certificate Name: trigger.example.com
    Serial Number: 2caa6d2e2ae29ab8aabcde440b26533e274961cd
    Key Type: ECDSA
    Domains: trigger.example.com www.trigger.example.com
    Expiry Date: 2027-01-30 04:58:55+00:00 (VALID: 59 days)
    Certificate Path: /etc/letsencrypt/live/trigger.example.com/fullchain.pem
    Private Key Path: /etc/letsencrypt/live/trigger.example.com/privkey.pem

The following renewal configurations were invalid:
  /etc/letsencrypt/renewal/broken.example.com.conf
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
"""
CERTBOT_NONE = """
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
No certificates found.
- - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - - -
"""
# openssl s_client against a closed port (OpenSSL 3.0).
REFUSED = ("4017DFA3E67F0000:error:8000006F:system library:BIO_connect:Connection refused:"
           "../crypto/bio/bio_sock2.c:117:calling connect()\n"
           "4017DFA3E67F0000:error:10000067:BIO routines:BIO_connect:connect error:"
           "../crypto/bio/bio_sock2.c:119:\nconnect:errno=111\n")


def captured(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


def states(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.state for c in checks}


def not_ok(checks: list[Check]) -> dict[str, str]:
    return {c.name: c.state for c in checks if c.state != OK}


# ---- parsers -------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("255.9MB", 255_900_000), ("0B", 0), ("63B", 63), ("48.27MB", 48_270_000),
    ("9.184MiB", int(9.184 * 1024**2)), ("23.54GiB", int(23.54 * 1024**3)), ("12kB", 12_000),
    ("1.5TB", 1_500_000_000_000), ("--", None), ("", None),
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
    assert parse_df_line("") is None
    assert parse_df_line("df: /nope: No such file or directory") is None


def test_meminfo_in_bytes():
    values = parse_meminfo(captured("v4_healthy")["meminfo"])
    assert values["MemTotal"] == 24684084 * 1024
    assert values["SwapTotal"] == 0
    assert "HugePages_Total" in values  # a count, not kB: kept as is


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


# ---- whole results captured on the rig ------------------------------------------------

def test_healthy_v4_is_all_ok():
    checks = evaluate(captured("v4_healthy"), settings({"domain": "trigger-5.rig.test"}))
    assert not_ok(checks) == {}
    names = states(checks)
    for name in ("container webapp", "container electric", "webapp /healthcheck", "disk /",
                 "memory", "certificate trigger-5.rig.test",
                 "certificate trigger-5.rig.test (certbot)", "backup", "reboot", "version",
                 "exited run containers", "docker disk usage", "database", "replication slots",
                 "default secrets", "docker stats", "interrupted update"):
        assert name in names
    version = next(c for c in checks if c.name == "version")
    assert version.value == "v4.5.10"


def test_warnings_captured_on_v4():
    checks = evaluate(captured("v4_warnings"), settings({"domain": "trigger-5.rig.test",
                                                         "run_containers_warn": 3}))
    assert not_ok(checks) == {
        "certificate trigger-5.rig.test": WARN,
        "certificate trigger-5.rig.test (certbot)": WARN,
        "reboot": WARN,
        "exited run containers": WARN,
    }
    by_name = {c.name: c for c in checks}
    assert by_name["reboot"].detail == "asked for by libc6, linux-image-6.1.0-28-amd64"
    assert by_name["certificate trigger-5.rig.test"].value.endswith("(4 days)")
    assert by_name["exited run containers"].value.startswith("3, oldest")
    # the same data with the default threshold: three fresh exited runners are fine
    assert states(evaluate(captured("v4_warnings"), S))["exited run containers"] == OK


def test_failures_captured_on_v3():
    checks = evaluate(captured("v3_failures"), settings({"domain": "trigger-6.rig.test"}))
    assert not_ok(checks) == {
        "container coordinator": FAIL,
        "disk /var/backups/trigger": FAIL,
        "certificate trigger-6.rig.test": FAIL,
        "certificate trigger-6.rig.test (certbot)": FAIL,
        "backup": FAIL,
        "interrupted update": FAIL,
        "default secrets": FAIL,
    }
    by_name = {c.name: c for c in checks}
    assert by_name["default secrets"].value == "SESSION_SECRET, CLICKHOUSE_PASSWORD"
    assert by_name["backup"].detail == "older than 26 h"
    assert by_name["interrupted update"].value == "rollback point 20261130-101010"
    assert by_name["exited run containers"].detail == "prefix task-run"
    assert by_name["version"].value == "v3.3.17"


def test_crash_loop_captured_on_v4():
    checks = evaluate(captured("v4_crash_loop"), S)
    by_name = {c.name: c for c in checks}
    assert by_name["container webapp"].state == FAIL
    assert by_name["container webapp"].value == "restarting, 6 restarts"
    assert by_name["webapp /healthcheck"].value == "no answer"
    assert by_name["backup"].value == "none"
    # postgres was still starting: what psql could not answer is unknown, not ok
    assert by_name["database"].state == UNKNOWN
    assert by_name["replication slots"].state == UNKNOWN


def test_unhealthy_webapp_captured_on_runbook():
    checks = evaluate(captured("runbook_unhealthy"), S)
    assert not_ok(checks) == {"container webapp": FAIL, "webapp /healthcheck": FAIL,
                              "backup": FAIL}
    by_name = {c.name: c for c in checks}
    assert by_name["container webapp"].value.startswith("running, unhealthy")
    assert by_name["webapp /healthcheck"].value == "HTTP 500"
    assert by_name["container redis"].detail == "no healthcheck defined"


def test_nothing_measured_is_unknown_never_ok():
    raw = captured("v4_healthy")
    for key in ("stats", "system_df", "run_containers", "reboot", "disks", "meminfo",
                "postgres", "webapp_http", "default_secrets", "config", "webapp_container",
                "certbot", "webapp_image"):
        raw[key] = None
    raw.update(core_package="", backup_sidecar_name="")
    raw["tls"] = {"host": "trigger-5.rig.test", "verify": "", "certificate": "", "error": ""}
    found = states(evaluate(raw, S))
    assert {name for name, state in found.items() if state == OK} == {"interrupted update"}
    assert found["certificate trigger-5.rig.test"] == UNKNOWN


# ---- single checks --------------------------------------------------------------------

WEBAPP = captured("v4_healthy")["webapp_container"]


def _container(**state):
    raw = json.loads(json.dumps(WEBAPP))
    raw["State"].update(state.pop("State", {}))
    raw.update(state)
    return container(raw)


def test_container_states():
    started = WEBAPP["State"]["StartedAt"]
    now = datetime.fromisoformat(started[:19] + "+00:00")
    check = container_check(_container(), "webapp", False, now + timedelta(hours=2, seconds=1))
    assert (check.state, check.value) == (OK, "running, healthy, up 2 h, 0 restarts")
    recent = container_check(_container(RestartCount=3), "webapp", False,
                             now + timedelta(seconds=30))
    assert recent.state == FAIL and "crash loop" in recent.detail
    settled = container_check(_container(RestartCount=1), "webapp", False, now + timedelta(days=2))
    assert settled.state == WARN
    starting = _container(State={"Health": {"Status": "starting"}})
    assert container_check(starting, "webapp", False, now + timedelta(hours=1)).state == WARN
    stopped = _container(State={"Status": "exited", "Running": False, "ExitCode": 0})
    assert container_check(stopped, "webapp", False, now).state == FAIL
    assert container_check(stopped, "s2-init", True, now).state == OK
    failed_init = _container(State={"Status": "exited", "Running": False, "ExitCode": 1})
    assert container_check(failed_init, "s2-init", True, now).state == FAIL


def test_missing_and_extra_services():
    raw = captured("v4_healthy")
    raw["containers"] = [c for c in raw["containers"]
                         if c["Config"]["Labels"]["com.docker.compose.service"] != "redis"]
    raw["config"]["services"]["s2-init"] = {"image": "busybox:1.37"}
    raw["config"]["services"]["s2"] = {"depends_on": {
        "s2-init": {"condition": "service_completed_successfully", "required": True}}}
    orphan = json.loads(json.dumps(raw["containers"][0]))
    orphan["Config"]["Labels"]["com.docker.compose.service"] = "old-worker"
    raw["containers"].append(orphan)
    found = not_ok(evaluate(raw, S))
    assert found["container redis"] == FAIL
    assert found["container s2"] == FAIL and found["container s2-init"] == FAIL
    assert found["extra services"] == WARN


def test_disk_thresholds_come_from_settings():
    disks = captured("v4_healthy")["disks"]
    assert {c.state for c in disk_checks(disks, S)} == {OK}
    warn = settings({"disk_warn_percent": 1})
    assert {c.state for c in disk_checks(disks, warn)} == {WARN}
    fail = settings({"disk_warn_percent": 1, "disk_fail_percent": 20})
    assert {c.state for c in disk_checks(disks, fail)} == {FAIL}
    shared = {"root": disks["root"], "docker": {**disks["docker"], "df": disks["root"]["df"]}}
    (merged,) = disk_checks(shared, S)
    assert merged.name == "disk /" and merged.detail == "holds /, Docker data /var/lib/docker"


def test_memory_and_swap():
    meminfo = "MemTotal: 1000 kB\nMemAvailable: 50 kB\nSwapTotal: 100 kB\nSwapFree: 10 kB\n"
    memory, swap = memory_checks(meminfo)
    assert (memory.state, swap.state) == (WARN, WARN)
    memory, _ = memory_checks("MemTotal: 1000 kB\nMemAvailable: 10 kB\n")
    assert memory.state == FAIL
    assert memory_checks("MemTotal: 1000 kB\n")[0].state == UNKNOWN


def test_live_certificate():
    s = settings({"domain": "trigger.example.com"})
    good = {"verify": "0 (ok)", "error": "DONE",
            "certificate": "notAfter=Jan 30 05:14:15 2027 GMT\nsubject=CN = trigger.example.com"
                           "\nissuer=C = US, O = Let's Encrypt, CN = R11"}
    assert live_certificate_check(good, "trigger.example.com", s, NOW).state == OK
    soon = live_certificate_check(good, "trigger.example.com", s, datetime(2027, 1, 25, tzinfo=UTC))
    assert (soon.state, soon.value) == (WARN, "valid until 2027-01-30 (5 days)")
    expired = live_certificate_check({**good, "verify": "10 (certificate has expired)"},
                                     "trigger.example.com", s, datetime(2027, 2, 2, tzinfo=UTC))
    assert (expired.state, expired.value) == (FAIL, "expired on 2027-01-30 (3 days ago)")
    untrusted = live_certificate_check({**good, "verify": "18 (self-signed certificate)"},
                                       "trigger.example.com", s, NOW)
    assert untrusted.state == FAIL and "self-signed" in untrusted.detail
    wrong_name = live_certificate_check({**good, "verify": "62 (hostname mismatch)"},
                                        "trigger.example.com", s, NOW)
    assert wrong_name.state == FAIL
    refused = live_certificate_check({"verify": "", "certificate": "", "error": REFUSED},
                                     "trigger.example.com", s, NOW)
    assert refused.state == UNKNOWN and refused.detail.endswith("Connection refused")


def test_certbot_certificates():
    found = certbot_checks({"rc": 0, "out": CERTBOT, "err": ""}, S, NOW)
    assert [(c.name, c.state) for c in found] == [
        ("certificate old.example.com (certbot)", FAIL),
        ("certificate soon.example.com (certbot)", WARN),
        ("certificate trigger.example.com (certbot)", OK),
        ("certificate certbot", UNKNOWN),
    ]
    assert certbot_checks(None, S, NOW) == []  # not installed: not a failure
    assert certbot_checks({"rc": 0, "out": CERTBOT_NONE, "err": ""}, S, NOW) == []
    broken = certbot_checks({"rc": 1, "out": "", "err": "Another instance is running"}, S, NOW)
    assert broken[0].state == UNKNOWN


def _backup_result(**sidecar):
    base = {"file": "trigger-db-20261201-030000.sql.gz", "finished_at": "2026-12-01T03:00:20Z",
            "size": 2048, "verified": True, "checks": {"gzip": True, "restore": True}}
    return {"backup_sidecar_name": "trigger-db-20261201-030000.json", "backup_count": 3,
            "backup_sidecar": json.dumps({**base, **sidecar}), "backup_file_size": 2048}


def test_backup_states():
    assert backup_check(_backup_result(), S, NOW).state == OK
    assert backup_check({}, S, NOW).value == "none"
    old = backup_check(_backup_result(finished_at="2026-11-29T03:00:00Z"), S, NOW)
    assert (old.state, old.detail) == (FAIL, "older than 26 h")
    unverified = backup_check(_backup_result(verified=False, checks={"gzip": True,
                                                                      "restore": False}), S, NOW)
    assert unverified.state == FAIL and unverified.detail.endswith("restore")
    gone = backup_check({**_backup_result(), "backup_file_size": None}, S, NOW)
    assert gone.state == FAIL and "missing" in gone.detail
    changed = backup_check({**_backup_result(), "backup_file_size": 100}, S, NOW)
    assert changed.state == FAIL
    garbled = backup_check({**_backup_result(), "backup_sidecar": "{not json"}, S, NOW)
    assert garbled.state == FAIL
    longer = settings({"backup_max_age_hours": 72})
    assert backup_check(_backup_result(finished_at="2026-11-29T03:00:00Z"), longer, NOW).state == OK


def test_version_and_research():
    inst = from_result(captured("v4_healthy"), S)
    newer = SimpleNamespace(update_available=True, target="4.5.12", latest="4.5.12")
    assert version_check(inst, newer).state == WARN
    assert version_check(inst, newer).value == "v4.5.10, v4.5.12 available"
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


def test_unknown_counts_against_ok_unless_allowed():
    checks = (Check("a", OK), Check("b", WARN), Check("c", UNKNOWN))
    report = StatusReport("h", checks)
    assert (report.ok, report.worst) == (False, UNKNOWN)
    assert report.with_allow_unknown(True).ok
    assert not StatusReport("h", checks + (Check("d", FAIL),), allow_unknown=True).ok
    assert StatusReport("h", (Check("a", OK), Check("b", WARN))).ok
    assert not StatusReport("h", ()).ok


# ---- the script ------------------------------------------------------------------------

def _script(tree: dict) -> str:
    s = settings(tree)
    return render("status", **layout_context(s), **script_context(s))


@pytest.mark.parametrize("tree", [{}, {"layout": "v3"}, {"layout": "runbook"},
                                  {"domain": "trigger.example.com:8443"}])
def test_script_renders_clean(tree):
    script = _script(tree)
    assert script.splitlines()[1] == "set -euo pipefail"
    assert_clean_bash(script)
    assert "docker stats --no-stream --format '{{json .}}'" in script
    assert ("-connect \"$TM_TLS_HOST:8443\"" in script) == ("domain" in tree)


def test_domain_is_data_not_code():
    hostile = "x$(touch /tmp/pwned).example.com"
    script = _script({"domain": hostile})
    line = next(x for x in script.splitlines() if x.startswith("TM_TLS_HOST="))
    shown = subprocess.run(["bash", "-c", line + '\nprintf %s "$TM_TLS_HOST"'],
                           capture_output=True, text=True)
    assert shown.stdout == hostile
    assert tls_target(settings({"domain": "trigger.example.com"})) == ("trigger.example.com", 443)


def test_default_secret_scan_reports_names_never_values(tmp_path):
    """The .env scan of the rendered script, run on a sample .env: names out, values not."""
    script = _script({})
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
    result = json.loads(done.stdout.split("@@trigger-maint-result@@")[1])
    assert result["default_secrets"] == [
        "SESSION_SECRET", "MAGIC_LINK_SECRET", "ENCRYPTION_KEY", "POSTGRES_PASSWORD",
        "DATABASE_URL", "CLICKHOUSE_URL", "DOCKER_REGISTRY_PASSWORD"]
    assert result["insecure_secrets_allowed"] == "1"
    assert not re.search(r"unsafe-postgres-pw|44da78b7|very-secure", done.stdout)
    assert {key for key, _ in DEFAULT_SECRETS} >= set(result["default_secrets"])
